"""MNIST Lab installs like a Python package: `pip install .` in a fresh virtual environment, then `mnistlab serve`
serves every page from the installed files, and prints the address students open."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.drivers import CHROMIUM, PROJECTOR, ROOT, AppServer, chromium, wait_until, wait_until_idle

PAGES = [("", "MNIST Lab"), ("train", "Train"), ("draw", "Draw"), ("convolutions", "Convolutions"), ("class", "Class")]
PAGES += [("glossary", "Glossary"), ("explain", "Inside the answer")]


def tracked_files(folder: Path) -> None:
    """A copy of the checkout's tracked files (what a clone has), so building the package writes nothing in the checkout."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with `pip install .` done. It sees this machine's packages (--system-site-packages), so
    the dependencies pyproject.toml declares are found installed and nothing is downloaded but the build's setuptools."""
    folder = tmp_path_factory.mktemp("install")
    source, venv = folder / "source", folder / "venv"
    tracked_files(source)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    completed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return venv


@pytest.mark.slow
def test_pip_install_puts_the_core_the_pages_and_the_apps_files_in_the_environment(installed):
    script = (
        "import mnistlab, mnistlab_ui, mnistlab.serving as serving\n"
        "print(mnistlab.__file__); print(mnistlab_ui.__file__); print(serving.app_folder()); print(serving.asgi_script())\n"
    )
    completed = subprocess.run([str(installed / "bin" / "python"), "-c", script], cwd="/", capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    core, ui, app_folder, asgi = (Path(line) for line in completed.stdout.split())
    for path in (core, ui, app_folder, asgi):
        assert installed in path.parents, path  # the installed copy, not the checkout
    assert (app_folder / "app.py").is_file() and (app_folder / "pages" / "1_train.py").is_file()
    assert (app_folder / ".streamlit" / "config.toml").is_file()
    assert (core.parent / "locales" / "tr" / "LC_MESSAGES" / "mnistlab.po").is_file()
    help_text = subprocess.run([str(installed / "bin" / "mnistlab"), "--help"], capture_output=True, text=True, timeout=120).stdout
    assert "serve" in help_text


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (bash scripts/install.sh --dev)")
def test_mnistlab_serve_from_the_installed_package_serves_every_page_and_prints_the_students_address(installed, tmp_path):
    from playwright.sync_api import sync_playwright

    elsewhere = tmp_path / "a teacher's folder"
    elsewhere.mkdir()
    app = AppServer(
        tmp_path / "data",
        tmp_path / "models",
        tmp_path / "serve.log",
        command=lambda port, address: [str(installed / "bin" / "mnistlab"), "serve", "--port", str(port), "--address", address],
        cwd=elsewhere,
        MNISTLAB_PUBLIC_URL="http://lab.school.example:8501",
    ).start()
    try:
        assert wait_until(lambda: "students open" in app.log_path.read_text(), 30)
        assert "MNIST Lab: students open http://lab.school.example:8501" in app.log_path.read_text()
        with sync_playwright() as playwright:
            browser = chromium(playwright)
            page = browser.new_context(viewport=PROJECTOR).new_page()
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            for slug, heading in PAGES:
                page.goto(f"{app.url}/{slug}")
                page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=90_000)
                wait_until_idle(page)
                assert page.locator('[data-testid="stException"]').count() == 0, slug
            browser.close()
        assert errors == []
        # The app's settings came with it, though Streamlit reads none from the teacher's folder.
        command = Path(f"/proc/{app.pid}/cmdline").read_bytes().decode().split("\0")
        assert "streamlit" in command and command[command.index("--server.maxUploadSize") + 1] == "10"
        assert command[command.index("--runner.postScriptGC") + 1] == "false"
    finally:
        app.stop()
