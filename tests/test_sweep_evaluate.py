"""The seed sweeps and their statistics: run names, skipping finished runs, seed summaries, the spread of a table
cell, the data-efficiency curve, the cross-domain drop, the backbone comparison's claims, and which backbone
files a run starts from."""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from itertools import product

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fgnet_core import checkpoints
from fgnet_core.data.au_tables import CROSS_DOMAIN_AUS
from fgnet_core.paths import REPO_ROOT
from fgnet_core.pipeline import sweep
from fgnet_core.pipeline.config import Layout, ParamsError, RunSpec, load_config, load_params, parse_config
from fgnet_core.pipeline.sweep import efficiency_specs, run_sweep, seed_summary, training_specs


# ----------------------------------------------------------------------------------------------- run specs

def test_run_names_are_unique_per_spec():
    values = {"dataset": ["BP4D", "DISFA"], "fold": [0, 1, 2], "protocol": ["clean", "faithful"], "seed": [0, 1, 12],
              "size": [0, 20, 150], "backbone": ["pretrained", "scratch"]}
    assert [f.name for f in fields(RunSpec)] == list(values)
    specs = [RunSpec(*combo) for combo in product(*values.values())]
    names = {s.name for s in specs}
    assert len(names) == len(specs)
    assert RunSpec("BP4D", 0, "clean", 1, 0, "scratch").name == "BP4D_0_clean_s1_scratch"
    assert RunSpec("BP4D", 0, "clean", 1, 20, "scratch").name == "BP4D_0_clean_n20_s1_scratch"
    assert RunSpec("BP4D", 1, "clean", 2).name != RunSpec("BP4D", 12, "clean", 2).name  # no digit run-together


def test_stage_specs_cover_protocols_folds_seeds_and_sizes():
    params = {**load_params(), "protocols": ["clean", "faithful"], "folds": [0, 1, 2], "seeds": [0, 1]}
    train = training_specs(parse_config(params), "bp4d", "scratch")
    assert len(train) == 2 * 3 * 2 and {s.size for s in train} == {0} and {s.backbone for s in train} == {"scratch"}
    assert {(s.protocol, s.fold, s.seed) for s in train} == set(product(["clean", "faithful"], [0, 1, 2], [0, 1]))
    params["efficiency"] = {**params["efficiency"], "seeds": [3], "protocol": "faithful"}
    eff = efficiency_specs(parse_config(params), "DISFA", "pretrained")
    assert {(s.size, s.fold, s.seed, s.protocol, s.dataset) for s in eff} == {
        (n, f, 3, "faithful", "DISFA") for n in params["efficiency"]["sizes"]["demo"] for f in (0, 1, 2)}


# ---------------------------------------------------------------------------------------------- run_sweep

def test_run_sweep_skips_finished_runs_and_reruns_changed_ones(tmp_path, monkeypatch):
    trained = []

    def fake_run(spec, params, root, run_dir, threads):
        trained.append(spec.name)
        metrics = {"f1_avg": 10.0 * spec.seed + spec.fold, "threads": threads}
        from pathlib import Path

        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "metrics.json").write_text(json.dumps({"spec": asdict(spec), "metrics": metrics}))
        return metrics

    monkeypatch.setattr(sweep, "_run_in_worker", fake_run)
    specs = [RunSpec("BP4D", f, "clean", s) for f in (0, 1) for s in (0, 1)]
    first = run_sweep(specs, {}, tmp_path, tmp_path / "runs", workers=1, threads=1, log=lambda *_: None)
    assert sorted(trained) == sorted(s.name for s in specs)
    assert list(first) == [s.name for s in specs]  # in spec order, whatever order they ran in
    assert first["BP4D_1_clean_s1_pretrained"]["f1_avg"] == 11.0

    trained.clear()
    lines = []
    again = run_sweep(specs, {}, tmp_path, tmp_path / "runs", workers=1, threads=1, log=lines.append)
    assert trained == [] and again == first and "4 of 4 runs already finished" in lines

    changed = tmp_path / "runs" / specs[1].name / "metrics.json"  # a file from a run of other settings
    done = json.loads(changed.read_text())
    done["spec"]["backbone"] = "scratch"
    changed.write_text(json.dumps(done))
    (tmp_path / "runs" / specs[2].name / "metrics.json").write_text("{not json")  # half-written
    trained.clear()
    third = run_sweep(specs, {}, tmp_path, tmp_path / "runs", workers=1, threads=1, log=lambda *_: None)
    assert sorted(trained) == sorted([specs[1].name, specs[2].name]) and third == first


def test_seed_summary():
    assert seed_summary([1.0, 2.0, 3.0, 4.0]) == {"mean": 2.5, "sd": pytest.approx(1.2910, abs=1e-4), "n": 4}
    assert seed_summary([1.0, 2.0, 3.0, 4.0])["sd"] == round(float(np.std([1, 2, 3, 4], ddof=1)), 4)
    assert seed_summary([7.5]) == {"mean": 7.5, "sd": 0.0, "n": 1}


# --------------------------------------------------------------------------------------------- statistics

F1 = np.array([[50.0, 54.0, 58.0],   # fold 0: seeds 0, 1, 2
               [40.0, 42.0, 47.0],   # fold 1
               [60.0, 61.0, 65.0]])  # fold 2


def _runs(values=F1, **const) -> pd.DataFrame:
    rows = [{"fold": f, "seed": s, "f1_avg": values[f, s], **const} for f in range(3) for s in range(3)]
    return pd.DataFrame(rows)


def test_spread_is_sd_over_seeds_of_fold_means_and_sd_over_folds():
    from fgnet_core.pipeline.evaluate import spread

    s = spread(_runs(), "f1_avg")
    per_seed, per_fold = F1.mean(axis=0), F1.mean(axis=1)  # [50, 52.33, 56.67], [54, 43, 62]
    assert s["mean"] == pytest.approx(F1.mean(), abs=1e-4)
    assert s["sd_seeds"] == pytest.approx(per_seed.std(ddof=1), abs=1e-4)
    assert s["sd_folds"] == pytest.approx(per_fold.std(ddof=1), abs=1e-4)
    assert (s["n_seeds"], s["n_folds"]) == (3, 3)
    assert s["sd_seeds"] < s["sd_folds"]  # this table's folds differ more than its seeds
    one = spread(_runs()[lambda d: d["seed"] == 0], "f1_avg")
    assert one["sd_seeds"] == 0.0 and one["mean"] == pytest.approx(F1[:, 0].mean(), abs=1e-4)


def test_efficiency_curve_adds_the_full_training_set_point():
    from fgnet_core.pipeline.evaluate import efficiency_curve

    subset = pd.concat([_runs(F1 - 20, size=20, train_frames=20), _runs(F1 - 10, size=50, train_frames=48)])
    subset = subset[subset["seed"] == 0].assign(dataset="BP4D", backbone="pretrained", protocol="faithful")
    full = pd.concat([_runs(F1, size=0, train_frames=300, protocol="faithful"),
                      _runs(F1 + 30, size=0, train_frames=300, protocol="clean")]).assign(
        dataset="BP4D", backbone="pretrained")
    curve = efficiency_curve(subset, full, "faithful")
    assert list(curve["size"]) == [20, 50, "all"] and list(curve["train_frames"]) == [20, 48, 300]
    assert list(curve["n_seeds"]) == [1, 1, 3] and list(curve["runs"]) == [3, 3, 9]
    assert curve["f1_avg"].tolist() == pytest.approx([F1[:, 0].mean() - 20, F1[:, 0].mean() - 10, F1.mean()],
                                                     abs=1e-4)  # the clean runs are not mixed in
    assert curve["sd_seeds"].iloc[-1] == pytest.approx(F1.mean(axis=0).std(ddof=1), abs=1e-4)
    assert (curve["protocol"] == "faithful").all()


def test_cross_domain_summary_drop_is_the_targets_own_f1_minus_the_transfer():
    from fgnet_core.pipeline.evaluate import cross_domain_summary

    base = {("BP4D", "BP4D"): 60.0, ("BP4D", "DISFA"): 35.0, ("DISFA", "DISFA"): 50.0, ("DISFA", "BP4D"): 42.0}
    rows = []
    for (src, tgt), value in base.items():
        for fold, seed in product(range(3), range(2)):
            avg = value + fold - seed  # fold means differ by 1, seed means by 1
            rows.append({"source": src, "target": tgt, "fold": fold, "seed": seed, "backbone": "pretrained",
                         "protocol": "clean", **{f"AU{a:02d}": avg for a in CROSS_DOMAIN_AUS}, "avg": avg})
    table, flat = cross_domain_summary(pd.DataFrame(rows))
    by = {(r["source"], r["target"]): r for _, r in table.iterrows()}
    for (src, tgt), value in base.items():
        assert by[(src, tgt)]["avg"] == pytest.approx(value + 1 - 0.5)
        assert by[(src, tgt)]["sd_seeds"] == pytest.approx(np.std([0, 1], ddof=1), abs=1e-4)
        assert by[(src, tgt)]["sd_folds"] == pytest.approx(1.0, abs=1e-4) and by[(src, tgt)]["runs"] == 6
        assert flat[f"pretrained_{src}_to_{tgt}"]["f1_avg"] == pytest.approx(value + 0.5)
    assert by[("BP4D", "DISFA")]["drop"] == pytest.approx(50.0 - 35.0)  # DISFA's own models minus BP4D's on DISFA
    assert by[("DISFA", "BP4D")]["drop"] == pytest.approx(60.0 - 42.0)
    assert by[("BP4D", "BP4D")]["drop"] == 0.0 and by[("DISFA", "DISFA")]["drop"] == 0.0


# ------------------------------------------------------------------------------------ backbone comparison

def test_difference_is_the_difference_of_seed_means_with_its_standard_error():
    from fgnet_core.pipeline.compare import difference

    p, s = pd.Series([50.0, 52.0, 54.0]), pd.Series([40.0, 41.0, 45.0])
    d = difference(p, s)
    se = np.sqrt(4.0 / 3 + 7.0 / 3)  # sample variances 4 and 7 over 3 seeds each
    assert d == {"pretrained": 52.0, "scratch": 42.0, "difference": 10.0, "se": round(se, 2), "beyond_2se": True}
    close = difference(pd.Series([50.0, 60.0, 40.0]), pd.Series([45.0, 50.0, 46.0]))
    assert close["difference"] == pytest.approx(3.0) and close["se"] == pytest.approx(
        np.sqrt(100 / 3 + 7 / 3), abs=0.01)
    assert close["beyond_2se"] is False
    assert difference(s, p)["beyond_2se"] is False  # one-sided: scratch better is never a claim for pretraining


def test_claims_compare_backbones_within_domain_across_domains_and_at_the_smallest_size():
    from fgnet_core.pipeline.compare import claims

    rows = []
    for ds, backbone, size, seed, fold in product(("BP4D", "DISFA"), ("pretrained", "scratch"), (0, 20, 50),
                                                  (0, 1, 2), (0, 1, 2)):
        bonus = {"pretrained": 5.0, "scratch": 0.0}[backbone] if size != 20 else 0.0
        rows.append({"dataset": ds, "backbone": backbone, "size": size, "seed": seed, "fold": fold,
                     "f1_avg": 40.0 + bonus + seed + fold + (10 if ds == "DISFA" else 0)})
    cross = pd.DataFrame([{"source": s, "target": t, "backbone": b, "seed": seed, "fold": fold,
                           "avg": 30.0 + (2.0 * seed if b == "pretrained" else seed)}
                          for s, t, b, seed, fold in product(("BP4D", "DISFA"), ("BP4D", "DISFA"),
                                                             ("pretrained", "scratch"), (0, 1, 2), (0, 1, 2))])
    table = claims(pd.DataFrame(rows), cross, ["BP4D", "DISFA"]).set_index("claim")
    assert list(table.index) == ["within-domain BP4D", "within-domain DISFA", "cross-domain BP4D → DISFA",
                                 "cross-domain DISFA → BP4D", "BP4D with 20 training frames",
                                 "DISFA with 20 training frames"]
    within = table.loc["within-domain BP4D"]
    assert (within["pretrained"], within["scratch"], within["difference"], within["se"]) == (47.0, 42.0, 5.0, 0.82)
    assert within["beyond_2se"]  # 5 > 2 x sqrt(1/3 + 1/3)
    assert table.loc["within-domain DISFA", "difference"] == 5.0
    small = table.loc["BP4D with 20 training frames"]  # the smallest subset, where the bonus is 0
    assert small["difference"] == 0.0 and not small["beyond_2se"]
    transfer = table.loc["cross-domain BP4D → DISFA"]
    assert (transfer["pretrained"], transfer["scratch"], transfer["difference"]) == (32.0, 31.0, 1.0)
    assert transfer["se"] == pytest.approx(np.sqrt(4 / 3 + 1 / 3), abs=0.01) and not transfer["beyond_2se"]


def test_comparison_config_replaces_protocols_seeds_and_sizes_only():
    from dataclasses import fields

    from fgnet_core.pipeline.compare import comparison_config

    config = load_config()
    before = repr(config)
    cp = comparison_config(config)
    assert cp.protocols == (config.compare.protocol,) and cp.seeds == config.compare.seeds
    assert cp.efficiency.seeds == config.compare.seeds
    assert cp.efficiency.protocol == config.compare.protocol
    assert cp.efficiency.sizes == {config.corpus: config.compare.sizes}
    assert repr(config) == before  # the config it came from is left as it was
    assert all(getattr(cp, f.name) == getattr(config, f.name) for f in fields(config)
               if f.name not in ("protocols", "seeds", "efficiency"))


def test_attempt_config_changes_only_the_recipe_of_a_copy():
    from fgnet_core.pipeline.compare import attempt_config, comparison_config

    cp = comparison_config(load_config())
    ap = attempt_config(cp, {"lr": 5.0e-4})
    assert ap.recipe.lr == 5.0e-4 and ap.recipe.epochs == cp.recipe.epochs and ap.seeds == cp.seeds
    assert cp.recipe.lr == 2.0e-3  # the comparison's own config is untouched
    assert attempt_config(cp, {"freeze_backbone": True}).recipe.freeze_backbone is True


# ----------------------------------------------------------------------------------------------- config

def _params_file(tmp_path, edit):
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("edit, names", [
    (lambda p: p.update(backbone="imagenet"), r"backbone 'imagenet'"),
    (lambda p: p.pop("backbone"), r"backbone None"),
    (lambda p: p.update(seeds=[]), r"seeds must be"),
    (lambda p: p.update(seeds=[0, 0]), r"seeds must be.*\[0, 0\]"),
    (lambda p: p.update(seeds=["a"]), r"seeds must be.*'a'"),
    (lambda p: p.update(seeds=[-1]), r"seeds must be.*-1"),
    (lambda p: p.update(seeds=[True]), r"seeds must be"),
    (lambda p: p.update(seeds=3), r"seeds must be"),
    (lambda p: p["paths"]["checkpoints"].pop("tiny"), r"paths\.checkpoints has no entry for preset 'tiny'"),
])
def test_bad_backbone_and_seeds_name_the_key(tmp_path, edit, names):
    with pytest.raises(ParamsError, match=names):
        load_params(_params_file(tmp_path, edit))


# ------------------------------------------------------------------------------------- backbone weights

def _tiny_backbone_files(root, seed: int = 11):
    """Seeded tiny StyleGAN2 and pSp files in the official formats under root/w/; -> (generator, encoder)."""
    from fgnet_core.models.fgnet import FGNet

    torch.manual_seed(seed)
    source = FGNet("tiny")
    source.encoder.latent_avg.normal_()
    checkpoints.save_stylegan2(source.generator, root / "w" / "g.pt",
                               latent_avg=torch.randn(source.generator.style_dim))
    checkpoints.save_psp_encoder(source.encoder, root / "w" / "e.pt", decoder=source.generator,
                                 output_size=source.generator.size)
    return source


def _tiny_params(backbone: str) -> dict:
    params = load_params()
    params.update(preset="tiny", backbone=backbone)
    params["paths"] = {**params["paths"], "checkpoints": {**params["paths"]["checkpoints"],
                                                          "tiny": {"stylegan": "w/g.pt", "encoder": "w/e.pt"}}}
    return params


def test_pretrained_backbone_starts_from_the_presets_files(tmp_path):
    from fgnet_core.pipeline.runs import build_model

    source = _tiny_backbone_files(tmp_path)
    config = parse_config(_tiny_params("pretrained"))
    net = build_model(config, Layout(tmp_path, config))
    for ours, theirs in ((net.generator, source.generator), (net.encoder, source.encoder)):
        a, b = ours.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    again = build_model(config, Layout(tmp_path, config))
    assert all(torch.equal(v, again.interpreter.state_dict()[k]) for k, v in net.interpreter.state_dict().items())


def test_scratch_backbone_reads_no_files(tmp_path):
    from fgnet_core.pipeline.runs import build_model

    params = parse_config(_tiny_params("scratch"))  # the files named there do not exist yet
    net = build_model(params, Layout(tmp_path, params))
    source = _tiny_backbone_files(tmp_path)
    ours, theirs = net.generator.state_dict(), source.generator.state_dict()
    assert any(not torch.equal(ours[k], theirs[k]) for k in ours if ours[k].is_floating_point())
    again = build_model(params, Layout(tmp_path, params))  # now the files exist: still random, the same seed
    for key, value in net.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    missing = _tiny_params("pretrained")
    missing["paths"]["checkpoints"]["tiny"] = {"stylegan": "w/missing.pt", "encoder": "w/e.pt"}
    with pytest.raises(checkpoints.CheckpointError, match=r"missing\.pt"):
        build_model(parse_config(missing), Layout(tmp_path, parse_config(missing)))
