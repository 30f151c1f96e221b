"""Compare runs: the runs students share with the class, in one sortable table and on one chart."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mnistlab.classroom import ClassDrawings, ClassInfo, Student, score
from mnistlab.datasets import DATASETS
from mnistlab.i18n import _, percent
from mnistlab.runs import RunSnapshot, run_name
from mnistlab_ui.charts import compare_chart
from mnistlab_ui.classroom import (
    class_drawings,
)
from mnistlab_ui.identity import browser_owner
from mnistlab_ui.models import ModelChoice, load_choice, run_choice
from mnistlab_ui.server import lab


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
            # A clothes run, or no drawings yet: a dash, never "None".
            _("accuracy on our drawings"): "–" if class_accuracy.get(snapshot.run_id) is None else percent(class_accuracy[snapshot.run_id], 2),
        }
        if info.show_names:
            row = {_("shared by"): nickname or "–", **row}
        rows.append(row)
    return pd.DataFrame(rows)


def shared_name(info: ClassInfo, snapshot: RunSnapshot, nickname: str | None) -> str:
    """A shared run's name: "your network" only to its owner; someone else's is theirs ("Ali's network")."""
    if snapshot.owner == browser_owner():
        return snapshot.name
    builder = nickname if nickname and info.show_names else _("a classmate")
    return run_name(snapshot.run_id, snapshot.settings, builder)


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
    # Parameters with the browser's thousands separator (101,770 and 101.770), never "101770".
    st.dataframe(table, hide_index=True, width="stretch", column_config={_("parameters"): st.column_config.NumberColumn(format="localized")})
    st.caption(_("Click a column's name to sort by it. Accuracy on our drawings is measured on the class's test half."))
    labels = {snapshot.run_id: shared_name(info, snapshot, nickname) for snapshot, nickname in shared}
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
    mine = [
        snapshot for snapshot in lab().jobs.runs_of(browser_owner()) if snapshot.is_done and snapshot.result is not None and not snapshot.on_own_set
    ]
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
