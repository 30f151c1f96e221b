"""The web server MNIST Lab runs in: Streamlit's own, with one guard in front (`streamlit run mnistlab_ui/asgi.py`).

Streamlit answers `/_stcore/metrics` to anyone: about 240 lines naming its internal
caches and their sizes, of use to nobody in a classroom but the server's administrator.
There is no setting to turn it off, so this ASGI app (Streamlit's `st.App`, which runs
`app.py` exactly as `streamlit run app.py` does) keeps that address to the server
itself: a request from any other machine gets 404. Everything else passes through.

As it starts, the server warms what the first pages need (`mnistlab_ui.warm_up`), so the first
student after a restart waits no longer than the second. It also answers the class's results
for its teacher (`mnistlab_ui.downloads`), made when they are asked for.
"""

from __future__ import annotations

import contextlib
import ipaddress

import streamlit as st
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mnistlab.serving import app_script
from mnistlab_ui import downloads, warm_up

APP_SCRIPT = app_script()  # the checkout's app.py, or the installed one (`pip install .`)
PRIVATE_PATHS = ("/_stcore/metrics",)


def from_this_machine(client: tuple | None) -> bool:
    """Whether a request's client address is a loopback one (IPv4, IPv6, or IPv4 mapped into IPv6)."""
    host = (client or ("", 0))[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class PrivatePaths:
    """ASGI middleware: the server's internal figures only for requests from the server itself."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and scope.get("path", "").rstrip("/").endswith(PRIVATE_PATHS) and not from_this_machine(scope.get("client")):
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def warm_at_start(_app):
    """Start warming the server (on a thread of its own: the server answers meanwhile)."""
    warm_up.start()
    yield


app = st.App(
    str(APP_SCRIPT),
    lifespan=warm_at_start,
    middleware=[Middleware(PrivatePaths)],
    routes=[Route(downloads.RESULTS_PATH, downloads.class_results_response)],
)
