"""Draw page: draw a digit (or upload a photo) and see what the network sees and predicts."""

from __future__ import annotations

import numpy as np
import streamlit as st

from mnistlab.glossary import explain
from mnistlab.i18n import _, percent
from mnistlab.pictures import fit_square, to_grey
from mnistlab.preprocessing import load_image_bytes, preprocess
from mnistlab_ui.canvas import drawing_canvas, remember_drawing
from mnistlab_ui.charts import probability_chart
from mnistlab_ui.class_student import class_drawing_controls
from mnistlab_ui.classroom import class_model_choice, member
from mnistlab_ui.models import loaded_or_warning, model_picker
from mnistlab_ui.quick import quick_model_panel
from mnistlab_ui.session import CANVAS_VERSION
from mnistlab_ui.shell import leave_pages_folder_mode, page_link
from mnistlab_ui.text import captioned_image, plain
from mnistlab_ui.text import problem as problem_text

leave_pages_folder_mode()
st.title(_("Draw"))
st.write(_("Draw a digit, or upload a photo of one, and see what the network sees and what it answers."))

# In a class, the page asks for digits and saves them, labelled, for the class; the teacher's class model answers.
membership = member()
# A class drawing a set of its own categories: no digits model answers (it would call a star a digit).
own_set = membership is not None and membership[1].categories is not None
class_choice = class_model_choice(membership[1]) if membership is not None and not own_set else None
if own_set:
    st.info(
        _("Class mode: you are **{nickname}** in **{name}**. Draw what is asked for, then save it for the class.").format(
            nickname=plain(membership[0].nickname), name=plain(membership[1].name)
        )
    )
    st.caption(
        _("The class draws its own categories: {names}. No network knows them yet: your drawings are what it will learn from.").format(
            names=", ".join(plain(name) for name in membership[1].categories.names)
        )
    )
elif membership is not None:
    st.info(
        _("Class mode: you are **{nickname}** in **{name}**. Draw the digit asked for, then save it for the class.").format(
            nickname=plain(membership[0].nickname), name=plain(membership[1].name)
        )
    )
choice = None if own_set else class_choice or model_picker(_("Model"), prefer_dataset="mnist")
if class_choice is not None:
    st.caption(_("The class model answers: {model}").format(model=plain(class_choice.label)))
if not own_set and (choice is None or choice.dataset != "mnist"):
    st.info(_("There is no digits model yet. Train one on the Train page, or use the quick digits model (about a minute)."))
    quick_model_panel("mnist")
if choice is not None and choice.dataset == "fashion_mnist":
    st.warning(_("This model was trained on clothes: it will call your digit a kind of clothing. Choose a digits model to read digits."))
loaded = loaded_or_warning(choice) if choice is not None else None


def show_prediction(prediction) -> None:
    """The answer, right under the canvas: a phone shows both without scrolling."""
    st.metric(_("Prediction"), _(prediction.top_name), help=explain("softmax"))
    st.caption(_("{sure} sure").format(sure=percent(prediction.confidence, 0)))


def show_probabilities(prediction) -> None:
    st.caption(_("Answered by: {model}").format(model=plain(choice.label)))
    st.altair_chart(probability_chart([_(name) for name in prediction.class_names], prediction.probabilities), width="stretch")
    page_link("explain", _("Why this answer? Look inside it, and try to fool it"), ":material/psychology:")


def hint(preprocessed) -> bool:
    """Say what to do when there is nothing to predict yet; True when there is."""
    if preprocessed is None or preprocessed.is_empty:
        if own_set:
            st.info(_("Draw on the black square, then save your drawing for the class."))
        else:
            st.info(_("Draw a digit on the black square (or upload a photo): the prediction appears when you lift the pen."))
        return False
    if loaded is None:
        if not own_set:
            st.info(_("Your drawing is ready: choose or train a model to see its prediction."))
        return False
    return True


def show_steps(preprocessed) -> None:
    """Every step from the drawing to the 28x28 input, each at the same size and in its own shape."""
    remember_drawing(preprocessed.image)
    st.subheader(_("What the network sees"))
    st.caption(
        _(
            "MNIST digits were fitted into a 20x20 box keeping their shape, then centred in 28x28 by their centre of mass. "
            "Your drawing goes through the same steps, so a digit drawn small or in a corner still looks like the training data."
        )
        + (_(" Your image had dark ink on a light background, so it was inverted first.") if preprocessed.inverted else "")
    )
    columns = st.columns(len(preprocessed.steps))
    for column, step in zip(columns, preprocessed.steps):
        picture = to_grey(step.image) if step.image.max() > 0 else np.zeros(step.image.shape, np.uint8)
        captioned_image(column, fit_square(picture, 112, background=40), caption=f"{_(step.title)} ({step.shape_text})", width=112)


@st.fragment
def drawing_panel() -> None:
    """The canvas and its answer: a stroke reruns only this part of the page."""
    drawing_column, answer_column = st.columns([1, 1])
    with drawing_column:
        version = CANVAS_VERSION.get()
        pen = st.slider(_("Pen width"), 8, 32, 18, help=_("MNIST strokes are about a tenth of the digit's height."))
        save = class_drawing_controls(membership) if membership is not None else None
        canvas = drawing_canvas(f"canvas-{version}", pen)
        preprocessed = preprocess(canvas.image_data) if canvas.image_data is not None else None
        # A row that stays a row on a phone: Clear, then the answer, right under the canvas.
        with st.container(horizontal=True, vertical_alignment="center", gap="large"):
            if st.button(_("Clear"), help=_("Start a fresh drawing.")):
                CANVAS_VERSION.set(version + 1)
                remember_drawing(None)
                st.rerun(scope="fragment")
            with st.container():
                ready = hint(preprocessed)
                prediction = loaded.predictor.predict_preprocessed(preprocessed) if ready else None
                if prediction is not None:
                    show_prediction(prediction)
        if save is not None and preprocessed is not None and not preprocessed.is_empty:
            save(preprocessed, prediction, canvas.image_data)
    if prediction is not None:
        with answer_column:
            show_probabilities(prediction)
    if preprocessed is not None and not preprocessed.is_empty:
        show_steps(preprocessed)


def upload_panel() -> None:
    upload = st.file_uploader(_("A PNG or JPEG of one digit: white on black, or a photo of dark ink on light paper"), type=["png", "jpg", "jpeg"])
    if upload is None:
        return
    try:
        preprocessed = preprocess(load_image_bytes(upload.getvalue()))
    except ValueError as problem:
        st.error(problem_text(problem))
        return
    if hint(preprocessed):
        prediction = loaded.predictor.predict_preprocessed(preprocessed)
        left, right = st.columns([1, 2])
        with left:
            show_prediction(prediction)
        with right:
            show_probabilities(prediction)
    if not preprocessed.is_empty:
        show_steps(preprocessed)


source = st.radio(
    _("Input"),
    ("draw", "upload"),
    horizontal=True,
    label_visibility="collapsed",
    format_func=lambda key: _("Draw") if key == "draw" else _("Upload a photo"),
)
if source == "draw":
    drawing_panel()
else:
    upload_panel()
