"""The server process's runtime settings that keep pages quick for a whole class."""

from __future__ import annotations

import tomllib
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_streamlits_keras_reset_no_longer_runs_after_each_page():
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    import mnistlab_ui.server  # noqa: F401 (importing it turns the reset off)

    with mock.patch.object(keras.backend, "clear_session") as clear_session:
        script_runner._clean_problem_modules()
    clear_session.assert_not_called()


def test_matplotlib_figures_are_still_closed_after_each_page():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from streamlit.runtime.scriptrunner import script_runner

    import mnistlab_ui.server  # noqa: F401

    plt.figure()
    script_runner._clean_problem_modules()
    assert plt.get_fignums() == []


def test_streamlit_settings_for_a_classroom_server():
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    # No full garbage collection after every run, no polling of the source files.
    assert settings["runner"]["postScriptGC"] is False
    assert settings["server"]["fileWatcherType"] == "none"
    assert settings["browser"]["gatherUsageStats"] is False


def test_page_files_have_the_names_of_their_urls():
    """The first visit of /train on a fresh server finds the same page whichever way Streamlit looks (mnistlab_ui.shell)."""
    from streamlit.source_util import page_icon_and_name

    from mnistlab_ui.shell import PAGES

    for path, slug, _icon in PAGES:
        assert page_icon_and_name(ROOT / path)[1] == slug


@pytest.mark.slow
def test_without_a_ray_address_nothing_imports_ray(tmp_path):
    """The app installs and runs without Ray: a server on worker processes never imports it."""
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from mnistlab.services import services, shutdown_all\n"
        "import mnistlab_ui.server, mnistlab_ui.run_views, mnistlab_ui.classroom\n"
        "lab = services()\n"
        "assert lab.jobs.backend.name != 'ray', lab.jobs.backend\n"
        "shutdown_all()\n"
        "print('ray' in sys.modules)\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "MNISTLAB_RAY_ADDRESS"}
    environment.update(MNISTLAB_DATA_HOME=str(tmp_path / "data"), MNISTLAB_MODELS_DIR=str(tmp_path / "models"))
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "False"


def test_streamlits_internal_figures_answer_the_server_itself_only(tmp_path):
    """`/_stcore/metrics` lists Streamlit's caches to anyone; MNIST Lab's server keeps it to requests from this machine."""
    import urllib.error
    import urllib.request

    from mnistlab.network import lan_address
    from tests.drivers import AppServer

    address = lan_address()
    server = AppServer(tmp_path / "data", tmp_path / "models", tmp_path / "server.log", address="0.0.0.0").start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/_stcore/metrics", timeout=10) as response:
            assert response.status == 200 and b"# TYPE" in response.read()
        if address:
            try:
                urllib.request.urlopen(f"http://{address}:{server.port}/_stcore/metrics", timeout=10)
                raise AssertionError("the metrics answered a request from the network")
            except urllib.error.HTTPError as refused:
                assert refused.code == 404
            with urllib.request.urlopen(f"http://{address}:{server.port}/_stcore/health", timeout=10) as response:
                assert response.status == 200  # the app itself answers the network
    finally:
        server.stop()


def test_a_test_server_takes_another_port_when_its_own_was_taken_meanwhile(tmp_path):
    """Under load another process took a test server's port between choosing it and binding it ("Port ... is not
    available"), and the browser test failed before any page opened."""
    import socket
    import urllib.request

    from tests.drivers import AppServer

    server = AppServer(tmp_path / "data", tmp_path / "models", tmp_path / "server.log")
    taken = server.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        server.start()
        try:
            assert server.port != taken
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=10) as response:
                assert response.status == 200
            assert f"Port {taken} is not available" in (tmp_path / "server.log").read_text()
        finally:
            server.stop()


@pytest.mark.slow
def test_the_server_warms_what_the_first_pages_need_before_anyone_opens_a_page(tmp_path):
    """Issue 33: the first page after a restart took 11.6 s and the first Draw page 7.3 s. As it starts, the server
    loads TensorFlow, its services (the database, the training places) and the datasets, before any browser comes."""
    from tests.drivers import AppServer, wait_until

    server = AppServer(tmp_path / "data", tmp_path / "models", tmp_path / "server.log").start()
    try:
        maps = Path(f"/proc/{server.pid}/maps")

        def warmed() -> bool:
            loaded = maps.read_text()
            return "libtensorflow_framework" in loaded and (tmp_path / "data" / "mnistlab.db").is_file()

        assert wait_until(warmed, 120, interval=0.5), server.log_path.read_text()[-3000:]
        assert _children(server.pid, b"mnistlab.process_backend"), "no training place was started"
        assert "Warming up" not in server.log_path.read_text()  # no step failed
    finally:
        server.stop()


def _children(parent: int, command: bytes) -> list[int]:
    """The processes `parent` started whose command line holds `command`."""
    import contextlib

    found = []
    for folder in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            parent_id = int((folder / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent_id == parent and command in (folder / "cmdline").read_bytes():
                found.append(int(folder.name))
    return found
