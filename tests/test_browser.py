"""The heatmap explorer in a real browser: JupyterLab on localhost, headless Chromium driven by Selenium.

Runs every cell through JupyterLab's Run menu, changes the AU dropdown, and checks that the explorer's output
area shows a new heatmap figure. A screenshot is saved under tests/artifacts/. Needs the Debian packages
`chromium` and `chromium-driver`; skipped (with that message) only when they are not installed.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fgnet_core.paths import REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
NOTEBOOK = "explore_heatmaps.ipynb"
WIDGET_AREA = ".jupyter-widgets-output-area, .widget-output"
WIDGET_IMAGES = ".jupyter-widgets-output-area img, .widget-output img"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _small_notebook(folder: Path) -> Path:
    """A copy of the notebook whose parameters keep the run short (the original stays untouched)."""
    import nbformat

    nb = nbformat.read(REPO_ROOT / "notebooks" / NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\nmax_images = 3  # small for the browser test"
    path = folder / NOTEBOOK
    nbformat.write(nb, path)
    return path


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on a free localhost port with a token -> base URL; stopped afterwards."""
    root = tmp_path / "lab"
    root.mkdir()
    _small_notebook(root)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), IPYTHONDIR=str(tmp_path / "ipython"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.open_browser=False",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "jupyterlab.log", "wb")
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip("headless browser test needs Chromium and its driver: apt-get install -y chromium chromium-driver")
    try:
        from selenium import webdriver
    except ImportError:
        pytest.fail("the browser test needs Selenium: pip install selenium (part of the project's test extras)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1600", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def _accept_kernel_dialog(driver, seconds: float) -> None:
    """JupyterLab may ask which kernel to start ("Select Kernel"): take the preselected Python 3."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, seconds).until(ec.element_to_be_clickable(
            (By.CSS_SELECTOR, ".jp-Dialog .jp-Dialog-button.jp-mod-accept"))).click()
    except TimeoutException:
        pass


def _first_widget_image(driver) -> dict | None:
    """src and width of the first image in a widget output area, read in one step (the area redraws)."""
    return driver.execute_script(
        "const img = document.querySelector(arguments[0]);"
        "return img ? {src: img.src, width: img.getBoundingClientRect().width} : null;", WIDGET_IMAGES)


def test_heatmap_explorer_renders_in_jupyterlab(browser, jupyterlab):  # browser first: skip before starting a server
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    base, token = jupyterlab
    driver = browser
    wait = WebDriverWait(driver, 60)
    driver.get(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
    try:
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
        _accept_kernel_dialog(driver, 5)
        run_menu = wait.until(ec.element_to_be_clickable(
            (By.XPATH, "//li[contains(@class,'lm-MenuBar-item')][.//div[normalize-space()='Run']]")))
        run_menu.click()
        wait.until(ec.element_to_be_clickable(
            (By.XPATH, "//li[contains(@class,'lm-Menu-item')][.//div[normalize-space()='Run All Cells']]"))).click()
        _accept_kernel_dialog(driver, 5)

        # the explorer draws its first figure into its output area once the cells have run
        before = WebDriverWait(driver, 75).until(lambda drv: _first_widget_image(drv))["src"]
        assert before.startswith("data:image/png")

        au = driver.find_element(
            By.XPATH, "//div[contains(@class,'widget-dropdown')][label[normalize-space()='AU']]//select")
        Select(au).select_by_visible_text("AU12")

        def redrawn(drv):
            image = _first_widget_image(drv)
            return image if image and image["src"] != before else None

        after = wait.until(redrawn)
        assert after["src"].startswith("data:image/png")
        assert after["width"] > 300  # a real figure, not an icon
        output_text = driver.execute_script(
            "const area = document.querySelector(arguments[0]); area.scrollIntoView(); return area.innerText;",
            WIDGET_AREA)
        assert "error" not in output_text.lower()
    finally:
        _screenshot(driver, "explore_heatmaps_browser.png")
