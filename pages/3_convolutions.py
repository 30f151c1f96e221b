"""Convolutions page: a kernel playground, then a trained CNN's filters, feature maps and pooled maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from mnistlab.convolutions import KERNELS, follow_filter, learned_filters, playground
from mnistlab.datasets import DATASETS, normalize_images
from mnistlab.glossary import explain, term
from mnistlab.i18n import _
from mnistlab.pictures import enlarge, fit_square, maps_grid, to_diverging, to_grey
from mnistlab_ui.canvas import drawing_or_test_image
from mnistlab_ui.data import dataset_or_error
from mnistlab_ui.links import apply_link, share_link
from mnistlab_ui.models import loaded_or_warning, model_picker
from mnistlab_ui.quick import quick_model_panel
from mnistlab_ui.shell import leave_pages_folder_mode
from mnistlab_ui.text import captioned_image, plain

leave_pages_folder_mode()
st.title(_("Convolutions"))
st.write(_("See what a 3x3 kernel does to an image, what max pooling keeps, and what a trained CNN has learned to look for."))
# A link chooses the kernel, the dataset and the test image (a lesson, or a teacher's shared link).
apply_link("convolutions", lambda values: st.session_state.update({f"conv.{key}": value for key, value in values.items()}))

CUSTOM = "custom"
KERNEL_LIMIT = 100  # a weight of a kernel a student types, at most this far from 0


def choose_image() -> tuple[np.ndarray, str]:
    """A 28x28 image in the 0..255 range: a test image of either dataset, or the user's drawing (kept for the browser)."""
    drawing = drawing_or_test_image("conv.source", drawing_first=False)
    if drawing is not None:
        return drawing * 255.0, _("your drawing")
    left, right = st.columns(2)
    name = left.selectbox(_("Dataset"), list(DATASETS), format_func=lambda key: _(DATASETS[key].title), key="conv.dataset")
    dataset, error = dataset_or_error(name)
    if dataset is None:
        st.error(plain(error))
        st.stop()
    last = len(dataset.y_test) - 1
    if st.session_state.get("conv.image", 0) > last:
        st.session_state["conv.image"] = 0
    index = right.number_input(_("Test image number (0 to {last})").format(last=last), 0, last, key="conv.image")
    label = dataset.class_names[int(dataset.y_test[index])]
    return dataset.x_test[index].astype(np.float32), _("test image {number} ({label})").format(number=index, label=_(label))


def choose_kernel() -> np.ndarray:
    name = st.selectbox(
        _("Kernel"),
        [*KERNELS, CUSTOM],
        format_func=lambda key: _("Your own 3x3 kernel") if key == CUSTOM else _(KERNELS[key].title),
        help=explain("kernel"),
        key="conv.kernel",
    )
    if name != CUSTOM:
        st.caption(_(KERNELS[name].description))
        st.table(pd.DataFrame(KERNELS[name].array).round(3), hide_index=True, hide_header=True, width="content")
        return KERNELS[name].array
    st.caption(
        _(
            "Edit the nine weights (from -{limit} to {limit}): each output pixel is the sum of the 3x3 pixels under the kernel, "
            "each times its weight."
        ).format(limit=KERNEL_LIMIT)
    )
    columns = [_("left"), _("middle"), _("right")]
    cell = st.column_config.NumberColumn(min_value=-KERNEL_LIMIT, max_value=KERNEL_LIMIT, step=0.1, format="%.2f")
    edited = st.data_editor(
        pd.DataFrame(KERNELS["edge"].array, columns=columns),
        hide_index=True,
        key="custom-kernel",
        num_rows="fixed",
        column_config=dict.fromkeys(columns, cell),
    )
    values = edited.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any():
        st.info(_("An empty cell counts as 0."))
    too_big = ~np.isnan(values) & (np.abs(values) > KERNEL_LIMIT)
    if too_big.any():
        st.warning(_("A weight is from -{limit} to {limit}; bigger ones count as {limit}.").format(limit=KERNEL_LIMIT))
    return np.clip(np.nan_to_num(values, nan=0.0), -KERNEL_LIMIT, KERNEL_LIMIT).astype(np.float32)


def pixel_picture(picture: np.ndarray, size: int = 224) -> np.ndarray:
    """A small map enlarged by whole pixels onto a square, so it stays sharp at any width."""
    return fit_square(picture, size, background=255)


def show_playground(image: np.ndarray, description: str) -> None:
    st.header(_("Kernel playground"))
    st.caption(
        _("No training needed: a fixed 3x3 kernel slides over the image, as one filter of a Conv2D layer does.") + " " + explain("convolution")
    )
    kernel = choose_kernel()
    use_relu = st.checkbox(_("ReLU after the convolution (negative values become 0)"), True, help=explain("relu"))
    result = playground(image / 255.0, kernel, use_relu)
    shown = (
        to_grey(result.activated) if use_relu else to_diverging(result.activated),
        to_grey(result.pooled) if use_relu else to_diverging(result.pooled),
    )
    pictures = (
        (to_grey(result.image), _("Input: {description}, {size}").format(description=description, size=_size(result.image))),
        (shown[0], (_("Convolved + ReLU: {size}") if use_relu else _("Convolved: {size}")).format(size=_size(result.activated))),
        (shown[1], _("2x2 max pooled: {size}").format(size=_size(result.pooled))),
    )
    for column, (picture, caption) in zip(st.columns(3), pictures):
        captioned_image(column, pixel_picture(picture), caption=caption, width="stretch")
    st.caption(
        _(
            "Without padding the 3x3 kernel fits 26 times across 28 pixels, so 28x28 becomes 26x26; pooling keeps the "
            "largest value of each 2x2 square, so 26x26 becomes 13x13 and the strongest features survive."
        )
        + ("" if use_relu else _(" Without ReLU, red is positive and blue negative."))
    )
    st.caption("**" + term("max_pooling") + "**: " + explain("max_pooling"))


def _size(values: np.ndarray) -> str:
    return f"{values.shape[0]}x{values.shape[1]}"


def show_model(image: np.ndarray, description: str) -> None:
    st.header(_("Inside a trained CNN"))
    choice = model_picker(_("Model"), prefer_dataset=None, needs_convolution=True)
    loaded = loaded_or_warning(choice) if choice is not None else None
    if loaded is None:
        st.info(
            _("There is no trained model yet: train a CNN on the Train page, or train the quick CNN with the button below; it then appears here.")
        )
        quick_model_panel("mnist")
        return
    extractor = loaded.feature_extractor()
    if extractor is None:
        st.warning(_("This model is dense only: it has no convolutions, so there are no filters or feature maps to show. Train a CNN to see them."))
        quick_model_panel(choice.dataset or "mnist")
        return
    model = loaded.model
    stages = extractor.stages(normalize_images(image[None], choice.normalization)[0])

    st.subheader(_("Learned filters"))
    st.caption(
        _(
            "Each small square is one 3x3 filter the network learned: red weights add up the pixel under them, blue ones subtract it. "
            "Filters of deeper layers are averaged over their input channels."
        )
        + " "
        + explain("filter")
    )
    conv_names = [layer.name for layer in extractor.layers if layer.__class__.__name__ == "Conv2D"]
    for name in conv_names:
        filters = learned_filters(model, name)
        caption = _("{layer}: {count} filters of {size}").format(layer=name, count=filters.shape[2], size=_size(filters))
        captioned_image(st, maps_grid(filters, columns=8, scale=22, signed=True), caption=caption)

    st.subheader(_("Feature maps for {description}").format(description=description))
    st.caption(
        _(
            "One small image per filter: bright where that filter found its pattern. Convolutions (red/blue, before the activation) "
            "shrink the image a little, ReLU keeps only the positive part, and each 2x2 max pooling halves the size."
        )
        + " "
        + explain("feature_map")
    )
    for stage in stages:
        signed = stage.kind in ("convolution", "batch normalisation")
        scale = max(1, 56 // stage.maps.shape[0])
        caption = f"{stage.title}: {stage.shape_text}"
        captioned_image(st, maps_grid(stage.maps, columns=16, scale=scale, signed=signed), caption=caption)

    st.subheader(_("Follow one filter"))
    left, right = st.columns(2)
    conv_name = left.selectbox(_("Convolution layer"), conv_names)
    index = right.slider(_("Filter"), 0, model.get_layer(conv_name).filters - 1, 0, help=explain("filter"))
    followed = follow_filter(stages, conv_name)
    columns = st.columns(len(followed) + 1)
    kernel = learned_filters(model, conv_name)[:, :, index]
    caption = _("filter {number}").format(number=index)
    captioned_image(columns[0], pixel_picture(enlarge(to_diverging(kernel), 1), 160), caption=caption, width="stretch")
    for column, stage in zip(columns[1:], followed):
        channel = stage.maps[:, :, index]
        signed = stage.kind in ("convolution", "batch normalisation")
        picture = to_diverging(channel) if signed else to_grey(channel)
        captioned_image(column, pixel_picture(picture, 160), caption=f"{stage.title} ({_size(channel)})", width="stretch")


chosen_image, chosen_description = choose_image()
show_playground(chosen_image, chosen_description)
if st.session_state.get("conv.kernel") != CUSTOM:
    share_link(
        "convolutions",
        {
            "kernel": st.session_state.get("conv.kernel", "edge"),
            "dataset": st.session_state.get("conv.dataset", "mnist"),
            "image": str(st.session_state.get("conv.image", 0)),
        },
    )
show_model(chosen_image, chosen_description)
