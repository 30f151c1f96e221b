"""Every key this app keeps in `st.session_state`, in one typed table.

Pages read and write session state only through these keys, so a key is spelled
once and its type and meaning are written down once. (Widget keys, which Streamlit
uses to tell widgets apart, are not app state and stay with their widgets.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import streamlit as st

T = TypeVar("T")


@dataclass(frozen=True)
class SessionKey(Generic[T]):
    """One entry of session state: its key, how to make its first value, and what it holds."""

    name: str
    make_default: Callable[[], T]
    meaning: str

    def get(self) -> T:
        if self.name not in st.session_state:
            st.session_state[self.name] = self.make_default()
        return st.session_state[self.name]

    def set(self, value: T) -> None:
        st.session_state[self.name] = value

    def clear(self) -> None:
        st.session_state.pop(self.name, None)

    @property
    def is_set(self) -> bool:
        return self.name in st.session_state


BROWSER_KEY: SessionKey[str | None] = SessionKey(
    "mnistlab.browser_key", lambda: None, "The browser's secret key (also in a cookie): it owns the browser's runs."
)
VIEWED_RUN: SessionKey[int | None] = SessionKey("mnistlab.viewed_run", lambda: None, "The run the Train page shows.")
PRESSED_RUN: SessionKey[int | None] = SessionKey(
    "mnistlab.pressed_run", lambda: None, "The run this session pressed Train for: the form steps aside for it, also once it ended."
)
SELECTED_MODEL: SessionKey[str | None] = SessionKey(
    "mnistlab.selected_model", lambda: None, "The key of the model chosen on Draw or Convolutions, shared by both pages."
)
MODEL_PICKED: SessionKey[bool] = SessionKey(
    "mnistlab.model_picked", lambda: False, "The student picked SELECTED_MODEL in a model box (kept), not the Train page (a hint)."
)
DRAWING: SessionKey[object] = SessionKey(
    "mnistlab.drawing", lambda: None, "The last drawing's 28x28 input (float32, 0..1), for the Convolutions page."
)
CANVAS_VERSION: SessionKey[int] = SessionKey("mnistlab.canvas_version", lambda: 0, "Bumped by Clear: a new canvas widget starts empty.")
QUICK_RUN: SessionKey[int | None] = SessionKey("mnistlab.quick_run", lambda: None, "The shared quick model's run that this session waits for.")
SHOWN_STATUS: SessionKey[dict] = SessionKey(
    "mnistlab.shown_status", dict, "Run id -> the status this session last showed (a change reruns the whole Train page once)."
)
TRAIN_FORM: SessionKey[dict] = SessionKey(
    "mnistlab.train_form", dict, "The Train form's values, kept while other pages run (Streamlit forgets unseen widgets)."
)
TRAIN_FORM_AWAY: SessionKey[bool] = SessionKey(
    "mnistlab.train_form_away",
    bool,
    "The Train form stepped aside in the last run (a run was training): the browser forgot its widgets' values.",
)
SAVE_CONFIRM: SessionKey[str | None] = SessionKey(
    "mnistlab.save_confirm", lambda: None, "A model name the user asked to save over; the page asks before replacing it."
)

CLASS_MEMBER: SessionKey[object] = SessionKey(
    "mnistlab.class_member", lambda: None, "The mnistlab.classroom.Student this browser is in a class as (None: in none; False: left one)."
)
TEACHER_KEYS: SessionKey[dict] = SessionKey(
    "mnistlab.teacher_keys", dict, "Class id -> teacher key, for the classes this session teaches (never shown again after creation)."
)
TEACHER_COOKIE_VALUE: SessionKey[str | None] = SessionKey(
    "mnistlab.teacher_cookie_value", lambda: None, "The teacher tokens this browser's cookie must keep (written on every teacher run)."
)
TEACHING: SessionKey[int | None] = SessionKey("mnistlab.teaching", lambda: None, "The class whose dashboard the Class page shows.")
LEFT_DASHBOARD: SessionKey[bool] = SessionKey(
    "mnistlab.left_dashboard", lambda: False, "The teacher left the dashboard: the Class page stops opening the one class it teaches."
)
CLASS_PROMPT: SessionKey[int | None] = SessionKey("mnistlab.class_prompt", lambda: None, "The digit the Draw page asks this student for.")
CLASS_NOTE: SessionKey[str | None] = SessionKey("mnistlab.class_note", lambda: None, "What the last class save said (shown once).")
NEW_TEACHER_LINK: SessionKey[str | None] = SessionKey(
    "mnistlab.new_teacher_link", lambda: None, "The private teacher link of a class just started (shown once, folded)."
)

LANGUAGE: SessionKey[str | None] = SessionKey(
    "mnistlab.language", lambda: None, "The language this session reads the app in ('en' or 'tr'), chosen in the sidebar."
)
LINK_APPLIED: SessionKey[dict] = SessionKey(
    "mnistlab.link_applied", dict, "Page slug -> the link query already applied to that page's settings (applied once, not on every rerun)."
)

APP_RAN: SessionKey[bool] = SessionKey(
    "mnistlab.app_ran", lambda: False, "Set by app.py at the start of a run: the page runs through app.py's navigation."
)

PACE_SEEN: SessionKey[float] = SessionKey(
    "mnistlab.pace_seen", lambda: 0.0, "When the direction this tab last opened or dismissed was sent (the teacher's newer ones show)."
)

PACE_TOLD: SessionKey[dict] = SessionKey(
    "mnistlab.pace_told", dict, "The direction this tab announces over the top of the page (its sent_at) -> when it first announced it."
)

RACE_NAME_FOR: SessionKey[int | None] = SessionKey(
    "mnistlab.race_name_for", lambda: None, "How many races the class had when the race form's name box got its default."
)

CLASS_NOTICE: SessionKey[str | None] = SessionKey(
    "mnistlab.class_notice", lambda: None, "What the Class page says once, at its top, after the rerun an action asked for (a class deleted)."
)

ALL_KEYS = (
    APP_RAN,
    BROWSER_KEY,
    VIEWED_RUN,
    PRESSED_RUN,
    SELECTED_MODEL,
    MODEL_PICKED,
    DRAWING,
    CANVAS_VERSION,
    QUICK_RUN,
    SHOWN_STATUS,
    TRAIN_FORM,
    TRAIN_FORM_AWAY,
    SAVE_CONFIRM,
    CLASS_MEMBER,
    TEACHER_KEYS,
    TEACHER_COOKIE_VALUE,
    TEACHING,
    LEFT_DASHBOARD,
    CLASS_PROMPT,
    CLASS_NOTE,
    LANGUAGE,
    LINK_APPLIED,
    PACE_SEEN,
    PACE_TOLD,
    RACE_NAME_FOR,
    CLASS_NOTICE,
)
