"""Request and response models of the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from starlette.responses import Response

from lookalike.search import duplicates
from lookalike.search.aspects import MAX_WEIGHT, MIN_WEIGHT, AspectWeights
from lookalike.search.feedback import MAX_FEEDBACK, Feedback
from lookalike.search.photo import MAX_PHOTOS
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
    image_url: str = Field(description="Its photo (the CLI's --json: the file, as a file: URI)")
    thumbnail_url: str
    image_width: int | None = None
    image_height: int | None = None

    @classmethod
    def of(cls, p: ProductData, *, files: bool = False) -> Product:
        """The product as answers show it. ``files``: its photo as a ``file:`` URI (the
        CLI, which reads the catalog's own files) instead of the API's image route."""
        if files:
            image = thumbnail = Path(p.image_path).absolute().as_uri()
        else:
            image = f"{API_PREFIX}/images/{quote(p.sku, safe='')}"
            thumbnail = f"{image}?size=thumb"
        return cls(
            sku=p.sku,
            title=p.title,
            category=p.category,
            price=p.price,
            currency=p.currency,
            url=p.url,
            metadata=p.attributes,
            image_url=image,
            thumbnail_url=thumbnail,
            image_width=p.image_width,
            image_height=p.image_height,
        )


class Swatch(BaseModel):
    """One dominant colour of a picture's product (background excluded)."""

    hex: str = Field(description="#rrggbb", examples=["#cc2828"])
    share: float = Field(description="Share of the product's pixels near this colour")


class AspectScores(BaseModel):
    """How alike two pictures are in each aspect (cosine, 1 = the same); an aspect the
    catalog was embedded without is absent."""

    shape: float | None = None
    colour: float | None = None
    texture: float | None = None


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
    aspects: AspectScores | None = Field(
        None,
        description="Similarity in each aspect to what the result was ranked against (the "
        "photo, or the exactly matched product for the similar products after it)",
    )
    colours: list[Swatch] = Field(default_factory=list, description="Its dominant colours")
    product: Product
    listings: list[Product] = Field(
        default_factory=list,
        description="Other products with the same photo (byte-identical, or a re-encoded, "
        "resized, cropped, mirrored or recoloured copy), ranked lower: part of this result, "
        "not results of their own",
    )

    @classmethod
    def of(cls, hit: SearchHit, *, files: bool = False) -> SearchResult:
        """``files``: as :meth:`Product.of`."""
        return cls(
            score=round(hit.score, 5),
            match=hit.match,
            inliers=hit.inliers,
            aspects=AspectScores(**hit.aspects) if hit.aspects is not None else None,
            colours=[Swatch(hex=h, share=s) for h, s in hit.colours],
            product=Product.of(hit.product, files=files),
            listings=[Product.of(p, files=files) for p in hit.listings],
        )


def _weight(aspect: str) -> Any:
    return Field(
        None,
        ge=MIN_WEIGHT,
        le=MAX_WEIGHT,
        description=f"How much {aspect} counts, {MIN_WEIGHT:g}..{MAX_WEIGHT:g} (only the "
        "ratios of the weights matter); default: the catalog's blend",
    )


class AspectParams(BaseModel):
    """Per-query weights of the aspects of "looks alike" (search/aspects.py)."""

    model_config = ConfigDict(extra="forbid")

    shape: float | None = _weight("shape (the CNN features: form, silhouette, style)")
    colour: float | None = _weight("colour (the product's colour distribution)")
    texture: float | None = _weight("texture (pattern: stripes, checks, print, weave)")

    @model_validator(mode="after")
    def _not_all_zero(self) -> AspectParams:
        given = [v for v in (self.shape, self.colour, self.texture) if v is not None]
        if len(given) == 3 and not any(given):
            raise ValueError("at least one aspect weight must be above 0")
        return self

    @property
    def weights(self) -> AspectWeights:
        return AspectWeights(self.shape, self.colour, self.texture)


class RefineParams(AspectParams):
    """Aspect weights plus the shopper's "more like this" / "less like this" marks."""

    positive: list[SkuText] = Field(
        default_factory=list,
        max_length=MAX_FEEDBACK,
        description='SKUs marked "more like this": results move towards them',
    )
    negative: list[SkuText] = Field(
        default_factory=list,
        max_length=MAX_FEEDBACK,
        description='SKUs marked "less like this": results move away from them, and they '
        "are not shown again",
    )
    group_listings: bool = Field(
        True,
        description="Show the listings of one photo (near-duplicates under other SKUs) as "
        "one result, with the others in its listings, so that k results are k distinct "
        "photos; false: each near-duplicate is a result of its own (byte-identical images "
        "are one result either way)",
    )

    @model_validator(mode="after")
    def _few_marks(self) -> RefineParams:
        marks = len(self.positive) + len(self.negative)
        if marks > MAX_FEEDBACK:
            raise ValueError(f"at most {MAX_FEEDBACK} products may be marked, not {marks}")
        return self

    @property
    def feedback(self) -> Feedback:
        return Feedback(tuple(self.positive), tuple(self.negative))


class Crop(BaseModel):
    """A region of the query photo, in pixels of the upright image."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(gt=0)
    h: int = Field(gt=0)


class SimilarParams(RefineParams):
    """Query parameters of GET /products/{sku}/similar (unknown ones are refused)."""

    k: int = Field(DEFAULT_K, ge=1, le=MAX_K)
    category: str | None = Field(None, max_length=MAX_LENGTH["category"])


class SearchRequest(RefineParams):
    """JSON body of POST /search (the multipart form has the same fields but
    ``query_id``)."""

    image_url: str | None = Field(None, max_length=2048)
    image_base64: str | None = None
    query_id: str | None = Field(
        None,
        max_length=64,
        description="Search again with the photo of an earlier answer's query.id (other "
        "weights or filters, no upload); 404 once the server has forgotten it",
    )
    query_ids: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list,
        max_length=MAX_PHOTOS,
        description="Several earlier photos (their query.id) as one query: one product "
        "from several sides, or 'things like these'",
    )
    crop: Crop | None = None
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K)
    category: str | None = Field(None, max_length=MAX_LENGTH["category"])
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)


class QueryInfo(BaseModel):
    """What was searched for."""

    id: str = Field(
        description="Send as query_id to search with this photo again (for several photos: "
        "the first one's)"
    )
    photos: int = Field(1, description="Photos the query combines")
    width: int
    height: int
    crop: Crop | None = None
    k: int
    aspects: AspectScores = Field(description="The aspect weights used (summing to 1)")
    colours: list[Swatch] = Field(description="The photo's dominant colours")


class SearchResponse(BaseModel):
    results: list[SearchResult]
    took_ms: float
    query: QueryInfo


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


class DuplicateGroup(BaseModel):
    """Products whose photos are the same picture or nearly (re-encoded, resized, cropped,
    mirrored, a small colour shift)."""

    similarity: float = Field(
        description="Cosine of the global vectors along the group's weakest link "
        "(1 when every photo is byte-identical)"
    )
    identical: bool = Field(description="Every photo in the group is byte-identical")
    products: list[Product] = Field(description="The group's products, oldest first")

    @classmethod
    def of(cls, group: duplicates.DuplicateGroup, *, files: bool = False) -> DuplicateGroup:
        """``files``: as :meth:`Product.of`."""
        return cls(
            similarity=group.similarity,
            identical=group.identical,
            products=[Product.of(p, files=files) for p in group.products],
        )


class DuplicatePage(BaseModel):
    groups: list[DuplicateGroup] = Field(description="Largest groups first, then most alike")
    total: int = Field(description="Groups found")
    page: int
    page_size: int
    threshold: float
    products: int = Field(description="Products in the catalog")
    unreadable: int = Field(description="Products whose photo could not be read (not compared)")


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
