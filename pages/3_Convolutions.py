"""Convolutions page: a kernel playground, then a trained CNN's filters, feature maps and pooled maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from mnistlab.convolutions import KERNELS, FeatureExtractor, follow_filter, learned_filters, playground
from mnistlab.datasets import DATASETS, normalize_images
from mnistlab.jobs import default_queue
from mnistlab.pictures import enlarge, maps_grid, to_diverging, to_grey
from mnistlab.training import TrainingSettings
from streamlit_helpers import DRAWING, dataset_or_error, load_choice, model_picker, session_runs

st.set_page_config(page_title="Convolutions · MNIST Lab", page_icon=":material/school:", layout="wide")
st.title("Convolutions")
st.write("See what a 3x3 kernel does to an image, what max pooling keeps, and what a trained CNN has learned to look for.")

CUSTOM = "custom"
EXTRACTORS = "mnistlab_feature_extractors"


def choose_image() -> tuple[np.ndarray, str]:
    """A 28x28 image in the 0..255 range: a test image of either dataset, or the user's drawing."""
    sources = ["A test image"] + (["My drawing (from the Draw page)"] if DRAWING in st.session_state else [])
    source = st.radio("Image", sources, horizontal=True)
    if source != "A test image":
        return np.asarray(st.session_state[DRAWING], np.float32) * 255.0, "your drawing"
    left, right = st.columns(2)
    name = left.selectbox("Dataset", list(DATASETS), format_func=lambda key: DATASETS[key].title)
    dataset, error = dataset_or_error(name)
    if dataset is None:
        st.error(error)
        st.stop()
    index = right.number_input(f"Test image number (0 to {len(dataset.y_test) - 1})", 0, len(dataset.y_test) - 1, 0)
    label = dataset.class_names[int(dataset.y_test[index])]
    return dataset.x_test[index].astype(np.float32), f"test image {index} ({label})"


def choose_kernel() -> np.ndarray:
    name = st.selectbox("Kernel", [*KERNELS, CUSTOM], format_func=lambda key: "Your own 3x3 kernel" if key == CUSTOM else KERNELS[key].title)
    if name != CUSTOM:
        st.caption(KERNELS[name].description)
        st.dataframe(pd.DataFrame(KERNELS[name].array).round(3), hide_index=True)
        return KERNELS[name].array
    st.caption("Edit the nine weights: each output pixel is the sum of the 3x3 pixels under the kernel, each times its weight.")
    edited = st.data_editor(pd.DataFrame(KERNELS["edge"].array, columns=["left", "middle", "right"]), hide_index=True, key="custom-kernel")
    kernel = edited.to_numpy(dtype=np.float32, na_value=0.0)
    return kernel


def show_playground(image: np.ndarray, description: str) -> None:
    st.header("Kernel playground")
    st.caption("No training needed: a fixed 3x3 kernel slides over the image, as one filter of a Conv2D layer does.")
    kernel = choose_kernel()
    use_relu = st.checkbox("ReLU after the convolution (negative values become 0)", True)
    result = playground(image / 255.0, kernel, use_relu)
    columns = st.columns(3)
    pictures = (
        (to_grey(result.image), f"Input: {description}, {result.image.shape[0]}x{result.image.shape[1]}"),
        (to_grey(result.activated) if use_relu else to_diverging(result.activated),
         f"Convolved{' + ReLU' if use_relu else ''}: {result.activated.shape[0]}x{result.activated.shape[1]}"),
        (to_grey(result.pooled) if use_relu else to_diverging(result.pooled), f"2x2 max pooled: {result.pooled.shape[0]}x{result.pooled.shape[1]}"),
    )
    for column, (picture, caption) in zip(columns, pictures):
        column.image(enlarge(picture, max(1, 224 // picture.shape[0])), caption=caption, width=224)
    st.caption(
        "Without padding the 3x3 kernel fits 26 times across 28 pixels, so 28x28 becomes 26x26; pooling keeps the "
        "largest value of each 2x2 square, so 26x26 becomes 13x13 and the strongest features survive."
        + ("" if use_relu else " Without ReLU, red is positive and blue negative.")
    )


def offer_cnn(dataset: str) -> None:
    if st.button(f"Train a fast CNN on {DATASETS[dataset].title}"):
        data, error = dataset_or_error(dataset)
        if data is None:
            st.error(error)
            return
        job = default_queue().submit(TrainingSettings(dataset=dataset, arch="fast_cnn", target_accuracy=None), dataset=data)
        session_runs().append(job)
        st.success(f"Training started (run {job.job_id}): follow it on the Train page, then come back here and pick it.")


def show_model(image: np.ndarray, description: str) -> None:
    st.header("Inside a trained CNN")
    choice = model_picker()
    if choice is None:
        st.info("There is no trained model yet: train a CNN on the Train page (or here), then pick it above.")
        offer_cnn("mnist")
        return
    model, _ = load_choice(choice)
    extractors = st.session_state.setdefault(EXTRACTORS, {})
    if choice.key not in extractors:
        try:
            extractors[choice.key] = FeatureExtractor(model)
        except ValueError:
            extractors[choice.key] = None
    extractor = extractors[choice.key]
    if extractor is None:
        st.warning("This model is dense only: it has no convolutions, so there are no filters or feature maps to show. "
                   "Train a CNN to see them.")
        offer_cnn(choice.dataset)
        return
    stages = extractor.stages(normalize_images(image[None], choice.normalization)[0])

    st.subheader("Learned filters")
    st.caption("Each small square is one 3x3 filter the network learned: red weights add up the pixel under them, blue ones subtract it. "
               "Filters of deeper layers are averaged over their input channels.")
    for layer in extractor.layers:
        if layer.__class__.__name__ == "Conv2D":
            filters = learned_filters(model, layer.name)
            st.image(maps_grid(filters, columns=16, scale=8, signed=True), caption=f"{layer.name}: {filters.shape[2]} filters of {filters.shape[0]}x{filters.shape[1]}")

    st.subheader(f"Feature maps for {description}")
    st.caption("One small image per filter: bright where that filter found its pattern. Convolutions (red/blue, before the activation) "
               "shrink the image a little, ReLU keeps only the positive part, and each 2x2 max pooling halves the size.")
    for stage in stages:
        signed = stage.kind in ("convolution", "batch normalisation")
        scale = max(1, 56 // stage.maps.shape[0])
        st.image(maps_grid(stage.maps, columns=16, scale=scale, signed=signed), caption=f"{stage.title}: {stage.shape_text}")

    st.subheader("Follow one filter")
    conv_names = [layer.name for layer in extractor.layers if layer.__class__.__name__ == "Conv2D"]
    left, right = st.columns(2)
    conv_name = left.selectbox("Convolution layer", conv_names)
    filters = model.get_layer(conv_name).filters
    index = right.slider("Filter", 0, filters - 1, 0)
    followed = follow_filter(stages, conv_name)
    columns = st.columns(len(followed) + 1)
    kernel = learned_filters(model, conv_name)[:, :, index]
    columns[0].image(enlarge(to_diverging(kernel), 32), caption=f"filter {index}", width=96)
    for column, stage in zip(columns[1:], followed):
        channel = stage.maps[:, :, index]
        signed = stage.kind in ("convolution", "batch normalisation")
        picture = to_diverging(channel) if signed else to_grey(channel)
        column.image(enlarge(picture, max(1, 160 // channel.shape[0])), caption=f"{stage.title} ({channel.shape[0]}x{channel.shape[1]})", width=160)


chosen_image, chosen_description = choose_image()
show_playground(chosen_image, chosen_description)
show_model(chosen_image, chosen_description)
