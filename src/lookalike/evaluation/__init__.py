"""Retrieval quality: leave-one-out metrics, reports and result grids."""
