"""Inside the answer: saliency on the ink, fooling within a budget, the map, what it imagines, break it and reset; the
command line's one JSON document; and the page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistlab.explain import Broken, Inspector, map_2d, near_ink
from mnistlab.layers import portable_model
from mnistlab.preprocessing import preprocess
from mnistlab.settings import TrainingSettings
from mnistlab.store import ModelStore, metadata_for
from mnistlab.training import train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_cnn(digits_sample):
    """The quick CNN's recipe, trained briefly on the digits sample (it reads drawn digits well)."""
    return train(TrainingSettings(dataset="mnist", arch="fast_cnn", target_accuracy=None, max_epochs=8), dataset=digits_sample)


def drawn(digits, index: int) -> np.ndarray:
    """A test digit drawn large on a 280x280 canvas (white on black, off-centre), through the Draw page's preprocessing."""
    canvas = np.zeros((280, 280, 4), np.uint8)
    big = np.asarray(Image.fromarray(digits.x_test[index]).resize((168, 168)))
    canvas[60:228, 40:208, :3] = big[..., None]
    canvas[60:228, 40:208, 3] = 255
    return preprocess(canvas).image


@pytest.fixture(scope="module")
def twenty_read_right(quick_cnn, digits_sample):
    """20 drawn digits the quick CNN reads right."""
    inspector = Inspector(portable_model(quick_cnn.model))
    images = np.stack([drawn(digits_sample, index) for index in range(80)])
    right = np.flatnonzero(inspector.probabilities(images).argmax(axis=1) == digits_sample.y_test[:80])[:20]
    assert len(right) == 20
    return inspector, images[right], digits_sample.y_test[right]


def test_fooling_reaches_the_chosen_digit_for_at_least_18_of_20_drawings_within_a_budget_of_0_3(twenty_read_right):
    inspector, images, labels = twenty_read_right
    results = [inspector.fool(image, (int(label) + 3) % 10, budget=0.3) for image, label in zip(images, labels)]
    fooled = [result for result in results if result.reached and result.linf <= 0.3 + 1e-6]
    assert len(fooled) >= 18, [result.to_dict() for result in results]
    for result, label in zip(results, labels):
        assert result.target == (int(label) + 3) % 10 and result.pixels_changed > 0
        np.testing.assert_allclose(result.image - result.change, result.original, atol=1e-6)


def test_a_few_pixels_changed_all_the_way_can_also_fool_it(twenty_read_right):
    inspector, images, labels = twenty_read_right
    result = inspector.fool_few_pixels(images[0], (int(labels[0]) + 1) % 10, most=40)
    assert result.pixels_changed <= 40
    assert set(np.unique(result.image[result.change != 0])) <= {0.0, 1.0}


def test_most_of_the_answers_saliency_lies_on_or_near_the_ink(twenty_read_right):
    inspector, images, _labels = twenty_read_right
    shares = [near_ink(inspector.saliency(image), image, pixels=2) for image in images]
    assert min(shares) >= 0.6, shares
    # "Why not 3?" gives another map than the answer's.
    assert not np.allclose(inspector.saliency(images[0], 3), inspector.saliency(images[0]))


def test_a_dense_network_is_explained_by_gradient_times_input(digits_sample):
    dense = train(TrainingSettings(dataset="mnist", arch="dense", target_accuracy=None, max_epochs=2), dataset=digits_sample)
    inspector = Inspector(dense.model)
    image = drawn(digits_sample, 0)
    heat = inspector.saliency(image)
    assert not inspector.is_convolutional and heat.max() == pytest.approx(1.0)
    assert float(heat[image == 0].sum()) == 0.0  # gradient x input: nothing where there is no ink


def test_switching_off_every_filter_of_the_first_convolution_drops_to_chance_and_reset_restores_exactly(quick_cnn, digits_sample):
    broken = Broken(portable_model(quick_cnn.model))
    images, labels = digits_sample.x_test[:1000] / 255.0, digits_sample.y_test[:1000]
    before = broken.accuracy(images, labels)
    first, _kind, filters = broken.layers()[0]
    broken.apply({first: list(range(filters))})
    assert broken.accuracy(images, labels) == pytest.approx(0.1, abs=0.05)
    broken.apply({}, noise=0.5)
    assert broken.accuracy(images, labels) < before
    broken.reset()
    assert broken.accuracy(images, labels) == before
    for now, then in zip(broken.model.get_weights(), broken.original):
        assert np.array_equal(now, then)


def test_the_map_places_test_images_and_a_drawing_pca_and_tsne(twenty_read_right, digits_sample):
    inspector, images, _labels = twenty_read_right
    test_images, test_labels = digits_sample.x_test[:300] / 255.0, digits_sample.y_test[:300]
    pca = map_2d(inspector, test_images, test_labels, "pca")
    assert pca.points.shape == (300, 2) and len(pca.predicted) == 300
    assert np.allclose(pca.place(pca.embeddings[7]), pca.points[7], atol=1e-3)
    tsne = map_2d(inspector, test_images, test_labels, "tsne")
    assert tsne.points.shape == (300, 2) and np.isfinite(tsne.place(inspector.embedding(images[0])[0])).all()


def test_what_it_imagines_is_a_picture_the_network_takes_for_the_class(twenty_read_right):
    inspector, _images, _labels = twenty_read_right
    imagined = [inspector.imagine(digit) for digit in (0, 3, 7)]
    assert all(picture.shape == (28, 28) and 0 <= picture.min() and picture.max() <= 1 for picture in imagined)
    answers = [int(inspector.probabilities(picture).argmax()) for picture in imagined]
    assert answers == [0, 3, 7], answers
    filter_picture = inspector.imagine(0, filter_of=(inspector.conv_layers[0], 5))
    assert filter_picture.std() > 0


@pytest.mark.slow
def test_explain_on_the_command_line_prints_one_json_document(quick_cnn, digits_sample, tmp_path):
    ModelStore(tmp_path).save("quick", quick_cnn.model, metadata_for(quick_cnn))
    Image.fromarray(digits_sample.x_test[0]).resize((140, 140)).save(tmp_path / "digit.png")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnistlab",
            "explain",
            "--model",
            str(tmp_path / "quick.keras"),
            str(tmp_path / "digit.png"),
            "--target",
            "3",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    document = json.loads(completed.stdout)
    assert document["answer"] == int(digits_sample.y_test[0]) and len(document["probabilities"]) == 10
    assert np.asarray(document["saliency"]).shape == (28, 28)
    assert set(document["fooling"]) >= {"target", "linf", "pixels_changed", "new_answer", "new_confidence"}
    assert document["fooling"]["target"] == 3 and document["fooling"]["linf"] <= 0.3 + 1e-6
    bad = subprocess.run(
        [sys.executable, "-m", "mnistlab", "explain", "--model", "x.keras", "x.png", "--budget", "lots"], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--budget must be a number from 0 to 1" in bad.stderr and "Traceback" not in bad.stderr
