"""Products: browse, "more like this", and writes (API key) effective at once."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from lookalike.api.problems import Problem
from lookalike.api.schemas import (
    API_PREFIX,
    Category,
    CategoryText,
    CurrencyText,
    Product,
    ProductPage,
    ProductText,
    SearchResult,
    SimilarParams,
    SkuText,
    json_response,
)
from lookalike.api.security import require_reader, require_writer
from lookalike.api.services import Embedded, Services, services
from lookalike.errors import ProductNotFoundError
from lookalike.search.searcher import Filters, SearchHit
from lookalike.store.catalog import ProductData
from lookalike.store.fields import MAX_LENGTH

router = APIRouter(prefix=API_PREFIX, tags=["products"])
read = [Depends(require_reader)]


@router.get("/products", response_model=ProductPage, dependencies=read)
async def list_products(
    svc: Annotated[Services, Depends(services)],
    category: Annotated[str | None, Query(max_length=MAX_LENGTH["category"])] = None,
    q: Annotated[str | None, Query(max_length=200, description="title contains")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 48,
) -> ProductPage:
    items, total = await run_in_threadpool(
        svc.engine.browse, category, q, (page - 1) * page_size, page_size
    )
    return ProductPage(
        items=[Product.of(p) for p in items], total=total, page=page, page_size=page_size
    )


@router.get("/categories", response_model=list[Category], dependencies=read)
async def categories(svc: Annotated[Services, Depends(services)]) -> list[Category]:
    rows = await run_in_threadpool(svc.engine.categories)
    return [Category(name=n, count=c) for n, c in rows]


@router.get(
    "/products/{sku:path}/similar",
    response_model=list[SearchResult],
    dependencies=read,
    responses={404: {"description": "Unknown SKU"}},
)
async def similar(
    sku: str,
    svc: Annotated[Services, Depends(services)],
    params: Annotated[SimilarParams, Query()],
) -> Response:
    def find() -> list[SearchHit]:
        svc.engine.refresh_if_stale(svc.settings.change_check_ms / 1000)
        filters = Filters(params.category)
        return svc.engine.similar(
            sku, params.k, filters, params.weights, params.feedback, params.group_listings
        )

    hits = await svc.run(find)
    svc.metrics.searches.labels("similar").inc()
    return json_response([SearchResult.of(h) for h in hits])


@router.get(
    "/products/{sku:path}",
    response_model=Product,
    dependencies=read,
    responses={404: {"description": "Unknown SKU"}},
)
async def get_product(sku: str, svc: Annotated[Services, Depends(services)]) -> Product:
    product = await run_in_threadpool(svc.engine.product, sku)
    if product is None:
        raise ProductNotFoundError(sku)
    return Product.of(product)


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None or text == "":
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Problem(422, f"metadata must be a JSON object: {exc.msg}") from None
    if not isinstance(value, dict):
        raise Problem(422, "metadata must be a JSON object")
    return value


async def _image(svc: Services, upload: UploadFile) -> tuple[Embedded, bytes]:
    limit = svc.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise Problem(413, f"image larger than {limit} bytes")
    return await svc.embed(data, upload.filename or "upload", catalog=True), data


_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    403: {"description": "Writes disabled"},
    413: {"description": "Image too large"},
    415: {"description": "Not an image"},
}


def product_fields(
    title: Annotated[ProductText | None, Form(max_length=2000)] = None,
    category: Annotated[CategoryText | None, Form()] = None,
    price: Annotated[float | None, Form(ge=0)] = None,
    currency: Annotated[CurrencyText | None, Form()] = None,
    url: Annotated[ProductText | None, Form(max_length=2048)] = None,
    metadata: Annotated[str | None, Form(description="JSON object")] = None,
) -> dict[str, Any]:
    """The product fields a create or update form may carry (those given only)."""
    given = {
        "title": title,
        "category": category,
        "price": price,
        "currency": currency,
        "url": url,
        "attributes": _metadata(metadata),
    }
    return {k: v for k, v in given.items() if v is not None}


async def _stored_image(svc: Services, upload: UploadFile) -> tuple[dict[str, Any], Embedded]:
    """Decode, embed and keep an uploaded image: its product fields, vector and local
    features."""
    embedded, data = await _image(svc, upload)
    loaded = embedded.image
    path = await run_in_threadpool(svc.store_upload, loaded, data)
    fields = {
        "image_path": str(path),
        "image_sha256": loaded.sha256,
        "image_width": loaded.width,
        "image_height": loaded.height,
    }
    return fields, embedded


@router.post(
    "/products",
    response_model=Product,
    status_code=201,
    dependencies=[Depends(require_writer)],
    responses={**_WRITE_RESPONSES, 409: {"description": "SKU exists"}},
)
async def create_product(
    svc: Annotated[Services, Depends(services)],
    sku: Annotated[SkuText, Form()],
    image: Annotated[UploadFile, File()],
    fields: Annotated[dict[str, Any], Depends(product_fields)],
) -> Product:
    if await run_in_threadpool(svc.engine.product, sku) is not None:
        raise Problem(409, f"a product with SKU {sku!r} exists; use PUT to change it")
    image_fields, embedded = await _stored_image(svc, image)
    product = ProductData(sku=sku, **image_fields, **fields)
    stored = await run_in_threadpool(
        svc.engine.upsert_product, product, embedded.vector, embedded.features
    )
    return Product.of(stored)


@router.put(
    "/products/{sku:path}",
    response_model=Product,
    dependencies=[Depends(require_writer)],
    responses={**_WRITE_RESPONSES, 404: {"description": "Unknown SKU"}},
)
async def update_product(
    sku: str,
    svc: Annotated[Services, Depends(services)],
    fields: Annotated[dict[str, Any], Depends(product_fields)],
    image: Annotated[UploadFile | None, File()] = None,
) -> Product:
    """Change the given fields (others stay); a new image is re-embedded."""
    current = await run_in_threadpool(svc.engine.product, sku)
    if current is None:
        raise ProductNotFoundError(sku)
    embedded = None
    if image is not None and (image.filename or image.size):
        image_fields, embedded = await _stored_image(svc, image)
        fields = {**fields, **image_fields}
    updated = ProductData(**{**current.__dict__, **fields})
    stored = await run_in_threadpool(
        svc.engine.upsert_product,
        updated,
        embedded.vector if embedded else None,
        embedded.features if embedded else None,
    )
    return Product.of(stored)


@router.delete(
    "/products/{sku:path}",
    status_code=204,
    dependencies=[Depends(require_writer)],
    responses={
        401: {"description": "Missing or invalid API key"},
        404: {"description": "Unknown SKU"},
    },
)
async def delete_product(sku: str, svc: Annotated[Services, Depends(services)]) -> Response:
    deleted = await run_in_threadpool(lambda: svc.engine.delete([sku], save=False))
    if not deleted:
        raise ProductNotFoundError(sku)
    return Response(status_code=204)
