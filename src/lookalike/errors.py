"""Typed errors. Each one says what was wrong and where."""

from __future__ import annotations


class LookalikeError(Exception):
    """Base class of every error lookalike raises on purpose."""


class ImageError(LookalikeError):
    """An image could not be used. ``source`` names the file (or upload), ``reason`` says why."""

    code = "image_error"

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ImageNotFoundError(ImageError):
    code = "not_found"


class ImageTooLargeError(ImageError):
    code = "too_large"


class NotAnImageError(ImageError):
    code = "not_an_image"


class CorruptImageError(ImageError):
    code = "corrupt"


class CatalogFileError(LookalikeError):
    """A catalog file (CSV/JSONL/folder) is missing or malformed."""


class ProductNotFoundError(LookalikeError):
    """No product has this SKU."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"no product with SKU {sku!r}")
        self.sku = sku


class UnknownCategoryError(LookalikeError):
    """A filter names a category no product has (a search would silently find nothing)."""

    def __init__(self, category: str, known: list[str]) -> None:
        shown = ", ".join(repr(c) for c in known[:10])
        more = f" and {len(known) - 10} more" if len(known) > 10 else ""
        super().__init__(
            f"no product has category {category!r}; the catalog's categories: "
            f"{shown or 'none'}{more}"
        )
        self.category = category


class ModelVersionError(LookalikeError):
    """Embeddings of different model versions would be mixed."""


class AspectError(LookalikeError, ValueError):
    """Aspect weights that cannot be used: all zero, or an aspect the catalog's vectors
    were embedded without."""


class FeedbackError(LookalikeError, ValueError):
    """ "More / less like this" marks that cannot be used: too many, or unknown SKUs."""
