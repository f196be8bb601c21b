"""Pipeline: params validation, the DVC stage / notebook contract, within-domain tables and the report builder."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fgnet_core.data.au_tables import DATASET_AUS
from fgnet_core.evaluation.baselines import PUBLISHED_F1
from fgnet_core.paths import REPO_ROOT
from fgnet_core.pipeline.config import Layout, ParamsError, load_params
from fgnet_core.pipeline.notebook import check_injected_parameters

NOTEBOOKS = REPO_ROOT / "notebooks"
STAGE_NOTEBOOKS = sorted(NOTEBOOKS.glob("0*.ipynb"))


def _write_params(tmp_path: Path, edit) -> Path:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_repository_params_load():
    params = load_params()
    assert params["corpus"] == "demo" and params["preset"] == "tiny"
    assert set(params["train"]["recipes"]) == {"official", "tiny"}


@pytest.mark.parametrize("edit, names", [
    (lambda p: p.update(epochs=3), "epochs"),
    (lambda p: p.update(preset="huge"), "huge"),
    (lambda p: p.update(protocols=["faithful", "sloppy"]), "sloppy"),
    (lambda p: p.update(corpus="elsewhere"), "elsewhere"),
    (lambda p: p["prepare"]["detect_upsample"].pop("demo"), "detect_upsample"),
    (lambda p: p["evaluation"]["cross_domain_folds"].update(demo="some"), r"evaluation\.cross_domain_folds\.demo"),
    (lambda p: p["evaluation"].update(cross_domain_folds="most"), r"evaluation\.cross_domain_folds must be"),
])
def test_bad_params_name_the_key(tmp_path, edit, names):
    with pytest.raises(ParamsError, match=names):
        load_params(_write_params(tmp_path, edit))


def test_params_file_errors_name_the_file(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("corpus: [demo\n")
    with pytest.raises(ParamsError, match="bad.yaml: not valid YAML"):
        load_params(bad)


def test_unknown_papermill_parameter_stops_the_notebook():
    defaults = 'dataset = "BP4D"  # which\nfold = 0  # which fold\n'
    check_injected_parameters([""])  # interactive: nothing injected
    check_injected_parameters(["", defaults, '# Parameters\ndataset = "DISFA"\nfold = 2\n', "setup()"])
    with pytest.raises(ParamsError, match="unknown notebook parameter.*epoch.*expected dataset, fold"):
        check_injected_parameters(["", defaults, '# Parameters\nepoch = 3\nfold = 1\n', "setup()"])


def _parameters_cell(nb: dict) -> dict:
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    return tagged[0]


@pytest.mark.parametrize("path", STAGE_NOTEBOOKS + sorted(NOTEBOOKS.glob("explore_*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_stripped_and_start_with_a_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    cell = _parameters_cell(nb)
    assert code[0] is cell
    for line in "".join(cell["source"]).splitlines():
        assert re.fullmatch(r"[a-z_][a-z0-9_]* = .+  # .+", line), f"{path.name}: not 'name = value  # comment': {line}"
    for c in code:
        assert c.get("outputs") == [] and c.get("execution_count") is None, f"{path.name} holds outputs"
    if path in STAGE_NOTEBOOKS:  # thin: the logic lives in fgnet_core
        assert sum(len(c["source"]) for c in code) <= 40


def test_dvc_stages_run_stage_notebooks_with_papermill():
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages) == {"prepare", "train", "within_domain", "cross_domain", "data_efficiency", "report"}
    assert set(stages["train"]["matrix"]) == {"dataset", "fold", "protocol"}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        cmd = " ".join(body["cmd"].split())
        m = re.match(r"papermill (notebooks/\S+\.ipynb) reports/notebooks/\S+\.ipynb -k python3 ", cmd)
        assert m, f"stage {name}: {cmd}"
        nb = json.loads((REPO_ROOT / m.group(1)).read_text())
        declared = {line.split(" = ")[0] for line in "".join(_parameters_cell(nb)["source"]).splitlines()}
        passed = set(re.findall(r"-p (\w+) ", cmd))
        assert passed <= declared, f"stage {name} passes {passed - declared} that {m.group(1)} does not declare"
        if name not in ("prepare", "train"):  # downstream stages read metrics, never executed notebooks
            assert not any(str(d).startswith("reports/notebooks") for d in body["deps"]), name


def _fake_run_metrics(lay: Layout, params: dict, rng: np.random.Generator) -> dict:
    """Write one metrics JSON per dataset x fold x protocol as train_run would; return the values."""
    written = {}
    for ds in params["datasets"]:
        for fold in params["folds"]:
            allpos = {f"AU{a:02d}": float(rng.uniform(0, 60)) for a in DATASET_AUS[ds]}  # one test set per fold
            allpos["avg"] = float(np.mean(list(allpos.values())))
            for protocol in params["protocols"]:
                scores = {f"AU{a:02d}": float(rng.uniform(0, 100)) for a in DATASET_AUS[ds]}
                scores["avg"] = float(np.mean(list(scores.values())))
                metrics = {"dataset": ds, "fold": fold, "protocol": protocol,
                           **{f"f1_{k}": v for k, v in scores.items()},
                           **{f"allpos_f1_{k}": v for k, v in allpos.items()}}
                path = lay.run_metrics(ds, fold, protocol)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(metrics))
                written[(ds, protocol, fold)] = (scores, allpos)
    return written


def test_within_domain_table_means_and_paper_layout(tmp_path):
    from fgnet_core.pipeline.evaluate import within_domain
    from fgnet_core.pipeline.report import within_domain_markdown

    params = {**load_params(), "protocols": ["faithful", "clean"]}
    lay = Layout(tmp_path, params)
    written = _fake_run_metrics(lay, params, np.random.default_rng(0))
    table, flat = within_domain(params, lay)
    for ds in ("BP4D", "DISFA"):
        for protocol in ("faithful", "clean"):
            folds = [written[(ds, protocol, f)][0] for f in (0, 1, 2)]
            mean_row = table[(table["dataset"] == ds) & (table["protocol"] == protocol) & (table["fold"] == "mean")]
            assert len(mean_row) == 1
            for a in DATASET_AUS[ds]:
                expected = np.mean([f[f"AU{a:02d}"] for f in folds])
                assert mean_row[f"AU{a}"].item() == pytest.approx(expected)
                assert flat[f"{ds}_{protocol}_AU{a:02d}"] == pytest.approx(expected, abs=1e-4)
            assert flat[f"{ds}_{protocol}_avg"] == pytest.approx(np.mean([f["avg"] for f in folds]), abs=1e-4)
        baseline = np.mean([written[(ds, "faithful", f)][1]["avg"] for f in (0, 1, 2)])
        assert flat[f"{ds}_all-present_avg"] == pytest.approx(baseline, abs=1e-4)
        assert len(table[(table["dataset"] == ds) & (table["protocol"] == "all-present")]) == 4  # 3 folds + mean

        md = within_domain_markdown(table, ds).splitlines()
        assert md[0] == "| method | " + " | ".join(f"AU{a}" for a in DATASET_AUS[ds]) + " | avg |"
        published = [line for line in md if "(published)" in line]
        assert len(published) == len(PUBLISHED_F1[ds])
        ours = next(line for line in md if line.startswith("| ours (faithful, 3-fold mean)"))
        assert ours.endswith(f"| {flat[f'{ds}_faithful_avg']:.1f} |")
        assert sum(line.startswith("| predict every AU present") for line in md) == 1


def test_subset_runs_have_their_own_metrics_files(tmp_path):
    from fgnet_core.pipeline.runs import run_metrics_path

    lay = Layout(tmp_path, load_params())
    assert run_metrics_path(lay, "bp4d", 1, "faithful") == lay.metrics_dir / "runs" / "BP4D_1_faithful.json"
    assert run_metrics_path(lay, "DISFA", 0, "clean", 150) == lay.metrics_dir / "efficiency" / "DISFA_0_clean_n150.json"


def test_within_domain_names_the_missing_metrics_file(tmp_path):
    from fgnet_core.pipeline.evaluate import within_domain

    with pytest.raises(FileNotFoundError, match=r"BP4D_0_faithful\.json: metrics file missing"):
        within_domain(load_params(), Layout(tmp_path, load_params()))


@pytest.mark.slow
def test_mini_pipeline_from_raw_corpus_to_report(tmp_path):
    """Every stage's library call on a few procedural faces: prepare -> train -> evaluate -> report."""
    from fgnet_core.data.synthetic import generate_demo_corpus

    params = load_params()
    params["train"].update(epochs=2, iterations=1)
    params["efficiency"]["sizes"]["demo"] = [4, 8]
    params["prepare"]["workers"] = 1
    lay = Layout(tmp_path, params)
    generate_demo_corpus(lay.raw_dir, frames_per_subject=8, subjects_per_fold=1, workers=1)
    quiet = lambda *_: None  # noqa: E731
    with torch.backends.mkldnn.flags(enabled=False):  # oneDNN would JIT kernels for each of the many tiny batch shapes
        _run_every_stage(params, lay, quiet)
        check_entry_point_places_runs_like_the_pipeline(params, lay, quiet)
    check_report(lay)


def _run_every_stage(params: dict, lay: Layout, quiet) -> None:
    from fgnet_core.pipeline.evaluate import cross_domain, data_efficiency, save_table, within_domain
    from fgnet_core.pipeline.prepare import prepare_dataset
    from fgnet_core.pipeline.report import write_report
    from fgnet_core.pipeline.runs import publish_run, train_run

    for ds in params["datasets"]:
        report = prepare_dataset(params, lay, ds, progress=False)
        assert report.aligned >= 12 and report.align_failed <= 2
        for fold in params["folds"]:
            publish_run(train_run(params, lay, ds, fold, "faithful", log=quiet), lay,
                        lay.run_metrics(ds, fold, "faithful"))
        save_table(*data_efficiency(params, lay, ds, log=quiet), f"efficiency_{ds}", lay)
    save_table(*within_domain(params, lay), "within_domain", lay)
    save_table(*cross_domain(params, lay, log=quiet), "cross_domain", lay)
    write_report(params, lay)


def check_entry_point_places_runs_like_the_pipeline(params: dict, lay: Layout, quiet) -> None:
    """The torchrun entry point finds a finished subset run where the pipeline left it and writes the same metrics file."""
    from fgnet_core.pipeline.runs import run_metrics_path
    from fgnet_core.training.distributed import DistEnv, ddp_train_run

    eff = params["efficiency"]
    size = eff["sizes"]["demo"][0]
    path = run_metrics_path(lay, "DISFA", eff["fold"], eff["protocol"], size)
    assert path.parent.name == "efficiency" and path.exists()
    written = json.loads(path.read_text())
    path.unlink()
    out = ddp_train_run(params, "DISFA", eff["fold"], eff["protocol"], DistEnv(), size=size, log=quiet, lay=lay)
    assert out.run_dir == lay.efficiency_dir("DISFA") / out.name  # resumed the finished run: no retraining
    again = json.loads(path.read_text())
    assert again.pop("world_size") == 1
    assert again == written
    assert not any(lay.runs_dir.glob("*_n*"))


def check_report(lay: Layout) -> None:
    text = (lay.reports_dir / "README.md").read_text()
    within = json.loads((lay.metrics_dir / "within_domain.json").read_text())
    for ds in ("BP4D", "DISFA"):
        assert f"## Within-domain: {ds}" in text
        assert f"| ours (faithful, 3-fold mean) |" in text
        assert f"| {within[f'{ds}_faithful_avg']:.1f} |" in text
    cross = json.loads((lay.metrics_dir / "cross_domain.json").read_text())
    assert {"BP4D_to_DISFA_avg", "DISFA_to_BP4D_avg", "BP4D_to_BP4D_avg", "DISFA_to_DISFA_avg"} <= set(cross)
    assert "## Cross-domain (AUs 1, 2, 4, 6, 12)" in text and "## Data efficiency" in text
    figures = {p.name for p in lay.figures_dir.glob("*.png")}
    assert figures == {"per_au_f1.png", "cross_domain.png", "data_efficiency.png", "training_curves.png",
                       "examples_bp4d.png", "examples_disfa.png"}
    for name in figures:
        assert f"(figures/{name})" in text
    curves = sorted(p.name for p in lay.curves_dir.glob("*.csv") if "_n" not in p.stem)
    assert curves == sorted(f"{ds}_{f}_faithful.csv" for ds in ("BP4D", "DISFA") for f in (0, 1, 2))
