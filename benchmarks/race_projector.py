"""A class race of a whole class on the projector: `python -m benchmarks race-projector`.

What a teacher puts on the projector in lesson 1 with a class of `--students` (25): a class
with that many students (nicknames as a Turkish class has them), a race on lesson 1's step
(the dense network on clothes to 88%), and every student pressing Train in the same second
with a network of their own (another hidden size or learning rate, the lesson's batch, so
all pack), through the app's job manager on the server's own database. The teacher's
dashboard, opened in Chromium at 1024x768 from the teacher's private link, is timed from
`goto` to the race chart on screen, once while the class trains and once after, in English
and in Turkish, then switched to "Only the race, for the projector"; each view is saved as
screenshots in `--out` to look at (the chart, the screen, the whole page).

Measured: the seconds to the last result, how many lines the chart draws and how many are
labelled, the dashboard's seconds to its race chart, and where the chart and the
leaderboard begin on the page (px from the top, at 1024x768), on the whole dashboard and with
only the race.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.class_training import lesson_settings
from benchmarks.training import machine
from mnistlab.classroom import ClassStore
from mnistlab.config import ServerConfig
from mnistlab.database import Database
from mnistlab.jobs import JobManager
from mnistlab.process_backend import ProcessBackend
from mnistlab.race import LEADERS
from mnistlab.runs import RunStore
from mnistlab.settings import CUSTOM
from tests.drivers import CHROMIUM, CHROMIUM_ARGS, PROJECTOR, AppServer

NICKNAMES = (
    "Ali", "Zeynep", "Çağla", "Cem", "Ömer", "Oya", "Deniz", "Elif", "Emre", "Ece", "Mert", "Ayşe", "İrem",
    "Burak", "Selin", "Kaan", "Defne", "Yusuf", "Şule", "Arda", "Nisa", "Umut", "Gül", "Efe", "Ilgın",
    "Tuna", "Beren", "Onur", "Melis", "Sarp",
)  # fmt: skip
LEARNING_RATES = (0.0005, 0.002, 0.004)
RACE_TARGET = 0.88
ONLY_THE_RACE = {"en-GB": "Only the race, for the projector", "tr-TR": "Projeksiyon için yalnızca yarış"}
JOIN_CODE = {"en-GB": "Join code", "tr-TR": "Katılım kodu"}


def student_settings(number: int):
    """Lesson 1's step with one change of the student's own: every third student another learning rate, the others
    another hidden size (32, 40, 48, ...); the lesson's batch, so every network packs with the others."""
    base = lesson_settings(1)
    batch = base.batch_size or base.base_recipe.batch_size
    if number % 3 == 0:
        return replace(base, learning_rate=LEARNING_RATES[(number // 3) % len(LEARNING_RATES)], batch_size=batch)
    return replace(base, arch=CUSTOM, model_config=replace(base.config, dense_units=(32 + 8 * number,)), batch_size=batch)


def _dashboard(browser, url: str, locale: str, out: Path, name: str) -> dict:
    """The teacher's dashboard on the projector: seconds to the race chart, where the chart and the leaderboard begin
    (on the whole dashboard, then with only the race), screenshots of each."""
    context = browser.new_context(viewport=PROJECTOR, locale=locale)
    page = context.new_page()

    def race_in_view() -> tuple:
        chart = page.locator("[data-testid='stVegaLiteChart']").filter(visible=True).last
        table = page.locator("[data-testid='stDataFrame']").filter(visible=True).last
        chart.wait_for(timeout=300_000)
        table.wait_for(timeout=300_000)
        top = page.evaluate("() => window.scrollY")
        return chart, round(chart.bounding_box()["y"] + top), round(table.bounding_box()["y"] + top)

    def whole(path: Path) -> None:
        """The whole page at the projector's width, in one picture."""
        tall = page.evaluate("() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))")
        page.set_viewport_size({"width": PROJECTOR["width"], "height": min(int(tall), 12_000)})
        race_in_view()
        page.screenshot(path=str(path))
        page.set_viewport_size(PROJECTOR)

    try:
        started = time.perf_counter()
        page.goto(url, timeout=300_000)
        chart, chart_top, table_top = race_in_view()
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
        seconds = round(time.perf_counter() - started, 2)
        chart.screenshot(path=str(out / f"race-chart-{name}-{locale}.png"))
        whole(out / f"race-whole-{name}-{locale}.png")
        # "Only the race, for the projector".
        page.get_by_text(ONLY_THE_RACE[locale]).click()
        page.get_by_text(JOIN_CODE[locale], exact=True).wait_for(state="detached", timeout=60_000)
        _chart, only_chart_top, only_table_top = race_in_view()
        page.screenshot(path=str(out / f"race-only-{name}-{locale}.png"))
        return {
            "seconds_to_chart": seconds,
            "chart_top_px": chart_top,
            "leaderboard_top_px": table_top,
            "race_only_chart_top_px": only_chart_top,
            "race_only_leaderboard_top_px": only_table_top,
        }
    finally:
        context.close()


def run(arguments) -> dict:
    if not os.path.exists(CHROMIUM):
        raise ValueError("The race-projector benchmark needs Debian's chromium (bash scripts/install.sh --dev).")
    students = 3 if arguments.quick else arguments.students
    if not 2 <= students <= len(NICKNAMES):
        raise ValueError(f"--students must be from 2 to {len(NICKNAMES)}, not {students}.")
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="mnistlab-race-bench-"))
    database = Database(f"sqlite:///{home / 'mnistlab.db'}")
    classes = ClassStore(database)
    info, key = classes.create_class("7B")
    owners = [f"race-bench-{number}" for number in range(students)]
    for owner, nickname in zip(owners, NICKNAMES, strict=False):
        classes.join(info.code, nickname, owner)
    classes.start_race(info.class_id, key, "Lesson 1", RACE_TARGET, lesson_settings(1))
    config = ServerConfig.from_environment()
    jobs = JobManager(
        RunStore(database, home / "runs"), ProcessBackend(workers=config.max_trainings, nice=config.worker_nice), "race-bench", abandon_after=3600
    )
    server = AppServer(home, home / "models", home / "server.log").start()
    link = f"{server.url}/class?class={info.code}&teacher={key}"
    section: dict = {"command": "python -m benchmarks " + " ".join(sys.argv[1:]), "machine": machine(), "students": students}
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                pressed = time.perf_counter()
                run_ids = [jobs.submit(student_settings(number), owner) for number, owner in enumerate(owners)]
                done = threading.Event()
                waiter = threading.Thread(target=lambda: [jobs.wait(run_id, 3600) for run_id in run_ids] and done.set(), daemon=True)
                waiter.start()
                # While the class trains: the first epochs are in.
                while not done.is_set() and not all(len(jobs.snapshot(run_id).epochs) >= 2 for run_id in run_ids):
                    time.sleep(0.5)
                section["training"] = {locale: _dashboard(browser, link, locale, out, "training") for locale in ("en-GB", "tr-TR")}
                waiter.join()
                section["last_result_s"] = round(time.perf_counter() - pressed, 2)
                section["ended"] = {locale: _dashboard(browser, link, locale, out, "ended") for locale in ("en-GB", "tr-TR")}
            finally:
                browser.close()
        section["lines_labelled"] = min(LEADERS, students)
        section["trainings"] = len({jobs.snapshot(run_id).training_key for run_id in run_ids})
        section["reached"] = sum(
            1 for run_id in run_ids if (result := jobs.snapshot(run_id).result) is not None and result.target_reached is not None
        )
    finally:
        server.stop()
        jobs.shutdown()
    return section
