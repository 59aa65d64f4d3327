"""Issue #12 D5: an error answer never costs the client its keep-alive connection.

A real server (``python app.py``, uvicorn, started by the benchmarks' shared helper) and a
raw HTTP/1.1 client (http.client) that sends a second request on the same connection
after each answer. uvicorn closes the connection after any exception that reaches it,
even one Starlette's error handler has already answered with a 500: LimitsAndMetrics
answers the errors of the routes and of the middleware inside it, and the outermost
layer (``app.EndAnsweredErrors``) those raised outside it.

The errors outside LimitsAndMetrics are made by a test-only middleware put in the served
app between Starlette's error handler and LimitsAndMetrics, where any other middleware
of the app or a library would sit: a ``sitecustomize`` module on the server's
PYTHONPATH wraps ``create_app`` before uvicorn imports it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
from collections.abc import Iterator

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks.common import Server, running_server
from lookalike.api.app import EndAnsweredErrors
from lookalike.config import Settings
from tests.api.conftest import API_KEY

pytestmark = pytest.mark.dataset

FAULTS = '''
"""Test-only (tests/api/test_keep_alive.py): the header ``X-Test-Fault: before`` makes
a middleware outside LimitsAndMetrics raise before the app answers, ``after`` once the
app has answered in full."""

import lookalike.api.app as served


class Faults:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        fault = dict(scope.get("headers", ())).get(b"x-test-fault")
        if fault == b"before":
            raise RuntimeError("test fault before the app")
        await self.app(scope, receive, send)
        if fault == b"after":
            raise RuntimeError("test fault after the answer")


_create_app = served.create_app


def create_app(settings=None):
    app = _create_app(settings)
    app.add_middleware(Faults)  # the outermost of the app's own middleware
    return app


served.create_app = create_app
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, api_settings: Settings) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("keep-alive")
    (folder / "sitecustomize.py").write_text(FAULTS)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    env = {
        "LOOKALIKE_HOME": str(api_settings.home),
        "LOOKALIKE_MODEL_CACHE": str(api_settings.model_cache),
        "LOOKALIKE_API_KEYS": API_KEY,
        "PYTHONPATH": path,
    }
    with running_server(env, folder / "server.log") as served:
        yield served


def answer_then_next(
    server: Server,
    method: str,
    url: str,
    headers: dict[str, str | bytes] | None = None,
    body: bytes | None = None,
) -> tuple[int, str, bytes]:
    """Send one request and read the answer (status, content type, body); then assert
    that a second request on the same connection is answered."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        r = conn.getresponse()
        answer = (r.status, r.getheader("content-type") or "", r.read())
        sock = conn.sock
        assert sock is not None, f"{method} {url}: {r.status} with Connection: close"
        try:
            conn.request("GET", "/healthz")
            again = conn.getresponse()
            again.read()
        except (http.client.HTTPException, ConnectionError) as exc:
            pytest.fail(f"{method} {url}: the connection was dropped after {r.status} ({exc!r})")
        assert again.status == 200 and conn.sock is sock
        return answer
    finally:
        conn.close()


def server_log(server: Server) -> str:
    assert server.log_file is not None
    return server.log_file.read_text(errors="replace")


def asgi_exceptions(server: Server) -> int:
    """uvicorn's reports of exceptions that reached it (each closed a connection)."""
    return server_log(server).count("Exception in ASGI application")


def test_an_error_raised_outside_limits_and_metrics_is_a_problem_on_an_open_connection(
    server: Server,
) -> None:
    status, media, body = answer_then_next(
        server, "GET", "/api/v1/categories", {"X-Test-Fault": "before"}
    )
    assert status == 500 and media == "application/problem+json", body
    assert b"test fault" not in body  # no internals
    # An error after a full answer (a middleware's own bookkeeping) keeps it too.
    status, _, _ = answer_then_next(server, "GET", "/api/v1/categories", {"X-Test-Fault": "after"})
    assert status == 200
    # Both are logged, with their tracebacks; none reached uvicorn.
    assert server_log(server).count("RuntimeError: test fault") == 2
    assert asgi_exceptions(server) == 0


def multipart(name: str, filename: str, content: bytes) -> tuple[dict[str, str | bytes], bytes]:
    boundary = "keepalivetest"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


def test_odd_requests_are_answered_without_5xx_on_an_open_connection(
    server: Server, api_rows: list[dict[str, str]]
) -> None:
    # Requests a client or a scanner may send, each at a layer outside the routes: the
    # request line, Host, proxy headers, ranges, auth, bodies. None may reach uvicorn as
    # an exception (it would close the connection) or be a 5xx.
    sku = api_rows[0]["id"]
    reached_uvicorn = asgi_exceptions(server)
    form, form_body = multipart("image", "q.jpg", b"this is not a photo")
    cases: list[tuple[str, str, dict[str, str | bytes], bytes | None]] = [
        ("GET", "/api/v1/nope", {}, None),
        ("GET", "/api/v1/nope", {"Host": "["}, None),
        ("GET", "/api/v1/nope", {"Host": "user@host:99999"}, None),
        ("GET", "/api/v1/products/%FF%FE", {}, None),
        ("GET", "/api/v1/products?page=x", {}, None),
        (
            "GET",
            "/api/v1/categories",
            {"X-Forwarded-For": "[[::1, ,,", "X-Forwarded-Proto": "x"},
            None,
        ),
        ("GET", f"/api/v1/images/{sku}", {"Range": "bytes=abc"}, None),
        ("GET", f"/api/v1/images/{sku}", {"Range": "bytes=999999999-"}, None),
        ("GET", f"/api/v1/images/{sku}", {"If-None-Match": b"\xff", "If-Range": "x"}, None),
        ("PUT", "/api/v1/search", {}, None),
        ("DELETE", f"/api/v1/products/{sku}", {}, None),
        ("DELETE", f"/api/v1/products/{sku}", {"Authorization": b"Bearer \xff\xfe"}, None),
        ("POST", "/api/v1/search", {"Content-Type": "multipart/form-data; boundary=x"}, b"junk"),
        ("POST", "/api/v1/search", {"Content-Type": "application/json"}, b"{\xff"),
        ("POST", "/api/v1/search", form, form_body),
    ]
    for method, url, headers, body in cases:
        status, _, answer = answer_then_next(server, method, url, headers, body)
        assert status < 500, f"{method} {url} {headers}: {status} {answer[:300]!r}"
    assert asgi_exceptions(server) == reached_uvicorn


async def _run(app: ASGIApp) -> tuple[list[Message], BaseException | None]:
    """Call ``EndAnsweredErrors(app)`` once; what it sent and what it raised."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
    try:
        await EndAnsweredErrors(app)(scope, receive, send)
    except Exception as exc:
        return sent, exc
    return sent, None


def test_end_answered_errors_ends_only_errors_whose_answer_is_complete() -> None:
    async def fails(send: Send, *messages: Message) -> None:
        for message in messages:
            await send(message)
        raise RuntimeError("boom")

    start: Message = {"type": "http.response.start", "status": 200, "headers": []}
    part: Message = {"type": "http.response.body", "body": b"a", "more_body": True}
    end: Message = {"type": "http.response.body", "body": b"b"}

    async def answered(scope: Scope, receive: Receive, send: Send) -> None:
        await fails(send, start, part, end)

    async def cut_short(scope: Scope, receive: Receive, send: Send) -> None:
        await fails(send, start, part)

    async def unanswered(scope: Scope, receive: Receive, send: Send) -> None:
        await fails(send)

    sent, raised = asyncio.run(_run(answered))
    assert raised is None and len(sent) == 3  # ended: the connection stays open
    sent, raised = asyncio.run(_run(cut_short))
    assert isinstance(raised, RuntimeError)  # uvicorn must close the connection
    sent, raised = asyncio.run(_run(unanswered))
    assert raised is None and sent[0]["status"] == 500
    problem = json.loads(sent[1]["body"])
    assert problem["status"] == 500 and problem["instance"] == "/x" and "boom" not in str(problem)
