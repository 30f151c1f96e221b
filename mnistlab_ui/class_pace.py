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
from mnistlab.lessons import LESSONS
from mnistlab_ui.identity import browser_owner
from mnistlab_ui.server import lab
from mnistlab_ui.session import PACE_SEEN as SEEN
from mnistlab_ui.session import PACE_TOLD as TOLD
from mnistlab_ui.shell import page_link, page_titles

LOOK_EVERY = 1.5  # seconds between a student's page looking for the teacher's directions (shown within 3 s)
ANY_LINK = "link"
PAUSE_TOGGLE = "pace_paused"  # the teacher's "eyes on the projector" toggle


def direction_text(direction: Direction) -> str:
    """Where the class was sent, as a student reads it: "Lesson 4: Train the fast CNN on clothes until 89%"."""
    found = step_of(direction)
    if found is not None:
        lesson, step = found
        return _("Lesson {number}: {step}").format(number=lesson.number, step=_(step.text))
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
            paused = bool(st.session_state[PAUSE_TOGGLE])
            lab().classes.pause_class(info.class_id, key, paused)
            st.toast(_("Every student's screen is paused.") if paused else _("Students can go on."))

        st.session_state[PAUSE_TOGGLE] = pace.paused  # as the database has it (another replica, or another tab, may have changed it)
        st.toggle(
            _("Eyes on the projector: pause every student's screen"),
            key=PAUSE_TOGGLE,
            on_change=pause_changed,
            help=_("Their work is kept (a training goes on); their screens come back when you switch this off."),
        )
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
                st.toast(_("Sent: every student's page offers it within seconds."))
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
    told = _("**Your teacher sends the class to:** {where}").format(where=direction_text(sent))
    if sent.sent_at > TOLD.get():
        TOLD.set(sent.sent_at)
        st.toast(told, icon=":material/campaign:")  # seen however far down the page the student is (drawing on a phone)
    with st.container(border=True):
        st.markdown(told)
        left, right = st.columns([3, 1], vertical_alignment="center")
        with left:
            target = "app.py" if sent.page == "home" else sent.page
            language = current_language()
            page_link(target, _("Open it"), ":material/arrow_forward:", dict(sent.query) | ({"lang": language} if language != "en" else {}))
        right.button(_("Not now"), key="pace_dismiss", on_click=SEEN.set, args=(sent.sent_at,))
