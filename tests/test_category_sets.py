"""Issue 34, item 1: a class's own set of categories, as rules over plain values."""

from __future__ import annotations

import pytest

from mnistlab.category_sets import READY_MADE, CategorySet, check_category_name
from mnistlab.i18n import set_language


def test_names_are_any_text_a_class_types_tidied():
    assert check_category_name("  🐟   balık ") == "🐟 balık"
    assert check_category_name("ı") == "ı" and check_category_name("Şekil 2") == "Şekil 2"
    assert check_category_name("👩‍🔬 bilim insanı") == "👩‍🔬 bilim insanı"  # an emoji written with a joiner
    assert check_category_name("cafe\u0301") == "café"  # one way of writing each letter


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", r"^A category's name has 1 to 30 characters \(this one has 0\)\.$"),
        ("x" * 31, r"^A category's name has 1 to 30 characters \(this one has 31\)\.$"),
        ("cats/dogs", r"^A category's name may use letters, digits, emoji, spaces and signs, but no slashes\.$"),
        ("a\\b", r"no slashes\.$"),
        ("evil\u202etxt", r"no slashes\.$"),  # a character that turns the text around
        ("..", r"^A category's name needs a letter, a digit or an emoji\.$"),
    ],
)
def test_a_name_that_cannot_be_a_category_says_what_a_name_may_be(name, message):
    with pytest.raises(ValueError, match=message):
        check_category_name(name)


def test_a_set_has_two_to_ten_categories_none_twice():
    shapes = CategorySet.of(["circle", "triangle"])
    assert shapes.names == ("circle", "triangle") and [category.number for category in shapes.categories] == [0, 1]
    with pytest.raises(ValueError, match=r"^A set has 2 to 10 categories \(this one has 1\)\.$"):
        CategorySet.of(["circle"])
    with pytest.raises(ValueError, match=r"^The set already has a category called circle\.$"):
        CategorySet.of(["circle", "CIRCLE"])
    full = CategorySet.of([str(number) + " ⭐" for number in range(10)])
    with pytest.raises(ValueError, match=r"^A set has at most 10 categories\.$"):
        full.add("one more")


def test_renaming_keeps_the_number_removing_keeps_the_drawings_label_and_a_new_category_never_takes_it():
    """A drawing keeps its category's number: renamed, the category keeps it; removed and added back, too; a new
    category gets a number no category had."""
    drawn = CategorySet.of(["sun", "cloud", "rain"])
    renamed = drawn.rename(1, "☁️ cloud")
    assert renamed.names == ("sun", "☁️ cloud", "rain") and renamed.category(1).name == "☁️ cloud"
    removed = renamed.remove(2)
    assert removed.names == ("sun", "☁️ cloud") and removed.category(2).removed
    added = removed.add("lightning")
    assert added.category(3).name == "lightning"  # not number 2: rain's drawings keep it
    back = added.add("Rain")  # the removed one comes back, with its drawings
    assert back.category(2) == removed.category(2).__class__(2, "rain") and back.names == ("sun", "☁️ cloud", "rain", "lightning")
    with pytest.raises(ValueError, match=r"^A set needs at least 2 categories: add another before removing this one\.$"):
        CategorySet.of(["sun", "rain"]).remove(0)
    with pytest.raises(ValueError, match=r"^The set already has a category called sun\.$"):
        drawn.rename(2, "SUN")
    with pytest.raises(ValueError, match=r"^This set has no category number 9\.$"):
        drawn.rename(9, "snow")


def test_a_set_read_back_is_the_set_written_and_a_damaged_one_is_refused():
    drawn = CategorySet.of(["ç", "ğ", "ı"]).remove(1).add("ö")
    assert CategorySet.from_json(drawn.to_json()) == drawn
    for damaged in (
        "not a list",
        [{"number": 0, "name": "a"}, {"number": 0, "name": "b"}],
        [{"number": 0, "name": "a/b"}, {"number": 1, "name": "c"}],
    ):
        with pytest.raises(ValueError):
            CategorySet.from_json(damaged)


def test_ready_made_sets_start_a_class_in_its_language():
    assert set(READY_MADE) >= {"shapes", "weather", "turkish_letters"}
    assert CategorySet.ready_made("shapes").names == ("circle", "triangle", "square", "star")
    assert CategorySet.ready_made("turkish_letters").names == ("ç", "ğ", "ı", "ö", "ş", "ü")  # MNIST has none of them
    set_language("tr")
    try:
        assert CategorySet.ready_made("weather").names == ("güneş", "bulut", "yağmur", "şimşek")
    finally:
        set_language("en")
    with pytest.raises(ValueError, match=r"^There is no ready-made set called planets\.$"):
        CategorySet.ready_made("planets")
