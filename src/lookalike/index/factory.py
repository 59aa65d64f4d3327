"""The product-index backend the settings name (``LOOKALIKE_INDEX_BACKEND``)."""

from __future__ import annotations

from lookalike.config import Settings
from lookalike.index.base import IndexBackend


def create_backend(settings: Settings) -> IndexBackend:
    """FAISS (default), Annoy or Milvus, with their settings. Annoy's and Milvus's client
    libraries are imported only when chosen."""
    if settings.index_backend == "annoy":
        from lookalike.index.annoy_backend import AnnoyBackend

        return AnnoyBackend(
            settings.annoy_trees, settings.annoy_delta_max, settings.ann_target_recall
        )
    if settings.index_backend == "milvus":
        from lookalike.index.milvus_backend import MilvusBackend

        uri = settings.milvus_uri or str((settings.index_dir / "milvus.db").resolve())
        return MilvusBackend(
            uri, settings.milvus_token, settings.milvus_collection, settings.milvus_ef
        )
    from lookalike.index.vector_index import FaissBackend

    return FaissBackend(settings.exact_search_max, settings.ann_target_recall, settings.faiss_kind)
