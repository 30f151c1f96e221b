"""The class's results for the teacher's records: one CSV row per run a student trained while in the class.

Each row: the student's nickname and drawings made for the class, and the run's settings (dataset, network, epochs,
batch size, learning rate, target), how it ended, its epochs, validation and test accuracy, seconds, and whether it
reached its target. A student who trained nothing has one row with their drawings. `result_rows` is a plain
function over the class's members and their runs; `results_csv` writes the rows for a spreadsheet.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from mnistlab.models import network_text
from mnistlab.runs import RunSnapshot

COLUMNS = (
    "nickname",
    "drawings",
    "run",
    "dataset",
    "network",
    "max_epochs",
    "batch_size",
    "learning_rate",
    "target",
    "status",
    "epochs_run",
    "val_accuracy",
    "test_accuracy",
    "seconds",
    "reached_target",
    "started",
)


@dataclass(frozen=True)
class Member:
    """A student of the class (also one who left), as the records need them."""

    nickname: str
    owner: str
    joined_at: float
    left_at: float | None
    drawings: int


def _run_row(run: RunSnapshot) -> dict:
    settings, result = run.settings, run.result
    recipe = settings.base_recipe
    return {
        "run": run.run_id,
        "dataset": settings.dataset,
        "network": network_text(settings.config),
        "max_epochs": settings.max_epochs or recipe.max_epochs,
        "batch_size": settings.batch_size or recipe.batch_size,
        "learning_rate": settings.learning_rate or recipe.learning_rate,
        "target": settings.target_accuracy if settings.target_accuracy is not None else "",
        "status": run.status,
        "epochs_run": result.epochs_run if result else len(run.epochs),
        "val_accuracy": round(result.val_accuracy, 4) if result and result.val_accuracy is not None else "",
        "test_accuracy": round(result.test_accuracy, 4) if result and result.test_accuracy is not None else "",
        "seconds": round(result.seconds, 1) if result else "",
        "reached_target": "yes" if result and result.target_reached else "no",
        "started": _iso(run.created_at),
    }


def _iso(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).isoformat(timespec="seconds")


def result_rows(members: list[Member], runs_by_owner: dict[str, list[RunSnapshot]], now: float) -> list[dict]:
    """One row per run each member trained while in the class (oldest first), or one row for a member with none."""
    rows = []
    for member in members:
        mine = sorted(
            (
                run
                for run in runs_by_owner.get(member.owner, [])
                if run.shared_key is None and member.joined_at <= run.created_at <= (member.left_at or now)
            ),
            key=lambda run: run.run_id,
        )
        student = {"nickname": member.nickname, "drawings": member.drawings}
        rows += [{**student, **_run_row(run)} for run in mine] or [student]
    return rows


def _cell(value) -> str:
    """A value a spreadsheet shows as written: text that starts like a formula (= + - @) gets a leading apostrophe."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def results_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _cell(value) for name, value in row.items()})
    return out.getvalue()
