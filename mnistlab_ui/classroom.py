"""Who this browser session is in a class, and what every class screen reads: its model, its drawings, its links.

The class itself lives in `mnistlab.classroom` (the database). This module keeps who this
session is in a class (a student, or the teacher with the teacher key or the token its
browser keeps), the address students open and its QR code, the class model, and the class's
drawings read once per change and shared by every session. The screens are apart:
`class_dashboard` (the teacher's), `class_student` (a student's controls on Draw and Train),
`race` (every training of the class, live) and `compare` (shared runs side by side).
"""

from __future__ import annotations

import io

import streamlit as st

from mnistlab.classroom import TOKEN_LIFETIME, ClassDrawings, ClassInfo, Student, normalise_code
from mnistlab.i18n import _
from mnistlab.network import StudentUrl, student_url
from mnistlab_ui.identity import browser_owner, read_cookie, write_cookie
from mnistlab_ui.models import QUICK, QUICK_CLASS_MODEL, ModelChoice, class_model_key, model_choices
from mnistlab_ui.server import lab
from mnistlab_ui.session import CLASS_MEMBER, TEACHER_COOKIE_VALUE, TEACHER_KEYS, TEACHING

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


def teacher_tokens(value: str | None) -> list[str]:
    """The teacher tokens a teacher cookie's value holds (at most eight classes)."""
    return [token for token in (value or "").split("~") if token][:8]


def _cookie_tokens() -> list[str]:
    return teacher_tokens(read_cookie(TEACHER_COOKIE))


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


@st.cache_resource(max_entries=32, show_spinner=False)
def drawings_at(class_id: int, version: tuple, category_set: int | None = None) -> ClassDrawings:
    """The class's visible drawings of the digits (or of its set number `category_set`) at `version` (read once per
    version, shared)."""
    return lab().classes.arrays(class_id, category_set=category_set)


def class_drawings(info: ClassInfo) -> tuple[ClassDrawings, tuple]:
    """The class's visible drawings and their version: read from the database once per change, shared read-only by
    every session (a teacher's dashboard refreshes every 15 s; it should not read 20,000 images each time)."""
    version = lab().classes.version(info.class_id)
    return drawings_at(info.class_id, version), version


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


# The class's drawings in a training (the Train page)


def class_for_training() -> ClassInfo | None:
    """The class whose drawings this session may train and test with: the one it teaches, else the one it is in."""
    taught = teaching()
    if taught is not None:
        return taught
    membership = member()
    return membership[1] if membership is not None else None
