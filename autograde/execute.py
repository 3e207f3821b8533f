"""`make execute`: run every solution notebook top to bottom and save its outputs (what nbval compares).

Cells keep no execution timestamps, so re-running a notebook changes only what it shows.
"""
import os
import sys
import tempfile

import nbformat
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def execute(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    home = tempfile.mkdtemp(prefix="course-execute-home-")
    os.environ.update(HOME=home, MPLCONFIGDIR=os.path.join(home, "matplotlib"))
    NotebookClient(nb, timeout=600, record_timing=False,
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    nbformat.write(nb, path)


def main(names):
    folder = os.path.join(REPO, "solutions")
    for name in names or sorted(os.listdir(folder)):
        path = os.path.join(folder, name, f"{name}.ipynb")
        if os.path.exists(path):
            print(f"executing {name} ...", flush=True)
            execute(path)


if __name__ == "__main__":
    main(sys.argv[1:])
