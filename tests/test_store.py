import json

import numpy as np
import pytest

from mnistlab import store as store_module
from mnistlab.models import ModelConfig, build_model
from mnistlab.store import ModelStore, check_name, load_model_file, model_to_bytes


@pytest.fixture(scope="module")
def small_model():
    return build_model(ModelConfig(dense_units=(8,)))


def test_round_trip(tmp_path, small_model):
    store = ModelStore(tmp_path / "models")
    stored = store.save("my digits", small_model, {"dataset": "mnist", "arch": "dense", "test_accuracy": 0.9, "class_names": list("0123456789")})
    assert stored.path == (tmp_path / "models" / "my digits.keras").resolve()
    assert [entry.name for entry in store.list()] == ["my digits"]
    model, entry = store.load("my digits")
    assert entry.metadata["dataset"] == "mnist" and "saved_at" in entry.metadata
    images = np.random.default_rng(0).random((3, 28, 28)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(images)), np.asarray(small_model(images)), rtol=1e-6)
    assert json.loads((tmp_path / "models" / "my digits.json").read_text())["test_accuracy"] == 0.9
    # Writes are atomic: no temporary file is left behind.
    assert sorted(path.name for path in (tmp_path / "models").iterdir()) == ["my digits.json", "my digits.keras"]
    assert "test accuracy 90.0%" in entry.describe()


@pytest.mark.parametrize("name", ["../evil", "..", "a/b", "a\\b", "/etc/passwd", ".hidden", "", "   ", "x" * 80, "name\x00"])
def test_names_that_could_escape_are_refused(tmp_path, small_model, name):
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ValueError):
        store.save(name, small_model, {})
    assert not (tmp_path / "evil.keras").exists()


def test_name_cleaning():
    assert check_name("  fashion-cnn.keras ") == "fashion-cnn"


def test_load_refuses_a_model_with_the_wrong_shape(tmp_path):
    import keras

    inputs = keras.Input(shape=(28, 28))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs))
    path = tmp_path / "one.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match=r"one score per class: 10 for the digits or the clothes, 2 to 30 for a set of your own\.$"):
        load_model_file(path)


def test_safe_mode_refuses_code_in_a_model_file(tmp_path, monkeypatch):
    import keras

    inputs = keras.Input(shape=(28, 28))
    flat = keras.layers.Flatten()(inputs)
    scaled = keras.layers.Lambda(lambda x: x * 2.0)(flat)
    outputs = keras.layers.Dense(10, activation="softmax")(scaled)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="Lambda layer, which can carry code"):
        load_model_file(path)
    # Behind the archive check, Keras' safe mode still refuses it.
    monkeypatch.setattr(store_module, "archive_problem", lambda path: None)
    with pytest.raises(ValueError, match="cannot be loaded"):
        load_model_file(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "junk.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a complete .keras archive"):
        load_model_file(path)
    with pytest.raises(ValueError, match=".keras files only"):
        load_model_file(tmp_path / "model.h5")


def test_model_to_bytes_is_a_loadable_keras_file(tmp_path, small_model):
    data = model_to_bytes(small_model)
    (tmp_path / "download.keras").write_bytes(data)
    assert load_model_file(tmp_path / "download.keras").count_params() == small_model.count_params()


def test_unknown_model(tmp_path):
    with pytest.raises(ValueError, match="No saved model called 'ghost'"):
        ModelStore(tmp_path).load("ghost")


def test_a_name_with_a_trailing_newline_is_refused():
    with pytest.raises(ValueError, match="not a valid model name"):
        check_name("abc\n.keras")


def test_saving_never_replaces_a_model_unless_asked(tmp_path, small_model):
    from mnistlab.store import ModelExistsError

    store = ModelStore(tmp_path)
    store.save("mine", small_model, {"test_accuracy": 0.9})
    with pytest.raises(ModelExistsError, match="already a model called 'mine'"):
        store.save("mine", small_model, {"test_accuracy": 0.1})
    assert json.loads((tmp_path / "mine.json").read_text())["test_accuracy"] == 0.9
    store.save("mine", small_model, {"test_accuracy": 0.1}, overwrite=True)
    assert json.loads((tmp_path / "mine.json").read_text())["test_accuracy"] == 0.1


def test_leftovers_of_interrupted_saves_are_removed_on_start(tmp_path, small_model):
    import os
    import time

    from mnistlab.config import ServerConfig
    from mnistlab.services import services

    store = ModelStore(tmp_path / "store")
    store.save("kept", small_model, {})
    old = tmp_path / "store" / ".tmp-abc123.keras"
    fresh = tmp_path / "store" / ".tmp-def456.keras"
    old.write_bytes(b"half a model")
    fresh.write_bytes(b"a save in progress")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    environment = {"MNISTLAB_MODELS_DIR": str(tmp_path / "store"), "MNISTLAB_DATA_HOME": os.environ["MNISTLAB_DATA_HOME"]}
    services(ServerConfig.from_environment(environment))
    assert not old.exists() and fresh.exists() and (tmp_path / "store" / "kept.keras").exists()


def test_listing_says_why_a_model_is_unusable(tmp_path, small_model):
    store = ModelStore(tmp_path)
    store.save("good", small_model, {"dataset": "mnist"})
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04cut")
    (tmp_path / "broken.json").write_text("{}")
    store.save("wrong-names", small_model, {"class_names": ["a", "b"]})
    (tmp_path / "bad-dataset.keras").write_bytes((tmp_path / "good.keras").read_bytes())
    (tmp_path / "bad-dataset.json").write_text(json.dumps({"dataset": ["mnist"]}))
    problems = {stored.name: stored.problem for stored in store.list()}
    assert problems["good"] is None
    assert "not a complete .keras archive" in problems["broken"]
    assert "2 class names" in problems["wrong-names"]
    assert "unknown dataset" in problems["bad-dataset"]
    with pytest.raises(ValueError, match="2 class names"):
        store.load("wrong-names")


@pytest.mark.parametrize(
    "metadata, reason",
    [
        ({"normalization": ["divide_255"]}, "unknown normalisation"),
        ({"dataset": {"mnist": 1}}, "unknown dataset"),
        ({"test_accuracy": "high"}, "test_accuracy is not a number"),
        ({"parameters": 1.5}, "parameters is not a whole number"),
        ({"arch": ["dense"]}, "arch is not text"),
        ({"class_names": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}, "10 class names"),
    ],
)
def test_every_metadata_field_is_checked_and_a_wrong_one_is_never_half_used(tmp_path, small_model, metadata, reason):
    store = ModelStore(tmp_path)
    store.save("odd", small_model, {})
    (tmp_path / "odd.json").write_text(json.dumps(metadata))
    (stored,) = store.list()
    assert reason in stored.problem
    assert stored.normalization == "divide_255" and len(stored.class_names) == 10 and stored.dataset is None
    assert stored.describe() == "odd"


def test_a_model_without_its_description_is_listed_as_unusable_with_what_to_do(tmp_path, small_model):
    store = ModelStore(tmp_path)
    store.save("cut", small_model, {"dataset": "mnist"})
    (tmp_path / "cut.json").unlink()
    (stored,) = store.list()
    assert "description file (cut.json" in stored.problem and "Save the model again" in stored.problem


@pytest.mark.slow
def test_a_save_killed_midway_never_leaves_a_model_without_its_description(tmp_path, small_model):
    """kill -9 at any moment of a save: the description is written before the model, so at every moment either both
    files are there or the model is not listed at all."""
    import signal
    import subprocess
    import sys
    import time

    small_model.save(tmp_path / "source.keras")
    script = (
        "import sys; from pathlib import Path; from mnistlab.store import ModelStore; "
        "store = ModelStore(sys.argv[1]); "
        "[store.save_file(f'model{i}', Path(sys.argv[2]), {'dataset': 'mnist'}) for i in range(100000)]"
    )
    for delay in (0.6, 0.8, 1.0, 1.2, 1.4):
        folder = tmp_path / f"store-{delay}"
        worker = subprocess.Popen([sys.executable, "-c", script, str(folder), str(tmp_path / "source.keras")])
        time.sleep(delay)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        listed = ModelStore(folder).list()
        assert listed, "the save never started"
        assert all(stored.problem is None for stored in listed), [stored.problem for stored in listed if stored.problem]


def test_an_archive_that_would_unpack_to_hundreds_of_megabytes_is_refused_without_unpacking(tmp_path, small_model):
    import zipfile

    store = ModelStore(tmp_path)
    store.save("bomb", small_model, {"dataset": "mnist"})
    with zipfile.ZipFile(tmp_path / "bomb.keras", "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("padding.bin", b"\0" * (310 * 1024 * 1024))
    assert (tmp_path / "bomb.keras").stat().st_size < 2 * 1024 * 1024
    (stored,) = store.list()
    assert "would unpack to 3" in stored.problem
    with pytest.raises(ValueError, match="would unpack"):
        store.load("bomb")


@pytest.mark.parametrize("method", ["save", "save_file"])
def test_a_save_cut_off_after_its_first_file_lists_no_model(tmp_path, small_model, monkeypatch, method):
    """The deterministic form of the kill test above: the process dies right after the first file of a save."""
    from mnistlab import store as store_module

    small_model.save(tmp_path / "source.keras")
    original, written = store_module._atomic_replace, []

    def die_after_the_first_file(target, write):
        if written:
            raise KeyboardInterrupt("the process was killed here")
        written.append(target.suffix)
        original(target, write)

    monkeypatch.setattr(store_module, "_atomic_replace", die_after_the_first_file)
    store = ModelStore(tmp_path / "store")
    with pytest.raises(KeyboardInterrupt):
        if method == "save":
            store.save("half", small_model, {"dataset": "mnist"})
        else:
            store.save_file("half", tmp_path / "source.keras", {"dataset": "mnist"})
    assert written == [".json"] and store.list() == []


def nested_config_copy(source, target, depth: int = 200_000) -> None:
    """A copy of a .keras archive whose config.json is `depth` lists deep (a file anyone could drop in the store)."""
    import zipfile

    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for member in original.infolist():
            data = original.read(member)
            copy.writestr(member, "[" * depth + "]" * depth if member.filename == "config.json" else data)


def test_a_deeply_nested_metadata_or_config_makes_only_its_own_model_unusable(tmp_path, small_model):
    """Issue 35: '[' * 200000 + ']' * 200000 as a model's metadata (or its config.json) raised RecursionError on three
    pages for the whole class. Now that model is listed as unusable, with the reason, and the others load."""
    from mnistlab.store import read_metadata

    store = ModelStore(tmp_path)
    store.save("good", small_model, {"dataset": "mnist"})
    (tmp_path / "deep-metadata.keras").write_bytes((tmp_path / "good.keras").read_bytes())
    (tmp_path / "deep-metadata.json").write_text("[" * 200_000 + "]" * 200_000)
    nested_config_copy(tmp_path / "good.keras", tmp_path / "deep-config.keras")
    (tmp_path / "deep-config.json").write_text(json.dumps({"dataset": "mnist"}))
    nested_config_copy(tmp_path / "good.keras", tmp_path / "shallow-but-deep.keras", depth=150)  # parses, but deeper than any model
    (tmp_path / "shallow-but-deep.json").write_text(json.dumps({"dataset": "mnist"}))
    problems = {stored.name: stored.problem for stored in store.list()}
    assert problems["good"] is None
    for name in ("deep-metadata", "deep-config", "shallow-but-deep"):
        assert "nests lists or objects" in problems[name], (name, problems[name])
        with pytest.raises(ValueError, match="nests lists or objects"):
            store.load(name)
        assert store.get(name).problem == problems[name]
    assert read_metadata(tmp_path / "deep-metadata.json")[1].startswith("Its metadata file cannot be read (it nests")
    assert store.load("good")[0].count_params() == small_model.count_params()
