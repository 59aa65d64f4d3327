"""The product-index backend the settings name (``LOOKALIKE_INDEX_BACKEND``)."""

from __future__ import annotations

from lookalike.config import Settings
from lookalike.index.base import IndexBackend, IndexBackendError


def create_backend(settings: Settings) -> IndexBackend:
    """FAISS (default), Annoy or Milvus, with their settings. Annoy's and Milvus's client
    libraries are extras (``pip install 'lookalike[annoy]'``, ``[milvus]``), imported only
    when chosen; IndexBackendError naming the setting when they are not installed."""
    if settings.index_backend == "annoy":
        try:
            from lookalike.index.annoy_backend import AnnoyBackend
        except ImportError as exc:
            raise _not_installed("annoy", exc) from exc

        return AnnoyBackend(
            settings.annoy_trees, settings.annoy_delta_max, settings.ann_target_recall
        )
    if settings.index_backend == "milvus":
        try:
            from lookalike.index.milvus_backend import MilvusBackend
        except ImportError as exc:
            raise _not_installed("milvus", exc) from exc

        uri = settings.milvus_uri or str((settings.index_dir / "milvus.db").resolve())
        return MilvusBackend(
            uri, settings.milvus_token, settings.milvus_collection, settings.milvus_ef
        )
    from lookalike.index.vector_index import FaissBackend

    return FaissBackend(settings.exact_search_max, settings.ann_target_recall, settings.faiss_kind)


def _not_installed(backend: str, exc: ImportError) -> IndexBackendError:
    return IndexBackendError(
        f"LOOKALIKE_INDEX_BACKEND={backend} needs {exc.name or 'its client library'}, "
        f"which is not installed: pip install 'lookalike[{backend}]'"
    )
