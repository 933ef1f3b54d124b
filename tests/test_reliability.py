"""Ctrl-C keeps the work done so far; the same seed gives the same run."""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path

import pytest
import torch

from marlnav_cli.checkpoint import read_checkpoint
from tests.conftest import TINY_TRAIN, start_long_training, training_metrics


def test_sigint_during_train_saves_checkpoint_and_exits_130(tmp_path: Path) -> None:
    run_folder = tmp_path / "run"
    metrics = run_folder / "metrics.jsonl"
    process = start_long_training(run_folder)
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
    for folder in ("a", "b"):
        assert cli("train", *TINY_TRAIN, "--seed", "7", "--out", tmp_path / folder).exit_code == 0
    assert training_metrics(tmp_path / "a") == training_metrics(tmp_path / "b")


def _assert_same_run(split: Path, straight: Path) -> None:
    assert training_metrics(split) == training_metrics(straight)
    resumed, uninterrupted = (
        read_checkpoint(split / "policy.safetensors"),
        read_checkpoint(straight / "policy.safetensors"),
    )
    assert resumed.tensors.keys() == uninterrupted.tensors.keys()
    for name, tensor in uninterrupted.tensors.items():
        torch.testing.assert_close(resumed.tensors[name], tensor, rtol=0, atol=0, equal_nan=True, msg=name)
    assert resumed.summary["frames"] == 400 and resumed.summary["complete"] is True


def test_interrupted_run_resumes_bit_exactly(cli, tmp_path: Path) -> None:
    """A 400-frame run (learning rate annealed over those 400) stopped after 200, then resumed."""
    import signal as signals

    from marlnav_cli.experiment import run_training

    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli("train", *TINY_TRAIN, "--frames", "400", "--anneal-lr", "--out", straight).exit_code == 0
    config = read_checkpoint(straight / "policy.safetensors").config
    assert config.anneal_lr and config.total_frames == 400

    def interrupt_after_second(state) -> None:
        if len(state.history) == 2:
            signals.raise_signal(signals.SIGINT)  # what Ctrl-C does: stop after this iteration

    stopped = run_training(config, device_name="cpu", run_folder=split, on_iteration=interrupt_after_second)
    assert stopped.interrupted and read_checkpoint(split / "policy.safetensors").summary["frames"] == 200
    result = cli("train", "--resume", split / "policy.safetensors", "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.stderr
    _assert_same_run(split, straight)


@pytest.mark.parametrize(
    "task",
    [[], ["--discrete"], ["--scenario", "simple_tag"], ["--scenario", "wheel", "--imitate-heuristic", "100"]],
    ids=["navigation", "discrete", "two-groups", "imitation"],
)
def test_resume_extends_a_finished_run_bit_exactly(cli, tmp_path: Path, task: list[str]) -> None:
    """With a constant learning rate, 200 frames then --frames 400 equal 400 uninterrupted."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli("train", *TINY_TRAIN, *task, "--constant-lr", "--frames", "400", "--out", straight).exit_code == 0
    assert cli("train", *TINY_TRAIN, *task, "--constant-lr", "--frames", "200", "--out", split).exit_code == 0
    result = cli("train", "--resume", split / "policy.safetensors", "--frames", "400", "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.stderr
    _assert_same_run(split, straight)


def test_resume_refuses_changed_settings(cli, trained_run: Path) -> None:
    result = cli("train", "--resume", trained_run / "policy.safetensors", "--lr", "0.1", "--device", "cpu")
    assert result.exit_code == 2
    assert "only --frames may change, not lr" in result.stderr


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(cli, tmp_path: Path, monkeypatch) -> None:
    import marlnav_cli.train as train_module

    class PoisonedAfterFirstIteration(train_module.PPOObjective):
        calls = 0

        def __call__(self, batch):
            losses = super().__call__(batch)
            PoisonedAfterFirstIteration.calls += 1
            if PoisonedAfterFirstIteration.calls > 4:  # 2 epochs x 2 minibatches = iteration 1
                return dataclasses.replace(losses, objective=losses.objective * float("nan"))
            return losses

    monkeypatch.setattr(train_module, "PPOObjective", PoisonedAfterFirstIteration)
    run_folder = tmp_path / "run"
    result = cli("train", *TINY_TRAIN, "--frames", "300", "--out", run_folder)
    assert result.exit_code == 2
    assert "non-finite at iteration 2" in result.stderr and "last good checkpoint kept" in result.stderr
    kept = read_checkpoint(run_folder / "policy.safetensors")
    assert kept.summary["iterations"] == 1
    assert all(torch.isfinite(t).all() for name, t in kept.tensors.items() if not name.startswith("rng."))


def test_evaluation_during_training_changes_no_training_result(cli, tmp_path: Path) -> None:
    """Evaluated on held-out episodes every 2 iterations, the run trains bit for bit as without evaluation,
    and best.safetensors is the iteration with the best evaluated success (then shorter episodes)."""
    with_eval, without = tmp_path / "with", tmp_path / "without"
    common = [*TINY_TRAIN, "--frames", "400", "--constant-lr"]
    assert cli("train", *common, "--eval-every", "2", "--eval-episodes", "5", "--out", with_eval).exit_code == 0
    assert cli("train", *common, "--eval-every", "0", "--out", without).exit_code == 0
    rows = [json.loads(line) for line in (with_eval / "metrics.jsonl").read_text().splitlines()]

    assert training_metrics(with_eval) == training_metrics(without)
    evaluated = [row for row in rows if row["eval_s"] is not None]
    assert [row["iteration"] for row in evaluated] == [2, 4]
    assert all(0.0 <= row["eval_success_rate"] <= 1.0 and 1 <= row["eval_mean_length"] <= 25 for row in evaluated)
    final = read_checkpoint(with_eval / "policy.safetensors").tensors
    for name, tensor in read_checkpoint(without / "policy.safetensors").tensors.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=0, equal_nan=True, msg=name)
    best = max(evaluated, key=lambda row: (row["eval_success_rate"], -row["eval_mean_length"], row["eval_mean_reward"]))
    assert read_checkpoint(with_eval / "best.safetensors").summary["iterations"] == best["iteration"]
    assert "eval_success_rate" in (with_eval / "metrics.csv").read_text().splitlines()[0]


def test_a_stop_during_the_copy_saves_it_without_waiting_for_the_rest(cli, tmp_path: Path) -> None:
    """SIGTERM while the heuristic is being copied stops after that batch (a zoo entry copies up to 600,000
    frames: minutes); what was copied is saved, and resuming is refused, as it would skip the rest."""
    from marlnav_cli.config import TrainConfig
    from marlnav_cli.experiment import run_training

    tiny = dict(total_frames=200, frames_per_batch=100, max_steps=25, num_epochs=2, minibatch_size=50, num_cells=16)
    config = TrainConfig(scenario="wheel", n_agents=4, imitate_heuristic=500, **tiny)
    run = tmp_path / "run"
    stopped = run_training(
        config, device_name="cpu", run_folder=run, on_imitation=lambda row: signal.raise_signal(signal.SIGTERM)
    )
    assert stopped.interrupted and stopped.exit_code == 143
    assert len((run / "imitation.csv").read_text().splitlines()) == 2  # the header and 1 of 5 batches
    saved = read_checkpoint(run / "policy.safetensors")
    assert saved.summary["iterations"] == 0 and saved.summary["complete"] is False
    result = cli("train", "--resume", run / "policy.safetensors", "--device", "cpu", "--quiet")
    assert result.exit_code == 2 and "stopped while copying the heuristic" in result.stderr
