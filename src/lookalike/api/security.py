"""API keys: writes need one; reads are public unless settings say otherwise.

The dependencies are ``async`` though they never wait: FastAPI runs plain ``def``
dependencies in a worker thread, a hand-off that costs more than the check itself."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request

from lookalike.api.problems import Problem
from lookalike.api.services import Services, services


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _valid(key: str | None, keys: list[str]) -> bool:
    if key is None:
        return False
    # Compare against every key, always, in constant time per key.
    matches = [hmac.compare_digest(key.encode(), k.encode()) for k in keys]
    return any(matches)


async def require_writer(request: Request, svc: Services = Depends(services)) -> None:
    keys = svc.settings.api_key_list
    if not keys:
        raise Problem(403, "writes are disabled: the server has no API key (LOOKALIKE_API_KEYS)")
    key = _presented_key(request)
    if key is None:
        raise Problem(401, "this operation needs an API key: Authorization: Bearer <key>")
    if not _valid(key, keys):
        raise Problem(401, "invalid API key")


async def require_reader(request: Request, svc: Services = Depends(services)) -> None:
    if svc.settings.public_reads:
        return
    if not _valid(_presented_key(request), svc.settings.api_key_list):
        raise Problem(401, "reads need an API key on this server: Authorization: Bearer <key>")
