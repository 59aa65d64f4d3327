"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lookalike.errors import (
    AspectError,
    CatalogFileError,
    CorruptImageError,
    FeedbackError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ModelVersionError,
    NotAnImageError,
    ProductNotFoundError,
    UnknownCategoryError,
)

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


class BodyTooLargeError(Exception):
    """Raised while a request body is read, once it passes the size limit (``limit``:
    the configured one, as the README states it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(body_limit_detail(limit))


def body_limit_detail(limit: int) -> str:
    """The 413 message: the limit in the unit the settings and README use."""
    return f"request body over the {limit / 2**20:g} MiB limit"


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, detail: str, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.extra = extra


def invalid_input(errors: Sequence[Any]) -> Problem:
    """The one 422 shape for query, form and JSON fields alike: ``errors`` as
    ``[{"loc": [...], "msg": ...}]`` and a ``detail`` that joins them (pydantic's
    error dicts, or dicts with just ``loc`` and ``msg``)."""
    listed = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors
    ]
    detail = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in listed)
    return Problem(422, detail or "invalid request", errors=listed)


def problem_response(
    request: Request, status: int, detail: str, title: str | None = None, **extra: Any
) -> JSONResponse:
    return _problem(request.url.path, status, detail, title, **extra)


def _problem(
    path: str, status: int, detail: str, title: str | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": path,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


INTERNAL_ERROR = "internal error; see the server log"


def unexpected_response(request: Request, exc: BaseException) -> JSONResponse:
    """Log an error no handler expected; answer 500 without internals (the SQL, paths)."""
    log.error("unhandled error on %s", request.url.path, exc_info=exc)
    return problem_response(request, 500, INTERNAL_ERROR)


def internal_error(path: str) -> JSONResponse:
    """The 500 problem of :func:`unexpected_response`, made of nothing but the path (for
    an error whose handler failed: the request may be what it could not read)."""
    return _problem(path, 500, INTERNAL_ERROR)


_IMAGE_STATUS: dict[type[ImageError], int] = {
    ImageTooLargeError: 413,
    NotAnImageError: 415,
    CorruptImageError: 400,
    ImageNotFoundError: 400,
}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, exc.title, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI reports any failure while parsing a form as 400; a body cut off at the
        # size limit is a 413.
        if isinstance(exc.__cause__, BodyTooLargeError):
            return problem_response(request, 413, str(exc.__cause__))
        response = problem_response(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})  # a 405's Allow, for one
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        invalid = invalid_input(exc.errors())
        return problem_response(request, 422, invalid.detail, **invalid.extra)

    @app.exception_handler(ImageError)
    async def _image(request: Request, exc: ImageError) -> JSONResponse:
        status = _IMAGE_STATUS.get(type(exc), 400)
        return problem_response(request, status, str(exc), code=exc.code)

    @app.exception_handler(ProductNotFoundError)
    async def _missing(request: Request, exc: ProductNotFoundError) -> JSONResponse:
        return problem_response(request, 404, str(exc))

    @app.exception_handler(UnknownCategoryError)
    async def _category(request: Request, exc: UnknownCategoryError) -> JSONResponse:
        return problem_response(request, 404, str(exc), category=exc.category)

    @app.exception_handler(AspectError)
    async def _aspects(request: Request, exc: AspectError) -> JSONResponse:
        return problem_response(request, 400, str(exc), code="aspect_weights")

    @app.exception_handler(FeedbackError)
    async def _feedback(request: Request, exc: FeedbackError) -> JSONResponse:
        return problem_response(request, 422, str(exc), code="feedback")

    @app.exception_handler(CatalogFileError)
    async def _catalog(request: Request, exc: CatalogFileError) -> JSONResponse:
        return problem_response(request, 400, str(exc))

    @app.exception_handler(ModelVersionError)
    async def _version(request: Request, exc: ModelVersionError) -> JSONResponse:
        return problem_response(request, 409, str(exc))

    # Only for errors raised outside LimitsAndMetrics (app.py), which answers the others:
    # those of a middleware around it, or its own. Starlette re-raises them after this
    # handler has answered; EndAnsweredErrors (app.py), the outermost layer, ends them
    # there, so that uvicorn does not close the connection.
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(request, exc)
