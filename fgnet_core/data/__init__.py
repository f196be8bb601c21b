"""Data layer: AU tables, folds, label files, alignment, heatmap targets, datasets, ingestion of raw corpora."""
