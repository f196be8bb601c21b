"""Evaluation: F1 metrics, running a model over a label file, cross-domain scoring."""
