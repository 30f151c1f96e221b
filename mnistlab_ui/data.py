"""Datasets for the pages: loaded once per server process, read-only, shared by every session.

The pages show datasets (examples, test images, mistakes); they do not train on them
(trainings load their own copy in a worker process).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mnistlab.datasets import Dataset, load_dataset
from mnistlab.i18n import _
from mnistlab.pictures import enlarge, tile


@st.cache_resource(show_spinner=False)
def cached_dataset(name: str) -> Dataset:
    """Load a dataset once per server process; every session shares the same arrays."""
    dataset = load_dataset(name)
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        array.setflags(write=False)  # Shared, so nobody may change it.
    return dataset


def dataset_or_error(name: str) -> tuple[Dataset | None, str | None]:
    """The dataset, or None and a message saying how to get it."""
    try:
        with st.spinner(_("Loading the dataset...")):
            return cached_dataset(name), None
    except ValueError as error:
        return None, str(error)


@st.cache_data(show_spinner=False)
def class_strip(name: str, label: int, per_class: int = 8) -> np.ndarray:
    """`per_class` training examples of one class side by side, enlarged by whole pixels."""
    dataset = cached_dataset(name)
    chosen = np.flatnonzero(dataset.y_train == label)[:per_class]
    return tile(np.stack([enlarge(image, 2) for image in dataset.x_train[chosen]]), columns=per_class, gap=2, background=60)


def image_grid(images: np.ndarray, columns: int, scale: int = 1) -> np.ndarray:
    """Tile uint8 images into one enlarged picture."""
    return tile(np.stack([enlarge(image, scale) for image in images]), columns, gap=scale)
