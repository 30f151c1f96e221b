"""Measure the app the way a server process runs it, for the benchmark (prints one JSON object).

- The Convolutions page with a two-convolution CNN: the first render (TensorFlow
  import, model load, tracing) and the median of later renders (each interaction).
- Memory: one session trains on the Train page while a second session opens it too;
  the process's peak resident memory, and whether both sessions share one copy of the
  dataset (they should: datasets are cached once per process, read-only).

Streamlit's AppTest runs the page scripts in this process, as the server does; the
training itself runs in a worker process, whose peak memory is reported apart.
Usage: python -m benchmarks.measure_app [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.chdir(ROOT)


def peak_memory_mib(pid: str = "self") -> float:
    """Peak resident memory of a process (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def labelled(elements, label):
    return next(element for element in elements if element.label == label)


def convolutions_page(store: str) -> dict:
    from streamlit.testing.v1 import AppTest

    from mnistlab.models import PRESETS, build_model
    from mnistlab.store import ModelStore

    ModelStore(store).save("bench-cnn", build_model(PRESETS["cnn"].config_for("mnist"), seed=0), {"dataset": "mnist", "arch": "cnn"})
    page = AppTest.from_file(str(ROOT / "pages" / "3_convolutions.py"), default_timeout=300)
    start = time.perf_counter()
    page.run()
    first = time.perf_counter() - start
    if page.exception:
        raise RuntimeError(f"the Convolutions page failed: {page.exception}")
    renders = []
    for index in range(5):
        labelled(page.slider, "Filter").set_value(index)
        start = time.perf_counter()
        page.run()
        renders.append(time.perf_counter() - start)
    return {"model": "classic cnn (2 convolutions)", "first_render_s": round(first, 3), "render_s_median": round(statistics.median(renders), 3)}


def memory_with_one_training(quick: bool) -> dict:
    from streamlit.testing.v1 import AppTest

    from mnistlab_ui import data
    from mnistlab_ui.server import lab

    dataset, arch, images = ("mnist", "dense", 1000) if quick else ("fashion_mnist", "fast_cnn", 0)
    trainer = AppTest.from_file(str(ROOT / "pages" / "1_train.py"), default_timeout=300).run()
    labelled(trainer.selectbox, "Dataset").set_value(dataset)
    trainer.run()
    labelled(trainer.selectbox, "Architecture").set_value(arch)
    trainer.run()
    labelled(trainer.selectbox, "Training images").set_value(images)
    trainer.run()
    labelled(trainer.button, "Train").click()
    trainer.run()
    # A second browser session opens the Train page while the first one trains.
    second = AppTest.from_file(str(ROOT / "pages" / "1_train.py"), default_timeout=300).run()
    labelled(second.selectbox, "Dataset").set_value(dataset)
    second.run()
    deadline = time.time() + 900
    while time.time() < deadline:
        time.sleep(2)
        trainer.run()
        if any(metric.label == "Test accuracy" for metric in trainer.metric):
            break
    else:
        raise RuntimeError("the training did not finish")
    shared = data.cached_dataset(dataset) is data.cached_dataset(dataset)
    worker_pids = getattr(lab().jobs.backend, "worker_pids", lambda: [])()
    return {
        "training": f"{arch} on {dataset}",
        "sessions": 2,
        "dataset_copies": 1 if shared else 2,
        "peak_mib": peak_memory_mib(),
        "worker_peak_mib": max((peak_memory_mib(str(pid)) for pid in worker_pids), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MNISTLAB_MODELS_DIR"] = os.path.join(folder, "models")
        os.environ["MNISTLAB_DATA_HOME"] = os.path.join(folder, "data")
        result = {"convolutions_page": convolutions_page(os.environ["MNISTLAB_MODELS_DIR"]), "memory": memory_with_one_training(arguments.quick)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
