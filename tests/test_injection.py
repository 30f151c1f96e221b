"""No page turns user or link text into markup: every page walked with Markdown, HTML, LaTeX and Streamlit directives
in every field a user or an address bar fills (issue 20: a class name brought live links and remote images)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from mnistlab_ui.text import plain, shown

ROOT = Path(__file__).resolve().parent.parent
EVIL = ("evil.example", "127.0.0.1:8799")
# A class name (at most 60 characters), and what an address bar may carry, each full of markup.
CLASS_NAME = "[Free](http://evil.example)![p](http://127.0.0.1:8799/p)"
LINK_TEXTS = (
    "[Login here](http://evil.example/x)",
    "![i](http://127.0.0.1:8799/p.png)",
    "**bold** _em_ `code`",
    "$x^2$ :red[red] <b>html</b>",
    "__class__",
)
MARKDOWN_TYPES = {"markdown", "caption", "error", "warning", "info", "success", "header", "subheader", "title", "toast"}
PARSER = MarkdownIt("commonmark").enable(["strikethrough", "table"])


def markup_in(text: str) -> list[str]:
    """What of the payloads `text` would render as markup rather than as characters."""
    found = []
    for token in PARSER.parse(text):
        for child in [token, *(token.children or [])]:
            if child.type in ("link_open", "image"):
                target = child.attrs.get("href") or child.attrs.get("src") or ""
                if any(evil in target for evil in EVIL):
                    found.append(f"{child.type} to {target}")
            elif child.type in ("html_inline", "html_block") and re.search(r"<(b|img|i)\b", child.content):
                found.append(f"HTML {child.content!r}")
            elif child.type == "code_inline" and child.content == "code":
                found.append("code")
        if token.children:
            kinds = [child.type for child in token.children]
            for index, kind in enumerate(kinds):
                if kind in ("strong_open", "em_open") and index + 1 < len(kinds) and token.children[index + 1].content in ("bold", "em", "class"):
                    found.append(f"{kind} {token.children[index + 1].content}")
    if re.search(r"(?<!\\)\$x\^2(?<!\\)\$", text):
        found.append("LaTeX $x^2$")
    if re.search(r"(?<!\\):red(?<!\\)\[", text):
        found.append("directive :red[...]")
    return found


def rendered_strings(node):
    """Every string of the page that Streamlit renders as Markdown: text elements, labels and help texts."""
    for attribute in ("label", "help"):
        value = getattr(node, attribute, None)
        if isinstance(value, str) and value:
            yield value
    if getattr(node, "type", None) in MARKDOWN_TYPES and isinstance(getattr(node, "value", None), str):
        yield node.value
    for child in getattr(node, "children", {}).values():
        yield from rendered_strings(child)


def assert_no_markup(at, where: str) -> None:
    assert not at.exception, (where, [line for problem in at.exception for line in problem.stack_trace[-5:]])
    problems = {text[:120]: markup_in(text) for text in rendered_strings(at._tree)}
    problems = {text: found for text, found in problems.items() if found}
    assert not problems, (where, problems)


def test_the_checker_finds_markup_where_there_is_some():
    for text in (*LINK_TEXTS, CLASS_NAME):
        assert markup_in(text), text
        assert not markup_in(plain(text)), plain(text)
        assert shown(plain(text)) == text


@pytest.fixture
def class_with_markup(tmp_path, monkeypatch):
    from mnistlab.services import services

    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "models"))
    classes = services().classes
    info, key = classes.create_class(CLASS_NAME)
    student = classes.join(info.code, "Ada", "browser:injection-student")
    return info, key, student


def page(path: str) -> AppTest:
    return AppTest.from_file(str(ROOT / path), default_timeout=120)


@pytest.mark.parametrize(
    "path", ["app.py", "pages/1_train.py", "pages/2_draw.py", "pages/3_convolutions.py", "pages/4_class.py", "pages/5_glossary.py"]
)
def test_markup_in_a_link_is_shown_as_text_on_every_page(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "models"))
    for text in LINK_TEXTS:
        at = page(path)
        at.query_params["dataset"] = text
        at.query_params[text] = "1"
        at.query_params["network"] = text
        at.query_params["monitor"] = "__class__"
        at.run()
        assert_no_markup(at, (path, text))


def test_a_class_name_full_of_markup_is_shown_as_text_to_the_teacher_and_the_students(class_with_markup):
    info, key, student = class_with_markup
    teacher = page("pages/4_class.py")
    teacher.session_state["mnistlab.teacher_keys"] = {info.class_id: key}
    teacher.session_state["mnistlab.teaching"] = info.class_id
    teacher.run()
    assert_no_markup(teacher, "teacher dashboard")
    assert any(shown(header.value) == CLASS_NAME for header in teacher.header)
    for path in ("pages/4_class.py", "pages/2_draw.py", "pages/1_train.py", "app.py"):
        at = page(path)
        at.session_state["mnistlab.class_member"] = student
        at.run()
        assert_no_markup(at, (path, "student"))
    train = page("pages/1_train.py")
    train.session_state["mnistlab.class_member"] = student
    train.run()
    labels = [shown(expander.label) for expander in train.expander]
    assert any(CLASS_NAME in label for label in labels), labels  # the class's drawings, named as the teacher typed


def test_typed_text_and_error_messages_that_quote_it_are_shown_as_text(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MODELS_DIR", str(tmp_path / "models"))
    at = page("pages/1_train.py").run()
    next(box for box in at.selectbox if box.label == "Architecture").set_value("custom")
    at.run()
    for text in LINK_TEXTS:
        next(box for box in at.text_input if box.label == "Dense layers (units, comma separated)").set_value(text)
        at.run()
        assert at.error, text
        assert_no_markup(at, ("dense layers", text))
    join = page("pages/4_class.py").run()
    next(box for box in join.text_input if box.label == "Class code").input("ZZZZZZ")
    next(box for box in join.text_input if box.label == "Nickname").input("**bold** [x](http://evil.example)")
    next(button for button in join.button if button.label == "Join").click()
    join.run()
    assert join.error
    assert_no_markup(join, "join")
