"""k-NN index over the catalog's embeddings (FAISS), kept consistent with the database."""

from lookalike.index.manager import IndexManager, SyncReport
from lookalike.index.vector_index import IndexManifest, VectorIndex, ids_checksum

__all__ = ["IndexManager", "IndexManifest", "SyncReport", "VectorIndex", "ids_checksum"]
