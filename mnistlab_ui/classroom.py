"""What the Class, Draw and Train pages show of a class: membership, the class model, the dashboard, compare runs.

The class itself lives in `mnistlab.classroom` (the database); this module keeps who
this browser session is in a class (a student, or the teacher with the teacher key)
and draws the class's figures.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import streamlit as st

from mnistlab.classroom import TOKEN_LIFETIME, ClassDrawings, ClassInfo, ClassScore, Student, export_idx_zip, export_npz, normalise_code, score
from mnistlab.datasets import DATASETS
from mnistlab.i18n import _, ngettext, number, percent, seconds
from mnistlab.network import StudentUrl, student_url
from mnistlab.pictures import to_grey
from mnistlab.runs import RunSnapshot
from mnistlab.settings import TrainingSettings
from mnistlab_ui.charts import compare_chart, drawings_confusion_chart, per_digit_chart, race_chart
from mnistlab_ui.identity import browser_owner, read_cookie, write_cookie
from mnistlab_ui.models import QUICK, QUICK_CLASS_MODEL, ModelChoice, class_model_key, load_choice, model_choices, run_choice
from mnistlab_ui.server import lab
from mnistlab_ui.session import CLASS_MEMBER, TEACHER_COOKIE_VALUE, TEACHER_KEYS, TEACHING
from mnistlab_ui.text import plain
from mnistlab_ui.text import problem as problem_text

DASHBOARD_EVERY = 15.0  # seconds: "a few times a minute"


# Who this session is in a class


def member() -> tuple[Student, ClassInfo] | None:
    """This session's class membership, if the class still exists. A new session (a reload, a phone that slept)
    finds the place this browser joined last; after "Leave the class" it stays out."""
    if not CLASS_MEMBER.is_set:
        CLASS_MEMBER.set(lab().classes.latest_student_of(browser_owner()))
    student = CLASS_MEMBER.get()
    if not student:
        return None
    info = lab().classes.get(student.class_id)
    if info is None or lab().classes.student(student.student_id) is None:
        CLASS_MEMBER.clear()
        return None
    return student, info


TEACHER_COOKIE = "mnistlab_teacher"


def teacher_key(class_id: int) -> str | None:
    """What this session holds to change the class: the teacher key, or the signed token its browser keeps."""
    return TEACHER_KEYS.get().get(class_id)


def _cookie_tokens() -> list[str]:
    value = read_cookie(TEACHER_COOKIE) or ""
    return [token for token in value.split("~") if token][:8]


def taught_by_this_browser() -> list[ClassInfo]:
    """The classes this browser may teach: those of this session, and those whose tokens its cookie keeps."""
    classes = lab().classes
    found = {class_id: classes.get(class_id) for class_id in TEACHER_KEYS.get()}
    for token in _cookie_tokens():
        info = classes.class_of_token(token)
        if info is not None and info.class_id not in found:
            TEACHER_KEYS.get()[info.class_id] = token
            found[info.class_id] = info
    return [info for info in found.values() if info is not None]


def teaching() -> ClassInfo | None:
    """The class this session teaches, if it still exists. After a reload (a new session) the teacher's browser
    gets its dashboard back when the address names the class (?class=CODE) and its cookie keeps a token for it."""
    class_id = TEACHING.get()
    if class_id is None:
        code = normalise_code(st.query_params.get("class", ""))
        mine = [info for info in taught_by_this_browser() if info.code == code] if code else []
        if not mine:
            return None
        class_id = mine[0].class_id
        TEACHING.set(class_id)
    if teacher_key(class_id) is None:
        return None
    info = lab().classes.get(class_id)
    if info is None:
        TEACHING.clear()
    return info


def become_teacher(info: ClassInfo, key: str) -> None:
    """This session teaches the class; the browser keeps a signed token (never the key) so a reload keeps it so."""
    TEACHER_KEYS.get()[info.class_id] = key
    TEACHING.set(info.class_id)
    tokens = [token for token in _cookie_tokens() if (found := lab().classes.class_of_token(token)) is not None and found.class_id != info.class_id]
    tokens = [lab().classes.teacher_token(info.class_id, key), *tokens][:8]
    TEACHER_COOKIE_VALUE.set("~".join(tokens))
    st.query_params["class"] = info.code


def keep_teacher_cookie() -> None:
    """Write the teacher's cookie in every run of the teacher's page, not only in the run that started the class: that
    run ends in a rerun at once, and a script in it may be replaced before the browser ever runs it (then F5 lost
    the dashboard)."""
    value = TEACHER_COOKIE_VALUE.get()
    if value:
        write_cookie(TEACHER_COOKIE, value, TOKEN_LIFETIME, same_site="Strict")


def students_url() -> StudentUrl:
    """The app's address for students: MNISTLAB_PUBLIC_URL, else the address the browser used unless it is a loopback
    one (localhost), which is replaced by this machine's network address."""
    from mnistlab_ui.links import app_url

    return student_url(app_url(), lab().config.public_url)


def join_url(info: ClassInfo) -> str:
    """The full join link students open (the QR code and the projector show it)."""
    return f"{students_url().url}{info.join_path}"


def qr_png(text: str, scale: int = 10) -> bytes:
    """A QR code big enough to read from the back of a room (segno, error correction M)."""
    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=2, dark="#000000", light="#ffffff")
    return buffer.getvalue()


# The class model


def class_model_choice(info: ClassInfo) -> ModelChoice | None:
    """The teacher's class model as a page model choice (None if none is set or it is gone or unusable)."""
    if not info.model_name:
        return None
    return next((choice for choice in model_choices() if choice.key == class_model_key(info.model_name) and choice.usable), None)


def class_model_options() -> dict[str, str]:
    """The models a teacher can make the class model: this server's quick digits model and the saved digits models
    that load. {value kept in the class: label}."""
    options = {}
    for choice in model_choices():
        if choice.usable and choice.dataset == "mnist" and choice.kind == QUICK:
            options[QUICK_CLASS_MODEL + choice.key.removeprefix(f"{QUICK}-")] = choice.label
    for stored in lab().models.list():
        if stored.problem is None and stored.dataset == "mnist":
            options[stored.name] = _("Saved: {description}").format(description=stored.describe())
    return options


@st.cache_resource(max_entries=64, show_spinner=False)
def _score(class_id: int, version: tuple, model_key: tuple, _choice: ModelChoice, _data: ClassDrawings) -> ClassScore:
    probabilities = load_choice(_choice).predictor.probabilities(_data.images) if len(_data) else np.zeros((0, 10), np.float32)
    return score(probabilities, _data.labels)


def class_score(info: ClassInfo, choice: ModelChoice, data: ClassDrawings, version: tuple) -> ClassScore:
    """The class model on the class's visible drawings, computed once per change of drawings or model (shared)."""
    return _score(info.class_id, version, choice.file_key, choice, data)


@st.cache_resource(max_entries=32, show_spinner=False)
def _drawings(class_id: int, version: tuple) -> ClassDrawings:
    return lab().classes.arrays(class_id)


def class_drawings(info: ClassInfo) -> tuple[ClassDrawings, tuple]:
    """The class's visible drawings and their version: read from the database once per change, shared read-only by
    every session (a teacher's dashboard refreshes every 15 s; it should not read 20,000 images each time)."""
    version = lab().classes.version(info.class_id)
    return _drawings(info.class_id, version), version


@st.cache_resource(max_entries=16, show_spinner=False)
def class_exports(class_id: int, version: tuple, slug: str) -> tuple[bytes, bytes]:
    """The IDX zip and the .npz of a class's drawings, made once per change of the drawings."""
    data = _drawings(class_id, version)
    return export_idx_zip(data, slug), export_npz(data)


def test_source(info: ClassInfo) -> str:
    """Where the class model's recorded test accuracy comes from (the MNIST test set, or the 1,000-digit sample's)."""
    if info.model_name and info.model_name.startswith(QUICK_CLASS_MODEL):
        run = lab().runs.get(int(info.model_name.removeprefix(QUICK_CLASS_MODEL)))
        return run.result.data_source if run is not None and run.result is not None else "?"
    try:
        return str(lab().models.get(info.model_name).metadata.get("data_source") or "?")
    except (ValueError, FileNotFoundError, KeyError):
        return "?"


def recorded_test_accuracy(info: ClassInfo) -> float | None:
    """The class model's accuracy on its own test set, as recorded when it was trained."""
    if info.model_name and info.model_name.startswith(QUICK_CLASS_MODEL):
        run = lab().runs.get(int(info.model_name.removeprefix(QUICK_CLASS_MODEL)))
        return run.result.test_accuracy if run is not None and run.result is not None else None
    try:
        value = lab().models.get(info.model_name).metadata.get("test_accuracy")
    except (ValueError, FileNotFoundError, KeyError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# Figures


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
        delta=None if gap is None else _("{gap} against its own test set").format(gap=percent(gap, signed=True)),
        delta_color="normal",
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
                        st.image(picture(data.images[index]), caption=caption, width=84)
                        if key is not None and st.button(
                            _("Hide"), key=f"hide-{int(data.ids[index])}", help=_("Leave this drawing out of every figure (a scribble).")
                        ):
                            classes.hide_drawing(info.class_id, key, int(data.ids[index]))
                            st.rerun()
            if len(wrong) > len(newest):
                st.caption(_("The {count} newest are shown.").format(count=len(newest)))


# Compare runs


def compare_table(info: ClassInfo, shared: list[tuple[RunSnapshot, str | None]], class_accuracy: dict[int, float | None]) -> pd.DataFrame:
    """One row per shared run: dataset, preset, parameters, epochs, time to target, test accuracy, our drawings."""
    rows = []
    for snapshot, nickname in shared:
        result = snapshot.result
        reached = result is not None and result.target_reached
        row = {
            _("run"): snapshot.run_id,
            _("dataset"): _(DATASETS[snapshot.settings.dataset].title),
            _("preset"): snapshot.settings.arch,
            _("parameters"): result.parameters if result else None,
            _("epochs"): result.epochs_run if result else None,
            _("time to target (s)"): round(result.target_reached.seconds, 1) if reached else "–",
            _("test accuracy"): round(100 * result.test_accuracy, 2) if result else None,
            _("accuracy on our drawings"): None if class_accuracy.get(snapshot.run_id) is None else round(100 * class_accuracy[snapshot.run_id], 2),
        }
        if info.show_names:
            row = {_("shared by"): nickname or "–", **row}
        rows.append(row)
    return pd.DataFrame(rows)


def shared_snapshots(info: ClassInfo) -> list[tuple[RunSnapshot, str | None]]:
    out = []
    for run_id, nickname in lab().classes.shared_runs(info.class_id):
        snapshot = lab().runs.get(run_id)
        if snapshot is not None and snapshot.is_done and snapshot.result is not None:
            out.append((snapshot, nickname))
    return out


@st.cache_resource(max_entries=256, show_spinner=False)
def _run_on_class(run_id: int, version: tuple, file_key: tuple, _choice: ModelChoice, _data: ClassDrawings) -> float | None:
    if not len(_data):
        return None
    return score(load_choice(_choice).predictor.probabilities(_data.images), _data.labels).accuracy


def run_class_accuracy(snapshot: RunSnapshot, data: ClassDrawings, version: tuple) -> float | None:
    """A digits run's accuracy on the class's test split (never on drawings it may have trained on)."""
    if snapshot.settings.dataset != "mnist" or not snapshot.has_model or not snapshot.model_path.is_file():
        return None
    test = data.split("test")
    choice = run_choice(snapshot)
    try:
        return _run_on_class(snapshot.run_id, version, choice.file_key, choice, test)
    except ValueError:
        return None


def compare_runs(info: ClassInfo) -> None:
    """The class's shared runs in one sortable table, and the accuracy curves of the runs chosen."""
    shared = shared_snapshots(info)
    if not shared:
        st.caption(_("No runs shared with the class yet. A student shares a finished run from this page."))
        return
    data, version = class_drawings(info)
    accuracy = {snapshot.run_id: run_class_accuracy(snapshot, data, version) for snapshot, _nickname in shared}
    table = compare_table(info, shared, accuracy)
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(_("Click a column's name to sort by it. Accuracy on our drawings is measured on the class's test half."))
    labels = {snapshot.run_id: snapshot.name for snapshot, _nickname in shared}
    chosen = st.multiselect(_("Accuracy curves of"), list(labels), default=list(labels)[:4], format_func=labels.get)
    curves = []
    for snapshot, _nickname in shared:
        if snapshot.run_id in chosen:
            for record in snapshot.epochs:
                curves.append({_("run"): labels[snapshot.run_id], _("epoch"): record.epoch, _("validation accuracy"): record.val_accuracy})
    if curves:
        st.altair_chart(compare_chart(pd.DataFrame(curves), _("run"), _("epoch"), _("validation accuracy")), width="stretch")


def share_panel(info: ClassInfo, student: Student) -> None:
    """A student shares one of their finished runs with the class."""
    shared = {run_id for run_id, _nickname in lab().classes.shared_runs(info.class_id)}
    mine = [snapshot for snapshot in lab().jobs.runs_of(browser_owner()) if snapshot.is_done and snapshot.result is not None]
    candidates = [snapshot for snapshot in mine if snapshot.run_id not in shared]
    if not candidates:
        st.caption(_("Train on the Train page; your finished runs can then be shared with the class here."))
        return
    by_id = {snapshot.run_id: snapshot for snapshot in candidates}
    run_id = st.selectbox(
        _("Share one of your runs with the class"),
        list(by_id),
        format_func=lambda run: by_id[run].name,
    )
    if st.button(_("Share with the class")):
        lab().classes.share_run(info.class_id, run_id, student.student_id)
        st.rerun()


# Drawing for the class (the Draw page in class mode)


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
    if CLASS_PROMPT.get() is None:
        CLASS_PROMPT.set(classes.next_prompt(student.student_id))
    prompt = CLASS_PROMPT.get()
    st.markdown("### " + _("Draw a {digit}").format(digit=prompt))
    note = CLASS_NOTE.get()
    if note:
        st.success(note)
        CLASS_NOTE.clear()
    tally = classes.tally(student.student_id)
    st.caption(_("Your drawings for the class: {total}").format(total=sum(tally.values())))

    def save(preprocessed, prediction, canvas_rgba) -> None:
        with st.container(horizontal=True, vertical_alignment="bottom"):
            drawn = st.selectbox(
                _("I drew"),
                list(range(10)),
                index=prompt,
                key=f"drawn-{CANVAS_VERSION.get()}",
                help=_("If you drew another digit than the one asked for, say which: the drawing is saved with that label."),
            )
            pressed = st.button(_("Save for the class"), type="primary", key=f"save-{CANVAS_VERSION.get()}")
        if not pressed:
            return
        predicted = None if prediction is None else int(np.argmax(prediction.probabilities))
        try:
            classes.save_drawing(
                student.student_id,
                prompt,
                np.round(preprocessed.image * 255.0).astype(np.uint8),
                label=int(drawn),
                predicted=predicted,
                confidence=None if prediction is None else float(prediction.confidence),
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
        CLASS_NOTE.set(_("Saved your {digit}. Thank you!").format(digit=int(drawn)))
        CLASS_PROMPT.set(classes.next_prompt(student.student_id))
        CANVAS_VERSION.set(CANVAS_VERSION.get() + 1)
        DRAWING.clear()
        rerun_fragment()

    return save


def class_budget(settings: TrainingSettings) -> TrainingSettings:
    """The settings within the class's budget (the teacher's maximum epochs and training images), saying so."""
    from dataclasses import replace

    info = class_for_training()
    if info is None or (info.max_epochs is None and info.train_images is None):
        return settings
    changes = {}
    recipe_epochs = settings.max_epochs or settings.base_recipe.max_epochs
    if info.max_epochs is not None and recipe_epochs > info.max_epochs:
        changes["max_epochs"] = info.max_epochs
    if info.train_images is not None and (settings.train_size is None or settings.train_size > info.train_images):
        changes["train_size"] = info.train_images
    st.caption(
        _("Your class's budget for each training: at most {epochs} epochs and {images} training images (set by the teacher).").format(
            epochs=info.max_epochs or _("any number of"), images=number(info.train_images) if info.train_images else _("all")
        )
    )
    return replace(settings, **changes) if changes else settings


# The class's drawings in a training (the Train page)


def class_for_training() -> ClassInfo | None:
    """The class whose drawings this session may train and test with: the one it teaches, else the one it is in."""
    taught = teaching()
    if taught is not None:
        return taught
    membership = member()
    return membership[1] if membership is not None else None


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


# The teacher's lists: who is in the class, and the drawings hidden from its figures


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
    hidden = lab().classes.hidden(info.class_id)
    if not hidden:
        return
    with st.expander(_("Hidden drawings ({count})").format(count=len(hidden))):
        for start in range(0, min(len(hidden), 24), 6):
            for column, drawing in zip(st.columns(6), hidden[start : start + 6]):
                with column:
                    st.image(picture(drawing.image), caption=_("drew {drawn}").format(drawn=drawing.label), width=84)
                    if key is not None and st.button(_("Show again"), key=f"unhide-{drawing.drawing_id}"):
                        lab().classes.hide_drawing(info.class_id, key, drawing.drawing_id, hidden=False)
                        st.rerun()


# The class race: every training of the class on one chart, live


def race_runs(info: ClassInfo) -> list[tuple[RunSnapshot, str]]:
    """The class's trainings now and in the last half hour, one per network (classmates sharing a training are one
    line), each with who trains it."""
    import time

    owners = lab().classes.owners(info.class_id)
    if not owners:
        return []
    active = [run for run in lab().jobs.active_runs() if run.owner in owners]
    recent = [
        run
        for owner in owners
        for run in lab().jobs.runs_of(owner, limit=5)
        if run.is_done and run.started_at and time.time() - (run.ended_at or 0) < 1800 and run.shared_from is None and run.curve
    ]
    by_training: dict[str, list[RunSnapshot]] = {}
    for run in active + recent:
        by_training.setdefault(run.training_key or str(run.run_id), []).append(run)
    lines = []
    for runs in by_training.values():
        runs = sorted(runs, key=lambda run: run.run_id)
        names = sorted({owners[run.owner] for run in runs})
        who = names[0] if len(names) == 1 else _("{name} and {count} more").format(name=names[0], count=len(names) - 1)
        lines.append((runs[0], who if info.show_names else _("run {run}").format(run=runs[0].run_id)))
    return lines


def race_frame(lines: list[tuple[RunSnapshot, str]]) -> pd.DataFrame:
    """Every line's training accuracy against epochs."""
    rows = [
        {_("who"): who, "epoch": point.epoch - 1 + point.batch / point.batches_per_epoch, "accuracy": point.accuracy}
        for run, who in lines
        for point in run.curve
    ]
    return pd.DataFrame(rows, columns=[_("who"), "epoch", "accuracy"])


def race(info: ClassInfo) -> None:
    """The class race for the projector: every training of the class live, and who reached the target first."""
    lines = race_runs(info)
    st.subheader(_("Class race"))
    if not lines:
        st.caption(_("When students train (Train page), every training of the class appears here live, on one chart."))
        return
    reached = [(run, who) for run, who in lines if run.result is not None and run.result.target_reached is not None and run.ended_at is not None]
    if reached:
        run, who = min(reached, key=lambda pair: pair[0].ended_at)
        st.success(
            _("First to reach the target: {who} ({title}, {seconds}).").format(
                who=plain(who), title=run.title, seconds=seconds(run.result.target_reached.seconds)
            )
        )
    targets = sorted({run.settings.target_accuracy for run, _who in lines if run.settings.target_accuracy})
    st.altair_chart(race_chart(race_frame(lines), _("who"), targets), width="stretch")
    st.caption(_("Each line is one training (classmates with the same settings share one); the dashed line is the target."))
