"""Files made when they are asked for, served by the web server itself: the class's results for its teacher.

Streamlit's deferred download (`st.download_button(data=callable)`) makes a file at the
click and then keeps it referenced by no session, so the next two script runs of any
session delete it. On a class's server, with the teacher's race refreshing every 2 s and
25 students' pages looking for the teacher's step every 1.5 s, the teacher's CSV was gone
before the browser fetched it (a browser test saw "canceled" under load). Here the
server answers `/class-results.csv?class=CODE` itself, with the class's results as they
are at that moment, to a browser whose teacher cookie holds a token of that class (the
address has nothing secret in it); anyone else gets 403 and a sentence saying why.
"""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from mnistlab.class_identity import normalise_code
from mnistlab.class_results import result_rows, results_csv
from mnistlab.classroom import ClassInfo
from mnistlab.i18n import N_, translations
from mnistlab_ui.classroom import TEACHER_COOKIE, teacher_tokens
from mnistlab_ui.identity import checked_cookie
from mnistlab_ui.server import lab

RESULTS_PATH = "/class-results.csv"
REFUSED = N_(
    "The class's results are for its teacher: open them from the teacher's dashboard, in the browser that started the "
    "class or opened its teacher link."
)


def class_results(info: ClassInfo) -> str:
    """The class's results as CSV (`mnistlab.class_results`): its members and the runs of each."""
    services = lab()
    members = services.classes.members(info.class_id)
    runs = {member.owner: services.jobs.runs_of(member.owner) for member in members}
    return results_csv(result_rows(members, runs, time.time()))


def results_link(info: ClassInfo) -> str:
    """The address of the class's results, relative to the page (the Class page is at the app's root)."""
    return f"{RESULTS_PATH.lstrip('/')}?class={info.code}"


def file_name(info: ClassInfo) -> str:
    return f"class-{info.code.lower()}-results.csv"


def teachers_class(code: str, cookie_header: str) -> ClassInfo | None:
    """The class with this code if the cookie holds a teacher token of it, else None."""
    code = normalise_code(code)
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header or "")
    except Exception:  # noqa: BLE001 - a cookie header that cannot be read holds no token
        return None
    value = checked_cookie(cookies[TEACHER_COOKIE].value) if TEACHER_COOKIE in cookies else None
    if not code or value is None:
        return None
    classes = lab().classes
    for token in teacher_tokens(value):
        info = classes.class_of_token(token)
        if info is not None and info.code == code:
            return info
    return None


async def class_results_response(request) -> Response:
    """`/class-results.csv?class=CODE`: the results, made now, for the class's teacher's browser."""

    def made() -> tuple[ClassInfo, str] | None:
        info = teachers_class(request.query_params.get("class", ""), request.headers.get("cookie", ""))
        return None if info is None else (info, class_results(info))

    found = await run_in_threadpool(made)
    if found is None:
        language = "tr" if request.headers.get("accept-language", "").strip().lower().startswith("tr") else "en"
        return PlainTextResponse(translations(language).gettext(REFUSED), status_code=403)
    info, text = found
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{file_name(info)}"', "Cache-Control": "no-store"},
    )
