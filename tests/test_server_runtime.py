"""The server process's runtime settings that keep pages quick for a whole class."""

from __future__ import annotations

import tomllib
from pathlib import Path
from unittest import mock

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
