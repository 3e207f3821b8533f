"""Helpers shared by the notebook tests: where the notebooks are, and how nbgrader is run on them."""
import json
import os
import pathlib
import subprocess
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
RELEASE = ROOT / "notebooks"
COURSE = ROOT / "autograde"
NOTEBOOK_IDS = sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").exists())
NBGRADER = [sys.executable, "-m", "nbgrader"]


def solution_path(nb_id):
    return SOLUTIONS / nb_id / f"{nb_id}.ipynb"


def release_path(nb_id):
    return RELEASE / nb_id / f"{nb_id}.ipynb"


def nbgrader(*args, course_root=None, db=None):
    """Run an nbgrader command with the course's config, optionally on another course root and gradebook."""
    options = []
    if course_root:
        options.append(f"--CourseDirectory.root={course_root}")
    if db:
        options.append(f"--CourseDirectory.db_url=sqlite:///{db}")
    result = subprocess.run(NBGRADER + list(args) + options, cwd=COURSE, capture_output=True, text=True)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def generate_release(nb_id, release_dir, db):
    """Generate the student version of one notebook into `release_dir` (as `make release` does)."""
    nbgrader("generate_assignment", nb_id, "--force", f"--CourseDirectory.release_directory={release_dir}", db=db)
    return pathlib.Path(release_dir) / nb_id / f"{nb_id}.ipynb"


def grade_cells(nb):
    return [cell for cell in nb.cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade")
            and cell.cell_type == "code"]


def answer_cells(nb):
    return {cell.metadata["nbgrader"]["grade_id"]: cell for cell in nb.cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and cell.cell_type == "code"}


def read(path):
    return nbformat.read(str(path), as_version=4)


def canonical(path):
    """A notebook as comparable JSON text."""
    return json.dumps(json.loads(pathlib.Path(path).read_text()), indent=1, sort_keys=True)


def env():
    return dict(os.environ)
