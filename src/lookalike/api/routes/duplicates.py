"""GET /duplicates: groups of products whose photos are the same or nearly."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from lookalike.api.schemas import API_PREFIX, DuplicateGroup, DuplicatePage
from lookalike.api.security import require_reader
from lookalike.api.services import Services, services
from lookalike.search.duplicates import DEFAULT_THRESHOLD, MIN_THRESHOLD, Duplicates

router = APIRouter(prefix=API_PREFIX, tags=["products"], dependencies=[Depends(require_reader)])


@router.get(
    "/duplicates",
    response_model=DuplicatePage,
    summary="Groups of products whose photos are the same or nearly the same",
    responses={422: {"description": "Validation error"}},
)
async def list_duplicates(
    svc: Annotated[Services, Depends(services)],
    threshold: Annotated[
        float,
        Query(
            ge=MIN_THRESHOLD,
            le=1.0,
            description="Cosine of the global vectors a pair needs before its pictures are "
            "compared; lower finds more heavily edited copies, for more comparisons",
        ),
    ] = DEFAULT_THRESHOLD,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DuplicatePage:
    def find() -> Duplicates:
        svc.engine.refresh_if_stale(svc.settings.change_check_ms / 1000)
        return svc.engine.duplicates(threshold)

    # The whole catalog's groups are computed once per catalog state and threshold (the
    # engine keeps the run), then served a page at a time. Not on the search executor:
    # a first run over a large catalog takes seconds to minutes and must not hold a
    # search thread.
    found = await run_in_threadpool(find)
    start = (page - 1) * page_size
    return DuplicatePage(
        groups=[DuplicateGroup.of(g) for g in found.groups[start : start + page_size]],
        total=len(found.groups),
        page=page,
        page_size=page_size,
        threshold=found.threshold,
        products=found.products,
        unreadable=len(found.unreadable),
    )
