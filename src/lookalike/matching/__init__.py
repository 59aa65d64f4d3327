"""Local features, the descriptor index that finds candidates, geometric verification."""
