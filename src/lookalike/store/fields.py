"""What a product's text may hold: one rule, taken from the ORM table, for every way in
(API schemas, catalog readers) and for every lookup the store makes.

PostgreSQL refuses NUL (``\\x00``) in text and text longer than a ``VARCHAR(n)``; SQLite
takes both. Checking before any database sees the value gives the same answer on both:
such text is invalid input where it would be stored, and matches nothing where it is
looked up (no product can hold it).
"""

from __future__ import annotations

from sqlalchemy import String, inspect

from lookalike.store.models import Product

NUL = "\x00"

# Attribute name -> longest text its column holds (sku, category, currency, ...), from the
# model so that a migration that widens a column widens the check with it.
MAX_LENGTH: dict[str, int] = {
    name: column.type.length
    for name, column in inspect(Product).columns.items()
    if isinstance(column.type, String) and column.type.length is not None
}


def no_nul(value: str) -> str:
    """``value``, or ValueError when it holds a NUL character."""
    if NUL in value:
        raise ValueError("contains a NUL character (\\x00)")
    return value


def check_text(field: str, value: str) -> str:
    """``value`` when a product's ``field`` can hold it on every database; else ValueError
    saying why not (the message names the field)."""
    try:
        no_nul(value)
    except ValueError as exc:
        raise ValueError(f"{field!r} {exc}") from None
    limit = MAX_LENGTH.get(field)
    if limit is not None and len(value) > limit:
        raise ValueError(f"{field!r} is {len(value)} characters long; at most {limit} fit")
    return value


def storable(value: str) -> bool:
    """False for text no product can hold: a lookup by it finds nothing."""
    return NUL not in value
