"""The app as a class uses it, in real browsers: `python -m benchmarks app`.

1. The command line trains the preset before and after the rest: the mean of its two
   training times is the yardstick (this machine's speed drifts over minutes).
2. Drawing alone: `--drawers` browsers draw on the Draw page (a stroke, the answer, a
   pause of three to six seconds, Clear) for `--seconds`; the server process's CPU
   seconds per drawing and the time from pen-up to the prediction are measured.
3. Training in the app: one browser starts the same training on the Train page and
   watches it while `--sessions` - 1 others draw; the run's training seconds over the
   command line's give the in-app ratio.
4. Drawing during a training: `--drawers` browsers draw while a training runs (started
   and watched by one more browser); pen-up to prediction, p50 and p95, and whether
   every drawing was answered.

Everything runs on this machine: the browsers share its cores with the server, and the
CPU they use (in a class, on the students' own devices) is reported next to the
server's.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.drivers import CHROMIUM, CHROMIUM_ARGS, PROJECTOR, ROOT, AppServer, browsers_cpu_seconds

ANSWER_TIMEOUT = 60.0
# Seconds a student looks at an answer before clearing and drawing the next digit.
PAUSE = (3.0, 6.0)
# A folder for screenshots of drawings that got no answer (MNISTLAB_SCREENSHOTS), to see why.
SCREENSHOTS = os.environ.get("MNISTLAB_SCREENSHOTS")


def cli_training(dataset: str, preset: str, out: Path | None = None) -> dict:
    """Train from the command line; returns its training seconds and its whole wall time."""
    command = [sys.executable, "-m", "mnistlab", "train", "--dataset", dataset, "--arch", preset, "--quiet", "--json"]
    if out is not None:
        command += ["--out", str(out), "--overwrite"]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if completed.returncode != 0:
        raise RuntimeError(f"the command-line training failed: {completed.stderr[-2000:]}")
    result = json.loads(completed.stdout)
    return {
        "training_s": result["seconds"],
        "wall_s": round(time.perf_counter() - started, 1),
        "test_accuracy": result["test_accuracy"],
        "epochs": result["epochs_run"],
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class Drawings:
    """Pen-up-to-prediction times of every drawing made, and how many got no answer."""

    def __init__(self):
        self.latencies: list[float] = []
        self.unanswered = 0

    @property
    def made(self) -> int:
        return len(self.latencies) + self.unanswered

    def summary(self) -> dict:
        return {
            "drawings": self.made,
            "answered": len(self.latencies),
            "p50_s": round(percentile(self.latencies, 0.5), 3),
            "p95_s": round(percentile(self.latencies, 0.95), 3),
            "max_s": round(max(self.latencies, default=float("nan")), 3),
        }


async def _stroke(page, rng: random.Random) -> None:
    canvas = page.locator("canvas.upper-canvas").last
    await canvas.wait_for(timeout=60_000)
    # A rerun in progress may replace the canvas under the pen: draw when the app is idle...
    await _idle(page)
    await canvas.evaluate("(element) => element.scrollIntoView({block: 'center', behavior: 'instant'})")
    # ...and where the canvas is now: after Clear the page gets shorter and may still move.
    box = await canvas.bounding_box()
    for _ in range(20):
        await page.wait_for_timeout(100)
        settled = await canvas.bounding_box()
        if settled == box:
            break
        box = settled
    x0, y0 = box["x"] + box["width"] * rng.uniform(0.3, 0.45), box["y"] + box["height"] * 0.2
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    for step in range(1, 16):
        await page.mouse.move(x0 + box["width"] * 0.2 * step / 15, y0 + box["height"] * 0.6 * step / 15)
    await page.mouse.up()


async def drawer(page, url: str, warmed: asyncio.Queue, go: asyncio.Event, stop: asyncio.Event, drawings: Drawings, seed: int) -> None:
    """One student: draw, wait for the answer, pause, clear, again; until `stop` is set.

    The first drawing (the page's first render, the model's first load) is a warm-up: it is
    not counted, and the measured part starts (`go`) when every student has made it.
    """
    rng = random.Random(seed)
    await page.goto(f"{url}/draw")
    prediction = page.locator('[data-testid="stMetric"]').filter(has_text="Prediction")
    counting = False
    while not stop.is_set():
        await _stroke(page, rng)
        pen_up = time.monotonic()
        try:
            await prediction.wait_for(state="visible", timeout=ANSWER_TIMEOUT * 1000)
            answered = time.monotonic() - pen_up
        except Exception:  # noqa: BLE001 (Playwright's timeout: this drawing got no answer)
            answered = None
        if counting:
            if answered is None:
                drawings.unanswered += 1
                if drawings.unanswered <= 3 and SCREENSHOTS:
                    await page.screenshot(path=str(Path(SCREENSHOTS) / f"unanswered-{seed}-{drawings.unanswered}.png"), full_page=True)
            else:
                drawings.latencies.append(answered)
        else:
            await warmed.put(seed)
            await go.wait()
            counting = True
        # A student looks at the answer and the steps for a few seconds before the next digit.
        await asyncio.sleep(rng.uniform(*PAUSE))
        # Clear makes a new canvas: wait until the old one is gone, so the next stroke lands on the new one.
        old_canvas = await page.locator("canvas.upper-canvas").last.element_handle()
        await page.get_by_role("button", name="Clear").click()
        await page.wait_for_function("(canvas) => !canvas.isConnected", arg=old_canvas, timeout=ANSWER_TIMEOUT * 1000, polling=100)
        await prediction.wait_for(state="detached", timeout=ANSWER_TIMEOUT * 1000)


async def _idle(page) -> None:
    await page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000, polling=100)


async def _choose(page, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label` (see tests.drivers.choose)."""
    box = page.get_by_role("combobox", name=label)
    await box.evaluate("(element) => element.scrollIntoView({block: 'center', behavior: 'instant'})")
    await box.click()
    wanted = page.get_by_role("option", name=option, exact=True)
    try:
        await wanted.wait_for(timeout=1500)
    except Exception:  # noqa: BLE001 (Playwright's timeout: the list did not open on a click)
        await box.press("ArrowDown")
    await wanted.click()
    await page.wait_for_timeout(500)
    await _idle(page)


async def start_training(page, url: str, dataset: str, preset: str) -> None:
    """Choose the dataset and preset on the Train page, train, and keep watching."""
    from mnistlab.datasets import DATASETS
    from mnistlab.models import get_preset

    await page.goto(f"{url}/train")
    await page.get_by_role("button", name="Train", exact=True).wait_for(timeout=120_000)
    await _idle(page)
    await _choose(page, "Dataset", DATASETS[dataset].title)
    await _choose(page, "Architecture", get_preset(preset).title)
    box = page.get_by_role("checkbox", name="Stop at a target accuracy")
    if await box.is_checked():
        await box.uncheck(force=True)
        await page.wait_for_timeout(500)
        await _idle(page)
    await page.get_by_role("button", name="Train", exact=True).click()
    # The run shows up on the page: it was submitted.
    await page.get_by_text(re.compile(r"Run \d+: |Waiting for a free place")).first.wait_for(timeout=60_000)


async def _browser_phase(server: AppServer, drawers: int, seconds: float | None, train: tuple[str, str] | None, wait_for_run) -> dict:
    """Drawers warm up, then draw for `seconds` (or, with `train`, while one more browser's training runs)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pages = [await (await browser.new_context(viewport=PROJECTOR)).new_page() for _ in range(drawers + (1 if train else 0))]
        drawings, warmed, go, stop = Drawings(), asyncio.Queue(), asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(drawer(page, server.url, warmed, go, stop, drawings, seed)) for seed, page in enumerate(pages[:drawers])]
        for _ in range(drawers):
            await warmed.get()
        cpu, browsers_cpu, started = server.cpu_seconds(), browsers_cpu_seconds(), time.monotonic()
        go.set()
        run = None
        if train:
            await start_training(pages[-1], server.url, *train)
            run = await asyncio.to_thread(wait_for_run)
        else:
            await asyncio.sleep(seconds)
        stop.set()
        cpu, elapsed = server.cpu_seconds() - cpu, time.monotonic() - started
        browsers_cpu = browsers_cpu_seconds() - browsers_cpu
        results = await asyncio.gather(*[asyncio.wait_for(task, ANSWER_TIMEOUT + 10) for task in tasks], return_exceptions=True)
        errors = [repr(result) for result in results if isinstance(result, Exception)]
        await browser.close()
    return {
        "drawings": drawings,
        "run": run,
        "errors": errors[:3],
        "server_cpu_s": round(cpu, 2),
        "browsers_cpu_s": round(browsers_cpu, 2),
        "seconds": round(elapsed, 1),
    }


def _wait_for_a_run(data_home: Path, timeout: float = 3600):
    """Wait until the server's database has a finished run, and return it."""
    from mnistlab.database import Database
    from mnistlab.runs import RunStore

    store = RunStore(Database(f"sqlite:///{data_home / 'mnistlab.db'}"), data_home)
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        import sqlalchemy as sa

        from mnistlab.database import runs

        with store.database.engine.connect() as connection:
            row = connection.execute(sa.select(runs.c.id).order_by(runs.c.id.desc())).first()
        if row is not None:
            seen = store.get(row[0])
            if seen.is_done:
                return seen
        time.sleep(1)
    raise RuntimeError(f"the in-app training did not finish (last seen: {seen and seen.status})")


def run(arguments) -> dict:
    if not os.path.exists(CHROMIUM):
        raise ValueError("The app benchmark needs Debian's chromium (bash scripts/install.sh --dev).")
    quick = arguments.quick
    dataset, preset = ("mnist", "dense") if quick else (arguments.dataset, arguments.preset)
    drawers, seconds = (2, 15) if quick else (arguments.drawers, arguments.seconds)
    folder = Path(tempfile.mkdtemp(prefix="mnistlab-app-bench-"))
    print("training a digits model for the drawings, from the command line...", file=sys.stderr, flush=True)
    cli_training("mnist", "dense" if quick else "fast_cnn", folder / "models" / "digits.keras")
    print(f"the yardstick: {preset} on {dataset} from the command line...", file=sys.stderr, flush=True)
    cli = cli_training(dataset, preset)
    report: dict = {"command": "python -m benchmarks " + " ".join(sys.argv[1:]), "quick": quick, "dataset": dataset, "preset": preset, "cli": cli}

    server = AppServer(folder / "data-alone", folder / "models", folder / "server-alone.log").start()
    try:
        print(f"drawing alone: {drawers} browsers for {seconds:.0f} s...", file=sys.stderr, flush=True)
        outcome = asyncio.run(_browser_phase(server, drawers, seconds, None, None))
    finally:
        server.stop()
    drawings = outcome["drawings"]
    report["drawing_alone"] = {
        **drawings.summary(),
        "browsers": drawers,
        "seconds": outcome["seconds"],
        "server_cpu_s": outcome["server_cpu_s"],
        "browsers_cpu_s": outcome["browsers_cpu_s"],
        "server_cpu_s_per_drawing": round(outcome["server_cpu_s"] / max(1, drawings.made), 4),
        "errors": outcome["errors"],
    }

    for name, count, data_home in (
        ("training", max(1, arguments.sessions - 1) if not quick else 1, "data-training"),
        ("drawing_while_training", drawers, "data-busy"),
    ):
        server = AppServer(folder / data_home, folder / "models", folder / f"server-{name}.log").start()
        try:
            print(f"{name}: a training watched by one browser, {count} drawing...", file=sys.stderr, flush=True)
            outcome = asyncio.run(_browser_phase(server, count, None, (dataset, preset), lambda home=folder / data_home: _wait_for_a_run(home)))
        finally:
            server.stop()
        run_snapshot = outcome["run"]
        if run_snapshot.result is None:
            raise RuntimeError(f"the in-app training ended {run_snapshot.status}: {run_snapshot.error}")
        in_app = run_snapshot.result.seconds
        drawings = outcome["drawings"]
        report[name] = {
            **drawings.summary(),
            "browsers": count + 1,
            "errors": outcome["errors"],
            "browsers_cpu_s": outcome["browsers_cpu_s"],
            "seconds": outcome["seconds"],
            "server_cpu_s": outcome["server_cpu_s"],
            "in_app_s": round(in_app, 1),
            "cli_s": round(cli["training_s"], 1),
            "ratio": round(in_app / cli["training_s"], 3),
            "sessions": count + 1,
            "test_accuracy": run_snapshot.result.test_accuracy,
        }
    # This machine's speed drifts over minutes: the command line trains again after the app did, and the
    # yardstick is the mean of the two.
    print("the yardstick again, from the command line...", file=sys.stderr, flush=True)
    report["cli_after"] = cli_training(dataset, preset)
    yardstick = (cli["training_s"] + report["cli_after"]["training_s"]) / 2
    for name in ("training", "drawing_while_training"):
        report[name]["cli_s"] = round(yardstick, 1)
        report[name]["ratio"] = round(report[name]["in_app_s"] / yardstick, 3)
    report["machine_cores"] = os.cpu_count()
    return report
