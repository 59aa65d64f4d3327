"""Request and response models of the API."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, TypeAdapter
from starlette.responses import Response

from lookalike.search.searcher import DEFAULT_K, MAX_K, SearchHit
from lookalike.store.catalog import ProductData
from lookalike.store.fields import MAX_LENGTH, no_nul

API_PREFIX = "/api/v1"

# A product's text as a write takes it: no NUL and no longer than its column, the rule the
# catalog readers apply too (store/fields.py), so that both databases give the same 422.
ProductText = Annotated[str, AfterValidator(no_nul)]
SkuText = Annotated[ProductText, StringConstraints(min_length=1, max_length=MAX_LENGTH["sku"])]
CategoryText = Annotated[ProductText, StringConstraints(max_length=MAX_LENGTH["category"])]
CurrencyText = Annotated[ProductText, StringConstraints(max_length=MAX_LENGTH["currency"])]


class Product(BaseModel):
    sku: str
    title: str | None = None
    category: str | None = None
    price: float | None = None
    currency: str | None = None
    url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    image_url: str
    thumbnail_url: str
    image_width: int | None = None
    image_height: int | None = None

    @classmethod
    def of(cls, p: ProductData) -> Product:
        image = f"{API_PREFIX}/images/{quote(p.sku, safe='')}"
        return cls(
            sku=p.sku,
            title=p.title,
            category=p.category,
            price=p.price,
            currency=p.currency,
            url=p.url,
            metadata=p.attributes,
            image_url=image,
            thumbnail_url=f"{image}?size=thumb",
            image_width=p.image_width,
            image_height=p.image_height,
        )


class SearchResult(BaseModel):
    score: float = Field(
        description="Visual similarity to the query photo; for similar products listed after "
        "an exact match, similarity to that matched product"
    )
    match: Literal["exact", "similar"] = Field(
        "similar",
        description="exact: the photo shows this very product (verified by local features); "
        "similar: a look-alike",
    )
    inliers: int | None = Field(
        None,
        description="Local-feature matches consistent with one view of the product "
        "(the verification score); null when the result was not verified",
    )
    product: Product

    @classmethod
    def of(cls, hit: SearchHit) -> SearchResult:
        return cls(
            score=round(hit.score, 5),
            match=hit.match,
            inliers=hit.inliers,
            product=Product.of(hit.product),
        )


class Crop(BaseModel):
    """A region of the query photo, in pixels of the upright image."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(gt=0)
    h: int = Field(gt=0)


class SearchRequest(BaseModel):
    """JSON body of POST /search (the multipart form has the same fields)."""

    image_url: str | None = Field(None, max_length=2048)
    image_base64: str | None = None
    crop: Crop | None = None
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K)
    category: str | None = Field(None, max_length=MAX_LENGTH["category"])
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)


class SearchResponse(BaseModel):
    results: list[SearchResult]
    took_ms: float
    query: dict[str, Any]


_RESULTS = TypeAdapter(list[SearchResult])


def json_response(content: SearchResponse | list[SearchResult]) -> Response:
    """Serialise a search answer once. (Returned as a model, FastAPI would dump it,
    validate the dump against the response model and dump it again: a third of a
    search's Python time.) The route's ``response_model`` still documents it."""
    body = (
        content.model_dump_json() if isinstance(content, BaseModel) else _RESULTS.dump_json(content)
    )
    return Response(body, media_type="application/json")


class ProductPage(BaseModel):
    items: list[Product]
    total: int
    page: int
    page_size: int


class Category(BaseModel):
    name: str
    count: int


class ImportJob(BaseModel):
    id: str
    status: str
    total: int
    processed: int
    added: int
    updated: int
    unchanged: int
    errors: list[dict[str, Any]]
    message: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
