"""Grade a class: every student's notebooks, in parallel, resumable, with CSVs, feedback and a report.

RESULTS/
  grades.csv           one row per student x notebook x graded cell
  summary.csv          one row per student x notebook: score, max_score, status counts
  report.md            every problem found (missing, malformed, timeouts, integrity, repairs)
  feedback/<student>/<notebook>.html
  state/<student>/<notebook>.json   one finished job each (written atomically: the resume points)
"""
import concurrent.futures
import csv
import hashlib
import io
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile

import nbformat

from . import job as jobs
from . import sandbox

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRADER_VERSION = "1"
FIELDS = ["student", "notebook", "grade_id", "score", "max_score", "status"]
STUDENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
FIRST_UID = 61000


def notebook_ids():
    folder = os.path.join(REPO, "solutions")
    return sorted(n for n in os.listdir(folder) if os.path.exists(os.path.join(folder, n, f"{n}.ipynb")))


def fingerprint():
    """Changes whenever the solutions, the checks or the grader change: finished jobs are then redone."""
    h = hashlib.sha256(GRADER_VERSION.encode())
    for folder in ("solutions", "course_utils", "autograde"):
        for base, dirs, files in sorted(os.walk(os.path.join(REPO, folder))):
            dirs.sort()
            for name in sorted(files):
                if name.endswith((".py", ".ipynb")):
                    with open(os.path.join(base, name), "rb") as f:
                        h.update(name.encode() + f.read())
    return h.hexdigest()[:16]


def prepare_courses(work):
    """Release every notebook into a template gradebook (nbgrader generate_assignment), once per batch."""
    courses = {}
    db = os.path.join(work, "template.db")
    for nb_id in notebook_ids():
        result = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", nb_id, "--force",
                                 f"--CourseDirectory.release_directory={work}/release",
                                 f"--CourseDirectory.db_url=sqlite:///{db}", "--log-level=ERROR"],
                                cwd=os.path.join(REPO, "autograde"), capture_output=True, text=True,
                                env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                                         + os.environ.get("PATH", "")))
        if result.returncode != 0:
            raise RuntimeError(f"could not release {nb_id}:\n{result.stdout}\n{result.stderr}")
        release = nbformat.read(os.path.join(work, "release", nb_id, f"{nb_id}.ipynb"), as_version=4)
        solution = nbformat.read(os.path.join(REPO, "solutions", nb_id, f"{nb_id}.ipynb"), as_version=4)
        known_tests = {c.source for c in release.cells + solution.cells
                       if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}
        cells, exercises = [], []
        for cell in release.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                cells.append((meta["grade_id"], meta["points"], "test" if cell.cell_type == "code" and
                              not meta.get("solution") else "manual"))
            elif meta.get("solution") and cell.cell_type == "code":
                exercises.append(meta["grade_id"])
        courses[nb_id] = jobs.Course(nb_id, release, db, exercises, cells, known_tests)
    return courses


def unpack(submissions, work):
    """A folder of submissions, extracting a .zip safely (no paths outside, no links, bounded size)."""
    if os.path.isdir(submissions):
        return submissions
    if not zipfile.is_zipfile(submissions):
        raise SystemExit(f"{submissions} is neither a folder nor a .zip file")
    target = os.path.join(work, "submissions")
    shutil.rmtree(target, ignore_errors=True)
    total = 0
    with zipfile.ZipFile(submissions) as archive:
        for info in archive.infolist():
            parts = info.filename.replace("\\", "/").split("/")
            if info.is_dir() or not info.filename.endswith(".ipynb") or ".." in parts or info.filename.startswith("/"):
                continue
            total += info.file_size
            if info.file_size > jobs.MAX_NOTEBOOK_BYTES or total > 2 * 1024 ** 3:
                continue
            parts = [p for p in parts if p][-2:]  # <student>/<notebook>.ipynb, ignoring a top folder
            if len(parts) != 2:
                continue
            os.makedirs(os.path.join(target, parts[0]), exist_ok=True)
            with archive.open(info) as src, open(os.path.join(target, *parts), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return target


def find_submissions(folder, nb_ids):
    """{student: {nb_id: path}} plus notes on everything that is not a notebook of the course."""
    found, notes = {}, []
    for student in sorted(os.listdir(folder)):
        path = os.path.join(folder, student)
        if not os.path.isdir(path) or os.path.islink(path):
            notes.append(f"ignored `{student}`: not a student folder")
            continue
        if not STUDENT_NAME.match(student):
            notes.append(f"ignored folder `{student[:60]}`: student names use letters, digits and _.@+- only")
            continue
        found[student] = {}
        for name in sorted(os.listdir(path)):
            file = os.path.join(path, name)
            nb_id = name[:-len(".ipynb")] if name.endswith(".ipynb") else None
            if nb_id in nb_ids and os.path.isfile(file) and not os.path.islink(file):
                found[student][nb_id] = file
            else:
                notes.append(f"{student}: ignored `{name}` (the notebooks are named {', '.join(nb_ids)} + .ipynb)")
    return found, notes


def write_atomic(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Progress:
    """One line on stdout, redrawn as jobs finish."""

    def __init__(self, total, stream=sys.stdout):
        self.total, self.done, self.stream, self.lock = total, 0, stream, threading.Lock()
        self.draw("")

    def draw(self, last):
        width = 30
        filled = width * self.done // max(self.total, 1)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {last[:40]:<40}")
        self.stream.flush()

    def step(self, label):
        with self.lock:
            self.done += 1
            self.draw(label)
            if self.done == self.total:
                self.stream.write("\n")


def grade_class(submissions, out, workers=1, settings=None):
    """Grade everything under `submissions` into `out`; return the rows. Finished jobs are not redone."""
    settings = settings or jobs.Settings()
    out = os.path.abspath(out)
    work = os.path.join(out, ".work")
    shutil.rmtree(work, ignore_errors=True)  # leftovers of an interrupted run
    os.makedirs(work)
    os.chmod(work, 0o711)
    stamp = fingerprint()
    if not settings.unsafe:
        sandbox.self_test(work, FIRST_UID, settings.limits)
    courses = prepare_courses(work)
    folder = unpack(submissions, work)
    students, notes = find_submissions(folder, list(courses))
    todo, states = [], {}
    for student in students:
        for nb_id in courses:
            submission = students[student].get(nb_id)
            key = (jobs.digest(submission) if submission else "missing") + stamp
            state_path = os.path.join(out, "state", student, f"{nb_id}.json")
            state = read_state(state_path)
            if state and state.get("key") == key:
                states[student, nb_id] = state
            else:
                todo.append((student, nb_id, submission, key, state_path))

    slots = queue.Queue()
    for i in range(max(1, workers)):
        slots.put(FIRST_UID + i)
    progress = Progress(len(todo))
    raise_later = []

    def run(item):
        student, nb_id, submission, key, state_path = item
        uid = slots.get()
        job_dir = os.path.join(work, "jobs", f"{os.getpid()}-{uid}")
        try:
            try:
                rows, job_notes, feedback = jobs.grade(student, courses[nb_id], submission, job_dir, uid, settings)
            except Exception as error:  # a bug of ours: report it and keep the batch going
                rows = jobs.rows_for(student, courses[nb_id], "failed", detail="grader error")
                job_notes, feedback = [f"grader error: {type(error).__name__}: {error}"], None
                raise_later.append(error)
            if feedback:
                target = os.path.join(out, "feedback", student, f"{nb_id}.html")
                with open(feedback, encoding="utf-8") as f:
                    write_atomic(target, f.read())
            state = {"key": key, "rows": rows, "notes": job_notes}
            write_atomic(state_path, json.dumps(state, indent=1))  # the job counts as done from here on
            states[student, nb_id] = state
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
            slots.put(uid)
            progress.step(f"{student}/{nb_id}")

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(run, todo))
    rows = [row for student in students for nb_id in courses for row in states[student, nb_id]["rows"]]
    write_outputs(out, students, courses, states, notes)
    shutil.rmtree(work, ignore_errors=True)
    if raise_later:
        raise raise_later[0]
    return rows


def read_state(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_outputs(out, students, courses, states, notes):
    grades = io.StringIO()
    writer = csv.DictWriter(grades, FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    summary = io.StringIO()
    totals = csv.writer(summary, lineterminator="\n")
    totals.writerow(["student", "notebook", "score", "max_score", "status"])
    report = ["# Grading report", ""]
    for student in students:
        for nb_id in courses:
            state = states[student, nb_id]
            writer.writerows(state["rows"])
            auto = [r for r in state["rows"] if r["score"] != ""]  # written answers are graded by hand
            score = sum(float(r["score"] or 0) for r in auto)
            statuses = sorted({r["status"] for r in state["rows"]} - {"manual"}) or ["manual"]
            totals.writerow([student, nb_id, f"{score:g}", f"{sum(r['max_score'] for r in auto):g}",
                             "+".join(statuses)])
            for note in state["notes"]:
                report.append(f"- **{student} / {nb_id}**: {note}")
    report += [f"- {note}" for note in notes]
    if len(report) == 2:
        report.append("No problems found.")
    write_atomic(os.path.join(out, "grades.csv"), grades.getvalue())
    write_atomic(os.path.join(out, "summary.csv"), summary.getvalue())
    write_atomic(os.path.join(out, "report.md"), "\n".join(report) + "\n")


def class_table(out):
    """The class at a glance: one line per student, one column per notebook (score/max)."""
    with open(os.path.join(out, "summary.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    notebooks = sorted({r["notebook"] for r in rows})
    students = sorted({r["student"] for r in rows})
    cell = {(r["student"], r["notebook"]): r for r in rows}
    width = max([len(s) for s in students] + [7])
    lines = ["student".ljust(width) + "".join(f"  {nb[:18]:>18}" for nb in notebooks)]
    for student in students:
        parts = []
        for nb in notebooks:
            r = cell[student, nb]
            problems = set(r["status"].split("+")) & {"timeout", "malformed", "missing", "integrity"}
            flag = f" {'+'.join(sorted(problems))}" if problems else ""
            parts.append(f"  {(r['score'] + '/' + r['max_score'] + flag)[:18]:>18}")
        lines.append(student.ljust(width) + "".join(parts))
    return "\n".join(lines)
