"""Fine-tuning the model to a catalog's own product classes, and the model registry."""
