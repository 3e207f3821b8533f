"""`make bench`: how fast the course runs and grades, each figure beside its goal.

Prints one table and writes it to results/bench/latest.json and latest.md (git ignores results/).
Sections: solution notebooks (median of 3 runs), the grader (seconds per student, 1 and 2 workers,
against plain serial `nbgrader autograde`), reference implementations against their torch
built-ins (median of repeats, same inputs), and the set-up (`make setup` into an empty folder).
Skip slow sections with --only notebooks,grading,references,setup.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "results", "bench")


def median_seconds(fn, repeats=25, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# Notebooks


def notebook_ids():
    folder = os.path.join(REPO, "solutions")
    return sorted(n for n in os.listdir(folder) if os.path.exists(os.path.join(folder, n, f"{n}.ipynb")))


def run_notebook(path, env=None):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        NotebookClient(nb, timeout=600, resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return time.perf_counter() - start


# Seconds a solution notebook may take: (goal, goal under the autograder or None). The capstone trains
# four models and shrinks its budgets when NBGRADER_EXECUTION is set.
GOALS = {"05": (45, 15)}
DEFAULT_GOAL = (30, None)


def bench_notebooks(rows, runs=3):
    total = 0.0
    for nb_id in notebook_ids():
        path = os.path.join(REPO, "solutions", nb_id, f"{nb_id}.ipynb")
        goal, graded_goal = GOALS.get(nb_id[:2], DEFAULT_GOAL)
        seconds = statistics.median(run_notebook(path) for _ in range(runs))
        total += seconds
        rows.append(("notebooks", f"{nb_id} (median of {runs})", seconds, "s", f"<= {goal} s", seconds <= goal))
        print(f"  {nb_id}: {seconds:.1f} s", flush=True)
        if graded_goal:
            graded = statistics.median(run_notebook(path, {"NBGRADER_EXECUTION": "autograde"}) for _ in range(runs))
            rows.append(("notebooks", f"{nb_id} under the autograder (median of {runs})", graded, "s",
                         f"<= {graded_goal} s", graded <= graded_goal))
            print(f"  {nb_id} under the autograder: {graded:.1f} s", flush=True)
    rows.append(("notebooks", "series total", total, "s", "", None))


# ---------------------------------------------------------------------------------------------
# Grading


def bench_grading(rows, students=2):
    work = tempfile.mkdtemp(prefix="bench-grading-")
    try:
        subs = os.path.join(work, "subs")
        os.makedirs(subs)
        for i in range(students):  # honest students submitting the whole series: half solutions, half untouched
            folder = os.path.join(subs, f"student{i}")
            os.makedirs(folder)
            for nb_id in notebook_ids():
                source = "solutions" if i % 2 == 0 else "notebooks"
                shutil.copy(os.path.join(REPO, source, nb_id, f"{nb_id}.ipynb"), folder)
        per_student = {}
        for workers in (1, 2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "autograde", "grade", subs, "--out",
                            os.path.join(work, f"out{workers}"), "--workers", str(workers)], cwd=REPO, check=True,
                           stdout=subprocess.DEVNULL)
            per_student[workers] = (time.perf_counter() - start) / students
            rows.append(("grading", f"sandboxed grader, {workers} worker(s), s/student", per_student[workers], "s",
                         "<= 10 s with 2 workers" if workers == 2 else "", per_student[workers] <= 10
                         if workers == 2 else None))
            print(f"  grader, {workers} worker(s): {per_student[workers]:.1f} s/student", flush=True)
        plain = plain_nbgrader(subs, work) / students
        rows.append(("grading", "plain serial nbgrader autograde, s/student", plain, "s", "", None))
        rows.append(("grading", "sandboxed (2 workers) / plain nbgrader", per_student[2] / plain, "x", "", None))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def plain_nbgrader(subs, work):
    """The same class through stock nbgrader, one notebook after another: seconds in all."""
    root = os.path.join(work, "plain")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    start = time.perf_counter()
    for student in sorted(os.listdir(subs)):
        for name in sorted(os.listdir(os.path.join(subs, student))):
            nb_id = name[:-6]
            folder = os.path.join(root, "submitted", student, nb_id)
            os.makedirs(folder, exist_ok=True)
            shutil.copy(os.path.join(subs, student, name), folder)
    for nb_id in notebook_ids():
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", nb_id, "--force",
                        f"--CourseDirectory.release_directory={root}/release",
                        f"--CourseDirectory.db_url=sqlite:///{root}/gb.db"], cwd=os.path.join(REPO, "autograde"),
                       env=env, check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "nbgrader", "autograde", nb_id, "--create", "--force",
                        f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url=sqlite:///{root}/gb.db",
                        f"--CourseDirectory.source_directory={REPO}/solutions"],
                       cwd=os.path.join(REPO, "autograde"), env=env, capture_output=True)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# References against torch built-ins


def reference_pairs():
    """(name, reference call, built-in call) on teaching-sized inputs, for every reference present."""
    from course_utils.reference import REFERENCES
    import course_utils.grading  # noqa: F401  (imports every notebook's references)
    g = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    def ref(name):
        return REFERENCES[name].__wrapped__

    def conv1d():
        x, w, b = randn(8, 16, 128), randn(32, 16, 5), randn(32)
        return lambda: ref("conv1d")(x, w, b), lambda: F.conv1d(x, w, b, padding=2)

    def conv2d():
        x, w, b = randn(8, 3, 32, 32), randn(16, 3, 3, 3), randn(16)
        return lambda: ref("conv2d")(x, w, b), lambda: F.conv2d(x, w, b, padding=1)

    def locally_connected1d():
        x, w, b = randn(8, 8, 64), randn(64, 8, 8, 5), randn(64, 8)

        def unfold_baseline():  # the same layer through F.unfold and one batched matmul
            cols = F.unfold(x[:, :, None, :], (1, 5), padding=(0, 2))                # (B, C_in*s, L)
            cols = cols.view(8, 8 * 5, 64).permute(2, 0, 1)                          # (L, B, C_in*s)
            return (cols @ w.reshape(64, 8, 40).transpose(1, 2)).permute(1, 2, 0) + b.T  # (B, C_out, L)
        return lambda: ref("locally_connected1d")(x, w, b), unfold_baseline

    def lstm_forward():
        lstm = nn.LSTM(32, 64, batch_first=True)
        xs, h0, c0 = randn(16, 50, 32), randn(16, 64), randn(16, 64)
        args = (xs, (h0, c0), lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
        return lambda: ref("lstm_forward")(*args), lambda: lstm(xs, (h0[None], c0[None]))

    def gru_cell():
        cell = nn.GRUCell(32, 64)
        x, h = randn(64, 32), randn(64, 64)
        args = (x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        return lambda: ref("gru_cell")(*args), lambda: cell(x, h)

    def scaled_dot_product_attention():
        q, k, v = randn(4, 64, 32), randn(4, 64, 32), randn(4, 64, 32)
        return (lambda: ref("scaled_dot_product_attention")(q, k, v),
                lambda: F.scaled_dot_product_attention(q, k, v))

    def multi_head_self_attention():
        mha = nn.MultiheadAttention(64, 4, batch_first=True)
        x = randn(4, 64, 64)
        args = (x, mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight, mha.out_proj.bias, 4)
        return lambda: ref("multi_head_self_attention")(*args), lambda: mha(x, x, x, need_weights=False)

    against = {"conv1d": "F.conv1d", "conv2d": "F.conv2d", "locally_connected1d": "unfold + bmm",
               "lstm_forward": "nn.LSTM", "gru_cell": "nn.GRUCell",
               "scaled_dot_product_attention": "F.scaled_dot_product_attention",
               "multi_head_self_attention": "nn.MultiheadAttention"}
    makers = {"conv1d": conv1d, "conv2d": conv2d, "locally_connected1d": locally_connected1d,
              "lstm_forward": lstm_forward, "gru_cell": gru_cell,
              "scaled_dot_product_attention": scaled_dot_product_attention,
              "multi_head_self_attention": multi_head_self_attention}
    return [(f"{name} vs {against[name]}", *make()) for name, make in makers.items() if name in REFERENCES]


def bench_references(rows):
    with torch.no_grad():
        for name, ours, builtin in reference_pairs():
            ratio = median_seconds(ours) / median_seconds(builtin)
            rows.append(("references", name, ratio, "x", "<= 3x", ratio <= 3))
            print(f"  {name}: {ratio:.2f}x", flush=True)


# ---------------------------------------------------------------------------------------------
# Set-up


def bench_setup(rows):
    work = tempfile.mkdtemp(prefix="bench-setup-")
    try:
        subprocess.run(["git", "clone", "-q", REPO, work + "/repo"], check=True)
        start = time.perf_counter()
        subprocess.run(["make", "setup"], cwd=work + "/repo", check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        size = int(subprocess.run(["du", "-sb", work + "/repo/.venv"], capture_output=True, text=True,
                                  check=True).stdout.split()[0]) / 1024 ** 2
        rows.append(("setup", "make setup into an empty folder", seconds, "s", "", None))
        rows.append(("setup", ".venv size", size, "MB", "", None))
        print(f"  make setup: {seconds:.0f} s, .venv {size:.0f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------


def table(rows):
    lines = ["| section | measure | figure | goal | met |", "|---|---|---|---|---|"]
    for section, name, value, unit, goal, met in rows:
        figure = f"{value:.2f}{unit}" if unit == "x" else f"{value:.1f} {unit}"
        lines.append(f"| {section} | {name} | {figure} | {goal} | {'' if met is None else ('yes' if met else 'NO')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograde.bench", description=__doc__)
    parser.add_argument("--only", default="notebooks,grading,references,setup")
    parser.add_argument("--students", type=int, default=2, help="class size for the grading figures")
    args = parser.parse_args(argv)
    sections = args.only.split(",")
    rows = []
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for section, run in [("references", bench_references), ("notebooks", bench_notebooks),
                         ("grading", lambda r: bench_grading(r, args.students)), ("setup", bench_setup)]:
        if section in sections:
            print(f"{section} ...", flush=True)
            run(rows)
    text = table(rows)
    print("\n" + text)
    missed = [r for r in rows if r[0] == "references" and r[5] is False]
    if missed:
        print("\nReferences slower than 3x their built-in: " + ", ".join(f"{r[1]} ({r[2]:.1f}x)" for r in missed))
    os.makedirs(OUT, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    with open(os.path.join(OUT, "latest.json"), "w") as f:
        json.dump({"when": stamp, "rows": [dict(zip(["section", "measure", "value", "unit", "goal", "met"], r))
                                           for r in rows]}, f, indent=1)
    with open(os.path.join(OUT, "latest.md"), "w") as f:
        f.write(f"# Benchmark ({stamp}, {os.cpu_count()} cores)\n\n{text}\n")
    print(f"\nWritten to {OUT}/latest.json and latest.md")


if __name__ == "__main__":
    main()
