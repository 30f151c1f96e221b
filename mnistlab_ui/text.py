"""User and link text on a page, shown as exactly those characters.

Streamlit renders Markdown in most of what a page writes: body text, captions, info and
error boxes, and the labels of buttons, checkboxes, expanders and metrics. A class name,
a nickname, a model name, a value from the address bar or an error message that quotes
one could therefore bring a link ("[Login here](http://evil.example)"), an image that
loads an address, emphasis, LaTeX ($x^2$) or a Streamlit directive (:red[...],
:material/...:) into the page. `plain` escapes every character that means something to
Markdown, HTML, LaTeX or Streamlit, so it is shown as written; pages pass every piece of
such text through it (a test walks every page with such text in every field).

Escaping is not enough for bare addresses: Streamlit's Markdown (GitHub's flavour) turns
"http://…", "www.…" and "name@host" into links by themselves, escaped or not. `plain` puts
an invisible word joiner (U+2060) into each, before the "://", the "." of "www." and the
"@", which the reader does not see and which no longer reads as an address.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")
WORD_JOINER = "\u2060"
# Where GitHub's Markdown sees an address without any markup: "http:", "https:", "mailto:", "xmpp:", "www." and an "@".
_ADDRESS = re.compile(r"(?i)(?:(?<=http)|(?<=https)|(?<=mailto)|(?<=xmpp))(?=\\?:)|(?<=www)(?=\\?\.)|(?=@)")


def plain(text: object) -> str:
    """`text` as Markdown that shows exactly its characters (no link, image, emphasis, HTML, LaTeX or directive, and no
    address made a link by itself)."""
    return _ADDRESS.sub(WORD_JOINER, _SPECIAL.sub(r"\\\1", str(text)).replace("\n", " "))


def shown(markdown: str) -> str:
    """What a reader sees of Markdown that `plain` escaped (tests compare what a page shows)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")


def problem(error: BaseException | str) -> str:
    """An error's message for an error box: plain text, since it may quote what a user typed."""
    return plain(str(error))


def captioned_image(where, picture, caption: str | list[str], **options) -> None:
    """Show a picture (or a list of them, each with its caption) in `where` (st, or a column); the caption is also the
    text alternative a screen reader reads (axe-core finds no image without one)."""
    alt = shown(caption) if isinstance(caption, str) else [shown(text) for text in caption]
    where.image(picture, caption=caption, alt=alt, **options)
