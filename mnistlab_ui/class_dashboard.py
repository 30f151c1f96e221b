"""The teacher's dashboard: students, drawings per digit, the class model on our drawings, mistakes, the roster."""

from __future__ import annotations

import numpy as np
import streamlit as st

from mnistlab.classroom import ClassDrawings, ClassInfo, ClassScore, export_idx_zip, export_npz, score
from mnistlab.i18n import _, ngettext, percent
from mnistlab.pictures import to_grey
from mnistlab_ui.charts import drawings_confusion_chart, per_digit_chart
from mnistlab_ui.classroom import (
    class_drawings,
    class_model_choice,
    drawings_at,
    recorded_test_accuracy,
    teacher_key,
    test_source,
)
from mnistlab_ui.models import ModelChoice, load_choice
from mnistlab_ui.server import lab
from mnistlab_ui.text import captioned_image, plain

DASHBOARD_EVERY = 15.0  # seconds: "a few times a minute"


@st.cache_resource(max_entries=64, show_spinner=False)
def _score(class_id: int, version: tuple, model_key: tuple, _choice: ModelChoice, _data: ClassDrawings) -> ClassScore:
    probabilities = load_choice(_choice).predictor.probabilities(_data.images) if len(_data) else np.zeros((0, 10), np.float32)
    return score(probabilities, _data.labels)


def class_score(info: ClassInfo, choice: ModelChoice, data: ClassDrawings, version: tuple) -> ClassScore:
    """The class model on the class's visible drawings, computed once per change of drawings or model (shared)."""
    return _score(info.class_id, version, choice.file_key, choice, data)


@st.cache_resource(max_entries=16, show_spinner=False)
def class_exports(class_id: int, version: tuple, slug: str) -> tuple[bytes, bytes]:
    """The IDX zip and the .npz of a class's drawings, made once per change of the drawings."""
    data = drawings_at(class_id, version)
    return export_idx_zip(data, slug), export_npz(data)


def picture(image: np.ndarray, size: int = 84) -> np.ndarray:
    from mnistlab.pictures import fit_square

    return fit_square(to_grey(image.astype(np.float32) / 255.0), size, background=0)


def dashboard(info: ClassInfo) -> None:
    """The teacher's live figures: students, drawings per digit, the real-world gap, the confusion matrix, mistakes."""
    classes = lab().classes
    key = teacher_key(info.class_id)
    info = classes.get(info.class_id) or info
    data, version = class_drawings(info)
    students = classes.students(info.class_id)
    counts = data.per_digit()
    choice = class_model_choice(info)
    result = class_score(info, choice, data, version) if choice is not None else None
    mnist_accuracy = recorded_test_accuracy(info) if choice is not None else None

    columns = st.columns(4)
    columns[0].metric(_("Students"), len(students))
    columns[1].metric(_("Drawings"), len(data))
    ours = result.accuracy if result is not None else None
    gap = None if ours is None or mnist_accuracy is None else ours - mnist_accuracy
    columns[2].metric(
        _("Accuracy on our drawings"),
        percent(ours) if ours is not None else "–",
        # The gap is written with a true minus sign (−59.0%), which Streamlit does not read as negative: the arrow and
        # its colour are set from the number (a worse score was a green arrow up).
        delta=None if gap is None else percent(gap, signed=True),
        delta_description=None if gap is None else _("against its own test set"),
        delta_color="off" if not gap else "green" if gap > 0 else "red",
        delta_arrow="off" if not gap else "up" if gap > 0 else "down",
        help=_(
            "The class model's answers on the class's drawings (hidden ones left out), against what the students drew. "
            "The real-world gap: how much worse (or better) it reads our handwriting than the test images it was scored on."
        ),
    )
    if mnist_accuracy is not None:
        columns[3].metric(
            _("On its own test set"),
            percent(mnist_accuracy),
            help=_("The class model's accuracy on the test images of the data it was trained on: {source}.").format(source=plain(test_source(info))),
        )
    if choice is None:
        st.info(_("Choose a class model above to see how well it reads the class's drawings."))

    left, right = st.columns(2)
    with left:
        st.subheader(_("Drawings per digit"))
        st.altair_chart(per_digit_chart(counts), width="stretch")
    with right:
        st.subheader(_("Confusion matrix of our drawings"))
        if result is not None and result.drawings:
            st.altair_chart(drawings_confusion_chart(result.confusion), width="stretch")
            st.caption(_("Rows: the digit drawn. Columns: the model's answer. The diagonal is right."))
        else:
            st.caption(_("It appears once there are drawings and a class model."))

    if result is not None and result.drawings:
        wrong = np.flatnonzero(result.predicted != data.labels)
        st.subheader(_("Drawings it got wrong ({count})").format(count=len(wrong)))
        if len(wrong):
            names = {student.student_id: student.nickname for student in students}
            newest = wrong[::-1][:24]
            for start in range(0, len(newest), 6):
                for column, index in zip(st.columns(6), newest[start : start + 6]):
                    with column:
                        caption = _("drew {drawn}, it said {answer}").format(drawn=int(data.labels[index]), answer=int(result.predicted[index]))
                        if info.show_names:
                            caption += f" · {names.get(int(data.student_ids[index]), '?')}"
                        captioned_image(st, picture(data.images[index]), caption=caption, width=84)
                        if key is not None and st.button(
                            _("Hide"), key=f"hide-{int(data.ids[index])}", help=_("Leave this drawing out of every figure (a scribble).")
                        ):
                            classes.hide_drawing(info.class_id, key, int(data.ids[index]))
                            st.rerun()
            if len(wrong) > len(newest):
                st.caption(_("The {count} newest are shown.").format(count=len(newest)))


def roster(info: ClassInfo, key: str | None) -> None:
    """Every student in the class, with their drawings and last activity; the teacher removes those who joined and went."""
    import time

    rows = lab().classes.roster(info.class_id)
    with st.expander(_("Students in the class ({count})").format(count=len(rows))):
        if not rows:
            st.caption(_("Nobody has joined yet."))
        now = time.time()
        for row in rows:
            left, middle, right = st.columns([3, 3, 2], vertical_alignment="center")
            left.markdown(plain(row.nickname))
            minutes = int((now - row.last_active) // 60)
            drawn = ngettext("{count} drawing", "{count} drawings", row.drawings).format(count=row.drawings)
            middle.caption(_("{drawings}, active {minutes} min ago").format(drawings=drawn, minutes=minutes))
            if key is not None and right.button(
                _("Remove"), key=f"remove-{row.student_id}", help=_("For a student who joined and left: they no longer count. Their drawings stay.")
            ):
                lab().classes.remove_student(info.class_id, key, row.student_id)
                st.rerun()


def hidden_drawings(info: ClassInfo, key: str | None) -> None:
    """The drawings the teacher hid (scribbles), with a button to show each one again."""
    from mnistlab_ui.class_categories import category_name

    hidden = lab().classes.hidden(info.class_id, info.category_set)
    if not hidden:
        return
    with st.expander(_("Hidden drawings ({count})").format(count=len(hidden))):
        hidden_by = {}
        for drawing in hidden:
            hidden_by.setdefault((drawing.student_id, drawing.nickname), []).append(drawing)
        for (student_id, nickname), theirs in hidden_by.items():
            if (
                key is not None
                and len(theirs) > 1
                and st.button(
                    _("Show all {count} of {nickname}'s again").format(count=len(theirs), nickname=plain(nickname)),
                    key=f"unhide-student-{student_id}",
                )
            ):
                lab().classes.hide_student_drawings(info.class_id, key, student_id, info.category_set, hidden=False)
                st.rerun()
        for start in range(0, min(len(hidden), 24), 6):
            for column, drawing in zip(st.columns(6), hidden[start : start + 6]):
                with column:
                    captioned_image(st, picture(drawing.image), caption=_("drew {drawn}").format(drawn=category_name(info, drawing.label)), width=84)
                    if key is not None and st.button(_("Show again"), key=f"unhide-{drawing.drawing_id}"):
                        lab().classes.hide_drawing(info.class_id, key, drawing.drawing_id, hidden=False)
                        st.rerun()
