"""A demo class for `make grade-demo` and the grader's tests: honest students and one per hostile kind.

All hostile students work on the first notebook (01_fc_local_conv); their attack targets its
`conv1d` exercise. Each entry: student name -> (files to write, what the grader must make of it).
"""
import json
import os
import shutil
import warnings

import nbformat

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NB = "01_fc_local_conv"
TARGET = "conv1d"
WRONG_CONV1D = '''def conv1d(x, weight, bias=None, padding="same"):
    k = (weight.shape[-1] - 1) // 2
    length = x.shape[-1] if padding == "same" else x.shape[-1] - 2 * k
    return torch.zeros(x.shape[0], weight.shape[0], length, dtype=x.dtype)  # wrong values, right shape
'''

# What the grader must conclude, checked by tests/test_grader.py:
#   "full": every autograded cell ok; "target0": the conv1d test cells score 0, all others ok;
#   "zero": every autograded cell scores 0 (a notebook that kills its kernel cannot be graded);
#   "timeout" / "malformed" / "missing": that status everywhere.
HOSTILE = {
    "reads_secrets": ("full", """
import os
secrets = ("/solutions/", "/submitted/", "/state/", "/feedback/", "gradebook.db", "grades.csv", "/subs/")
found = []
for root in ["/work", "/home", "/root", "/tmp", "/srv", "/var"]:
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("site-packages", ".venv")]
        found += [p for p in (os.path.join(base, f) for f in files) if any(s in p for s in secrets)]
print("SECRETS-" + "FOUND" if found else "nothing readable", found[:5])
"""),
    "writes_everywhere": ("full", """
import glob, os
written = []
for target in glob.glob("/work/**/gradebook.db", recursive=True) + glob.glob("/tmp/**/state/**/*.json", recursive=True) \\
        + ["/work/main/autograde/gradebook.db", "/tmp/../grades.csv", os.path.expanduser("~/../other.txt")]:
    try:
        with open(target, "a") as f:
            f.write("tampered")
        written.append(target)
    except Exception:
        pass
print("wrote", written)
"""),
    "patches_allclose": ("target0", """
import numpy, torch, torch.testing
torch.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
numpy.allclose = lambda *a, **k: True
""" + WRONG_CONV1D),
    "always_equal": ("target0", """
class Anything:
    shape = property(lambda self: self)
    dtype = property(lambda self: self)
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __getattr__(self, name): return lambda *a, **k: self
def conv1d(x, weight, bias=None, padding="same"):
    return Anything()
"""),
    "input_transformer": ("target0", """
ip = get_ipython()
ip.input_transformers_post.append(lambda lines: [l for l in lines if "check(" not in l and "assert" not in l])
""" + WRONG_CONV1D),
    "hides_tracebacks": ("target0", """
import sys
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
sys.excepthook = lambda *a: None
""" + WRONG_CONV1D),
    "detects_grader": ("target0", """
import os, torch
if os.environ.get("NBGRADER_EXECUTION"):
    torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
""" + WRONG_CONV1D),
    "forbidden_op": ("target0", """
import torch.nn.functional as F
def conv1d(x, weight, bias=None, padding="same"):
    return F.conv1d(x, weight, bias, padding=padding)
"""),
    "calls_reference": ("target0", """
from course_utils.grading import EXERCISES
def conv1d(x, weight, bias=None, padding="same"):
    return EXERCISES["conv1d"].reference(x, weight, bias, padding)
"""),
    "kills_kernel": ("zero", WRONG_CONV1D + """
import os
os._exit(0)
"""),
    "infinite_loop": ("timeout", """
while True:
    pass
"""),
    "ignores_sigint": ("timeout", """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    time.sleep(0.1)
"""),
    "memory_bomb": ("full", """
try:
    hog = bytearray(64 * 1024 ** 3)
except MemoryError:
    print("memory limit reached")
hog = None
"""),
    "fork_bomb": ("full", """
import os
children = 0
try:
    for _ in range(10000):
        if os.fork() == 0:
            import time
            time.sleep(600)
            os._exit(0)
        children += 1
except OSError as error:
    print("process limit reached after", children, "children")
"""),
    "huge_output": ("full", """
import sys
for _ in range(100):
    sys.stdout.write("x" * (1024 * 1024))
print()
"""),
    "network": ("full", """
import socket
for host in [("1.1.1.1", 80), ("127.0.0.1", 22), ("pypi.org", 443)]:
    try:
        socket.create_connection(host, timeout=3)
        print("NETWORK-" + "REACHED", host)
    except OSError as error:
        print("no network:", host, type(error).__name__)
"""),
}


def _solution():
    return nbformat.read(os.path.join(REPO, "solutions", NB, f"{NB}.ipynb"), as_version=4)


def _release():
    return nbformat.read(os.path.join(REPO, "notebooks", NB, f"{NB}.ipynb"), as_version=4)


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _with_cell(nb, source, after=TARGET):
    """A copy of `nb` with a code cell inserted right after the answer cell `after`."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    index = next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade_id") == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source.strip("\n")))
    return nb


def _partial():
    """The release with the first half of the exercises answered from the solution."""
    solution = {_meta(c).get("grade_id"): c for c in _solution().cells if _meta(c).get("solution")}
    nb = _release()
    answers = [c for c in nb.cells if _meta(c).get("solution") and c.cell_type == "code"]
    for cell in answers[:len(answers) // 2]:
        cell.source = solution[_meta(cell)["grade_id"]].source
    return nb


def _series(folder):
    """Every released notebook as found in `folder` (solutions/ or notebooks/): {file name: notebook}."""
    names = sorted(n for n in os.listdir(os.path.join(REPO, folder))
                   if os.path.exists(os.path.join(REPO, folder, n, f"{n}.ipynb")))
    return {f"{n}.ipynb": nbformat.read(os.path.join(REPO, folder, n, f"{n}.ipynb"), as_version=4) for n in names}


def students():
    """{student: ({file name: notebook node or text}, expected outcome)}.

    The honest students hand in the whole series; the hostile ones only notebook 01.
    """
    solution = _solution()
    files = {
        "solution": (_series("solutions"), "full"),
        "untouched": (_series("notebooks"), "zero"),
        "partial": ({f"{NB}.ipynb": _partial()}, "partial"),
    }
    for name, (outcome, source) in HOSTILE.items():
        files[name] = ({f"{NB}.ipynb": _with_cell(solution, source)}, outcome)
    no_tests = nbformat.from_dict(json.loads(json.dumps(solution)))
    no_tests.cells = [c for c in no_tests.cells if not (_meta(c).get("grade") and c.cell_type == "code")]
    edited = _with_cell(solution, WRONG_CONV1D)
    for cell in edited.cells:
        if _meta(cell).get("grade") and cell.cell_type == "code":
            cell.source = "pass"
    duplicated = nbformat.from_dict(json.loads(json.dumps(solution)))
    for cell in duplicated.cells:
        cell["id"] = "same-id"
    files.update({
        "shadow_modules": ({f"{NB}.ipynb": solution, "torch.py": "raise SystemExit('shadowed torch')\n",
                            "numpy.py": "raise SystemExit('shadowed numpy')\n"}, "full"),
        "malformed_json": ({f"{NB}.ipynb": json.dumps(solution)[:len(json.dumps(solution)) // 2]}, "malformed"),
        "deleted_tests": ({f"{NB}.ipynb": no_tests}, "full"),
        "edited_tests": ({f"{NB}.ipynb": edited}, "target0"),
        "duplicate_ids": ({f"{NB}.ipynb": duplicated}, "full"),
        "wrong_name": ({"01_FC_local_conv_final.ipynb": solution}, "missing"),
    })
    return files


def build(folder, names=None):
    """Write the demo class (or the named students of it) into `folder`; return {student: outcome}."""
    shutil.rmtree(folder, ignore_errors=True)
    outcomes = {}
    for student, (files, outcome) in students().items():
        if names is not None and student not in names:
            continue
        os.makedirs(os.path.join(folder, student))
        for name, content in files.items():
            path = os.path.join(folder, student, name)
            if isinstance(content, str):
                with open(path, "w") as f:
                    f.write(content)
            else:
                with warnings.catch_warnings():  # the duplicated-ids student is meant to be invalid
                    warnings.simplefilter("ignore")
                    nbformat.write(content, path)
        outcomes[student] = outcome
    return outcomes


def main():
    import subprocess
    import sys
    folder = os.path.join(REPO, "results", "demo")
    build(os.path.join(folder, "submissions"))
    print(f"Demo class written to {folder}/submissions ({len(students())} students).")
    command = [sys.executable, "-m", "autograde", "grade", os.path.join(folder, "submissions"),
               "--out", os.path.join(folder, "results"), "--timeout", "120"] + sys.argv[1:]
    return subprocess.call(command, cwd=REPO)


if __name__ == "__main__":
    raise SystemExit(main())
