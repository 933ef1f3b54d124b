"""VMAS's own hand-written controllers (a scenario module's `HeuristicPolicy`) as actors marlnav evaluates.

A trained policy is worth its frames only if it beats what the scenario's authors wrote by hand: the zoo's
benchmark evaluates each heuristic exactly as it evaluates a policy (same episodes, same figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import agent_groups, make_env
from marlnav_cli.errors import ConfigError, MarlnavError


@dataclass(frozen=True)
class HeuristicUnavailable:
    reason: str


class HeuristicActor(TensorDictModuleBase):
    """One VMAS heuristic acting for every agent of a one-group scenario, agent by agent, as VMAS's own
    run_heuristic example calls it: each agent's observation in, an action within its u_range out."""

    def __init__(self, policy: object, group: str, u_ranges: list[float]) -> None:
        super().__init__()
        self.policy, self.u_ranges = policy, u_ranges
        self.in_keys = [(group, "observation")]
        self.out_keys = [(group, "action")]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        return tensordict.set(self.out_keys[0], self.sample(tensordict.get(self.in_keys[0])))

    def sample(self, observation: torch.Tensor) -> torch.Tensor:
        """[envs, agents, size] observations to [envs, agents, action] actions: what the collector calls."""
        actions = [
            self.policy.compute_action(observation[..., agent, :], u_range=u_range)  # type: ignore[attr-defined]
            for agent, u_range in enumerate(self.u_ranges)
        ]
        return torch.stack(actions, dim=-2).to(observation.dtype)


@dataclass(frozen=True)
class Team:
    """What a hand-written controller needs from the task, read from one env: the agents' group, each
    agent's u_range, and a first observation to try the controller on."""

    group: str
    u_ranges: list[float]
    first_observation: torch.Tensor


def one_group_team(config: TrainConfig) -> Team:
    env = make_env(config, num_envs=1, seed=config.seed, device=torch.device("cpu"))
    groups = agent_groups(env)
    u_ranges = [float(agent.u_range) for agent in env.base_env._env.agents]
    first_observation = env.reset().get(groups[0].key("observation"))[:, 0]
    env.close()
    if len(groups) != 1:
        raise MarlnavError(f"{config.scenario}'s heuristic is for one agent group, not {len(groups)}")
    return Team(groups[0].name, u_ranges, first_observation)


def heuristic_actor(config: TrainConfig) -> HeuristicActor | HeuristicUnavailable:
    """The scenario's heuristic for continuous actions, or why there is none to run."""
    from vmas.scenarios import load

    module = load(f"{config.scenario}.py")  # VMAS's own lookup: MPE and debug scenarios live in subfolders
    policy_class = getattr(module, "HeuristicPolicy", None)
    if policy_class is None:
        return HeuristicUnavailable(f"VMAS ships no heuristic for {config.scenario}")
    if config.discrete:
        return HeuristicUnavailable("VMAS's heuristics act in continuous actions only")
    team = one_group_team(config)
    policy = policy_class(continuous_action=True)
    try:
        policy.compute_action(team.first_observation, u_range=team.u_ranges[0])
    except ImportError as error:  # navigation's controller solves a QP with cvxpylayers
        return HeuristicUnavailable(f"{config.scenario}'s heuristic needs {error.name} (pip install {error.name})")
    return HeuristicActor(policy, team.group, team.u_ranges)


def heuristic_to_imitate(config: TrainConfig) -> HeuristicActor:
    """The heuristic --imitate-heuristic copies, or one line saying why there is none."""
    actor = heuristic_actor(config)
    if isinstance(actor, HeuristicUnavailable):
        raise ConfigError(f"--imitate-heuristic: {actor.reason}")
    return actor
