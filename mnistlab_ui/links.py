"""Links with settings on the pages: apply a link's settings once, say what was left out, offer a link to share."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import streamlit as st

from mnistlab.i18n import _, current_language
from mnistlab.links import LinkSettings, read_link
from mnistlab_ui.session import LINK_APPLIED
from mnistlab_ui.text import plain


def apply_link(page: str, apply: Callable[[dict], None]) -> LinkSettings:
    """Read the link's query for `page`; apply its values once per query (later reruns keep the student's changes),
    and show a note for every key or value left out."""
    query = {key: st.query_params.get(key) for key in st.query_params}
    link = read_link(page, query)
    for note in link.notes:
        st.warning(plain(note), icon=":material/link_off:")
    applied = LINK_APPLIED.get()
    signature = repr(sorted(query.items()))
    if link.values and applied.get(page) != signature:
        apply(link.values)
        applied[page] = signature
    return link


def app_url() -> str:
    """The app's address as this browser reached it (without the page's slug and query)."""
    from mnistlab_ui.shell import PAGES

    base = (st.context.url or "").split("?")[0].rstrip("/")
    for page in PAGES:
        base = base.removesuffix(f"/{page.slug}")
    return base


def page_url(page: str, query: dict[str, str]) -> str:
    base = app_url()
    language = current_language()
    if language != "en":
        query = {**query, "lang": language}
    return f"{base}/{page}?{urlencode(query)}"


def share_link(page: str, query: dict[str, str]) -> None:
    """An expander with a link that opens this page with these settings (the code box has a copy button)."""
    with st.expander(_("Copy link to these settings")):
        st.code(page_url(page, query), language=None, wrap_lines=True)
        st.caption(_("Anyone who opens this link gets this page with these settings chosen."))
