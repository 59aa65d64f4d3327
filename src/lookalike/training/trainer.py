"""``lookalike train``: metric learning on the catalog's categories, on a CPU.

The frozen front of the network runs once per image (ONNX Runtime) and its activations
are cached, for a clean view and a few augmented ones; only the tail (last block, head
convolution, projection) is trained on them with the Proxy-Anchor loss. Products are
split into train/validation by category (stratified, seeded); every metric reported is
on the validation products, which training never sees, with the same leave-one-out code
as ``lookalike evaluate``.
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
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance

from lookalike.embeddings.color import color_descriptor
from lookalike.embeddings.embedder import EmbedderConfig
from lookalike.embeddings.onnx_export import export_model
from lookalike.embeddings.pooling import l2_normalize
from lookalike.engine import Engine
from lookalike.errors import CatalogFileError
from lookalike.evaluation.metrics import leave_one_out
from lookalike.evaluation.report import Labeled, config_vectors, load_labels
from lookalike.images.loader import load_image, read_image_bytes
from lookalike.images.preprocess import INPUT_SIZE, model_input, to_square, trim_background
from lookalike.training.network import FineTuned, Front, ProxyAnchorLoss, Tail, build
from lookalike.training.plots import training_curve
from lookalike.training.registry import ModelRegistry, RegisteredModel

Progress = Callable[[str], None]


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


@dataclass
class EpochLog:
    epoch: int
    loss: float
    val: dict[str, float | int | None] = field(default_factory=dict)


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
    """Train, validate, export and register a fine-tuned model version."""
    say = progress or (lambda msg: None)
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    device = _device(options.device)
    labeled = load_labels(engine, labels_csv)
    if len(set(labeled.categories)) < 2:
        raise CatalogFileError("training needs products of at least two categories")
    train_idx, val_idx = split(labeled.categories, options.val_fraction, options.seed)
    if not val_idx:
        raise CatalogFileError("too few products per category for a validation split")
    classes = sorted({labeled.categories[i] for i in train_idx})
    class_of = {c: n for n, c in enumerate(classes)}
    base = EmbedderConfig.parse(engine.model_config.name)
    say(f"{len(train_idx)} training and {len(val_idx)} validation products, {len(classes)} classes")

    front, tail = build(options.embedding_dim, options.unfrozen_blocks)
    with tempfile.TemporaryDirectory() as tmp:
        front_session = _front_session(
            front, Path(tmp) / "front.onnx", engine.settings.onnx_threads
        )
        say("caching the frozen front's activations")
        train_x, train_y = _cache(
            front_session,
            labeled,
            train_idx,
            options.views,
            base,
            options.seed,
            lambda i: class_of[labeled.categories[i]],
            engine,
        )
        val_x, _ = _cache(
            front_session, labeled, val_idx, 1, base, options.seed, lambda i: 0, engine
        )
    val_colors = _colors(labeled, val_idx, base, engine)
    val_labels = [labeled.categories[i] for i in val_idx]
    val_color_labels = [labeled.colors[i] for i in val_idx]
    val_dups = [labeled.products[i].image_sha256 for i in val_idx]

    def validate(model: Tail) -> dict[str, float | int | None]:
        vectors = _blend(_embed(model, val_x, device), val_colors, base.color_weight)
        return leave_one_out(vectors, val_labels, val_color_labels, val_dups).overall.as_dict()

    base_vectors = config_vectors(engine, [labeled.products[i] for i in val_idx], base)
    base_metrics = leave_one_out(base_vectors, val_labels, val_color_labels, val_dups)
    say(f"pretrained on validation: {_brief(base_metrics.overall.as_dict())}")

    loss_fn = ProxyAnchorLoss(len(classes), options.embedding_dim).to(device)
    tail = tail.to(device)
    params = [p for p in tail.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": params, "lr": options.lr},
            {"params": loss_fn.parameters(), "lr": options.proxy_lr},
        ],
        weight_decay=options.weight_decay,
    )
    steps = options.epochs * max(1, int(np.ceil(len(train_x) / options.batch_size)))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[options.lr, options.proxy_lr], total_steps=steps, pct_start=0.1
    )
    history: list[EpochLog] = []
    best_state, best_score, best_epoch = copy.deepcopy(tail.state_dict()), -1.0, 0
    generator = torch.Generator().manual_seed(options.seed)
    x_all, y_all = torch.from_numpy(train_x), torch.from_numpy(train_y)
    for epoch in range(1, options.epochs + 1):
        tail.train()
        _freeze_batchnorm(tail)
        order = torch.randperm(len(x_all), generator=generator)
        losses = []
        for start in range(0, len(order), options.batch_size):
            idx = order[start : start + options.batch_size]
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            loss = loss_fn(tail(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        metrics = validate(tail)
        history.append(EpochLog(epoch, float(np.mean(losses)), metrics))
        say(f"epoch {epoch}/{options.epochs}: loss {np.mean(losses):.3f}, val {_brief(metrics)}")
        score = float(metrics["map@r"] or 0.0)
        if score > best_score:
            best_state, best_score, best_epoch = copy.deepcopy(tail.state_dict()), score, epoch
    tail.load_state_dict(best_state)
    tail = tail.cpu().eval()

    registry = ModelRegistry(engine.settings.model_dir / "registry")
    version = _version_id(options)
    folder = registry.folder(version)
    staging = folder.with_name(folder.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    torch.save(tail.state_dict(), staging / "head.pt")
    export_model(FineTuned(front, tail), staging / "model.onnx")
    best = history[best_epoch - 1].val
    card: dict[str, Any] = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": base.version,
        "config_name": base.name,
        "embedding_dim": options.embedding_dim,
        "data": {
            "products": len(labeled.products),
            "train_products": len(train_idx),
            "validation_products": len(val_idx),
            "classes": classes,
            "labels": str(labels_csv) if labels_csv else "catalog category",
            "validation_skus": [labeled.products[i].sku for i in val_idx],
        },
        "parameters": asdict(options),
        "metrics": {
            "validation_pretrained": base_metrics.overall.as_dict(),
            "validation_finetuned": best,
            "best_epoch": best_epoch,
            "history": [asdict(h) for h in history],
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    (staging / "card.json").write_text(json.dumps(card, indent=2))
    training_curve(history, base_metrics.overall.as_dict(), staging / "curve.png")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)  # the version appears whole or not at all
    return registry.get(version)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise CatalogFileError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def _version_id(options: TrainOptions) -> str:
    now = datetime.now(UTC)
    digest = hashlib.sha256(f"{now.isoformat()}{options}".encode()).hexdigest()[:6]
    return f"ft-{now:%Y%m%d-%H%M%S}-{digest}"


def _brief(m: dict[str, Any]) -> str:
    colour = m.get("color_match@10")
    return f"P@1 {m['precision@1']:.3f}  P@10 {m['precision@10']:.3f}  MAP@R {m['map@r']:.3f}" + (
        f"  colour@10 {colour:.3f}" if colour is not None else ""
    )


def _freeze_batchnorm(model: torch.nn.Module) -> None:
    """Keep BatchNorm statistics as pretrained: batches of cached views are small and
    correlated, and would skew them (the affine parameters still train)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def _front_session(front: Front, path: Path, threads: int) -> Any:
    import onnxruntime as ort

    export_model(front, path)
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


def _cache(
    session: Any,
    labeled: Labeled,
    indices: list[int],
    views: int,
    config: EmbedderConfig,
    seed: int,
    label: Callable[[int], int],
    engine: Engine,
) -> tuple[np.ndarray, np.ndarray]:
    """Front activations of ``views`` views of each product (the first one clean)."""

    def inputs(i: int) -> list[np.ndarray]:
        img = _load(engine, labeled.products[i].image_path)
        rng = np.random.default_rng([seed, i])
        squares = [to_square(img, config.preprocessing)]
        squares += [to_square(_augment(img, rng), "pad") for _ in range(views - 1)]
        return [model_input([s])[0] for s in squares]

    xs, ys = [], []
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        batch: list[np.ndarray] = []
        for i, tensors in zip(indices, pool.map(inputs, indices), strict=True):
            batch += tensors
            ys += [label(i)] * len(tensors)
            if len(batch) >= 64:
                xs.append(session.run(None, {"images": np.stack(batch)})[0])
                batch = []
        if batch:
            xs.append(session.run(None, {"images": np.stack(batch)})[0])
    return np.concatenate(xs).astype(np.float32), np.asarray(ys, dtype=np.int64)


def _colors(
    labeled: Labeled, indices: list[int], config: EmbedderConfig, engine: Engine
) -> np.ndarray:
    return np.stack(
        [
            color_descriptor(
                to_square(_load(engine, labeled.products[i].image_path), config.preprocessing)
            )
            for i in indices
        ]
    )


def _embed(model: Tail, x: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), 256):
            out.append(model(torch.from_numpy(x[start : start + 256]).to(device)).cpu().numpy())
    return np.concatenate(out)


def _blend(cnn: np.ndarray, colors: np.ndarray, weight: float) -> np.ndarray:
    """The same blend the embedder applies (see Embedder.embed_prepared)."""
    parts = [np.sqrt(1.0 - weight) * l2_normalize(cnn)]
    if weight > 0:
        parts.append(np.sqrt(weight) * colors)
    return l2_normalize(np.concatenate(parts, axis=1))
