"""Similarity search over the catalog: by image or by product, with filters."""

from lookalike.search.searcher import Filters, Searcher, SearchHit

__all__ = ["Filters", "SearchHit", "Searcher"]
