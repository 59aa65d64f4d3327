"""``lookalike train``: metric learning on the catalog's categories and products, on a CPU.

The frozen front of the network runs once per image (ONNX Runtime) and its activations
are cached, for a clean view, a few augmented ones and (instance objective) synthetic
shopper-photo views (:mod:`lookalike.training.photo_views`); only the tail (last block,
head convolution, projection) is trained on them with Proxy-Anchor losses: one proxy per
category, one per product, or both. Products are split into train/validation by category
(stratified, seeded); category metrics are on the validation products, which training
never sees, with the same leave-one-out code as ``lookalike evaluate``; instance metrics
on photo views held out from training.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from PIL import Image, ImageEnhance

from lookalike.embeddings.aspects.colour import DESCRIPTORS
from lookalike.embeddings.embedder import EmbedderConfig
from lookalike.embeddings.onnx_export import export_model
from lookalike.embeddings.pooling import l2_normalize, pool
from lookalike.engine import Engine
from lookalike.errors import CatalogFileError
from lookalike.evaluation.metrics import leave_one_out
from lookalike.evaluation.report import load_labels
from lookalike.images.loader import load_image, read_image_bytes
from lookalike.images.preprocess import INPUT_SIZE, model_input, to_square, trim_background
from lookalike.models import ModelRegistry, ModelSpec, RegisteredModel, get_spec
from lookalike.store.catalog import ProductData
from lookalike.training.network import FineTuned, Front, ProxyAnchorLoss, build
from lookalike.training.photo_views import photo_view
from lookalike.training.plots import training_curve

Progress = Callable[[str], None]
Objective = Literal["category", "instance", "both"]
OBJECTIVES: tuple[Objective, ...] = get_args(Objective)

# Synthetic photo views cached in all, when TrainOptions.photo_views is 0 (auto): each
# costs ~25 ms to make and cache, 38 KB of memory and 4-7 ms per epoch, so the budget
# bounds time and memory whatever the catalog size: 32 views for each of 100 products,
# 2 for each of 2,366.
PHOTO_VIEW_BUDGET = 5_000
MAX_PHOTO_VIEWS = 32
INSTANCE_QUERIES = 500  # held-out photo views (of as many training products) validated
CLUTTER_POOL = 48  # catalog images whose crops make the backgrounds of photo views
CLUTTER_SIDE = 224


@dataclass
class TrainOptions:
    """Training parameters (all recorded in the model card)."""

    epochs: int = 10
    embedding_dim: int = 256
    device: str = "cpu"
    seed: int = 0
    batch_size: int = 64
    views: int = 3  # cached views per training product: one clean, the rest augmented
    unfrozen_blocks: int = 1
    val_fraction: float = 0.2
    lr: float = 3e-4
    proxy_lr: float = 1e-2
    weight_decay: float = 1e-4
    # "category": one proxy per category; "instance": one proxy per product, learned
    # from synthetic shopper-photo views of it; "both": the weighted sum.
    objective: Objective = "both"
    photo_views: int = 0  # synthetic photo views cached per product; 0: PHOTO_VIEW_BUDGET
    # Weight of the instance loss next to the category loss ("both"; alone it is 1). With
    # 0.1, fashion dev validation MAP@R is 0.639 (the category-only model: 0.539); at 1.0
    # (in a projection-only run, categories also learned from photo views) the 2,366
    # product proxies pushed same-category products apart: 0.354 by epoch 4.
    instance_weight: float = 0.1
    # The base model (lite0, lite2; an int8 one trains its float network); None: the
    # catalog model's base.
    base: str | None = None


@dataclass
class EpochLog:
    epoch: int
    loss: float
    val: dict[str, float | int | None] = field(default_factory=dict)


@dataclass
class _Catalog:
    """The products to train on; category and colour ``None`` where not labeled."""

    products: list[ProductData]
    categories: list[str | None]
    colors: list[str | None]


@dataclass
class _Cache:
    """Front activations of some views of some products, with what each row is."""

    x: np.ndarray  # N x C x H x W
    colors: np.ndarray  # N x colour DIM: the colour part of each view's embedding
    product: np.ndarray  # N: the product (index into the catalog)
    view: np.ndarray  # N: which view of it (0 = the first one made)


def split(categories: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified product split: about ``fraction`` of each category (with at least 4
    products) goes to validation; smaller categories stay in training."""
    rng = np.random.default_rng(seed)
    by_cat: dict[str, list[int]] = {}
    for i, c in enumerate(categories):
        by_cat.setdefault(c, []).append(i)
    train, val = [], []
    for members in by_cat.values():
        members = list(rng.permutation(members))
        n_val = round(len(members) * fraction) if len(members) >= 4 else 0
        val += members[:n_val]
        train += members[n_val:]
    return sorted(train), sorted(val)


def train(
    engine: Engine,
    options: TrainOptions,
    labels_csv: Path | None = None,
    progress: Progress | None = None,
) -> RegisteredModel:
    """Train, validate, export and register a fine-tuned model version.

    With a category objective, validation is leave-one-out category retrieval among
    held-out products (a stratified split). With an instance objective it is also
    instance R@1: held-out synthetic photo views of the training products (never
    trained on) against the clean images of all training products, and, when there is a
    validation split, the same for its unseen products (``instance_r@1_unseen``).
    """
    say = progress or (lambda msg: None)
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    device = _device(options.device)
    catalog = _catalog(engine, labels_csv, options.objective)
    train_idx, val_idx = _split(catalog, options.val_fraction, options.seed)
    objective = _objective(options.objective, catalog, train_idx, val_idx, say)
    use_category, use_instance = objective != "instance", objective != "category"
    classes = sorted({c for i in train_idx if (c := catalog.categories[i]) is not None})
    class_of = {c: n for n, c in enumerate(classes)}
    photo_views = (
        options.photo_views or min(MAX_PHOTO_VIEWS, max(2, PHOTO_VIEW_BUDGET // len(train_idx)))
        if use_instance
        else 0
    )
    catalog_model = engine.model_config
    # Training runs the float network (of a quantized catalog: the one it quantizes) and
    # exports a float model.
    named = get_spec(options.base or catalog_model.network.spec.name)
    base = EmbedderConfig.parse(catalog_model.name).with_model(
        named.float_spec.name, engine.settings.model_dir
    )
    spec = base.network.spec
    say(
        f"base {spec.name}, objective {objective}: {len(train_idx)} training and "
        f"{len(val_idx)} validation products, {len(classes)} categories"
        + (f", {photo_views} synthetic photo views per product" if photo_views else "")
    )

    front, tail = build(spec, options.embedding_dim, options.unfrozen_blocks)
    clutter = _clutter_pool(engine, catalog, train_idx, options.seed) if use_instance else []

    def clean(i: int, img: Image.Image) -> list[np.ndarray]:
        return [to_square(img, base.preprocessing, spec.input_size)]

    def photo(i: int, img: Image.Image, rng: np.random.Generator) -> np.ndarray:
        others = [a for j, a in clutter if j != i]
        view = photo_view(np.asarray(img), rng, others).image
        return to_square(Image.fromarray(view), base.preprocessing, spec.input_size)  # as a query

    def training_views(i: int, img: Image.Image) -> list[np.ndarray]:
        rng = np.random.default_rng([options.seed, i])
        squares = clean(i, img)
        squares += [
            to_square(_augment(img, rng), "pad", spec.input_size) for _ in range(options.views - 1)
        ]
        return squares + [photo(i, img, rng) for _ in range(photo_views)]

    def held_out_view(i: int, img: Image.Image) -> list[np.ndarray]:
        return [photo(i, img, np.random.default_rng([options.seed, i, 1]))]  # unseen stream

    with tempfile.TemporaryDirectory() as tmp:
        front_path = Path(tmp) / "front.onnx"
        session = _front_session(front, spec, front_path, engine.settings.onnx_threads)

        def cache(what: str, indices: list[int], make: _ViewMaker) -> _Cache:
            return _cache(
                session,
                spec,
                engine,
                catalog,
                indices,
                make,
                lambda m: say(f"{what}: {m}"),
                DESCRIPTORS[base.colour_space][1],
            )

        say("caching the frozen front's activations")
        train_set = cache("training views", train_idx, training_views)
        val_set = cache("validation images", val_idx, clean) if val_idx else None
        if use_instance:
            rng = np.random.default_rng(options.seed)
            queried = sorted(rng.permutation(train_idx)[:INSTANCE_QUERIES].tolist())
            held_out = cache("held-out photo views", queried, held_out_view)
            unseen = cache("unseen photo views", val_idx, held_out_view) if val_idx else None

    train_clean = train_set.view == 0

    def validate(embed: Callable[[np.ndarray], np.ndarray]) -> dict[str, float | int | None]:
        def vectors(c: _Cache, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
            return _blend(embed(c.x[rows]), c.colors[rows], base.color_weight)

        metrics: dict[str, float | int | None] = {}
        if val_set is not None:
            val_vectors = vectors(val_set)
            metrics |= leave_one_out(
                val_vectors,
                [str(catalog.categories[i]) for i in val_idx],
                [catalog.colors[i] for i in val_idx],
                [catalog.products[i].image_sha256 for i in val_idx],
            ).overall.as_dict()
        if use_instance:
            gallery = vectors(train_set, train_clean)
            metrics["instance_r@1"] = _recall_at_1(
                vectors(held_out), held_out.product, gallery, train_set.product[train_clean]
            )
            if val_set is not None and unseen is not None:
                metrics["instance_r@1_unseen"] = _recall_at_1(
                    vectors(unseen), unseen.product, val_vectors, val_set.product
                )
        return metrics

    def pretrained(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            maps = _batched(lambda b: tail.feature_maps(b.to(device)).cpu().numpy(), x)
        return pool(maps, base.pooling)

    def score(metrics: dict[str, float | int | None]) -> float:
        """What picks the best epoch: the objective's own validation metrics."""
        keys = ["map@r"] * use_category + ["instance_r@1"] * use_instance
        return sum(float(metrics[k] or 0.0) for k in keys)

    tail = tail.to(device).eval()
    base_metrics = validate(pretrained)
    say(f"pretrained on validation: {_brief(base_metrics)}")

    dim = options.embedding_dim
    category_loss = ProxyAnchorLoss(len(classes), dim).to(device) if use_category else None
    instance_loss = ProxyAnchorLoss(len(train_idx), dim).to(device) if use_instance else None
    proxies = [p for m in (category_loss, instance_loss) if m is not None for p in m.parameters()]
    instance_weight = options.instance_weight if use_category else 1.0  # a relative weight
    params = [p for p in tail.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": params, "lr": options.lr},
            {"params": proxies, "lr": options.proxy_lr},
        ],
        weight_decay=options.weight_decay,
    )
    steps = options.epochs * max(1, int(np.ceil(len(train_set.x) / options.batch_size)))
    # OneCycleLR divides by pct_start * steps - 1: zero for 10 steps at 0.1 (tiny runs).
    warmup = 0.1 if steps >= 20 else 0.3
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[options.lr, options.proxy_lr], total_steps=steps, pct_start=warmup
    )
    history: list[EpochLog] = []
    best_state, best_score, best_epoch = copy.deepcopy(tail.state_dict()), -1.0, 0
    generator = torch.Generator().manual_seed(options.seed)
    x_all = torch.from_numpy(train_set.x)
    position = {i: n for n, i in enumerate(train_idx)}  # instance class = training position
    y_instance = torch.tensor([position[int(i)] for i in train_set.product])
    # Categories are learned from the clean and mildly augmented views only: photo views
    # carry other products' crops as clutter; learning categories from them too held
    # fashion MAP@R at 0.430, against 0.548 without them (projection-only runs,
    # docs/training.md).
    y_category = torch.tensor(
        [
            class_of.get(catalog.categories[int(i)] or "", -1) if v < options.views else -1
            for i, v in zip(train_set.product, train_set.view, strict=True)
        ]
    )

    def embed(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return _batched(lambda b: tail(b.to(device)).cpu().numpy(), x)

    for epoch in range(1, options.epochs + 1):
        tail.train()
        _freeze_batchnorm(tail)
        order = torch.randperm(len(x_all), generator=generator)
        losses = []
        for start in range(0, len(order), options.batch_size):
            idx = order[start : start + options.batch_size]
            z = tail(x_all[idx].to(device))
            loss = torch.zeros((), device=device)
            if category_loss is not None:
                y = y_category[idx].to(device)
                labeled = y >= 0  # unlabeled products and photo views: instances only
                loss = loss + category_loss(z[labeled], y[labeled])
            if instance_loss is not None:
                y = y_instance[idx].to(device)
                loss = loss + instance_weight * instance_loss(z, y)
            optimizer.zero_grad()
            torch.autograd.backward(loss)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        tail.eval()
        metrics = validate(embed)
        history.append(EpochLog(epoch, float(np.mean(losses)), metrics))
        say(f"epoch {epoch}/{options.epochs}: loss {np.mean(losses):.3f}, val {_brief(metrics)}")
        if score(metrics) > best_score:
            best_state, best_score, best_epoch = (
                copy.deepcopy(tail.state_dict()),
                score(metrics),
                epoch,
            )
    tail.load_state_dict(best_state)
    tail = tail.cpu().eval()

    registry = ModelRegistry(engine.settings.model_dir)
    version = _version_id(options)
    folder = registry.folder(version)
    staging = folder.with_name(folder.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    torch.save(tail.state_dict(), staging / "head.pt")
    export_model(FineTuned(front, tail), staging / "model.onnx", spec.input_size)
    best = history[best_epoch - 1].val
    card: dict[str, Any] = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": base.version,
        "config_name": base.name,
        "embedding_dim": options.embedding_dim,
        "objective": objective,
        "data": {
            "products": len(catalog.products),
            "train_products": len(train_idx),
            "validation_products": len(val_idx),
            "classes": classes,
            "instance_classes": len(train_idx) if use_instance else 0,
            "photo_views_per_product": photo_views,
            "labels": str(labels_csv) if labels_csv else "catalog category",
            "validation_skus": [catalog.products[i].sku for i in val_idx],
        },
        "parameters": asdict(options),
        "metrics": {
            "validation_pretrained": base_metrics,
            "validation_finetuned": best,
            "best_epoch": best_epoch,
            "history": [asdict(h) for h in history],
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    (staging / "card.json").write_text(json.dumps(card, indent=2))
    training_curve(history, base_metrics, staging / "curve.png")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)  # the version appears whole or not at all
    return registry.get(version)


def _catalog(engine: Engine, labels_csv: Path | None, objective: Objective) -> _Catalog:
    """The labeled products; for instance training every product (each is its own
    class, labeled or not)."""
    labeled = load_labels(engine, labels_csv)
    if objective == "category":
        return _Catalog(labeled.products, list(labeled.categories), labeled.colors)
    labels = {
        p.sku: (c, col)
        for p, c, col in zip(labeled.products, labeled.categories, labeled.colors, strict=True)
    }
    products = engine.all_products()
    pairs = [labels.get(p.sku, (None, None)) for p in products]
    return _Catalog(products, [c for c, _ in pairs], [col for _, col in pairs])


def _split(catalog: _Catalog, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Training and validation products: a stratified split of the labeled ones when
    there are two categories or more (unlabeled products train); else all train."""
    labeled = [i for i, c in enumerate(catalog.categories) if c is not None]
    cats = [str(catalog.categories[i]) for i in labeled]
    if len(set(cats)) < 2:
        return list(range(len(catalog.products))), []
    _, val = split(cats, fraction, seed)
    val_idx = [labeled[j] for j in val]
    held = set(val_idx)
    return [i for i in range(len(catalog.products)) if i not in held], val_idx


def _objective(
    wanted: Objective, catalog: _Catalog, train_idx: list[int], val_idx: list[int], say: Progress
) -> Objective:
    """The objective this catalog allows: ``both`` falls back to ``instance`` when there
    are no two categories to learn (SMVS: every product is a DVD)."""
    categories = {c for c in catalog.categories if c is not None}
    if wanted != "instance" and len(categories) < 2:
        if wanted == "category":
            raise CatalogFileError("training needs products of at least two categories")
        say("fewer than two categories: training the instance objective only")
        wanted = "instance"
    if wanted != "instance" and not val_idx:
        raise CatalogFileError("too few products per category for a validation split")
    if wanted != "category" and len(train_idx) < 2:
        raise CatalogFileError("instance training needs at least two products")
    return wanted


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise CatalogFileError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def _version_id(options: TrainOptions) -> str:
    now = datetime.now(UTC)
    digest = hashlib.sha256(f"{now.isoformat()}{options}".encode()).hexdigest()[:6]
    return f"ft-{now:%Y%m%d-%H%M%S}-{digest}"


_BRIEF = {
    "precision@1": "P@1",
    "precision@10": "P@10",
    "map@r": "MAP@R",
    "color_match@10": "colour@10",
    "instance_r@1": "instance R@1",
    "instance_r@1_unseen": "unseen R@1",
}


def _brief(m: dict[str, Any]) -> str:
    return "  ".join(f"{label} {m[k]:.3f}" for k, label in _BRIEF.items() if m.get(k) is not None)


def _freeze_batchnorm(model: torch.nn.Module) -> None:
    """Keep BatchNorm statistics as pretrained: batches of cached views are small and
    correlated, and would skew them (the affine parameters still train)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def _front_session(front: Front, spec: ModelSpec, path: Path, threads: int) -> Any:
    import onnxruntime as ort

    export_model(front, path, spec.input_size)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random view that keeps colour meaningful: a resized crop of the product (at
    least 65% of it), a horizontal flip, and at most +-8% brightness and contrast."""
    arr = trim_background(np.asarray(img))
    h, w = arr.shape[:2]
    scale, ratio = rng.uniform(0.65, 1.0), np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch = int(min(h, round(np.sqrt(scale * h * w / ratio))))
    cw = int(min(w, round(np.sqrt(scale * h * w * ratio))))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    out = Image.fromarray(arr[y : y + ch, x : x + cw])
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.92, 1.08))
    return ImageEnhance.Contrast(out).enhance(rng.uniform(0.92, 1.08))


def _load(engine: Engine, path: str) -> Image.Image:
    data = read_image_bytes(Path(path), engine.limits.max_bytes)
    return load_image(
        data, path, max_pixels=engine.limits.max_pixels, target_size=INPUT_SIZE * 2
    ).pixels


def _clutter_pool(
    engine: Engine, catalog: _Catalog, indices: list[int], seed: int
) -> list[tuple[int, np.ndarray]]:
    """A few catalog images (small), for the backgrounds of photo views: (product, image)."""
    rng = np.random.default_rng([seed, 2])
    pool = []
    for i in sorted(rng.permutation(indices)[:CLUTTER_POOL].tolist()):
        img = _load(engine, catalog.products[i].image_path)
        img.thumbnail((CLUTTER_SIDE, CLUTTER_SIDE))
        pool.append((i, np.asarray(img)))
    return pool


_ViewMaker = Callable[[int, Image.Image], list[np.ndarray]]
_CHUNK = 32  # products prepared at a time: bounds the memory of views waiting for the model


def _cache(
    session: Any,
    spec: ModelSpec,
    engine: Engine,
    catalog: _Catalog,
    indices: list[int],
    make: _ViewMaker,
    say: Progress,
    describe_colour: Callable[[np.ndarray], np.ndarray],
) -> _Cache:
    """Front activations of the views ``make`` returns for each product, with their
    colour descriptors; progress about every 10%."""

    def prepare(i: int) -> list[np.ndarray]:
        return make(i, _load(engine, catalog.products[i].image_path))

    started = time.perf_counter()
    xs: list[np.ndarray] = []
    colors: list[np.ndarray] = []
    products: list[int] = []
    views: list[int] = []
    step = _CHUNK * max(1, round(len(indices) / 10 / _CHUNK))  # about every 10%
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        for start in range(0, len(indices), _CHUNK):
            chunk = indices[start : start + _CHUNK]
            squares: list[np.ndarray] = []
            for i, made in zip(chunk, pool.map(prepare, chunk), strict=True):
                squares += made
                products += [i] * len(made)
                views += range(len(made))
            colors += [describe_colour(s) for s in squares]
            for b in range(0, len(squares), 64):
                x = model_input(squares[b : b + 64], spec.input_mean, spec.input_std)
                xs.append(session.run(None, {"images": x})[0])
            done = start + len(chunk)
            if done % step == 0 or done == len(indices):
                say(f"{done}/{len(indices)} products, {time.perf_counter() - started:.0f} s")
    return _Cache(
        np.concatenate(xs).astype(np.float32, copy=False),
        np.stack(colors),
        np.asarray(products, dtype=np.int64),
        np.asarray(views, dtype=np.int64),
    )


def _batched(run: Callable[[torch.Tensor], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``run`` over ``x`` in batches of 256 (bounded memory for the activations)."""
    return np.concatenate(
        [run(torch.from_numpy(x[start : start + 256])) for start in range(0, len(x), 256)]
    )


def _recall_at_1(
    queries: np.ndarray, query_ids: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray
) -> float:
    """Share of queries whose nearest gallery vector is their own product."""
    nearest = np.argmax(queries @ gallery.T, axis=1)
    return round(float(np.mean(gallery_ids[nearest] == query_ids)), 4)


def _blend(cnn: np.ndarray, colors: np.ndarray, weight: float) -> np.ndarray:
    """The same blend the embedder applies (see Embedder.embed_prepared)."""
    parts = [np.sqrt(1.0 - weight) * l2_normalize(cnn)]
    if weight > 0:
        parts.append(np.sqrt(weight) * colors)
    return l2_normalize(np.concatenate(parts, axis=1))
