"""A class drawing in class mode at once, in real browsers: `python -m benchmarks classroom`.

A teacher's class is made in the server's database with a saved digits model as the
class model. `--students` browsers (separate contexts, so separate cookies) open the
join link, join with a nickname, follow the link to the Draw page and make
`--drawings` drawings each: draw the stroke, wait for the class model's answer, press
"Save for the class", wait for "Saved", pause one to three seconds. Meanwhile the
teacher's dashboard is open and refreshes itself.

Measured: drawings made against drawings in the database (none may be lost), pen-up
to answer and Save to "Saved" (p50, p95), and the server process's CPU seconds per
saved drawing. All browsers share this machine's two cores with the server (in a class
they run on the students' own devices); their CPU is reported too.
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

from benchmarks.app_load import ANSWER_TIMEOUT, _idle, _stroke, cli_training, percentile
from tests.drivers import CHROMIUM, CHROMIUM_ARGS, PROJECTOR, AppServer, browsers_cpu_seconds


def _times(values: list[float]) -> dict:
    return {"p50_s": round(percentile(values, 0.5), 3), "p95_s": round(percentile(values, 0.95), 3), "max_s": round(max(values, default=0.0), 3)}


async def student(browser, url: str, code: str, number: int, drawings: int, record: dict, ready: asyncio.Queue, go: asyncio.Event) -> None:
    rng = random.Random(number)
    context = await browser.new_context(viewport=PROJECTOR)
    page = await context.new_page()
    await page.goto(f"{url}/class?join={code}", timeout=ANSWER_TIMEOUT * 2000)
    await page.get_by_role("textbox", name="Nickname").fill(f"Student {number + 1}", timeout=ANSWER_TIMEOUT * 2000)
    await page.get_by_role("button", name="Join").click()
    await page.get_by_role("link", name="Draw the digits the class needs").click(timeout=ANSWER_TIMEOUT * 1000)
    await page.get_by_text(re.compile(r"^Draw a \d$")).wait_for(timeout=ANSWER_TIMEOUT * 1000)
    await _idle(page)
    await ready.put(number)
    await go.wait()
    prediction = page.locator('[data-testid="stMetric"]').filter(has_text="Prediction")
    for _drawing in range(drawings):
        await _stroke(page, rng)
        record["made"] += 1
        pen_up = time.monotonic()
        try:
            await prediction.wait_for(state="visible", timeout=ANSWER_TIMEOUT * 1000)
            record["answer"].append(time.monotonic() - pen_up)
            pressed = time.monotonic()
            await page.get_by_role("button", name="Save for the class").click(timeout=ANSWER_TIMEOUT * 1000)
            await page.get_by_text(re.compile(r"Saved your \d")).wait_for(timeout=ANSWER_TIMEOUT * 1000)
            record["save"].append(time.monotonic() - pressed)
        except Exception as error:  # noqa: BLE001 (Playwright's timeout: this drawing was lost)
            record["lost"].append(f"student {number + 1}: {type(error).__name__}: {str(error).splitlines()[0][:160]}")
            await page.reload()
        await asyncio.sleep(rng.uniform(1.0, 3.0))
    # The context stays open until the browsers' CPU is measured (a closed page's process takes its CPU time with it).


async def _class_phase(server: AppServer, code: str, teacher_link: str, students: int, drawings: int) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        teacher = await (await browser.new_context(viewport=PROJECTOR)).new_page()
        await teacher.goto(teacher_link)
        await teacher.get_by_text("Drawings per digit").wait_for(timeout=ANSWER_TIMEOUT * 2000)
        record: dict = {"made": 0, "answer": [], "save": [], "lost": []}
        ready, go = asyncio.Queue(), asyncio.Event()
        tasks = [asyncio.create_task(student(browser, server.url, code, number, drawings, record, ready, go)) for number in range(students)]
        for _ in range(students):
            await ready.get()
        cpu, browsers_cpu, started = server.cpu_seconds(), browsers_cpu_seconds(), time.monotonic()
        go.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.monotonic() - started
        cpu, browsers_cpu = server.cpu_seconds() - cpu, browsers_cpu_seconds() - browsers_cpu
        # The teacher's dashboard, refreshed by itself, shows every drawing.
        dashboard_total = None
        try:
            await teacher.wait_for_function(
                "(total) => [...document.querySelectorAll('[data-testid=\"stMetric\"]')]"
                ".some(m => m.innerText.includes('Drawings') && m.innerText.includes(String(total)))",
                arg=record["made"] - len(record["lost"]),
                timeout=60_000,
            )
            dashboard_total = record["made"] - len(record["lost"])
        except Exception:  # noqa: BLE001, S110 (reported as not shown)
            pass
        await browser.close()
    record["errors"] = [repr(result) for result in results if isinstance(result, Exception)][:3]
    return {
        "record": record,
        "server_cpu_s": round(cpu, 2),
        "browsers_cpu_s": round(browsers_cpu, 2),
        "seconds": round(elapsed, 1),
        "dashboard_total": dashboard_total,
    }


def run(arguments) -> dict:
    if not os.path.exists(CHROMIUM):
        raise ValueError("The classroom benchmark needs Debian's chromium (bash scripts/install.sh --dev).")
    students, drawings = (3, 2) if arguments.quick else (arguments.students, arguments.drawings)
    folder = Path(tempfile.mkdtemp(prefix="mnistlab-class-bench-"))
    print("training the class model (fast_cnn on digits) from the command line...", file=sys.stderr, flush=True)
    cli_training("mnist", "dense" if arguments.quick else "fast_cnn", folder / "models" / "class-digits.keras")
    from mnistlab.classroom import ClassStore
    from mnistlab.database import Database

    classes = ClassStore(Database(f"sqlite:///{folder / 'data' / 'mnistlab.db'}"))
    info, key = classes.create_class("Benchmark class")
    classes.set_model(info.class_id, key, "class-digits")
    server = AppServer(folder / "data", folder / "models", folder / "server.log").start()
    try:
        print(f"{students} students drawing {drawings} digits each...", file=sys.stderr, flush=True)
        outcome = asyncio.run(_class_phase(server, info.code, f"{server.url}/class?class={info.code}&teacher={key}", students, drawings))
    finally:
        server.stop()
    record = outcome["record"]
    saved = len(classes.arrays(info.class_id))
    return {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "quick": bool(arguments.quick),
        "students": students,
        "drawings_made": record["made"],
        "drawings_saved": saved,
        "lost": record["lost"][:5],
        "errors": record["errors"],
        "answer": _times(record["answer"]),
        "save": _times(record["save"]),
        "seconds": outcome["seconds"],
        "server_cpu_s": outcome["server_cpu_s"],
        "browsers_cpu_s": outcome["browsers_cpu_s"],
        "server_cpu_s_per_drawing": round(outcome["server_cpu_s"] / max(1, saved), 4),
        "dashboard_showed_all": outcome["dashboard_total"] == saved,
        "machine_cores": os.cpu_count(),
    }
