"""k-NN index over the catalog's embeddings, kept consistent with the database.

One protocol (:class:`ProductIndex`, built and opened by an :class:`IndexBackend`), three
backends: FAISS (default), Annoy, Milvus; :func:`create_backend` picks one from settings.
"""

from lookalike.index.base import (
    IndexBackend,
    IndexBackendError,
    IndexManifest,
    ProductIndex,
)
from lookalike.index.factory import create_backend
from lookalike.index.manager import IndexManager, SyncReport
from lookalike.index.vector_index import FaissBackend, VectorIndex, ids_checksum

__all__ = [
    "FaissBackend",
    "IndexBackend",
    "IndexBackendError",
    "IndexManager",
    "IndexManifest",
    "ProductIndex",
    "SyncReport",
    "VectorIndex",
    "create_backend",
    "ids_checksum",
]
