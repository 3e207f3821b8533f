"""Shared by the grading-check tests of every notebook."""
import pytest

from course_utils.grading import EXERCISES, check


def passes_everything(fn, exercise_id):
    """Run every part of an exercise, visible and hidden; raises on the first disagreement."""
    for part in EXERCISES[exercise_id].parts:
        check(fn, exercise_id, part)
        check(fn, exercise_id, part, hidden=True)


def failure_message(fn, exercise_id):
    """The message of the first failing check over all parts, visible then hidden."""
    for part in EXERCISES[exercise_id].parts:
        for hidden in (False, True):
            try:
                check(fn, exercise_id, part, hidden=hidden)
            except AssertionError as error:
                return str(error)
    pytest.fail(f"a wrong {exercise_id} passed every check")


def wrong_variant_tests(ids, wrong):
    """The two standard tests over {exercise id: [(wrong implementation, expected words in the message)]}."""

    @pytest.mark.parametrize("exercise_id", ids)
    def test_at_least_five_wrong_variants_per_exercise(exercise_id):
        assert len(wrong[exercise_id]) >= 5

    cases = [(eid, i, fn, snippet) for eid, wrongs in wrong.items() for i, (fn, snippet) in enumerate(wrongs)]

    @pytest.mark.parametrize("exercise_id, i, fn, snippet", cases, ids=[f"{e}-{i}" for e, i, _, _ in cases])
    def test_wrong_implementation_fails_with_explanation(exercise_id, i, fn, snippet):
        message = failure_message(fn, exercise_id)
        assert snippet in message, message
        assert exercise_id in message, message

    return test_at_least_five_wrong_variants_per_exercise, test_wrong_implementation_fails_with_explanation
