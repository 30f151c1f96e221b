"""The server process's side of the pages: its services, and the one change to Streamlit's runtime it needs.

Streamlit calls `keras.backend.clear_session()` after every script and fragment run
in the server process (`_clean_problem_modules` in its script runner). That resets
Keras' global state while other sessions may be loading or running models (Keras'
safe-mode flag lives in that state), clears TensorFlow's kernel cache, and runs a
full garbage collection: measured here at about 0.22 CPU-seconds per rerun with
TensorFlow loaded, more than a whole drawing may cost. Nothing trains in this
process any more (trainings run in worker processes), so the reset has nothing to
clean: `quiet_keras_reset` keeps Streamlit's matplotlib clean-up and drops the Keras
one. It is applied when this module is imported, before any page runs. (Streamlit's
other full collection after each run is switched off in .streamlit/config.toml,
`runner.postScriptGC`.)
"""

from __future__ import annotations

import logging
import sys

from mnistlab.services import Services, services

_LOGGER = logging.getLogger(__name__)


def _close_pyplot_only() -> None:
    """Streamlit's clean-up after a run, without Keras' global reset."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        try:
            pyplot.close("all")
        except Exception:  # noqa: BLE001, S110 (as Streamlit does: a clean-up must never break a page)
            pass


def quiet_keras_reset() -> bool:
    """Replace Streamlit's after-run clean-up; returns whether Streamlit had the function to replace."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    if not hasattr(script_runner, "_clean_problem_modules"):
        _LOGGER.warning("Streamlit has no _clean_problem_modules any more; its Keras reset may still run after each page.")
        return False
    script_runner._clean_problem_modules = _close_pyplot_only
    return True


def lab() -> Services:
    """This server's database, stores and job manager. When the database cannot be used (damaged, read-only, a full
    disk), the page says what is wrong and what to do, once, and stops there."""
    found, problem = lab_or_problem()
    if found is None:
        import streamlit as st

        from mnistlab_ui.text import plain

        st.error(plain(problem), icon=":material/database:")
        st.stop()
    return found


def lab_or_problem() -> tuple[Services | None, str | None]:
    """This server's services, or None and what is wrong with them (pages that can do without the database)."""
    from mnistlab.database import DatabaseUnavailableError, DatabaseVersionError
    from mnistlab_ui.presence import page_open

    try:
        found = services()
    except (DatabaseUnavailableError, DatabaseVersionError) as problem:
        return None, str(problem)
    found.jobs.page_open = page_open  # an owner with a page open never has a run abandoned
    return found, None


quiet_keras_reset()
