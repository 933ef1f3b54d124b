"""Every bad input: exit code 2, one line naming the problem, no traceback, no file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TINY_TRAIN

CASES = {
    "unknown-scenario": (["train", "--scenario", "nowhere"], "unknown VMAS scenario 'nowhere'"),
    "zero-agents": (["train", "--n-agents", "0"], "--n-agents must be a positive integer"),
    "negative-frames": (["train", "--frames", "-5"], "--frames must be a positive integer"),
    "zero-epochs": (["train", "--epochs", "0"], "--epochs must be a positive integer"),
    "zero-max-steps": (["train", "--max-steps", "0"], "--max-steps must be a positive integer"),
    "batch-not-multiple": (["train", "--frames-per-batch", "150", "--max-steps", "100"], "must be a multiple"),
    "minibatch-too-big": (["train", "--minibatch-size", "7000"], "larger than a batch"),
    "negative-lr": (["train", "--lr", "-1"], "--lr must be a positive number"),
    "gamma-above-one": (["train", "--gamma", "1.5"], "--gamma must be in (0, 1]"),
    "not-a-number": (["train", "--n-agents", "three"], "Invalid value for '--n-agents'"),
    "unknown-option": (["train", "--colour", "blue"], "No such option"),
    "unknown-device": (["train", "--device", "tpu9", *TINY_TRAIN[:-3]], "unknown device 'tpu9'"),
    "cuda-absent": (["train", "--device", "cuda", *TINY_TRAIN[:-3]], "no CUDA GPU"),
    "huge-batch": (["train", "--frames-per-batch", "100000000000", "--frames", "100000000000"], "GiB"),
    "unwritable-out": (["train", *TINY_TRAIN, "--out", "/proc/marlnav-run"], "cannot create folder"),
    "missing-checkpoint": (["evaluate", "{tmp}/none.safetensors"], "does not exist"),
    "empty-checkpoint": (["evaluate", "{tmp}/empty.safetensors"], "is empty"),
    "text-checkpoint": (["evaluate", "{tmp}/text.safetensors"], "not a readable safetensors"),
    "episodes-zero": (["evaluate", "{ckpt}", "--episodes", "0"], "--episodes must be a positive integer"),
    "n-agents-other-scenario": (["evaluate", "{ckpt}", "--scenario", "balance"], "scenario 'navigation', not 'balance'"),
    "gif-wrong-extension": (["render", "{ckpt}", "{tmp}/out.mp4"], "must end in .gif"),
    "gif-folder-missing": (["render", "{ckpt}", "{tmp}/missing/out.gif"], "does not exist"),
    "render-one-path": (["render", "{ckpt}"], "give CHECKPOINT and OUT.gif"),
    "render-episodes-zero": (["render", "{ckpt}", "{tmp}/out.gif", "--episodes", "0"], "--episodes must be"),
    "rollout-steps-zero": (["rollout", "--steps", "0"], "--steps must be a positive integer"),
    "rollout-bad-checkpoint": (["rollout", "--checkpoint", "{tmp}/text.safetensors"], "not a readable"),
    "resume-missing": (["train", "--resume", "{tmp}/none.safetensors"], "does not exist"),
    "resume-foreign-file": (["train", "--resume", "{tmp}/text.safetensors"], "not a readable safetensors"),
    "checkpoint-every-zero": (["train", *TINY_TRAIN, "--checkpoint-every", "0", "--out", "{tmp}/run"],
                              "--checkpoint-every must be a positive integer"),
    "inspect-zero-envs": (["inspect-specs", "--num-envs", "0"], "--num-envs must be a positive integer"),
    "inspect-unknown-scenario": (["inspect-specs", "--scenario", "nowhere"], "unknown VMAS scenario"),
}


@pytest.mark.parametrize(("args", "message"), list(CASES.values()), ids=list(CASES))
def test_bad_input_is_refused_in_one_line(cli, checkpoint: Path, tmp_path: Path, args: list[str],
                                          message: str) -> None:
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "text.safetensors").write_text("hello")
    before = sorted(tmp_path.rglob("*"))
    result = cli(*[a.format(tmp=tmp_path, ckpt=checkpoint) for a in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert sorted(tmp_path.rglob("*")) == before


def test_bad_train_input_creates_no_run_folder(cli, tmp_path: Path) -> None:
    result = cli("train", "--n-agents", "0", "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert not (tmp_path / "run").exists()
