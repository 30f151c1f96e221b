"""A class's own categories on the Class page: the teacher chooses and edits what the class draws, and watches the
drawings come in per category and per student, hiding a scribble with one click (and showing it again)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mnistlab.category_sets import READY_MADE, CategorySet
from mnistlab.class_identity import TeacherKeyError
from mnistlab.classroom import ClassInfo
from mnistlab.i18n import _, number
from mnistlab_ui.classroom import drawings_at
from mnistlab_ui.server import lab
from mnistlab_ui.text import captioned_image, plain
from mnistlab_ui.text import problem as problem_text

TYPED = "typed"  # the teacher types the names (no ready-made set)
GALLERY_SIZE = 24  # the newest drawings of a category shown at once


def category_name(info: ClassInfo, label: int) -> str:
    """What a drawing's label means in this class: a digit, or its category's name (also a removed one's)."""
    if info.categories is None:
        return str(label)
    try:
        return info.categories.category(label).name
    except ValueError:
        return "?"


def _apply(change) -> None:
    """Run a teacher's change of the set; say what was wrong in plain words, else show the page again."""
    try:
        change()
    except (TeacherKeyError, ValueError) as problem:
        st.error(problem_text(problem))
    else:
        st.rerun()


def categories_settings(info: ClassInfo, key: str | None) -> None:
    """What the class draws: the digits, or a set of 2 to 10 categories of its own (from a ready-made set or typed),
    which the teacher renames, removes, brings back or adds to while the class draws."""
    classes = lab().classes
    # Its own key keeps it open while its contents change (choosing "names we type" closed it).
    with st.expander(_("What the class draws"), key="class.categories.open"):
        if info.categories is None:
            st.caption(_("The class draws the digits 0 to 9. Or choose 2 to 10 categories of your own for the class to draw."))
            start = st.selectbox(
                _("Start from"),
                [*READY_MADE, TYPED],
                format_func=lambda choice: _("names we type") if choice == TYPED else _(READY_MADE[choice].title),
                key="class.categories.start",
            )
            suggested = "" if start == TYPED else "\n".join(_(name) for name in READY_MADE[start].names)
            typed = st.text_area(
                _("Categories, one per line"),
                value=suggested,
                key=f"class.categories.names.{start}",
                help=_('Any names the class would type: Turkish letters, emoji, spaces ("🐟 balık").'),
            )
            if st.button(_("Draw these categories"), type="primary", key="class.categories.choose"):
                names = [line for line in typed.splitlines() if line.strip()]
                _apply(lambda: classes.choose_categories(info.class_id, key, CategorySet.of(names)))
            return
        st.caption(_("The class draws these categories. Renaming one keeps its drawings; removing one keeps them too, out of training."))
        current = info.categories
        for category in current.categories:
            name_column, button_column = st.columns([3, 1], vertical_alignment="bottom")
            renamed = name_column.text_input(
                _("Category {number}").format(number=category.number + 1),
                value=category.name,
                key=f"class.category.{info.category_set}.{category.number}",
                disabled=category.removed,
            )
            if not category.removed and renamed != category.name:
                _apply(lambda number=category.number, name=renamed: classes.edit_categories(info.class_id, key, current.rename(number, name)))
            if category.removed:
                if button_column.button(_("Bring back"), key=f"class.category.restore.{category.number}"):
                    _apply(lambda number=category.number: classes.edit_categories(info.class_id, key, current.restore(number)))
            elif button_column.button(_("Remove"), key=f"class.category.remove.{category.number}"):
                _apply(lambda number=category.number: classes.edit_categories(info.class_id, key, current.remove(number)))
        name_column, button_column = st.columns([3, 1], vertical_alignment="bottom")
        added = name_column.text_input(_("A new category"), key=f"class.category.new.{info.category_set}.{len(current.categories)}")
        if button_column.button(_("Add"), key="class.category.add", disabled=not added.strip()):
            _apply(lambda: classes.edit_categories(info.class_id, key, current.add(added)))
        if st.button(_("Draw the digits again"), key="class.categories.digits", help=_("This set's drawings are kept in the database.")):
            _apply(lambda: classes.choose_categories(info.class_id, key, None))


def _picture(image):
    from mnistlab_ui.class_dashboard import picture

    return picture(image)


def category_dashboard(info: ClassInfo) -> None:
    """Live, for a class drawing its own set: how many drawings of each category each student made, each category's
    newest drawings, where the teacher hides a scribble in one click (shown again under "Hidden drawings"), and the
    class's network trained on them."""
    from mnistlab_ui.classroom import teacher_key

    classes = lab().classes
    info = classes.get(info.class_id) or info
    if info.categories is None:
        return
    key = teacher_key(info.class_id)
    counts = classes.drawn_counts(info.class_id, info.category_set)
    active = info.categories.active
    total = sum(sum(per_student.values()) for per_student in counts.values())
    columns = st.columns(3)
    columns[0].metric(_("Students"), len(classes.students(info.class_id)))
    columns[1].metric(_("Drawings"), number(total))
    columns[2].metric(_("Categories"), len(active))
    st.subheader(_("Drawings per category and student"))
    if not counts:
        st.caption(_("No drawings yet: students open Draw and draw what it asks for."))
    else:
        rows = [
            {_("student"): plain(nickname) if info.show_names else "·", **{category.name: per_student.get(category.number, 0) for category in active}}
            for nickname, per_student in sorted(counts.items())
        ]
        rows.append({_("student"): _("all"), **{category.name: sum(row[category.name] for row in rows) for category in active}})
        st.table(pd.DataFrame(rows), hide_index=True)
        if key is not None:
            hide_a_students_drawings(info, key, set(counts))
    st.subheader(_("Each category's drawings"))
    drawings = classes.drawings(info.class_id, category_set=info.category_set)
    tabs = st.tabs([category.name for category in active])
    for tab, category in zip(tabs, active):
        with tab:
            shown = [drawing for drawing in drawings if drawing.label == category.number][:GALLERY_SIZE]
            if not shown:
                st.caption(_("None yet."))
            for start in range(0, len(shown), 6):
                for column, drawing in zip(st.columns(6), shown[start : start + 6]):
                    with column:
                        captioned_image(st, _picture(drawing.image), caption=plain(drawing.nickname) if info.show_names else "", width=84)
                        if key is not None and st.button(
                            _("Hide"), key=f"hide-{drawing.drawing_id}", help=_("Leave this drawing out of every figure (a scribble).")
                        ):
                            classes.hide_drawing(info.class_id, key, drawing.drawing_id)
                            st.rerun()
    if key is not None:
        # Here, in the part that refreshes itself: Train becomes possible as the class draws, without a reload.
        class_set_training(info)


@st.cache_resource(max_entries=16, show_spinner=False)
def _category_exports(class_id: int, category_set: int, names: tuple[tuple[int, str], ...], version: tuple, slug: str) -> tuple[int, bytes, bytes]:
    from mnistlab.classroom import export_category_npz, export_category_zip

    data = drawings_at(class_id, version, category_set).only(label for label, _name in names)
    return len(data), export_category_zip(data, dict(names), slug), export_category_npz(data, dict(names))


def category_exports(info: ClassInfo) -> None:
    """The set's drawings (its categories not removed, hidden drawings left out) to take home: a zip of PNG folders,
    the layout `keras.utils.image_dataset_from_directory` reads, and a .npz."""
    slug = f"class-{info.code.lower()}"
    names = tuple((category.number, category.name) for category in info.categories.active)
    count, archive, arrays = _category_exports(info.class_id, info.category_set, names, lab().classes.version(info.class_id), slug)
    st.caption(
        _(
            "{count} drawings of {categories}. The zip has a folder of PNG pictures per category, the layout Keras' "
            "image_dataset_from_directory reads; files are named by a student number, never a nickname."
        ).format(count=number(count), categories=", ".join(plain(name) for _number, name in names))
    )
    left, right = st.columns(2)
    left.download_button(_("Download as a folder per category (.zip)"), archive, f"{slug}-categories.zip", "application/zip")
    right.download_button(_("Download as .npz (x, y, student, class_names)"), arrays, f"{slug}-categories.npz", "application/octet-stream")


def hide_a_students_drawings(info: ClassInfo, key: str, drew: set[str]) -> None:
    """One click leaves all of one student's drawings of the set out (a student who only scribbled); "Hidden drawings"
    brings them back the same way."""
    classes = lab().classes
    students = [student for student in classes.students(info.class_id) if student.nickname in drew]
    with st.container(horizontal=True, vertical_alignment="bottom"):
        chosen = st.selectbox(
            _("A student's drawings"),
            students,
            format_func=lambda student: plain(student.nickname),
            key="class.categories.hide_student",
        )
        if st.button(_("Hide all of them"), key="class.categories.hide_student.button", disabled=chosen is None):
            classes.hide_student_drawings(info.class_id, key, chosen.student_id, info.category_set)
            st.rerun()


def _latest_set_run(owner: str):
    """This browser's newest training on a set of the class's own (a reload finds it again), or None."""
    from mnistlab.datasets import OWN_IMAGES

    return next((run for run in lab().jobs.runs_of(owner, limit=20) if run.settings.dataset == OWN_IMAGES), None)


def class_set_training(info: ClassInfo) -> None:
    """The teacher trains the class's network on its set, through the server's queue like every training: a small CNN
    from scratch with light augmentation, tested on the drawings of classmates it never saw."""
    from mnistlab.class_set_data import class_set_data, class_set_settings
    from mnistlab.runs import ACTIVE
    from mnistlab_ui.identity import browser_owner

    classes = lab().classes
    st.subheader(_("Train a network on our drawings"))
    st.caption(
        _(
            "A small convolutional network learns the categories from scratch on some students' drawings and is tested on "
            "the others': classmates it never saw. Light augmentation (small shifts, turns and changes of size) makes each "
            "drawing count for several."
        )
    )
    nicknames = {student.student_id: student.nickname for student in classes.students(info.class_id)}
    # Read once per change of the drawings, as the digits' are: this part refreshes every 15 s.
    drawings = drawings_at(info.class_id, classes.version(info.class_id), info.category_set)
    try:
        made = class_set_data(drawings, info.categories, nicknames, seed=info.code)
    except ValueError as problem:
        st.info(problem_text(problem))
        made = None
    owner = browser_owner()
    latest = _latest_set_run(owner)
    training = latest is not None and latest.status in ACTIVE
    if st.button(_("Train on our drawings"), type="primary", disabled=made is None or training, key="class.categories.train"):
        try:
            lab().jobs.submit(class_set_settings(), owner, own_data=made.dataset)
        except ValueError as problem:  # one training at a time, the server's limits, a busy database: said plainly
            st.warning(problem_text(problem))
        else:
            st.rerun()
    if training:
        st.fragment(_training_progress, run_every=1.0)(latest.run_id)
    elif latest is not None:
        _training_result(info, latest)


def _training_progress(run_id: int) -> None:
    """The class's training as it goes; the whole page once more when it ends (so the result shows and polling stops)."""
    from mnistlab.i18n import percent
    from mnistlab.runs import ACTIVE
    from mnistlab_ui.identity import browser_owner

    snapshot = lab().jobs.snapshot(run_id, owner=browser_owner())
    if snapshot is None or snapshot.status not in ACTIVE:
        st.rerun()
    latest = snapshot.latest_batch
    epochs = (snapshot.plan or {}).get("max_epochs") or snapshot.settings.max_epochs
    if latest is None:
        st.caption(_("Getting ready: {phase}").format(phase=_(snapshot.phase)))
        return
    done = (latest.epoch - 1 + latest.batch / latest.batches_per_epoch) / epochs
    text = _("Training: epoch {epoch} of {epochs}").format(epoch=latest.epoch, epochs=epochs)
    if snapshot.epochs and snapshot.epochs[-1].val_accuracy is not None:
        text += " · " + _("validation accuracy {accuracy}").format(accuracy=percent(snapshot.epochs[-1].val_accuracy))
    st.progress(min(1.0, done), text=text)


def _training_result(info: ClassInfo, run) -> None:
    """How the class's network did on classmates it never saw, and which categories it mixes up."""
    from pathlib import Path

    import numpy as np

    from mnistlab.evaluation import evaluation_from_probabilities
    from mnistlab.following import PREDICTIONS_FILE
    from mnistlab.i18n import percent
    from mnistlab.runs import FINISHED
    from mnistlab_ui.charts import confusion_chart

    if run.status != FINISHED or run.result is None:
        st.warning(_("The last training did not finish: {reason}").format(reason=plain(run.error or _(run.status))))
        return
    st.metric(_("Accuracy on classmates it never saw"), percent(run.result.test_accuracy))
    st.caption(plain(run.result.data_source))
    try:
        with np.load(Path(run.model_path).parent / PREDICTIONS_FILE) as saved:
            probabilities, labels = saved["probabilities"], saved["labels"]
    except (OSError, KeyError, TypeError, ValueError):
        return
    names = list(info.categories.names)
    if probabilities.shape[1] != len(names):
        st.caption(_("The set has changed since this training: train again to see which categories it mixes up."))
        return
    st.altair_chart(confusion_chart(evaluation_from_probabilities(probabilities, labels, tuple(names)), names), width="stretch")
