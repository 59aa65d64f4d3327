"""The catalog database: products and their embeddings (the source of truth)."""

from lookalike.store.catalog import CatalogStore, ProductData, ProductFields, StoredEmbedding
from lookalike.store.models import Embedding, Product

__all__ = [
    "CatalogStore",
    "Embedding",
    "Product",
    "ProductData",
    "ProductFields",
    "StoredEmbedding",
]
