"""JupyterLab in a real browser, for tests/test_browser.py: what it needs, the server, and
a student's actions (open a notebook from the file browser, edit its parameters cell, Run >
Run All Cells, File > Save, File > Save and Export Notebook As > PDF).

The browser is the system's Chromium (Debian's `chromium` package) driven by Playwright from
PyPI: Playwright's own browser download needs a network this project's machines lack.
Every wait is Playwright's auto-waiting or a bounded wait for a condition; a step that fails
leaves a screenshot and the server's log tail in its error message.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from helpers.notebook_exec import python_kernel
from helpers.paths import DRIVE_MOUNT_ENV, HOME_ENV

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ENV = "HW6_CHROMIUM"          # a Chromium elsewhere than on PATH
# What the journey needs beyond the venv, with how to get it (CI: .ci/run installs them).
NEEDS = {
    "playwright": "pip install playwright (requirements/dev.txt has it)",
    "chromium": "apt-get install chromium (Playwright drives the system's Chromium)",
    "pandoc": "apt-get install pandoc",
    "xelatex": "apt-get install texlive-xetex texlive-fonts-recommended texlive-plain-generic",
    "pdftotext": "apt-get install poppler-utils",
}
# JupyterLab's settings for the test's user: no news or update check (a toast over the page).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                   "checkForUpdates": False},
}


def chromium_path() -> str | None:
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def missing_tools() -> list[str]:
    """'name: how to install it' for each tool the browser journey lacks."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright")
    if chromium_path() is None:
        missing.append("chromium")
    missing += [tool for tool in ("pandoc", "xelatex", "pdftotext") if shutil.which(tool) is None]
    return [f"{name}: {NEEDS[name]}" for name in missing]


# ----------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """`jupyter lab` from this venv, on 127.0.0.1 with a token, rooted at `root`, with its
    config, settings, workspaces and runtime files in `state_dir` (never the user's)."""

    def __init__(self, root, state_dir):
        self.root, self.state_dir = str(root), str(state_dir)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.state_dir, "jupyterlab.log")
        self.proc = None
        os.makedirs(self.state_dir, exist_ok=True)

    def env(self) -> dict:
        dirs = {name: os.path.join(self.state_dir, sub) for name, sub in (
            ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
            ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "matplotlib"))}
        for path in dirs.values():
            os.makedirs(path, exist_ok=True)
        for plugin, values in LAB_SETTINGS.items():
            path = os.path.join(dirs["JUPYTERLAB_SETTINGS_DIR"], plugin + ".jupyterlab-settings")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                json.dump(values, f)
        # HOME is the repository copy (the setup cell's default), not a folder set outside.
        env = {k: v for k, v in os.environ.items() if k not in (HOME_ENV, DRIVE_MOUNT_ENV)}
        env.update(dirs)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        return env

    def start(self, timeout_s: float = 90) -> None:
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}", "--LabApp.news_url=None",
               "--LabApp.extension_manager=readonly"]
        with open(self.log_path, "w") as log:
            # Its own process group, so stop() ends the server and the kernels it started.
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}",
                                            timeout=5):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer in {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()                    # the server shuts its kernels down
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return "(no server log)"


@contextlib.contextmanager
def jupyter_lab(root, state_dir):
    """A running LabServer whose kernels run this interpreter (python_kernel)."""
    with python_kernel():                        # puts a kernelspec on JUPYTER_PATH if needed
        server = LabServer(root, state_dir)
        try:
            server.start()
            yield server
        finally:
            server.stop()


# ----------------------------------------------------------------------------- student
def _exact(label: str):
    return re.compile(rf"^\s*{re.escape(label)}\s*$")


# Run All is done when the kernel is idle, it has run something, and nothing is queued
# ("[*]"): cells after an error are unqueued, so a failed run ends here too.
RUN_DONE_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
      .map(e => e.textContent);
  const status = document.querySelector('#jp-main-statusbar')?.textContent || '';
  return prompts.length > 0 && !prompts.some(p => p.includes('*'))
      && prompts.some(p => /\\d/.test(p)) && /\\|\\s*Idle/.test(status);
}"""


class Student:
    """One browser tab on JupyterLab, doing what a student does with mouse and keyboard.
    Each action is a step: on failure it screenshots into shots_dir and says where."""

    def __init__(self, page, server: LabServer, shots_dir):
        self.page, self.server, self.shots_dir = page, server, str(shots_dir)
        self.shots: list[str] = []

    # -- evidence
    def screenshot(self, name: str) -> str:
        path = os.path.join(self.shots_dir, f"{len(self.shots):02d}-{name}.png")
        with contextlib.suppress(Exception):      # a dead page must not hide the real error
            self.page.screenshot(path=path, full_page=True)
            self.shots.append(path)
        return path

    @contextlib.contextmanager
    def step(self, name: str):
        try:
            yield
        except Exception as err:
            shot = self.screenshot("failed-" + re.sub(r"\W+", "-", name))
            raise AssertionError(
                f"browser step {name!r} failed: {type(err).__name__}: {err}\n"
                f"screenshot: {shot}\nearlier screenshots: {self.shots[:-1]}\n"
                f"server log tail:\n{self.server.log_tail()}") from err

    # -- actions
    def open_lab(self, timeout_ms: int = 120_000) -> None:
        with self.step("open JupyterLab"):
            self.page.goto(f"{self.server.url}/lab?token={self.server.token}")
            self.page.locator("#jp-main-statusbar").wait_for(timeout=timeout_ms)
            self.page.get_by_role("menubar").wait_for(timeout=timeout_ms)

    def menu(self, top: str, *labels: str) -> None:
        """Click a menu bar entry, then each (sub)menu item by its label."""
        self.page.get_by_role("menubar").get_by_role("menuitem", name=top, exact=True).click()
        for label in labels:
            self.page.locator(".lm-Menu .lm-Menu-item:visible").filter(
                has=self.page.locator(".lm-Menu-itemLabel", has_text=_exact(label))).click()

    def panel(self):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    def open_notebook(self, folder: str, name: str, timeout_ms: int = 120_000) -> None:
        """Double-click folder, then the notebook, in the file browser; wait for its kernel."""
        with self.step(f"open {name}"):
            listing = self.page.locator(".jp-DirListing-content")

            def item(text):
                return listing.locator(".jp-DirListing-item").filter(
                    has=self.page.locator(".jp-DirListing-itemText", has_text=_exact(text)))
            crumbs = self.page.locator(".jp-BreadCrumbs")
            if f"{folder}" not in crumbs.inner_text():
                item(folder).dblclick()
            item(name).dblclick()
            self.panel().locator(".jp-Cell").first.wait_for(timeout=timeout_ms)
            self.wait_idle(timeout_ms)

    def wait_idle(self, timeout_ms: int) -> None:
        from playwright.sync_api import expect
        expect(self.page.locator("#jp-main-statusbar")).to_contain_text(
            re.compile(r"\|\s*Idle"), timeout=timeout_ms)

    def replace_cell_source(self, index: int, first_line: str, source: str) -> None:
        """Click into cell `index`, select all its text, put `source` in (as a paste does),
        leave edit mode. first_line guards against editing the wrong cell."""
        with self.step(f"edit cell {index}"):
            cell = self.panel().locator(".jp-Notebook .jp-Cell").nth(index)
            editor = cell.locator(".cm-content")
            from playwright.sync_api import expect
            expect(editor).to_contain_text(first_line)
            editor.click()
            self.page.keyboard.press("ControlOrMeta+a")
            self.page.keyboard.insert_text(source)
            self.page.keyboard.press("Escape")
            expect(editor).to_contain_text(source.splitlines()[-1].strip())

    def run_all(self, name: str, timeout_ms: int) -> None:
        with self.step(f"Run > Run All Cells in {name}"):
            self.menu("Run", "Run All Cells")
            self.page.wait_for_function(RUN_DONE_JS, timeout=timeout_ms, polling=500)
        self.screenshot(f"{name}-ran")

    def save(self, name: str, timeout_ms: int = 60_000) -> None:
        with self.step(f"File > Save Notebook in {name}"):
            self.menu("File", "Save Notebook")
            tab = self.page.locator(".lm-TabBar-tab.jp-mod-current")
            from playwright.sync_api import expect
            expect(tab).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"), timeout=timeout_ms)

    def close_tab(self, name: str) -> None:
        with self.step(f"File > Close Tab ({name})"):
            self.menu("File", "Close Tab")
            self.panel().wait_for(state="detached")

    def export_pdf(self, dest: str, timeout_ms: int) -> str:
        """File > Save and Export Notebook As > PDF; the download saved as dest."""
        with self.step("File > Save and Export Notebook As > PDF"):
            with self.page.expect_download(timeout=timeout_ms) as info:
                self.menu("File", "Save and Export Notebook As", "PDF")
            download = info.value
            failure = download.failure()
            assert failure is None, f"download failed: {failure}"
            download.save_as(dest)
        return dest

    def widget_progress_bars(self) -> list[str]:
        """The text of each output that holds an ipywidgets progress bar (tqdm's bar)."""
        outputs = self.panel().locator(".jp-OutputArea-output").filter(
            has=self.page.locator(".widget-hprogress"))
        return outputs.all_inner_texts()
