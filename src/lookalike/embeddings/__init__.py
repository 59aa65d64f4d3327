"""From pictures to embedding vectors."""

from lookalike.embeddings.embedder import (
    Embedder,
    EmbedderConfig,
    OnnxEmbedder,
    PreparedImage,
    create_embedder,
)
from lookalike.embeddings.pipeline import EmbedResult, embed_stream

__all__ = [
    "EmbedResult",
    "Embedder",
    "EmbedderConfig",
    "OnnxEmbedder",
    "PreparedImage",
    "create_embedder",
    "embed_stream",
]
