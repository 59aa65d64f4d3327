"""POST /imports (background job), GET /imports/{id} (progress and per-row errors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile
from starlette.concurrency import run_in_threadpool

from lookalike.api.imports import ImportRunner
from lookalike.api.problems import Problem
from lookalike.api.schemas import API_PREFIX, ImportJob
from lookalike.api.security import require_reader, require_writer
from lookalike.api.services import Services, services

router = APIRouter(prefix=API_PREFIX, tags=["imports"])


@router.post(
    "/imports",
    response_model=ImportJob,
    status_code=202,
    dependencies=[Depends(require_writer)],
    responses={400: {"description": "Bad upload"}, 401: {"description": "Missing API key"}},
)
async def create_import(
    svc: Annotated[Services, Depends(services)],
    catalog: Annotated[UploadFile, File(description="CSV, JSONL or JSON catalog")],
    images: Annotated[UploadFile | None, File(description="zip of the images")] = None,
) -> ImportJob:
    runner = svc.importer
    assert isinstance(runner, ImportRunner)
    job_id = await run_in_threadpool(
        runner.submit, catalog.filename or "catalog", catalog.file, images.file if images else None
    )
    return await get_import(job_id, svc)


@router.get(
    "/imports/{job_id}",
    response_model=ImportJob,
    dependencies=[Depends(require_reader)],
    responses={404: {"description": "Unknown job"}},
)
async def get_import(job_id: str, svc: Annotated[Services, Depends(services)]) -> ImportJob:
    job = await run_in_threadpool(svc.engine.job, job_id)
    if job is None:
        raise Problem(404, f"no import job {job_id!r}")
    return ImportJob.model_validate(job)
