"""Photo-query metrics, checked by hand on made-up outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.errors import CatalogFileError
from lookalike.evaluation.queries import QueryOutcome, read_queries, summarise


def _o(sku: str, group: str, rank: int | None, exact: list[str], in_catalog: bool = True,
       cats: list[bool] | None = None) -> QueryOutcome:  # fmt: skip
    return QueryOutcome(
        f"{sku}.jpg",
        sku,
        group,
        in_catalog,
        rank,
        None,
        None,
        exact,
        exact[:1],
        cats or [],
        seconds=0.1,
    )


def test_recall_exact_and_open_set_by_hand() -> None:
    outcomes = [
        _o("a", "canon", 1, ["a"]),
        _o("b", "canon", 3, ["x"]),  # wrong exact claim, right product third
        _o("c", "palm", None, []),
        _o("d", "palm", 1, []),
        _o("e", "", None, ["y"], in_catalog=False, cats=[True, False]),
        _o("f", "", None, [], in_catalog=False, cats=[False, False]),
    ]
    r = summarise(outcomes)
    assert r["overall"] == {"queries": 4, "recall@1": 0.5, "recall@5": 0.75, "recall@10": 0.75}
    assert r["per_group"]["canon"]["recall@1"] == 0.5
    assert r["per_group"]["palm"]["recall@5"] == 0.5
    assert r["exact"] == {"claimed": 2, "precision": 0.5, "recall": 0.25}
    assert r["open_set"] == {"queries": 2, "false_exact_rate": 0.5}
    assert r["category"]["open_set"] == {"queries": 2, "category@1": 0.5, "category@10": 0.25}
    assert r["latency_ms"] == {"p50": 100.0, "p99": 100.0}


def test_query_files(tmp_path: Path) -> None:
    f = tmp_path / "q.csv"
    f.write_text("file,product_id,device\nphotos/a.jpg,a,canon\n/abs/b.jpg,b,palm\n")
    q = read_queries(f)
    assert q[0].image == tmp_path / "photos/a.jpg" and q[0].sku == "a" and q[0].group == "canon"
    assert q[1].image == Path("/abs/b.jpg")
    (tmp_path / "empty.csv").write_text("image,sku\n")
    with pytest.raises(CatalogFileError, match="no queries"):
        read_queries(tmp_path / "empty.csv")
    with pytest.raises(CatalogFileError):
        read_queries(tmp_path / "missing.csv")


def test_a_listing_of_the_first_exact_result_is_a_right_claim() -> None:
    """The photographed product shown as a listing (the same photo under another SKU) of
    the first, exact result: found first, and the exact claim is right."""
    listed = QueryOutcome("a.jpg", "a", "", True, 1, "a-copy", "exact", ["a-copy", "a"],
                          ["a-copy", "a"], [True])  # fmt: skip
    wrong = QueryOutcome("b.jpg", "b", "", True, None, "x", "exact", ["x", "x-copy"],
                         ["x", "x-copy"], [False])  # fmt: skip
    r = summarise([listed, wrong])
    assert r["exact"] == {"claimed": 2, "precision": 0.5, "recall": 0.5}
