"""Prepare stage: raw corpus -> aligned frames, landmarks and fold label files for one dataset."""
from __future__ import annotations

from fgnet_core.data.au_tables import canonical_dataset
from fgnet_core.data.ingest import IngestReport, ingest_bp4d, ingest_disfa
from fgnet_core.pipeline.config import Layout
from fgnet_core.pipeline.runs import write_json

INGEST = {"BP4D": ingest_bp4d, "DISFA": ingest_disfa}


def prepare_dataset(params: dict, lay: Layout, dataset: str, progress: bool = True) -> IngestReport:
    """Ingest `<raw>/<DATASET>` into `workspace/aligned/<DATASET>`; counts go to reports/metrics/prepare_<DATASET>.json."""
    dataset = canonical_dataset(dataset)
    raw = lay.raw_dir / dataset
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: raw {dataset} corpus not found (corpus: {params['corpus']}); "
                                "see README: 'Using the real corpora'")
    prep = params["prepare"]
    report = INGEST[dataset](raw, lay.aligned_dir, workers=int(prep["workers"]), seed=int(params["seed"]),
                             transform_size=prep["transform_size"], padding=prep["padding"],
                             upsample=int(prep["detect_upsample"][params["corpus"]]), progress=progress)
    counts = {**report.scan, "aligned": report.aligned, "align_failed": report.align_failed}
    write_json(lay.metrics_dir / f"prepare_{dataset}.json", counts)
    return report
