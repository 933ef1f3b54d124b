"""Every bad input: exit code 2, one line naming the problem, no traceback, no file left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import TINY_TRAIN

CASES = {
    "unknown-scenario": (["train", "--scenario", "nowhere"], "unknown VMAS scenario 'nowhere'"),
    "misspelt-scenario": (["train", "--scenario", "navigaton"], "did you mean 'navigation'?"),
    "zero-agents": (["train", "--n-agents", "0"], "--n-agents values must be at least 1; got 0"),
    "negative-frames": (["train", "--frames", "-5"], "--frames must be a positive integer"),
    "zero-epochs": (["train", "--epochs", "0"], "--epochs must be a positive integer"),
    "zero-max-steps": (["train", "--max-steps", "0"], "--max-steps must be a positive integer"),
    "batch-not-multiple": (["train", "--frames-per-batch", "150", "--max-steps", "100"], "must be a multiple"),
    "minibatch-too-big": (["train", "--minibatch-size", "7000"], "larger than a batch"),
    "negative-lr": (["train", "--lr", "-1"], "--lr must be a positive number"),
    "gamma-above-one": (["train", "--gamma", "1.5"], "--gamma must be in (0, 1]"),
    "imitate-beta-above-one": (["train", "--imitate-beta", "2"], "--imitate-beta must be in [0, 1]"),
    "not-a-number": (["train", "--n-agents", "three"], "--n-agents takes a team size, or a range or list"),
    "unknown-option": (["train", "--colour", "blue"], "No such option"),
    "unknown-device": (["train", "--device", "tpu9", *TINY_TRAIN[:-3]], "unknown device 'tpu9'"),
    "cuda-absent": (["train", "--device", "cuda", *TINY_TRAIN[:-3]], "no CUDA GPU"),
    "huge-batch": (["train", "--frames-per-batch", "100000000000", "--frames", "100000000000"], "GiB"),
    "unwritable-out": (["train", *TINY_TRAIN, "--out", "/proc/marlnav-run"], "cannot create folder"),
    "missing-checkpoint": (["evaluate", "{tmp}/none.safetensors"], "does not exist"),
    "empty-checkpoint": (["evaluate", "{tmp}/empty.safetensors"], "is empty"),
    "text-checkpoint": (["evaluate", "{tmp}/text.safetensors"], "not a readable safetensors"),
    "episodes-zero": (["evaluate", "{ckpt}", "--episodes", "0"], "--episodes must be a positive integer"),
    "n-agents-other-scenario": (
        ["evaluate", "{ckpt}", "--scenario", "balance"],
        "scenario 'navigation', not 'balance'",
    ),
    "render-wrong-extension": (["render", "{ckpt}", "{tmp}/out.avi"], "must end in .gif or .mp4"),
    "gif-folder-missing": (["render", "{ckpt}", "{tmp}/missing/out.gif"], "does not exist"),
    "render-one-path": (["render", "{ckpt}"], "give CHECKPOINT and OUT.gif"),
    "render-episodes-zero": (["render", "{ckpt}", "{tmp}/out.gif", "--episodes", "0"], "--episodes must be"),
    "rollout-steps-zero": (["rollout", "--steps", "0"], "--steps must be a positive integer"),
    "rollout-bad-checkpoint": (["rollout", "{tmp}/text.safetensors"], "not a readable"),
    "rollout-checkpoint-with-env-option": (
        ["rollout", "{ckpt}", "--scenario", "balance"],
        "--scenario would be ignored",
    ),
    "render-checkpoint-with-env-option": (
        ["render", "{ckpt}", "{tmp}/o.gif", "--max-steps", "7"],
        "--max-steps would be ignored",
    ),
    "resume-missing": (["train", "--resume", "{tmp}/none.safetensors"], "does not exist"),
    "resume-foreign-file": (["train", "--resume", "{tmp}/text.safetensors"], "not a readable safetensors"),
    "checkpoint-every-zero": (
        ["train", *TINY_TRAIN, "--checkpoint-every", "0", "--out", "{tmp}/run"],
        "--checkpoint-every must be a positive integer",
    ),
    "imitate-negative": (["train", "--imitate-heuristic", "-5"], "--imitate-heuristic must be 0 (off) or a frame"),
    "centralised-shared-policy": (["train", "--centralised-policy"], "add --no-share-policy"),
    "imitate-discrete": (["train", "--imitate-heuristic", "100", "--discrete"], "leave --discrete out"),
    "imitate-team-sizes": (
        ["train", "--imitate-heuristic", "100", "--n-agents", "2-4", "--critic", "deepsets"],
        "give --n-agents one size",
    ),
    "inspect-zero-envs": (["inspect-specs", "--num-envs", "0"], "--num-envs must be a positive integer"),
    "inspect-unknown-scenario": (["inspect-specs", "--scenario", "nowhere"], "unknown VMAS scenario"),
    # Option values at their extremes
    "train-seed-overflow": (["train", "--seed", "18446744073709551616"], "--seed must be an integer from 0 to"),
    "rollout-seed-overflow": (["rollout", "--seed", "18446744073709551616"], "--seed must be an integer from 0 to"),
    "evaluate-seed-overflow": (["evaluate", "{ckpt}", "--seed", "18446744073709551616"], "--seed must be"),
    "frames-too-many": (["train", "--frames", "1000000000000000"], "--frames must be a positive integer up to"),
    "num-cells-huge": (["train", "--num-cells", "1000000"], "GiB"),
    "rollout-envs-huge": (["rollout", "--num-envs", "1000000000000"], "GiB"),
    "inspect-envs-huge": (["inspect-specs", "--num-envs", "1000000000000"], "GiB"),
    "evaluate-episodes-huge": (["evaluate", "{ckpt}", "--episodes", "1000000000000"], "GiB"),
    "empty-out": (["train", *TINY_TRAIN, "--out", ""], "empty"),
    # Options that another option leaves unused are checked all the same
    "eval-episodes-negative-unused": (["train", "--eval-every", "0", "--eval-episodes", "-1"], "--eval-episodes"),
    "eval-episodes-huge-unused": (["train", "--eval-every", "0", "--eval-episodes", "100000000000"], "GiB"),
    # Threads
    "train-threads-zero": (["train", "--threads", "0"], "--threads must be from 1 to 1024"),
    "evaluate-threads-huge": (["evaluate", "{ckpt}", "--threads", "100000"], "--threads must be from 1 to 1024"),
    "export-threads-negative": (["export", "{ckpt}", "{tmp}/p.onnx", "--threads", "-2"], "--threads must be"),
    # Scenario arguments
    "scenario-arg-off": (["inspect-specs", "--scenario-arg", "collisions=off"], "write true or false"),
    "scenario-arg-nan": (["inspect-specs", "--scenario-arg", "lidar_range=nan"], "must be a finite number"),
    "scenario-arg-inf": (["inspect-specs", "--scenario-arg", "agent_radius=inf"], "must be a finite number"),
    "passage-collision-reward-positive": (
        ["inspect-specs", "--scenario", "passage", "--scenario-arg", "collision_reward=3"],
        "collision_reward is a reward per overlap, a number <= 0",
    ),
    # Config files
    "config-fifo": (["train", "--config", "{tmp}/fifo.toml"], "is not a regular file"),
    "config-dev-zero": (["train", "--config", "/dev/zero"], "is not a regular file"),
    "config-not-utf8": (["train", "--config", "{tmp}/latin1.toml"], "is not UTF-8 text"),
    "config-huge-lr": (["train", "--config", "{tmp}/huge-lr.toml"], "too large"),
    "config-seed-overflow": (["train", "--config", "{tmp}/big-seed.toml"], "--seed must be an integer"),
    "config-folder": (["train", "--config", "{tmp}"], "is not a regular file"),
    # Outputs that cannot be written
    "gif-under-proc": (["render", "{ckpt}", "/proc/marlnav.gif"], "cannot write"),
    "compare-png-under-proc": (["compare", "{run}", "--out", "/proc/marlnav.png"], "cannot write"),
    "export-under-proc": (["export", "{ckpt}", "/proc/marlnav.safetensors"], "cannot write"),
    "transfer-png-wrong": (["transfer", "{ckpt}", "--out", "{tmp}/sizes.gif"], "must end in .png"),
    # Sweeps: checked before Ray starts
    "sweep-set-not-a-number": (["sweep", "--set", "lr=abc"], "--set lr: 'abc' is not a value"),
    "sweep-set-gamma-word": (["sweep", "--set", "gamma=high"], "--set gamma: 'high' is not a value"),
    "sweep-set-bool-word": (["sweep", "--set", "anneal_lr=maybe"], "--set anneal_lr: 'maybe' is not a value"),
    "sweep-seeds-huge": (["sweep", "--seeds", "0-100000000000"], "gives more than 10000 values"),
    "sweep-cpus-nan": (["sweep", "--cpus-per-trial", "nan"], "--cpus-per-trial must be a finite number"),
    "sweep-address-closed": (["sweep", "--address", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
    # Resume
    "resume-with-preset": (["train", "--resume", "{ckpt}", "--preset", "tutorial"], "--preset and --config don't"),
    "resume-frames-below": (["train", "--resume", "{ckpt}", "--frames", "100"], "below the 200 frames"),
}


@pytest.mark.parametrize(("args", "message"), list(CASES.values()), ids=list(CASES))
def test_bad_input_is_refused_in_one_line(cli, checkpoint: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "text.safetensors").write_text("hello")
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "latin1.toml").write_bytes("scenario = 'navigación'\n".encode("latin-1"))
    (tmp_path / "huge-lr.toml").write_text(f"lr = {10**400}\n")
    (tmp_path / "big-seed.toml").write_text(f"seed = {2**64}\n")
    before = sorted(tmp_path.rglob("*"))
    result = cli(*[a.format(tmp=tmp_path, ckpt=checkpoint, run=checkpoint.parent) for a in args])
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
