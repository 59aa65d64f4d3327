"""Product images: originals and cached thumbnails, with ETag and Cache-Control."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from lookalike.api.problems import Problem
from lookalike.api.schemas import API_PREFIX
from lookalike.api.security import require_reader
from lookalike.api.services import Services, etag_for, services
from lookalike.errors import ImageError, ProductNotFoundError

router = APIRouter(prefix=API_PREFIX, tags=["images"], dependencies=[Depends(require_reader)])
MEDIA = {
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
}


@router.get(
    "/images/{sku:path}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The image"},
        304: {"description": "Not modified"},
        404: {"description": "Unknown SKU or image missing"},
    },
)
async def product_image(
    sku: str,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    size: Annotated[Literal["original", "thumb"], Query()] = "original",
) -> Response:
    # The file path comes from the database, never from the request.
    product = await run_in_threadpool(svc.engine.product, sku)
    if product is None:
        raise ProductNotFoundError(sku)
    etag = etag_for(product.image_sha256, size)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    source = Path(product.image_path)
    if not source.is_file():
        raise Problem(404, f"the image file of {sku!r} is missing on the server")
    if size == "thumb":
        try:
            path = await run_in_threadpool(svc.thumbnail, source, product.image_sha256)
        except ImageError as exc:
            raise Problem(404, f"the image of {sku!r} cannot be read: {exc.reason}") from None
        return FileResponse(path, media_type="image/jpeg", headers=headers)
    media = MEDIA.get(source.suffix.lower().lstrip("."), "application/octet-stream")
    return FileResponse(source, media_type=media, headers=headers)
