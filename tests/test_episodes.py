"""Evaluation arithmetic on hand-made rollouts, where the right answer is known."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from marlnav_cli.envs import AgentGroup
from marlnav_cli.episodes import first_episode_stats, summarise
from marlnav_cli.scenarios import end_meaning

ONE_GROUP = [AgentGroup("agents", ("agent_0", "agent_1"), (0, 1))]


def _rollout(done_at: list[int | None], steps: int = 5, agents: int = 2) -> TensorDict:
    """Envs with reward 1 per agent per step, done at the given step (or never), a collision at step 0."""
    envs = len(done_at)
    done = torch.zeros(envs, steps, 1, dtype=torch.bool)
    for env, step in enumerate(done_at):
        if step is not None:
            done[env, step] = True
    collisions = torch.zeros(envs, steps, agents, 1)
    collisions[:, 0, 0] = -1.0
    collisions[:, -1, 1] = -1.0  # only inside an episode that lasts to the end
    return TensorDict(
        {
            "next": {
                "done": done,
                "agents": {"reward": torch.ones(envs, steps, agents, 1), "info": {"agent_collisions": collisions}},
            }
        },
        batch_size=[envs, steps],
    )


def test_first_episode_reward_length_end_and_collisions() -> None:
    stats = first_episode_stats(_rollout([1, None, 4]), ONE_GROUP)
    assert stats["length"].tolist() == [2.0, 5.0, 5.0]
    assert stats["reward"].tolist() == [2.0, 5.0, 5.0]  # mean over agents of summed reward
    assert stats["ended"].tolist() == [1.0, 0.0, 1.0]
    assert stats["collisions"].tolist() == [1.0, 2.0, 2.0]


def test_summary_figures() -> None:
    summary = summarise(
        first_episode_stats(_rollout([1, None, 4]), ONE_GROUP), ONE_GROUP, end_meaning("navigation", {})
    )
    assert summary.mean_reward == pytest.approx(4.0)
    assert summary.groups["agents"].mean_reward == pytest.approx(4.0)
    assert summary.success_rate == summary.ended_early_rate == pytest.approx(2 / 3)
    assert summary.mean_length == pytest.approx(4.0)
    assert summary.mean_collisions == pytest.approx(5 / 3)
    assert summary.std_reward == pytest.approx(torch.tensor([2.0, 5.0, 5.0]).std().item())
