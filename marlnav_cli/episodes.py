"""Running a policy (trained or random) in the env: shared by evaluate, rollout and render."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import AgentGroup, agent_groups, make_env
from marlnav_cli.scenarios import SHARED_RESET_DRAWS, EndMeaning, GoalReader, end_meaning, goal_reader

# Seeds for evaluation sit this far from the training seed, so no evaluated episode was trained on.
EVAL_SEED_OFFSET = 1_000_000
COLLISIONS_INFO = "agent_collisions"  # navigation's per-agent collision signal, in each group's info


def rollout(
    env: TransformedEnv,
    policy: TensorDictModuleBase | None,
    steps: int,
    *,
    deterministic: bool = True,
    callback: Any = None,
    scenario: str | None = None,
    **kwargs: Any,
) -> TensorDictBase:
    """env.rollout with the policy's mode (deterministic) or random actions when policy is None; given the
    scenario, each env's first episode starts from its own draw (independent_start)."""
    exploration = ExplorationType.DETERMINISTIC if deterministic else ExplorationType.RANDOM
    with torch.no_grad(), set_exploration_type(exploration):
        if scenario is not None:
            kwargs.update(auto_reset=False, tensordict=independent_start(env, scenario))
        return env.rollout(steps, policy=policy, callback=callback, **kwargs)


def independent_start(env: TransformedEnv, scenario: str) -> TensorDictBase:
    """The first reset of many envs, each env's episode drawn on its own.

    Why: where VMAS's reset draws one permutation for the whole batch (SHARED_RESET_DRAWS), envs reset
    together share it: 200 passage episodes would be 200 runs of one gap with one owner per goal, and their
    interval would claim a precision they do not have. So every env but the first is reset again alone
    (VMAS's reset_at, as TorchRL does for a partial reset); the first keeps the batch's draw. Elsewhere the
    batched reset stands, so every other scenario's episodes stay exactly as they were."""
    start = env.reset()
    if scenario in SHARED_RESET_DRAWS and env.batch_size.numel() > 1:
        again = torch.ones(*env.batch_size, 1, dtype=torch.bool, device=env.device)
        again[0] = False
        start = env.reset(start.set("_reset", again))
    return start.exclude("_reset")


def evaluation_env(config: TrainConfig, episodes: int, seed: int, device: torch.device) -> TransformedEnv:
    """One vectorised env per episode, without VMAS's step limit: a done then means the task ended
    (every agent at its goal for navigation), and the limit is applied by the rollout length."""
    return make_env(config, num_envs=episodes, seed=seed, device=device, step_limit=False)


def first_episode_stats(
    data: TensorDictBase, groups: list[AgentGroup], goal: GoalReader | None = None
) -> dict[str, torch.Tensor]:
    """Per env: reward (per agent, over all groups and per group), length, whether the episode ended
    before the step limit, and collisions (where the scenario reports them) of the first episode; with
    `goal` (a goal-or-failure scenario's reader), whether it ended on the goal or on a failure."""
    done = data.get(("next", "done")).reshape(data.batch_size)  # [envs, steps]
    steps = done.shape[1]
    ended = done.any(dim=1)
    last_step = torch.where(ended, done.float().argmax(dim=1), torch.full_like(ended, steps - 1, dtype=torch.long))
    in_episode = (torch.arange(steps, device=done.device) <= last_step.unsqueeze(1)).unsqueeze(-1)  # [envs, steps, 1]
    group_rewards = [
        (data.get(("next", *group.key("reward"))).squeeze(-1) * in_episode).sum(dim=1) for group in groups
    ]  # [envs, agents of the group]
    stats = {
        "reward": torch.cat(group_rewards, dim=-1).mean(dim=-1),
        **{f"reward/{group.name}": reward.mean(dim=-1) for group, reward in zip(groups, group_rewards)},
        "length": (last_step + 1).float(),
        "ended": ended.float(),
    }
    colliding = [
        data.get(("next", *group.key("info", COLLISIONS_INFO))).squeeze(-1) < 0
        for group in groups
        if ("next", *group.key("info", COLLISIONS_INFO)) in data.keys(include_nested=True)
    ]
    if colliding:  # [envs, steps, agents]
        stats["collisions"] = sum((c & in_episode).sum(dim=(1, 2)).float() for c in colliding)
    if goal is not None:
        ended_steps = data.get("next")[torch.arange(done.shape[0], device=done.device), last_step]
        on_goal = goal(ended_steps) & ended
        stats["goal"], stats["failure"] = on_goal.float(), (ended & ~on_goal).float()
    return stats


@dataclass(frozen=True)
class RewardFigures:
    mean_reward: float
    std_reward: float
    mean_reward_se: float  # standard error of the mean


@dataclass(frozen=True)
class EpisodeFigures:
    """One side (policy or random actions) of an evaluation: means over episodes, None where the figure
    does not exist (no success where the end is not success, no reward mean over competing groups...)."""

    mean_reward: float | None
    std_reward: float | None
    mean_reward_se: float | None
    success_rate: float | None
    success_rate_ci95: tuple[float, float] | None  # Wilson's score interval
    ended_early_rate: float | None
    mean_collisions: float | None
    mean_length: float
    groups: dict[str, RewardFigures]
    # Where the end can be the goal or a failure: each apart, with Wilson's interval (None elsewhere).
    goal_rate: float | None = None
    goal_rate_ci95: tuple[float, float] | None = None
    failure_rate: float | None = None
    failure_rate_ci95: tuple[float, float] | None = None


@dataclass(frozen=True)
class EvaluationReport:
    episodes: int
    seed: int
    max_steps: int
    episode_end: str  # scenarios.EpisodeEnd's value
    episode_end_means: str
    policy: EpisodeFigures
    random: EpisodeFigures
    policy_actions: str = "deterministic"  # or "sampled" (evaluate --sampled)
    checkpoint: str | None = None
    trained_frames: int | None = None
    n_agents: int | None = None
    trained_n_agents: int | None = None
    trained_team_sizes: list[int] | None = None  # every size a run trained at (its team sizes, else n_agents)

    @property
    def trained_team(self) -> str:
        """The team sizes trained at, as --n-agents takes them: '3', or '2-8'."""
        from marlnav_cli.config import format_team_sizes

        return format_team_sizes(self.trained_team_sizes or [self.trained_n_agents])

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return dataclasses.asdict(self)


def summarise(stats: dict[str, torch.Tensor], groups: list[AgentGroup], meaning: EndMeaning) -> EpisodeFigures:
    """Means over episodes. A success rate only where the scenario's end means success; the share of
    episodes that ended early wherever the scenario can end at all; None for what does not exist."""

    def rewards(values: torch.Tensor) -> RewardFigures:
        std = values.std().item() if values.numel() > 1 else 0.0
        return RewardFigures(
            mean_reward=values.mean().item(), std_reward=std, mean_reward_se=std / math.sqrt(values.numel())
        )

    ended_rate = stats["ended"].mean().item()
    episodes = stats["ended"].numel()

    def rate_and_interval(name: str) -> tuple[float | None, tuple[float, float] | None]:
        if name not in stats:
            return None, None
        return stats[name].mean().item(), wilson_interval(int(stats[name].sum().item()), episodes)

    goal_rate, goal_interval = rate_and_interval("goal")
    failure_rate, failure_interval = rate_and_interval("failure")
    # Averaged over competing teams a reward means nothing: then only per group.
    overall = rewards(stats["reward"]) if len(groups) == 1 else RewardFigures(None, None, None)  # type: ignore[arg-type]
    return EpisodeFigures(
        mean_reward=overall.mean_reward,
        std_reward=overall.std_reward,
        mean_reward_se=overall.mean_reward_se,
        success_rate=ended_rate if meaning.defines_success else None,
        success_rate_ci95=(
            wilson_interval(int(stats["ended"].sum().item()), episodes) if meaning.defines_success else None
        ),
        ended_early_rate=ended_rate if meaning.can_end else None,
        mean_collisions=stats["collisions"].mean().item() if "collisions" in stats else None,
        mean_length=stats["length"].mean().item(),
        groups={group.name: rewards(stats[f"reward/{group.name}"]) for group in groups},
        goal_rate=goal_rate,
        goal_rate_ci95=goal_interval,
        failure_rate=failure_rate,
        failure_rate_ci95=failure_interval,
    )


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's 95% score interval for a success rate: unlike the normal approximation it stays inside
    [0, 1] and is honest at 0 and 1 successes, where evaluation often sits."""
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half_width = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def evaluate(
    config: TrainConfig,
    policy: TensorDictModuleBase,
    *,
    episodes: int,
    seed: int,
    device: torch.device,
    deterministic: bool = True,
) -> EvaluationReport:
    """The policy (its most likely actions, or sampled ones) vs uniform random actions on the same
    `episodes` starting states."""
    meaning = end_meaning(config.scenario, config.scenario_args)
    sides = {
        name: evaluate_actor(config, actor, episodes=episodes, seed=seed, device=device, deterministic=deterministic)
        for name, actor in (("policy", policy), ("random", None))
    }
    return EvaluationReport(
        episodes=episodes,
        seed=seed,
        max_steps=config.max_steps,
        episode_end=meaning.end.value,
        episode_end_means=meaning.what,
        n_agents=config.n_agents,
        policy_actions="deterministic" if deterministic else "sampled",
        **sides,
    )


def evaluate_actor(
    config: TrainConfig,
    actor: TensorDictModuleBase | None,
    *,
    episodes: int,
    seed: int,
    device: torch.device,
    deterministic: bool = True,
) -> EpisodeFigures:
    """One side of `evaluate`: the actor's most likely actions, or sampled ones (random actions for None),
    one episode per env."""
    torch.manual_seed(seed)
    env = evaluation_env(config, episodes, seed, device)
    data = rollout(
        env, actor, config.max_steps, deterministic=deterministic, scenario=config.scenario, break_when_any_done=False
    )
    groups = agent_groups(env)
    goal = goal_reader(config.scenario, config.scenario_args)
    summary = summarise(
        first_episode_stats(data, groups, goal), groups, end_meaning(config.scenario, config.scenario_args)
    )
    env.close()
    return summary


def render_frames(
    env: TransformedEnv, policy: TensorDictModuleBase | None, *, episodes: int, max_steps: int
) -> tuple[list[np.ndarray], list[int]]:
    """Frames of `episodes` consecutive episodes in a single-env `env`, and each episode's length.

    Each episode gives length + 1 frames: its start state and the state after every step.
    """
    frames: list[np.ndarray] = []
    lengths: list[int] = []

    def capture(environment: TransformedEnv, _: TensorDictBase) -> None:
        frames.append(environment.render(mode="rgb_array"))

    for _ in range(episodes):
        start = env.reset()
        frames.append(env.render(mode="rgb_array"))
        data = rollout(
            env, policy, max_steps, callback=capture, auto_reset=False, tensordict=start, break_when_any_done=True
        )
        frames.append(env.render(mode="rgb_array"))  # rollout skips its callback on the final step
        lengths.append(data.batch_size[-1])
    return frames, lengths


@dataclass(frozen=True)
class RolloutLeaf:
    key: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class RolloutReport:
    """What a short rollout holds: every leaf of its TensorDict, and each agent's reward total."""

    policy: str  # "checkpoint" or "random"
    batch_size: tuple[int, ...]  # [envs, steps run]
    leaves: tuple[RolloutLeaf, ...]
    reward_per_agent: dict[str, float]  # summed over the steps, mean over envs

    @property
    def steps_run(self) -> int:
        return self.batch_size[-1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "batch_size": list(self.batch_size),
            "keys": [{"key": list(leaf.key), "shape": list(leaf.shape), "dtype": leaf.dtype} for leaf in self.leaves],
            "reward_per_agent": self.reward_per_agent,
        }


def describe_rollout(data: TensorDictBase, groups: list[AgentGroup], *, policy: str) -> RolloutReport:
    leaves = tuple(
        RolloutLeaf(
            key=(key,) if isinstance(key, str) else tuple(key),
            shape=tuple(value.shape),
            dtype=str(value.dtype).replace("torch.", ""),
        )
        for key, value in data.items(include_nested=True, leaves_only=True)
    )
    reward_per_agent: dict[str, float] = {}
    for group in groups:
        rewards = data.get(("next", *group.key("reward"))).squeeze(-1)  # [envs, steps, agents]
        reward_per_agent.update(zip(group.agent_names, rewards.sum(dim=1).mean(dim=0).tolist()))
    return RolloutReport(
        policy=policy, batch_size=tuple(data.batch_size), leaves=leaves, reward_per_agent=reward_per_agent
    )
