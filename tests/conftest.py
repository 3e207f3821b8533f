"""Test-session set-up: keep Jupyter, IPython and matplotlib out of the real $HOME."""
import os
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


HOME = pathlib.Path(tempfile.mkdtemp(prefix="course-tests-home-"))


def pytest_unconfigure(config):
    shutil.rmtree(HOME, ignore_errors=True)


def pytest_configure(config):
    home = HOME
    for var, sub in [("HOME", ""), ("JUPYTER_CONFIG_DIR", ".jupyter"), ("JUPYTER_DATA_DIR", ".local/share/jupyter"),
                     ("JUPYTER_RUNTIME_DIR", ".local/share/jupyter/runtime"), ("IPYTHONDIR", ".ipython"),
                     ("MPLCONFIGDIR", ".config/matplotlib")]:
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(path)
    # nbgrader runs programs of this environment (alembic) by name.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


def pytest_terminal_summary(terminalreporter):
    """Say where the browser test left its screenshots (one per notebook, solution and student version)."""
    screenshots = pathlib.Path(tempfile.gettempdir()) / "course-browser-screenshots"  # set by test_browser.py
    ran = any("test_browser.py" in report.nodeid for reports in terminalreporter.stats.values()
              for report in reports if hasattr(report, "nodeid"))
    if ran and screenshots.exists() and any(screenshots.iterdir()):
        terminalreporter.write_line(f"Browser screenshots: {screenshots}")
