"""`mnistlab serve`: the command it runs, the app's settings passed along, the address it prints, bad ports."""

from __future__ import annotations

import subprocess
import sys

from mnistlab import serving
from tests.drivers import ROOT


def test_serve_runs_the_readmes_command_with_the_apps_own_settings():
    command = serving.serve_command(8765, "127.0.0.1")
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"] and command[4] == str(ROOT / "mnistlab_ui" / "asgi.py")
    options = dict(zip(command[5::2], command[6::2]))
    assert options["--server.port"] == "8765" and options["--server.address"] == "127.0.0.1" and options["--server.headless"] == "true"
    # Every setting of .streamlit/config.toml, as Streamlit reads it from a command line.
    assert options["--server.maxUploadSize"] == "10" and options["--runner.postScriptGC"] == "false"
    assert options["--browser.gatherUsageStats"] == "false" and options["--theme.primaryColor"] == "#0b5cad"
    assert serving.app_folder() == ROOT and serving.app_script() == ROOT / "app.py"


def test_the_printed_address_is_the_public_one_or_this_machines_network_address(monkeypatch):
    assert serving.student_address(8501, "https://lab.school.example/") == "https://lab.school.example"
    monkeypatch.setattr(serving, "lan_address", lambda: "10.0.0.7")
    assert serving.student_address(8501, None) == "http://10.0.0.7:8501"
    monkeypatch.setattr(serving, "lan_address", lambda: None)
    assert serving.student_address(8501, None) == "http://localhost:8501"


def test_a_config_file_that_cannot_be_read_gives_no_options(tmp_path):
    (tmp_path / "config.toml").write_text("[server\nbroken")
    assert serving.config_options(tmp_path / "config.toml") == []
    assert serving.config_options(tmp_path / "missing.toml") == []


def test_a_bad_port_or_public_address_is_one_error_line_before_anything_starts():
    for arguments, environment, message in (
        (["--port", "eighty"], {}, "A port is a whole number from 1 to 65535, not 'eighty'."),
        (["--port", "70000"], {}, "A port is a whole number from 1 to 65535, not '70000'."),
        ([], {"MNISTLAB_PUBLIC_URL": "lab.school"}, "MNISTLAB_PUBLIC_URL must be an address students can open"),
    ):
        completed = subprocess.run(
            [sys.executable, "-m", "mnistlab", "serve", *arguments],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **environment},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert completed.returncode == 2 and completed.stderr.startswith(f"error: {message}"), completed.stderr
        assert "Traceback" not in completed.stderr
