"""What each VMAS scenario's episode end means, and how its team size is set.

VMAS gives one `done` per env, but scenarios mean different things by it: in navigation it fires when
every agent is on its goal, in balance also when the package falls, in road_traffic when cars crash,
and most scenarios never end before the step limit. Evaluation reports a success rate only where the
end means success (tests/test_scenarios.py checks the entries that matter against VMAS's behaviour).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDictBase

from marlnav_cli.episode_end import EpisodeEnd


@dataclass(frozen=True)
class EndMeaning:
    end: EpisodeEnd
    what: str  # what an early end is, in the scenario's words, for tables

    @property
    def defines_success(self) -> bool:
        return self.end is EpisodeEnd.SUCCESS

    @property
    def can_end(self) -> bool:
        return self.end is not EpisodeEnd.NEVER


_SUCCESS = {
    "navigation": "every agent on its goal",
    "passage": "every agent through the passage, on its goal",
    "dispersion": "every food eaten",
    "transport": "the package on its goal",
    "reverse_transport": "the package on its goal",
    "joint_passage": "the joint on its goal",
    "joint_passage_size": "the joint on its goal",
    "asym_joint": "the joint on its goal",
    "dropout": "the energy goal reached",
    "line_trajectory": "the end of the line reached",
}
_MIXED = {
    "balance": "package on its goal, or dropped on the ground",
    "ball_passage": "ball on its goal, or out of the arena",
    "buzz_wire": "ball on its goal, or the wire touched",
    "football": "a goal scored, by either team",
}
_FAILURE = {
    "road_traffic": "a collision (car with car or lane boundary)",
    "drone": "a drone out of control (flipped or out of bounds)",
}
# Scenarios whose end depends on an argument: (argument, the value that lets it end, the end's meaning then).
# discovery's done asks that every target was ever covered, but VMAS counts a covered target only where
# targets do not respawn (its default is that they do): with them its episodes never end.
_ENDS_WHEN_ARGUMENT = {
    "give_way": ("done_on_completion", True, "both agents on their goals"),
    "discovery": ("targets_respawn", False, "every target covered"),
}

# Scenarios whose reset draws one permutation for the whole batch (torch.randperm in VMAS's reset): reset
# together, every env gets the same one (passage's gap and which agent owns which goal, joint_passage's and
# wind_flocking's agent order, ball_passage's gap, football's formation). Evaluation draws each episode apart
# (episodes.independent_start); tests/test_scenarios.py checks this set against VMAS's sources.
SHARED_RESET_DRAWS = frozenset(
    {"passage", "joint_passage", "ball_passage", "football", "ball_trajectory", "wind_flocking", "asym_joint"}
)

# Scenarios that ignore n_agents: the arguments that set their team size instead.
TEAM_SIZE_ARGUMENTS = {
    "football": ("n_blue_agents",),
    "simple_tag": ("num_good_agents", "num_adversaries"),
    "simple_world_comm": ("num_good_agents", "num_adversaries"),
}


def _first_agent(step: TensorDictBase, key: tuple[str, ...]) -> torch.Tensor:
    """A per-agent entry of the ended steps, [envs, agents, ...], as [envs, ...] of the group's first agent
    (the entries read here are the same for every agent: VMAS computes them once per env)."""
    return step.get(key)[:, 0]


def _reward_term_is_zero(group: str, term: str) -> GoalReader:
    return lambda step: _first_agent(step, (group, "info", term)).reshape(step.batch_size[0], -1)[:, 0] == 0


def _ball_on_goal(step: TensorDictBase) -> torch.Tensor:
    """ball_passage's goal test (ball within 0.01 of the goal), from an agent's observation: it holds
    agent - goal (items 4-5) and agent - ball (items 6-7), so their difference is ball - goal."""
    observation = _first_agent(step, ("agents", "observation"))
    return torch.linalg.vector_norm(observation[:, 4:6] - observation[:, 6:8], dim=-1) <= 0.01 + 1e-6


# Goal-or-failure scenarios: how the step an episode ended on tells its goal from its failure, read from
# what VMAS returned for that step (its info or observations: computed before the env resets). Each is
# tested against the scenario's own state in tests/test_scenarios.py. A scenario argument that zeroes the
# signal (a collision reward of 0) leaves the two apart unknown: then only the ended-early share is given.
GoalReader = Callable[[TensorDictBase], torch.Tensor]
_GOAL_READERS: dict[str, tuple[Callable[[dict[str, Any]], bool], GoalReader]] = {
    # the package fell: balance's ground reward (-10) is paid at that step, and only then
    "balance": (lambda args: True, _reward_term_is_zero("agents", "ground_rew")),
    # the wire touched: its collision reward is paid at that step
    "buzz_wire": (lambda args: args.get("collision_reward", -10) != 0, _reward_term_is_zero("agents", "collision_rew")),
    "ball_passage": (lambda args: True, _ball_on_goal),
    # blue (the trained team) scored: its sparse reward is +scoring_reward at that step, -scoring_reward if red did
    "football": (
        lambda args: args.get("scoring_reward", 100.0) != 0,
        lambda step: (
            _first_agent(step, ("agent_blue", "info", "sparse_reward")).reshape(step.batch_size[0], -1)[:, 0] > 0
        ),
    ),
}


def goal_reader(scenario: str, scenario_args: dict[str, Any]) -> GoalReader | None:
    """For a goal-or-failure scenario, a function of the ended steps' `next` entries ([envs]) that says
    which ended on the goal; None where the scenario (with these arguments) cannot tell them apart."""
    if scenario not in _GOAL_READERS:
        return None
    applies, reader = _GOAL_READERS[scenario]
    return reader if applies(scenario_args) else None


def end_meaning(scenario: str, scenario_args: dict[str, Any]) -> EndMeaning:
    if scenario in _SUCCESS:
        return EndMeaning(EpisodeEnd.SUCCESS, _SUCCESS[scenario])
    if scenario in _MIXED:
        return EndMeaning(EpisodeEnd.MIXED, _MIXED[scenario])
    if scenario in _FAILURE:
        return EndMeaning(EpisodeEnd.FAILURE, _FAILURE[scenario])
    if scenario in _ENDS_WHEN_ARGUMENT:
        argument, ends_when, what = _ENDS_WHEN_ARGUMENT[scenario]
        if scenario_args.get(argument, not ends_when) is ends_when:
            return EndMeaning(EpisodeEnd.SUCCESS, what)
    return EndMeaning(EpisodeEnd.NEVER, "never ends before the step limit")


def team_size_hint(scenario: str, n_agents: int) -> str:
    """How to change the team of a scenario that ignores --n-agents."""
    arguments = TEAM_SIZE_ARGUMENTS.get(scenario)
    if arguments is None:
        return f"scenario {scenario!r} has a fixed team of {n_agents} agents; leave --n-agents out"
    settings = " ".join(f"--scenario-arg {name}=K" for name in arguments)
    return (
        f"scenario {scenario!r} ignores --n-agents (it has {n_agents} agents); leave --n-agents out, and "
        f"set its team size with {settings}"
    )
