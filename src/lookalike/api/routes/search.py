"""POST /search: a photo in (upload, base64 or URL), similar products out."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from lookalike.api.fetch import fetch_image
from lookalike.api.problems import Problem, invalid_input
from lookalike.api.queries import CachedQuery
from lookalike.api.schemas import (
    API_PREFIX,
    AspectScores,
    Crop,
    QueryInfo,
    SearchRequest,
    SearchResponse,
    SearchResult,
    Swatch,
    json_response,
)
from lookalike.api.security import require_reader
from lookalike.api.services import Services, services
from lookalike.engine import SearchSession
from lookalike.images.loader import LoadedImage
from lookalike.images.query import combine
from lookalike.search.aspects import MAX_WEIGHT, MIN_WEIGHT, palette
from lookalike.search.feedback import MAX_FEEDBACK
from lookalike.search.photo import PhotoQuery
from lookalike.search.searcher import DEFAULT_K, MAX_K, Filters, SearchHit

router = APIRouter(prefix=API_PREFIX, tags=["search"], dependencies=[Depends(require_reader)])

_FORM_SCHEMA = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "The query photo"},
        "crop": {"type": "string", "description": "x,y,w,h in pixels", "example": "0,0,100,100"},
        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K},
        "category": {"type": "string"},
        "min_price": {"type": "number", "minimum": 0},
        "max_price": {"type": "number", "minimum": 0},
        "group_listings": {"type": "boolean", "default": True},
        **{
            aspect: {"type": "number", "minimum": MIN_WEIGHT, "maximum": MAX_WEIGHT}
            for aspect in ("shape", "colour", "texture")
        },
        **{
            marks: {"type": "array", "items": {"type": "string"}, "maxItems": MAX_FEEDBACK}
            for marks in ("positive", "negative")
        },
    },
}
# The body is read by hand (a form or JSON), so FastAPI does not see SearchRequest: the app
# registers these models in its schema itself (app.py), or the reference above is dangling.
BODY_MODELS = (SearchRequest,)
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _FORM_SCHEMA},
            "application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}},
        },
    }
}


@router.post(
    "/search",
    response_model=SearchResponse,
    openapi_extra=_OPENAPI,
    summary="Find the products that look most like a photo",
    responses={
        400: {"description": "Bad parameters or corrupt image"},
        413: {"description": "Image too large"},
        415: {"description": "Not an image"},
        422: {"description": "Validation error"},
    },
)
async def search(request: Request, svc: Services = Depends(services)) -> Response:
    start = time.perf_counter()
    params, data, source = await _read_query(request, svc)
    lo, hi = params.min_price, params.max_price
    if lo is not None and hi is not None and lo > hi:
        raise Problem(400, "min_price is larger than max_price")
    if data is None:
        ids, queries, session = await svc.run(_remembered, svc, params)
    else:
        query, session = await _embedded(svc, data, source, params.crop)
        queries, ids = [query], [svc.queries.put(query)]
    first = queries[0]
    weights = params.weights.resolve(session.layout)  # a weight it cannot use: 400 now
    filters = Filters(params.category, params.min_price, params.max_price)
    vector = combine(np.stack([q.vector for q in queries]))

    def find() -> list[SearchHit]:
        refinement = svc.engine.refinement(params.weights, params.feedback, session)
        photos = [PhotoQuery(q.features, q.zoom) for q in queries]
        return svc.engine.search_photo(
            vector, photos, params.k, filters, session, refinement, params.group_listings
        )

    hits = await svc.run(find)
    svc.metrics.searches.labels("image").inc()
    answer = SearchResponse(
        results=[SearchResult.of(h) for h in hits],
        took_ms=round((time.perf_counter() - start) * 1000, 2),
        query=QueryInfo(
            id=ids[0],
            photos=len(queries),
            width=first.width,
            height=first.height,
            crop=first.crop,
            k=params.k,
            aspects=AspectScores(**{a: round(w, 4) for a, w in weights.items()}),
            colours=[Swatch(hex=h, share=s) for h, s in palette(vector, session.layout)],
        ),
    )
    return json_response(answer)


async def _embedded(
    svc: Services, data: bytes, source: str, crop: Crop | None
) -> tuple[CachedQuery, SearchSession]:
    """Embed a photo (cut to ``crop``) and describe it, ready to be searched and kept;
    with the session it was embedded in."""
    query = await svc.embed(
        data, source, (lambda img: _crop(img, crop)) if crop is not None else None
    )
    # A region the user drew is the product: no second look at the photo's centre.
    zoom = svc.engine.zoom(data, source, query.image) if crop is None else None
    features = query.features
    held = (len(data) if zoom is not None else 0) + (features.nbytes if features else 0)
    image = query.image
    cached = CachedQuery(
        query.vector,
        features,
        query.session.version,
        image.width,
        image.height,
        crop,
        zoom,
        held,
    )
    return cached, query.session


def _remembered(
    svc: Services, params: SearchRequest
) -> tuple[list[str], list[CachedQuery], SearchSession]:
    """The photos of earlier searches (``query_id`` or ``query_ids``), if this server
    still has them for the model version it searches with; and the session (today's
    index) to search them in. Blocks on the engine: run it off the event loop."""
    if params.crop is not None:
        raise Problem(422, "a crop needs the photo: send it again instead of query_id")
    if params.query_id is not None and params.query_ids:
        raise Problem(422, "give query_id or query_ids, not both")
    ids = params.query_ids or [params.query_id or ""]
    svc.engine.refresh_if_stale(svc.settings.change_check_ms / 1000)
    session = svc.engine.session()
    found = []
    for query_id in ids:
        query = svc.queries.get(query_id)
        if query is None or query.version != session.version:
            raise Problem(
                404,
                f"query {query_id!r} is unknown or expired: send the photo again",
                code="query_expired",
                query_id=query_id,
            )
        found.append(query)
    return ids, found, session


async def _read_query(request: Request, svc: Services) -> tuple[SearchRequest, bytes | None, str]:
    """The parameters and the photo (None: the request names an earlier one)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = svc.settings.max_upload_bytes
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=16 + 2 * MAX_FEEDBACK)
        fields: dict[str, Any] = {
            k: v for k, v in form.items() if isinstance(v, str) and v != "" and k != "image"
        }
        for marks in ("positive", "negative"):  # repeated fields, one SKU each
            if marks in fields:
                fields[marks] = [v for v in form.getlist(marks) if isinstance(v, str) and v]
        if "crop" in fields:
            fields["crop"] = _parse_crop(fields["crop"])
        if "query_id" in fields or "query_ids" in fields:
            raise Problem(422, "query_id(s) are for JSON bodies; a form uploads the photo")
        params = _validate(fields)
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            msg = "a file is required (multipart field 'image')"
            raise invalid_input([{"loc": ["body", "image"], "msg": msg}])
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise Problem(413, f"image larger than {limit} bytes")
        return params, data, upload.filename or "upload"
    if ctype == "application/json":
        body = await request.body()
        try:
            params = SearchRequest.model_validate_json(body or b"{}")
        except ValidationError as exc:
            raise invalid_input(exc.errors()) from None
        if params.query_id is not None or params.query_ids:
            if params.image_base64 or params.image_url:
                raise Problem(422, "give query_id(s) or a photo, not both")
            return params, None, "query_id"
        if params.image_base64:
            return params, _decode_base64(params.image_base64, limit), "image_base64"
        if params.image_url:
            url = params.image_url
            data = await run_in_threadpool(
                lambda: fetch_image(
                    url,
                    max_bytes=svc.settings.max_image_bytes,
                    timeout=svc.settings.url_timeout_s,
                    allow_private=svc.settings.allow_private_urls,
                )
            )
            return params, data, url
        raise Problem(
            422, "give image_base64, image_url or query_id (or upload a multipart 'image')"
        )
    raise Problem(
        415, "send multipart/form-data with an 'image' file, or JSON with image_url/image_base64"
    )


def _validate(fields: dict[str, Any]) -> SearchRequest:
    try:
        return SearchRequest.model_validate(fields)
    except ValidationError as exc:
        raise invalid_input(exc.errors()) from None


def _parse_crop(text: str) -> dict[str, int]:
    try:
        x, y, w, h = (int(float(v)) for v in text.split(","))
    except (ValueError, OverflowError):  # not numbers, or inf / 1e400
        raise Problem(400, f"crop must be 'x,y,w,h' in pixels, not {text!r}") from None
    return {"x": x, "y": y, "w": w, "h": h}


def _decode_base64(text: str, limit: int) -> bytes:
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]  # a data URL
    if len(text) > limit * 4 // 3 + 4:
        raise Problem(413, f"image larger than {limit} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "image_base64 is not valid base64") from None


def _crop(image: LoadedImage, crop: Crop) -> LoadedImage:
    if crop.x + crop.w > image.width or crop.y + crop.h > image.height:
        raise Problem(
            400,
            f"crop {crop.x},{crop.y},{crop.w},{crop.h} lies outside the "
            f"{image.width}x{image.height} image",
        )
    # The box is in the file's pixels; a big JPEG was decoded smaller (loader target_size).
    sx, sy = image.pixels.width / image.width, image.pixels.height / image.height
    left, top = round(crop.x * sx), round(crop.y * sy)
    right = max(left + 1, round((crop.x + crop.w) * sx))
    bottom = max(top + 1, round((crop.y + crop.h) * sy))
    pixels = image.pixels.crop((left, top, right, bottom))
    return dataclasses.replace(image, pixels=pixels, width=crop.w, height=crop.h)
