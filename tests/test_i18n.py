"""Translations: the Turkish catalog covers every extracted string, pages translate every literal, links never break a page."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from mnistlab import i18n
from mnistlab.i18n import _, number, percent, set_language
from mnistlab.links import MAX_VALUE_LENGTH, read_link
from mnistlab.settings import TrainingSettings, link_of, settings_from_link

ROOT = Path(__file__).resolve().parent.parent
FIELD = re.compile(r"\{[^{}]*\}")


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    set_language("en")


def extracted(tmp_path) -> set[str]:
    """Every translatable string of the code, as `pybabel extract` finds it (the README's command)."""
    pot = tmp_path / "mnistlab.pot"
    command = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_", "-k", "N_", "-k", "ngettext:1,2"]
    command += ["--no-location", "-o", str(pot), "app.py", "pages", "mnistlab", "mnistlab_ui"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as source:
        return {message.id for message in read_po(source) if message.id}


def turkish_catalog():
    with i18n.catalog_path("tr").open("rb") as source:
        return read_po(source, locale="tr")


def test_the_turkish_catalog_has_every_extracted_string_and_no_stale_one(tmp_path):
    code = extracted(tmp_path)
    catalog = {message.id: message for message in turkish_catalog() if message.id}
    missing = sorted(code - set(catalog))
    stale = sorted(set(catalog) - code)
    assert not missing, f"{len(missing)} string(s) not in mnistlab/locales/tr/LC_MESSAGES/mnistlab.po: {missing[:10]}"
    assert not stale, f"{len(stale)} string(s) in the Turkish catalog that the code no longer has: {stale[:10]}"
    untranslated = [key for key, message in catalog.items() if not all(forms(message.string)) or message.fuzzy]
    assert not untranslated, untranslated[:10]
    # A translation keeps every placeholder of its message, so .format() fills it in Turkish too (each plural form too).
    broken = [
        key
        for key, message in catalog.items()
        for translated in forms(message.string)
        if sorted(set(FIELD.findall(forms(key)[-1]))) != sorted(set(FIELD.findall(translated)))
    ]
    assert not broken, broken[:10]


def forms(text: str | tuple) -> tuple:
    """A message's text, or each of its plural forms."""
    return text if isinstance(text, tuple) else (text,)


def test_turkish_uses_the_terms_of_turkish_courses():
    set_language("tr")
    assert _("Convolution") == "Evrişim" and _("Max pooling") == "Maksimum havuzlama"
    assert "aktivasyon fonksiyonu" in _(
        "ReLU is the activation function max(0, x): it keeps positive values and turns negative ones into 0. Without a "
        "non-linear step like this, stacked layers could only learn what one layer can."
    )
    assert _("Ankle boot") == "Bot" and _("Fashion-MNIST clothes") == "Fashion-MNIST giysiler"


def test_numbers_are_written_the_languages_way():
    set_language("tr")
    assert percent(0.915) == "%91,5" and number(1234.5, 1) == "1.234,5" and percent(0.081, signed=True) == "+%8,1"
    set_language("en")
    assert percent(0.915) == "91.5%" and number(1234.5, 1) == "1,234.5"
    set_language("xx")  # unknown: English
    assert i18n.current_language() == "en"


def test_no_message_formats_a_percentage_itself():
    """Python's "{sure:.0%}" writes 86% in every language, so a Turkish page said "86% emin" beside "%91,5": every
    percentage goes through `percent`, which writes it the language's way."""
    from babel.messages.pofile import read_po

    with open(ROOT / "mnistlab/locales/mnistlab.pot", "rb") as file:
        catalog = read_po(file)
    formatted = [message.id for message in catalog if message.id and re.search(r"\{[^{}]*%\}", str(message.id))]
    assert not formatted, formatted


def test_a_stop_message_speaks_the_language_it_is_read_in():
    from mnistlab.events import StopPoint, TrainingResult

    result = TrainingResult(
        dataset="mnist", arch="dense", epochs_run=1, stop_reason="cancelled", target_accuracy=None, monitor="val_accuracy",
        target_reached=None, train_accuracy=0.5, train_loss=1.0, val_accuracy=0.5, val_loss=1.0, test_accuracy=0.5, test_loss=1.0,
        seconds=12.0, parameters=10, data_source="test", normalization="divide_255", stopped_at=StopPoint(1, 264, 1688, 5),
    )  # fmt: skip
    assert result.describe_stop().startswith("Stopped by you at batch 264 of 1,688 in epoch 1")
    set_language("tr")
    assert result.describe_stop().startswith("1. epokta 1.688 yığının 264. yığınında sizin tarafınızdan durduruldu")


def test_a_reached_target_writes_its_batch_with_the_languages_thousands_separator():
    """Issue 33: "6. epokun 1688. yığınında": the batch had no separator in either language."""
    from dataclasses import replace

    from mnistlab.events import TargetReached, TrainingResult

    result = TrainingResult(
        dataset="mnist", arch="dense", epochs_run=6, stop_reason="target", target_accuracy=0.9, monitor="val_accuracy",
        target_reached=TargetReached(epoch=6, batch=1688, value=0.91, seconds=40.0), train_accuracy=0.9, train_loss=1.0,
        val_accuracy=0.91, val_loss=1.0, test_accuracy=0.9, test_loss=1.0, seconds=41.0, parameters=10, data_source="test",
        normalization="divide_255",
    )  # fmt: skip
    assert "at epoch 6, batch 1,688," in result.describe_stop()
    set_language("tr")
    assert result.describe_stop().startswith("6. epokun 1.688. yığınında")
    assert replace(result, target_reached=None).describe_stop()  # the other sentences still read


# Every user-visible literal in the pages goes through _()

DISPLAY = {
    "title", "header", "subheader", "write", "markdown", "caption", "info", "warning", "error", "success", "text", "metric",
    "button", "checkbox", "toggle", "radio", "selectbox", "multiselect", "slider", "number_input", "text_input", "file_uploader",
    "download_button", "expander", "page_link", "form_submit_button", "toast", "image", "code", "tabs", "Page",
}  # fmt: skip
TEXT_KEYWORDS = {"label", "help", "caption", "placeholder", "title"}
# Literals that are the same in every language.
UNTRANSLATED = {"MNIST Lab", "Language / Dil", "÷ 255", "keras normalize", "–"}


def _literal_problem(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value.strip()
        if re.search(r"[A-Za-z]{2}", text) and text not in UNTRANSLATED and not text.startswith((":material/", "pages/", "new-", "join-")):
            return text
    if isinstance(node, ast.JoinedStr):
        literal = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
        if re.search(r"[A-Za-z]{3,}", re.sub(r"<[^>]*>|\b(?:div|style|px|rem|font|weight|size)\b", "", literal)):
            return literal
    return None


def user_visible_literals(path: Path) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or node.func.attr not in DISPLAY:
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name) and "log" in receiver.id.lower():
            continue  # a log line for the server's operator, not the page
        candidates = list(node.args[:1]) + [keyword.value for keyword in node.keywords if keyword.arg in TEXT_KEYWORDS]
        for candidate in candidates:
            problem = _literal_problem(candidate)
            if problem:
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {problem!r}")
    return problems


def test_no_user_visible_literal_in_the_pages_escapes_translation():
    files = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "mnistlab_ui").glob("*.py"))]
    problems = [problem for path in files for problem in user_visible_literals(path)]
    assert not problems, "\n".join(problems)


def test_no_translation_call_hides_inside_an_f_string():
    """pybabel cannot see a _("...") call written inside an f-string, so its string would never be translated."""
    hidden = []
    for path in [
        ROOT / "app.py",
        *sorted((ROOT / "pages").glob("*.py")),
        *sorted((ROOT / "mnistlab_ui").glob("*.py")),
        *sorted((ROOT / "mnistlab").glob("*.py")),
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                for call in ast.walk(node):
                    is_translation = isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in ("_", "N_")
                    if is_translation and call.args and isinstance(call.args[0], ast.Constant):
                        hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}: {call.args[0].value!r}")
    assert not hidden, hidden


def test_the_scan_finds_an_untranslated_literal(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\nst.title("Hello class")\nst.button(_("Fine"), help="Not translated")\nst.caption(f"Epoch {n} done")\n')
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(user_visible_literals(page)) == 3
    finally:
        ROOT = saved


# Links with settings


def test_a_lesson_link_is_read_back_into_its_settings():
    link = read_link("train", {"dataset": "fashion_mnist", "preset": "fast_cnn", "target": "0.91", "epochs": "15", "lang": "tr"})
    assert link.notes == ()
    settings = settings_from_link(link.values)
    assert (settings.dataset, settings.arch, settings.target_accuracy, settings.max_epochs) == ("fashion_mnist", "fast_cnn", 0.91, 15)
    shared = TrainingSettings(dataset="mnist", arch="cnn", target_accuracy=None, max_epochs=7, batch_size=64, learning_rate=0.002, train_size=5000)
    again = settings_from_link(read_link("train", link_of(shared)).values)
    assert (again.arch, again.target_accuracy, again.max_epochs, again.batch_size, again.learning_rate, again.train_size) == (
        "cnn", None, 7, 64, 0.002, 5000,
    )  # fmt: skip
    assert read_link("train", {"target": "90%"}).values["target"] == 0.9


@pytest.mark.parametrize(
    "query, note",
    [
        ({"colour": "red"}, "'colour' is not one this page knows"),
        ({"dataset": "cifar10"}, "'cifar10' for 'dataset' cannot be used"),
        ({"target": "1.5"}, "a fraction from 0.1 to 1"),
        ({"target": "nan"}, "must be a number, not nan"),
        ({"epochs": "-3"}, "from 1 to 200"),
        ({"epochs": "1e9"}, "Max epochs must be from 1 to 200"),
        ({"epochs": "abc"}, "Max epochs must be a whole number, not abc"),
        ({"network": "dense128,abc"}, "'abc' is not a layer MNIST Lab knows"),
        ({"lr": "inf"}, "Learning rate must be a number, not inf"),
        ({"preset": "x" * 5000}, "too long"),
        ({"kernel": "edge"}, "'kernel' is not one this page knows"),
        ({"x" * 500: "1"}, "is not one this page knows"),
        ({"images": "<script>"}, "cannot be used"),
    ],
)
def test_bad_link_values_fall_back_to_defaults_with_a_note(query, note):
    link = read_link("train", query)
    assert link.values == {} and len(link.notes) == 1 and note in link.notes[0]
    assert all(len(text) < 300 for text in link.notes)
    assert MAX_VALUE_LENGTH < 100


def test_fuzzed_links_never_raise():
    import random

    generator = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789.-%_<>'\"&=?/ \x00é"
    keys = ["dataset", "preset", "target", "epochs", "batch", "lr", "monitor", "images", "kernel", "image", "lang", "zzz"]
    for _round in range(2000):
        query = {
            generator.choice(keys): "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 60)))
            for _ in range(generator.randint(0, 5))
        }
        for page in ("train", "convolutions", "draw", "class", "glossary", "nowhere"):
            read_link(page, query)


def test_errors_a_student_meets_speak_the_pages_language():
    from mnistlab.classroom import check_nickname
    from mnistlab.preprocessing import load_image_bytes

    set_language("tr")
    with pytest.raises(ValueError, match="Takma adda harfler"):
        check_nickname("<img src=x>")
    with pytest.raises(ValueError, match="MNIST Lab'in okuyabileceği bir görüntü değil"):
        load_image_bytes(b"not an image at all")
    set_language("en")
    with pytest.raises(ValueError, match="A nickname may use letters"):
        check_nickname("<img src=x>")
