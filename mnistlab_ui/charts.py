"""Every chart of the app, made to be read from the back row of a classroom at 1024x768, in English and Turkish.

One place for how charts look: plot areas tall enough to read (the charts are 300 to 380
pixels high with the legend below them), axis labels and titles of 14 to 16 pixels,
whole epochs on the x axis, several ticks on the y axis, percentages written the
language's way (91% in English, %91 in Turkish, with Turkish decimal commas), the same
colour for the same series in every language, and a target as a dashed red line. A
live run's curves put each point where it belongs: a validation point at the end of
its epoch, or where training stopped when it stopped in the middle of one.
"""

from __future__ import annotations

import math
import re

import altair as alt
import numpy as np
import pandas as pd

from mnistlab.evaluation import Evaluation
from mnistlab.i18n import _, current_language, ngettext, percent
from mnistlab.runs import RunSnapshot

LABEL_SIZE = 14
TITLE_SIZE = 16
TRAINING_COLOUR = "#1f5fa8"
VALIDATION_COLOUR = "#e07b00"
TARGET_COLOUR = "#c0392b"
CURVE_HEIGHT = 230  # the plot area alone; with title, axes and legend the chart is about 430 px


def percent_labels() -> str:
    """A Vega label expression for fractions as percentages, written the page's language's way, with one decimal where
    the ticks need it (87.5%, 88%): with none, close ticks read "88%, 88%, 89%"."""
    if current_language() == "tr":
        return "'%' + replace(format(datum.value * 100, '.1~f'), '.', ',')"
    return "format(datum.value, '.1~%')"


def number_labels(digits: int = 2) -> str:
    """A Vega label expression for numbers with the language's decimal mark."""
    if current_language() == "tr":
        return f"replace(format(datum.value, '.{digits}~f'), '.', ',')"
    return f"format(datum.value, '.{digits}~f')"


def readable(chart: alt.Chart) -> alt.Chart:
    """Projector sizes for every text of a chart, and its height for its plot alone: with a chart as wide as the page,
    Streamlit would otherwise fit title, axes and legend into that height too (a class race's 25-line legend left
    85 of its 380 px to the plot, a comparison's none)."""
    return (
        chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
        .configure_axis(labelFontSize=LABEL_SIZE, titleFontSize=TITLE_SIZE, labelLimit=160, titlePadding=10)
        .configure_legend(labelFontSize=LABEL_SIZE, titleFontSize=LABEL_SIZE, symbolSize=160, labelLimit=260)
        .configure_title(fontSize=TITLE_SIZE + 2, anchor="start")
    )


def epoch_axis(most: float) -> alt.X:
    """Epochs on the x axis: whole numbers, from 0 to just past the last point (nothing clipped at the edge)."""
    end = max(1, math.ceil(most + 1e-9))
    return alt.X(
        "epoch:Q",
        title=_("epoch"),
        scale=alt.Scale(domain=[0, end], nice=False, padding=8),
        # labelExpr, not format="d": with format="d" Vega left out the 1 of the ticks 0, 1, 2.
        axis=alt.Axis(values=list(range(0, end + 1, max(1, end // 10))), labelExpr="format(datum.value, 'd')"),
    )


def target_rule(target: float) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"target": [target]})).mark_rule(color=TARGET_COLOUR, strokeDash=[8, 5], size=2).encode(y="target:Q")


def curve_rows(snapshot: RunSnapshot) -> pd.DataFrame:
    """The run's curves as rows (x in epochs): training per batch, validation at the end of each epoch, or where a
    Stop ended the last one."""
    training, validation = _("training"), _("validation")
    rows = []
    for point in snapshot.curve:
        x = point.epoch - 1 + point.batch / point.batches_per_epoch
        rows += [(x, training, "loss", point.loss), (x, training, "accuracy", point.accuracy)]
    stopped = snapshot.result.stopped_at if snapshot.result is not None else snapshot.stopped_at
    for record in snapshot.epochs:
        if record.val_accuracy is None:
            continue
        x = float(record.epoch)
        if stopped is not None and stopped.epoch == record.epoch and stopped.batch < stopped.batches_per_epoch:
            x = record.epoch - 1 + stopped.batch / stopped.batches_per_epoch
        rows += [(x, validation, "loss", record.val_loss), (x, validation, "accuracy", record.val_accuracy)]
    return pd.DataFrame(rows, columns=["epoch", "data", "metric", "value"])


def run_curves(snapshot: RunSnapshot) -> tuple[alt.Chart, alt.Chart]:
    """Loss and accuracy against epochs, training and validation in the same colours in every language."""
    frame = curve_rows(snapshot)
    training, validation = _("training"), _("validation")
    colour = alt.Color(
        "data:N",
        title=None,
        scale=alt.Scale(domain=[training, validation], range=[TRAINING_COLOUR, VALIDATION_COLOUR]),
        legend=alt.Legend(orient="bottom"),
    )
    most = float(frame.epoch.max()) if len(frame) else 1.0
    charts = []
    for metric, title in (("loss", _("Loss")), ("accuracy", _("Accuracy"))):
        part = frame[frame.metric == metric].dropna()
        labels = percent_labels() if metric == "accuracy" else number_labels()
        line = (
            alt.Chart(part)
            .mark_line(strokeWidth=2.5, point=alt.OverlayMarkDef(size=40))
            .encode(
                x=epoch_axis(most),
                y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False, nice=True), axis=alt.Axis(tickCount=6, labelExpr=labels)),
                color=colour,
                tooltip=[alt.Tooltip("epoch:Q", format=".2f", title=_("epoch")), alt.Tooltip("value:Q", format=".4f", title=title)],
            )
        )
        target = snapshot.settings.target_accuracy
        chart = line + target_rule(target) if metric == "accuracy" and target is not None else line
        charts.append(readable(chart.properties(height=CURVE_HEIGHT, title=title)))
    return charts[0], charts[1]


def compare_chart(frame: pd.DataFrame, run_column: str, epoch_column: str, accuracy_column: str) -> alt.Chart:
    """Validation accuracy of the runs a class compares, one line each, the legend below in one column."""
    most = float(frame[epoch_column].max()) if len(frame) else 1.0
    renamed = frame.rename(columns={epoch_column: "epoch"})
    chart = (
        alt.Chart(renamed, height=360)
        .mark_line(point=alt.OverlayMarkDef(size=50), strokeWidth=2.5)
        .encode(
            x=epoch_axis(most),
            y=alt.Y(f"{accuracy_column}:Q", scale=alt.Scale(zero=False, nice=True), axis=alt.Axis(tickCount=6, labelExpr=percent_labels())),
            color=alt.Color(f"{run_column}:N", legend=alt.Legend(orient="bottom", columns=1, title=None)),
        )
    )
    return readable(chart)


def in_counting_order(names) -> list[str]:
    """Names in the order a person counts them: "Student 2" before "Student 10" (as text, "1" comes before "2")."""

    def key(name: str) -> list:
        return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name)]

    return sorted({str(name) for name in names}, key=key)


# Okabe and Ito's eight colours, which students with the common colour blindnesses can tell apart (black last: the
# target is red and dashed).
RACE_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


RACE_HEIGHT = 380
OTHERS_COLOUR = "#8C8C8C"  # a whole class's other lines on the projector: grey and thin, behind the leaders


def apart(ends: pd.DataFrame, values: pd.Series, height: int) -> pd.DataFrame:
    """Line-end labels a line of text apart: two leaders ending close together had their names printed over each other.
    Each label sits at its line's end (`label_at`), moved down just enough to clear the one above it."""
    spread = float(values.max() - values.min()) if len(values) else 0.0
    gap = spread * (LABEL_SIZE + 3) / height
    highest_first = ends.accuracy.sort_values(ascending=False)
    placed, above = [], None
    for value in highest_first:
        above = value if above is None else min(value, above - gap)
        placed.append(above)
    return ends.assign(label_at=pd.Series(placed, index=highest_first.index))


def race_chart(frame: pd.DataFrame, who: str, target: float, leaders: list[str]) -> alt.Chart:
    """A class race: validation accuracy against epochs, one line per training; the leaders' lines thick and labelled at
    their end, the others thin; the target drawn once, dashed and labelled. Up to eight lines each has a colour of its
    own; a whole class (more lines than colours that colour-blind students can tell apart) has its leaders in those
    colours and the others grey, the legend naming the leaders and "the others" (the leaderboard lists everyone)."""
    most = float(frame.epoch.max()) if len(frame) else 1.0
    frame = frame.assign(leader=frame[who].isin(leaders))
    order = in_counting_order(frame[who])
    if len(order) <= len(RACE_COLOURS):
        colour = alt.Color(f"{who}:N", sort=order, scale=alt.Scale(range=RACE_COLOURS), legend=alt.Legend(orient="bottom", columns=3, title=None))
        label_colour = alt.Color(f"{who}:N", sort=order, legend=None)
    else:
        shown = [name for name in leaders if name in set(order)][: len(RACE_COLOURS)]
        others = ngettext("the {count} other", "the {count} others", len(order) - len(shown)).format(count=len(order) - len(shown))
        # The leaders' lines last, so they are drawn over the grey ones.
        frame = frame.assign(shade=frame[who].where(frame[who].isin(shown), others)).sort_values("leader", kind="stable")
        scale = alt.Scale(domain=[*shown, others], range=[*RACE_COLOURS[: len(shown)], OTHERS_COLOUR])
        colour = alt.Color("shade:N", scale=scale, legend=alt.Legend(orient="bottom", columns=4, title=None))
        label_colour = alt.Color("shade:N", scale=scale, legend=None)
    lines = (
        alt.Chart(frame, height=RACE_HEIGHT)
        .mark_line(point=alt.OverlayMarkDef(size=40))
        .encode(
            x=epoch_axis(most),
            y=alt.Y(
                "accuracy:Q",
                title=_("validation accuracy"),
                scale=alt.Scale(zero=False, nice=True),
                axis=alt.Axis(tickCount=6, labelExpr=percent_labels()),
            ),
            color=colour,
            detail=alt.Detail(f"{who}:N"),
            strokeWidth=alt.StrokeWidth("leader:N", scale=alt.Scale(domain=[True, False], range=[4.5, 1.5]), legend=None),
            tooltip=[alt.Tooltip(f"{who}:N"), alt.Tooltip("epoch:Q", format=".2f", title=_("epoch")), alt.Tooltip("accuracy:Q", format=".2%")],
        )
    )
    ends = apart(frame[frame.leader].sort_values("epoch").groupby(who).tail(1), frame.accuracy, RACE_HEIGHT)
    at_the_end = alt.Chart(ends).encode(x="epoch:Q", y="label_at:Q", text=f"{who}:N")
    style = {"align": "left", "dx": 8, "fontSize": LABEL_SIZE, "fontWeight": "bold", "limit": 320}
    # A white outline under each name: readable where it crosses the target line or another run's line.
    halo = at_the_end.mark_text(**style, stroke="white", strokeWidth=4, strokeJoin="round")
    names = at_the_end.mark_text(**style).encode(color=label_colour)
    label = _("target {value}").format(value=percent(target))
    goal = alt.Chart(pd.DataFrame({"target": [target], "label": [label]}))
    rule = goal.mark_rule(color=TARGET_COLOUR, strokeDash=[8, 5], size=2).encode(y="target:Q")
    text = goal.mark_text(align="left", baseline="bottom", dx=4, dy=-3, color=TARGET_COLOUR, fontSize=LABEL_SIZE, fontWeight="bold").encode(
        x=alt.value(0), y="target:Q", text="label:N"
    )
    return readable(lines + rule + halo + names + text)  # the names over the target line


def confusion_chart(evaluation: Evaluation, names: list[str]) -> alt.Chart:
    """The confusion matrix as a heat map with counts big enough to read; a clicked cell gets a red border (no cell
    has one before the first click)."""
    rows = [
        {"true": names[true], "predicted": names[predicted], "count": int(evaluation.confusion[true, predicted])}
        for true in range(len(names))
        for predicted in range(len(names))
    ]
    frame = pd.DataFrame(rows)
    cell = alt.selection_point(name="cell", fields=["true", "predicted"], on="click", empty=False)
    order = alt.Sort(names)
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=order, title=_("the network's answer"), axis=alt.Axis(labelAngle=-40, labelLimit=110)),
        y=alt.Y("true:N", sort=order, title=_("true class"), axis=alt.Axis(labelLimit=110)),
    )
    heat = (
        base.mark_rect()
        .encode(
            color=alt.Color("count:Q", scale=alt.Scale(scheme="blues", type="symlog"), legend=None),
            stroke=alt.condition(cell, alt.value(TARGET_COLOUR), alt.value(None)),
            strokeWidth=alt.condition(cell, alt.value(4), alt.value(0)),
            tooltip=[alt.Tooltip("true:N", title=_("true class")), alt.Tooltip("predicted:N", title=_("the network's answer")), "count:Q"],
        )
        .add_params(cell)
    )
    # Counts as big as a cell allows: 15 px on a projector, smaller on a phone's narrow cells (three digits crammed).
    size = alt.ExprRef(expr=f"max(9, min(15, width / {len(names)} / 2.4))")
    text = base.mark_text(fontSize=size, fontWeight="bold").encode(
        text="count:Q", color=alt.condition(alt.datum.count > evaluation.confusion.max() / 3, alt.value("white"), alt.value("#111"))
    )
    return readable((heat + text).properties(height=420))


def class_bars(names: list[str], field: str, values, title: str, row_height: int, highlight: int | None = None) -> alt.Chart:
    """A fraction per class as a horizontal bar, in the dataset's class order, each bar labelled with its class name
    across (no tilted words), percentages the language's way; `highlight` draws one class's bar in a stronger colour."""
    frame = pd.DataFrame({"class": names, field: np.asarray(values, dtype=float)})
    encoding = {
        "y": alt.Y("class:N", sort=names, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=160)),
        "x": alt.X(
            f"{field}:Q", title=title, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(values=[0, 0.25, 0.5, 0.75, 1], labelExpr=percent_labels())
        ),
        "tooltip": [alt.Tooltip("class:N", title=_("class")), alt.Tooltip(f"{field}:Q", format=".1%", title=title)],
    }
    if highlight is not None:
        frame["answer"] = [index == highlight for index in range(len(names))]
        encoding["color"] = alt.Color("answer:N", scale=alt.Scale(domain=[False, True], range=["#9bb7d9", TRAINING_COLOUR]), legend=None)
    return readable(alt.Chart(frame).mark_bar().encode(**encoding).properties(height=row_height * len(names)))


def per_class_chart(evaluation: Evaluation, names: list[str]) -> alt.Chart:
    """Accuracy of each class as a bar, in the dataset's class order, every bar labelled."""
    return class_bars(names, "accuracy", evaluation.per_class_accuracy, _("accuracy"), row_height=34)


def probability_chart(names: list[str], probabilities: np.ndarray) -> alt.Chart:
    """The network's answer for one image: a bar per class, the chosen class in a stronger colour."""
    return class_bars(names, "probability", probabilities, _("probability"), row_height=26, highlight=int(np.argmax(probabilities)))


def per_digit_chart(counts: dict[int, int]) -> alt.Chart:
    """How many drawings of each digit a class has (whole drawings, from 0)."""
    frame = pd.DataFrame({"digit": [str(digit) for digit in counts], "drawings": list(counts.values())})
    chart = (
        alt.Chart(frame, height=260)
        .mark_bar()
        .encode(
            x=alt.X("digit:N", sort=None, title=_("digit"), axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "drawings:Q", title=_("drawings"), axis=alt.Axis(tickMinStep=1, format="d"), scale=alt.Scale(domain=[0, max(1, *counts.values())])
            ),
            tooltip=[alt.Tooltip("digit:N", title=_("digit")), alt.Tooltip("drawings:Q", title=_("drawings"))],
        )
    )
    return readable(chart)


def drawings_confusion_chart(confusion: np.ndarray) -> alt.Chart:
    """The class model's confusion matrix on the class's drawings (rows: drawn, columns: answered)."""
    rows = [{"drawn": str(row), "answered": str(column), "count": int(confusion[row, column])} for row in range(10) for column in range(10)]
    frame = pd.DataFrame(rows)
    base = alt.Chart(frame, height=340).encode(
        x=alt.X("answered:O", sort=None, title=_("answered"), axis=alt.Axis(labelAngle=0)), y=alt.Y("drawn:O", sort=None, title=_("drawn"))
    )
    cells = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"), legend=None),
        tooltip=[
            alt.Tooltip("drawn:O", title=_("drawn")),
            alt.Tooltip("answered:O", title=_("answered")),
            alt.Tooltip("count:Q", title=_("drawings")),
        ],
    )
    # Counts as big as a cell allows: 15 px on a projector, smaller on a phone's narrow cells (three digits crammed).
    size = alt.ExprRef(expr="max(9, min(15, width / 10 / 2.4))")
    text = base.mark_text(fontSize=size, fontWeight="bold").encode(
        text=alt.condition("datum.count > 0", alt.Text("count:Q"), alt.value("")),
        color=alt.condition(f"datum.count > {max(1, int(confusion.max()) // 2)}", alt.value("white"), alt.value("black")),
    )
    return readable(cells + text)
