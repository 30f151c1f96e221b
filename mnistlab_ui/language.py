"""The language of a browser session: chosen in the sidebar, remembered in the URL (`lang=tr`), English by default.

The first visit uses the link's `lang`, else the browser's language when it is Turkish,
else English. `mnistlab.i18n` asks this module for the session's language whenever a
thread has not set one, so fragment reruns (which do not run app.py) keep it.
"""

from __future__ import annotations

import streamlit as st

from mnistlab.i18n import LANGUAGES, set_language, set_language_provider
from mnistlab.links import language_of
from mnistlab_ui.session import LANGUAGE


def _session_language() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx() is None:
        return None
    return st.session_state.get(LANGUAGE.name)


set_language_provider(_session_language)


def browser_language() -> str | None:
    locale = str(getattr(st.context, "locale", None) or "")
    return "tr" if locale.lower().startswith("tr") else None


def apply_language() -> str:
    """Set this run's language: the session's choice, else the link's, else the browser's if Turkish, else English."""
    chosen = LANGUAGE.get() or language_of(st.query_params) or browser_language() or "en"
    LANGUAGE.set(chosen)
    return set_language(chosen)


def _changed() -> None:
    chosen = st.session_state["language-picker"]
    LANGUAGE.set(chosen)
    if chosen == "en":
        st.query_params.pop("lang", None)
    else:
        st.query_params["lang"] = chosen


def language_picker() -> None:
    """The sidebar's language choice (written in both languages, so anyone can find it)."""
    current = apply_language()
    st.session_state["language-picker"] = current
    st.sidebar.selectbox("Language / Dil", list(LANGUAGES), format_func=LANGUAGES.get, key="language-picker", on_change=_changed)
    if current != "en":
        st.query_params["lang"] = current
