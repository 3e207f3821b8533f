"""Registry of reference implementations, guarded while a student's function is graded.

Every exercise's reference is registered here under its exercise id. While the grader runs a
student's function for an exercise, the references are locked: calling one raises
`ForbiddenCallError` naming it, however the student got hold of the function object.
"""
import contextlib
import functools

REFERENCES = {}
_locked = []  # exercise ids whose student function is running right now


class ForbiddenCallError(RuntimeError):
    """A graded function called something the exercise must be solved without."""


def reference(exercise_id):
    """Register `fn` as the reference for `exercise_id` and guard it during grading."""
    def register(fn):
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            if _locked:
                raise ForbiddenCallError(
                    f"your function called the course's reference `course_utils.{fn.__module__.split('.')[-1]}"
                    f".{fn.__name__}` while being graded for `{_locked[-1]}`. Write the computation yourself."
                )
            return fn(*args, **kwargs)

        guarded.exercise_id = exercise_id
        REFERENCES[exercise_id] = guarded
        return guarded
    return register


@contextlib.contextmanager
def references_locked(exercise_id):
    """Within this block, calling any registered reference raises `ForbiddenCallError`."""
    _locked.append(exercise_id)
    try:
        yield
    finally:
        _locked.pop()
