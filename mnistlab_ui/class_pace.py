"""The teacher paces the class from the dashboard; every student's page follows within seconds.

`pace_controls` is the teacher's: send the class to a lesson step or a link, and "eyes on the projector". `directions`
runs on every page of a student in a class (a fragment that looks every 1.5 s): it offers the step the class was sent
to with one tap (it never takes the student away from a drawing or a training), and covers the screen while the
teacher pauses the class. The rules are `mnistlab.class_pace`'s.
"""

from __future__ import annotations

import html
import time
from urllib.parse import urlencode

import streamlit as st

from mnistlab.class_pace import Direction, direction_of_link, direction_of_step, is_on, step_of
from mnistlab.classroom import ClassInfo
from mnistlab.i18n import _, current_language
from mnistlab.lessons import LESSONS, step_title
from mnistlab_ui.identity import browser_owner
from mnistlab_ui.server import lab
from mnistlab_ui.session import PACE_SEEN as SEEN
from mnistlab_ui.session import PACE_TOLD as TOLD
from mnistlab_ui.shell import page_link, page_titles
from mnistlab_ui.text import plain

LOOK_EVERY = 1.5  # seconds between a student's page looking for the teacher's directions (shown within 3 s)
ANY_LINK = "link"
PAUSE_TOGGLE = "pace_paused"  # the teacher's "eyes on the projector" toggle


def direction_text(direction: Direction) -> str:
    """Where the class was sent, as a student reads it: "Lesson 4: Train the fast CNN on clothes until 89%"."""
    found = step_of(direction)
    if found is not None:
        return step_title(*found)
    title = page_titles().get(direction.page, direction.page)
    return _("the {page} page, with the teacher's settings").format(page=title) if direction.query else _("the {page} page").format(page=title)


def _steps() -> list[Direction]:
    return [direction_of_step(lesson, step) for lesson in LESSONS for step in lesson.steps]


def pace_controls(info: ClassInfo, key: str | None) -> None:
    """The teacher sends the class to a step (or any link of the app), and pauses every screen."""
    pace = lab().classes.pace(info.class_id)
    with st.container(border=True):
        title = _("Pace the class")
        st.markdown(f"**{title}**")

        def pause_changed() -> None:
            lab().classes.pause_class(info.class_id, key, bool(st.session_state[PAUSE_TOGGLE]))

        st.session_state[PAUSE_TOGGLE] = pace.paused  # as the database has it (another replica, or another tab, may have changed it)
        st.toggle(
            _("Eyes on the projector: pause every student's screen"),
            key=PAUSE_TOGGLE,
            on_change=pause_changed,
            help=_("Their work is kept (a training goes on); their screens come back when you switch this off."),
        )
        if pace.paused:
            st.warning(_("Every student's screen is paused."), icon=":material/visibility:")
        steps = _steps()
        choice = st.selectbox(
            _("Send the class to"),
            [*range(len(steps)), ANY_LINK],
            format_func=lambda index: _("A link of this app…") if index == ANY_LINK else direction_text(steps[index]),
        )
        example = steps[0]  # a link of the app, as the placeholder shows one
        placeholder = f"/{example.page}?{urlencode(example.query)}"
        link = st.text_input(_("Link"), placeholder=placeholder) if choice == ANY_LINK else None
        if st.button(_("Send the class there"), icon=":material/send:"):
            try:
                direction = direction_of_link(link) if choice == ANY_LINK else steps[choice]
                pace = lab().classes.send_class(info.class_id, key, direction)
            except ValueError as problem:
                st.error(str(problem))
            else:
                st.success(_("Sent: every student's page offers it within seconds."), icon=":material/send:")
        if pace.direction is not None:
            st.caption(_("Sent {ago}: {where}.").format(ago=_ago(pace.direction.sent_at), where=direction_text(pace.direction)))


def _ago(moment: float) -> str:
    from mnistlab.i18n import seconds

    return _("{time} ago").format(time=seconds(max(0.0, time.time() - moment)))


_PAUSED = """
<div role="alertdialog" aria-modal="true" aria-label="{title}" data-testid="mnistlab-paused"
     style="position:fixed;inset:0;z-index:1000100;background:#0f172a;color:#fff;display:flex;flex-direction:column;
            align-items:center;justify-content:center;text-align:center;padding:2rem;">
  <div style="font-size:clamp(2.2rem,8vw,4.5rem);font-weight:800;line-height:1.15;">{title}</div>
  <div style="font-size:clamp(1.1rem,3.5vw,1.6rem);margin-top:1.25rem;max-width:40rem;">{text}</div>
</div>
"""


ANNOUNCE_SECONDS = 12.0  # how long the bar over the top of the page says where the class was sent
_ANNOUNCE = """
<div role="status" aria-live="polite" data-testid="mnistlab-sent"
     style="position:fixed;left:0;right:0;top:3.75rem;z-index:1000050;background:#1f5fa8;color:#fff;padding:0.7rem 1rem;
            font-size:1.05rem;line-height:1.4;box-shadow:0 2px 8px rgba(0,0,0,0.3);">
  <strong>{title}</strong> {where} <a href="{href}" target="_self" style="color:#fff;font-weight:700;margin-left:0.5rem;">{open} →</a>
</div>
"""


def announce(title: str, where: str, sent: Direction, query: dict) -> None:
    """A bar over the top of the screen for a few seconds, seen however far down the page the student is (drawing on a
    phone). (Streamlit's toast is an alert dialog without a name, which screen readers cannot announce.)"""
    href = ("./" if sent.page == "home" else sent.page) + (f"?{urlencode(query)}" if query else "")
    st.html(_ANNOUNCE.format(title=html.escape(title), where=html.escape(where), href=html.escape(href), open=html.escape(_("Open it"))))


def directions(page: str) -> None:
    """On a student's page: the teacher's pause over everything, and where the class was sent, one tap away."""
    student = lab().classes.latest_student_of(browser_owner())
    if student is None:
        return
    pace = lab().classes.pace(student.class_id)
    if pace.paused:
        st.html(
            _PAUSED.format(
                title=html.escape(_("Eyes on the projector")),
                text=html.escape(_("Your teacher has paused the class. Your work is kept; your screen comes back when the teacher goes on.")),
            )
        )
    sent = pace.direction
    if sent is None or sent.sent_at <= SEEN.get():
        return
    if is_on(sent, page, st.query_params):
        SEEN.set(sent.sent_at)  # opened: it does not come back after the student moves on
        return
    title, where = _("Your teacher sends the class to:"), direction_text(sent)
    language = current_language()
    query = dict(sent.query) | ({"lang": language} if language != "en" else {})
    announced_at = TOLD.get().get(sent.sent_at)
    if announced_at is None:
        announced_at = time.time()
        TOLD.set({sent.sent_at: announced_at})
    if time.time() - announced_at < ANNOUNCE_SECONDS:
        announce(title, where, sent, query)
    with st.container(border=True):
        st.markdown(f"**{title}** {plain(where)}")
        left, right = st.columns([3, 1], vertical_alignment="center")
        with left:
            target = "app.py" if sent.page == "home" else sent.page
            page_link(target, _("Open it"), ":material/arrow_forward:", query)
        right.button(_("Not now"), key="pace_dismiss", on_click=SEEN.set, args=(sent.sent_at,))
