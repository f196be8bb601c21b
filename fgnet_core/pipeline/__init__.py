"""The reproducible pipeline: params.yaml -> stages (prepare, train, evaluate, report) called from notebooks."""
