"""Scenario arguments marlnav adds to VMAS's own, where a curriculum needs a setting VMAS hard-codes.

passage's `collision_reward`: what an agent's reward pays, every step, for each other agent and each piece
of wall it overlaps. VMAS fixes it at -10. Trained with it, no agent of marlnav's passage policies ever
went through the gap (docs/zoo.md); trained without it, agents did, so a curriculum can start at 0 and end
at VMAS's -10 (`--curriculum collision_reward=0,-5`), the task itself.

The argument reweights VMAS's own reward rather than recomputing it. VMAS's passage reward is an agent's
distance shaping s minus 10 per overlap, r = s - 10 n (with shared_reward, the team's shaping minus the
overlaps counted so far), so with the agent's shaping read off its `global_shaping` before and after
VMAS's reward, the reward at collision reward c is s + c n = s (1 + c/10) - r c/10: VMAS's own at -10,
to the last bit, and its shaping alone at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from vmas.simulator.core import Agent
from vmas.simulator.scenario import BaseScenario

from marlnav_cli.errors import ConfigError

VMAS_PASSAGE_COLLISION_REWARD = -10.0
ADDED_ARGUMENTS: dict[str, frozenset[str]] = {"passage": frozenset({"collision_reward"})}


def added_arguments(scenario: str) -> frozenset[str]:
    """The arguments marlnav adds to this scenario (none for most)."""
    return ADDED_ARGUMENTS.get(scenario, frozenset())


def vmas_arguments(scenario: str, scenario_args: dict[str, Any]) -> dict[str, Any]:
    """The scenario arguments VMAS itself takes: all but those marlnav adds, whose values are checked here."""
    added = added_arguments(scenario)
    for name in added & set(scenario_args):
        value = scenario_args[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value > 0:
            raise ConfigError(f"{scenario}'s {name} is a reward per overlap, a number <= 0; got {value!r}")
    return {name: value for name, value in scenario_args.items() if name not in added}


def apply_added_arguments(scenario: str, vmas_scenario: BaseScenario, scenario_args: dict[str, Any]) -> None:
    """Give a built VMAS scenario marlnav's arguments (a no-op where none is given)."""
    collision_reward = scenario_args.get("collision_reward", VMAS_PASSAGE_COLLISION_REWARD)
    if "collision_reward" in added_arguments(scenario) and collision_reward != VMAS_PASSAGE_COLLISION_REWARD:
        vmas_scenario.reward = _passage_reward(vmas_scenario, float(collision_reward))  # type: ignore[method-assign]


def _passage_reward(scenario: BaseScenario, collision_reward: float) -> Callable[[Agent], torch.Tensor]:
    vmas_reward = scenario.reward
    agents = scenario.world.agents
    weight = collision_reward / VMAS_PASSAGE_COLLISION_REWARD  # of VMAS's reward; 1 - weight of the shaping
    team_shaping = torch.zeros(())  # with shared_reward: this step's, computed at the first agent's call

    def reward(agent: Agent) -> torch.Tensor:
        nonlocal team_shaping
        if scenario.shared_reward:
            if agent is agents[0]:
                before = sum(a.global_shaping for a in agents)
                paid = vmas_reward(agent)
                team_shaping = before - sum(a.global_shaping for a in agents)
            else:
                paid = vmas_reward(agent)
            shaping = team_shaping
        else:
            before = agent.global_shaping
            paid = vmas_reward(agent)
            shaping = before - agent.global_shaping
        return shaping * (1 - weight) + paid * weight

    return reward
