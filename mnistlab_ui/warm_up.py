"""Warming the server when it starts, so the first student waits no longer than the second.

A page's first run in a fresh server process pays for everything once: TensorFlow and Keras
(imported, their first model run), the services (the database, the job manager and its
worker processes), the datasets the pages show, the pages' own modules (charts, tables),
the model a browser without runs of its own opens Draw with. A class measured 11.6 s for
the first page after a restart and 7.3 s for the first Draw page. `start` does all of it on a background thread as the server starts
(`mnistlab_ui/asgi.py`'s lifespan), so it is ready by the time the teacher has walked to
the projector; a page that comes first meanwhile simply waits for what it needs, as
before. `MNISTLAB_WARM_UP=0` leaves the server cold (to measure the difference:
`python -m benchmarks first-visit`).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time

_LOGGER = logging.getLogger(__name__)

# The modules the pages import, heaviest first (each import is done once per process).
PAGE_MODULES = (
    "tensorflow",
    "keras",
    "pandas",
    "altair",
    "mnistlab_ui.run_views",
    "mnistlab_ui.train_form",
    "mnistlab_ui.canvas",
    "mnistlab_ui.inside",
    "mnistlab_ui.race",
    "mnistlab_ui.class_dashboard",
    "mnistlab.explain",
)

_started = threading.Event()


def enabled(environ=os.environ) -> bool:
    return environ.get("MNISTLAB_WARM_UP", "1").strip().lower() not in ("0", "no", "false", "off")


def start() -> threading.Thread | None:
    """Warm the server on a background thread (once per process); None when switched off or already started."""
    if not enabled() or _started.is_set():
        return None
    _started.set()
    thread = threading.Thread(target=warm, name="mnistlab-warm-up", daemon=True)
    thread.start()
    return thread


def warm() -> dict[str, float]:
    """Everything a first page needs, in the order the pages need it; returns the seconds of each step. A step that
    fails is logged and skipped: the page that needs it then says what is wrong, as it would have."""
    steps = {"services": _services, "datasets": _datasets, "modules": _modules, "first model run": _first_model_run, "models": _models}
    seconds = {}
    for name, step in steps.items():
        started = time.monotonic()
        try:
            step()
        except Exception:  # warming is a favour: the page does the same work, and reports it, if this fails
            _LOGGER.warning("Warming up %s failed; the first page that needs it does it instead.", name, exc_info=True)
        seconds[name] = round(time.monotonic() - started, 2)
    _LOGGER.info("Warmed up in %.1f s: %s", sum(seconds.values()), seconds)
    return seconds


def _services() -> None:
    from mnistlab_ui.server import lab_or_problem

    lab_or_problem()


def _datasets() -> None:
    from mnistlab.datasets import DATASETS
    from mnistlab_ui.data import cached_dataset

    for name in DATASETS:
        try:
            cached_dataset(name)
        except ValueError:
            pass  # not on this machine: the pages say how to get it


def _modules() -> None:
    for name in PAGE_MODULES:
        importlib.import_module(name)


def _first_model_run() -> None:
    """TensorFlow's first model run (its thread pools, oneDNN's kernels, Keras' compiled predict) on a small CNN."""
    import numpy as np

    from mnistlab.models import build_model, get_preset

    model = build_model(get_preset("fast_cnn").config_for("mnist"), name="warm_up")
    model.predict(np.zeros((1, 28, 28), dtype="float32"), verbose=0)


def _models() -> None:
    """The quick or saved model each dataset's pages open with (Draw would load it on its first visit)."""
    from mnistlab_ui.models import warm_shared_models

    warm_shared_models()
