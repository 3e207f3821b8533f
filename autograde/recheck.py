"""Integrity re-check, run inside the sandbox as a plain script: `python recheck.py NOTEBOOK IDS OUT`.

It defines the student's functions again in a fresh interpreter, from the submitted notebook's
definitions only (imports, functions, classes and simple constants; no other top-level code, so
no monkeypatching, transformer or hook a cell installs), calls each exercise on the grader's
cases (the same deterministic inputs as the test cells, hidden ones included) and saves the raw
results with `torch.save`. The trusted grader loads them with `weights_only=True` and compares
them with the references itself; nothing this process says about right or wrong is believed (for
exercises with a collect/judge pair it returns what `collect` gathered, and the grader judges it).
"""
import ast
import json
import sys

SIMPLE_VALUES = (ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.BinOp, ast.UnaryOp, ast.keyword,
                 ast.Load, ast.operator, ast.unaryop, ast.Dict, ast.Set)


def definitions(source):
    """The top-level statements of a cell that only define things."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    kept = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kept.append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if value is not None and all(isinstance(t, ast.Name) for t in targets) and \
                    all(isinstance(n, SIMPLE_VALUES) for n in ast.walk(value)):
                kept.append(node)
    return ast.Module(body=kept, type_ignores=[])


def plain(value):
    """Results reduced to what torch.load(weights_only=True) accepts; anything else becomes a marker."""
    import torch
    if isinstance(value, torch.Tensor):
        return value.detach().clone() if type(value) is torch.Tensor else "<unsupported tensor subclass>"
    if type(value) in (int, float, bool, str) or value is None:
        return value
    if type(value) in (tuple, list):
        return tuple(plain(v) for v in value) if type(value) is tuple else [plain(v) for v in value]
    if type(value) is dict:
        return {str(k): plain(v) for k, v in value.items()}
    return f"<unsupported {type(value).__name__}>"


def main(notebook_path, exercise_ids, out_path):
    import torch
    from course_utils import grading
    from course_utils.reference import ForbiddenCallError

    with open(notebook_path) as f:
        nb = json.load(f)
    namespace = {"__name__": "__main__"}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or (meta.get("grade") and not meta.get("solution")):
            continue  # test cells are the grader's, not the student's
        source = "".join(cell.get("source", "")) if isinstance(cell.get("source"), list) else cell.get("source", "")
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        module = definitions("\n".join(lines))
        if module is None:
            continue
        try:
            exec(compile(module, "<student cell>", "exec"), namespace)
        except Exception:
            pass
    results = {}
    for exercise_id in exercise_ids:
        exercise = grading.EXERCISES[exercise_id]
        fn = namespace.get(exercise_id)
        for part in exercise.parts:
            outputs = []
            for hidden in (False, True):
                for name, args in grading._cases(exercise, part, hidden, 0):
                    outputs.append(call(exercise, fn, name, args, grading, ForbiddenCallError))
            results[f"{exercise_id}/{part}"] = outputs
    torch.save(results, out_path)


def call(exercise, fn, name, args, grading, ForbiddenCallError):
    """One case: ("ok", result) or ("error", message)."""
    if not callable(fn):
        return ("error", "the function is not defined")
    try:
        if exercise.collect:
            def guarded(*call_args):
                with grading.forbidden_calls(exercise):
                    return fn(*call_args)
            return ("ok", plain(exercise.collect(guarded, grading._clone(args))))
        with grading.forbidden_calls(exercise):
            return ("ok", plain(fn(*grading._clone(args))))
    except ForbiddenCallError as error:
        return ("error", f"case '{name}': {error}")
    except BaseException as error:  # noqa: B902 - anything the student's code raises, SystemExit included
        return ("error", f"case '{name}': {type(error).__name__}: {error}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), sys.argv[3])
