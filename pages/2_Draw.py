"""Draw page: draw a digit (or upload a photo) and see what the network sees and predicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from mnistlab.jobs import default_queue
from mnistlab.pictures import enlarge, to_grey
from mnistlab.preprocessing import load_image_bytes, preprocess
from mnistlab.training import TrainingSettings
from streamlit_helpers import CANVAS_VERSION, DRAWING, SELECTED_MODEL, dataset_or_error, load_choice, model_picker, session_runs

st.set_page_config(page_title="Draw · MNIST Lab", page_icon=":material/school:", layout="wide")
st.title("Draw")
st.write("Draw a digit, or upload a photo of one, and see what the network sees and what it answers.")

QUICK_RUN = "mnistlab_quick_run"


@st.fragment(run_every=1.0)
def quick_training_progress(job) -> None:
    snapshot = job.snapshot()
    if snapshot.queue_position:
        st.info(f"Waiting for a free place: number {snapshot.queue_position} in the queue.")
    elif snapshot.latest_batch is not None:
        st.progress(min(1.0, snapshot.latest_batch.fraction_done), text=f"Training the quick digits model: {snapshot.elapsed:.0f} s")
    else:
        st.write(f"Training the quick digits model: {snapshot.phase}...")
    if snapshot.is_done:
        if snapshot.error:
            st.error(snapshot.error)
        else:
            st.session_state[SELECTED_MODEL] = f"run-{job.job_id}"
        st.rerun()


def no_model_panel() -> None:
    st.info("There is no model yet. Train one on the Train page, or train a quick digits model here (about a minute).")
    job = st.session_state.get(QUICK_RUN)
    if job is not None and not job.snapshot().is_done:
        quick_training_progress(job)
    elif st.button("Train a quick digits model", type="primary"):
        dataset, error = dataset_or_error("mnist")
        if dataset is None:
            st.error(error)
            return
        job = default_queue().submit(TrainingSettings(dataset="mnist", arch="fast_cnn", target_accuracy=None), dataset=dataset)
        session_runs().append(job)
        st.session_state[QUICK_RUN] = job
        st.rerun()


choice = model_picker()
if choice is None:
    no_model_panel()

drawing_column, answer_column = st.columns([1, 1])
with drawing_column:
    source = st.radio("Input", ("Draw", "Upload a photo"), horizontal=True, label_visibility="collapsed")
    image = None
    if source == "Draw":
        version = st.session_state.setdefault(CANVAS_VERSION, 0)
        pen = st.slider("Pen width", 8, 32, 18, help="MNIST strokes are about a tenth of the digit's height.")
        canvas = st_canvas(
            stroke_width=pen, stroke_color="#FFFFFF", background_color="#000000", width=280, height=280,
            drawing_mode="freedraw", update_streamlit=True, return_image_data=True, key=f"canvas-{version}",
        )
        if st.button("Clear", help="Start a fresh drawing."):
            st.session_state[CANVAS_VERSION] = version + 1
            st.session_state.pop(DRAWING, None)
            st.rerun()
        image = canvas.image_data
    else:
        upload = st.file_uploader("A PNG or JPEG of one digit: white on black, or a photo of dark ink on light paper",
                                  type=["png", "jpg", "jpeg"])
        if upload is not None:
            try:
                image = load_image_bytes(upload.getvalue())
            except ValueError as problem:
                st.error(str(problem))

prediction = None
preprocessed = preprocess(image) if image is not None else None
if choice is not None and preprocessed is not None and not preprocessed.is_empty:
    _, predictor = load_choice(choice)
    prediction = predictor.predict_preprocessed(preprocessed)

with answer_column:
    if preprocessed is None or preprocessed.is_empty:
        st.info("Draw a digit on the black square (or upload a photo): the prediction appears when you lift the pen.")
    elif prediction is None:
        st.info("Your drawing is ready: choose or train a model to see its prediction.")
    else:
        st.metric("Prediction", prediction.top_name, f"{prediction.confidence:.0%} sure", delta_color="off")
        chart = pd.DataFrame({"class": list(prediction.class_names), "probability": prediction.probabilities})
        st.bar_chart(chart, x="class", y="probability", sort=False)

if preprocessed is not None and not preprocessed.is_empty:
    st.session_state[DRAWING] = preprocessed.image
    st.subheader("What the network sees")
    st.caption(
        "MNIST digits were fitted into a 20x20 box keeping their shape, then centred in 28x28 by their centre of mass. "
        "Your drawing goes through the same steps, so a digit drawn small or in a corner still looks like the training data."
        + (" Your image had dark ink on a light background, so it was inverted first." if preprocessed.inverted else "")
    )
    columns = st.columns(len(preprocessed.steps))
    for column, step in zip(columns, preprocessed.steps):
        picture = to_grey(step.image) if step.image.max() > 0 else np.zeros(step.image.shape, np.uint8)
        scale = max(1, 140 // max(picture.shape))
        column.image(enlarge(picture, scale), caption=f"{step.title} ({step.shape_text})", width=140)
