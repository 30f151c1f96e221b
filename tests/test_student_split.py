"""Issue 34, item 3: a class's own set is tested on classmates the model never saw."""

from __future__ import annotations

import pytest

from mnistlab.student_split import split_by_student


def test_each_student_is_on_one_side_and_the_test_side_holds_about_a_quarter():
    drawings = {f"student-{number}": 24 for number in range(20)}  # about 480 drawings by 20 students
    split = split_by_student(drawings, seed="class-7")
    assert not split.train_students & split.test_students
    assert split.train_students | split.test_students == set(drawings)
    assert split.test_drawings == 24 * len(split.test_students) == 120 and split.train_drawings == 360
    assert split.tested_on() == "tested on 120 drawings by 5 classmates it never saw"
    assert {split.side(student) for student in split.test_students} == {"test"} and split.side("a newcomer") == "train"


def test_two_students_one_learns_one_tests_and_one_alone_cannot_be_tested_honestly():
    split = split_by_student({"Ali": 30, "Zeynep": 5, "Deniz": 0}, seed="x")
    assert len(split.test_students) == 1 and len(split.train_students) == 1  # Deniz drew nothing: on neither side
    assert split.tested_on() in ("tested on 30 drawings by 1 classmate it never saw", "tested on 5 drawings by 1 classmate it never saw")
    with pytest.raises(ValueError, match=r"^An honest test needs drawings by at least 2 students: .* \(1 student has drawn\)\.$"):
        split_by_student({"Ali": 30, "Deniz": 0}, seed="x")


def test_a_class_that_grows_keeps_its_students_where_they_were_and_another_class_splits_otherwise():
    drawings = {f"student-{number}": 20 for number in range(20)}
    before = split_by_student(drawings, seed="class-7")
    after = split_by_student({**drawings, "late": 20}, seed="class-7")
    moved = {student for student in drawings if before.side(student) != after.side(student)}
    assert len(moved) <= 1, moved
    assert split_by_student(drawings, seed="class-7") == before  # the same split every time
    assert split_by_student(drawings, seed="class-8").test_students != before.test_students
