"""Every notebook opened in real JupyterLab (student mode) in headless Chromium, run, and looked at.

Needs Debian's chromium at /usr/bin/chromium (`apt-get install chromium`); without it the test is
skipped, except under CI=true, where a missing browser fails.
"""
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from notebook_tools import NOTEBOOK_IDS, ROOT, grade_cells, read, release_path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
RUN_TIMEOUT = 240  # seconds for one notebook to run in the browser
SCREENSHOTS = pathlib.Path(tempfile.gettempdir()) / "course-browser-screenshots"  # conftest.py prints it

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (.ci/run does)",
                    pytrace=False)
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); browser tests skipped",
                allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """JupyterLab in student mode, serving copies of the notebooks (so autosave never touches the repo)."""
    root = tmp_path_factory.mktemp("lab-root")
    for nb_id in NOTEBOOK_IDS:
        shutil.copytree(ROOT / "solutions" / nb_id, root / "solutions" / nb_id)
        shutil.copytree(ROOT / "notebooks" / nb_id, root / "notebooks" / nb_id)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_PATH=str(ROOT / "lab" / "student"))
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.app_settings_dir={ROOT / 'lab' / 'settings'}", "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(root / "server.log", "w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (root / "server.log").read_text())
                time.sleep(0.5)
        yield {"base": base, "token": token, "root": root, "log": root / "server.log"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server we started, by its own PID
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # only this run's pictures
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                                       headless=True, viewport={"width": 1280, "height": 900})
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) out.push(cells.get(i).toJSON());
  return out;
}"""

BUSY_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.sessionContext.session) return true;
  const kernel = panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return true;
  return Array.from(panel.content.widgets).some(c => c.model.type === 'code' &&
      c.promptNode && c.promptNode.textContent.includes('*'));
}"""


def open_in_lab(browser, server, relpath):
    """A new page with only this notebook open (a fresh workspace, so no other notebook is restored)."""
    page = browser.new_page()
    workspace = secrets.token_hex(4)
    page.goto(f"{server['base']}/lab/workspaces/{workspace}/tree/{relpath}?reset&token={server['token']}")
    page.wait_for_function("(path) => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                           "window.jupyterapp.shell.currentWidget.context && "
                           "window.jupyterapp.shell.currentWidget.context.path === path", arg=relpath,
                           timeout=90_000)
    return page


def run_in_lab(browser, server, relpath):
    """Open a notebook, Run All, wait until the kernel is idle; return the page and the cells as JSON."""
    page = open_in_lab(browser, server, relpath)
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    time.sleep(2)
    deadline = time.time() + RUN_TIMEOUT
    quiet = 0
    while quiet < 3:  # idle three polls in a row: done
        assert time.time() < deadline, f"{relpath} still running after {RUN_TIMEOUT} s"
        quiet = 0 if page.evaluate(BUSY_JS) else quiet + 1
        time.sleep(1)
    return page, page.evaluate(CELLS_JS)


def errors(cells):
    """(index, grade_id, error name) of every cell with an error output."""
    found = []
    for i, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                found.append((i, grade_id, output.get("ename")))
    return found


def check_widgets(page, name):
    """Widgets render, and moving the first slider changes what the explorer shows."""
    page.wait_for_timeout(1500)
    assert page.get_by_text("Error displaying widget").count() == 0, f"{name}: a widget failed to render"
    handles = page.locator(".jp-OutputArea .widget-slider .noUi-handle, .jp-OutputArea .widget-slider "
                           "input[type=range]")
    assert handles.count() > 0, f"{name}: no slider widget rendered"
    handle = handles.first
    handle.scroll_into_view_if_needed()
    box = page.locator(".jp-OutputArea .widget-slider").first.locator(
        "xpath=ancestor::div[contains(@class, 'jp-OutputArea')][1]")
    before = box.inner_html()
    handle.focus()
    for _ in range(2):
        page.keyboard.press("ArrowRight")
    page.wait_for_timeout(2500)
    after = box.inner_html()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    assert after != before, f"{name}: moving the slider did not change the explorer's output"


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_solution_runs_in_jupyterlab(browser, server, nb_id):
    page, cells = run_in_lab(browser, server, f"solutions/{nb_id}/{nb_id}.ipynb")
    try:
        assert errors(cells) == [], f"errors in the solution notebook: {errors(cells)}"
        check_widgets(page, f"solution-{nb_id}")
    finally:
        page.close()


@pytest.mark.parametrize("nb_id", NOTEBOOK_IDS)
def test_student_notebook_runs_in_jupyterlab(browser, server, nb_id):
    page, cells = run_in_lab(browser, server, f"notebooks/{nb_id}/{nb_id}.ipynb")
    try:
        tests = {cell.metadata["nbgrader"]["grade_id"] for cell in grade_cells(read(release_path(nb_id)))}
        unexpected = [e for e in errors(cells) if e[1] not in tests]
        assert unexpected == [], f"errors outside the test cells: {unexpected}"
        assert {e[1] for e in errors(cells)} == tests, "every test cell of an untouched notebook should fail"
        assert all(e[2] == "NotImplementedError" for e in errors(cells)), errors(cells)
        check_widgets(page, f"student-{nb_id}")
    finally:
        page.close()


def test_student_mode_hides_the_instructor_ui(browser, server):
    nb_id = NOTEBOOK_IDS[0]
    page = open_in_lab(browser, server, f"notebooks/{nb_id}/{nb_id}.ipynb")
    try:
        page.wait_for_timeout(2000)
        commands = page.evaluate("() => window.jupyterapp.commands.listCommands()")
        assert not [c for c in commands if "formgrader" in c or "create-assignment" in c or "course-list" in c], \
            [c for c in commands if "nbgrader" in c or "formgrader" in c]
        assert page.get_by_text("Formgrader").count() == 0
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{server['base']}/formgrader?token={server['token']}", timeout=10)
        assert missing.value.code == 404, "the formgrader server extension should be off in student mode"
    finally:
        page.close()
