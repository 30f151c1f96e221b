"""Take the lesson home: the exported Keras code builds the app's network, passes ruff, and its notebooks run headless
offline and reach the lessons' accuracies (and a run's own, within a point)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnistlab.export import keras_code, model_code, notebook
from mnistlab.i18n import set_language
from mnistlab.models import PRESETS, build_model, model_summary, parse_network
from mnistlab.settings import TrainingSettings

ROOT = Path(__file__).resolve().parent.parent
FASHION = Path("/usr/share/datasets/fashion-mnist")
NETWORKS = [(preset.name, preset.config_for(dataset)) for preset in PRESETS.values() for dataset in ("mnist", "fashion_mnist")] + [
    ("custom", parse_network("conv8k5x2samenopool,conv16k7,dense32,dense16,dropout0.2,augment,mirror,gelu")),
    ("custom", parse_network("conv16x3,conv32x2same,dense64,batchnorm,tanh")),
    ("custom", parse_network("dense256,dense128,dropout0.25")),
]


@pytest.mark.parametrize("name, config", NETWORKS, ids=[f"{name}-{index}" for index, (name, _config) in enumerate(NETWORKS)])
def test_the_exported_network_is_the_apps_layer_for_layer(name, config):
    import keras

    namespace = {"keras": keras}
    exec(model_code(config), namespace)
    exported = [(row.name, row.kind, row.output_shape, row.parameters) for row in model_summary(namespace["model"])]
    ours = [
        (row.name, row.kind.replace("FusedBatchNormalization", "BatchNormalization"), row.output_shape, row.parameters)
        for row in model_summary(build_model(config))
    ]
    assert exported == ours


def test_the_exported_one_cycle_schedule_is_the_apps():
    import keras

    from mnistlab.optimizers import one_cycle

    code = keras_code(TrainingSettings(dataset="fashion_mnist", arch="fast_cnn"))
    schedule_source = code[code.index("class OneCycle") : code.index("learning_rate = OneCycle")]
    namespace = {"keras": keras, "np": np}
    exec(schedule_source, namespace)
    ours = namespace["OneCycle"](peak=0.008, total_steps=1000)
    apps = one_cycle(0.008, 1000)
    for step in (0, 1, 100, 249, 250, 251, 600, 999, 1000, 1500):
        assert float(ours(step)) == pytest.approx(float(apps(step)), rel=1e-5), step


@pytest.mark.parametrize(
    "settings",
    [
        TrainingSettings(dataset="fashion_mnist", arch="dense", target_accuracy=0.85),
        TrainingSettings(dataset="mnist", arch="accurate_cnn", target_accuracy=None, train_size=1000, test_size=200, normalization="keras_normalize"),
        TrainingSettings(dataset="fashion_mnist", arch="custom", model_config=parse_network("conv16,dense32,mirror"), monitor="accuracy"),
    ],
    ids=["lesson-1", "subset", "custom"],
)
def test_the_exported_script_passes_ruff_and_imports_nothing_of_mnistlab(settings, tmp_path):
    for language in ("en", "tr"):
        set_language(language)
        try:
            script = tmp_path / f"run-{language}.py"
            script.write_text(keras_code(settings, run_id=7, class_drawings="class-abc.npz"))
        finally:
            set_language("en")
        assert "mnistlab" not in script.read_text().replace("MNIST Lab", "")
        completed = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(script)], cwd=ROOT, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_comments_and_explanations_speak_the_pages_language():
    settings = TrainingSettings(dataset="fashion_mnist", arch="dense", target_accuracy=0.85)
    set_language("tr")
    try:
        turkish = keras_code(settings)
        book = notebook(settings)
    finally:
        set_language("en")
    assert "Piksel" in turkish or "piksel" in turkish
    assert book.cells[0].cell_type == "markdown" and "Colab" in book.cells[0].source
    kinds = [cell.cell_type for cell in book.cells[1:]]
    assert kinds == ["markdown", "code"] * (len(kinds) // 2)  # an explanation before every step


# Notebooks run headless, offline: Keras' cache is filled from Debian's Fashion-MNIST, the very files Keras downloads.


@pytest.fixture(scope="module")
def keras_home(tmp_path_factory):
    if not FASHION.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (bash scripts/install.sh --dev)")
    home = tmp_path_factory.mktemp("keras-home")
    (home / "datasets" / "fashion-mnist").mkdir(parents=True)
    for file in FASHION.glob("*.gz"):
        shutil.copy(file, home / "datasets" / "fashion-mnist" / file.name)
    return home


def run_notebook(book, keras_home: Path, folder: Path) -> str:
    """Execute a notebook top to bottom in a fresh kernel, offline; returns what it printed."""
    from nbclient import NotebookClient

    environment = {"KERAS_HOME": str(keras_home), "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        NotebookClient(book, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return "\n".join(output.get("text", "") for cell in book.cells if cell.cell_type == "code" for output in cell.get("outputs", []))


@pytest.mark.slow
def test_the_command_line_writes_lesson_1_as_a_notebook_that_runs_offline_and_stops_at_its_target(keras_home, tmp_path):
    out = tmp_path / "lesson1.ipynb"
    command = [sys.executable, "-m", "mnistlab", "code", "--dataset", "fashion_mnist", "--arch", "dense", "--target-accuracy", "0.85"]
    completed = subprocess.run([*command, "--format", "ipynb", "--out", str(out), "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["format"] == "ipynb"
    import nbformat

    printed = run_notebook(nbformat.read(out, as_version=4), keras_home, tmp_path)
    assert "Reached" in printed and ": stop." in printed
    accuracy = float(printed.split("test accuracy ")[1].split("%")[0])
    assert accuracy >= 84.0, printed[-2000:]


@pytest.mark.slow
def test_the_fast_cnn_notebook_reaches_90_percent(keras_home, tmp_path):
    book = notebook(TrainingSettings(dataset="fashion_mnist", arch="fast_cnn", target_accuracy=None))
    printed = run_notebook(book, keras_home, tmp_path)
    accuracy = float(printed.split("test accuracy ")[1].split("%")[0])
    assert accuracy >= 90.0, printed[-2000:]


TARGET = 0.825  # on the steep part of the curves (about 81% after epoch 1, 83% after epoch 2), not on their noisy plateau


@pytest.mark.slow
def test_a_run_trained_in_the_app_downloads_as_a_notebook_that_reaches_its_target_at_the_same_epoch_and_its_test_accuracy(keras_home, tmp_path):
    """Issue 33: the take-home script needed 16 epochs and 2 min 15 s where the app reached the target at epoch 3: the
    exported code trains as the app does (recipe, schedule, batch, data, validation images, target)."""
    from mnistlab.database import Database
    from mnistlab.jobs import JobManager
    from mnistlab.process_backend import ProcessBackend
    from mnistlab.runs import RunStore

    jobs = JobManager(RunStore(Database(f"sqlite:///{tmp_path / 'runs.db'}"), tmp_path), ProcessBackend(workers=1), "export-test")
    try:
        # A fifth of the training images: the notebook must match the app's run whatever the size, and this is quicker.
        settings = TrainingSettings(dataset="fashion_mnist", arch="dense", target_accuracy=TARGET, max_epochs=12, train_size=12_000)
        run_id = jobs.submit(settings, "browser:home")
        assert jobs.wait(run_id, 600)
        run = jobs.snapshot(run_id)
        assert run.status == "finished", run.error
        assert run.result.target_reached is not None, run.result.history  # the app reached the target
    finally:
        jobs.shutdown()
    out = tmp_path / f"run{run_id}.ipynb"
    environment = dict(os.environ, MNISTLAB_DATABASE_URL=f"sqlite:///{tmp_path / 'runs.db'}", MNISTLAB_DATA_HOME=str(tmp_path))
    completed = subprocess.run(
        [sys.executable, "-m", "mnistlab", "code", "--run", str(run_id), "--out", str(out)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    import nbformat

    printed = run_notebook(nbformat.read(out, as_version=4), keras_home, tmp_path)
    accuracy = float(printed.split("test accuracy ")[1].split("%")[0]) / 100
    reached = re.search(r"Reached [\d.]+% at epoch (\d+): stop", printed)
    assert reached, printed[-2000:]  # the notebook reached the target too
    app_epoch, notebook_epoch = run.result.target_reached.epoch, int(reached.group(1))
    print(f"target {TARGET:.1%}: the app reached it at epoch {app_epoch}, the notebook at epoch {notebook_epoch}")
    # The same data, network, recipe and schedule; only the order of the batches and the float precision may differ.
    assert abs(notebook_epoch - app_epoch) <= 1, (app_epoch, notebook_epoch)
    assert abs(accuracy - run.result.test_accuracy) <= 0.015, (accuracy, run.result.test_accuracy)
