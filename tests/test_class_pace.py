"""Pacing a class: where the teacher sent it, "eyes on the projector" (rules, the store on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from mnistlab.class_pace import Direction, direction_of_link, direction_of_step, is_on, step_of
from mnistlab.classroom import ClassStore, TeacherKeyError
from mnistlab.database import Database
from mnistlab.lessons import LESSONS


def test_a_lesson_step_is_sent_as_its_page_and_link_and_found_again():
    lesson = next(lesson for lesson in LESSONS if lesson.number == 4)
    direction = direction_of_step(lesson, lesson.steps[1])
    assert (direction.page, direction.step) == ("train", "4.2") and direction.query["preset"] == "dense"
    assert step_of(direction) == (lesson, lesson.steps[1])
    assert step_of(Direction("train", {}, "9.1")) is None


def test_a_link_of_the_app_is_read_from_any_address_and_its_language_and_join_code_left_out():
    direction = direction_of_link("http://192.0.2.2:8501/train?dataset=mnist&preset=cnn&target=0.98&lang=tr&join=ABC123")
    assert direction == Direction("train", {"dataset": "mnist", "preset": "cnn", "target": "0.98"})
    assert direction_of_link("/draw").page == "draw" and direction_of_link("http://server:8501/").page == "home"


@pytest.mark.parametrize(
    ("link", "says"),
    [
        ("", "Paste a link of this app"),
        ("http://evil.example/phish", "not a link to a page of MNIST Lab"),
        ("/train?dataset=imagenet", "cannot be sent as it is"),
        ("/train?" + "x" * 700, "too long"),
    ],
)
def test_a_link_that_cannot_be_sent_says_why(link, says):
    with pytest.raises(ValueError, match=says) as problem:
        direction_of_link(link)
    assert "None" not in str(problem.value) and "Traceback" not in str(problem.value)


def test_a_student_is_on_the_step_when_the_page_has_every_setting_of_its_link():
    sent = Direction("train", {"dataset": "mnist", "preset": "cnn"})
    assert is_on(sent, "train", {"dataset": "mnist", "preset": "cnn", "target": "0.98"})
    assert not is_on(sent, "train", {"dataset": "fashion_mnist", "preset": "cnn"})
    assert not is_on(sent, "draw", {"dataset": "mnist", "preset": "cnn"})
    assert is_on(Direction("home"), "", {})


def test_only_the_teacher_sends_and_pauses_and_every_reader_sees_the_same(database_url):
    store = ClassStore(Database(database_url))
    info, key = store.create_class("9B")
    assert store.pace(info.class_id).direction is None and not store.pace(info.class_id).paused
    with pytest.raises(TeacherKeyError):
        store.send_class(info.class_id, "not the key", Direction("draw"))
    with pytest.raises(TeacherKeyError):
        store.pause_class(info.class_id, None, True)
    sent = store.send_class(info.class_id, key, Direction("train", {"dataset": "mnist"}, "2.1"))
    assert sent.direction.page == "train" and sent.direction.query == {"dataset": "mnist"} and sent.direction.sent_at > 0
    assert ClassStore(Database(database_url)).pace(info.class_id) == sent  # another replica reads the same
    assert store.pause_class(info.class_id, key, True).paused
    assert not store.pause_class(info.class_id, key, False).paused
