"""Prepare stage: raw corpus -> aligned frames, landmarks and fold label files for one dataset."""
from __future__ import annotations

import json

from fgnet_core.data.au_tables import canonical_dataset
from fgnet_core.data.ingest import IngestReport, ingest_bp4d, ingest_disfa
from fgnet_core.atomic import write_text
from fgnet_core.pipeline.config import Config, Layout

INGEST = {"BP4D": ingest_bp4d, "DISFA": ingest_disfa}


def prepare_dataset(config: Config, lay: Layout, dataset: str, progress: bool = True) -> IngestReport:
    """Ingest `<raw>/<DATASET>` into `workspace/aligned/<DATASET>`; counts go to reports/metrics/prepare_<DATASET>.json.

    The data-efficiency subsets (`train_N`, read by the training runs) are written here too: the sizes and the
    source (official lists or seeded samples) of `efficiency.sizes` / `efficiency.subsets` for the corpus.
    """
    dataset = canonical_dataset(dataset)
    raw = lay.raw_dir / dataset
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: raw {dataset} corpus not found (corpus: {config.corpus}); "
                                "see README: 'Using the real corpora'")
    prep, corpus = config.prepare, config.corpus
    report = INGEST[dataset](raw, lay.aligned_dir, workers=prep.workers, seed=config.seed,
                             transform_size=prep.transform_size, padding=prep.padding,
                             upsample=prep.detect_upsample[corpus], progress=progress,
                             subset_sizes=list(config.efficiency.sizes[corpus]),
                             subset_source=config.efficiency.subsets[corpus])
    counts = {**report.scan, "aligned": report.aligned, "align_failed": report.align_failed,
              "official_subset_missing": sum(report.subset_missing.values())}
    path = lay.metrics_dir / f"prepare_{dataset}.json"  # written like pipeline.runs.write_json, without its imports
    write_text(path, json.dumps(counts, indent=2) + "\n")
    return report
