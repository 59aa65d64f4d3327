"""The runtime path runs on ONNX Runtime and never imports torch (importing it cost every
CLI call and API worker about 1.6 s of CPU and 180 MB: docs/benchmarks.md, start-up).
Each check runs in a fresh interpreter, since this test process has torch loaded."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from PIL import Image
from skimage import data as skdata

from lookalike.config import Settings
from lookalike.embeddings import create_embedder


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_engine_api_and_cli_imports_no_torch() -> None:
    out = _run(
        """
        import sys
        import lookalike.api.app, lookalike.cli, lookalike.engine
        heavy = ("torch", "efficientnet_lite_pytorch", "sympy")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        # The int8 quantization tools load only to make a missing int8 file.
        print("onnxruntime.quantization" in sys.modules)
        """
    )
    assert out.split("\n")[:2] == ["[]", "False"]


def test_ingest_and_search_with_an_exported_model_import_no_torch(
    settings: Settings, tmp_path: Path
) -> None:
    create_embedder(settings)  # the ONNX export (torch) happens here, in this process
    images = []
    for name in ("chelsea", "coffee", "rocket"):
        images.append(tmp_path / f"{name}.png")
        Image.fromarray(getattr(skdata, name)()).convert("RGB").save(images[-1])
    out = _run(
        f"""
        import sys
        from pathlib import Path
        from lookalike.config import Settings
        from lookalike.engine import Engine
        from lookalike.ingest.readers import CatalogRecord

        settings = Settings(
            home=Path({str(settings.home)!r}), model_cache=Path({str(settings.model_dir)!r}),
            _env_file=None,
        )
        engine = Engine(settings)
        paths = [Path(p) for p in {[str(p) for p in images]!r}]
        engine.ingest([CatalogRecord(p.stem, p, str(p)) for p in paths])
        hits = engine.search_files([paths[0]], k=2)[0].hits
        heavy = ("torch", "onnx", "sympy", "onnxruntime.quantization")
        print(hits[0].product.sku, any(m in sys.modules for m in heavy))
        """
    )
    assert out.split() == ["chelsea", "False"]
