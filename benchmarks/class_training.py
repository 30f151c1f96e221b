"""A class pressing Train at once, through the app's job manager: `python -m benchmarks class-training`.

Each scenario is what a class does in a lesson, measured as the app serves it: the
Train page's settings of the lesson's step (`read_link` and `settings_from_link`, as
the page reads a lesson's link), submitted by as many students (owners) as the class
has, from as many threads in the same second, to a `JobManager` with the app's own
backend (`ProcessBackend` with the server's default number of training places).

- `lesson1`: 25 students on lesson 1's step (the dense network on clothes to 88%).
- `lesson4`: 8 students on lesson 4's fast-CNN step (to 89%).
- `variations`: 12 students each with their own variation of lesson 1's network (another
  learning rate or hidden size), so 12 different networks, each stopping at the lesson's
  target; the same 12 are also trained one after another (each submitted when the one
  before finished), as the server trained a class before packing.
- `packed`: the same 12 networks for a fixed 3 epochs with no target, at once (packed) and
  one by one: the same work both ways, so the time and each network's test accuracy
  compare like for like (with a target, a network whose validation accuracy ends an epoch
  a hair either side of it trains a different number of epochs). One by one is measured
  twice: through the job manager, where a lone dense network trains with the pack engine
  (a pack of one), and with Keras' own `fit` one after another (how the server trained a
  lone network before, and how the command line trains).

For each scenario: the seconds from the press to each student's result (first, median,
last) and the last one over one run alone. One run alone is, for the same settings, that
training on a quiet server; for different networks, the median of each network's own
time when trained one by one. Every measurement gets a fresh database (so nothing is
shared with an earlier finished run) and a warmed-up worker (TensorFlow imported and
the data loaded, as on a server that has been up for a while).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.training import machine
from mnistlab.config import ServerConfig
from mnistlab.database import Database
from mnistlab.jobs import GATHER_SECONDS, JobManager
from mnistlab.lessons import LESSONS
from mnistlab.links import read_link
from mnistlab.process_backend import ProcessBackend
from mnistlab.runs import FINISHED, RunStore
from mnistlab.settings import CUSTOM, TrainingSettings, settings_from_link

LEARNING_RATES = (0.0005, 0.001, 0.002, 0.004)
HIDDEN_SIZES = (64, 128, 256)
FIXED_EPOCHS = 3


def lesson_settings(lesson: int, step: int = 0) -> TrainingSettings:
    """What the Train page trains when a student opens this lesson step's link and presses Train."""
    link = read_link("train", dict(LESSONS[lesson - 1].steps[step].query))
    if link.notes:
        raise ValueError(f"lesson {lesson}'s link does not read cleanly: {link.notes}")
    return settings_from_link(link.values)


def variations(base: TrainingSettings, count: int) -> list[TrainingSettings]:
    """`count` different dense networks of a lesson: hidden sizes times learning rates."""
    networks = []
    for units in HIDDEN_SIZES:
        for rate in LEARNING_RATES:
            config = replace(base.config, dense_units=(units,))
            # Only the network and its learning rate change: the batch size stays the lesson's.
            batch = base.batch_size or base.base_recipe.batch_size
            networks.append(replace(base, arch=CUSTOM, model_config=config, learning_rate=rate, batch_size=batch))
    if count > len(networks):
        raise ValueError(f"at most {len(networks)} variations, not {count}.")
    return networks[:count]


class Server:
    """A job manager as the app builds it, on a fresh database, with its worker warmed up."""

    def __init__(self, label: str, warm_up: TrainingSettings):
        folder = Path(tempfile.mkdtemp(prefix=f"mnistlab-class-bench-{label}-"))
        config = ServerConfig.from_environment()
        backend = ProcessBackend(workers=config.max_trainings, nice=config.worker_nice)
        self.jobs = JobManager(RunStore(Database(f"sqlite:///{folder / 'runs.db'}"), folder / "runs"), backend, f"bench-{label}", abandon_after=3600)
        # Another seed and one small epoch: the worker imports TensorFlow and loads the data, and nothing is shared.
        small = replace(warm_up, seed=warm_up.seed + 1000, max_epochs=1, target_accuracy=None, train_size=2000, test_size=500)
        places = max(1, backend.capacity)
        warm_runs = [self.jobs.submit(small, f"warm-up-{place}") for place in range(places)]
        for run_id in warm_runs:
            self._finished(run_id)

    def _finished(self, run_id: int, timeout: float = 7200) -> dict:
        if not self.jobs.wait(run_id, timeout):
            raise RuntimeError(f"run {run_id} did not finish within {timeout:.0f} s")
        snapshot = self.jobs.snapshot(run_id)
        if snapshot.status != FINISHED:
            raise RuntimeError(f"run {run_id} ended {snapshot.status}: {snapshot.error}")
        return {
            "run": run_id,
            "test_accuracy": round(snapshot.result.test_accuracy, 4),
            "epochs": len(snapshot.result.history),
            "training_key": snapshot.training_key,
        }

    def class_presses(self, settings: list[TrainingSettings]) -> list[dict]:
        """Every student presses Train in the same second; each one's seconds to their result."""
        results: list[dict | None] = [None] * len(settings)
        errors: list[BaseException] = []
        start = threading.Barrier(len(settings) + 1)
        pressed = time.perf_counter()

        def student(index: int) -> None:
            try:
                start.wait()
                run_id = self.jobs.submit(settings[index], f"student-{index + 1}")
                outcome = self._finished(run_id)
                outcome["seconds"] = round(time.perf_counter() - pressed, 2)
                results[index] = outcome
            except BaseException as error:  # noqa: BLE001 - reported below, with the others
                errors.append(error)

        threads = [threading.Thread(target=student, args=(index,)) for index in range(len(settings))]
        for thread in threads:
            thread.start()
        pressed = time.perf_counter()
        start.wait()
        for thread in threads:
            thread.join()
        if errors:
            raise RuntimeError(f"{len(errors)} of {len(settings)} students got no result: {errors[0]}")
        return results

    def one_by_one(self, settings: list[TrainingSettings]) -> list[dict]:
        """One network after another, each submitted when the one before finished; seconds from the first press."""
        pressed, results = time.perf_counter(), []
        for index, one in enumerate(settings):
            outcome = self._finished(self.jobs.submit(one, f"student-{index + 1}"))
            outcome["seconds"] = round(time.perf_counter() - pressed, 2)
            results.append(outcome)
        return results

    def shutdown(self) -> None:
        self.jobs.shutdown()


def _alone(label: str, settings: TrainingSettings) -> dict:
    server = Server(f"{label}-alone", settings)
    try:
        return server.one_by_one([settings])[0]
    finally:
        server.shutdown()


def _summary(results: list[dict], alone_s: float) -> dict:
    seconds = sorted(result["seconds"] for result in results)
    return {
        "students": len(results),
        "first_s": seconds[0],
        "median_s": round(statistics.median(seconds), 2),
        "last_s": seconds[-1],
        "alone_s": alone_s,
        "last_over_alone": round(seconds[-1] / alone_s, 2),
        "trainings": len({result["training_key"] for result in results}),
    }


def _class_scenario(label: str, settings: list[TrainingSettings]) -> dict:
    """A class with the same settings: one run alone on a quiet server, then every student at once on another."""
    alone = _alone(label, settings[0])
    pressed = _on_a_fresh_server(label, settings[0], lambda server: server.class_presses(settings))
    print(f"{label}: last result after {max(r['seconds'] for r in pressed)} s, alone {alone['seconds']} s", flush=True)
    return {**_summary(pressed, alone["seconds"]), "alone": alone, "results": pressed}


def _on_a_fresh_server(label: str, warm_up: TrainingSettings, work):
    server = Server(label, warm_up)
    try:
        return work(server)
    finally:
        server.shutdown()


def _durations(one_by_one: list[dict]) -> list[float]:
    """Each network's own seconds in a one-by-one series (its result's time less the one before)."""
    ends = [result["seconds"] for result in one_by_one]
    return [round(end - before, 2) for before, end in zip([0.0, *ends[:-1]], ends, strict=True)]


def _different_networks(label: str, networks: list[TrainingSettings]) -> dict:
    """Different networks pressed at once (packed) and the same networks one after another, each on a fresh server:
    the class's times, each network's time alone, and each network's test accuracy both ways."""
    pressed = _on_a_fresh_server(label, networks[0], lambda server: server.class_presses(networks))
    sequential = _on_a_fresh_server(f"{label}-one-by-one", networks[0], lambda server: server.one_by_one(networks))
    alone = _durations(sequential)
    packed_s, sequential_s = max(r["seconds"] for r in pressed), sequential[-1]["seconds"]
    gaps = [round(100 * abs(a["test_accuracy"] - b["test_accuracy"]), 2) for a, b in zip(pressed, sequential, strict=True)]
    print(f"{label}: all {len(networks)} after {packed_s} s at once, {sequential_s} s one by one", flush=True)
    return {
        **_summary(pressed, round(statistics.median(alone), 2)),
        "alone_each_s": alone,
        "slowest_alone_s": max(alone),
        "one_by_one_s": sequential_s,
        "speed_up": round(sequential_s / packed_s, 2),
        "epochs_packed": [r["epochs"] for r in pressed],
        "epochs_alone": [r["epochs"] for r in sequential],
        "packed_accuracy": [r["test_accuracy"] for r in pressed],
        "alone_accuracy": [r["test_accuracy"] for r in sequential],
        "accuracy_gap_points": gaps,
        "largest_gap_points": max(gaps),
        "results": pressed,
        "one_by_one": sequential,
    }


def _keras_fit_one_by_one(networks: list[TrainingSettings]) -> dict:
    """The same networks trained one after another with Keras' own `fit` (`mnistlab.training.train`, as the command
    line trains and as the server trained a lone network before a pack of one), in this process: seconds and accuracy."""
    from mnistlab.datasets import load_dataset
    from mnistlab.training import train

    dataset = load_dataset(networks[0].dataset, allow_download=False)
    train(replace(networks[0], max_epochs=1, train_size=2000, test_size=500), dataset=dataset)  # warm-up: TensorFlow's first trace
    seconds, accuracies = [], []
    for network in networks:
        start = time.perf_counter()
        trained = train(network, dataset=dataset)
        seconds.append(round(time.perf_counter() - start, 2))
        accuracies.append(round(trained.result.test_accuracy, 4))
    return {"each_s": seconds, "total_s": round(sum(seconds), 2), "accuracy": accuracies}


def run(arguments) -> dict:
    students = {"lesson1": 25, "lesson4": 8, "variations": 12}
    if arguments.quick:
        students = {"lesson1": 4, "lesson4": 2, "variations": 4}
    lesson1, lesson4 = lesson_settings(1), lesson_settings(4)
    if arguments.quick:
        lesson1 = replace(lesson1, train_size=3000, test_size=500, max_epochs=2)
        lesson4 = replace(lesson4, train_size=3000, test_size=500, max_epochs=1)
    different = variations(lesson1, students["variations"])
    # The same networks for a fixed number of epochs, no target: the same work both ways, so accuracy compares like for like.
    fixed = [replace(network, target_accuracy=None, max_epochs=1 if arguments.quick else FIXED_EPOCHS) for network in different]
    started = time.perf_counter()
    scenarios = {
        "lesson1": _class_scenario("lesson1", [lesson1] * students["lesson1"]),
        "lesson4": _class_scenario("lesson4", [lesson4] * students["lesson4"]),
        "variations": _different_networks("variations", different),
    }
    packed = _different_networks("packed", fixed)
    keras_fit = _keras_fit_one_by_one(fixed)
    keras_variations = _keras_fit_one_by_one(different)
    variation = scenarios["variations"]
    variation["keras_fit_alone_each_s"] = keras_variations["each_s"]
    variation["keras_fit_alone_s"] = round(statistics.median(keras_variations["each_s"]), 2)
    variation["last_over_keras_fit_alone"] = round(variation["last_s"] / variation["keras_fit_alone_s"], 2)
    config = ServerConfig.from_environment()
    return {
        "command": "python -m benchmarks class-training" + (" --quick" if arguments.quick else ""),
        "training_places": config.max_trainings,
        "gather_seconds": GATHER_SECONDS,
        "lesson1_settings": lesson1.to_dict(),
        "lesson4_settings": lesson4.to_dict(),
        "variations": [f"dense {s.config.dense_units[0]}, learning rate {s.learning_rate}" for s in different],
        "scenarios": {
            name: {key: value for key, value in scenario.items() if key not in ("results", "one_by_one")} for name, scenario in scenarios.items()
        },
        "packed": {
            "networks": len(fixed),
            "epochs": fixed[0].max_epochs,
            "packed_s": packed["last_s"],
            **{key: packed[key] for key in ("one_by_one_s", "speed_up", "alone_each_s", "packed_accuracy", "alone_accuracy")},
            **{key: packed[key] for key in ("accuracy_gap_points", "largest_gap_points")},
            "keras_fit_one_by_one_s": keras_fit["total_s"],
            "keras_fit_each_s": keras_fit["each_s"],
            "keras_fit_accuracy": keras_fit["accuracy"],
            "speed_up_over_keras_fit": round(keras_fit["total_s"] / packed["last_s"], 2),
            "largest_gap_to_keras_fit_points": max(
                round(100 * abs(a - b), 2) for a, b in zip(packed["packed_accuracy"], keras_fit["accuracy"], strict=True)
            ),
        },
        "results": {name: scenario["results"] for name, scenario in scenarios.items()}
        | {"variations_one_by_one": scenarios["variations"]["one_by_one"], "packed": packed["results"], "packed_one_by_one": packed["one_by_one"]},
        "machine": machine(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "quick": bool(arguments.quick),
    }
