"""Entry point: ``python app.py`` starts the HTTP API (same as ``lookalike serve``)."""

from lookalike.api.app import serve

if __name__ == "__main__":
    serve()
