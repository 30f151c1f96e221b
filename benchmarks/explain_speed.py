"""How fast Inside the answer answers on this server: `python -m benchmarks explain`.

A CNN preset is trained on the digits (as the quick digits model is: fast_cnn, seeded),
then each of the page's actions is timed on test digits as a student's drawing, with
the model loaded as the server loads it (`load_for_inference`, its `Inspector`):
the heat map (Grad-CAM), Break it (switch off filters and score 1,000 test images,
then the drawing's answer), fooling within a budget and with a few pixels, the PCA and
t-SNE maps of 2,000 test images, and what the network imagines for a class. The first
call of each (tracing a compiled function) is reported apart; the figures are medians
of the calls after it.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from mnistlab.datasets import load_dataset
from mnistlab.explain import Broken, map_2d
from mnistlab.inference import load_for_inference
from mnistlab.settings import TrainingSettings
from mnistlab.store import ModelStore, metadata_for
from mnistlab.training import train

MAP_IMAGES = 2000
BREAK_IMAGES = 1000


def _timed(action, repeats: int) -> dict:
    """The first call's seconds (it traces), then the median and the slowest of `repeats` more."""
    start = time.perf_counter()
    action(0)
    first = time.perf_counter() - start
    times = []
    for repeat in range(1, repeats + 1):
        start = time.perf_counter()
        action(repeat)
        times.append(time.perf_counter() - start)
    return {"first_s": round(first, 3), "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "repeats": repeats}


def run(arguments) -> dict:
    quick = arguments.quick
    repeats = 3 if quick else 20
    dataset = load_dataset("mnist", allow_download=False)
    settings = TrainingSettings(dataset="mnist", arch=arguments.preset, target_accuracy=None, max_epochs=2 if quick else None)
    print(f"training {arguments.preset} on the digits...", flush=True)
    trained = train(settings, dataset=dataset)
    folder = Path(tempfile.mkdtemp(prefix="mnistlab-explain-bench-"))
    ModelStore(folder).save("bench", trained.model, metadata_for(trained))
    loaded = load_for_inference(folder / "bench.keras")
    inspector = loaded.inspector()
    images = dataset.x_test.astype(np.float32) / 255.0
    labels = dataset.y_test
    count = min(MAP_IMAGES, len(images))
    drawings = images[:64]

    def drawing(index: int) -> np.ndarray:
        return drawings[index % len(drawings)]

    figures: dict = {}
    figures["heat_map"] = _timed(lambda i: inspector.saliency(drawing(i)), repeats)
    broken = Broken(loaded.model, loaded.normalization)
    conv = next(name for name, kind, _size in broken.layers() if kind == "Conv2D")

    def break_it(i: int) -> None:
        broken.apply({conv: list(range(i % 8, i % 8 + 8))}, noise=0.1 * (i % 3))
        broken.accuracy(images[:BREAK_IMAGES], labels[:BREAK_IMAGES])
        broken.probabilities(drawing(i))

    figures["break_it"] = _timed(break_it, repeats)
    fool_repeats = 3 if quick else 10
    figures["fool"] = _timed(lambda i: inspector.fool(drawing(i), (int(labels[i % 64]) + 3) % 10, budget=0.3), fool_repeats)
    figures["fool_few_pixels"] = _timed(lambda i: inspector.fool_few_pixels(drawing(i), (int(labels[i % 64]) + 1) % 10), fool_repeats)
    figures["pca_map"] = _timed(lambda i: map_2d(inspector, images[:count], labels[:count], "pca"), 3)
    start = time.perf_counter()
    map_2d(inspector, images[:count], labels[:count], "tsne")
    figures["tsne_map"] = {"seconds": round(time.perf_counter() - start, 2), "computed": "once per model, shared by everyone"}
    figures["imagine_class"] = _timed(lambda i: inspector.imagine(i % 10), 2 if quick else 5)
    fooled = [inspector.fool(drawing(i), (int(labels[i]) + 3) % 10, budget=0.3) for i in range(10 if quick else 50)]
    return {
        "command": f"python -m benchmarks explain --preset {arguments.preset}" + (" --quick" if quick else ""),
        "preset": arguments.preset,
        "test_accuracy": round(trained.result.test_accuracy, 4),
        "data_source": dataset.source.describe(),
        "map_images": count,
        "break_images": BREAK_IMAGES,
        "figures": figures,
        "fooled": {"tried": len(fooled), "fooled": sum(result.reached for result in fooled)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "quick": bool(quick),
    }
