"""VMAS's heuristics as marlnav actors: the same actions VMAS's own controller gives, agent by agent."""

from __future__ import annotations

import torch
from vmas.scenarios.wheel import HeuristicPolicy

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import make_env
from marlnav_cli.heuristics import HeuristicActor, HeuristicUnavailable, heuristic_actor


def test_the_actor_gives_vmas_heuristic_actions_for_every_agent() -> None:
    config = TrainConfig(scenario="wheel", n_agents=4)
    actor = heuristic_actor(config)
    assert isinstance(actor, HeuristicActor) and len(actor.u_ranges) == 4
    env = make_env(config, num_envs=8, seed=5, device=torch.device("cpu"))
    data = env.rollout(5, policy=actor)
    observation, action = data.get(("agents", "observation")), data.get(("agents", "action"))
    reference = HeuristicPolicy(continuous_action=True)
    for agent in range(4):
        expected = reference.compute_action(
            observation[:, :, agent].reshape(-1, observation.shape[-1]), u_range=actor.u_ranges[agent]
        )
        assert torch.allclose(action[:, :, agent].reshape(-1, 2), expected)
    assert action.abs().max() <= max(actor.u_ranges) and action.abs().sum() > 0


def test_scenarios_without_a_usable_heuristic_say_why() -> None:
    assert heuristic_actor(TrainConfig(scenario="give_way")) == HeuristicUnavailable(
        "VMAS ships no heuristic for give_way"
    )
    assert isinstance(heuristic_actor(TrainConfig(scenario="wheel", discrete=True)), HeuristicUnavailable)
    # MPE and debug scenarios live in VMAS's subfolders: found, and said to have none
    assert heuristic_actor(TrainConfig(scenario="simple_spread")) == HeuristicUnavailable(
        "VMAS ships no heuristic for simple_spread"
    )
