"""What the "Inside the answer" page shows: why, fool it, the map of test images, what it imagines, break it.

The work is done by `mnistlab.explain` on the model every session shares (its `Inspector`
is built once per loaded model); the map of test images is computed once per model and
method and shared by the server. "Break it" works on a private copy of the model for
each session (the shared one is never changed).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from mnistlab.explain import Broken, Map2D, map_2d
from mnistlab.glossary import explain
from mnistlab.i18n import _, ngettext, number, percent
from mnistlab.pictures import fit_square, heat_overlay, to_diverging, to_grey
from mnistlab_ui.canvas import drawing_canvas, drawing_or_test_image
from mnistlab_ui.charts import readable
from mnistlab_ui.data import dataset_or_error
from mnistlab_ui.text import captioned_image

MAP_IMAGES = 2_000
BREAK_IMAGES = 1_000
PICTURE = 168


def picture(image01: np.ndarray, size: int = PICTURE) -> np.ndarray:
    return fit_square(to_grey(np.asarray(image01, np.float32)), size, background=0)


def class_name(loaded, index: int) -> str:
    return _(loaded.class_names[int(index)])


# Why this answer


def why(loaded, image01: np.ndarray) -> None:
    inspector = loaded.inspector()
    probabilities = inspector.probabilities(image01)[0]
    answer = int(np.argmax(probabilities))
    st.header(_("Why this answer"))
    left, right = st.columns([1, 1])
    with left:
        st.metric(_("The network says"), class_name(loaded, answer), help=explain("softmax"))
        st.caption(_("{sure} sure").format(sure=percent(probabilities[answer], 0)))
        options = list(range(10))
        chosen = st.selectbox(
            _("Explain"),
            options,
            index=answer,
            key="inside.why_target",
            format_func=lambda index: (
                _("its answer, {name}").format(name=class_name(loaded, index))
                if index == answer
                else _("why not {name}? ({sure})").format(name=class_name(loaded, index), sure=percent(probabilities[index], 0))
            ),
        )
    heat = inspector.saliency(image01, chosen)
    with right:
        captioned_image(
            st,
            fit_square(heat_overlay(image01, heat), 224),
            caption=_("Warm: the pixels that pushed it towards {name}.").format(name=class_name(loaded, chosen)),
        )
    method = _("Grad-CAM on the last convolution") if inspector.is_convolutional else _("gradient times input")
    st.caption(_("Made with {method}.").format(method=method) + " " + explain("saliency"))


# Fool it


def fool(loaded, image01: np.ndarray) -> None:
    inspector = loaded.inspector()
    probabilities = inspector.probabilities(image01)[0]
    answer = int(np.argmax(probabilities))
    runner_up = int(np.argsort(probabilities)[-2])
    st.header(_("Fool it"))
    st.caption(explain("adversarial"))
    columns = st.columns(3)
    target = columns[0].selectbox(
        _("Make it say"),
        [digit for digit in range(10) if digit != answer],
        index=None,
        key="inside.fool_target",
        format_func=lambda index: class_name(loaded, index),
        placeholder=class_name(loaded, runner_up),
    )
    target = runner_up if target is None else target
    budget = columns[1].select_slider(
        _("How much may each pixel change"),
        options=[round(0.05 * step, 2) for step in range(1, 11)],
        value=0.3,
        key="inside.budget",
        format_func=lambda value: percent(value, 0),
    )
    method = columns[2].radio(
        _("How"),
        ["everywhere", "few"],
        key="inside.method",
        format_func=lambda key: _("a little, everywhere") if key == "everywhere" else _("a few pixels, fully"),
    )
    if not st.button(_("Fool it"), type="primary", key="inside.fool"):
        st.caption(_("The network is asked which small change would make it answer {name}.").format(name=class_name(loaded, target)))
        return
    result = inspector.fool(image01, target, budget) if method == "everywhere" else inspector.fool_few_pixels(image01, target)
    left, middle, right = st.columns(3)
    captioned_image(left, picture(image01), caption=_("Your drawing: {name}").format(name=class_name(loaded, answer)))
    change = result.change
    captioned_image(middle, fit_square(to_diverging(change), PICTURE, background=255), caption=_("The change, made visible (red added, blue taken)"))
    captioned_image(
        right,
        picture(result.image),
        caption=_("Fooled: {name}, {sure} sure").format(name=class_name(loaded, result.new_answer), sure=percent(result.new_confidence, 0)),
    )
    changed = ngettext("{count} pixel changed", "{count} pixels changed", result.pixels_changed).format(count=result.pixels_changed)
    if result.reached and result.linf >= 0.995:  # a few pixels, some turned from black to white: "no more than 100%" says nothing
        st.success(_("It now says {name}: {changed}, some from black to white.").format(name=class_name(loaded, result.new_answer), changed=changed))
    elif result.reached:
        st.success(
            _("It now says {name}: no pixel moved more than {most}; {changed}.").format(
                name=class_name(loaded, result.new_answer), most=percent(result.linf, 0), changed=changed
            )
        )
    else:
        st.warning(
            _("Within {budget} per pixel it did not say {name} (it says {answer}); allow a bigger change.").format(
                budget=percent(budget, 0), name=class_name(loaded, target), answer=class_name(loaded, result.new_answer)
            )
        )


def fool_by_hand(loaded, image01: np.ndarray, key: str) -> None:
    """The student adds strokes on top of the drawing until the answer flips; the page counts the pixels changed."""
    from PIL import Image

    inspector = loaded.inspector()
    answer = int(np.argmax(inspector.probabilities(image01)[0]))
    st.subheader(_("Now you: fool it by hand"))
    st.caption(_("Add strokes on top of your drawing (it is the 28x28 input, enlarged) until the answer changes. Fewer pixels is better."))
    background = Image.fromarray(np.kron((np.asarray(image01) * 255).astype(np.uint8), np.ones((10, 10), np.uint8))).convert("RGB")
    canvas = drawing_canvas(key, 12, background=background)
    strokes = _strokes_28(canvas.image_data)
    combined = np.maximum(np.asarray(image01, np.float32), strokes)
    changed = int((np.abs(combined - image01) >= 1 / 255).sum())
    probabilities = inspector.probabilities(combined)[0]
    now = int(np.argmax(probabilities))
    text = _("Now it says {name} ({sure}), with {count} pixels changed.").format(
        name=class_name(loaded, now), sure=percent(probabilities[now], 0), count=number(changed)
    )
    (st.success if now != answer else st.info)(text + (" " + _("You fooled it!") if now != answer else ""))


def _strokes_28(canvas_rgba) -> np.ndarray:
    """The strokes a student added on the enlarged 28x28 input, back at 28x28 (0..1), where they are."""
    if canvas_rgba is None:
        return np.zeros((28, 28), np.float32)
    rgba = np.asarray(canvas_rgba, np.float32) / 255.0
    ink = rgba[..., :3].mean(axis=-1) * rgba[..., 3]
    height, width = ink.shape
    return ink[: height - height % 28, : width - width % 28].reshape(28, height // 28, 28, width // 28).max(axis=(1, 3)).astype(np.float32)


# Where it sits among test images


@st.cache_resource(max_entries=8, show_spinner=False)
def _map(file_key: tuple, method: str, dataset_name: str, _loaded) -> tuple[Map2D, np.ndarray]:
    """The map of a model's test images, computed once per model and method for every session."""
    dataset, _error = dataset_or_error(dataset_name)
    count = min(MAP_IMAGES, len(dataset.y_test))
    images = dataset.x_test[:count].astype(np.float32) / 255.0
    return map_2d(_loaded.inspector(), images, dataset.y_test[:count], method), images


def where(loaded, choice, image01: np.ndarray) -> None:
    st.header(_("Where it sits among test images"))
    st.caption(explain("embedding"))
    dataset_name = choice.dataset or "mnist"
    methods = ["pca"] + (["tsne"] if st.session_state.get("inside.tsne_asked") else [])
    method = st.radio(
        _("Layout"),
        methods,
        horizontal=True,
        key="inside.map_method",
        format_func=lambda key: _("PCA (at once)") if key == "pca" else _("t-SNE (closer groups)"),
    )
    if "tsne" not in methods and st.button(_("Compute a t-SNE layout too (about half a minute, once for everyone)"), key="inside.tsne"):
        st.session_state["inside.tsne_asked"] = True
        st.rerun()
    with st.spinner(_("Laying out the test images...")):
        found, images = _map(choice.file_key, method, dataset_name, loaded)
    here = found.place(loaded.inspector().embedding(image01)[0])
    names = [class_name(loaded, label) for label in found.labels]
    frame = pd.DataFrame(
        {
            "x": found.points[:, 0],
            "y": found.points[:, 1],
            "class": names,
            "index": np.arange(len(found.labels)),
            "mistake": np.where(found.predicted != found.labels, _("a mistake"), _("right")),
        }
    )
    picked = alt.selection_point(name="picked", fields=["index"], on="click", empty=False)
    dots = (
        alt.Chart(frame)
        .mark_point(filled=True, size=40)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color("class:N", title=_("class"), legend=alt.Legend(orient="bottom", columns=5)),
            # The domain is given: without it Vega sorts the words ("a mistake" < "right"), and mistakes became circles.
            shape=alt.Shape("mistake:N", title=None, scale=alt.Scale(domain=[_("right"), _("a mistake")], range=["circle", "cross"])),
            opacity=alt.condition(picked, alt.value(1.0), alt.value(0.6)),
            tooltip=[alt.Tooltip("class:N", title=_("class")), alt.Tooltip("mistake:N", title=" ")],
        )
        .add_params(picked)
    )
    star = (
        alt.Chart(pd.DataFrame({"x": [here[0]], "y": [here[1]], "what": [_("your drawing")]}))
        .mark_point(shape="diamond", size=500, filled=True, color="black", stroke="white", strokeWidth=2)
        .encode(x="x:Q", y="y:Q", tooltip=["what:N"])
    )
    event = st.altair_chart(
        readable((dots + star).properties(height=460)), on_select="rerun", selection_mode="picked", key="inside.map", width="stretch"
    )
    st.caption(
        _(
            "Each dot is a test image, coloured by its class; crosses are the network's mistakes; the black diamond is your "
            "drawing. Click a dot to see its image."
        )
    )
    selection = (event or {}).get("selection", {}).get("picked") or []
    if selection:
        index = int(selection[0]["index"])
        label, said = int(found.labels[index]), int(found.predicted[index])
        captioned_image(
            st,
            picture(images[index], 112),
            caption=_("test image {number}: {label}, the network says {said}").format(
                number=index, label=class_name(loaded, label), said=class_name(loaded, said)
            ),
        )


# What it imagines


@st.cache_resource(max_entries=32, show_spinner=False)
def _imagined(file_key: tuple, what: tuple, _loaded) -> np.ndarray:
    inspector = _loaded.inspector()
    if what[0] == "class":
        return inspector.imagine(what[1])
    return inspector.imagine(0, filter_of=(what[1], what[2]))


def imagines(loaded, choice) -> None:
    inspector = loaded.inspector()
    st.header(_("What it imagines"))
    st.caption(
        _(
            "Starting from grey, the picture is changed step by step to make the network's score for a class (or one filter) "
            "as high as it can go, kept smooth: what the network thinks a 3 looks like."
        )
    )
    if st.toggle(_("Imagine the ten classes"), key="inside.imagine_classes"):
        with st.spinner(_("Imagining...")):
            pictures = [_imagined(choice.file_key, ("class", digit), loaded) for digit in range(10)]
        for start in (0, 5):
            for column, digit in zip(st.columns(5), range(start, start + 5)):
                captioned_image(column, picture(_contrast(pictures[digit]), 112), caption=class_name(loaded, digit))
    if inspector.conv_layers:
        left, right = st.columns(2)
        layer = left.selectbox(_("Convolution layer"), inspector.conv_layers, key="inside.imagine_layer")
        count = loaded.model.get_layer(layer).filters
        index = right.number_input(_("Filter (0 to {last})").format(last=count - 1), 0, count - 1, 0, key="inside.imagine_filter")
        if st.button(_("Imagine this filter"), key="inside.imagine_filter_button"):
            captioned_image(
                st,
                picture(_contrast(_imagined(choice.file_key, ("filter", layer, int(index)), loaded)), 140),
                caption=_("What excites filter {number} of {layer} most").format(number=index, layer=layer),
            )


def _contrast(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else image


# Break it


def _reset_break(broken: Broken) -> None:
    """Reset's callback: every weight back, and every control shown back at its start (the controls' values are set, not
    deleted: a deleted widget value stayed on the student's screen and came back with the next change)."""
    for name in list(st.session_state):
        if str(name).startswith("inside.break_off."):
            st.session_state[name] = []
        elif str(name).startswith("inside.break_all."):
            st.session_state[name] = False
    st.session_state["inside.break_noise"] = 0.0
    broken.reset()


def break_it(loaded, choice, image01: np.ndarray) -> None:
    st.header(_("Break it"))
    st.caption(
        _(
            "Switch off filters of a convolution or units of a dense layer (they give 0), or shake all the weights a little, "
            "and see how the test accuracy and your drawing's answer change. Reset puts every weight back."
        )
    )
    dataset, _error = dataset_or_error(choice.dataset or "mnist")
    count = min(BREAK_IMAGES, len(dataset.y_test))
    images, labels = dataset.x_test[:count].astype(np.float32) / 255.0, dataset.y_test[:count]
    state = st.session_state.get("inside.broken")
    if state is None or state[0] != choice.file_key:
        state = (choice.file_key, Broken(loaded.model, loaded.normalization))
        st.session_state["inside.broken"] = state
    broken: Broken = state[1]
    layers = broken.layers()
    names = [name for name, _kind, _size in layers]
    left, right = st.columns(2)
    layer = left.selectbox(_("Layer"), names, key="inside.break_layer")
    size = next(units for name, _kind, units in layers if name == layer)
    every = right.toggle(_("Switch off all of them"), key=f"inside.break_all.{layer}")
    off = list(range(size)) if every else st.multiselect(_("Switch off (filters or units)"), list(range(size)), key=f"inside.break_off.{layer}")
    noise = st.select_slider(
        _("Shake the weights"),
        options=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0],  # starts at the first, no shake (Reset sets it back there)
        key="inside.break_noise",
        format_func=lambda value: percent(value, 0),
    )
    st.button(_("Reset"), key="inside.reset", on_click=_reset_break, args=(broken,))
    broken.apply({layer: off} if off else {}, noise)
    accuracy = broken.accuracy(images, labels)
    answer = broken.probabilities(image01)[0]
    columns = st.columns(2)
    columns[0].metric(_("Test accuracy ({count} test images)").format(count=number(count)), percent(accuracy))
    columns[1].metric(
        _("Your drawing"), class_name(loaded, int(np.argmax(answer))), help=_("{sure} sure").format(sure=percent(float(answer.max()), 0))
    )
    if off or noise:
        st.caption(
            _("Switched off: {count} of {size} in {layer}; weights shaken by {noise}.").format(
                count=len(off), size=size, layer=layer, noise=percent(noise, 0)
            )
        )


def drawing_input(choice) -> tuple[np.ndarray | None, str]:
    """The student's last drawing (from the Draw page), or a test image of the model's dataset."""
    drawing = drawing_or_test_image("inside.source", drawing_first=True)
    if drawing is not None:
        return drawing, _("your drawing")
    dataset, error = dataset_or_error(choice.dataset or "mnist")
    if dataset is None:
        st.error(error)
        return None, ""
    last = len(dataset.y_test) - 1
    index = st.number_input(_("Test image number (0 to {last})").format(last=last), 0, last, 0, key="inside.test_image")
    return dataset.x_test[int(index)].astype(np.float32) / 255.0, _("test image {number}").format(number=index)
