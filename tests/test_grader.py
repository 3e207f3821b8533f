"""The instructor's grader: sandboxed, parallel, tamper-proof, resumable (`python -m autograde grade`)."""
import csv
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from autograde import demo, sandbox
from notebook_tools import ROOT

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is not installed (apt-get install "
                                                                 "bubblewrap); the sandboxed grader cannot run")
if os.environ.get("CI") == "true" and not sandbox.available():
    pytest.fail("bubblewrap is missing (.ci/run installs it)", pytrace=False)

TIMEOUT = "150"  # seconds per whole notebook in these tests (two jobs share the machine's two cores)
HONEST = ["solution", "untouched", "partial"]


def grade(submissions, out, *extra, check=True):
    result = subprocess.run([sys.executable, "-m", "autograde", "grade", str(submissions), "--out", str(out),
                             "--workers", "2", "--timeout", TIMEOUT, "--cell-timeout", "20", *extra],
                            cwd=ROOT, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def read_grades(out):
    with open(out / "grades.csv") as f:
        return list(csv.DictReader(f))


def by_student(rows):
    table = {}
    for row in rows:
        table.setdefault(row["student"], []).append(row)
    return table


def gradebook_state():
    """The course's own gradebook (if any) and solutions, which no submission may change."""
    paths = sorted(ROOT.glob("autograde/*.db")) + sorted(ROOT.glob("solutions/**/*.ipynb"))
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def honest_run(tmp_path_factory):
    """The honest students graded alone: the baseline other runs must reproduce exactly."""
    tmp = tmp_path_factory.mktemp("honest")
    demo.build(tmp / "subs", HONEST)
    grade(tmp / "subs", tmp / "out")
    return by_student(read_grades(tmp / "out"))


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    """The whole demo class, hostile students included, submitted as a .zip."""
    tmp = tmp_path_factory.mktemp("class")
    before = gradebook_state()
    outcomes = demo.build(tmp / "subs")
    with zipfile.ZipFile(tmp / "class.zip", "w") as archive:
        for path in sorted((tmp / "subs").rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(tmp / "subs"))
    started = time.time()
    result = grade(tmp / "class.zip", tmp / "out")
    return {"rows": by_student(read_grades(tmp / "out")), "outcomes": outcomes, "out": tmp / "out",
            "stdout": result.stdout, "before": before, "seconds": time.time() - started}


def autograded(rows):
    return [r for r in rows if r["status"] != "manual" and r["notebook"] == demo.NB]


def test_csv_layout(class_run):
    out = class_run["out"]
    with open(out / "grades.csv") as f:
        assert next(csv.reader(f)) == ["student", "notebook", "grade_id", "score", "max_score", "status"]
    with open(out / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    notebooks = {p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").exists()}
    assert {(r["student"], r["notebook"]) for r in summary} == {(s, n) for s in class_run["outcomes"]
                                                               for n in notebooks}
    assert "student" in class_run["stdout"] and "solution" in class_run["stdout"]  # the class table
    assert (out / "report.md").read_text().count("\n") > 3


@pytest.mark.parametrize("student", sorted(demo.students()))
def test_each_student_gets_the_expected_outcome(class_run, student):
    rows = class_run["rows"][student]
    outcome = class_run["outcomes"][student]
    # the honest students hand in the whole series, the others notebook 01 only
    graded = [r for r in rows if r["status"] != "manual"] if student in ("solution", "untouched") \
        else autograded(rows)
    assert graded, rows
    target = [r for r in graded if r["grade_id"].startswith(f"test_{demo.TARGET}__")]
    others = [r for r in graded if r not in target]
    full = lambda rs: all(float(r["score"]) == float(r["max_score"]) and r["status"] == "ok" for r in rs)  # noqa
    if outcome == "full":
        assert full(graded), graded
    elif outcome == "target0":
        assert target and all(float(r["score"]) == 0 and r["status"] in ("failed", "integrity") for r in target), \
            target
        assert full(others), others
    elif outcome == "zero":
        assert all(float(r["score"]) == 0 and r["status"] == "failed" for r in graded), graded
    elif outcome == "partial":
        assert any(r["status"] == "ok" for r in graded) and any(r["status"] == "failed" for r in graded)
    else:
        assert all(r["status"] == outcome and float(r["score"] or 0) == 0 for r in graded), graded
    manual = [r for r in rows if r["status"] == "manual"]
    assert all(r["score"] == "" for r in manual)


def test_tampering_is_flagged_as_integrity(class_run):
    for student in ("patches_allclose", "input_transformer", "hides_tracebacks", "detects_grader"):
        statuses = {r["status"] for r in autograded(class_run["rows"][student])
                    if r["grade_id"].startswith(f"test_{demo.TARGET}__")}
        assert statuses <= {"integrity", "failed"} and statuses, (student, statuses)
    assert any(r["status"] == "integrity" for s in ("input_transformer", "hides_tracebacks")
               for r in class_run["rows"][s])


def test_other_students_are_unaffected_by_hostile_ones(class_run, honest_run):
    for student in HONEST:
        assert class_run["rows"][student] == honest_run[student], student


def test_nothing_outside_the_sandbox_changed(class_run):
    assert gradebook_state() == class_run["before"]
    assert not list(ROOT.glob("**/tampered*"))


def test_feedback_has_no_hidden_tests_and_no_leaks(class_run):
    feedback = class_run["out"] / "feedback"
    pages = list(feedback.rglob("*.html"))
    graded = [s for s, outcome in class_run["outcomes"].items() if outcome in ("full", "target0", "partial")]
    assert {p.parent.name for p in pages} >= set(graded) | {"untouched"}
    for page in pages:
        text = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "hidden=True" not in text, page
        assert "SECRETS-FOUND" not in text and "NETWORK-REACHED" not in text, page
    assert (feedback / "solution" / f"{demo.NB}.html").exists()


def test_report_names_every_problem(class_run):
    report = (class_run["out"] / "report.md").read_text()
    for expected in ("malformed_json", "wrong_name", "deleted_tests", "edited_tests", "duplicate_ids",
                     "shadow_modules", "infinite_loop", "input_transformer"):
        assert expected in report, expected


def test_rerun_is_idempotent_and_fast(class_run, tmp_path):
    out = class_run["out"]
    before = (out / "grades.csv").read_text()
    result = grade(class_run["out"].parent / "class.zip", out)
    assert (out / "grades.csv").read_text() == before
    assert "0/0" in result.stdout, "finished jobs should not be graded again"


def test_kill_and_resume_loses_and_duplicates_nothing(honest_run, tmp_path):
    demo.build(tmp_path / "subs", HONEST)
    command = [sys.executable, "-m", "autograde", "grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"),
               "--workers", "2", "--timeout", TIMEOUT]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    state = tmp_path / "out" / "state"
    deadline = time.time() + 400
    while not (state.exists() and any(state.rglob("*.json"))) and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9 the grader and everything it started
    process.wait()
    grade(tmp_path / "subs", tmp_path / "out")
    rows = read_grades(tmp_path / "out")
    keys = [(r["student"], r["notebook"], r["grade_id"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert by_student(rows) == honest_run


def test_refuses_without_bubblewrap(tmp_path, monkeypatch):
    from autograde import __main__ as cli
    monkeypatch.setattr(sandbox, "available", lambda: False)
    assert cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "out")]) == 2


def test_a_broken_sandbox_stops_the_grader_instead_of_failing_every_student(tmp_path, monkeypatch, capsys):
    from autograde import __main__ as cli
    monkeypatch.setattr(sandbox, "command", lambda argv, *a, **k: [sys.executable, "-c", "raise SystemExit(1)"])
    demo.build(tmp_path / "subs", ["solution"])
    assert cli.main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out")]) == 3
    assert "sandbox does not work" in capsys.readouterr().err
    assert not (tmp_path / "out" / "grades.csv").exists()
