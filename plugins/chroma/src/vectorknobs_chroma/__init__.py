"""vectorknobs-chroma."""
