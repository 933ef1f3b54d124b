"""The task seam: build the VMAS env with its transforms, and describe its specs."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torchrl.data import Composite, TensorSpec
from torchrl.envs import RewardSum, TransformedEnv
from torchrl.envs.libs.vmas import VmasEnv
from torchrl.envs.utils import MarlGroupMapType

from marlnav_cli.config import TrainConfig, check_scenario
from marlnav_cli.errors import ConfigError

GROUP = "agents"
OBSERVATION_KEY = (GROUP, "observation")
EPISODE_REWARD_KEY = (GROUP, "episode_reward")
_UNBOUNDED = 1e30  # specs mark unbounded entries with the float32 extremes

# torchrl logs "check_env_specs succeeded!" at INFO; marlnav reports the result itself.
logging.getLogger("torchrl").setLevel(logging.WARNING)


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda when present; anything else must name a device torch can use here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is available here")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu or cuda[:N]")
    return device


def make_env(config: TrainConfig, *, num_envs: int, seed: int, device: torch.device,
             step_limit: bool = True) -> TransformedEnv:
    """The tutorial's env: continuous-action VMAS with all agents in one group, plus RewardSum.

    Without `step_limit`, VMAS never ends an episode at config.max_steps, so a done means the task
    itself ended; evaluation uses this to tell success from running out of time.
    """
    check_scenario(config.scenario)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        base = _build_vmas(config, num_envs=num_envs, seed=seed, device=device, step_limit=step_limit)
    # VMAS only warns about kwargs a scenario ignores; a user's typo must not pass silently.
    # (n_agents is checked below: some scenarios fix their agent count.)
    ignored = " ".join(str(w.message) for w in caught if "not used by the scenario" in str(w.message))
    unused = [key for key in config.scenario_args if f"'{key}'" in ignored]
    if unused:
        raise ConfigError(f"scenario {config.scenario!r} takes no argument {', '.join(unused)}")
    if base.n_agents != config.n_agents:
        raise ConfigError(f"scenario {config.scenario!r} has {base.n_agents} agents, not "
                          f"{config.n_agents}; pass --n-agents {base.n_agents}")
    if base.het_specs:
        raise ConfigError(f"scenario {config.scenario!r} gives agents observations of different "
                          "sizes, which a shared multi-agent MLP cannot take")
    return TransformedEnv(base, RewardSum(in_keys=[base.reward_key], out_keys=[EPISODE_REWARD_KEY]))


def _build_vmas(config: TrainConfig, *, num_envs: int, seed: int, device: torch.device,
                step_limit: bool) -> VmasEnv:
    try:
        return VmasEnv(
            scenario=config.scenario,
            num_envs=num_envs,
            continuous_actions=True,
            max_steps=config.max_steps if step_limit else None,
            device=device,
            seed=seed,
            n_agents=config.n_agents,
            group_map=MarlGroupMapType.ALL_IN_ONE_GROUP,
            **config.scenario_args,
        )
    except (AssertionError, TypeError, ValueError, KeyError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"scenario {config.scenario!r} refused these settings "
                          f"(n_agents={config.n_agents}, {config.scenario_args}): {detail}") from None


def observation_size(env: TransformedEnv) -> int:
    return env.observation_spec[OBSERVATION_KEY].shape[-1]


def frame_rate(env: TransformedEnv) -> float:
    """Simulated steps per second: one frame per step plays the episode at its real speed."""
    return 1.0 / env.base_env._env.scenario.world.dt


def describe_spec(spec: TensorSpec) -> dict[str, Any]:
    """A spec as plain data: nested dicts for composites, shape/dtype/bounds at the leaves."""
    if isinstance(spec, Composite):
        return {str(key): describe_spec(sub) for key, sub in spec.items()}
    leaf: dict[str, Any] = {"shape": list(spec.shape), "dtype": str(spec.dtype).replace("torch.", ""),
                            "type": type(spec).__name__}
    space = getattr(spec, "space", None)
    if hasattr(space, "low") and hasattr(space, "high"):
        low, high = space.low.min().item(), space.high.max().item()
        if max(abs(low), abs(high)) < _UNBOUNDED:
            leaf["low"], leaf["high"] = low, high
    return leaf


def describe_env(env: TransformedEnv, scenario: str) -> dict[str, Any]:
    """What the tutorial prints about the env, as data for a table or JSON."""
    return {
        "scenario": scenario,
        "num_envs": env.batch_size[0],
        "n_agents": env.base_env.n_agents,
        "batch_size": list(env.batch_size),
        "action_spec": describe_spec(env.full_action_spec),
        "reward_spec": describe_spec(env.full_reward_spec),
        "done_spec": describe_spec(env.full_done_spec),
        "observation_spec": describe_spec(env.observation_spec),
        "action_keys": [list(_as_tuple(k)) for k in env.action_keys],
        "reward_keys": [list(_as_tuple(k)) for k in env.reward_keys],
        "done_keys": [list(_as_tuple(k)) for k in env.done_keys],
    }


def _as_tuple(key: str | tuple[str, ...]) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else tuple(key)
