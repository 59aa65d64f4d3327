"""The ``lookalike`` command line. Verbs follow the pipeline: ingest, search, similar,
duplicates, delete, index, stats, evaluate, reembed."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.errors import AspectError, CatalogFileError, FeedbackError, LookalikeError
from lookalike.ingest.pipeline import RecordEmbedder
from lookalike.search.aspects import MAX_WEIGHT, MIN_WEIGHT, AspectWeights
from lookalike.search.duplicates import DEFAULT_THRESHOLD, MIN_THRESHOLD, Duplicates
from lookalike.search.feedback import Feedback
from lookalike.search.searcher import DEFAULT_K, MAX_K, Filters, SearchHit
from lookalike.store.catalog import ProductData

app = typer.Typer(
    help="lookalike: find the catalog products that look most alike a photo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
index_app = typer.Typer(help="Build or check the similarity index.", no_args_is_help=True)
app.add_typer(index_app, name="index")
models_app = typer.Typer(help="Fine-tuned model versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages stay one line: grep-able
_state: dict[str, Any] = {}


@app.callback()
def main(
    home: Path | None = typer.Option(
        None, envvar="LOOKALIKE_HOME", help="Data folder (database, index, models)."
    ),
    database_url: str | None = typer.Option(
        None, envvar="LOOKALIKE_DATABASE_URL", help="SQLAlchemy URL; default SQLite in home."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", envvar="LOOKALIKE_VERBOSE"),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    if database_url is not None:
        overrides["database_url"] = database_url
    _state["settings"] = Settings(**overrides)


@contextmanager
def _engine() -> Iterator[Engine]:
    try:
        engine = Engine(_state["settings"])
    except Exception as exc:  # a database that cannot be reached is fatal, say so plainly
        err.print(f"[red]error:[/] cannot open the catalog database: {escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        yield engine
    except LookalikeError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    finally:
        engine.close()


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(label, total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            if speed:
                bar.update(task, rate=f"{speed:.0f} img/s")

        yield advance


@app.command()
def ingest(
    path: Path = typer.Argument(..., help="Folder of images, or a CSV/JSONL catalog."),
    show_failures: int = typer.Option(
        20, envvar="LOOKALIKE_SHOW_FAILURES", help="Failures listed."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray",
        envvar="LOOKALIKE_RAY",
        metavar="auto|ADDRESS",
        help="Embed on a Ray cluster: auto (the one this machine joined), HOST:PORT of its "
        "head node, or ray://HOST:PORT. Writes stay here. Needs the 'ray' extra.",
    ),
    ray_workers: int = typer.Option(
        0, envvar="LOOKALIKE_RAY_WORKERS", min=0, help="Ray workers (0: one per CPU)."
    ),
) -> None:
    """Add or update the products of a catalog (idempotent: unchanged ones are skipped)."""
    from lookalike.ingest.readers import read_catalog

    with _engine() as engine, ExitStack() as stack:
        catalog = read_catalog(path)
        err.print(f"{len(catalog.records)} products read from {escape(str(path))}")
        if conflict := engine.settings_conflict():
            err.print(f"[yellow]note:[/] {escape(conflict)}")
        embed = None
        if ray_address is not None:
            embed = stack.enter_context(_ray_embedding(ray_address, engine, ray_workers))
        with _progress("ingest", len(catalog.records)) as advance:
            summary = engine.ingest(catalog.records, advance, embed=embed)
        failures = catalog.errors + summary.failed
        table = Table(title="ingest summary", show_header=False)
        embedded = (
            f"{summary.embedded} at {summary.images_per_second:.1f} images/s"
            if summary.embedded
            else f"nothing to embed ({summary.unchanged} unchanged)"
        )
        for label, value in (
            ("added", summary.added),
            ("updated", summary.updated),
            ("unchanged", summary.unchanged),
            ("failed", len(failures)),
            ("embedded", embedded),
            ("catalog size", len(engine.index)),
        ):
            table.add_row(label, str(value))
        err.print(table)
        for f in failures[:show_failures]:
            err.print(f"[yellow]failed[/] {escape(f'{f.source} (sku {f.sku}): {f.reason}')}")
        if len(failures) > show_failures:
            err.print(f"... and {len(failures) - show_failures} more failures")
        if engine.last_sync and engine.last_sync.rebuilt and not engine.last_sync.first_build:
            reason = escape(str(engine.last_sync.reason))
            err.print(f"[yellow]index was rebuilt from the database:[/] {reason}")


@contextmanager
def _ray_embedding(address: str, engine: Engine, workers: int) -> Iterator[RecordEmbedder]:
    """Ray ingest's embedding hook, connected (ray is imported only here, only with --ray)."""
    try:
        import ray  # noqa: F401  (ray_ingest imports it lazily: check it is installed)

        from lookalike.ingest.ray_ingest import RayEmbedding
    except ImportError as exc:  # ray missing: say how to get it
        hint = escape(f"pip install 'lookalike[ray]' ({exc})")
        err.print(f"[red]error:[/] --ray needs Ray: {hint}")
        raise typer.Exit(2) from None
    ray_embed = RayEmbedding(address, engine.settings, workers=workers)
    try:
        ray_embed.connect()
    except LookalikeError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        err.print(f"embedding on Ray at {address} with {ray_embed.worker_count()} workers")
        yield ray_embed
    finally:
        ray_embed.close()


def _weight_option(aspect: str, what: str) -> Any:
    return typer.Option(
        None,
        f"--{aspect}",
        min=MIN_WEIGHT,
        max=MAX_WEIGHT,
        help=f"How much {what} counts, {MIN_WEIGHT:g}..{MAX_WEIGHT:g} (only the ratios "
        "matter); default: the catalog's blend.",
    )


_SHAPE = _weight_option("shape", "shape (form, silhouette, style)")
_COLOUR = _weight_option("colour", "colour")
_TEXTURE = _weight_option("texture", "texture (pattern)")
_MORE = typer.Option(
    [], "--more", metavar="SKU", help="More like this product (repeat for several)."
)
_LESS = typer.Option(
    [], "--less", metavar="SKU", help="Less like this product; never shown (repeatable)."
)
_GROUP_LISTINGS = typer.Option(
    True,
    "--group-listings/--no-group-listings",
    envvar="LOOKALIKE_GROUP_LISTINGS",
    help="Show the listings of one photo (near-duplicates under other SKUs) as one "
    "result, so that k results are k distinct photos; byte-identical images are one "
    "result either way.",
)


def _weights(shape: float | None, colour: float | None, texture: float | None) -> AspectWeights:
    """The options as weights; all zero is a usage error before anything opens."""
    if (shape, colour, texture) == (0, 0, 0):
        err.print("[red]error:[/] at least one aspect weight must be above 0")
        raise typer.Exit(2)
    return AspectWeights(shape, colour, texture)


@contextmanager
def _aspect_errors() -> Iterator[None]:
    """Weights or marks that cannot be used are a usage error (exit 2), as bad options
    are."""
    try:
        yield
    except (AspectError, FeedbackError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _hits_json(hits: list[SearchHit]) -> list[dict[str, Any]]:
    """Results as the API's documents (api/schemas.SearchResult: one definition for both),
    the photos as ``file:`` URIs."""
    # Imported here: the API's models take ~0.1 s to import, which a table need not wait.
    from lookalike.api.schemas import SearchResult

    return [SearchResult.of(h, files=True).model_dump(mode="json") for h in hits]


def _print_hits(title: str, hits: list[SearchHit]) -> None:
    table = Table(title=title)
    aspects = list(hits[0].aspects or {}) if hits else []
    for col in ("#", "match", "score", *aspects, "sku", "title", "category", "price"):
        table.add_column(col)
    for i, h in enumerate(hits, 1):
        p = h.product
        match = f"[green]exact[/] ({h.inliers})" if h.match == "exact" else "similar"
        alike = [f"{(h.aspects or {}).get(a, 0.0):.2f}" for a in aspects]
        table.add_row(str(i), match, f"{h.score:.3f}", *alike, *_product_cells(p))
        for other in h.listings:  # the other listings of its photo, under it
            blank = [""] * len(aspects)
            table.add_row("", "same photo", "", *blank, *_product_cells(other), style="dim")
    if any(h.listings for h in hits):
        table.caption = (
            "same photo: another listing of the result's photo (not a result of its own)"
        )
    out.print(table)


def _product_cells(p: ProductData) -> list[str]:
    price = "" if p.price is None else f"{p.price:g} {p.currency or ''}".strip()
    # Catalog text is shown as it is: Rich would read "[/b]" in a title as markup (and
    # fail on it).
    return [escape(v) for v in (p.sku, p.title or "", p.category or "", price)]


@app.command()
def search(
    images: list[Path] = typer.Argument(..., help="One or more query photos."),
    k: int = typer.Option(DEFAULT_K, "-k", envvar="LOOKALIKE_K", min=1, max=MAX_K),
    category: str | None = typer.Option(None, envvar="LOOKALIKE_CATEGORY"),
    min_price: float | None = typer.Option(None, envvar="LOOKALIKE_MIN_PRICE"),
    max_price: float | None = typer.Option(None, envvar="LOOKALIKE_MAX_PRICE"),
    shape: float | None = _SHAPE,
    colour: float | None = _COLOUR,
    texture: float | None = _TEXTURE,
    more: list[str] = _MORE,
    less: list[str] = _LESS,
    together: bool = typer.Option(
        False,
        "--together",
        help="The photos are one query (one product from several sides, or 'things like "
        "these'): one answer instead of one per photo.",
    ),
    group_listings: bool = _GROUP_LISTINGS,
    as_json: bool = typer.Option(False, "--json", envvar="LOOKALIKE_JSON"),
) -> None:
    """Find the products that look most like each photo."""
    weights = _weights(shape, colour, texture)
    with _engine() as engine, _aspect_errors():
        filters = Filters(category, min_price, max_price)
        feedback = Feedback(tuple(more), tuple(less))
        results = engine.search_files(
            images, k, filters, weights, feedback, together, group_listings
        )
    failed = False
    for r in results:
        failed |= r.error is not None
        if as_json:
            doc: dict[str, Any] = {"query": r.query, "results": _hits_json(r.hits)}
            if r.error:
                doc["error"] = r.error
            out.print_json(json.dumps(doc)) if sys.stdout.isatty() else print(json.dumps(doc))
        else:
            if r.error:
                err.print(f"[red]error:[/] {escape(f'{r.query}: {r.error}')}")
            if r.hits or not r.error:  # photos searched together: the others' answer
                _print_hits(r.query, r.hits)
    if failed:
        raise typer.Exit(1)


@app.command()
def similar(
    sku: str = typer.Argument(..., help="A catalog product."),
    k: int = typer.Option(DEFAULT_K, "-k", envvar="LOOKALIKE_K", min=1, max=MAX_K),
    category: str | None = typer.Option(None, envvar="LOOKALIKE_CATEGORY"),
    shape: float | None = _SHAPE,
    colour: float | None = _COLOUR,
    texture: float | None = _TEXTURE,
    more: list[str] = _MORE,
    less: list[str] = _LESS,
    group_listings: bool = _GROUP_LISTINGS,
    as_json: bool = typer.Option(False, "--json", envvar="LOOKALIKE_JSON"),
) -> None:
    """More like this: products that look like a catalog product (itself excluded)."""
    weights = _weights(shape, colour, texture)
    with _engine() as engine, _aspect_errors():
        feedback = Feedback(tuple(more), tuple(less))
        hits = engine.similar(sku, k, Filters(category), weights, feedback, group_listings)
    if as_json:
        print(json.dumps({"sku": sku, "results": _hits_json(hits)}))
    else:
        _print_hits(f"similar to {sku}", hits)


@app.command()
def delete(skus: list[str] = typer.Argument(..., help="SKUs to delete.")) -> None:
    """Delete products (from the database and the index)."""
    with _engine() as engine:
        deleted = engine.delete(skus)
    missing = [s for s in skus if s not in deleted]
    err.print(f"deleted {len(deleted)} product(s)")
    if missing:
        err.print(f"[yellow]not found:[/] {escape(', '.join(missing))}")
        raise typer.Exit(1)


@app.command()
def duplicates(
    threshold: float = typer.Option(
        DEFAULT_THRESHOLD,
        min=MIN_THRESHOLD,
        max=1.0,
        envvar="LOOKALIKE_DUPLICATE_THRESHOLD",
        help="Cosine of the global vectors a pair needs before its pictures are compared; "
        "lower finds more heavily edited copies, for more comparisons.",
    ),
    as_json: bool = typer.Option(False, "--json", envvar="LOOKALIKE_JSON"),
) -> None:
    """Groups of products whose photos are the same or nearly (re-encoded, resized,
    cropped, mirrored, a small colour shift)."""
    if not MIN_THRESHOLD <= threshold <= 1.0:  # NaN passes typer's range check
        raise typer.BadParameter(f"must be between {MIN_THRESHOLD} and 1", param_hint="--threshold")
    with _engine() as engine:
        found = engine.duplicates(threshold)
    if as_json:
        print(json.dumps(_duplicates_json(found)))
    else:
        _print_duplicates(found)


def _duplicates_json(found: Duplicates) -> dict[str, Any]:
    """The groups as the API's documents (api/schemas.DuplicateGroup), with the run's
    counts."""
    from lookalike.api.schemas import DuplicateGroup  # as in _hits_json

    return {
        "threshold": found.threshold,
        "products": found.products,
        "candidates": found.candidates,
        "compared": found.compared,
        "unreadable": list(found.unreadable),
        "groups": [DuplicateGroup.of(g, files=True).model_dump(mode="json") for g in found.groups],
    }


def _print_duplicates(found: Duplicates) -> None:
    in_groups = sum(len(g.products) for g in found.groups)
    groups = f"{len(found.groups)} duplicate group{'' if len(found.groups) == 1 else 's'}"
    table = Table(title=f"{groups}, {in_groups} of {found.products} products")
    for col in ("group", "similarity", "sku", "title", "category"):
        table.add_column(col)
    for n, g in enumerate(found.groups, 1):
        alike = "identical" if g.identical else f"{g.similarity:.3f}"
        for i, p in enumerate(g.products):
            table.add_row(
                str(n) if i == 0 else "",
                alike if i == 0 else "",
                *_product_cells(p)[:3],
                end_section=i == len(g.products) - 1,
            )
    out.print(table)
    err.print(
        f"threshold {found.threshold}: {found.candidates} candidate pairs, "
        f"{found.compared} pictures compared"
    )
    if found.unreadable:
        shown = escape(", ".join(found.unreadable[:10]))
        more = f" and {len(found.unreadable) - 10} more" if len(found.unreadable) > 10 else ""
        err.print(f"[yellow]photos that could not be read (not compared):[/] {shown}{more}")


@index_app.command("rebuild")
def index_rebuild(
    kind: str | None = typer.Option(
        None, envvar="LOOKALIKE_INDEX_KIND", help="flat, ivf or ivfpq; default: by catalog size"
    ),
) -> None:
    """Rebuild the index from the database."""
    if kind not in (None, "flat", "ivf", "ivfpq"):
        raise typer.BadParameter("kind must be flat, ivf or ivfpq")
    backend = _state["settings"].index_backend
    if kind is not None and backend != "faiss":
        raise typer.BadParameter(f"--kind is for the faiss backend, not {backend}")
    with _engine() as engine:
        index = engine.rebuild_index(kind)
        m = index.manifest
        probe = f", nprobe={m.nprobe}" if m.kind == "ivf" else ""
        err.print(f"index rebuilt: {m.kind}, {m.count} products, {m.dim}-d{probe}")


@index_app.command("check")
def index_check(as_json: bool = typer.Option(False, "--json", envvar="LOOKALIKE_JSON")) -> None:
    """Check that the index agrees with the database; report ANN recall."""
    with _engine() as engine:
        report = engine.check_index()
        if engine.last_sync and engine.last_sync.rebuilt:
            report["rebuilt_on_load"] = engine.last_sync.reason
    print(json.dumps(report, indent=2)) if as_json else _print_dict("index check", report)
    if not report["consistent"]:
        raise typer.Exit(1)


def _print_dict(title: str, data: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in list(value.items())[:12]) + (
                " …" if len(value) > 12 else ""
            )
        table.add_row(escape(key), escape(str(value)))
    out.print(table)


@app.command()
def stats(as_json: bool = typer.Option(False, "--json", envvar="LOOKALIKE_JSON")) -> None:
    """Catalog size, categories and model versions."""
    with _engine() as engine:
        data = engine.stats()
    print(json.dumps(data, indent=2)) if as_json else _print_dict("catalog", data)


@app.command()
def evaluate(
    labels: Path | None = typer.Option(
        None, envvar="LOOKALIKE_LABELS", help="CSV with sku/id, category[, color]."
    ),
    config: list[str] | None = typer.Option(
        None,
        "--config",
        "-c",
        envvar="LOOKALIKE_EVAL_CONFIGS",
        help="Configurations to compare, e.g. -c trim-gap-c0.1 -c crop-gap-c0 -c colorhist",
    ),
    folds: int = typer.Option(
        1, min=1, max=10, envvar="LOOKALIKE_FOLDS", help="Also report N disjoint catalog parts."
    ),
    report_dir: Path = typer.Option(Path("reports/eval"), envvar="LOOKALIKE_REPORT_DIR"),
    queries: Path | None = typer.Option(
        None,
        envvar="LOOKALIKE_QUERIES",
        help="Photo -> catalog evaluation instead: CSV of image, sku[, group, category].",
    ),
) -> None:
    """Leave-one-out retrieval quality (Precision@k, MAP@R, colour match) with a report;
    with --queries, photo -> catalog recall, exact-match precision and a failure grid."""
    from lookalike.evaluation.report import evaluate as run_evaluation

    if queries is not None:
        _evaluate_queries(queries, report_dir)
        return
    with _engine() as engine:
        total = engine.product_count() * max(1, len(config or []))
        with _progress("evaluate", total) as advance:
            report = run_evaluation(engine, report_dir, config, labels, folds, advance)
    table = Table(title=f"leave-one-out, {report['products']} products")
    cols = ["precision@1", "precision@5", "precision@10", "map@r", "color_match@10"]
    table.add_column("config")
    for c in cols:
        table.add_column(c)
    for name, entry in report["configs"].items():
        o = entry["overall"]
        table.add_row(name, *("-" if o[c] is None else f"{o[c]:.3f}" for c in cols))
    out.print(table)
    err.print(f"report written to {report_dir}/report.md")


def _evaluate_queries(path: Path, report_dir: Path) -> None:
    from lookalike.evaluation.queries import KS, evaluate_queries, read_queries

    with _engine() as engine:
        try:
            photos = read_queries(path)
        except CatalogFileError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
        with _progress("evaluate", len(photos)) as advance:
            report = evaluate_queries(engine, photos, report_dir, progress=advance)
    table = Table(title=f"{report['queries']} photos, {report['catalog_products']} products")
    for col in ("group", "queries", *(f"R@{n}" for n in KS)):
        table.add_column(col)
    for name, r in [("all", report["overall"]), *report["per_group"].items()]:
        recalls = (r[f"recall@{n}"] for n in KS)
        table.add_row(name, str(r["queries"]), *("-" if v is None else f"{v:.3f}" for v in recalls))
    out.print(table)
    ex, op = report["exact"], report["open_set"]
    out.print(
        f"exact: claimed {ex['claimed']}, precision {ex['precision']}, recall {ex['recall']}; "
        f"open set: {op['queries']} photos, false exact rate {op['false_exact_rate']}; "
        f"latency {report['latency_ms']}"
    )
    err.print(f"report written to {report_dir}/report.md")


@app.command()
def serve(
    host: str | None = typer.Option(None, envvar="LOOKALIKE_HOST"),
    port: int | None = typer.Option(None, envvar="LOOKALIKE_PORT"),
    workers: int | None = typer.Option(None, envvar="LOOKALIKE_WORKERS"),
) -> None:
    """Start the HTTP API (uvicorn); the model and index load once at start-up."""
    from lookalike.api.app import serve as run_server

    run_server(host, port, workers)


@app.command()
def reembed() -> None:
    """Re-embed the whole catalog with the model the settings name, then switch to it."""
    with _engine() as engine:
        total = engine.product_count()
        with _progress("re-embed", total) as advance:
            summary = engine.reembed(advance)
        err.print(
            f"re-embedded {summary.embedded} products with {engine.model_config.version}; "
            f"{len(summary.failed)} failed"
        )
        for f in summary.failed[:20]:
            err.print(f"[yellow]failed[/] {escape(f'{f.source}: {f.reason}')}")


@app.command()
def train(
    epochs: int = typer.Option(10, envvar="LOOKALIKE_EPOCHS", min=1, max=500),
    embedding_dim: int = typer.Option(256, envvar="LOOKALIKE_EMBEDDING_DIM", min=16, max=1280),
    device: str = typer.Option("cpu", envvar="LOOKALIKE_DEVICE", help="cpu or cuda"),
    seed: int = typer.Option(0, envvar="LOOKALIKE_SEED"),
    objective: str = typer.Option(
        "both",
        envvar="LOOKALIKE_OBJECTIVE",
        help="category (tell categories apart), instance (tell products apart, robust to "
        "phone photos: synthetic shopper-photo views of each catalog image) or both; "
        "'both' trains instances only when there are no two categories.",
    ),
    photo_views: int = typer.Option(
        0,
        envvar="LOOKALIKE_PHOTO_VIEWS",
        min=0,
        max=256,
        help="Synthetic photo views per product (instance objective); 0: 5,000 in all, "
        "2 to 32 per product.",
    ),
    instance_weight: float = typer.Option(
        0.1, envvar="LOOKALIKE_INSTANCE_WEIGHT", min=0.0, help="Instance loss weight in 'both'."
    ),
    from_catalog: bool = typer.Option(
        True, "--from-catalog", help="Learn the catalog's category column (the default)."
    ),
    labels: Path | None = typer.Option(
        None, envvar="LOOKALIKE_LABELS", help="CSV with sku/id, category[, color] instead."
    ),
    base: str | None = typer.Option(
        None,
        envvar="LOOKALIKE_TRAIN_BASE",
        help="Base model to fine-tune: lite0 or lite2 (lite0-int8 trains lite0); "
        "default: the catalog model's base.",
    ),
) -> None:
    """Fine-tune a base model on the catalog's categories and products; registers a new
    version (its card names the base)."""
    from lookalike.training.trainer import OBJECTIVES, TrainOptions
    from lookalike.training.trainer import train as run_training

    if device not in ("cpu", "cuda"):
        raise typer.BadParameter("device must be cpu or cuda")
    if objective not in OBJECTIVES:
        raise typer.BadParameter(f"objective must be one of {', '.join(OBJECTIVES)}")
    options = TrainOptions(
        epochs=epochs,
        embedding_dim=embedding_dim,
        device=device,
        seed=seed,
        objective=objective,  # checked against OBJECTIVES above
        photo_views=photo_views,
        instance_weight=instance_weight,
        base=base,
    )
    with _engine() as engine:
        model = run_training(engine, options, labels, lambda msg: err.print(msg))
    metrics = model.card["metrics"]
    before, after = metrics["validation_pretrained"], metrics["validation_finetuned"]
    rows: dict[str, Any] = {
        "folder": str(model.folder),
        "base": model.card["base_model"],
        "objective": model.card["objective"],
    }
    if "map@r" in after:
        rows["validation, pretrained"] = _brief(before)
        rows["validation, fine-tuned"] = _brief(after)
    for key, label in (
        ("instance_r@1", "photo views R@1 (trained products)"),
        ("instance_r@1_unseen", "photo views R@1 (unseen products)"),
    ):
        if key in after:
            rows[label] = f"{before[key]:.3f} -> {after[key]:.3f}"
    _print_dict(
        f"model {model.version}",
        rows
        | {
            "best epoch": metrics["best_epoch"],
            "training curve": str(model.folder / "curve.png"),
            "activate with": f"lookalike models activate {model.version}",
        },
    )


def _brief(m: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {m[k]:.3f}"
        for k in ("precision@1", "precision@10", "map@r", "color_match@10")
        if m.get(k) is not None
    )


@models_app.command("list")
def models_list() -> None:
    """Registered fine-tuned versions (and which one the catalog uses)."""
    from lookalike.models import ModelRegistry

    settings: Settings = _state["settings"]
    with _engine() as engine:
        active = engine.active_model_version or ""
    table = Table(title="models (validation, before -> after)")
    metrics = (("MAP@R", "map@r"), ("P@10", "precision@10"), ("photo-view R@1", "instance_r@1"))
    for col in ("version", "base", "created", *(name for name, _ in metrics), ""):
        table.add_column(col)
    for m in ModelRegistry(settings.model_dir).list():
        before, after = (
            m.card["metrics"]["validation_pretrained"],
            m.card["metrics"]["validation_finetuned"],
        )
        table.add_row(
            m.version,
            m.base,
            m.card["created"],
            *(_before_after(before.get(key), after.get(key)) for _, key in metrics),
            "active" if active.startswith(m.version + "/") else "",
        )
    out.print(table)


def _before_after(before: float | None, after: float | None) -> str:
    """A metric a model's run measured (an instance-only run has no MAP@R), or '-'."""
    if before is None or after is None:
        return "-"
    return f"{before:.3f} -> {after:.3f}"


@models_app.command("activate")
def models_activate(
    version: str = typer.Argument(..., help="ft-..., or a base model: lite0-int8, lite0, lite2"),
) -> None:
    """Re-embed the catalog with a model version, then switch search to it atomically."""
    from lookalike.embeddings.embedder import EmbedderConfig

    with _engine() as engine:
        config = EmbedderConfig.resolve(version, engine.settings.model_dir, engine.model_config)
        total = engine.product_count()
        with _progress("re-embed", total) as advance:
            summary = engine.reembed(advance, config)
        err.print(f"catalog now uses {config.version} ({summary.embedded} products re-embedded)")


@models_app.command("evaluate")
def models_evaluate(
    version: str = typer.Argument(...),
    report_dir: Path = typer.Option(Path("reports/model"), envvar="LOOKALIKE_REPORT_DIR"),
) -> None:
    """Its pretrained base vs the fine-tuned version on the version's validation products
    (never trained on)."""
    from lookalike.evaluation.report import evaluate as run_evaluation
    from lookalike.models import ModelRegistry

    with _engine() as engine:
        model = ModelRegistry(engine.settings.model_dir).get(version)
        skus = set(model.card["data"]["validation_skus"])
        base = f"{model.base}/{model.card['config_name']}"  # e.g. lite2/trim-gap-c0.1
        with _progress("evaluate", 2 * len(skus)) as advance:
            report = run_evaluation(engine, report_dir, [base, version], None, 1, advance, skus)
    for name, entry in report["configs"].items():
        err.print(f"{name}: {_brief(entry['overall'])}")
    err.print(f"report written to {report_dir}/report.md")
