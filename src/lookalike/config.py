"""All settings in one place; every field can be set from the environment as LOOKALIKE_<NAME>."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lookalike.models.specs import DEFAULT_MODEL

Preprocessing = Literal["trim", "pad", "crop"]
Pooling = Literal["gap", "gem"]


class Settings(BaseSettings):
    """Runtime settings. Environment variables use the prefix ``LOOKALIKE_``."""

    model_config = SettingsConfigDict(env_prefix="LOOKALIKE_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".lookalike"), description="Folder for the database, index and models")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file catalog.db in the home folder"
    )
    model_cache: Path | None = Field(
        None, description="Folder for exported ONNX models; default: models/ in the home folder"
    )

    # Embedding model. The defaults were chosen with `lookalike evaluate` (docs/evaluation.md).
    model: str = Field(
        DEFAULT_MODEL,
        description="lite0-int8, lite0, lite2 (lookalike.models.SPECS), or a fine-tuned version "
        "(lookalike models list)",
    )
    preprocessing: Preprocessing = "trim"
    pooling: Pooling = "gap"
    # 0.09 with the CIELAB descriptor is at least main's HSV 0.1 on P@10, MAP@R and
    # colour@10 on the dev set and both its halves (docs/evaluation.md "Aspects").
    color_weight: float = Field(0.09, ge=0.0, le=1.0, description="Share of colour in similarity")
    texture_weight: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of texture in similarity (shape has the rest); above 0 stores a "
        "texture part that queries can weigh (docs/evaluation.md 'Aspects')",
    )
    colour_space: Literal["lab", "hsv"] = Field(
        "lab", description="Colour descriptor: lab (default) or hsv (catalogs embedded before)"
    )
    batch_size: int = Field(32, ge=1, le=1024)
    threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 = CPU count")
    decode_workers: int = Field(0, ge=0, description="Image decoding threads; 0 = automatic")

    # Image limits: anything larger is refused before it is decoded.
    max_image_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(50_000_000, ge=1024)

    # Index.
    exact_search_max: int = Field(
        20_000, ge=0, description="Catalogs up to this size use exact search; larger ones IVF"
    )
    ann_target_recall: float = Field(0.95, gt=0.0, le=1.0)
    faiss_kind: Literal["ivf", "ivfpq"] = Field(
        "ivf",
        description="FAISS kind past exact_search_max: ivf or ivfpq (compressed, docs/indexes.md)",
    )
    part_scans: bool = Field(
        True,
        description="Keep the colour part of every vector in RAM (~0.6 KB a product) so that "
        "colour-weighted searches of an approximate index skip the full scan (index/parts.py)",
    )
    index_backend: Literal["faiss", "annoy", "milvus"] = Field(
        "faiss", description="Product index: faiss (default), annoy or milvus (docs/indexes.md)"
    )
    annoy_trees: int = Field(32, ge=1, le=1024, description="Annoy: trees in the forest")
    annoy_delta_max: int = Field(
        2_000, ge=0, description="Annoy: writes searched exactly before they fold into the forest"
    )
    milvus_uri: str | None = Field(
        None, description="Milvus server URI or Milvus Lite file; default: index/milvus.db in home"
    )
    milvus_token: str = Field("", description="Milvus token (user:password or API key)")
    milvus_collection: str = Field(
        "lookalike", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Milvus collection prefix"
    )
    milvus_ef: int = Field(128, ge=1, description="Milvus HNSW search breadth (ef)")

    # Photo search: local features and geometric verification (docs/evaluation.md).
    local_features: bool = Field(
        True, description="Extract local features at ingest and verify photo matches"
    )
    verify_local_candidates: int = Field(
        8, ge=0, le=100, description="Products the photo's local descriptors vote for, verified"
    )
    verify_global_candidates: int = Field(
        4, ge=0, le=100, description="Nearest products by global vector, also verified"
    )
    verify_min_votes: int = Field(
        2, ge=1, description="Photo descriptors that must vote for a product to verify it"
    )
    exact_min_inliers: int = Field(
        15, ge=4, description="RANSAC inliers for an exact match (see docs/evaluation.md)"
    )
    exact_min_coverage: float = Field(
        0.3, ge=0.0, le=1.0, description="Share of the product the inliers must span (each axis)"
    )
    exact_min_structure: float = Field(
        0.4,
        ge=-1.0,
        le=1.0,
        description="Gradient correlation of photo and catalog image where they matched",
    )
    exact_max_recoloured: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of the matched region in another colour (studio-lit pictures only)",
    )
    zoom: bool = Field(
        True,
        description="When nothing matches a whole photo, look again at its centre in finer detail",
    )
    zoom_corners: bool = Field(
        False,
        description="The second look goes on to the photo's four corners when its centre "
        "matches nothing either",
    )
    vote_weight: float = Field(
        0.5,
        ge=0.0,
        description="Weight of the photo's local votes in the similar ranking (0 = cosine only)",
    )

    # HTTP API.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
    change_check_ms: float = Field(
        100.0, ge=0.0, description="How often a worker looks for other workers' writes"
    )
    access_log: bool = Field(
        False, description="Log every request (/metrics counts them either way)"
    )
    api_keys: str = Field("", description="Comma-separated keys that may write (Bearer)")
    public_reads: bool = Field(True, description="Reads need no key when true")
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS")
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    max_import_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    max_batch: int = Field(4, ge=1, le=256, description="Largest micro-batch of searches")
    inference_streams: int = Field(
        0, ge=0, le=64, description="Model calls the API runs at once; 0 = automatic"
    )
    max_batch_wait_ms: float = Field(
        0.0,
        ge=0.0,
        description="How long a batch waits to fill; 0 = it holds what queued while the "
        "model was busy",
    )
    web_dir: Path = Field(Path("web/dist"), description="Built front end served at /")
    allow_private_urls: bool = Field(
        False, description="Let image_url reach loopback/private addresses (tests, intranets)"
    )
    url_timeout_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _shares_fit(self) -> Settings:
        if self.color_weight + self.texture_weight > 1:
            raise ValueError(
                f"color_weight ({self.color_weight:g}) and texture_weight "
                f"({self.texture_weight:g}) share one similarity: together at most 1"
            )
        return self

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file inside the home folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'catalog.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def model_dir(self) -> Path:
        return self.model_cache or self.home / "models"

    @property
    def onnx_threads(self) -> int:
        return self.threads or (os.cpu_count() or 1)

    @property
    def api_streams(self) -> int:
        """Parallel model calls in the API server (automatic: 2 when there are 2 cores)."""
        return self.inference_streams or min(2, os.cpu_count() or 1)

    def for_api(self) -> Settings:
        """These settings as the API server uses them: unless ``threads`` is set, each
        inference stream gets its share of the cores, not all of them."""
        if self.threads:
            return self
        share = max(1, (os.cpu_count() or 1) // self.api_streams)
        return self.model_copy(update={"threads": share})


def get_settings() -> Settings:
    """Settings read from the environment (and a .env file in the working folder)."""
    return Settings()
