"""Fine-tuning a base model to a catalog's own categories and products (the versions
it registers live in :mod:`lookalike.models`)."""
