"""Background catalog imports: uploaded CSV/JSONL (+ a zip of images, or image URLs).

Each job's files live in ``HOME/imports/<job id>/`` and its state in the database, so a
job interrupted by a restart is simply run again at start-up (ingest is idempotent).
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from lookalike.api.fetch import fetch_image
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.errors import CatalogFileError, ImageError
from lookalike.ingest.readers import CatalogRecord, read_catalog

log = logging.getLogger(__name__)
CATALOG_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
MAX_ZIP_MEMBERS = 200_000
MAX_ERRORS_KEPT = 1000


class ImportRunner:
    """Runs import jobs one at a time on a background thread."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.root = settings.home / "imports"
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="imports", daemon=True)

    def start(self) -> None:
        """Start the worker and re-queue jobs a previous process did not finish."""
        for job in self.engine.unfinished_jobs():
            log.warning("resuming import job %s interrupted by a restart", job["id"])
            self.engine.update_job(job["id"], status="queued", message="resumed after restart")
            self._queue.put(job["id"])
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)

    def submit(self, filename: str, catalog: BinaryIO, images_zip: BinaryIO | None) -> str:
        """Save the upload and queue the job; returns its id. Raises CatalogFileError."""
        suffix = Path(filename).suffix.lower()
        if suffix not in CATALOG_SUFFIXES:
            raise CatalogFileError(f"catalog must be .csv, .jsonl or .json, not {filename!r}")
        job_id = str(uuid.uuid4())
        folder = self.root / job_id
        folder.mkdir(parents=True)
        try:
            _copy_limited(catalog, folder / f"catalog{suffix}", self.settings.max_import_bytes)
            if images_zip is not None:
                _extract_zip(images_zip, folder, self.settings.max_import_bytes)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.engine.create_job(job_id, str(folder / f"catalog{suffix}"))
        self._queue.put(job_id)
        return job_id

    def _loop(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                self._run(job_id)
            except Exception as exc:  # a job fails visibly; the worker lives on
                log.exception("import job %s failed", job_id)
                self.engine.update_job(job_id, status="failed", message=str(exc))

    def _run(self, job_id: str) -> None:
        engine = self.engine
        job = engine.job(job_id)
        if job is None:
            return
        catalog = Path(job["catalog_path"])
        folder = catalog.parent.resolve()
        engine.update_job(job_id, status="running")
        read = read_catalog(catalog, allow_urls=True)
        errors: list[dict[str, Any]] = [
            {"row": e.source.replace(str(folder) + "/", ""), "sku": e.sku, "reason": e.reason}
            for e in read.errors
        ]
        records: list[CatalogRecord] = []
        for n, record in enumerate(read.records):
            problem = self._localise(record, folder, n)
            if problem:
                errors.append({"row": _row(record, folder), "sku": record.sku, "reason": problem})
            else:
                records.append(record)
        total = len(read.records) + len(read.errors)
        done = len(read.errors) + (len(read.records) - len(records))
        engine.update_job(job_id, total=total, processed=done)
        last = time.monotonic()

        def progress(n: int) -> None:
            nonlocal done, last
            done += n
            if time.monotonic() - last > 0.3:
                engine.update_job(job_id, processed=done)
                last = time.monotonic()

        summary = self.engine.ingest(records, progress)
        errors += [
            {"row": _row_source(f.source, folder), "sku": f.sku, "reason": f.reason}
            for f in summary.failed
        ]
        engine.update_job(
            job_id,
            status="done",
            processed=total,
            added=summary.added,
            updated=summary.updated,
            unchanged=summary.unchanged,
            errors=errors[:MAX_ERRORS_KEPT],
            message=(
                f"{len(errors)} row{'s' if len(errors) > 1 else ''} failed" if errors else None
            ),
        )

    def _localise(self, record: CatalogRecord, folder: Path, n: int) -> str | None:
        """Make the record's image a file inside the job folder; the reason if not."""
        if record.image_url:
            target = folder / "downloads" / f"{n}"
            if not target.exists():
                try:
                    data = fetch_image(
                        record.image_url,
                        max_bytes=self.settings.max_image_bytes,
                        timeout=self.settings.url_timeout_s,
                        allow_private=self.settings.allow_private_urls,
                    )
                except ImageError as exc:
                    return exc.reason
                target.parent.mkdir(exist_ok=True)
                target.write_bytes(data)
            record.image = target
            record.attributes.setdefault("source_image_url", record.image_url)
            return None
        resolved = record.image.resolve()
        if not resolved.is_relative_to(folder):
            return "image path points outside the uploaded files"
        record.image = resolved
        return None


def _row(record: CatalogRecord, folder: Path) -> str:
    return _row_source(record.source, folder)


def _row_source(source: str, folder: Path) -> str:
    return source.replace(str(folder) + "/", "")


def _copy_limited(src: BinaryIO, dest: Path, limit: int) -> None:
    written = 0
    with dest.open("wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise CatalogFileError(f"upload larger than {limit} bytes")
            out.write(chunk)


def _extract_zip(src: BinaryIO, folder: Path, limit: int) -> None:
    """Extract a zip of images into ``folder``, refusing paths that escape it (zip slip),
    too many members and more than ``limit`` bytes in all (zip bombs)."""
    try:
        archive = zipfile.ZipFile(src)
    except zipfile.BadZipFile:
        raise CatalogFileError("images must be a zip file") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise CatalogFileError(f"zip has more than {MAX_ZIP_MEMBERS} files")
        root = folder.resolve()
        total = 0
        for member in members:
            target = (root / member.filename).resolve()
            if not target.is_relative_to(root) or target == root:
                raise CatalogFileError(f"zip member {member.filename!r} escapes the upload")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as data, target.open("wb") as out:
                while chunk := data.read(1 << 20):
                    total += len(chunk)
                    if total > limit:
                        raise CatalogFileError(f"zip expands to more than {limit} bytes")
                    out.write(chunk)
