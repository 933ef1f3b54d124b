"""Scenario arguments marlnav adds to VMAS's: passage's collision_reward, checked against VMAS's own reward
and VMAS's own overlap test, alone and with shared_reward, refused where it is not a reward per overlap, and
staged by --curriculum as VMAS's own arguments are."""

from __future__ import annotations

import inspect
import json
import runpy
from pathlib import Path

import pytest
import torch
import vmas

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import make_env
from marlnav_cli.errors import ConfigError
from marlnav_cli.scenario_arguments import apply_added_arguments

ENVS, STEPS = 16, 40
# One tiny passage run's settings: the same code path as a real run, in seconds
TINY = ["--frames-per-batch", "100", "--max-steps", "25", "--epochs", "1", "--minibatch-size", "50"]
TINY += ["--num-cells", "16", "--device", "cpu", "--quiet", "--scenario", "passage", "--eval-every", "0"]
RUNNER = Path(__file__).resolve().parent.parent / "marlnav_cli" / "onnx_runner.py"


def _passage_rewards(collision_reward: float | None, shared: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Each step's reward per agent [steps, agents, envs] under agents pressing up and inward (so they
    crowd the wall and each other), and for VMAS's own reward (collision_reward None) each agent's
    overlaps counted with VMAS's own is_overlapping: for an agent, the agents and walls it overlaps, and
    with shared_reward those of every agent before it too (VMAS's shared reward subtracts each agent's
    penalty from one team tensor as it goes)."""
    env = vmas.make_env("passage", num_envs=ENVS, device="cpu", continuous_actions=True, seed=3, shared_reward=shared)
    scenario, world = env.scenario, env.scenario.world
    if collision_reward is not None:
        apply_added_arguments("passage", scenario, {"collision_reward": collision_reward})
    walls = [landmark for landmark in world.landmarks[scenario.n_agents :] if landmark.collide]
    rewards, overlaps = [], []
    for _ in range(STEPS):
        actions = []
        for agent in world.agents:
            inward = -torch.sign(agent.state.pos[:, :1])
            actions.append(torch.cat([0.5 * inward, torch.ones(ENVS, 1)], dim=1))
        _, step_rewards, _, _ = env.step(actions)
        rewards.append(torch.stack(step_rewards))
        if collision_reward is not None:
            continue  # the reward moves no agent: the overlaps are those of VMAS's own run
        own = torch.stack(
            [
                sum(world.is_overlapping(other, agent).float() for other in world.agents if other is not agent)
                + sum(world.is_overlapping(agent, wall).float() for wall in walls)
                for agent in world.agents
            ]
        )
        overlaps.append(own.cumsum(dim=0) if shared else own)
    return torch.stack(rewards), torch.stack(overlaps) if overlaps else torch.empty(0)


@pytest.mark.parametrize("shared", [False, True], ids=["own-reward", "shared-reward"])
def test_passage_collision_reward_reweights_vmas_overlap_penalty(shared: bool) -> None:
    vmas_reward, overlaps = _passage_rewards(None, shared)
    assert overlaps.sum() > 100  # the agents did press on each other and on the wall
    # at VMAS's own -10 the reweighted reward is VMAS's to the last bit
    assert torch.equal(_passage_rewards(-10.0, shared)[0], vmas_reward)
    for collision_reward in (0.0, -3.0):
        reward = _passage_rewards(collision_reward, shared)[0]
        expected = vmas_reward + (10 + collision_reward) * overlaps
        torch.testing.assert_close(reward, expected, rtol=0, atol=1e-3)


def test_passage_collision_reward_through_make_env_and_refused_values() -> None:
    config = TrainConfig(scenario="passage", n_agents=5, scenario_args={"collision_reward": 0})
    env = make_env(config, num_envs=2, seed=0, device=torch.device("cpu"))
    assert not inspect.ismethod(env.base_env._env.scenario.reward)  # marlnav's function, not VMAS's method
    for value in (1, "high", True, float("nan")):
        bad = TrainConfig(scenario="passage", n_agents=5, scenario_args={"collision_reward": value})
        with pytest.raises(ConfigError, match="collision_reward is a reward per overlap"):
            make_env(bad, num_envs=2, seed=0, device=torch.device("cpu"))


def test_curriculum_stages_passage_collision_reward(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = cli("train", "--curriculum", "collision_reward=0,-5", "--frames", "300", *TINY, "--out", run)
    assert result.exit_code == 0, result.stderr
    assert 'curriculum = "collision_reward=0,-5"' in (run / "config.toml").read_text()
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["curriculum_stage"] for row in history] == [0, 1, 2]


def test_a_policy_trained_with_collision_reward_evaluates_and_runs_in_onnx(cli, tmp_path: Path) -> None:
    """The config carries marlnav's argument: evaluate rebuilds the reweighted env from the checkpoint
    alone, and the standalone ONNX runner (VMAS alone) leaves it out and says so."""
    run = tmp_path / "run"
    result = cli("train", "--scenario-arg", "collision_reward=0", "--frames", "100", *TINY, "--out", run)
    assert result.exit_code == 0, result.stderr
    report = cli("evaluate", run / "policy.safetensors", "--episodes", "8", "--json").json()
    assert report["policy"]["mean_length"] == 25
    assert cli("export", run / "policy.safetensors", tmp_path / "p.onnx").exit_code == 0
    runner = runpy.run_path(str(RUNNER))["run_episodes"](str(tmp_path / "p.onnx"), episodes=8)
    assert runner["vmas_reward_without"] == ["collision_reward"] and runner["mean_length"] == 25
