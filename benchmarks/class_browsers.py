"""A class pressing Train at once in real browsers: `python -m benchmarks class-browsers`.

Where `class-training` submits a class's runs to a job manager from threads, this one goes
through everything a class goes through: one app server (as `bash scripts/install.sh` and
the README start it: one training place, runs abandoned after 60 s without a page), and
`--students` Chromium contexts (each its own cookie, so its own owner). Each student opens
lesson 1's Train link with a network of their own (`network=dense{units}`: 30 students, 30
different dense networks, so nothing is shared and everything packs), waits until the page
is ready, and all press Train in the same second (`--spread S`: at random moments over S
seconds, as a class really does). Every tab stays open and each waits on its own page for
its run's end: "Reached ...", "Trained for the maximum ...", a failure or a cancellation.

Measured: how each run ended (none may be cancelled while its tab is open), the seconds
from a press to its result (first, median, last), the server process's and the training
workers' memory (peak resident set), and the server's CPU seconds. All browsers share
this machine's cores with the server; in a class they run on the students' own devices.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.app_load import _idle, percentile
from benchmarks.training import machine
from tests.drivers import CHROMIUM, CHROMIUM_ARGS, PROJECTOR, AppServer, browsers_cpu_seconds, resident_megabytes

# Lesson 1's step (the dense network on clothes to 88%, at most 20 epochs), each student with their own hidden size.
LESSON_LINK = "/train?dataset=fashion_mnist&target=0.88&epochs=20&network=dense{units}"
ENDED = re.compile(r"^(Reached |Trained for the maximum|Training failed|This run was interrupted|Cancelled)")
RESULT_TIMEOUT = 1800.0


def units_of(student: int) -> int:
    """Each student's own hidden size: 32, 40, 48, ... (30 students: 32 to 264)."""
    return 32 + 8 * student


async def _watch_memory(server_pid: int, peaks: dict, stop: asyncio.Event) -> None:
    while not stop.is_set():
        peaks["server_mb"] = max(peaks.get("server_mb", 0.0), resident_megabytes(pid=server_pid))
        peaks["workers_mb"] = max(peaks.get("workers_mb", 0.0), resident_megabytes("mnistlab.process_backend"))
        await asyncio.sleep(0.5)


async def student(browser, url: str, number: int, spread: float, record: dict, ready: asyncio.Queue, go: asyncio.Event) -> None:
    context = await browser.new_context(viewport=PROJECTOR)
    page = await context.new_page()
    await page.goto(url + LESSON_LINK.format(units=units_of(number)), timeout=300_000)
    train = page.get_by_role("button", name="Train", exact=True)
    await train.wait_for(timeout=300_000)
    await _idle(page)
    await ready.put(number)
    await go.wait()
    await asyncio.sleep(random.Random(number).uniform(0, spread))
    pressed = time.monotonic()
    await train.click(timeout=300_000)
    ended = page.get_by_text(ENDED).first
    try:
        await ended.wait_for(timeout=RESULT_TIMEOUT * 1000)
        text = (await ended.inner_text()).strip()
        record["ends"].append((number, time.monotonic() - pressed, text))
    except Exception as error:  # noqa: BLE001 (Playwright's timeout: no result shown in time)
        record["ends"].append((number, time.monotonic() - pressed, f"no result: {type(error).__name__}"))
    # The tab stays open until every student has a result: a class does not close its tabs.


def outcome(text: str) -> str:
    if text.startswith(("Reached ", "Trained for the maximum")):
        return "finished"
    if text.startswith("Training failed"):
        return "failed"
    if text.startswith("Cancelled"):
        return "cancelled"
    if text.startswith("This run was interrupted"):
        return "interrupted"
    return "no result"


async def _class(server: AppServer, students: int, spread: float) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        record: dict = {"ends": []}
        ready, go, stop, peaks = asyncio.Queue(), asyncio.Event(), asyncio.Event(), {}
        tasks = [asyncio.create_task(student(browser, server.url, number, spread, record, ready, go)) for number in range(students)]
        for _ in range(students):
            await ready.get()
        watcher = asyncio.create_task(_watch_memory(server.pid, peaks, stop))
        cpu, browsers_cpu, started = server.cpu_seconds(), browsers_cpu_seconds(), time.monotonic()
        go.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.monotonic() - started
        cpu, browsers_cpu = server.cpu_seconds() - cpu, browsers_cpu_seconds() - browsers_cpu
        stop.set()
        await watcher
        await browser.close()
    record["errors"] = [repr(result) for result in results if isinstance(result, Exception)][:3]
    return {"record": record, "seconds": elapsed, "server_cpu_s": cpu, "browsers_cpu_s": browsers_cpu, "peaks": peaks}


def _database_statuses(folder: Path) -> dict[str, int]:
    import sqlalchemy as sa

    from mnistlab.database import Database, runs

    with Database(f"sqlite:///{folder / 'data' / 'mnistlab.db'}", read_only=True).engine.connect() as connection:
        rows = connection.execute(sa.select(runs.c.status, sa.func.count()).where(runs.c.owner != "server").group_by(runs.c.status))
        return {status: int(count) for status, count in rows}


def run(arguments) -> dict:
    if not os.path.exists(CHROMIUM):
        raise ValueError("The class-browsers benchmark needs Debian's chromium (bash scripts/install.sh --dev).")
    students = 3 if arguments.quick else arguments.students
    if not 1 <= students <= 60:
        raise ValueError(f"--students must be from 1 to 60, not {students}.")
    if arguments.spread < 0:
        raise ValueError(f"--spread is a number of seconds, 0 or more, not {arguments.spread}.")
    folder = Path(tempfile.mkdtemp(prefix="mnistlab-class-browsers-"))
    server = AppServer(folder / "data", folder / "models", folder / "server.log").start()
    try:
        print(f"{students} students open lesson 1 with {students} different networks and press Train...", file=sys.stderr, flush=True)
        measured = asyncio.run(_class(server, students, arguments.spread))
        log = server.log_path.read_text(errors="replace")
    finally:
        server.stop()
    ends = sorted(measured["record"]["ends"])
    seconds = [elapsed for _number, elapsed, _text in ends]
    outcomes = [outcome(text) for _number, _elapsed, text in ends]
    abandoned = [text for _number, _elapsed, text in ends if "no page asked about it" in text]
    return {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "quick": bool(arguments.quick),
        "students": students,
        "spread_s": arguments.spread,
        "networks": f"dense{units_of(0)} to dense{units_of(students - 1)}, Fashion-MNIST to 88%, at most 20 epochs",
        "finished": outcomes.count("finished"),
        "failed": outcomes.count("failed"),
        "cancelled": outcomes.count("cancelled"),
        "cancelled_as_abandoned": len(abandoned),
        "interrupted": outcomes.count("interrupted"),
        "no_result": outcomes.count("no result"),
        "database_statuses": _database_statuses(folder),
        "first_result_s": round(min(seconds, default=float("nan")), 1),
        "median_result_s": round(percentile(seconds, 0.5), 1),
        "last_result_s": round(max(seconds, default=float("nan")), 1),
        "seconds": round(measured["seconds"], 1),
        "server_cpu_s": round(measured["server_cpu_s"], 1),
        "browsers_cpu_s": round(measured["browsers_cpu_s"], 1),
        "server_peak_mb": round(measured["peaks"].get("server_mb", 0.0)),
        "workers_peak_mb": round(measured["peaks"].get("workers_mb", 0.0)),
        "fragment_warnings": log.count("does not exist anymore"),
        "errors": measured["record"]["errors"],
        "machine_cores": os.cpu_count(),
        "machine": machine(),
    }
