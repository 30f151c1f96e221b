"""The Streamlit-side helpers: shared read-only datasets, per-session models."""

import numpy as np
import pytest

import streamlit_helpers
from mnistlab.models import ModelConfig, build_model
from mnistlab.store import ModelStore


def test_every_session_shares_one_read_only_copy_of_a_dataset():
    first = streamlit_helpers.cached_dataset("mnist")
    second = streamlit_helpers.cached_dataset("mnist")
    assert first is second
    with pytest.raises(ValueError):
        first.x_train[0, 0, 0] = 1  # Shared arrays cannot be changed by one session.


def test_example_grid_has_a_row_per_class():
    grid = streamlit_helpers.example_grid("mnist", per_class=4)
    assert grid.shape == (10 * 29 - 1, 4 * 29 - 1)


def test_model_choices_list_saved_models(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path))
    ModelStore(tmp_path).save("shared-model", build_model(ModelConfig(dense_units=(4,))), {"dataset": "fashion_mnist", "class_names": ["a"] * 10})
    monkeypatch.setattr(streamlit_helpers, "session_runs", lambda: [])
    choices = streamlit_helpers.model_choices()
    assert [choice.key for choice in choices] == ["saved-shared-model"]
    assert choices[0].dataset == "fashion_mnist" and choices[0].class_names == ("a",) * 10


def test_image_grid():
    grid = streamlit_helpers.image_grid(np.full((3, 2, 2), 7, np.uint8), columns=2, scale=2)
    assert grid.shape == (2 * 4 + 2, 2 * 4 + 2)
