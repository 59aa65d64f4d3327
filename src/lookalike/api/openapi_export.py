"""The API's OpenAPI schema as a file: the source of the web client's generated types.

``python -m lookalike.api.openapi_export web/openapi.json`` (or ``npm run generate-api``
in ``web/``, which also regenerates the TypeScript) builds the app without starting it —
the model, database and index load in its lifespan, which never runs here — and writes
its schema. ``tests/api/test_openapi.py`` fails when the committed files drift from the
code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lookalike.api.app import create_app
from lookalike.config import Settings


def openapi_schema() -> dict[str, Any]:
    """The schema the app serves at /api/v1/openapi.json."""
    # Without the working folder's .env: a developer's local file must not reach the
    # committed schema.
    schema: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()
    return schema


def render() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(openapi_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("output", nargs="?", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = render()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
