"""Streamlit-side helpers: cached dataset loaders, session-state keys, model choice.

Only read-only things are shared between browser sessions (the datasets, through
`st.cache_resource`). Each session keeps its own training runs and loaded models in
`st.session_state`, so one user's model never shows up in another's session unless
it was saved to the store. This module imports no TensorFlow at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from mnistlab.datasets import DATASETS, Dataset, load_dataset
from mnistlab.jobs import FINISHED, CANCELLED, TrainingJob
from mnistlab.pictures import enlarge, tile
from mnistlab.store import ModelStore, StoredModel

# Session-state keys, in one place.
RUNS = "mnistlab_runs"  # list[TrainingJob]: this session's trainings, oldest first
SELECTED_MODEL = "mnistlab_selected_model"  # key of the chosen model, shared by the pages
LOADED_MODELS = "mnistlab_loaded_models"  # {key: (model, Predictor)} for this session
DRAWING = "mnistlab_drawing"  # the last drawing's 28x28 input (float32, 0..1)
CANVAS_VERSION = "mnistlab_canvas_version"  # bumped by Clear to start a fresh canvas
EVALUATIONS = "mnistlab_evaluations"  # {job id: Evaluation}
DOWNLOADS = "mnistlab_downloads"  # {job id: bytes of the .keras file}


@st.cache_resource(show_spinner="Loading the dataset...")
def cached_dataset(name: str) -> Dataset:
    """Load a dataset once per server process; every session shares the same arrays."""
    dataset = load_dataset(name)
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        array.setflags(write=False)  # Shared, so nobody may change it.
    return dataset


def dataset_or_error(name: str) -> tuple[Dataset | None, str | None]:
    """The dataset, or None and a message saying how to get it."""
    try:
        return cached_dataset(name), None
    except ValueError as error:
        return None, str(error)


@st.cache_data(show_spinner=False)
def example_grid(name: str, per_class: int = 8) -> np.ndarray:
    """A picture with one row per class and `per_class` examples in each row."""
    dataset = cached_dataset(name)
    rows = []
    for label in range(len(dataset.class_names)):
        chosen = np.flatnonzero(dataset.y_train == label)[:per_class]
        rows.extend(dataset.x_train[chosen])
    return tile(np.stack(rows), columns=per_class, gap=1, background=60)


def session_runs() -> list[TrainingJob]:
    """This session's training runs (created on first use)."""
    return st.session_state.setdefault(RUNS, [])


@dataclass(frozen=True)
class ModelChoice:
    """A model a page can use: one trained in this session, or one from the store."""

    key: str
    label: str
    dataset: str
    class_names: tuple[str, ...]
    normalization: str
    job: TrainingJob | None = None
    stored: StoredModel | None = None


def model_choices() -> list[ModelChoice]:
    """Finished runs of this session (newest first), then saved models."""
    choices = []
    for job in reversed(session_runs()):
        trained = job.trained
        if trained is None or job.status not in (FINISHED, CANCELLED):
            continue
        result = trained.result
        choices.append(
            ModelChoice(
                key=f"run-{job.job_id}",
                label=f"This session: run {job.job_id}, {result.arch} on {result.dataset} (test accuracy {result.test_accuracy:.1%})",
                dataset=result.dataset,
                class_names=trained.class_names,
                normalization=trained.normalization,
                job=job,
            )
        )
    for stored in ModelStore().list():
        dataset = stored.metadata.get("dataset", "mnist")
        choices.append(
            ModelChoice(
                key=f"saved-{stored.name}",
                label=f"Saved: {stored.describe()}",
                dataset=dataset if dataset in DATASETS else "mnist",
                class_names=stored.class_names,
                normalization=stored.normalization,
                stored=stored,
            )
        )
    return choices


def load_choice(choice: ModelChoice):
    """(model, Predictor) for a choice, loaded once per session."""
    from mnistlab.inference import Predictor
    from mnistlab.store import load_model_file

    loaded = st.session_state.setdefault(LOADED_MODELS, {})
    if choice.key not in loaded:
        model = choice.job.trained.model if choice.job is not None else load_model_file(choice.stored.path)
        loaded[choice.key] = (model, Predictor(model, choice.normalization, choice.class_names))
    return loaded[choice.key]


def model_picker(label: str = "Model") -> ModelChoice | None:
    """A select box of the session's and the saved models; the choice is shared by all pages."""
    choices = model_choices()
    if not choices:
        return None
    # The select box holds plain keys: Streamlit copies its options, and a choice holds a live training job.
    by_key = {choice.key: choice for choice in choices}
    keys = list(by_key)
    current = st.session_state.get(SELECTED_MODEL)
    index = keys.index(current) if current in keys else 0
    picked = st.selectbox(label, keys, index=index, format_func=lambda key: by_key[key].label)
    st.session_state[SELECTED_MODEL] = picked
    return by_key[picked]


def image_grid(images: np.ndarray, columns: int, scale: int = 1) -> np.ndarray:
    """Tile uint8 images into one enlarged picture."""
    return tile(np.stack([enlarge(image, scale) for image in images]), columns, gap=scale)
