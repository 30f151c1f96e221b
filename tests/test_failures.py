"""What a teacher sees when the database or the disk fails: one clear message with what to do; pages that do not need
the database keep working; a busy database never loses a drawing or a training (issue 20)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from mnistlab.config import ServerConfig
from mnistlab.database import Database, DatabaseUnavailableError
from mnistlab.services import services, shutdown_all
from mnistlab_ui.text import shown

ROOT = Path(__file__).resolve().parent.parent


def page(path: str) -> AppTest:
    return AppTest.from_file(str(ROOT / path), default_timeout=120)


def messages(at) -> str:
    return "\n".join(shown(element.value) for kind in ("error", "warning", "info") for element in getattr(at, kind))


@pytest.fixture
def broken_home(tmp_path, monkeypatch):
    """A data home whose database file is damaged (not a database at all)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "mnistlab.db").write_bytes(b"this is not a database, it was damaged" * 100)
    monkeypatch.setenv("MNISTLAB_DATA_HOME", str(home))
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "models"))
    yield home


def test_a_damaged_database_is_one_clear_message_and_says_what_to_do(broken_home):
    with pytest.raises(DatabaseUnavailableError, match=r"is damaged .*move that file away"):
        Database(f"sqlite:///{broken_home / 'mnistlab.db'}")


@pytest.mark.parametrize("path", ["app.py", "pages/5_glossary.py"])
def test_pages_that_need_no_database_keep_working_when_it_is_damaged(broken_home, path):
    at = page(path).run()
    assert not at.exception and not at.error


def test_the_kernel_playground_keeps_working_and_the_model_part_says_what_is_wrong(broken_home):
    at = page("pages/3_convolutions.py").run()
    assert not at.exception
    assert "Kernel playground" in [header.value for header in at.header]
    assert "damaged" in messages(at) and "move that file away" in messages(at)


@pytest.mark.parametrize("path", ["pages/1_train.py", "pages/2_draw.py", "pages/4_class.py"])
def test_pages_that_need_the_database_say_what_is_wrong_once(broken_home, path):
    at = page(path).run()
    assert not at.exception
    assert len(at.error) == 1 and "is damaged" in shown(at.error[0].value)


def test_a_data_home_that_cannot_be_written_says_so(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MNISTLAB_DATA_HOME", str(blocker / "home"))  # a folder inside a file cannot be made
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "models"))
    at = page("pages/1_train.py").run()
    assert not at.exception
    assert "cannot" in messages(at) and "MNISTLAB_DATA_HOME" in messages(at)
    assert not page("app.py").run().exception


def test_a_full_disk_while_a_student_saves_a_drawing_keeps_the_drawing_and_says_why(tmp_path, monkeypatch):
    import sqlalchemy as sa

    monkeypatch.setenv("MNISTLAB_DATA_HOME", str(tmp_path / "home"))
    lab = services(ServerConfig.from_environment())
    info, _key = lab.classes.create_class("Full disk")
    student = lab.classes.join(info.code, "Ada", "browser:full")

    def full(connection, _record):
        connection.execute("PRAGMA max_page_count=1")  # every write that needs a page now fails: the disk is "full"

    lab.database.engine.dispose()
    sa.event.listen(lab.database.engine, "connect", full)
    try:
        with pytest.raises(sa.exc.OperationalError, match="full"):
            lab.classes.save_drawing(student.student_id, 3, np.zeros((28, 28), np.uint8) + 200, png=b"x" * 500_000)
        from mnistlab.database import describe_problem

        try:
            lab.classes.save_drawing(student.student_id, 3, np.zeros((28, 28), np.uint8) + 200, png=b"x" * 500_000)
        except sa.exc.OperationalError as error:
            assert "is full" in describe_problem(error, lab.database.url) and "free some space" in describe_problem(error, lab.database.url)
    finally:
        sa.event.remove(lab.database.engine, "connect", full)
        lab.database.engine.dispose()
        shutdown_all()


@pytest.mark.slow
def test_saving_for_the_class_while_another_program_locks_the_database_keeps_the_drawing(tmp_path, monkeypatch, digits_sample):
    """Two students press Save while the database is locked: each is told to press again, the drawing stays on the
    canvas, and pressing again once the lock is gone saves it."""
    from tests.drivers import canvas_value

    monkeypatch.setenv("MNISTLAB_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "models"))
    lab = services(ServerConfig.from_environment())
    info, _key = lab.classes.create_class("Locked")
    student = lab.classes.join(info.code, "Bora", "browser:locked")
    draw = page("pages/2_draw.py")
    draw.session_state["mnistlab.class_member"] = student
    draw.run()
    draw.session_state["canvas-0"] = canvas_value(digits_sample.x_test[0])
    draw.run()
    holder = sqlite3.connect(tmp_path / "home" / "mnistlab.db", timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        next(button for button in draw.button if button.label == "Save for the class").click()
        draw.run()
        assert not draw.exception
        assert "not saved yet" in messages(draw) and "press Save again" in messages(draw)
        assert draw.session_state["mnistlab.canvas_version"] == 0  # the same canvas: the drawing is still there
    finally:
        holder.rollback()
        holder.close()
    next(button for button in draw.button if button.label == "Save for the class").click()
    draw.run()
    assert not draw.exception and "Saved your" in "\n".join(shown(success.value) for success in draw.success)
    assert len(lab.classes.drawings(info.class_id)) == 1
    shutdown_all()


def start_training_on(lab, settings_query: str = "dataset=mnist&preset=dense&images=1000&seed=31") -> AppTest:
    """The Train page with a lesson-like link's settings, Train pressed."""
    at = page("pages/1_train.py")
    for key, value in (pair.split("=") for pair in settings_query.split("&")):
        at.query_params[key] = value
    at.run()
    next(button for button in at.button if button.label == "Train").click()
    return at.run()


def test_a_full_disk_when_a_student_presses_train_says_the_disk_is_full_not_busy(tmp_path, monkeypatch):
    """Issue 35: with the data home's disk full, Train said "The runs database is busy ... press Train again in a
    moment" (every database error was "busy"), while the Class page rightly said the disk was full."""
    import sqlalchemy as sa

    monkeypatch.setenv("MNISTLAB_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "models"))
    lab = services(ServerConfig.from_environment())

    def full(*arguments, **keywords):
        raise sa.exc.OperationalError("INSERT INTO runs", {}, sqlite3.OperationalError("database or disk is full"))  # SQLite's own words

    monkeypatch.setattr(lab.runs, "create", full)
    try:
        at = start_training_on(lab)
        assert not at.exception
        said = messages(at)
        assert "is full" in said and "free some space" in said and "was not started" in said, said
        assert "busy" not in said and "Press Train again" not in said
    finally:
        shutdown_all()


@pytest.mark.slow
def test_a_busy_database_when_a_student_presses_train_says_press_again(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "models"))
    lab = services(ServerConfig.from_environment())
    holder = sqlite3.connect(tmp_path / "home" / "mnistlab.db", timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        at = start_training_on(lab)
        assert not at.exception
        assert "busy" in messages(at) and "Press Train again in a moment" in messages(at)
    finally:
        holder.rollback()
        holder.close()
        shutdown_all()
