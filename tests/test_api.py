"""marlnav_cli.api, the Python face of the commands: the same results as the CLI, the same refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from marlnav_cli import api
from marlnav_cli.errors import ConfigError
from tests.conftest import training_metrics

TINY = {
    "total_frames": 200,
    "frames_per_batch": 100,
    "max_steps": 25,
    "num_epochs": 2,
    "minibatch_size": 50,
    "num_cells": 16,
}


def test_train_evaluate_render_export_from_python_match_the_commands(cli, tmp_path: Path) -> None:
    """A run trained through the API equals the CLI's run of the same settings, iteration by iteration,
    and its checkpoint evaluates, renders and exports from Python as from the command line."""
    outcome = api.train(scenario="navigation", out=tmp_path / "api-run", device="cpu", **TINY)
    assert outcome.state.frames == 200 and outcome.files.checkpoint.exists()
    flags = ["--frames", "200", "--frames-per-batch", "100", "--max-steps", "25", "--epochs", "2"]
    flags += ["--minibatch-size", "50", "--num-cells", "16", "--device", "cpu", "--quiet"]
    assert cli("train", *flags, "--out", tmp_path / "cli-run").exit_code == 0
    assert training_metrics(tmp_path / "api-run") == training_metrics(tmp_path / "cli-run")

    report = api.evaluate(outcome.files.checkpoint, episodes=4, device="cpu")
    from_cli = cli("evaluate", outcome.files.checkpoint, "--episodes", "4", "--device", "cpu", "--json").json()
    assert report.policy.mean_reward == pytest.approx(from_cli["policy"]["mean_reward"], rel=1e-5)

    media = api.render(outcome.files.checkpoint, tmp_path / "run.gif", device="cpu")
    assert media.path.exists() and media.frames > 1
    exported = api.export(outcome.files.checkpoint, tmp_path / "policy.safetensors")
    assert Path(exported["path"]).exists()


def test_api_refuses_what_the_command_refuses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config keys: learning_rate"):
        api.train(learning_rate=0.1, out=tmp_path / "typo")
    with pytest.raises(ConfigError, match="--threads must be"):
        api.evaluate(tmp_path / "none.safetensors", threads=0)
    assert not (tmp_path / "typo").exists()
