"""The drawing canvas, without the toolbar that covers its top.

streamlit-drawable-canvas 0.13 floats a toolbar (upload a background, undo, redo,
edit, delete) over the top right of the canvas: measured in Chromium, it covers the
top 32 pixels of the right half, so a stroke that starts there (the top bar of a 7)
draws nothing. The Draw page has its own Clear button, and a digit is one to three
strokes, so the toolbar goes: a small script adds a style to each canvas's shadow
root (the component isolates its styles, so the page's own CSS cannot reach it),
checking for new canvases a few times a second.
"""

from __future__ import annotations

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


def drawing_canvas(key: str, pen_width: int, size: int = 280):
    """A black square to draw on in white, sending its picture when the pen lifts."""
    st.html(_HIDE_TOOLBAR, unsafe_allow_javascript=True)
    return st_canvas(
        stroke_width=pen_width,
        stroke_color="#FFFFFF",
        background_color="#000000",
        width=size,
        height=size,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        key=key,
    )
