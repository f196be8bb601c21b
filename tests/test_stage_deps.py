"""dvc.yaml declares what each stage runs: every `fgnet_core` module its notebook imports (transitively) and
every params key its code reads; and DVC itself sees a stage change when one of those modules changes."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from fgnet_core.paths import REPO_ROOT
from fgnet_core.pipeline.stage_deps import (
    deepest_reads, missing_code_deps, missing_params, notebook_param_reads, notebook_source, read_stages, stage_code,
)

STAGES = read_stages(REPO_ROOT / "dvc.yaml")


# ------------------------------------------------------------------------------------------------ code deps

@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_the_code_its_notebook_imports(name):
    stage = STAGES[name]
    assert stage.notebook, f"stage {name}: no papermill notebook in its command"
    assert "fgnet_core/pipeline/notebook.py" in stage_code(stage, REPO_ROOT)  # the analysis finds the setup module
    missing = missing_code_deps(stage, REPO_ROOT)
    assert not missing, f"dvc.yaml stage {name} runs these files but its deps do not list them: {missing}"


def test_import_analysis_follows_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "fgnet_core"
    (pkg / "sub").mkdir(parents=True)
    for path in ("__init__.py", "sub/__init__.py", "a.py", "b.py", "sub/c.py", "sub/d.py"):
        (pkg / path).write_text("")
    (pkg / "a.py").write_text("def f():\n    from fgnet_core import b  # lazy\n    return b\n")
    (pkg / "b.py").write_text("from .sub import c\n")
    (pkg / "sub" / "c.py").write_text("from . import d\nimport numpy\n")
    nb = {"cells": [{"cell_type": "code", "source": ["%matplotlib inline\n", "from fgnet_core.a import f\n"]}]}
    (tmp_path / "s.ipynb").write_text(json.dumps(nb))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": {
        "cmd": "papermill s.ipynb out.ipynb -p x ${x}", "deps": ["s.ipynb", "fgnet_core/a.py", "fgnet_core/sub"]}}}))
    stage = read_stages(tmp_path / "dvc.yaml")["s"]
    assert sorted(stage_code(stage, tmp_path)) == ["fgnet_core/__init__.py", "fgnet_core/a.py", "fgnet_core/b.py",
                                                   "fgnet_core/sub/__init__.py", "fgnet_core/sub/c.py",
                                                   "fgnet_core/sub/d.py"]
    assert missing_code_deps(stage, tmp_path) == ["fgnet_core/__init__.py", "fgnet_core/b.py"]
    assert stage.cmd_params == ("x",)


# ---------------------------------------------------------------------------------------------- params keys

def _toy_raw_bp4d(raw: Path) -> None:
    """Six coded frames of one subject per fold, laid out like the raw BP4D corpus."""
    aus = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
    for k, subject in enumerate(("F001", "F003", "F004")):  # test subjects of folds 0, 1, 2
        folder = raw / subject / "T1"
        folder.mkdir(parents=True)
        lines = ["0," + ",".join(map(str, aus))]
        for n in range(1, 7):
            Image.new("RGB", (8, 8), (40 * n, 0, 0)).save(folder / f"{n}.jpg")
            lines.append(f"{n}," + ",".join(str((n + a + k) % 2) for a in aus))
        occ = raw / "AUCoding" / "AU_OCC" / f"{subject}_T1.csv"
        occ.parent.mkdir(parents=True, exist_ok=True)
        occ.write_text("\n".join(lines) + "\n")


class _FakeAlignment:
    """Stands in for dlib alignment: a seeded 256 px face and centred landmarks per job."""

    def __call__(self, jobs, out_dir, **options):
        rng = np.random.default_rng(0)
        ok = set()
        for job in jobs:
            image = Path(out_dir) / "aligned_images" / f"{job.rel}.jpg"
            landmarks = Path(out_dir) / "aligned_landmarks" / f"{job.rel}.npy"
            image.parent.mkdir(parents=True, exist_ok=True)
            landmarks.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(image)
            np.save(landmarks, 128 + rng.normal(0, 30, (68, 2)))
            ok.add(job.rel)
        return type("Summary", (), {"processed": len(ok), "skipped": 0, "failed": 0, "ok_rels": ok})()


def _pretrain_corpus(params, lay):
    from fgnet_core.pipeline.pretrain import pretrain_corpus

    pretrain_corpus(params, lay)


def _pretrain_generator(params, lay):
    from fgnet_core.pipeline.pretrain import pretrain_generator

    pretrain_generator(params, lay, log=_quiet)


def _pretrain_encoder(params, lay):
    from fgnet_core.pipeline.pretrain_encoder import pretrain_encoder

    pretrain_encoder(params, lay, log=_quiet)


def _prepare(params, lay):
    from fgnet_core.pipeline.prepare import prepare_dataset

    prepare_dataset(params, lay, "BP4D", progress=False)


def _train(params, lay):
    from fgnet_core.pipeline.train_stage import run_training_stage

    run_training_stage(params, lay, "BP4D", log=_quiet)  # all three folds: the later stages read them


def _within_domain(params, lay):
    from fgnet_core.pipeline.evaluate import save_table, within_domain

    save_table(*within_domain(params, lay), "within_domain", lay)


def _cross_domain(params, lay):
    from fgnet_core.pipeline.evaluate import cross_domain, save_table

    per_run, table, flat = cross_domain(params, lay, device=params.runtime.device, log=_quiet)
    save_table(table, flat, "cross_domain", lay)


def _data_efficiency(params, lay):
    from fgnet_core.pipeline.train_stage import run_efficiency_stage

    run_efficiency_stage(params, lay, "BP4D", log=_quiet)


def _compare_backbones(params, lay):
    from fgnet_core.pipeline.compare import run_comparison

    run_comparison(params, lay, device=params.runtime.device, log=_quiet)


def _report(params, lay):
    from fgnet_core.pipeline.report import write_report

    write_report(params, lay)


def _quiet(*_):
    return None


# What each stage's notebook calls after `stage_setup`, in pipeline order, on one toy BP4D corpus. A new
# stage needs an entry here (the test below fails until it has one).
STAGE_CALLS = {"pretrain_corpus": _pretrain_corpus, "pretrain_generator": _pretrain_generator,
               "pretrain_encoder": _pretrain_encoder, "prepare": _prepare, "train": _train,
               "within_domain": _within_domain, "cross_domain": _cross_domain, "data_efficiency": _data_efficiency,
               "compare_backbones": _compare_backbones, "report": _report}


@pytest.fixture(scope="module")
def toy_pipeline(tmp_path_factory) -> tuple[Path, dict[str, set[str]]]:
    """(root, stage -> dotted params keys its code read) after every stage ran on a toy corpus (notebook setup
    included).

    Only BP4D is run: the stages treat each dataset alike, and the DISFA reader takes the same params.
    Validation inside `load_config` is not recorded: it rejects a bad file but cannot change a result.
    """
    import fgnet_core.data.ingest as ingest
    import fgnet_core.pipeline.notebook as notebook
    from fgnet_core.data.ingest import PlannedJob
    from fgnet_core.pipeline.config import Layout, load_params, parse_config

    root = tmp_path_factory.mktemp("toy_pipeline")
    base = load_params()
    base.update(datasets=["BP4D"], corpus="demo", preset="tiny")
    base["train"].update(epochs=1, iterations=1, batch_size=4)
    base["efficiency"]["sizes"]["demo"] = [4]
    base["prepare"]["workers"] = 1
    base["seeds"] = [0]
    base["runtime"].update(threads=torch.get_num_threads(), workers=1)
    base["pretrain"]["corpus"]["faces"] = 80
    base["pretrain"]["generator"].update(steps=2, batch_size=4)
    base["pretrain"]["encoder"].update(steps=2, batch_size=4, holdout=8)
    base["compare"].update(seeds=[0, 1], sizes=[4], attempts={"frozen": {"freeze_backbone": True}})  # two seeds: an SE
    _toy_raw_bp4d(Layout(root, parse_config(base)).raw_dir / "BP4D")

    reads = {}
    with pytest.MonkeyPatch.context() as mp, torch.backends.mkldnn.flags(enabled=False):
        mp.setattr(ingest, "_alignment_api", lambda: (PlannedJob, _FakeAlignment()))
        for name, call in STAGE_CALLS.items():
            recorded: set[str] = set()
            config = parse_config(copy.deepcopy(base)).recording(recorded)
            mp.setattr(notebook, "load_config", lambda *_a, c=config: c)
            config, _ = notebook.stage_setup()
            call(config, Layout(root, config))
            reads[name] = recorded
    return root, reads


@pytest.fixture(scope="module")
def params_read(toy_pipeline) -> dict[str, set[str]]:
    return toy_pipeline[1]


# Read by every stage's setup but not a result: torch's CPU threads in the notebook's process. (Stages whose
# numerics could depend on it list `runtime` anyway; prepare aligns in worker processes.)
NOT_RESULTS = {"runtime.threads"}


@pytest.mark.slow  # the fixture runs every stage on the toy corpus, the backbone comparison included (~1 min)
@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_params_cover_the_keys_its_code_reads(params_read, name):
    assert name in STAGE_CALLS, f"dvc.yaml stage {name} has no entry in STAGE_CALLS to record its params reads"
    stage = STAGES[name]
    keys = params_read[name] | notebook_param_reads(notebook_source(REPO_ROOT / stage.notebook))
    keys = deepest_reads(keys) - NOT_RESULTS
    assert keys, f"stage {name}: nothing recorded"
    missing = missing_params(stage, keys)
    assert not missing, f"dvc.yaml stage {name} reads params its `params:` does not list: {missing}"


@pytest.mark.slow
def test_toy_pipeline_outputs(toy_pipeline):
    """What the stages left on the toy corpus: pretrained files, one seed's runs, the comparison's claims."""
    import pandas as pd

    root, _ = toy_pipeline
    assert json.loads((root / "reports/metrics/pretrain_generator.json").read_text())["steps"] == 2
    assert json.loads((root / "reports/metrics/pretrain_encoder.json").read_text())["steps"] == 2
    runs = pd.read_csv(root / "reports/metrics/train/BP4D.csv")
    assert len(runs) == 2 * 3 and set(runs["seed"]) == {0} and set(runs["backbone"]) == {"pretrained"}
    compare = root / "reports" / "compare"
    claims = pd.read_csv(compare / "claims.csv").set_index("claim")
    assert list(claims.index) == ["within-domain BP4D", "BP4D with 4 training frames"]
    assert claims["se"].notna().all() and (claims["se"] >= 0).all()  # two seeds per backbone
    compared = pd.read_csv(compare / "runs.csv")
    assert len(compared) == 2 * 3 * 2 * 2  # backbones x folds x seeds x (full, size 4)
    assert set(compared["protocol"]) == {"clean"} and set(compared["seed"]) == {0, 1}
    assert not (root / "workspace" / "compare").exists()  # scratch runs are removed: the tables are the result
    attempts = pd.read_csv(compare / "attempts.csv")
    assert list(attempts["attempt"]) == ["frozen"] and list(attempts["claim"]) == ["within-domain BP4D"]
    assert attempts["recipe"].tolist() == ["freeze_backbone: True"] and attempts["se"].notna().all()
    readme = (root / "reports" / "README.md").read_text()
    assert "## The paper's findings on the demo" in readme and "](compare/efficiency.png)" in readme
    assert "### Other recipes tried" in readme and "freeze_backbone: True" in readme


def test_config_records_the_dotted_keys_code_reads():
    from fgnet_core.pipeline.config import load_config

    reads: set[str] = set()
    config = load_config().recording(reads)
    assert config.runtime.threads >= 1 and config.paths.raw[config.corpus] and config.fast.enabled is False
    assert reads == {"runtime", "runtime.threads", "paths", "paths.raw", "corpus", "fast", "fast.enabled"}
    run = config.derive(seed=5)  # a value the pipeline sets is not a read
    assert run.seed == 5 and "seed" not in reads
    assert run.recipe.seed == 5 and {"train", "preset"} <= reads and "seed" not in reads  # nor is its use in the recipe
    assert config.seed == 0 and "seed" in reads  # the original still reads the file's value
    subsets = config.efficiency.derive(seeds=(1,))
    assert subsets.seeds == (1,) and "efficiency.seeds" not in reads
    assert subsets.protocol == "faithful" and "efficiency.protocol" in reads  # the rest still records
    assert missing_params(STAGES["train"], {"train.recipes.tiny.lr", "runtime.device", "seeds"}) == []
    assert missing_params(STAGES["train"], {"evaluation.cross_domain_folds"}) == ["evaluation.cross_domain_folds"]


# ---------------------------------------------------------------------------------------------- dvc status

def _dvc(cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stderr or done.stdout}"
    return done.stdout


def _scratch_pipeline(tmp_path: Path, edit_params=None) -> Path:
    """The pipeline's definition and code in a scratch DVC repository (no git), every out and input a tiny file."""
    from dvc.repo import Repo

    work = tmp_path / "repo"
    work.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "build")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, work / name)
    shutil.copytree(REPO_ROOT / "notebooks", work / "notebooks", ignore=ignore)
    shutil.copytree(REPO_ROOT / "fgnet_core", work / "fgnet_core", ignore=ignore)
    if edit_params:
        params = yaml.safe_load((work / "params.yaml").read_text())
        edit_params(params)
        (work / "params.yaml").write_text(yaml.safe_dump(params))
    _dvc(work, "init", "--no-scm", "-q")
    with Repo(str(work)) as repo:
        stages = list(repo.index.stages)
        for path in [o.def_path for s in stages for o in s.outs] + [d.def_path for s in stages for d in s.deps]:
            _placeholder(work / path)
    return work


def _placeholder(path: Path) -> None:
    if path.exists():
        return
    if path.suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("placeholder\n")
    else:
        path.mkdir(parents=True)
        (path / "placeholder.txt").write_text("placeholder\n")


@pytest.mark.slow
def test_dvc_status_reports_a_stage_whose_imported_module_changed(tmp_path):
    work = _scratch_pipeline(tmp_path)
    _dvc(work, "commit", "-f", "-q")  # a dvc.lock of the placeholders: every stage up to date
    assert json.loads(_dvc(work, "status", "--json")) == {}
    for name, stage in STAGES.items():
        depth = stage_code(stage, REPO_ROOT)
        module = max(sorted(depth), key=lambda f: depth[f])  # the one reached through the longest import chain
        dep = next((d for d in stage.deps if module == d or module.startswith(d.rstrip("/") + "/")), None)
        source = (work / module).read_text()
        (work / module).write_text(source + "# edited\n")
        status = json.loads(_dvc(work, "status", "--json"))
        (work / module).write_text(source)
        listed = {k: v for k, v in status.items() if k == name or k.startswith(name + "@")}
        assert listed, f"editing {module} left stage {name} up to date in `dvc status`: {sorted(status)}"
        assert dep is not None
        for changes in listed.values():
            assert {"changed deps": {dep: "modified"}} in changes, (name, module, changes)


def test_every_stage_input_is_an_output_or_a_source_for_any_dataset_list(tmp_path):
    """Inputs follow params.yaml: with one dataset, no stage waits for a file only the other one would produce."""
    from dvc.repo import Repo

    work = tmp_path / "repo"
    work.mkdir()
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, work / name)
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["datasets"] = ["BP4D"]
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    _dvc(work, "init", "--no-scm", "-q")
    with Repo(str(work)) as repo:
        stages = list(repo.index.stages)
    outs = {Path(o.def_path) for s in stages for o in s.outs}
    for stage in stages:
        for dep in (Path(d.def_path) for d in stage.deps):
            produced = any(dep == o or o in dep.parents or dep in o.parents for o in outs)
            assert produced or (REPO_ROOT / dep).exists() or (REPO_ROOT / f"{dep}.dvc").exists(), \
                f"stage {stage.name}: input {dep} is neither a source nor produced by any stage"
