"""Grading checks: run a student's function beside the course reference and explain any difference.

One helper does the checking, `check(fn, exercise_id, part=..., hidden=...)`. An exercise is
described once, in `course_utils.checks`, by an `Exercise`: its cases (small named input
builders), its parts (which cases count for which test cell), its forbidden calls and its known
wrong variants, each with the misconception it reveals. On failure `check` raises an
AssertionError that names the case, compares shapes and dtypes, reports the largest error and
where it is, and, when the student's output equals a known wrong variant, names the likely
misconception.
"""
import contextlib
import dataclasses
import numbers
import re
import zlib
from typing import Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .reference import REFERENCES, ForbiddenCallError, references_locked

TOLERANCES = {  # (rtol, atol) by dtype, as CURRICULUM fixes them
    torch.float32: (1e-4, 1e-5),
    torch.float64: (1e-7, 1e-10),
}


@dataclasses.dataclass
class Variant:
    """A known wrong way to solve an exercise: `fn` computes it, `message` explains the mistake."""
    fn: Callable
    message: str


@dataclasses.dataclass
class Exercise:
    """Everything the grader knows about one exercise.

    cases: name -> builder(gen) returning the argument tuple of one call.
    parts: part -> {"visible": [case names], "hidden": [case names], "random": number of random cases}.
    random_case: builder(gen, dtype) -> argument tuple, for randomly drawn cases.
    forbidden: torch callables -> the name shown to the student.
    forbidden_aten: regex on aten op names (catches the same ops however they are reached).
    """
    id: str
    cases: dict
    parts: dict
    random_case: Callable = None
    variants: list = dataclasses.field(default_factory=list)
    forbidden: dict = dataclasses.field(default_factory=dict)
    forbidden_aten: str = None
    describe: Callable = None  # optional: args -> short text; the default lists shapes and values
    # For exercises whose answer is not one value (a sampler, say), a pair replaces the comparison:
    # collect(fn, args) calls fn as often as it needs and returns plain data (ints, floats, tensors);
    # judge(args, data, fn) -> message or None says whether `data` is what `fn` (the reference, or a
    # wrong variant when looking for a hint) would produce. The grader's re-check runs collect on the
    # student's side and judge on its own.
    collect: Callable = None
    judge: Callable = None
    tolerance: tuple = None    # optional (rtol, atol) for every dtype, instead of TOLERANCES

    @property
    def reference(self):
        return REFERENCES[self.id]


FLOAT_RTOL = 1e-4  # Python floats returned by a graded function (they may come from float32 tensors)

EXERCISES = {}


def register(exercise):
    EXERCISES[exercise.id] = exercise
    return exercise


# ---------------------------------------------------------------------------------------------
# Forbidden calls


class ForbiddenByName(dict):
    """An `Exercise.forbidden` table (torch callable -> name shown) that also matches by name.

    Any torch function or `torch.ops.aten` op whose name matches `pattern` counts as listed, so the
    private and aten spellings of a forbidden op are caught as well as the public ones.
    """

    def __init__(self, pattern, listed):
        super().__init__(listed)
        self.pattern = re.compile(pattern)

    def get(self, func, default=None):
        name = super().get(func)
        if name is not None:
            return name
        func_name = getattr(func, "__name__", None)
        if not isinstance(func_name, str) or not self.pattern.search(func_name):
            return default
        if type(func).__module__ == "torch._ops":                   # torch.ops.aten.<op> or one of its overloads
            return f"torch.ops.{func}"
        module = getattr(func, "__module__", None) or ""
        return f"torch.{func_name}" if module.startswith("torch") else default


class _ForbidFunctions(TorchFunctionMode):
    def __init__(self, exercise):
        super().__init__()
        self.exercise = exercise

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = self.exercise.forbidden.get(func)
        if name is not None:
            raise ForbiddenCallError(
                f"`{self.exercise.id}` must be written without `{name}`, and your function called it."
            )
        return func(*args, **(kwargs or {}))


class _ForbidAten(TorchDispatchMode):
    def __init__(self, exercise):
        super().__init__()
        self.exercise = exercise
        self.pattern = re.compile(exercise.forbidden_aten)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if self.pattern.search(name):
            raise ForbiddenCallError(
                f"`{self.exercise.id}` must be written without torch's built-in `{name}` op, "
                f"and your function reached it."
            )
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def forbidden_calls(exercise):
    """Within this block, the exercise's forbidden calls and every course reference raise."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(references_locked(exercise.id))
        if exercise.forbidden:
            stack.enter_context(_ForbidFunctions(exercise))
        if exercise.forbidden_aten:
            stack.enter_context(_ForbidAten(exercise))
        yield


# ---------------------------------------------------------------------------------------------
# Comparing results


def _fmt(value):
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return f"tensor({value.item():.4g}, {_dtype(value)})"
        if value.numel() <= 6 and value.dim() == 1:
            return f"tensor({[round(v, 4) for v in value.tolist()]}, {_dtype(value)})"
        return f"tensor {tuple(value.shape)} {_dtype(value)}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_fmt(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(value)


def _dtype(t):
    return str(t.dtype).replace("torch.", "")


def describe_args(args):
    return ", ".join(_fmt(a) for a in args)


def _index(flat_index, shape):
    idx = []
    for size in reversed(shape):
        idx.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(idx))


def compare(expected, actual, where="the result", tolerance=None):
    """None when `actual` matches `expected` (tensors to the dtype's tolerance), else a message."""
    if isinstance(expected, torch.Tensor):
        return _compare_tensors(expected, actual, where, tolerance)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where} should be a dict with keys {sorted(expected)}, got {type(actual).__name__}."
        if set(actual) != set(expected):
            return f"{where} should have exactly the keys {sorted(expected)}, got {sorted(actual)}."
        for key in expected:
            problem = compare(expected[key], actual[key], f"{where}[{key!r}]", tolerance)
            if problem:
                return problem
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            got = f"{type(actual).__name__} of length {len(actual)}" if isinstance(actual, (tuple, list)) \
                else type(actual).__name__
            return f"{where} should be a {type(expected).__name__} of {len(expected)} items, got {got}."
        for i, (e, a) in enumerate(zip(expected, actual)):
            problem = compare(e, a, f"{where}[{i}]", tolerance)
            if problem:
                return problem
        return None
    if isinstance(expected, bool) or not isinstance(expected, numbers.Number):
        raise TypeError(f"cannot compare reference values of type {type(expected).__name__}")
    return _compare_numbers(expected, actual, where)


def _compare_numbers(expected, actual, where):
    if isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual = actual.item()
    if isinstance(expected, numbers.Integral):
        if isinstance(actual, bool) or not isinstance(actual, numbers.Number):
            return f"{where} should be an int, got {type(actual).__name__} {actual!r}."
        if actual != expected:
            return f"{where}: expected {expected:,}, got {actual:,}."
        if not isinstance(actual, numbers.Integral):
            return (f"{where} has the right value but is a {type(actual).__name__} ({actual!r}); "
                    f"counts are ints (use // rather than /, and no float factors).")
        return None
    if not isinstance(actual, numbers.Real) or isinstance(actual, bool):
        return f"{where} should be a float, got {type(actual).__name__} {actual!r}."
    if not abs(actual - expected) <= FLOAT_RTOL * abs(expected) + 1e-9:
        return f"{where}: expected {expected:.6g}, got {actual:.6g}."
    return None


def _compare_tensors(expected, actual, where, tolerance=None):
    if not isinstance(actual, torch.Tensor):
        return f"{where} should be a torch.Tensor, got {type(actual).__name__}."
    if actual.shape != expected.shape:
        return f"{where} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}."
    if actual.dtype != expected.dtype:
        return (f"{where} has dtype {_dtype(actual)}, expected {_dtype(expected)}: keep the input's dtype "
                f"(create new tensors with dtype=x.dtype, and avoid numpy/float round trips that change it).")
    if expected.dtype == torch.bool or not expected.is_floating_point():
        wrong = actual != expected
        if wrong.any():
            first = _index(int(wrong.flatten().nonzero()[0]), expected.shape)
            return (f"{where}: {int(wrong.sum())} of {expected.numel()} entries differ; first at index {first} "
                    f"(expected {expected[first].item()}, got {actual[first].item()}).")
        return None
    rtol, atol = tolerance or TOLERANCES.get(expected.dtype, TOLERANCES[torch.float32])
    if torch.isnan(actual).any() and not torch.isnan(expected).any():
        first = _index(int(torch.isnan(actual).flatten().nonzero()[0]), expected.shape)
        return f"{where} contains NaN (first at index {first}); the expected values are all finite."
    error = (actual.detach() - expected).abs()
    bad = ~torch.isclose(actual.detach(), expected, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return None
    worst = _index(int(torch.where(bad, error.nan_to_num(float("inf")), torch.zeros_like(error)).argmax()),
                   expected.shape)
    message = (f"{where}: {int(bad.sum())} of {expected.numel()} values are off; the largest error is "
               f"{error[worst].item():.3g} at index {worst} (expected {expected[worst].item():.6g}, got "
               f"{actual[worst].item():.6g}); tolerance rtol={rtol:g}, atol={atol:g}.")
    if expected.dtype == torch.float64 and tolerance is None and \
            torch.allclose(actual, expected, *TOLERANCES[torch.float32]):
        message += (" The values agree to float32 precision only: part of your computation ran in float32 "
                    "(a tensor created without dtype=..., or a float32 constant).")
    return message


# ---------------------------------------------------------------------------------------------
# The check helper


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    return value


def _mutated(before, after):
    if isinstance(before, torch.Tensor):
        return before.shape != after.shape or not torch.equal(before, after)
    if isinstance(before, (tuple, list)):
        return any(_mutated(b, a) for b, a in zip(before, after))
    return False


def _generator(seed, name):
    """A generator seeded by the part's seed and the case name: the same inputs on every run."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def _cases(exercise, part, hidden, seed):
    """The (name, args) pairs of one part of an exercise, built deterministically."""
    try:
        spec = exercise.parts[part]
    except KeyError:
        raise ValueError(f"{exercise.id} has parts {sorted(exercise.parts)}, not {part!r}") from None
    names = spec["hidden"] if hidden else spec["visible"]
    for name in names:
        yield name, exercise.cases[name](_generator(seed, name))
    if hidden:
        for r in range(spec.get("random", 0)):
            dtype = (torch.float32, torch.float64)[r % 2]
            name = f"random #{r + 1} ({_dtype(torch.empty(0, dtype=dtype))})"
            yield name, exercise.random_case(_generator(seed, name), dtype)


def run_case(fn, exercise, name, args):
    """Run one case; return None when `fn` agrees with the reference, else the student-facing message."""
    described = exercise.describe(args) if exercise.describe else describe_args(args)
    header = f"{exercise.id} is wrong on case '{name}' with inputs ({described}):\n  "
    given = _clone(args)

    def guarded(*call_args):
        with forbidden_calls(exercise):
            return fn(*call_args)

    try:
        if exercise.collect:
            actual = exercise.collect(guarded, given)
        else:
            expected = exercise.reference(*_clone(args))
            actual = guarded(*given)
    except NotImplementedError:
        raise NotImplementedError(f"{exercise.id} is not written yet: replace `raise NotImplementedError()` "
                                  f"in its cell with your code.") from None
    except ForbiddenCallError as error:
        return f"{exercise.id}, case '{name}': {error}"
    except Exception as error:  # the student's code crashed: say where, keep the original message
        return header + f"your function raised {type(error).__name__}: {error}"
    if _mutated(args, given):
        return header + "your function changed its input tensors in place. Work on new tensors instead " \
                        "(out-of-place ops, or .clone() before writing into a copy)."
    problem = judge(exercise, args, actual) if exercise.collect else compare(expected, actual,
                                                                           tolerance=exercise.tolerance)
    if problem is None:
        return None
    hints = [v.message for v in exercise.variants if _matches_variant(v, exercise, args, actual)]
    if hints:
        problem += "\n  Likely misconception: " + "\n  Or: ".join(hints[:2])
    return header + problem


def judge(exercise, args, actual, fn=None):
    """The trusted half of a collect/judge exercise: None when `actual` is what `fn` (default: the reference) gives."""
    return exercise.judge(_clone(args), actual, fn or exercise.reference)


def _matches_variant(variant, exercise, args, actual):
    try:
        with torch.no_grad():
            if exercise.collect:
                return judge(exercise, args, actual, variant.fn) is None
            wrong = variant.fn(*_clone(args))
    except Exception:
        return False
    return compare(wrong, actual, tolerance=exercise.tolerance) is None


def check(fn, exercise_id, part="basic", hidden=False, seed=0):
    """Compare `fn` with the reference of `exercise_id` on the cases of one part; print one line if all agree.

    Raises AssertionError with an explanation on the first case that disagrees, and
    NotImplementedError, saying so, while the exercise still holds its stub.
    """
    exercise = EXERCISES[exercise_id]
    count = 0
    for name, args in _cases(exercise, part, hidden, seed):
        problem = run_case(fn, exercise, name, args)
        if problem:
            raise AssertionError(problem)
        count += 1
    label = "hidden" if hidden else "visible"
    cases = "case agrees" if count == 1 else "cases agree"
    print(f"✔ {exercise_id} ({part}): {count} {label} {cases} with the reference.")


def passes(fn, exercise_id):
    """True when `fn` agrees with the reference on every visible case of every part (no output)."""
    exercise = EXERCISES[exercise_id]
    try:
        return all(run_case(fn, exercise, name, args) is None
                   for part in exercise.parts for name, args in _cases(exercise, part, False, 0))
    except Exception:
        return False


def use_or_reference(fn, exercise_id):
    """The student's `fn` when it passes the quick check, else the course reference, announced in one line."""
    if passes(fn, exercise_id):
        print(f"Using your {exercise_id}.")
        return fn
    print(f"Your {exercise_id} does not pass its checks yet, so the course's reference is used below.")
    return EXERCISES[exercise_id].reference


# The exercise descriptions register themselves on import.
from . import checks  # noqa: E402,F401
