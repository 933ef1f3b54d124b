"""Shared fixtures: run the real CLI in-process, and one tiny trained checkpoint for the session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# One torch thread in every test and every process a test starts, whatever the machine's load: results
# that tests compare across processes (resume, sweeps) must not differ in their last float bits.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from marlnav_cli.cli import run

# A few envs, a few hundred frames, a small net: seconds on 2 cores, same code path as a real run.
TINY_TRAIN = [
    "--frames",
    "200",
    "--frames-per-batch",
    "100",
    "--max-steps",
    "25",
    "--epochs",
    "2",
    "--minibatch-size",
    "50",
    "--num-cells",
    "16",
    "--device",
    "cpu",
    "--quiet",
]


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Call marlnav exactly as the console script does (same error handling), capturing output."""

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder from a tiny `marlnav train`, shared by the tests that need a checkpoint."""
    folder = tmp_path_factory.mktemp("runs") / "tiny"
    code = run(["train", *TINY_TRAIN, "--seed", "3", "--out", str(folder)])
    assert code == 0
    return folder


@pytest.fixture(scope="session")
def checkpoint(trained_run: Path) -> Path:
    return trained_run / "policy.safetensors"


def training_metrics(folder: Path) -> list[dict]:
    """What training computed per iteration, from a run folder's metrics.jsonl: timings and evaluations
    (a run's last iteration is always evaluated, so a split run has one more) left out."""
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.endswith("_s") and not k.startswith("eval_")} for row in rows]


def start_long_training(run_folder: Path, *, iterations: int = 2) -> subprocess.Popen:
    """`marlnav train` in its own process, far too long to finish, returned once `iterations` are on disk."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from marlnav_cli.cli import main; main()",
            "train",
            *TINY_TRAIN,
            "--frames",
            "100000",
            "--out",
            str(run_folder),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = run_folder / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= iterations) and time.time() < deadline:
        time.sleep(0.2)
    return process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test` runs a worker per core), the tests that start Ray run on one worker,
    one after another: two Ray instances starting at once on the same machine would race for its ports."""
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))
