"""A student's class controls: the digit (or the class's category) asked for and Save on the Draw page; the class's budget and drawings on Train."""

from __future__ import annotations

import io

import numpy as np
import streamlit as st

from mnistlab.class_identity import within_budget
from mnistlab.classroom import ClassInfo, Student
from mnistlab.i18n import _, number, percent
from mnistlab.settings import TrainingSettings
from mnistlab_ui.class_categories import category_name
from mnistlab_ui.classroom import (
    class_drawings,
    class_for_training,
)
from mnistlab_ui.server import lab
from mnistlab_ui.text import plain
from mnistlab_ui.text import problem as problem_text


def _png_of(canvas_rgba: np.ndarray | None) -> bytes | None:
    if canvas_rgba is None:
        return None
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(canvas_rgba, np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def class_drawing_controls(membership: tuple[Student, ClassInfo]):
    """Show the digit asked for (and the student's tally); returns the function that offers to save a drawing, or None
    when the class is closed (the student is told before drawing, not after)."""
    import sqlalchemy as sa

    from mnistlab.classroom import ClassLimitError
    from mnistlab_ui.session import CANVAS_VERSION, CLASS_NOTE, CLASS_PROMPT, DRAWING
    from mnistlab_ui.shell import rerun_fragment

    student, info = membership
    classes = lab().classes
    if not info.is_open:
        st.warning(_("The teacher has closed this class to new drawings: you can still draw, but nothing is saved for the class."))
        return None
    tally = classes.tally(student.student_id)  # the labels the class draws now: the digits, or its set's categories
    if CLASS_PROMPT.get() not in tally:  # none yet, or the teacher changed what the class draws
        CLASS_PROMPT.set(classes.next_prompt(student.student_id))
    prompt = CLASS_PROMPT.get()
    if info.categories is None:
        st.markdown("### " + _("Draw a {digit}").format(digit=prompt))
    else:
        st.markdown("### " + _("Draw: {category}").format(category=plain(category_name(info, prompt))))
    note = CLASS_NOTE.get()
    if note:
        st.success(note)
        CLASS_NOTE.clear()
    st.caption(_("Your drawings for the class: {total}").format(total=sum(tally.values())))
    labels = list(tally)

    def save(preprocessed, prediction, canvas_rgba) -> None:
        with st.container(horizontal=True, vertical_alignment="bottom"):
            drawn = st.selectbox(
                _("I drew"),
                labels,
                index=labels.index(prompt),
                format_func=lambda label: category_name(info, label),
                key=f"drawn-{CANVAS_VERSION.get()}",
                help=_("If you drew another one than the one asked for, say which: the drawing is saved with that label."),
            )
            pressed = st.button(_("Save for the class"), type="primary", key=f"save-{CANVAS_VERSION.get()}")
        if not pressed:
            return
        predicted = None if prediction is None or info.categories is not None else int(np.argmax(prediction.probabilities))
        try:
            classes.save_drawing(
                student.student_id,
                prompt,
                np.round(preprocessed.image * 255.0).astype(np.uint8),
                label=int(drawn),
                predicted=predicted,
                confidence=None if predicted is None else float(prediction.confidence),
                model_name=info.model_name,
                png=_png_of(canvas_rgba),
            )
        except ClassLimitError as problem:
            st.warning(problem_text(problem))
            return
        except ValueError as problem:
            st.error(problem_text(problem))
            return
        except (sa.exc.DBAPIError, OSError) as error:
            # The drawing stays on the canvas: nothing is lost, the student presses again.
            from mnistlab.database import describe_problem, is_busy

            if is_busy(error):
                st.warning(_("Your drawing was not saved yet: the class's database is busy. It is still here; press Save again in a moment."))
            else:
                st.error(
                    _("Your drawing was not saved: {problem} Your drawing is still here; tell your teacher.").format(
                        problem=plain(describe_problem(error, lab().database.url))
                    )
                )
            return
        if info.categories is None:
            CLASS_NOTE.set(_("Saved your {digit}. Thank you!").format(digit=int(drawn)))
        else:
            CLASS_NOTE.set(_("Saved your drawing of {category}. Thank you!").format(category=plain(category_name(info, int(drawn)))))
        CLASS_PROMPT.set(classes.next_prompt(student.student_id))
        CANVAS_VERSION.set(CANVAS_VERSION.get() + 1)
        DRAWING.clear()
        rerun_fragment()

    return save


def class_budget(settings: TrainingSettings) -> TrainingSettings:
    """The settings within the class's budget (the teacher's maximum epochs and training images), saying so."""
    info = class_for_training()
    if info is None or (info.max_epochs is None and info.train_images is None):
        return settings
    budgeted = within_budget(settings, info)
    recipe_epochs = settings.max_epochs or settings.base_recipe.max_epochs
    st.caption(
        _("Your class's budget for each training: at most {epochs} epochs and {images} training images (set by the teacher).").format(
            epochs=info.max_epochs or _("any number of"), images=number(info.train_images) if info.train_images else _("all")
        )
    )
    if budgeted.max_epochs != settings.max_epochs and settings.target_accuracy is not None:
        # Never silently: a lesson step's target was chosen for its epochs, and fewer may not reach it.
        st.warning(
            _(
                "The form says {asked} epochs, but your class's budget trains at most {most}: the target of {target} may not be "
                "reached within {most}."
            ).format(asked=recipe_epochs, most=info.max_epochs, target=percent(settings.target_accuracy)),
            icon=":material/timer:",
        )
    return budgeted


def class_data_options(dataset: str) -> dict:
    """Checkboxes for the class's drawings; returns the extra data for `start_run` (extra_train, extra_tests)."""
    info = class_for_training()
    if info is None or dataset != "mnist":
        return {}
    data, _version = class_drawings(info)
    train_half, test_half = data.split("train"), data.split("test")
    name = info.name
    with st.expander(_("Our class's drawings ({name}: {count})").format(name=plain(name), count=len(data)), expanded=False):
        test = st.checkbox(
            _("Test also on {name}'s drawings").format(name=plain(name)),
            value=False,
            disabled=not len(test_half),
            help=_("After training, the model is also scored on the class's test half ({count} drawings).").format(count=len(test_half)),
        )
        add = st.checkbox(
            _("Add {name}'s drawings to the training data").format(name=plain(name)),
            value=False,
            disabled=not len(train_half),
            help=_("Trains with the class's training half ({count} drawings); the test half stays out, so the score is fair.").format(
                count=len(train_half)
            ),
        )
    extra: dict = {}
    if test and len(test_half):
        extra["extra_tests"] = {
            _("{name}'s drawings (test half, {count})").format(name=name, count=len(test_half)): (test_half.images, test_half.labels)
        }
    if add and len(train_half):
        extra["extra_train"] = (train_half.images, train_half.labels)
    return extra
