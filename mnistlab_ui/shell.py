"""What every page does first, however it was reached.

Streamlit has two ways of finding an app's pages: the `st.navigation` that app.py
declares, and an older one that lists the scripts of a `pages/` folder. Until some
page has called `st.navigation` in a server process, Streamlit uses the older way, so
the first visit of a deep link (/train) on a freshly started server ran the page
script on its own (and, with page names that did not match the folder's, showed a
"Page not found" dialog over it). The page files are named so that both ways find
the same page (`1_train.py` is "train" either way), and `leave_pages_folder_mode`
switches Streamlit to app.py's navigation and runs the page again through it.
"""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st


class PageFile(NamedTuple):
    """A page of the app: its script, the last part of its URL, and its icon."""

    path: str
    slug: str
    icon: str


PAGES = (
    PageFile("pages/1_train.py", "train", ":material/model_training:"),
    PageFile("pages/2_draw.py", "draw", ":material/draw:"),
    PageFile("pages/3_convolutions.py", "convolutions", ":material/grid_on:"),
)


def leave_pages_folder_mode() -> None:
    """If Streamlit ran this page from the pages/ folder, run it again through app.py's navigation."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
