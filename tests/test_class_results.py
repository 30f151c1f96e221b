"""The class's results for the teacher's records (issue 33): one CSV row per run a student trained in the class."""

from __future__ import annotations

import csv
import io

import numpy as np

from mnistlab.class_results import COLUMNS, Member, result_rows, results_csv
from mnistlab.classroom import ClassStore
from mnistlab.database import Database
from mnistlab.events import EpochRecord, TargetReached, TrainingResult
from mnistlab.runs import CANCELLED, FINISHED, RunSnapshot
from mnistlab.settings import TrainingSettings

NOW = 1_700_000_000.0


def result(reached: bool) -> TrainingResult:
    return TrainingResult(
        dataset="fashion_mnist", arch="dense", epochs_run=3, stop_reason="target" if reached else "epochs", target_accuracy=0.88,
        monitor="val_accuracy", target_reached=TargetReached(3, 1000, 12.0, 0.885) if reached else None, train_accuracy=0.9,
        train_loss=0.3, val_accuracy=0.885 if reached else 0.86, val_loss=0.3, test_accuracy=0.8791, test_loss=0.3, seconds=13.04,
        parameters=101_770, data_source="test", normalization="divide_255",
    )  # fmt: skip


def run(run_id: int, owner: str, created_at: float, status: str = FINISHED, reached: bool = True, shared_key=None) -> RunSnapshot:
    settings = TrainingSettings(dataset="fashion_mnist", arch="dense", target_accuracy=0.88, max_epochs=20, learning_rate=0.003)
    epochs = (EpochRecord(1, 0.5, 0.8, 0.5, 0.8, 4.0, 4.0),)
    return RunSnapshot(
        run_id, owner, status, status, settings, None, None, (), epochs, result(reached) if status == FINISHED else None, None, None,
        created_at, shared_key=shared_key,
    )  # fmt: skip


def test_one_row_per_run_in_the_class_and_one_for_a_student_who_trained_none():
    members = [
        Member("Ali", "browser:ali", NOW, None, 12),
        Member("=Zeynep", "browser:z", NOW, NOW + 100, 3),  # a nickname a spreadsheet would read as a formula
        Member("Ece", "browser:ece", NOW, None, 0),
    ]
    runs = {
        "browser:ali": [run(5, "browser:ali", NOW + 50), run(2, "browser:ali", NOW - 10), run(9, "browser:ali", NOW + 60, reached=False)],
        "browser:z": [run(7, "browser:z", NOW + 20, status=CANCELLED), run(8, "browser:z", NOW + 200)],  # 8: after leaving
        "browser:ece": [run(11, "browser:ece", NOW + 5, shared_key="quick:mnist")],  # the app's quick model: not hers
    }
    rows = result_rows(members, runs, now=NOW + 1000)
    assert [(row["nickname"], row.get("run")) for row in rows] == [("Ali", 5), ("Ali", 9), ("=Zeynep", 7), ("Ece", None)]
    ali = rows[0]
    assert ali["network"] == "dense128" and ali["max_epochs"] == 20 and ali["learning_rate"] == 0.003 and ali["target"] == 0.88
    assert (ali["val_accuracy"], ali["test_accuracy"], ali["seconds"], ali["reached_target"], ali["epochs_run"]) == (0.885, 0.8791, 13.0, "yes", 3)
    assert rows[1]["reached_target"] == "no" and rows[2]["status"] == CANCELLED and rows[2]["test_accuracy"] == ""

    table = list(csv.DictReader(io.StringIO(results_csv(rows))))
    assert tuple(table[0]) == COLUMNS and len(table) == 4
    assert table[2]["nickname"] == "'=Zeynep"  # shown as written, never run as a formula
    assert table[3]["drawings"] == "0" and table[3]["run"] == ""


def test_members_are_every_student_the_class_had_with_their_drawings(database_url):
    store = ClassStore(Database(database_url))
    info, _key = store.create_class("7B")
    ali = store.join(info.code, "Ali", "browser:ali")
    zeynep = store.join(info.code, "Zeynep", "browser:z")
    store.save_drawing(ali.student_id, 1, np.full((28, 28), 9, np.uint8))
    store.leave(zeynep.student_id, "browser:z")
    members = store.members(info.class_id)
    assert [(member.nickname, member.owner, member.drawings, member.left_at is not None) for member in members] == [
        ("Ali", "browser:ali", 1, False),
        ("Zeynep", "browser:z", 0, True),
    ]
