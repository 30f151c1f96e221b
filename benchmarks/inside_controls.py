"""How fast Inside the answer's controls answer in a real browser: `python -m benchmarks inside-controls`.

`python -m benchmarks explain` times the computations alone (a heat map in 3 ms); a
student waits for more: the click reaching the server, the page's script, the pictures
and charts coming back. A teacher measured 1.6 to 2.9 s per control on a busy 2-core
server, when every control reran the whole page; each part of the page is now a
fragment that reruns alone, and each control should answer within 1 s.

A server starts with the fast CNN trained on the digit sample; one Chromium at 1024x768
draws a 7 on Draw, follows "Why this answer?" and, `--repeats` times, measures from the
click to what the student waits for: "Explain" another digit (the heat map's caption
names it), "Switch off all of them" in Break it (the test accuracy changes), Reset (it
comes back), one step of "Shake the weights" (the caption says so). With `--busy`, a
process keeps one of the cores busy meanwhile. With `--class-trains N`, a class of N
students trains meanwhile, as on a class's server: lesson 1's step, each student with a
network of their own, pressed again as soon as the class's last run ends, through a job
manager with the server's own training places (`ServerConfig`: their number and their
`nice`) on this machine.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.training import machine
from tests.drivers import CHROMIUM, CHROMIUM_ARGS, PROJECTOR, AppServer, draw_stroke, seven, wait_until_idle


def _metric(page, label: str) -> str:
    return page.locator('[data-testid="stMetric"]').filter(has_text=label).first.inner_text()


def _timed(action, done) -> float:
    started = time.monotonic()
    action()
    done()
    return time.monotonic() - started


def _measure(page, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"explain": [], "switch_off": [], "reset": [], "shake": []}
    accuracy = "Test accuracy"
    page.get_by_role("heading", name="Break it").wait_for(timeout=120_000)
    wait_until_idle(page)
    for repeat in range(repeats):
        digit = "12345689"[repeat % 8]  # why not this digit? (the drawing is a 7)
        heat = page.get_by_text(re.compile(f"^Warm: the pixels that pushed it towards {digit}"))
        box = page.get_by_role("combobox", name="Explain")
        box.evaluate("(element) => element.scrollIntoView({block: 'center', behavior: 'instant'})")
        box.click()
        option = page.get_by_role("option", name=re.compile(f"(why not {digit}\\?|, {digit}$)"))
        option.wait_for(timeout=10_000)
        times["explain"].append(_timed(option.click, lambda heat=heat: heat.wait_for(timeout=60_000)))
        wait_until_idle(page)
        before = _metric(page, accuracy)

        def changed(before=before, same=False):
            page.wait_for_function(
                """([label, before, same]) => [...document.querySelectorAll('[data-testid="stMetric"]')]
                    .some(m => m.innerText.includes(label) && (m.innerText === before) === same)""",
                arg=[accuracy, before, same],
                timeout=60_000,
            )

        times["switch_off"].append(_timed(lambda: page.get_by_text("Switch off all of them", exact=True).click(), changed))
        wait_until_idle(page)
        times["reset"].append(
            _timed(lambda: page.get_by_role("button", name="Reset", exact=True).click(), lambda before=before: changed(before, True))
        )
        wait_until_idle(page)
        slider = page.locator('[data-testid="stSlider"]').filter(has_text="Shake the weights").get_by_role("slider").first
        shaken = page.get_by_text(re.compile("^Switched off: .* weights shaken by"))
        times["shake"].append(
            _timed(lambda slider=slider: (slider.focus(), slider.press("ArrowRight")), lambda shaken=shaken: shaken.wait_for(timeout=60_000))
        )
        wait_until_idle(page)
        page.get_by_role("button", name="Reset", exact=True).click()
        wait_until_idle(page)
    return times


class ClassTraining:
    """A class of `students` training lesson 1 (each their own network) again and again until `stop()`."""

    def __init__(self, students: int):
        import threading

        from benchmarks.race_projector import student_settings
        from mnistlab.config import ServerConfig
        from mnistlab.database import Database
        from mnistlab.jobs import JobManager
        from mnistlab.process_backend import ProcessBackend
        from mnistlab.runs import RunStore

        folder = Path(tempfile.mkdtemp(prefix="mnistlab-inside-class-"))
        config = ServerConfig.from_environment()
        backend = ProcessBackend(workers=config.max_trainings, nice=config.worker_nice)
        self.jobs = JobManager(RunStore(Database(f"sqlite:///{folder / 'runs.db'}"), folder / "runs"), backend, "inside-class", abandon_after=3600)
        self.settings = [student_settings(number) for number in range(students)]
        self.rounds = 0
        self.current: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._train, daemon=True)
        self._thread.start()

    def _train(self) -> None:
        from dataclasses import replace

        while not self._stop.is_set():
            # Another seed each round: nothing is taken from the round before.
            self.current = [
                self.jobs.submit(replace(one, seed=one.seed + self.rounds), f"student-{number}") for number, one in enumerate(self.settings)
            ]
            for run_id in self.current:
                while not self._stop.is_set() and not self.jobs.wait(run_id, 1.0):
                    pass
            if not self._stop.is_set():
                self.rounds += 1  # rounds the class finished while the controls were timed

    def wait_until_training(self, timeout: float = 300) -> None:
        """Until the class's first trainings run (their workers have loaded the data)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(self.jobs.snapshot(run_id).status == "running" for run_id in self.current):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the class's trainings did not start within {timeout:.0f} s")

    def stop(self) -> None:
        self._stop.set()
        self.jobs.shutdown()
        self._thread.join(timeout=60)


def run(arguments) -> dict:
    if not os.path.exists(CHROMIUM):
        raise ValueError("The inside-controls benchmark needs Debian's chromium (bash scripts/install.sh --dev).")
    repeats = 2 if arguments.quick else arguments.repeats
    if not 1 <= repeats <= 50:
        raise ValueError(f"--repeats must be from 1 to 50, not {repeats}.")
    from playwright.sync_api import sync_playwright

    from mnistlab.datasets import load_dataset
    from mnistlab.settings import TrainingSettings
    from mnistlab.store import ModelStore, metadata_for
    from mnistlab.training import train

    folder = Path(tempfile.mkdtemp(prefix="mnistlab-inside-controls-"))
    print("training the fast CNN on the digit sample...", file=sys.stderr, flush=True)
    trained = train(TrainingSettings(dataset="mnist", arch="fast_cnn", target_accuracy=None, max_epochs=3), dataset=load_dataset("mnist"))
    ModelStore(folder / "models").save("inside-digits", trained.model, metadata_for(trained))
    server = AppServer(folder / "data", folder / "models", folder / "server.log").start()
    # A process of its own (not a fork of this one, whose browser connection a fork would share) keeping a core busy.
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if arguments.busy else None
    students = min(arguments.class_trains, 3) if arguments.quick and arguments.class_trains else arguments.class_trains
    if not 0 <= students <= 30:
        raise ValueError(f"--class-trains must be from 0 to 30 students, not {students}.")
    classroom = ClassTraining(students) if students else None
    try:
        if classroom is not None:
            classroom.wait_until_training()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_context(viewport=PROJECTOR).new_page()
            page.goto(f"{server.url}/draw")
            draw_stroke(page, seven())
            page.locator('[data-testid="stMetric"]').filter(has_text="Prediction").wait_for(timeout=120_000)
            page.get_by_role("link", name="Why this answer? Look inside it, and try to fool it").click()
            times = _measure(page, repeats)
            browser.close()
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        if classroom is not None:
            classroom.stop()
        server.stop()
    section: dict = {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "repeats": repeats,
        "busy": bool(arguments.busy),
        "class_training": students,
    }
    if classroom is not None:
        section["class_rounds"] = classroom.rounds
    for name, values in times.items():
        section[f"{name}_median_s"] = round(statistics.median(values), 2)
        section[f"{name}_max_s"] = round(max(values), 2)
    section["slowest_median_s"] = max(section[f"{name}_median_s"] for name in times)
    return section
