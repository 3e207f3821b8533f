"""Every notebook runs, validates, is released without drift, and grades right end to end."""
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.validator import Validator
from traitlets.config import Config

from notebook_tools import (COURSE, NOTEBOOK_IDS, ROOT, answer_cells, canonical, generate_release, grade_cells,
                            read, release_path, solution_path)

SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


def run_nbval(path, lax):
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax" if lax else "--nbval",
               "--nbval-sanitize-with", str(SANITIZE), "--nbval-cell-timeout=600", str(path)]
    result = subprocess.run(command, cwd=path.parent, capture_output=True, text=True)
    assert result.returncode == 0, f"nbval {'lax' if lax else 'strict'} failed on {path.name}:\n{result.stdout[-6000:]}"


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_solution_runs_with_committed_outputs(nb_id):
    """nbval strict: the solution runs top to bottom and reproduces its committed outputs."""
    run_nbval(solution_path(nb_id), lax=False)


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_untouched_student_notebook_runs(nb_id):
    """nbval lax: the released notebook runs top to bottom; only its test cells may raise."""
    nb = read(release_path(nb_id))
    for cell in nb.cells:
        if cell.cell_type == "code" and "raises-exception" in cell.metadata.get("tags", []):
            assert cell in grade_cells(nb), "only autograded test cells may be marked as expected to raise"
    run_nbval(release_path(nb_id), lax=True)


def validator(invert):
    config = Config()
    config.Validator.invert = invert
    config.Execute.timeout = 120
    return Validator(config=config)


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_solution_passes_every_graded_test(nb_id):
    results = validator(invert=False).validate(str(solution_path(nb_id)))
    assert results == {}, results


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_release_fails_every_graded_test(nb_id):
    results = validator(invert=True).validate(str(release_path(nb_id)))
    assert results == {}, f"graded cells that pass without any work: {results}"
    assert grade_cells(read(release_path(nb_id))), "the notebook has no autograded tests"


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_release_has_no_solutions_or_hidden_tests(nb_id):
    text = release_path(nb_id).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"):
        assert marker not in text


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_release_matches_solutions(nb_id, tmp_path):
    """Regenerating the student notebook gives exactly the committed one (run `make release` if not)."""
    fresh = generate_release(nb_id, tmp_path / "release", tmp_path / "gradebook.db")
    assert canonical(fresh) == canonical(release_path(nb_id)), \
        f"notebooks/{nb_id} is out of date with solutions/{nb_id}: run `make release`"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Autograde, with nbgrader, three generated submissions of every notebook; return the gradebook scores."""
    root = tmp_path_factory.mktemp("course")
    db = root / "gradebook.db"
    scores = {}
    for nb_id in NOTEBOOK_IDS:
        shutil.copytree(ROOT / "solutions" / nb_id, root / "source" / nb_id)
        released = generate_release(nb_id, root / "release", db)
        release, solution = read(released), read(solution_path(nb_id))
        answers = answer_cells(solution)
        submissions = {"perfect": solution, "untouched": release}
        wrong_id = next(iter(answers))
        broken = read(released)
        for cell in broken.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id].source
                if grade_id == wrong_id:  # an answer that runs but computes something else
                    cell.source = cell.source.replace("### BEGIN SOLUTION", "### BEGIN SOLUTION\n    return None")
        submissions["one_wrong"] = broken
        for student, nb in submissions.items():
            folder = root / "submitted" / student / nb_id
            folder.mkdir(parents=True)
            nbformat.write(nb, str(folder / f"{nb_id}.ipynb"))
        result = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", nb_id, "--create", "--force",
                                 f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url=sqlite:///{db}",
                                 f"--CourseDirectory.source_directory={root / 'source'}",
                                 f"--CourseDirectory.release_directory={root / 'release'}"],
                                cwd=COURSE, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        with Gradebook(f"sqlite:///{db}") as gb:
            for student in submissions:
                sub = gb.find_submission_notebook(nb_id, nb_id, student)
                scores[nb_id, student] = {grade.name: (grade.score, grade.max_score) for grade in sub.grades
                                          if grade.cell.cell_type == "code"}
        scores[nb_id, "wrong_id"] = wrong_id
    return scores


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_autograde_perfect_submission_gets_full_marks(graded, nb_id):
    grades = graded[nb_id, "perfect"]
    assert grades and all(score == max_score for score, max_score in grades.values()), grades


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_autograde_untouched_submission_gets_zero(graded, nb_id):
    grades = graded[nb_id, "untouched"]
    assert grades and all(score == 0 for score, _ in grades.values()), grades


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_autograde_one_wrong_exercise_loses_exactly_its_points(graded, nb_id):
    wrong_id = graded[nb_id, "wrong_id"]
    for name, (score, max_score) in graded[nb_id, "one_wrong"].items():
        exercise = name.removeprefix("test_").split("__")[0]
        assert score == (0 if exercise == wrong_id else max_score), (name, score, max_score)
