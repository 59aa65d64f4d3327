"""lookalike: visual product recommendation: photo in, look-alike catalog products out."""

__version__ = "0.1.0"
