"""Grade one student's notebook: nbgrader autograde with a sandboxed kernel, an independent re-check,
feedback without hidden tests, and one result record written atomically."""
import copy
import ctypes
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import nbformat

from . import sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_NOTEBOOK_BYTES = 20 * 1024 ** 2


@dataclasses.dataclass
class Settings:
    timeout: int = 300          # wall-clock seconds for the whole notebook (and again for the re-check)
    cell_timeout: int = 120     # seconds for one cell
    limits: sandbox.Limits = dataclasses.field(default_factory=sandbox.Limits)
    unsafe: bool = False        # run student code without the sandbox (instructor's explicit choice)


@dataclasses.dataclass
class Course:
    """What the grader knows about one released notebook (built once per batch by batch.prepare_course)."""
    nb_id: str
    release: dict               # the released notebook (nbformat node)
    gradebook: str              # a template gradebook holding this assignment
    exercises: list             # exercise ids answered in this notebook
    grade_cells: list           # [(grade_id, points, kind)] kind: "test" or "manual"
    known_tests: set = dataclasses.field(default_factory=set)  # test cell sources as released or as solved


def rows_for(student, course, status, score=None, detail=""):
    """Every graded cell of a notebook with one status (missing, malformed, timeout)."""
    return [{"student": student, "notebook": course.nb_id, "grade_id": gid,
             "score": "" if kind == "manual" else (0 if score is None else score), "max_score": points,
             "status": "manual" if kind == "manual" and status not in ("missing", "malformed") else status,
             "detail": detail}
            for gid, points, kind in course.grade_cells]


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading and repairing a submission


def load_submission(path, course, notes):
    """The submitted notebook, repaired where that is safe, or raise ValueError saying why it is unusable."""
    if os.path.getsize(path) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES // 1024 ** 2} MB")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        ids = [cell.get("id") for cell in raw.get("cells", []) if isinstance(cell, dict) and "id" in cell]
        if len(set(ids)) != len(ids):  # nbformat would renumber them silently: say so
            notes.append("duplicated cell ids were renumbered")
            for i, cell in enumerate(raw["cells"]):
                cell["id"] = f"cell-{i}"
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as error:  # invalid JSON, not a notebook, wrong format
        raise ValueError(f"not a readable notebook ({type(error).__name__}: {str(error)[:200]})") from None
    try:
        nbformat.validate(nb)
    except Exception as error:
        raise ValueError(f"not a valid notebook ({str(error).splitlines()[0][:200]})") from None

    def meta(cell):
        return cell.get("metadata", {}).get("nbgrader", {})

    submitted = {meta(c).get("grade_id"): i for i, c in enumerate(nb.cells) if meta(c).get("grade_id")}
    if not any(gid in submitted for gid in course.exercises):
        raise ValueError(f"it contains none of the exercises of {course.nb_id}: is it another notebook?")
    # Test cells come from the release: deleted ones are put back after their answer, edited ones restored.
    for position, cell in enumerate(course.release.cells):
        gid = meta(cell).get("grade_id")
        if not gid or not (meta(cell).get("grade") and not meta(cell).get("solution")):
            continue
        if gid in submitted:
            mine = nb.cells[submitted[gid]]
            if mine.source not in course.known_tests | {cell.source} or mine.cell_type != cell.cell_type:
                notes.append(f"test cell {gid} was edited; the original was restored")
                nb.cells[submitted[gid]] = copy.deepcopy(cell)
            continue
        notes.append(f"test cell {gid} was missing; it was put back")
        before = [meta(c).get("grade_id") for c in course.release.cells[:position]]
        anchor = max((i for i, c in enumerate(nb.cells) if meta(c).get("grade_id") in before), default=-1)
        nb.cells.insert(anchor + 1, copy.deepcopy(cell))
        submitted = {meta(c).get("grade_id"): i for i, c in enumerate(nb.cells) if meta(c).get("grade_id")}
    nb.metadata["kernelspec"] = copy.deepcopy(course.release.metadata.get("kernelspec", {}))
    return nb


# ---------------------------------------------------------------------------------------------
# Running nbgrader and the re-check


def _die_with_grader():
    """In the child: be killed when the grader dies (even by kill -9), so no orphan keeps grading."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_limited(argv, timeout, cwd, env):
    """Run a trusted helper process in its own process group; kill the group at the deadline."""
    started = time.monotonic()
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True, preexec_fn=_die_with_grader) as process:
        try:
            out, _ = process.communicate(timeout=timeout)
            return process.returncode, out.decode(errors="replace")[-20000:], False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
            return None, out.decode(errors="replace")[-20000:], time.monotonic() - started >= timeout


def grader_env(box, uid, settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "JPY_"))}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(AUTOGRADE_BOX=box, AUTOGRADE_UID=str(uid), JUPYTER_RUNTIME_DIR=box,
               AUTOGRADE_LIMITS=",".join(str(v) for v in dataclasses.astuple(settings.limits)))
    return env


def run_nbgrader(course, student, job_dir, box, uid, settings):
    root = os.path.join(job_dir, "course")
    manager = "UnsafeKernelManager" if settings.unsafe else "SandboxKernelManager"
    argv = [sys.executable, "-m", "nbgrader", "autograde", course.nb_id, f"--student={student}", "--create",
            "--force", f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url=sqlite:///{root}/gradebook.db",
            f"--CourseDirectory.source_directory={root}/source",
            f"--CourseDirectory.release_directory={root}/release",
            f"--Execute.kernel_manager_class=autograde.sandbox.{manager}", f"--Execute.timeout={settings.cell_timeout}",
            "--Execute.interrupt_on_timeout=True", "--LimitOutput.max_lines=500", "--LimitOutput.max_length=20000"]
    return run_limited(argv, settings.timeout, HERE, grader_env(box, uid, settings))


def run_recheck(course, nb_path, box, uid, settings):
    """The integrity re-check in a fresh sandboxed interpreter; returns its raw results or None."""
    script = os.path.join(box, "recheck.py")
    shutil.copy(os.path.join(HERE, "recheck.py"), script)
    notebook = os.path.join(box, "submission.ipynb")
    shutil.copy(nb_path, notebook)
    out = os.path.join(box, "recheck.pt")
    argv = [sys.executable, script, notebook, ",".join(course.exercises), out]
    env = {"NBGRADER_EXECUTION": "autograde"}
    for path in (script, notebook):
        os.chown(path, uid, uid)
    if settings.unsafe:
        full_env = dict(os.environ, **env, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
        code, log, timed_out = run_limited(argv, settings.timeout, box, full_env)
    else:
        code, log, timed_out = run_limited(sandbox.command(argv, box, uid, settings.limits, env), settings.timeout,
                                           box, os.environ.copy())
    if code != 0 or not os.path.exists(out):
        return None, ("the re-check timed out" if timed_out else f"the re-check did not finish: {log[-300:]}")
    import torch
    try:
        return torch.load(out, weights_only=True), ""
    except Exception as error:
        return None, f"the re-check's results could not be read safely ({type(error).__name__})"


def recheck_verdicts(course, results):
    """{(exercise, part): None when every case matches the reference, else a message}, compared here."""
    from course_utils import grading
    verdicts = {}
    for exercise_id in course.exercises:
        exercise = grading.EXERCISES[exercise_id]
        for part in exercise.parts:
            outcome = None if results is None else results.get(f"{exercise_id}/{part}")
            cases = [case for hidden in (False, True) for case in grading._cases(exercise, part, hidden, 0)]
            if not isinstance(outcome, (list, tuple)) or len(outcome) != len(cases):
                verdicts[exercise_id, part] = "the re-check returned no usable result"
                continue
            problem = None
            for (name, args), answer in zip(cases, outcome):
                kind, value = (answer + (None, None))[:2] if isinstance(answer, tuple) else ("error", "bad record")
                if kind == "ok":
                    try:
                        message = grading.judge(exercise, args, value) if exercise.collect else \
                            grading.compare(exercise.reference(*grading._clone(args)), value,
                                            tolerance=exercise.tolerance)
                    except Exception as error:  # collected data of the wrong kind
                        message = f"the result could not be judged ({type(error).__name__}: {error})"
                    problem = message and f"case '{name}': {message}"
                else:
                    problem = str(value)
                if problem:
                    break
            verdicts[exercise_id, part] = problem
    return verdicts


# ---------------------------------------------------------------------------------------------
# Feedback without hidden tests


def hide_tests(autograded_path, course):
    """Replace test cells' source with the released one and drop their tracebacks, in place."""
    nb = nbformat.read(autograded_path, as_version=4)
    released = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in course.release.cells}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.source = released[meta["grade_id"]].source
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
    nbformat.write(nb, autograded_path)


def generate_feedback(course, student, job_dir, box, uid, settings, overrides):
    """Apply the re-check's verdicts in the job's gradebook, then nbgrader generate_feedback."""
    from nbgrader.api import Gradebook
    root = os.path.join(job_dir, "course")
    with Gradebook(f"sqlite:///{root}/gradebook.db") as gb:
        for grade_id, score in overrides.items():
            grade = gb.find_grade(grade_id, course.nb_id, course.nb_id, student)
            grade.manual_score = score
        gb.db.commit()
    argv = [sys.executable, "-m", "nbgrader", "generate_feedback", course.nb_id, f"--student={student}", "--force",
            f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url=sqlite:///{root}/gradebook.db"]
    code, log, _ = run_limited(argv, 120, HERE, grader_env(box, uid, settings))
    html = os.path.join(root, "feedback", student, course.nb_id, f"{course.nb_id}.html")
    return html if code == 0 and os.path.exists(html) else None


# ---------------------------------------------------------------------------------------------
# One job


def grade(student, course, submission, job_dir, uid, settings):
    """Grade one submission; return (rows, notes, feedback_html_path or None). Never raises for bad input."""
    notes = []
    if submission is None:
        return rows_for(student, course, "missing"), ["no submission"], None
    try:
        nb = load_submission(submission, course, notes)
    except ValueError as error:
        return rows_for(student, course, "malformed", detail=str(error)), [f"malformed: {error}"], None

    shutil.rmtree(job_dir, ignore_errors=True)
    root = os.path.join(job_dir, "course")
    folder = os.path.join(root, "submitted", student, course.nb_id)
    os.makedirs(folder)
    nb_path = os.path.join(folder, f"{course.nb_id}.ipynb")
    nbformat.write(nb, nb_path)
    shutil.copy(course.gradebook, os.path.join(root, "gradebook.db"))
    box = os.path.join(job_dir, "box")
    if settings.unsafe:
        os.makedirs(box)
    else:
        sandbox.prepare_box(box, uid)

    code, log, timed_out = run_nbgrader(course, student, job_dir, box, uid, settings)
    if timed_out or code is None:
        return (rows_for(student, course, "timeout", detail=f"the notebook ran over {settings.timeout} s"),
                notes + [f"timeout: the notebook did not finish within {settings.timeout} s"], None)
    scores = read_scores(root, course, student)
    if scores is None:
        return (rows_for(student, course, "failed", detail="nbgrader could not grade the notebook"),
                notes + ["nbgrader could not grade the notebook: " + log[-500:]], None)
    cell_timeouts = "CellTimeoutError" in log or "timed out" in log
    if "DeadKernelError" in log or "Kernel died" in log:
        notes.append("the kernel died while the notebook ran (os._exit, a crash or the memory limit); "
                     "the cells after that point could not run")

    shutil.rmtree(box, ignore_errors=True)
    sandbox.prepare_box(box, uid) if not settings.unsafe else os.makedirs(box)
    results, recheck_problem = run_recheck(course, nb_path, box, uid, settings)
    verdicts = recheck_verdicts(course, results)

    rows, overrides = [], {}
    for grade_id, points, kind in course.grade_cells:
        score = scores.get(grade_id, 0.0)
        row = {"student": student, "notebook": course.nb_id, "grade_id": grade_id, "max_score": points}
        if kind == "manual":
            rows.append(dict(row, score="", status="manual", detail=""))
            continue
        exercise, _, part = grade_id.removeprefix("test_").partition("__")
        verdict = verdicts.get((exercise, part or "basic"), None)
        if score >= points and verdict:
            rows.append(dict(row, score=0, status="integrity",
                             detail=f"the independent re-check disagrees: {verdict}"[:500]))
            overrides[grade_id] = 0
            notes.append(f"integrity: {grade_id}: the test cell passed, but {verdict}"[:600])
        elif score >= points:
            rows.append(dict(row, score=points, status="ok", detail=""))
        else:
            status = "timeout" if cell_timeouts and score == 0 else "failed"
            rows.append(dict(row, score=f"{score:g}", status=status, detail=""))
    if recheck_problem:
        notes.append(recheck_problem)
    autograded = os.path.join(root, "autograded", student, course.nb_id, f"{course.nb_id}.ipynb")
    feedback = None
    if os.path.exists(autograded):
        hide_tests(autograded, course)
        feedback = generate_feedback(course, student, job_dir, box, uid, settings, overrides)
    return rows, notes, feedback


def read_scores(root, course, student):
    """{grade_id: auto score} from the job's gradebook, or None when nbgrader recorded nothing."""
    from nbgrader.api import Gradebook, MissingEntry
    try:
        with Gradebook(f"sqlite:///{root}/gradebook.db") as gb:
            notebook = gb.find_submission_notebook(course.nb_id, course.nb_id, student)
            return {g.name: (g.auto_score or 0.0) for g in notebook.grades}
    except MissingEntry:
        return None
