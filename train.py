"""Entry point: ``python train.py [options]`` is ``lookalike train [options]``."""

import sys

from lookalike.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]])
