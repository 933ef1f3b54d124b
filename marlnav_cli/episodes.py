"""Running a policy (trained or random) in the env: shared by evaluate, rollout and render."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.envs import TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ProbabilisticActor

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import GROUP, make_env

# Seeds for evaluation sit this far from the training seed, so no evaluated episode was trained on.
EVAL_SEED_OFFSET = 1_000_000
COLLISION_INFO_KEY = (GROUP, "info", "agent_collisions")


def rollout(env: TransformedEnv, policy: ProbabilisticActor | None, steps: int, *,
            deterministic: bool = True, callback: Any = None, **kwargs: Any) -> TensorDictBase:
    """env.rollout with the policy's mode (deterministic) or random actions when policy is None."""
    exploration = ExplorationType.DETERMINISTIC if deterministic else ExplorationType.RANDOM
    with torch.no_grad(), set_exploration_type(exploration):
        return env.rollout(steps, policy=policy, callback=callback, **kwargs)


def evaluation_env(config: TrainConfig, episodes: int, seed: int, device: torch.device) -> TransformedEnv:
    """One vectorised env per episode, without VMAS's step limit: a done then means the task ended
    (every agent at its goal for navigation), and the limit is applied by the rollout length."""
    return make_env(config, num_envs=episodes, seed=seed, device=device, step_limit=False)


def first_episode_stats(data: TensorDictBase, max_steps: int) -> dict[str, torch.Tensor]:
    """Per env: reward, length, success and collisions of the first episode in a rollout."""
    done = data.get(("next", "done")).reshape(data.batch_size)                # [envs, steps]
    steps = done.shape[1]
    ended = done.any(dim=1)
    last_step = torch.where(ended, done.float().argmax(dim=1), torch.full_like(ended, steps - 1, dtype=torch.long))
    in_episode = torch.arange(steps, device=done.device) <= last_step.unsqueeze(1)  # [envs, steps]
    reward = data.get(("next", GROUP, "reward")).squeeze(-1)                   # [envs, steps, agents]
    stats = {
        "reward": (reward * in_episode.unsqueeze(-1)).sum(dim=1).mean(dim=-1),
        "length": (last_step + 1).float(),
        "success": (ended & (last_step < max_steps)).float(),
    }
    if ("next", *COLLISION_INFO_KEY) in data.keys(include_nested=True):
        colliding = data.get(("next", *COLLISION_INFO_KEY)).squeeze(-1) < 0    # [envs, steps, agents]
        stats["collisions"] = (colliding & in_episode.unsqueeze(-1)).sum(dim=(1, 2)).float()
    return stats


def summarise(stats: dict[str, torch.Tensor]) -> dict[str, float | None]:
    return {
        "mean_reward": stats["reward"].mean().item(),
        "std_reward": stats["reward"].std().item() if stats["reward"].numel() > 1 else 0.0,
        "success_rate": stats["success"].mean().item(),
        "mean_collisions": stats["collisions"].mean().item() if "collisions" in stats else None,
        "mean_length": stats["length"].mean().item(),
    }


def evaluate(config: TrainConfig, policy: ProbabilisticActor, *, episodes: int, seed: int,
             device: torch.device) -> dict[str, Any]:
    """Deterministic policy vs uniform random actions on the same `episodes` starting states."""
    results: dict[str, Any] = {"episodes": episodes, "seed": seed, "max_steps": config.max_steps}
    for name, actor in (("policy", policy), ("random", None)):
        torch.manual_seed(seed)
        env = evaluation_env(config, episodes, seed, device)
        data = rollout(env, actor, config.max_steps, break_when_any_done=False)
        results[name] = summarise(first_episode_stats(data, config.max_steps))
        env.close()
    return results


def render_frames(env: TransformedEnv, policy: ProbabilisticActor | None, *, episodes: int,
                  max_steps: int) -> tuple[list[np.ndarray], list[int]]:
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
        data = rollout(env, policy, max_steps, callback=capture, auto_reset=False, tensordict=start,
                       break_when_any_done=True)
        frames.append(env.render(mode="rgb_array"))  # rollout skips its callback on the final step
        lengths.append(data.batch_size[-1])
    return frames, lengths


def describe_rollout(data: TensorDictBase) -> dict[str, Any]:
    """Keys, shapes and dtypes of every leaf, the batch size, and each agent's reward total."""
    leaves = []
    for key, value in data.items(include_nested=True, leaves_only=True):
        path = [key] if isinstance(key, str) else list(key)
        leaves.append({"key": path, "shape": list(value.shape), "dtype": str(value.dtype).replace("torch.", "")})
    rewards = data.get(("next", GROUP, "reward")).squeeze(-1)                 # [envs, steps, agents]
    return {
        "batch_size": list(data.batch_size),
        "keys": leaves,
        "reward_per_agent": rewards.sum(dim=1).mean(dim=0).tolist(),
    }
