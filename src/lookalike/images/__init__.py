"""Image decoding and preprocessing."""

from lookalike.images.loader import LoadedImage, load_image, read_image_bytes
from lookalike.images.preprocess import model_input, to_square

__all__ = ["LoadedImage", "load_image", "model_input", "read_image_bytes", "to_square"]
