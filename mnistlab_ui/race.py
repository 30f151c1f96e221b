"""The class race for the projector: every training of the class live on one chart, and who reached the target first."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mnistlab.classroom import ClassInfo
from mnistlab.i18n import _, seconds
from mnistlab.runs import RunSnapshot
from mnistlab_ui.charts import race_chart
from mnistlab_ui.server import lab
from mnistlab_ui.text import plain


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
