"""Which browsers have a page of this server open now: their connected Streamlit sessions, for the job manager.

A run no page has asked about for a minute is cancelled (its tab was closed), so it stops
holding the queue. A page asks by rerunning (its live view every second), but with a class
of 30 pressing Train at once a page's reruns can fall far behind, and 3 of 30 open tabs
lost their runs that way. So the job manager also asks `page_open(owner)`: whether any
session of that browser is still connected. Streamlit's runtime knows which sessions are
connected (a closed tab disconnects at once); each page run records its session under its
browser's owner (`record`).
"""

from __future__ import annotations

import threading

_sessions: dict[str, set[str]] = {}
_lock = threading.Lock()


def _runtime():
    from streamlit.runtime import Runtime

    return Runtime.instance() if Runtime.exists() else None


def record(owner: str) -> None:
    """This page run's session belongs to `owner` (called on every run of app.py)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    if context is None:
        return
    with _lock:
        _sessions.setdefault(owner, set()).add(context.session_id)


def page_open(owner: str) -> bool:
    """Whether a session of `owner` is connected now (any thread; sessions that ended are forgotten here)."""
    runtime = _runtime()
    if runtime is None:
        return False
    with _lock:
        sessions = list(_sessions.get(owner, ()))
    connected = {session for session in sessions if runtime.is_active_session(session)}
    with _lock:
        if owner in _sessions:
            _sessions[owner] &= connected | (_sessions[owner] - set(sessions))  # keep sessions recorded meanwhile
            if not _sessions[owner]:
                del _sessions[owner]
    return bool(connected)
