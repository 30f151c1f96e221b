"""The drawing canvas, without the toolbar that covers its top, and each browser's last drawing.

streamlit-drawable-canvas 0.13 floats a toolbar (upload a background, undo, redo,
edit, delete) over the top right of the canvas: measured in Chromium, it covers the
top 32 pixels of the right half, so a stroke that starts there (the top bar of a 7)
draws nothing. The Draw page has its own Clear button, and a digit is one to three
strokes, so the toolbar goes: a small script adds a style to each canvas's shadow
root (the component isolates its styles, so the page's own CSS cannot reach it),
checking for new canvases a few times a second.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

_HIDE_TOOLBAR = """
<script>
(() => {
  if (window.mnistlabCanvasToolbar) return;
  window.mnistlabCanvasToolbar = true;
  const hide = () => {
    for (const host of document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
      const root = host.shadowRoot;
      if (root && root.querySelector('.dc-toolbar') && !root.querySelector('style[data-mnistlab]')) {
        const style = document.createElement('style');
        style.dataset.mnistlab = 'hide-toolbar';
        style.textContent = '.dc-toolbar { display: none !important; }';
        root.appendChild(style);
      }
    }
  };
  // A canvas fills its shadow root after the host is added (and again after Clear), so look often.
  setInterval(hide, 150);
  hide();
})();
</script>
"""


def drawing_canvas(key: str, pen_width: int, size: int = 280, background=None):
    """A black square (or `background`, a picture) to draw on in white, sending its picture when the pen lifts."""
    st.html(_HIDE_TOOLBAR, unsafe_allow_javascript=True)
    return st_canvas(
        stroke_width=pen_width,
        stroke_color="#FFFFFF",
        background_color="#000000",
        background_image=background,
        width=size,
        height=size,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        key=key,
    )


# The last drawing of each browser, for the pages that look at it (Convolutions, Inside the answer)

_MOST_BROWSERS = 2_000  # the drawings the server keeps (28x28 each: about 6 MB at most)


@st.cache_resource(show_spinner=False)
def _last_drawings() -> tuple[OrderedDict, threading.Lock]:
    """Browser -> its last drawing's 28x28 input, shared by the server's sessions (a reload finds it again)."""
    return OrderedDict(), threading.Lock()


def remember_drawing(image: np.ndarray | None) -> None:
    """Keep (or, with None, forget) this browser's last drawing, for this session and after a reload."""
    from mnistlab_ui.identity import browser_owner
    from mnistlab_ui.session import DRAWING

    drawings, lock = _last_drawings()
    owner = browser_owner()
    with lock:
        drawings.pop(owner, None)
        if image is not None:
            drawings[owner] = np.asarray(image, np.float32).copy()
            while len(drawings) > _MOST_BROWSERS:
                drawings.popitem(last=False)
    if image is None:
        DRAWING.clear()
    else:
        DRAWING.set(image)


def last_drawing() -> np.ndarray | None:
    """This browser's last drawing (the 28x28 input, 0..1), or None when it has drawn nothing yet."""
    from mnistlab_ui.identity import browser_owner
    from mnistlab_ui.session import DRAWING

    if DRAWING.get() is not None:
        return DRAWING.get()
    drawings, lock = _last_drawings()
    with lock:
        found = drawings.get(browser_owner())
    if found is not None:
        DRAWING.set(found)
    return found


def drawing_or_test_image(key: str, drawing_first: bool) -> np.ndarray | None:
    """The "Image" choice of a page that looks at one picture: the student's last drawing (28x28, 0..1), or None
    for a test image, which the page then picks. A student who chose their drawing before drawing is told so."""
    from mnistlab.i18n import _
    from mnistlab_ui.shell import page_link

    drawing = last_drawing()
    labels = {"drawing": _("My drawing (from the Draw page)"), "test": _("A test image")}
    options = ["drawing", "test"] if drawing_first else ["test", "drawing"]
    source = st.radio(_("Image"), options, horizontal=True, key=key, format_func=labels.__getitem__)
    if source == "test":
        return None
    if drawing is None:
        st.info(_("You have not drawn anything yet: draw a digit on the Draw page, then come back. Here is a test image meanwhile."))
        page_link("draw", _("Draw a digit"), ":material/draw:")
    return None if drawing is None else np.asarray(drawing, np.float32)
