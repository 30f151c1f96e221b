"""Which browser is this? A secret key kept in a cookie, so a reload finds its runs again.

A Streamlit session ends when its tab reloads, but a student's runs should not. On the
first visit the page makes a random key and stores it in a cookie of this site (a
one-line script); on later visits Streamlit hands the cookie to the page. Runs are
owned by "browser:" plus a hash of the key, so the database never holds the key
itself. Where no cookie can be read (the test harness, a browser that refuses
cookies) the key lives as long as the session.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import streamlit as st

from mnistlab_ui.session import BROWSER_KEY

COOKIE = "mnistlab_browser"
_VALID = re.compile(r"[A-Za-z0-9_-]{32,64}")
_COOKIE_SET = "mnistlab.cookie_written"


def _cookie_key() -> str | None:
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 (no request context: the test harness)
        return None
    return value if isinstance(value, str) and _VALID.fullmatch(value) else None


def browser_key() -> str:
    """This browser's key (made and stored in a cookie on its first visit)."""
    key = BROWSER_KEY.get()
    if key is None:
        key = _cookie_key() or secrets.token_urlsafe(32)
        BROWSER_KEY.set(key)
    return key


_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_.~-]{0,2000}")


def write_cookie(name: str, value: str, max_age: int, same_site: str = "Lax") -> None:
    """Store a cookie of this site in the browser (a one-line script); the value must be URL-safe characters only,
    so the script cannot be made to do anything else."""
    if not _COOKIE_VALUE.fullmatch(value) or not re.fullmatch(r"[a-z_]{1,40}", name) or same_site not in ("Lax", "Strict"):
        raise ValueError(f"A cookie of MNIST Lab holds URL-safe characters only, not {value[:40]!r}.")
    st.html(
        f"<script>document.cookie = '{name}={value}; path=/; max-age={int(max_age)}; SameSite={same_site}';</script>",
        unsafe_allow_javascript=True,
    )


def read_cookie(name: str) -> str | None:
    """A cookie of this site as the browser sent it with this page (None in the test harness or when it has none)."""
    try:
        value = st.context.cookies.get(name)
    except Exception:  # noqa: BLE001 (no request context: the test harness)
        return None
    return checked_cookie(value)


def checked_cookie(value) -> str | None:
    """A cookie's value if it is one this app writes (letters, digits and _ . ~ -), else None."""
    return value if isinstance(value, str) and _COOKIE_VALUE.fullmatch(value) else None


def remember_browser() -> None:
    """Write the key into a cookie once per session, unless the browser already sent it."""
    key = browser_key()
    if _cookie_key() == key or st.session_state.get(_COOKIE_SET):
        return
    st.session_state[_COOKIE_SET] = True
    write_cookie(COOKIE, key, 31_536_000)


def client_address() -> str | None:
    """The network address this browser's requests come from (None in the test harness)."""
    try:
        return st.context.ip_address
    except Exception:  # noqa: BLE001 (no request context: the test harness)
        return None


def owner_of(key: str) -> str:
    return "browser:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def browser_owner() -> str:
    """The owner name of this browser's runs."""
    return owner_of(browser_key())
