"""The FastAPI application: ``create_app()`` for ASGI servers, ``serve()`` to run it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike import __version__
from lookalike.api import problems
from lookalike.api.batcher import MicroBatcher
from lookalike.api.imports import ImportRunner
from lookalike.api.metrics import Metrics
from lookalike.api.routes import duplicates, health, images, imports, products, search
from lookalike.api.schemas import API_PREFIX
from lookalike.api.services import SWEEP_MIN_AGE_S, Services, every
from lookalike.config import Settings, get_settings
from lookalike.engine import Engine
from lookalike.errors import LookalikeError
from lookalike.models.network import resolve_network

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. The model and the index load once, at start-up."""
    settings = (settings or get_settings()).for_api()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await run_in_threadpool(Engine, settings)
        # Load the model and the indexes now, not on the first request.
        await run_in_threadpool(lambda: (engine.embedder, engine.index, engine.local_index))
        metrics = Metrics()
        batcher = MicroBatcher(
            settings.max_batch,
            settings.max_batch_wait_ms,
            metrics.batch_size.observe,
            streams=settings.api_streams,
        )
        await batcher.start()
        importer = ImportRunner(engine, settings)
        importer.start()
        app.state.services = svc = Services(settings, engine, batcher, metrics, importer)
        if not settings.api_key_list:
            log.warning("no API key configured (LOOKALIKE_API_KEYS): writes are refused")
        # The database is the truth: the index file is saved now and then, and files no
        # product uses are swept hourly.
        jobs = [
            asyncio.create_task(every(30.0, engine.flush_index)),
            asyncio.create_task(every(SWEEP_MIN_AGE_S, svc.sweep_files)),
        ]
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            importer.stop()
            await batcher.stop()
            svc.cpu.shutdown(wait=True)
            await run_in_threadpool(engine.close)

    app = _App(
        title="lookalike",
        version=__version__,
        description="Visual product search: find the catalog products that look alike a photo.",
        lifespan=lifespan,
        docs_url=None,  # ours below: its assets from this server, not a CDN
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    problems.install(app)
    _mount_docs(app, settings)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    # Added last, the outermost of the app's own middleware: it answers every error from
    # within (routes, handlers, CORS) with a problem. EndAnsweredErrors (_App) wraps even
    # Starlette's own layers, for the errors raised outside this one.
    app.add_middleware(LimitsAndMetrics, settings=settings)
    for module in (search, products, duplicates, images, imports):
        app.include_router(module.router)
    _register_body_models(app, search.BODY_MODELS)
    app.include_router(health.router)
    _mount_front_end(app, settings)
    return app


class _App(FastAPI):
    """FastAPI with :class:`EndAnsweredErrors` around its whole middleware stack."""

    def build_middleware_stack(self) -> ASGIApp:
        return EndAnsweredErrors(super().build_middleware_stack())


def _register_body_models(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Add request models that routes read by hand to the app's OpenAPI components (with
    the models they use), as FastAPI does for the ones it reads itself."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(definition.pop("$defs", {}))
            components[model.__name__] = definition
        # FastAPI lists components by name: so do we, so the committed copy diffs cleanly.
        schema["components"]["schemas"] = dict(sorted(components.items()))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_docs(app: FastAPI, settings: Settings) -> None:
    """Swagger UI at /docs. Its script and styles come from the web build
    (``web/dist/docs-assets``, npm swagger-ui-dist): FastAPI's default loads them from a
    CDN, which leaves a blank page without internet. Without a build, the CDN it is."""
    assets = settings.web_dir / "docs-assets"
    local = (assets / "swagger-ui-bundle.js").is_file()
    openapi, title = f"{API_PREFIX}/openapi.json", "lookalike API"
    if local:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")
    else:
        log.info("no Swagger UI assets at %s: /docs loads them from a CDN", assets)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not local:
            return get_swagger_ui_html(openapi_url=openapi, title=title)
        return get_swagger_ui_html(
            openapi_url=openapi,
            title=title,
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/favicon.svg",
        )


def _mount_front_end(app: FastAPI, settings: Settings) -> None:
    """Serve the built React app at / (assets with long caching, index.html for every
    other non-API path so client-side routes survive a reload)."""
    index = settings.web_dir / "index.html"
    if not index.is_file():
        log.info("no front end at %s (build it with `make web`)", settings.web_dir)
        return
    assets = settings.web_dir / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")
    page = index.read_text()
    # The build's top-level files (the icon), by name: nothing else is reachable this way.
    files = {p.name: p for p in settings.web_dir.iterdir() if p.is_file() and p != index}

    # Not under /api/: an API path asked with the wrong method (GET /api/v1/search) is
    # then the router's 405, and an unknown one its 404, as without the front end.
    @app.get("/{path:page}", include_in_schema=False)
    async def front_end(path: str) -> Response:
        if path in files:
            return FileResponse(files[path], headers={"Cache-Control": "public, max-age=86400"})
        # API paths and other file-like paths (a missing asset) are real 404s.
        if (
            path.startswith(("docs", "metrics", "healthz", "readyz"))
            or "." in (path.rsplit("/", 1)[-1])
        ):
            raise StarletteHTTPException(404)
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


class _PagePath(PathConvertor):
    """A client-side route of the front end: any path but the API's."""

    regex = r"(?!api/|api$).*"


register_url_convertor("page", _PagePath())


class LimitsAndMetrics:
    """Refuse bodies over the size limit before reading them; answer unexpected errors
    with a 500 problem; time every request. (Plain ASGI: cheaper than BaseHTTPMiddleware
    on the hot path.)"""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        imports = scope["path"].startswith(f"{API_PREFIX}/imports")
        stated = self.settings.max_import_bytes if imports else self.settings.max_upload_bytes
        limit = stated + (1024 * 1024 if imports else 64 * 1024)  # room for the form fields

        async def too_large() -> None:
            detail = problems.body_limit_detail(stated)
            await problems.problem_response(request, 413, detail)(scope, receive, send)

        length = request.headers.get("content-length")
        # isascii: "²".isdigit() is true, and int() of it fails.
        if length is not None and (
            not (length.isascii() and length.isdigit()) or int(length) > limit
        ):
            await too_large()
            return
        start = time.perf_counter()
        status = 500
        received = 0
        started = False

        async def counting_receive() -> Message:
            # Bodies without a Content-Length (chunked) are counted as they arrive.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise problems.BodyTooLargeError(stated)
            return message

        async def send_and_record(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, counting_receive, send_and_record)
        except problems.BodyTooLargeError:
            if started:
                raise
            status = 413
            await too_large()
        except Exception as exc:
            # Answered here, the error ends here (and is timed as a 500). Left to Starlette's
            # handler for Exception it would be answered and then re-raised, to be ended by
            # EndAnsweredErrors: uvicorn closes the connection after any error it sees.
            if started:
                raise  # too late for a problem document; the connection has to go
            status = 500
            await problems.unexpected_response(request, exc)(scope, receive, send)
        finally:
            svc: Services | None = getattr(scope["app"].state, "services", None)
            if svc is not None:
                route = getattr(scope.get("route"), "path", None) or _route_path(scope)
                svc.metrics.latency.labels(scope["method"], route, str(status)).observe(
                    time.perf_counter() - start
                )


class EndAnsweredErrors:
    """The outermost layer, around Starlette's ServerErrorMiddleware: an error answered
    in full ends here, so that uvicorn keeps the connection open (issue #12 D5).

    LimitsAndMetrics answers the errors raised inside it. One raised outside it (by a
    middleware around it, such as a library's, or by LimitsAndMetrics's own code)
    reaches ServerErrorMiddleware, which answers it with the handler for Exception (a
    500 problem, logged there: problems.py) and then always re-raises it; uvicorn would
    log it again and close the connection, so the client's next request on it would fail.
    An error before any answer (the handler itself failed) gets a plain 500 problem here.
    One in the middle of an answer still goes on to uvicorn: the headers are out, and
    only closing the connection tells the client that the answer is cut short."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = complete = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, complete
            await send(message)
            kind = message["type"]
            if kind == "http.response.start":
                started = True
            elif kind == "http.response.pathsend" or (
                kind == "http.response.body" and not message.get("more_body", False)
            ):
                complete = True

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if complete:
                return
            if started:
                raise
            path = scope.get("path", "")
            log.error("unhandled error on %s (its handler failed)", path, exc_info=exc)
            await problems.internal_error(path)(scope, receive, send)


def serve(host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    """Run the API with uvicorn (settings give the defaults)."""
    import uvicorn

    settings = get_settings()
    try:  # a model name that means nothing stops here with a sentence, not a traceback
        resolve_network(settings.model, settings.model_dir)
    except LookalikeError as exc:
        raise SystemExit(f"error: {exc}") from None
    uvicorn.run(
        "lookalike.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level="info",
        # A log line per request costs as much as the HTTP parsing; off unless asked for.
        access_log=settings.access_log,
    )


def _route_path(scope: Scope) -> str:
    """The path template of the route that answered, for the routes that do not record
    themselves in the scope (FastAPI's docs and schema); "unmatched" for none."""
    for route in scope["app"].routes:
        if isinstance(route, Route) and route.matches(scope)[0] == Match.FULL:
            return route.path
    return "unmatched"
