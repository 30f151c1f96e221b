"""The class race for the projector: the teacher starts one; its runs live on one chart, who reached the target first,
and a leaderboard (the rules are `mnistlab.race`'s)."""

from __future__ import annotations

import time
from collections import Counter

import pandas as pd
import streamlit as st

from mnistlab.class_identity import within_budget
from mnistlab.classroom import ClassInfo
from mnistlab.i18n import _, decimal, number, percent, seconds
from mnistlab.lessons import step_settings, step_title, training_steps
from mnistlab.race import STATES, Progress, Race, Standing, class_progress, first_to_reach, leaders, race_lines, standings
from mnistlab_ui.charts import race_chart, run_curves
from mnistlab_ui.server import lab
from mnistlab_ui.session import RACE_NAME_FOR
from mnistlab_ui.text import plain

RACE_TARGET = "race_target"  # the form's target widget, set to the step's target when the step changes
RACE_NAME = "race_name"  # the form's name widget


def _step_label(index: int | None) -> str:
    if index is None:
        return _("No step: students choose their own settings")
    lesson, step = training_steps()[index]
    return step_title(lesson, step)


def race_controls(info: ClassInfo, key: str | None) -> None:
    """The teacher starts a race: a lesson step (or none), its target, a name. A new race replaces the last one on the
    projector and holds only the runs pressed from then on."""
    steps = training_steps()

    def step_changed() -> None:
        index = st.session_state.get("race_step_choice")
        if index is not None:
            st.session_state[RACE_TARGET] = round(step_settings(steps[index][1]).target_accuracy * 100, 1)

    with st.expander(_("Start a race"), expanded=lab().classes.current_race(info.class_id) is None, icon=":material/flag:"):
        index = st.selectbox(_("Lesson step"), [None, *range(len(steps))], format_func=_step_label, key="race_step_choice", on_change=step_changed)
        if RACE_TARGET not in st.session_state:
            st.session_state[RACE_TARGET] = 89.0
        target = st.number_input(_("Target: validation accuracy (%)"), min_value=10.0, max_value=100.0, step=0.5, key=RACE_TARGET)
        # A key of its own, so nothing a rerun does takes away what the teacher typed; after a race starts, the next
        # race's name is offered.
        started = lab().classes.races_started(info.class_id)
        if RACE_NAME_FOR.get() != started or RACE_NAME not in st.session_state:  # also after "only the race" hid the form
            st.session_state[RACE_NAME] = _("Race {number}").format(number=started + 1)
            RACE_NAME_FOR.set(started)
        name = st.text_input(_("Name"), key=RACE_NAME, max_chars=60)
        if st.button(_("Start a new race"), type="primary", icon=":material/flag:"):
            reference = within_budget(step_settings(steps[index][1]), info) if index is not None else None
            try:
                race = lab().classes.start_race(info.class_id, key, name, target / 100, reference)
            except ValueError as problem:
                st.error(str(problem))
                return
            st.success(_("{name} started: every training pressed from now on races.").format(name=plain(race.name)), icon=":material/flag:")


def race_frame(lines) -> pd.DataFrame:
    """Every line's validation accuracy against epochs."""
    rows = [{"who": line.label, "epoch": point.epoch, "accuracy": point.value} for line in lines for point in line.points]
    return pd.DataFrame(rows, columns=["who", "epoch", "accuracy"])


def _reached_text(row: Standing) -> str:
    if row.copied_from is not None:
        return _("took run {run}'s result").format(run=row.copied_from)
    if row.reached is None or row.from_pressing is None:
        return "–"
    return _("{total} ({training}, epoch {epoch})").format(
        total=seconds(row.from_pressing), epoch=decimal(round(row.reached.epoch, 1), 1), training=seconds(row.reached.seconds)
    )


def leaderboard(table: list[Standing]) -> pd.DataFrame:
    """The leaderboard as the projector shows it: written the page's language's way, nothing blank or "None"."""
    rows = []
    for place, row in enumerate(table, start=1):
        result = row.run.result
        parameters = result.parameters if result is not None else (row.run.plan or {}).get("parameters")
        rows.append(
            {
                "#": number(place),
                _("Who"): row.label,
                _("Time to target"): _reached_text(row),
                _("Best validation"): percent(row.best) if row.best is not None else "–",
                _("Test"): percent(result.test_accuracy) if result is not None and result.test_accuracy is not None else "–",
                _("Parameters"): number(parameters) if parameters else "–",
                _("State"): row.state_text,
            }
        )
    return pd.DataFrame(rows)


def race_caption(race: Race) -> str:
    step = _("the lesson step's settings") if race.reference is not None else _("each student's own settings")
    return _(
        "Target: {target} validation accuracy, measured at the end of each epoch as the stop measures it; labels say how a run differs from {step}."
    ).format(target=percent(race.target), step=step)


# How each state looks on the progress grid: an icon and a colour (Streamlit's named colours), never colour alone.
STATE_LOOK = {
    "not_started": (":material/hourglass_empty:", "gray"),
    "waiting": (":material/schedule:", "blue"),
    "training": (":material/model_training:", "blue"),
    "reached": (":material/check_circle:", "green"),
    "below": (":material/trending_flat:", "orange"),
    "stopped": (":material/stop_circle:", "orange"),
    "failed": (":material/error:", "red"),
    "idle": (":material/help:", "red"),
}


def _tile_detail(progress: Progress) -> str:
    row = progress.standing
    if row is None:
        return ""
    if row.from_pressing is not None:
        return _("{time} · {accuracy}").format(time=seconds(row.from_pressing), accuracy=percent(row.reached.value))
    return _("best {accuracy}").format(accuracy=percent(row.best)) if row.best is not None else ""


def progress_grid(current: Race, table: list[Standing], info: ClassInfo, names: dict[str, str]) -> None:
    """Who is done, who is stuck: every student on the race's step (`names`: owner -> nickname), live; a tap on a
    student puts their latest run on the projector."""
    last_active = {row.owner: row.last_active for row in lab().classes.roster(info.class_id)}
    grid = class_progress(current, table, names, last_active, time.time())
    if not grid:
        return
    counts = Counter(progress.state for progress in grid)
    names = {state: _("nothing for a while") if state == "idle" else _(text) for state, text in STATES.items()}
    title = _("Who is where")
    st.markdown(f"**{title}** · " + " · ".join(f"{names[state]}: {counts[state]}" for state in STATES if counts[state]))
    # One chip per student (an icon and a colour, never colour alone): the whole class fits a projector's screen, and a
    # tap on a student puts their latest run on it.
    chips = {progress.owner: progress for progress in grid}
    numbers = {progress.owner: number for number, progress in enumerate(grid, start=1)}

    def chip(owner: str) -> str:
        progress = chips[owner]
        icon, colour = STATE_LOOK[progress.state]
        name = plain(progress.nickname) if info.show_names else _("student {number}").format(number=numbers[owner])
        detail = _tile_detail(progress)
        return f":{colour}[{icon}] {name} · {progress.state_text}" + (f" · {detail}" if detail else "")

    picked = st.pills(_("Put a student's run on the projector"), list(chips), format_func=chip, selection_mode="single", key="progress_pick")
    if picked is None or picked not in chips:
        return
    progress = chips[picked]
    if progress.standing is None:
        st.caption(_("{name} has not pressed Train since the race started.").format(name=plain(progress.nickname)))
    else:
        shown_run(progress.standing)


def shown_run(row: Standing) -> None:
    """A student's run on the projector: its curves and where it stands."""
    run = row.run
    with st.container(border=True):
        st.markdown(f"**{plain(row.label)}** · {row.state_text}")
        if run.result is not None:
            st.caption(plain(run.result.describe_stop()))
        loss, accuracy = run_curves(run)
        left, right = st.columns(2)
        left.altair_chart(accuracy, width="stretch")
        right.altair_chart(loss, width="stretch")


def race(info: ClassInfo, teacher: bool = False, projector: bool = False) -> None:
    """The class race for the projector: every run pressed since the teacher started it, live; for the teacher, who
    is where (above the chart, by the race's controls; below the leaderboard when the race alone is on the projector)."""
    current = lab().classes.current_race(info.class_id)
    if current is None:
        st.subheader(_("Class race"))
        st.caption(_("No race yet. When the teacher starts one, every training the class starts from then on appears here live."))
        return
    st.subheader(_("Class race: {name}").format(name=plain(current.name)))
    if not projector:  # on the projector, below the leaderboard: the chart's plot fits the first screen at 1024x768
        st.caption(race_caption(current))
    owners = lab().classes.owners(info.class_id)
    lines = race_lines(current, lab().jobs.runs_since(owners, current.started_at), owners, info.show_names)
    table = standings(current, lines)

    def below_the_board() -> None:  # on the projector: the caption and who is where after the leaderboard
        if projector:
            st.caption(race_caption(current))
            if teacher:
                progress_grid(current, table, info, owners)

    if teacher and not projector:
        progress_grid(current, table, info, owners)
    if not lines:
        st.info(_("Nobody has pressed Train since the race started."), icon=":material/flag:")
        below_the_board()
        return
    first = first_to_reach(table)
    if first is not None:
        st.success(
            _("First to reach {target}: {who}, {time} after pressing Train.").format(
                target=percent(current.target), who=plain(first.label), time=seconds(first.from_pressing)
            ),
            icon=":material/trophy:",
        )
    st.altair_chart(race_chart(race_frame(lines), "who", current.target, leaders(table)), width="stretch")
    st.dataframe(
        leaderboard(table),
        hide_index=True,
        width="stretch",
        column_config={
            _("Time to target"): st.column_config.TextColumn(
                help=_(
                    "From pressing Train: the wait in the queue and the training up to the target. In brackets, the training "
                    "alone and the epoch, as the student's own result says."
                )
            ),
            _("Best validation"): st.column_config.TextColumn(help=_("The best validation accuracy so far.")),
            _("Test"): st.column_config.TextColumn(help=_("Accuracy on the test images, once the run has finished.")),
        },
    )
    below_the_board()
