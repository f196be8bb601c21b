"""Pipeline: params validation, the DVC stage / notebook contract, within-domain tables and the report builder."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fgnet_core.data.au_tables import DATASET_AUS
from fgnet_core.evaluation.baselines import PUBLISHED_F1
from fgnet_core.paths import REPO_ROOT
from fgnet_core.pipeline.config import Config, Layout, ParamsError, load_config, load_params, parse_config
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
    config = load_config()
    assert config.corpus == "demo" and config.preset == "tiny"
    assert set(config.train.recipes) == {"official", "tiny"}


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
    assert set(stages) == {"pretrain_corpus", "pretrain_generator", "pretrain_encoder", "prepare", "train",
                           "within_domain", "cross_domain", "data_efficiency", "compare_backbones", "report"}
    for name in ("prepare", "train", "data_efficiency"):  # one stage per dataset; folds, protocols, seeds inside
        assert stages[name]["foreach"] == "${datasets}", name
        assert re.search(r"-p dataset \$\{item\}", stages[name]["do"]["cmd"]), name
    for name, stage in stages.items():
        body = stage.get("do", stage)
        cmd = " ".join(body["cmd"].split())
        m = re.match(r"(env \$\{cpu\} )?papermill (notebooks/\S+\.ipynb) reports/notebooks/\S+\.ipynb -k python3 ", cmd)
        assert m, f"stage {name}: {cmd}"
        # every stage whose numbers the CI reproduces runs on the pinned CPU kernels
        assert bool(m.group(1)) == (not name.startswith("pretrain_")), f"stage {name}: {cmd}"
        nb = json.loads((REPO_ROOT / m.group(2)).read_text())
        declared = {line.split(" = ")[0] for line in "".join(_parameters_cell(nb)["source"]).splitlines()}
        passed = set(re.findall(r"-p (\w+) ", cmd))
        assert passed <= declared, f"stage {name} passes {passed - declared} that {m.group(2)} does not declare"
        if name not in ("prepare", "train"):  # downstream stages read metrics, never executed notebooks
            assert not any(str(d).startswith("reports/notebooks") for d in body["deps"]), name


def _fake_run_tables(lay: Layout, params: dict, rng: np.random.Generator) -> dict:
    """Write each dataset's training-stage table (one row per protocol x fold x seed) as the train stage does;
    return {(dataset, protocol, fold, seed): per-AU scores} and {(dataset, fold): all-present scores}."""
    written, allpos = {}, {}
    for ds in params["datasets"]:
        rows = []
        for fold in params["folds"]:
            rule = {f"AU{a:02d}": float(rng.uniform(0, 60)) for a in DATASET_AUS[ds]}  # one test set per fold
            rule["avg"] = float(np.mean(list(rule.values())))
            allpos[(ds, fold)] = rule
            for protocol in params["protocols"]:
                for seed in params["seeds"]:
                    scores = {f"AU{a:02d}": float(rng.uniform(0, 100)) for a in DATASET_AUS[ds]}
                    scores["avg"] = float(np.mean(list(scores.values())))
                    written[(ds, protocol, fold, seed)] = scores
                    rows.append({"dataset": ds, "protocol": protocol, "fold": fold, "seed": seed, "size": 0,
                                 "backbone": "pretrained", "run": f"{ds}_{fold}_{protocol}_s{seed}_pretrained",
                                 **{f"f1_{k}": v for k, v in scores.items()},
                                 **{f"allpos_f1_{k}": v for k, v in rule.items()}})
        path = lay.metrics_dir / "train" / f"{ds}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    return written, allpos


def test_within_domain_table_means_spread_and_paper_layout(tmp_path):
    from fgnet_core.pipeline.evaluate import within_domain
    from fgnet_core.pipeline.report import within_domain_markdown

    params = {**load_params(), "protocols": ["faithful", "clean"], "seeds": [0, 1, 2]}
    lay = Layout(tmp_path, parse_config(params))
    written, allpos = _fake_run_tables(lay, params, np.random.default_rng(0))
    table, flat = within_domain(lay.config, lay)
    folds, seeds = (0, 1, 2), (0, 1, 2)
    for ds in ("BP4D", "DISFA"):
        for protocol in ("faithful", "clean"):
            row = table[(table["dataset"] == ds) & (table["protocol"] == protocol)]
            assert len(row) == 1 and row["runs"].item() == 9 and row["backbone"].item() == "pretrained"
            for a in DATASET_AUS[ds]:
                expected = np.mean([written[(ds, protocol, f, s)][f"AU{a:02d}"] for f in folds for s in seeds])
                assert row[f"AU{a}"].item() == pytest.approx(expected)
            avg = np.array([[written[(ds, protocol, f, s)]["avg"] for s in seeds] for f in folds])  # [fold, seed]
            assert row["avg"].item() == pytest.approx(avg.mean(), abs=1e-4)
            assert row["sd_seeds"].item() == pytest.approx(avg.mean(axis=0).std(ddof=1), abs=1e-4)  # of fold means
            assert row["sd_folds"].item() == pytest.approx(avg.mean(axis=1).std(ddof=1), abs=1e-4)  # of seed means
            assert flat[f"{ds}_{protocol}"] == pytest.approx(
                {"f1_avg": avg.mean(), "sd_seeds": avg.mean(axis=0).std(ddof=1),
                 "sd_folds": avg.mean(axis=1).std(ddof=1)}, abs=1e-4)
        rule = table[(table["dataset"] == ds) & (table["protocol"] == "all-present rule")]
        assert len(rule) == 1
        assert rule["avg"].item() == pytest.approx(np.mean([allpos[(ds, f)]["avg"] for f in folds]))
        assert flat[f"{ds}_all_present_rule"]["f1_avg"] == pytest.approx(rule["avg"].item(), abs=1e-4)

        for published in (True, False):
            md = within_domain_markdown(table, ds, published).splitlines()
            assert md[0] == ("| method | " + " | ".join(f"AU{a}" for a in DATASET_AUS[ds])
                             + " | avg ± sd seeds | sd folds |")
            assert sum("(published)" in line for line in md) == (len(PUBLISHED_F1[ds]) if published else 0)
            ours = next(line for line in md if line.startswith("| FG-Net pretrained backbone, faithful (9 runs)"))
            f = flat[f"{ds}_faithful"]
            assert f"| {f['f1_avg']:.1f} ± {f['sd_seeds']:.1f} |" in ours
            assert sum(line.startswith("| predict every AU present (rule)") for line in md) == 1


def test_run_folders_are_named_by_spec(tmp_path):
    from fgnet_core.pipeline.config import RunSpec

    lay = Layout(tmp_path, parse_config({**load_params(), "backbone": "scratch"}))
    full, subset = RunSpec("BP4D", 1, "faithful", 2), RunSpec("DISFA", 0, "clean", 0, 150, "scratch")
    assert lay.run_dir_of(full) == tmp_path / "workspace" / "runs" / "BP4D" / "BP4D_1_faithful_s2_pretrained"
    assert lay.run_dir_of(subset) == tmp_path / "workspace" / "efficiency" / "DISFA" / "DISFA_0_clean_n150_s0_scratch"
    assert lay.demo_model == tmp_path / "workspace" / "runs" / "BP4D" / "BP4D_0_clean_s0_scratch" / "best.pt"


def test_within_domain_names_the_missing_run_table(tmp_path):
    from fgnet_core.pipeline.evaluate import within_domain

    with pytest.raises(FileNotFoundError, match=r"train.BP4D\.csv: run table missing; run the stage"):
        within_domain(load_config(), Layout(tmp_path, load_config()))


@pytest.mark.slow
def test_mini_pipeline_from_raw_corpus_to_report(tmp_path):
    """Every stage's library call on a few procedural faces: pretrain -> prepare -> train -> evaluate -> report."""
    from fgnet_core.democorpus.corpus import generate_demo_corpus

    params = load_params()
    params["train"].update(epochs=2, iterations=1)
    params["efficiency"]["sizes"]["demo"] = [4, 8]
    params["prepare"]["workers"] = 1
    params["seeds"] = [0, 1]
    params["runtime"].update(workers=1, threads=1)
    params["pretrain"]["corpus"]["faces"] = 40
    params["pretrain"]["generator"].update(steps=2, batch_size=4)
    params["pretrain"]["encoder"].update(steps=2, batch_size=4, holdout=8)
    config = parse_config(params)
    lay = Layout(tmp_path, config)
    generate_demo_corpus(lay.raw_dir, frames_per_subject=8, subjects_per_fold=1, workers=1)
    quiet = lambda *_: None  # noqa: E731
    with torch.backends.mkldnn.flags(enabled=False):  # oneDNN would JIT kernels for each of the many tiny batch shapes
        _run_every_stage(config, lay, quiet)
    check_report(config, lay)


def _run_every_stage(params: Config, lay: Layout, quiet) -> None:
    from fgnet_core.pipeline.evaluate import cross_domain, save_table, within_domain
    from fgnet_core.pipeline.prepare import prepare_dataset
    from fgnet_core.pipeline.pretrain import pretrain_corpus, pretrain_generator
    from fgnet_core.pipeline.pretrain_encoder import pretrain_encoder
    from fgnet_core.pipeline.report import write_report
    from fgnet_core.pipeline.train_stage import run_efficiency_stage, run_training_stage

    assert pretrain_corpus(params, lay)["faces"] == 40
    assert pretrain_generator(params, lay, log=quiet)["steps"] == 2
    assert pretrain_encoder(params, lay, log=quiet)["steps"] == 2
    assert lay.checkpoint("stylegan").is_file() and lay.checkpoint("encoder").is_file()
    for ds in params.datasets:
        report = prepare_dataset(params, lay, ds, progress=False)
        assert report.aligned >= 12 and report.align_failed <= 2
        runs = run_training_stage(params, lay, ds, log=quiet)
        assert len(runs) == 2 * 3 * 2  # protocols x folds x seeds
        assert set(map(tuple, runs[["protocol", "fold", "seed"]].values)) == {
            (p, f, s) for p in ("clean", "faithful") for f in (0, 1, 2) for s in (0, 1)}
        for run in runs["run"]:
            assert (lay.runs_dir / ds / run / "best.pt").is_file()
        lines = []  # a rerun finds every run finished (metrics.json matching its spec) and trains nothing
        stamps = {run: (lay.runs_dir / ds / run / "best.pt").stat().st_mtime_ns for run in runs["run"]}
        pd.testing.assert_frame_equal(run_training_stage(params, lay, ds, log=lines.append), runs)
        assert "12 of 12 runs already finished" in lines
        assert stamps == {run: (lay.runs_dir / ds / run / "best.pt").stat().st_mtime_ns for run in runs["run"]}
        table = run_efficiency_stage(params, lay, ds, log=quiet)
        assert sorted(table["size"].unique()) == [4, 8] and len(table) == 2 * 3  # sizes x folds x 1 seed
        assert (table["train_frames"] <= table["size"]).all()
    save_table(*within_domain(params, lay), "within_domain", lay)
    per_run, table, flat = cross_domain(params, lay, log=quiet)
    save_table(table, flat, "cross_domain", lay)
    assert len(per_run) == 2 * 3 * 2 * 2  # sources x folds ('all' on the demo) x seeds x targets
    write_report(params, lay)


def check_report(params: Config, lay: Layout) -> None:
    text = (lay.reports_dir / "README.md").read_text()
    within = json.loads((lay.metrics_dir / "within_domain.json").read_text())
    for ds in ("BP4D", "DISFA"):
        assert f"## Within-domain: {ds}" in text
        for protocol in ("clean", "faithful"):
            w = within[f"{ds}_{protocol}"]
            assert f"| FG-Net pretrained backbone, {protocol} (6 runs) |" in text
            assert f"| {w['f1_avg']:.1f} ± {w['sd_seeds']:.1f} |" in text
        train = json.loads((lay.metrics_dir / "train" / f"{ds}.json").read_text())["f1_avg_over_seeds"]
        assert set(train) == {"clean", "faithful"} and all(v["n"] == 2 for v in train.values())
        assert json.loads((lay.metrics_dir / "efficiency" / f"{ds}.json").read_text())["f1_avg_over_seeds"].keys() \
            == {"4", "8"}
    assert "(published)" not in text  # demo numbers are never shown beside published ones
    cross = json.loads((lay.metrics_dir / "cross_domain.json").read_text())
    assert {f"pretrained_{s}_to_{t}" for s in ("BP4D", "DISFA") for t in ("BP4D", "DISFA")} == set(cross)
    assert "## Cross-domain (AUs 1, 2, 4, 6, 12)" in text and "## Data efficiency" in text
    figures = {p.name for p in lay.figures_dir.glob("*.png")}
    assert figures == {"per_au_f1.png", "cross_domain.png", "data_efficiency.png", "training_curves.png",
                       "examples_bp4d.png", "examples_disfa.png", "features_pca.png"}
    for name in figures:
        assert f"(figures/{name})" in text
    for name in ("generator_samples.png", "encoder_inversions.png", "generator_losses.csv", "encoder_losses.csv"):
        assert (lay.reports_dir / "pretrain" / name).is_file(), name
    curves = sorted(p.name for p in lay.curves_dir.glob("*.csv"))
    assert curves == sorted(f"{stage}_{ds}.csv" for stage in ("train", "efficiency") for ds in ("BP4D", "DISFA"))
    train_curves = pd.read_csv(lay.curves_dir / "train_BP4D.csv")
    assert len(train_curves.groupby(["protocol", "fold", "seed"])) == 12 and set(train_curves["epoch"]) == {1, 2}
