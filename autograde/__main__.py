"""`python -m autograde grade SUBMISSIONS --out RESULTS [--workers N] [--timeout SECONDS]`"""
import argparse
import os
import sys

from . import batch, job, sandbox


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograde", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade a class of submissions")
    grade.add_argument("submissions", help="folder (or .zip) holding <student>/<notebook>.ipynb")
    grade.add_argument("--out", required=True, help="results folder (created; a rerun brings it up to date)")
    grade.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="parallel jobs")
    grade.add_argument("--timeout", type=int, default=300, help="seconds for one whole notebook")
    grade.add_argument("--cell-timeout", type=int, default=120, help="seconds for one cell")
    grade.add_argument("--memory", type=float, default=3.0, help="GiB of address space for student code")
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run student code with YOUR permissions, network and files (trusted submissions only)")
    args = parser.parse_args(argv)

    if not args.unsafe_no_sandbox and not sandbox.available():
        print(f"Refusing to grade: {sandbox.INSTALL_HINT}", file=sys.stderr)
        return 2
    if args.unsafe_no_sandbox:
        print("WARNING: --unsafe-no-sandbox: student code runs with your permissions and can read, change or "
              "send anything you can.", file=sys.stderr)
    limits = sandbox.Limits(memory_bytes=int(args.memory * 1024 ** 3),
                            cpu_seconds=max(args.timeout * 2, 60))
    settings = job.Settings(timeout=args.timeout, cell_timeout=args.cell_timeout, limits=limits,
                            unsafe=args.unsafe_no_sandbox)
    try:
        batch.grade_class(args.submissions, args.out, args.workers, settings)
    except RuntimeError as error:  # the grader itself cannot work here: say why, exit non-zero
        print(f"Grading stopped: {error}", file=sys.stderr)
        return 3
    print(batch.class_table(args.out))
    print(f"\nResults in {args.out}: grades.csv, summary.csv, report.md, feedback/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
