"""Serving the app: where its files are, the command that starts Streamlit on them, and the address students open.

`mnistlab serve` runs what the README's run command runs (`streamlit run
mnistlab_ui/asgi.py`), from a checkout or from an installed package (`pip install .`,
which installs the app's own files as the package `mnistlab_app`: app.py, pages/ and
.streamlit/config.toml). Streamlit reads .streamlit/config.toml only from the folder it
is started in, so the app's settings are passed as command-line options instead: they hold
wherever the teacher starts it. Before it starts, the command prints the address students
open: MNISTLAB_PUBLIC_URL, else this machine's network address (`mnistlab.network`).

Nothing here imports Streamlit or the app: it finds their files and starts a process.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

from mnistlab.network import lan_address

DEFAULT_PORT = 8501


def app_folder() -> Path:
    """The folder holding app.py, pages/ and .streamlit/: the checkout's root, or the installed `mnistlab_app`."""
    ui = importlib.util.find_spec("mnistlab_ui")  # found, not imported: the core does not import the app
    if ui is not None and ui.origin:
        checkout = Path(ui.origin).resolve().parent.parent
        if (checkout / "app.py").is_file() and (checkout / "pages").is_dir():
            return checkout
    installed = importlib.util.find_spec("mnistlab_app")
    if installed is not None and installed.submodule_search_locations:
        folder = Path(next(iter(installed.submodule_search_locations)))
        if (folder / "app.py").is_file():
            return folder
    raise FileNotFoundError("MNIST Lab's app files (app.py and pages/) are not installed: reinstall it with `pip install .` from its folder.")


def app_script() -> Path:
    return app_folder() / "app.py"


def asgi_script() -> Path:
    """`mnistlab_ui/asgi.py`, the app as Streamlit runs it."""
    ui = importlib.util.find_spec("mnistlab_ui")
    if ui is None or not ui.origin:
        raise FileNotFoundError("MNIST Lab's pages (the mnistlab_ui package) are not installed: reinstall it with `pip install .`.")
    return Path(ui.origin).resolve().parent / "asgi.py"


def config_options(config_file: Path) -> list[str]:
    """The settings of a Streamlit config.toml as command-line options (`--server.maxUploadSize 10`)."""
    try:
        config = tomllib.loads(config_file.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return []
    options = []
    for section, values in config.items():
        for key, value in values.items() if isinstance(values, dict) else ():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            options += [f"--{section}.{key}", text]
    return options


def serve_command(port: int = DEFAULT_PORT, address: str | None = None) -> list[str]:
    """The command that starts the app: Streamlit on `asgi.py`, with the app's settings, headless, on `port`."""
    command = [sys.executable, "-m", "streamlit", "run", str(asgi_script()), *config_options(app_folder() / ".streamlit" / "config.toml")]
    command += ["--server.port", str(port), "--server.headless", "true"]
    if address:
        command += ["--server.address", address]
    return command


def student_address(port: int, public_url: str | None) -> str:
    """The address students open: the public address when one is set, else this machine's network address."""
    if public_url:
        return public_url.rstrip("/")
    host = lan_address() or "localhost"
    return f"http://{host}:{port}"
