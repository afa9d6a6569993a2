"""Datasets: annotation parsers, the top-down pipeline and loaders (lib.datasets.loaders)."""
