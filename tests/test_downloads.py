"""The class's results, made by the web server when the teacher's browser asks (`mnistlab_ui.downloads`)."""

from __future__ import annotations

import asyncio
import csv
import io

from starlette.requests import Request

from mnistlab_ui.classroom import TEACHER_COOKIE
from mnistlab_ui.downloads import class_results_response, results_link


def ask(query: str, cookie: str = "", language: str = "en-GB"):
    headers = [(b"accept-language", language.encode())] + ([(b"cookie", cookie.encode())] if cookie else [])
    scope = {"type": "http", "method": "GET", "path": "/class-results.csv", "query_string": query.encode(), "headers": headers}
    return asyncio.run(class_results_response(Request(scope)))


def test_the_teacher_s_browser_gets_the_results_as_they_are_now_and_nobody_else_does():
    """Issue 33: Streamlit's deferred download was deleted by the class's own reruns before the browser fetched it;
    the server now makes the CSV when the teacher's browser asks, and refuses any other browser."""
    from mnistlab.services import services

    classes = services().classes
    info, key = classes.create_class("7C results")
    other, other_key = classes.create_class("7D results")
    classes.join(info.code, "Çağla", "browser:cagla-results")
    token = classes.teacher_token(info.class_id, key)
    assert results_link(info) == f"class-results.csv?class={info.code}"

    answer = ask(f"class={info.code.lower()}", f"{TEACHER_COOKIE}={token}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == f'attachment; filename="class-{info.code.lower()}-results.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.body.decode("utf-8"))))
    assert [row["nickname"] for row in rows] == ["Çağla"]
    classes.join(info.code, "Deniz", "browser:deniz-results")  # made when asked: a later student is in the next one
    rows = list(csv.DictReader(io.StringIO(ask(f"class={info.code}", f"{TEACHER_COOKIE}={token}").body.decode("utf-8"))))
    assert sorted(row["nickname"] for row in rows) == ["Deniz", "Çağla"]

    refused = ask(f"class={info.code}")
    assert refused.status_code == 403 and refused.body.decode().startswith("The class's results are for its teacher")
    assert ask(f"class={info.code}", language="tr-TR").body.decode().startswith("Sınıfın sonuçları öğretmeni içindir")
    another = classes.teacher_token(other.class_id, other_key)
    assert ask(f"class={info.code}", f"{TEACHER_COOKIE}={another}").status_code == 403  # a teacher of another class
    assert ask(f"class={info.code}", f"{TEACHER_COOKIE}={token[:-3]}abc").status_code == 403  # a forged token
    assert ask("class=", f"{TEACHER_COOKIE}={token}").status_code == 403
