"""The class store against a real SQLite file and a real PostgreSQL: create, join, save, hide, export, limits, the teacher key."""

from __future__ import annotations

import io
import random
import zipfile

import numpy as np
import pytest

from mnistlab.classroom import (
    CODE_ALPHABET,
    MAX_DRAWINGS_PER_CLASS,
    ClassLimitError,
    ClassStore,
    TeacherKeyError,
    check_nickname,
    export_idx_zip,
    export_npz,
    score,
)
from mnistlab.database import Database
from mnistlab.idx import read_idx


class Clock:
    """A clock the test moves: the one-drawing-a-second limit without sleeping."""

    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(database_url, clock):
    """A class store on a fresh database: every test here runs on SQLite and on a real PostgreSQL."""
    return ClassStore(Database(database_url), clock=clock)


def image(value: int) -> np.ndarray:
    return np.full((28, 28), value, np.uint8)


def test_a_class_gets_a_readable_code_and_a_teacher_key_kept_only_as_a_hash(store, tmp_path):
    info, key = store.create_class("  7B   Computer vision ")
    assert info.name == "7B Computer vision" and info.is_open and info.model_name is None
    assert len(info.code) == 6 and set(info.code) <= set(CODE_ALPHABET)
    assert info.join_path == f"/class?join={info.code}"
    assert store.by_code(f" {info.code.lower()[:3]}-{info.code.lower()[3:]} ") == info
    assert store.is_teacher(info.class_id, key) and not store.is_teacher(info.class_id, key + "x") and not store.is_teacher(info.class_id, None)
    import sqlalchemy as sa

    from mnistlab.database import classes

    with store.database.engine.connect() as connection:
        stored = [value for row in connection.execute(sa.select(classes)).all() for value in row]
    assert key not in map(str, stored)  # only its hash is kept
    other, _ = store.create_class("8A")
    assert other.code != info.code


def test_students_join_with_a_checked_nickname(store):
    info, _key = store.create_class("7B")
    ada = store.join(info.code, "Ada", "browser:1")
    assert ada.nickname == "Ada" and ada.class_id == info.class_id
    # The same browser joining again gets its place back; another browser cannot take the name.
    assert store.join(info.code.lower(), "ada", "browser:1") == ada
    with pytest.raises(ValueError, match="already called"):
        store.join(info.code, "ADA", "browser:2")
    with pytest.raises(ValueError, match="no class with this code"):
        store.join("ZZZZZZ", "Bob", "browser:2")
    assert check_nickname("  Şule   K. ") == "Şule K."
    for bad in ["", " ", "x" * 21, "<script>", "a\x00b", "a&b", "Bob'); DROP TABLE students;--", "--", "a__b"]:
        with pytest.raises(ValueError, match="nickname"):
            store.join(info.code, bad, "browser:3")
    assert [student.nickname for student in store.students(info.class_id)] == ["Ada"]


def test_prompts_ask_for_each_digit_about_equally_often_in_a_shuffled_order(store, clock):
    info, _key = store.create_class("7B")
    student = store.join(info.code, "Ada", "browser:1")
    generator = random.Random(1)
    asked = []
    for _ in range(30):
        digit = store.next_prompt(student.student_id, generator)
        asked.append(digit)
        store.save_drawing(student.student_id, digit, image(digit))
        clock.tick()
    assert sorted(asked) == sorted(list(range(10)) * 3)
    assert asked[:10] != list(range(10))  # shuffled
    assert store.tally(student.student_id) == dict.fromkeys(range(10), 3)


def test_a_drawing_keeps_label_correction_prediction_image_and_png(store, clock):
    info, _key = store.create_class("7B")
    student = store.join(info.code, "Ada", "browser:1")
    first = store.save_drawing(student.student_id, 7, image(70), predicted=1, confidence=0.6, model_name="digits", png=b"\x89PNG...")
    clock.tick()
    second = store.save_drawing(student.student_id, 3, image(30), label=8, predicted=8, confidence=0.9)
    newest, oldest = store.drawings(info.class_id)
    assert (newest.drawing_id, newest.prompt, newest.label, newest.predicted) == (second, 3, 8, 8)
    assert (oldest.drawing_id, oldest.prompt, oldest.label, oldest.predicted, oldest.nickname) == (first, 7, 7, 1, "Ada")
    assert oldest.image.shape == (28, 28) and int(oldest.image[0, 0]) == 70
    assert store.png(info.class_id, first) == b"\x89PNG..." and store.png(info.class_id + 1, first) is None
    for bad in [dict(prompt=10), dict(prompt=-1), dict(prompt=True), dict(label=11)]:
        clock.tick()
        arguments = dict(prompt=1) | bad
        with pytest.raises(ValueError, match="0 to 9"):
            store.save_drawing(student.student_id, arguments.pop("prompt"), image(1), **arguments)
    with pytest.raises(ValueError, match="28x28"):
        store.save_drawing(student.student_id, 1, np.zeros((280, 280)))


def test_one_drawing_a_second_per_student(store, clock):
    info, _key = store.create_class("7B")
    ada = store.join(info.code, "Ada", "browser:1")
    bob = store.join(info.code, "Bob", "browser:2")
    store.save_drawing(ada.student_id, 1, image(1))
    with pytest.raises(ClassLimitError, match="One drawing a second"):
        store.save_drawing(ada.student_id, 2, image(2))
    store.save_drawing(bob.student_id, 2, image(2))  # Another student is not held up.
    clock.tick(1.0)
    store.save_drawing(ada.student_id, 2, image(2))
    assert len(store.drawings(info.class_id)) == 3


def test_a_full_or_closed_class_takes_no_more_drawings(store, clock, monkeypatch):
    import mnistlab.class_drawings as class_drawings  # where the limit lives

    info, key = store.create_class("7B")
    ada = store.join(info.code, "Ada", "browser:1")
    monkeypatch.setattr(class_drawings, "MAX_DRAWINGS_PER_CLASS", 3)
    for digit in range(3):
        store.save_drawing(ada.student_id, digit, image(digit))
        clock.tick()
    with pytest.raises(ClassLimitError, match="3 drawings, the most"):
        store.save_drawing(ada.student_id, 4, image(4))
    assert MAX_DRAWINGS_PER_CLASS == 20_000
    clock.tick()
    store.set_open(info.class_id, key, False)
    with pytest.raises(ClassLimitError, match="closed"):
        store.save_drawing(ada.student_id, 4, image(4))


def test_only_the_teacher_key_changes_a_class(store, clock):
    info, key = store.create_class("7B")
    ada = store.join(info.code, "Ada", "browser:1")
    drawing = store.save_drawing(ada.student_id, 1, image(1))
    for wrong in [None, "", info.code, key[:-1]]:
        with pytest.raises(TeacherKeyError):
            store.set_model(info.class_id, wrong, "digits")
        with pytest.raises(TeacherKeyError):
            store.set_open(info.class_id, wrong, False)
        with pytest.raises(TeacherKeyError):
            store.hide_drawing(info.class_id, wrong, drawing)
        with pytest.raises(TeacherKeyError):
            store.delete_class(info.class_id, wrong)
    assert store.get(info.class_id) == info
    assert store.set_model(info.class_id, key, "digits").model_name == "digits"
    assert not store.set_show_names(info.class_id, key, False).show_names
    # The key of one class does not open another.
    _other, other_key = store.create_class("8A")
    with pytest.raises(TeacherKeyError):
        store.set_open(info.class_id, other_key, False)


def test_a_hidden_drawing_leaves_every_figure_and_export(store, clock):
    info, key = store.create_class("7B")
    ada = store.join(info.code, "Ada", "browser:1")
    ids = []
    for digit in range(4):
        ids.append(store.save_drawing(ada.student_id, digit, image(digit)))
        clock.tick()
    before = store.version(info.class_id)
    store.hide_drawing(info.class_id, key, ids[1])
    assert store.version(info.class_id) != before
    data = store.arrays(info.class_id)
    assert list(data.ids) == [ids[0], ids[2], ids[3]] and list(data.labels) == [0, 2, 3]
    assert [drawing.drawing_id for drawing in store.drawings(info.class_id, include_hidden=True)] == ids[::-1]
    with pytest.raises(ValueError, match="not in this class"):
        store.hide_drawing(info.class_id, key, 10_000)
    store.hide_drawing(info.class_id, key, ids[1], hidden=False)
    assert len(store.arrays(info.class_id)) == 4


def test_export_loads_back_through_mnistlab_idx_and_keras_npz_layout(store, clock, tmp_path):
    info, _key = store.create_class("7B")
    ada = store.join(info.code, "Ada", "browser:1")
    for number in range(12):
        store.save_drawing(ada.student_id, number % 10, image(number * 10))
        clock.tick()
    data = store.arrays(info.class_id)
    train, test = data.split("train"), data.split("test")
    assert len(train) + len(test) == 12 and set(train.ids) & set(test.ids) == set()
    assert all(drawing_id % 2 == 0 for drawing_id in train.ids)
    with zipfile.ZipFile(io.BytesIO(export_idx_zip(data))) as archive:
        archive.extractall(tmp_path / "idx")
    folder = tmp_path / "idx" / "class-drawings"
    assert np.array_equal(read_idx(folder / "train-images-idx3-ubyte.gz", expected_dims=3), train.images)
    assert np.array_equal(read_idx(folder / "train-labels-idx1-ubyte.gz", expected_dims=1), train.labels)
    assert np.array_equal(read_idx(folder / "t10k-images-idx3-ubyte.gz", expected_dims=3), test.images)
    assert np.array_equal(read_idx(folder / "t10k-labels-idx1-ubyte.gz", expected_dims=1), test.labels)
    # Keras' MNIST loader reads exactly these four keys from mnist.npz.
    (tmp_path / "mnist.npz").write_bytes(export_npz(data))
    with np.load(tmp_path / "mnist.npz", allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["x_test", "x_train", "y_test", "y_train"]
        assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].shape == (len(train), 28, 28)
        assert np.array_equal(arrays["y_test"], test.labels)


def test_scores_and_confusion_matrix():
    labels = np.array([1, 1, 2, 3], np.uint8)
    probabilities = np.eye(10)[[1, 7, 2, 3]]
    result = score(probabilities, labels)
    assert result.accuracy == 0.75 and result.correct == 3 and result.confusion[1, 7] == 1 and result.confusion.sum() == 4
    assert score(np.zeros((0, 10)), np.zeros((0,), np.uint8)).accuracy is None


def test_deleting_a_class_deletes_its_drawings_students_and_shares(store, clock):
    import sqlalchemy as sa

    from mnistlab.database import drawings, runs, students

    info, key = store.create_class("7B")
    kept, _ = store.create_class("8A")
    ada = store.join(info.code, "Ada", "browser:1")
    bob = store.join(kept.code, "Bob", "browser:2")
    store.save_drawing(ada.student_id, 1, image(1))
    store.save_drawing(bob.student_id, 1, image(1))
    with store.database.engine.begin() as connection:
        run_id = connection.execute(
            runs.insert().values(
                owner="browser:1", server="s", status="finished", phase="", dataset="mnist", arch="dense", settings={}, created_at=1.0
            )
        ).inserted_primary_key[0]
    store.share_run(info.class_id, run_id, ada.student_id)
    store.share_run(info.class_id, run_id, ada.student_id)  # Sharing twice keeps one entry.
    assert store.shared_runs(info.class_id) == [(run_id, "Ada")]
    store.delete_class(info.class_id, key)
    assert store.get(info.class_id) is None and store.by_code(info.code) is None
    with store.database.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(drawings)).scalar() == 1
        assert connection.execute(sa.select(students.c.nickname)).scalars().all() == ["Bob"]
        assert connection.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 1  # The run stays its owner's.
    with pytest.raises(ValueError, match="not in a class"):
        store.save_drawing(ada.student_id, 1, image(1))


# Names and membership (issue 20): a Turkish class meets these first


def test_nicknames_are_compared_as_a_class_reads_them_not_as_sqlite_lowers_them(store):
    info, _key = store.create_class("Türkçe")
    store.join(info.code, "Ömer", "browser:1")
    for same in ("ÖMER", "ömer", "Ömer"):
        with pytest.raises(ValueError, match="already called"):
            store.join(info.code, same, "browser:2")
    store.join(info.code, "Işık", "browser:3")
    with pytest.raises(ValueError, match="already called"):
        store.join(info.code, "IŞIK", "browser:4")
    store.join(info.code, "Ali", "browser:5")
    for look_alike in ("Ａｌｉ", "ALİ", "Alı"):  # full-width letters, Turkish dotted and dotless I
        with pytest.raises(ValueError, match="already called"):
            store.join(info.code, look_alike, "browser:6")
    assert [student.nickname for student in store.students(info.class_id)] == ["Ömer", "Işık", "Ali"]


def test_a_nickname_that_only_looks_like_anothers_is_refused_by_unicodes_confusable_skeletons(store):
    """Issue 35: "AIi" (a capital I for the small l) joined next to "Ali"; so did "ɑli" (a Latin alpha) and "ᎪᏞᎥ"
    (Cherokee letters). Names are compared by UTS #39's skeletons, not by a list of our own."""
    info, _key = store.create_class("Look-alikes")
    store.join(info.code, "Ali", "browser:ali")
    for look_alike in ("AIi", "ɑli", "ᎪᏞᎥ", "A1i"):  # ... and a digit one for the l
        with pytest.raises(ValueError, match=r"looks too much like Ali|already called"):
            store.join(info.code, look_alike, "browser:other")
    with pytest.raises(ValueError, match="AIi looks too much like Ali, who is already in this class"):
        store.join(info.code, "AIi", "browser:other")
    # Names that only share letters are others' names; the same browser gets its own place back by a look-alike.
    for different in ("All", "Alice", "Ela"):
        store.join(info.code, different, f"browser:{different}")
    assert store.join(info.code, "AIi", "browser:ali").nickname == "Ali"
    assert [student.nickname for student in store.students(info.class_id)] == ["Ali", "All", "Alice", "Ela"]


def test_a_nickname_that_mixes_alphabets_is_refused():
    with pytest.raises(ValueError, match="mixes alphabets"):
        check_nickname("Аli")  # a Cyrillic А before Latin letters
    assert check_nickname("Аня") == "Аня" and check_nickname("Çağla") == "Çağla"


def test_the_same_browser_gets_its_turkish_nickname_back_even_after_leaving(store):
    info, _key = store.create_class("9C")
    first = store.join(info.code, "Çağla", "browser:cagla")
    assert store.join(info.code, "ÇAĞLA", "browser:cagla") == first  # the same browser, the same place
    store.leave(first.student_id, "browser:cagla")
    assert store.latest_student_of("browser:cagla") is None and store.student_of(info.class_id, "browser:cagla") is None
    assert store.students(info.class_id) == []
    again = store.join(info.code, "Çağla", "browser:cagla")
    assert again.student_id == first.student_id and store.latest_student_of("browser:cagla") == again
    with pytest.raises(ValueError, match="already called"):
        store.join(info.code, "Çağla", "browser:someone-else")


def test_the_teacher_sees_every_student_and_removes_one_who_left(store, clock):
    info, key = store.create_class("Roster")
    present = store.join(info.code, "Ada", "browser:ada")
    gone = store.join(info.code, "Bora", "browser:bora")
    clock.tick()
    store.save_drawing(present.student_id, 3, image(120))
    assert [(row.nickname, row.drawings) for row in store.roster(info.class_id)] == [("Ada", 1), ("Bora", 0)]
    with pytest.raises(TeacherKeyError):
        store.remove_student(info.class_id, "wrong", gone.student_id)
    store.remove_student(info.class_id, key, gone.student_id)
    assert [row.nickname for row in store.roster(info.class_id)] == ["Ada"] and len(store.students(info.class_id)) == 1


def test_a_tally_counts_what_the_student_drew_not_what_was_asked(store, clock):
    info, _key = store.create_class("Tally")
    student = store.join(info.code, "Ada", "browser:tally")
    clock.tick()
    store.save_drawing(student.student_id, 3, image(100), label=4)  # asked for a 3, drew a 4 and said so
    tally = store.tally(student.student_id)
    assert tally[3] == 0 and tally[4] == 1


def test_a_hidden_drawing_can_be_shown_again(store, clock):
    info, key = store.create_class("Hide")
    student = store.join(info.code, "Ada", "browser:hide")
    clock.tick()
    drawing = store.save_drawing(student.student_id, 1, image(90))
    store.hide_drawing(info.class_id, key, drawing)
    assert [hidden.drawing_id for hidden in store.hidden(info.class_id)] == [drawing] and len(store.arrays(info.class_id)) == 0
    store.hide_drawing(info.class_id, key, drawing, hidden=False)
    assert store.hidden(info.class_id) == [] and len(store.arrays(info.class_id)) == 1


def test_a_teacher_token_opens_the_class_for_a_day_and_nothing_else(store, clock):
    info, key = store.create_class("Token")
    other, _other_key = store.create_class("Other")
    token = store.teacher_token(info.class_id, key)
    assert key not in token and store.is_teacher(info.class_id, token) and store.class_of_token(token) == info
    assert not store.is_teacher(other.class_id, token)
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert not store.is_teacher(info.class_id, forged) and store.class_of_token(forged) is None
    store.set_open(info.class_id, token, False)  # a token works wherever the key does
    clock.tick(13 * 3600)
    assert not store.is_teacher(info.class_id, token) and store.class_of_token(token) is None


def test_wrong_join_codes_are_slowed_down_per_browser_and_per_address():
    from mnistlab.throttle import Throttle

    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock = Clock()
    throttle = Throttle(allowed=5, window=60, first_wait=10, clock=clock)
    guesser, address, classmate = "browser:guess", "10.0.0.9", "browser:classmate"
    for _guess in range(5):
        assert throttle.wait_for([guesser, address]) == 0
        throttle.failed([guesser, address])
    assert throttle.wait_for([guesser, address]) == 10  # the sixth try waits
    assert throttle.wait_for([classmate, address]) == 10  # a second browser at the same address too
    assert throttle.wait_for([classmate, "10.0.0.10"]) == 0  # a classmate elsewhere does not
    clock.now += 10
    throttle.failed([guesser, address])
    assert throttle.wait_for([guesser]) == 20  # each further wrong code doubles the wait


# Issue 34: a drawing set of the class's own


def test_a_class_draws_its_own_categories_each_asked_for_equally_often_and_kept_apart_from_the_digits(store, clock):
    from mnistlab.category_sets import CategorySet

    info, key = store.create_class("7B")
    student = store.join(info.code, "Ada", "browser:1")
    store.save_drawing(student.student_id, 7, image(70))  # a digit, before the set
    clock.tick()
    info = store.choose_categories(info.class_id, key, CategorySet.of(["🐟 balık", "yıldız ⭐", "ev"]))
    assert info.categories.names == ("🐟 balık", "yıldız ⭐", "ev") and info.category_set == 1 and not info.draws_digits
    assert store.get(info.class_id) == info  # read back from the database as it was written
    generator, asked = random.Random(3), []
    for _ in range(9):
        number = store.next_prompt(student.student_id, generator)
        asked.append(number)
        store.save_drawing(student.student_id, number, image(10 + number))
        clock.tick()
    assert sorted(asked) == [0, 0, 0, 1, 1, 1, 2, 2, 2] and asked != [0, 1, 2] * 3  # balanced, shuffled
    assert store.tally(student.student_id) == {0: 3, 1: 3, 2: 3}
    # The set's drawings and the digits' are apart: each has its own arrays, list and counts.
    own = store.arrays(info.class_id, category_set=info.category_set)
    assert own.labels.tolist() == asked
    assert len(store.arrays(info.class_id)) == 1 and store.arrays(info.class_id).labels.tolist() == [7]
    assert store.drawn_counts(info.class_id, info.category_set) == {"Ada": {0: 3, 1: 3, 2: 3}}
    assert [drawing.label for drawing in store.drawings(info.class_id)] == [7]
    # A digit is not a category of the set, nor a category's number beyond it.
    with pytest.raises(ValueError, match="not in the class's set"):
        store.save_drawing(student.student_id, 5, image(1))


def test_renaming_removing_and_adding_a_category_keeps_its_drawings_and_a_new_set_starts_apart(store, clock):
    from mnistlab.category_sets import CategorySet

    info, key = store.create_class("7B")
    student = store.join(info.code, "Ada", "browser:1")
    info = store.choose_categories(info.class_id, key, CategorySet.ready_made("shapes"))
    for number in (0, 1, 3):
        store.save_drawing(student.student_id, number, image(number))
        clock.tick()
    edited = info.categories.rename(3, "⭐ star").remove(1).add("heart")
    info = store.edit_categories(info.class_id, key, edited)
    assert info.category_set == 1 and info.categories.names == ("circle", "square", "⭐ star", "heart")
    assert store.tally(student.student_id) == {0: 1, 2: 0, 3: 1, 4: 0}  # the triangle is out, its drawing kept
    with pytest.raises(ValueError, match="not in the class's set"):
        store.save_drawing(student.student_id, 1, image(1))  # asked for before the teacher removed it
    assert len(store.arrays(info.class_id, category_set=1)) == 3
    # An edit cannot drop a category (its drawings would lose their name); only the teacher edits.
    with pytest.raises(ValueError, match="stays in its set"):
        store.edit_categories(info.class_id, key, CategorySet.of(["a", "b"]))
    from mnistlab.class_identity import TeacherKeyError

    with pytest.raises(TeacherKeyError):
        store.edit_categories(info.class_id, "wrong", edited)
    # A new set is numbered apart: the shapes' drawings are not taken for the weather's.
    weather = store.choose_categories(info.class_id, key, CategorySet.ready_made("weather"))
    assert weather.category_set == 2 and store.tally(student.student_id) == {0: 0, 1: 0, 2: 0, 3: 0}
    assert len(store.arrays(info.class_id, category_set=2)) == 0 and len(store.arrays(info.class_id, category_set=1)) == 3
    # Back to the digits: the digits' drawings and prompts as before.
    digits = store.choose_categories(info.class_id, key, None)
    assert digits.draws_digits and store.tally(student.student_id) == dict.fromkeys(range(10), 0)


def test_a_class_sets_drawings_export_as_keras_folders_and_npz_without_nicknames(store, clock):
    from mnistlab.category_sets import CategorySet
    from mnistlab.classroom import export_category_npz, export_category_zip
    from mnistlab.image_sets import read_image_zip

    info, key = store.create_class("7B")
    ada, can = store.join(info.code, "Ada", "browser:1"), store.join(info.code, "Can", "browser:2")
    info = store.choose_categories(info.class_id, key, CategorySet.of(["🐟 balık", "ç"]))
    for student, label, value in ((ada, 0, 200), (can, 1, 150), (ada, 1, 100), (can, 0, 250)):
        stroke = np.zeros((28, 28), np.uint8)
        stroke[8:20, 12:16] = value  # ink, as the network sees it
        store.save_drawing(student.student_id, label, stroke)
        clock.tick()
    data = store.arrays(info.class_id, category_set=info.category_set).only(number for number in (0, 1))
    names = {category.number: category.name for category in info.categories.active}
    archive = export_category_zip(data, names, "7b")
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        files = sorted(opened.namelist())
    assert files == [
        "7b/ç/student-1-drawing-3.png",
        "7b/ç/student-2-drawing-2.png",
        "7b/🐟 balık/student-1-drawing-1.png",
        "7b/🐟 balık/student-2-drawing-4.png",
    ]
    assert not any("Ada" in file or "Can" in file for file in files)
    read = read_image_zip(archive)  # the layout image_dataset_from_directory reads, through our own reader
    assert sorted(read.counts().items()) == [("ç", 2), ("🐟 balık", 2)]
    arrays = np.load(io.BytesIO(export_category_npz(data, names)))
    assert arrays["x"].shape == (4, 28, 28) and arrays["y"].tolist() == [0, 1, 1, 0] and arrays["student"].tolist() == [1, 2, 1, 2]
    assert arrays["class_names"].tolist() == ["🐟 balık", "ç"]


def test_the_teacher_hides_all_of_one_students_drawings_in_one_go_and_shows_them_again(store, clock):
    from mnistlab.category_sets import CategorySet
    from mnistlab.class_identity import TeacherKeyError

    info, key = store.create_class("7B")
    ada, can = store.join(info.code, "Ada", "browser:1"), store.join(info.code, "Can", "browser:2")
    store.save_drawing(ada.student_id, 3, image(3))  # a digit: another set, left alone
    clock.tick()
    info = store.choose_categories(info.class_id, key, CategorySet.ready_made("shapes"))
    for student, label in ((ada, 0), (can, 1), (ada, 2), (ada, 3)):
        store.save_drawing(student.student_id, label, image(label))
        clock.tick()
    with pytest.raises(TeacherKeyError):
        store.hide_student_drawings(info.class_id, "wrong", ada.student_id, info.category_set)
    assert store.hide_student_drawings(info.class_id, key, ada.student_id, info.category_set) == 3
    assert store.drawn_counts(info.class_id, info.category_set) == {"Can": {1: 1}}
    assert len(store.hidden(info.class_id, info.category_set)) == 3 and len(store.arrays(info.class_id)) == 1
    assert store.hide_student_drawings(info.class_id, key, ada.student_id, info.category_set, hidden=False) == 3
    assert store.drawn_counts(info.class_id, info.category_set) == {"Ada": {0: 1, 2: 1, 3: 1}, "Can": {1: 1}}
