"""Ctrl-C keeps the work done so far; the same seed gives the same run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from marlnav_cli.checkpoint import read_checkpoint
from tests.conftest import TINY_TRAIN


def test_sigint_during_train_saves_checkpoint_and_exits_130(tmp_path: Path) -> None:
    run_folder = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-c", "from marlnav_cli.cli import main; main()", "train", *TINY_TRAIN,
         "--frames", "100000", "--out", str(run_folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run_folder / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "policy.safetensors" in stdout
    checkpoint = read_checkpoint(run_folder / "policy.safetensors")
    iterations = len(metrics.read_text().splitlines())
    assert checkpoint.summary["complete"] is False
    assert checkpoint.summary["iterations"] == iterations >= 2
    assert checkpoint.summary["frames"] == iterations * 100
    assert not list(run_folder.glob(".*"))  # no temporary files left


def test_same_seed_gives_identical_metrics(cli, tmp_path: Path) -> None:
    def metrics(folder: str) -> list[dict]:
        assert cli("train", *TINY_TRAIN, "--seed", "7", "--out", tmp_path / folder).exit_code == 0
        rows = [json.loads(line) for line in (tmp_path / folder / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if not k.endswith("_s")} for row in rows]

    assert metrics("a") == metrics("b")
