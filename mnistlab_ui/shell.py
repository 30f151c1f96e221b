"""What every page does first, however it was reached.

Streamlit has two ways of finding an app's pages: the `st.navigation` that app.py
declares, and an older one that lists the scripts of a `pages/` folder. Until some
page has called `st.navigation` in a server process, Streamlit uses the older way, so
the first visit of a deep link (/train) on a freshly started server ran the page
script on its own (and, with page names that did not match the folder's, showed a
"Page not found" dialog over it). The page files are named so that both ways find
the same page (`1_train.py` is "train" either way). app.py marks each run it starts;
a page run without that mark was started the older way, so `leave_pages_folder_mode`
switches Streamlit to app.py's navigation and runs the page again through it. (The
mark is per run, not the server-wide switch: when a class opens the same link at
once, several first runs start the older way before any of them flips the switch.)
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import streamlit as st

from mnistlab_ui.session import APP_RAN


class PageFile(NamedTuple):
    """A page of the app: its script, the last part of its URL, and its icon."""

    path: str
    slug: str
    icon: str


APP_SCRIPT = "app.py"
PAGES = (
    PageFile("pages/1_train.py", "train", ":material/model_training:"),
    PageFile("pages/2_draw.py", "draw", ":material/draw:"),
    PageFile("pages/3_convolutions.py", "convolutions", ":material/grid_on:"),
    PageFile("pages/4_class.py", "class", ":material/groups:"),
    PageFile("pages/5_glossary.py", "glossary", ":material/menu_book:"),
    PageFile("pages/6_explain.py", "explain", ":material/psychology:"),
)


def page_titles() -> dict[str, str]:
    """Each page's title in the navigation, by URL slug, in the current language."""
    from mnistlab.i18n import _

    return {
        "home": _("Home"),
        "train": _("Train"),
        "draw": _("Draw"),
        "convolutions": _("Convolutions"),
        "class": _("Class"),
        "glossary": _("Glossary"),
        "explain": _("Inside the answer"),
    }


_PAGE_STYLE = """
<style>
/* A projector at 1024x768 has no height to spare: the page starts right under the header. */
[data-testid="stMainBlockContainer"] { padding-top: 3.75rem; padding-bottom: 3rem; }
/* The button that opens the menu (on a phone) and the language choice says so in words, not only ">>". */
[data-testid="stExpandSidebarButton"] { width: auto; gap: 0.25rem; }
/* Streamlit keeps a wide empty place on the header's right (for its own buttons): let the label use it. */
[data-testid="stToolbar"] div:has(> [data-testid="stMainMenu"]) { min-width: 0; }
[data-testid="stExpandSidebarButton"]::after { content: %s; font-size: 0.95rem; font-weight: 600; white-space: nowrap; }
/* A page link's label wraps onto a second line on a phone instead of being cut off mid-word ("onu kand"). */
[data-testid="stPageLink-NavLink"] { height: auto; }
[data-testid="stPageLink-NavLink"] span, [data-testid="stPageLink-NavLink"] p { white-space: normal; overflow: visible; text-overflow: clip; }
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-left: 1rem; padding-right: 1rem; }
  /* A table fits a phone instead of scrolling sideways (hidden columns, and a region a keyboard cannot scroll): the
     epoch table was 401 px in a 354 px box. Equal columns, smaller text, and a long word ("parametreler") breaks as a
     last resort. Streamlit's own cell rules are more specific, hence !important. */
  [data-testid="stTable"] table { table-layout: fixed; width: 100%%; }
  [data-testid="stTable"] :is(th, td) { padding-left: 0.3rem !important; padding-right: 0.3rem !important; }
  [data-testid="stTable"] :is(th, td), [data-testid="stTable"] :is(th, td) * {
    font-size: 0.75rem !important; overflow-wrap: anywhere !important; white-space: normal !important;
  }
  [data-testid="stExpandSidebarButton"]::after { content: %s; }
}
</style>
"""


def page_style() -> None:
    """The app's few style rules: less empty space above the title, and a menu button with a label."""
    import json

    from mnistlab.i18n import _

    labels = ("Language / Dil", _("Menu") + " · Language / Dil")
    st.html(_PAGE_STYLE % tuple(json.dumps(label, ensure_ascii=False) for label in labels))  # CSS reads "ü", not "\u00fc".


def mark_app_run() -> None:
    """Called by app.py at the start of each run: the page that follows runs through app.py's navigation."""
    APP_RAN.set(True)


def leave_pages_folder_mode() -> None:
    """If Streamlit ran this page from the pages/ folder, not through app.py, run it again through app.py."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from mnistlab_ui.language import apply_language

    apply_language()
    if APP_RAN.get():
        APP_RAN.clear()
        point_at_linked_place()
        return
    context = get_script_run_ctx()
    if context is None or Path(context.main_script_path).name != APP_SCRIPT:
        return  # The page is the main script itself (a test harness): there is no app.py to go through.
    PagesManager.uses_pages_directory = False
    st.rerun()


def page_link(path_or_slug: str, label: str, icon: str | None = None, query: dict[str, str] | None = None) -> None:
    """A link to one of the app's pages (by file or URL slug), with settings in its query, opened in the same tab;
    a plain link when the page runs outside app.py's navigation (AppTest)."""
    from urllib.parse import urlencode

    from streamlit.errors import StreamlitPageNotFoundError

    page = next((page for page in PAGES if path_or_slug in (page.path, page.slug)), None)
    path = page.path if page is not None else path_or_slug
    try:
        st.page_link(path, label=label, icon=icon, query_params=query or None)
    except StreamlitPageNotFoundError:
        slug = page.slug if page is not None else path_or_slug
        st.markdown(f"[{label}](/{slug}{'?' + urlencode(query) if query else ''})")


def rerun_fragment() -> None:
    """Rerun the fragment that is running, or the whole page when this run is a full one (a click seen in a full run)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:
        st.rerun()


_POINT_AT = """
<script>
(() => {
  const wanted = %s.map((label) => label.trim().toLowerCase());
  const selectors = '[data-testid="stWidgetLabel"], [data-testid="stMetricLabel"], summary, h1, h2, h3, h4, strong, label';
  // textContent, not innerText: the text of a control inside a closed expander is not rendered, so its innerText is "".
  const matches = (element) => wanted.some((label) => (element.textContent || "").trim().toLowerCase().startsWith(label));
  let tries = 0;
  const look = () => {
    const documentRoot = window.parent.document;
    const found = [...documentRoot.querySelectorAll(selectors)].find(matches);
    if (!found) { if (++tries < 60) setTimeout(look, 250); return; }
    for (let details = found.closest("details"); details; details = details.parentElement.closest("details")) {
      if (!details.open) details.querySelector("summary").click();
    }
    const box = found.closest('[data-testid="stElementContainer"], [data-testid="stExpander"]') || found;
    setTimeout(() => {
      box.scrollIntoView({block: "center", behavior: "instant"});
      box.style.outline = "4px solid #c0392b";
      box.style.outlineOffset = "4px";
      box.dataset.mnistlabPointedAt = "true";
      setTimeout(() => { box.style.outline = ""; }, 6000);
    }, 300);
  };
  look();
})();
</script>
"""


def point_at_linked_place() -> None:
    """A glossary link's "see it at work" (`?see=TERM`): scroll to the control or figure the term names, open the
    expander it sits in, and outline it for a few seconds."""
    import json

    from mnistlab.glossary import GLOSSARY
    from mnistlab.i18n import _

    key = st.query_params.get("see")
    entry = next((entry for entry in GLOSSARY if entry.key == key), None)
    if entry is None:
        return
    labels = [_(place.label) for place in entry.places]
    st.html(_POINT_AT % json.dumps(labels), unsafe_allow_javascript=True)
