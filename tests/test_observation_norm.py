"""--normalize-observations: TorchRL's ObservationNorm statistics inside the networks, saved with the weights,
exported with the policy, and measured without touching the run's random state."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from tensordict import TensorDict
from torchrl.envs import ObservationNorm

from marlnav_cli.config import TrainConfig
from marlnav_cli.models import ObservationScaler
from marlnav_cli.observation_norm import measure_observation_statistics
from marlnav_cli.rng import capture_rng

TINY = ["--frames-per-batch", "100", "--max-steps", "25", "--epochs", "1", "--minibatch-size", "50"]
TINY += ["--num-cells", "16", "--device", "cpu", "--quiet", "--constant-lr"]


def test_scaler_computes_what_observation_norm_computes() -> None:
    torch.manual_seed(0)
    loc, scale = torch.randn(6), torch.rand(6) + 0.1
    observation = torch.randn(4, 3, 6)
    norm = ObservationNorm(loc=loc, scale=scale, in_keys=["observation"], standard_normal=True)
    expected = norm(TensorDict({"observation": observation}, batch_size=[4]))["observation"]
    scaler = ObservationScaler(6, torch.device("cpu"))
    scaler.loc.copy_(loc)
    scaler.scale.copy_(scale)
    assert torch.allclose(scaler(observation), expected, atol=1e-6)


def test_statistics_describe_random_episodes_and_leave_the_random_state_alone() -> None:
    config = TrainConfig(frames_per_batch=200, max_steps=25, minibatch_size=50, seed=3).validate()
    torch.manual_seed(11)
    before = capture_rng()
    statistics = measure_observation_statistics(config, torch.device("cpu"))
    after = capture_rng()
    assert all(torch.equal(before[key].nan_to_num(), after[key].nan_to_num()) for key in before)  # NaN: no gauss
    loc, scale = statistics["agents"]
    assert loc.shape == scale.shape == (18,)  # navigation's observation, one figure per feature
    assert (scale > 0).all() and not torch.allclose(scale, torch.ones(18))
    # Positions spread over the arena, so their spread is far from that of the goal-relative velocity.
    assert scale.max() / scale.min() > 2
    again = measure_observation_statistics(config, torch.device("cpu"))["agents"]
    assert torch.equal(again[0], loc) and torch.equal(again[1], scale)


def test_statistics_join_rollouts_cut_short_by_episodes_that_end() -> None:
    # Balance's package falls within tens of random steps, and a rollout stops at the first env's end, so
    # the measurement joins rollouts of different lengths (joining them along the envs failed here).
    config = TrainConfig(scenario="balance", frames_per_batch=400, max_steps=100, minibatch_size=100, seed=1)
    loc, scale = measure_observation_statistics(config.validate(), torch.device("cpu"))["agents"]
    assert loc.ndim == 1 and loc.shape == scale.shape
    assert torch.isfinite(loc).all() and torch.isfinite(scale).all() and (scale > 0).any()


def test_a_normalised_run_keeps_its_statistics_and_exports_with_them(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert cli("train", "--normalize-observations", "--frames", "200", *TINY, "--out", run).exit_code == 0
    weights = load_file(run / "policy.safetensors")
    policy_loc = next(value for key, value in weights.items() if key.startswith("policy") and key.endswith(".loc"))
    critic_loc = next(value for key, value in weights.items() if key.startswith("critic") and key.endswith(".loc"))
    assert torch.equal(policy_loc, critic_loc) and policy_loc.abs().sum() > 0
    assert "normalize_observations = true" in (run / "config.toml").read_text()
    # A plain run's networks have no scaler: its weight names are those of every run before this option.
    plain = tmp_path / "plain"
    assert cli("train", "--frames", "200", *TINY, "--out", plain).exit_code == 0
    assert not any(key.endswith(".loc") for key in load_file(plain / "policy.safetensors"))
    assert cli("evaluate", run / "policy.safetensors", "--episodes", "4", "--json").exit_code == 0
    exported = cli("export", run / "policy.safetensors", tmp_path / "policy.onnx")
    assert exported.exit_code == 0, exported.stderr  # the parity check runs the scaler on both sides
    # Resumed, the statistics come from the checkpoint: a resumed run equals an unbroken one.
    whole, half = tmp_path / "whole", tmp_path / "half"
    assert cli("train", "--normalize-observations", "--frames", "200", *TINY, "--out", whole).exit_code == 0
    assert cli("train", "--normalize-observations", "--frames", "100", *TINY, "--out", half).exit_code == 0
    assert cli("train", "--resume", half / "policy.safetensors", "--frames", "200", "--quiet").exit_code == 0
    resumed, unbroken = load_file(half / "policy.safetensors"), load_file(whole / "policy.safetensors")
    assert all(torch.equal(resumed[key], unbroken[key]) for key in unbroken if not key.startswith("rng"))
