"""Inside the answer: why the network answered, how to fool it, where a drawing sits among test images, what the
network imagines, and what breaks when parts of it are switched off."""

from __future__ import annotations

import streamlit as st

from mnistlab.i18n import _
from mnistlab_ui.inside import break_it, drawing_input, fool, fool_by_hand, imagines, where, why
from mnistlab_ui.models import loaded_or_warning, model_picker
from mnistlab_ui.quick import quick_model_panel
from mnistlab_ui.shell import leave_pages_folder_mode, page_link

leave_pages_folder_mode()
st.title(_("Inside the answer"))
st.write(_("Why did the network give its answer, and how can it be fooled? Look inside the answer for your own drawing and your own model."))

choice = model_picker(_("Model"), prefer_dataset="mnist")
loaded = loaded_or_warning(choice) if choice is not None else None
if loaded is None:
    st.info(_("There is no model to look inside yet: train one on the Train page, or train the quick digits model with the button below."))
    quick_model_panel("mnist")
    st.stop()
image, description = drawing_input(choice)
if image is None:
    st.stop()
if image.max() == 0:
    st.info(_("The drawing is empty: draw a digit on the Draw page first."))
    page_link("draw", _("Draw a digit"), ":material/draw:")
    st.stop()
# Each part is a fragment: a control reruns its own part only, not the five others (a whole page's rerun took 1.6 to
# 2.9 s on a busy 2-core server; each control should answer within 1 s).
st.fragment(why)(loaded, image)
st.fragment(fool)(loaded, image)
st.fragment(fool_by_hand)(loaded, image, key=f"inside.canvas.{hash(image.tobytes())}")
st.fragment(where)(loaded, choice, image)
st.fragment(imagines)(loaded, choice)
st.fragment(break_it)(loaded, choice, image)
