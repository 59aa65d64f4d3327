"""Prometheus metrics (one registry per app, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "lookalike_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5),
        )
        self.searches = Counter(
            "lookalike_searches_total", "Searches answered", ["kind"], registry=self.registry
        )
        self.batch_size = Histogram(
            "lookalike_embedding_batch_size",
            "Images per model call",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64),
        )
        self.index_size = Gauge(
            "lookalike_index_products", "Products in the similarity index", registry=self.registry
        )
