"""The first students after a server starts, against the next ones: `python -m benchmarks first-visit`.

A teacher starts the server, then the class opens it. The first visitor used to wait for
everything a page needs the first time (TensorFlow, the services, the datasets, the
pages' modules): 11.6 s for the first page after a restart, 7.3 s for the first Draw
page. The server warms them when it starts (`mnistlab_ui.warm_up`), so the first student
should wait no longer than the second.

A fresh server starts (its own data home); `--after` seconds after it answers its health
check (a teacher walking to the projector), student 1 opens Home, Train and Draw, each
timed in a real Chromium from `goto` to the page being ready (Home's lesson links, the
Train button, the drawing canvas). Then student 2, in a browser context of their own,
does the same. Each is the median of `--repeats` fresh servers.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.training import machine
from tests.drivers import CHROMIUM, CHROMIUM_ARGS, PROJECTOR, AppServer

# What each page shows once it is ready for a student.
PAGES = (
    ("home", "/", lambda page: page.get_by_role("link", name="Train").first),
    ("train", "/train", lambda page: page.get_by_role("button", name="Train", exact=True)),
    ("draw", "/draw", lambda page: page.locator("canvas.upper-canvas").first),
)


def _student(browser, url: str) -> dict[str, float]:
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    seconds = {}
    try:
        for name, path, ready in PAGES:
            started = time.monotonic()
            page.goto(f"{url}{path}")
            ready(page).wait_for(timeout=120_000)
            seconds[name] = round(time.monotonic() - started, 2)
    finally:
        context.close()
    return seconds


def _once(after: float) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="mnistlab-first-visit-"))
    server = AppServer(folder / "data", folder / "models", folder / "server.log").start()
    try:
        time.sleep(after)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                return {"first": _student(browser, server.url), "second": _student(browser, server.url)}
            finally:
                browser.close()
    finally:
        server.stop()


def run(arguments) -> dict:
    if not os.path.exists(CHROMIUM):
        raise ValueError("The first-visit benchmark needs Debian's chromium (bash scripts/install.sh --dev).")
    if arguments.after < 0:
        raise ValueError(f"--after is a number of seconds, 0 or more, not {arguments.after}.")
    repeats = 1 if arguments.quick else arguments.repeats
    if not 1 <= repeats <= 10:
        raise ValueError(f"--repeats must be from 1 to 10, not {repeats}.")
    measured = []
    for number in range(repeats):
        print(f"fresh server {number + 1} of {repeats}...", file=sys.stderr, flush=True)
        measured.append(_once(arguments.after))
    section: dict = {"command": "python -m benchmarks " + " ".join(sys.argv[1:]), "machine": machine(), "after_seconds": arguments.after}
    for student in ("first", "second"):
        for name, _path, _ready in PAGES:
            section[f"{student}_{name}_s"] = statistics.median(entry[student][name] for entry in measured)
    section["first_over_second"] = round(
        sum(section[f"first_{name}_s"] for name, _path, _ready in PAGES)
        / max(0.01, sum(section[f"second_{name}_s"] for name, _path, _ready in PAGES)),
        2,
    )
    return section
