"""User and link text on a page, shown as exactly those characters.

Streamlit renders Markdown in most of what a page writes: body text, captions, info and
error boxes, and the labels of buttons, checkboxes, expanders and metrics. A class name,
a nickname, a model name, a value from the address bar or an error message that quotes
one could therefore bring a link ("[Login here](http://evil.example)"), an image that
loads an address, emphasis, LaTeX ($x^2$) or a Streamlit directive (:red[...],
:material/...:) into the page. `plain` escapes every character that means something to
Markdown, HTML, LaTeX or Streamlit, so it is shown as written; pages pass every piece of
such text through it (a test walks every page with such text in every field).
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def plain(text: object) -> str:
    """`text` as Markdown that shows exactly its characters (no link, image, emphasis, HTML, LaTeX or directive)."""
    return _SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def shown(markdown: str) -> str:
    """What a reader sees of Markdown that `plain` escaped (tests compare what a page shows)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def problem(error: BaseException | str) -> str:
    """An error's message for an error box: plain text, since it may quote what a user typed."""
    return plain(str(error))
