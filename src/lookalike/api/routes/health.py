"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from lookalike.api.services import Services, services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready"}})
async def readyz(svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        count = await run_in_threadpool(svc.engine.embedded_count)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        count = None
    checks["model"] = "ok" if svc.engine.model_loaded else "not loaded"
    index_size = svc.engine.index_size
    checks["index"] = (
        "ok" if count is not None and index_size == count else f"{index_size} vs database {count}"
    )
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(svc: Annotated[Services, Depends(services)]) -> Response:
    svc.metrics.index_size.set(svc.engine.index_size or 0)
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
