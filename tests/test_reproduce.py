"""The reproduction check compares every committed number with the fresh one, timings aside."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fgnet_core.pipeline.reproduce import differences, flatten


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def _repo(tmp_path: Path, metrics: dict) -> Path:
    repo = tmp_path / "repo"
    (repo / "reports" / "metrics" / "train").mkdir(parents=True)
    (repo / "reports" / "metrics" / "train" / "BP4D.json").write_text(json.dumps(metrics))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "results")
    return repo


def test_flatten_keeps_numbers_only():
    assert flatten({"a": {"b": 1, "c": "x", "d": True}, "e": 2.5}) == {"a.b": 1.0, "e": 2.5}


def test_identical_results_reproduce_and_a_moved_number_is_named(tmp_path):
    repo = _repo(tmp_path, {"f1_avg_over_seeds": {"clean": {"mean": 45.0, "sd": 3.0}}, "seconds": 12.0})
    problems, compared = differences(repo, "HEAD", 0.0)
    assert problems == [] and compared == 2  # the timing is not compared
    path = repo / "reports" / "metrics" / "train" / "BP4D.json"
    path.write_text(json.dumps({"f1_avg_over_seeds": {"clean": {"mean": 45.5, "sd": 3.0}}, "seconds": 99.0}))
    problems, _ = differences(repo, "HEAD", 0.0)
    assert len(problems) == 1 and "f1_avg_over_seeds.clean.mean" in problems[0] and "BP4D.json" in problems[0]
    assert differences(repo, "HEAD", 0.6)[0] == []  # within a stated tolerance
    path.write_text(json.dumps({"seconds": 1.0}))
    problems, _ = differences(repo, "HEAD", 0.0)
    assert len(problems) == 2 and all("now None" in p for p in problems)  # a number that vanished is a difference
