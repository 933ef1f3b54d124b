"""The task seam: build the VMAS env with its transforms, and describe its specs."""

from __future__ import annotations

import logging
import re
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torchrl.data import Composite, TensorSpec
from torchrl.envs import RewardSum, TransformedEnv
from torchrl.envs.libs.vmas import VmasEnv

from marlnav_cli.config import EnvConfig, TrainConfig, check_scenario
from marlnav_cli.errors import ConfigError
from marlnav_cli.media import LegendEntry
from marlnav_cli.scenario_arguments import apply_added_arguments, vmas_arguments
from marlnav_cli.scenarios import team_size_hint
from marlnav_cli.vmas_mends import mend_scenario

_UNBOUNDED = 1e30  # specs mark unbounded entries with the float32 extremes

# torchrl logs "check_env_specs succeeded!" at INFO; marlnav reports the result itself.
logging.getLogger("torchrl").setLevel(logging.WARNING)


@dataclass(frozen=True)
class AgentGroup:
    """Agents that share a policy and a critic: TorchRL's group of agents named "<group>_<k>".

    A scenario whose agents all share one name prefix has a single group, "agents", as in the tutorial.
    """

    name: str
    agent_names: tuple[str, ...]
    agent_indices: tuple[int, ...]  # positions in VMAS's agent list, which steps take actions in

    @property
    def n_agents(self) -> int:
        return len(self.agent_names)

    def key(self, *leaf: str) -> tuple[str, ...]:
        return (self.name, *leaf)


def agent_groups(env: TransformedEnv | VmasEnv) -> list[AgentGroup]:
    base = env.base_env if isinstance(env, TransformedEnv) else env
    return [
        AgentGroup(name, tuple(names), tuple(base.agent_names_to_indices_map[n] for n in names))
        for name, names in base.group_map.items()
    ]


def group_layout(env: TransformedEnv) -> dict[str, list[str]]:
    """Group name -> agent names: stored in checkpoints to check that a rebuilt env matches."""
    return {group.name: list(group.agent_names) for group in agent_groups(env)}


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


def make_env(
    config: EnvConfig | TrainConfig, *, num_envs: int, seed: int, device: torch.device, step_limit: bool = True
) -> TransformedEnv:
    """VMAS with its agents in TorchRL's groups (by name prefix), plus RewardSum per group.

    Without `step_limit`, VMAS never ends an episode at config.max_steps, so a done means the task
    itself ended; evaluation uses this to tell success from running out of time.
    """
    check_scenario(config.scenario)
    with _recorded_warnings() as caught, _time_limit(config, SCENARIO_BUILD_LIMIT_S * 4):
        base = _build_vmas(config, num_envs=num_envs, seed=seed, device=device, step_limit=step_limit)
    _refuse_unused_arguments(config, caught)
    if base.n_agents != config.n_agents:
        raise ConfigError(f"{team_size_hint(config.scenario, base.n_agents)}, not --n-agents {config.n_agents}")
    for group, het in base.het_specs_map.items():
        if het:
            raise ConfigError(
                f"scenario {config.scenario!r}: agents of group {group!r} differ in observation or "
                "action sizes, which one group's network cannot take"
            )
        if isinstance(base.observation_spec[group, "observation"], Composite):
            raise ConfigError(
                f"scenario {config.scenario!r} gives group {group!r} dictionary observations; "
                "marlnav's networks take flat observation vectors"
            )
    reward_keys = [group.key("reward") for group in agent_groups(base)]
    return TransformedEnv(
        base,
        RewardSum(
            in_keys=reward_keys,
            out_keys=[(key[0], "episode_reward") for key in reward_keys],
            reset_keys=["_reset"] * len(reward_keys),
        ),
    )


def fixed_team_size(config: EnvConfig | TrainConfig) -> int | None:
    """The team size of a scenario that ignores n_agents, or reads it but keeps its own (multi_give_way);
    None when n_agents sets it. Builds the scenario once and steps it, so its arguments are checked too."""
    import vmas

    check_scenario(config.scenario)
    with _recorded_warnings() as caught, _time_limit(config, SCENARIO_BUILD_LIMIT_S):
        try:
            world = vmas.make_env(
                config.scenario,
                num_envs=1,
                device="cpu",
                continuous_actions=True,
                n_agents=config.n_agents,
                **vmas_arguments(config.scenario, config.scenario_args),
            )
            # One step too: an argument of the wrong type (package_mass=abc) builds, then fails in the
            # physics. Still actions, so no random number is drawn.
            world.step([torch.zeros(1, world.get_agent_action_size(agent)) for agent in world.agents])
        except (AssertionError, TypeError, ValueError, KeyError, ZeroDivisionError) as error:
            raise _refused(config, error) from None
    _refuse_unused_arguments(config, caught)
    return world.n_agents if _ignores_n_agents(caught) or world.n_agents != config.n_agents else None


# VMAS places agents by rejection sampling: with an agent too large for the arena (agent_radius=1e5) it
# never stops. Every scenario builds one env in under 2 s here (many envs: longer, hence 4x in make_env).
SCENARIO_BUILD_LIMIT_S = 30


# The error raised from a signal handler lands wherever Python happens to be; inside a finaliser (a __del__
# run by the garbage collector) it is printed and dropped, and a one-shot alarm then never comes back (seen
# once in a local `.ci/run`: the placement loop ran on for 10 minutes). So the limit raises again at this interval.
TIME_LIMIT_REPEAT_S = 0.5


@contextmanager
def _time_limit(config: EnvConfig | TrainConfig, seconds: float) -> Iterator[None]:
    """Refuse a scenario that takes longer than `seconds` to build (main thread only: SIGALRM)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def give_up(signum: int, frame: Any) -> None:
        raise ConfigError(
            f"scenario {config.scenario!r} did not finish building in {seconds:g} s with "
            f"{config.scenario_args or 'its default arguments'}: VMAS could not place its "
            "agents and objects (too large for the arena?)"
        )

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds, TIME_LIMIT_REPEAT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning VMAS gives while a scenario builds (its only word on arguments it ignores), but for
    its placement loop's complaint, given once per try past 50,000: kept, those grow by gigabytes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message="It is taking many iterations to spawn the entity")
        yield caught


def _refuse_unused_arguments(config: EnvConfig | TrainConfig, caught: list[warnings.WarningMessage]) -> None:
    unused = _unused_arguments(caught, config.scenario_args)
    if unused:
        raise ConfigError(f"scenario {config.scenario!r} takes no argument {', '.join(unused)}")


def _unused_arguments(caught: list[warnings.WarningMessage], scenario_args: dict[str, Any]) -> list[str]:
    # VMAS only warns about kwargs a scenario ignores; a user's typo must not pass silently.
    ignored = " ".join(str(w.message) for w in caught if "not used by the scenario" in str(w.message))
    return [key for key in scenario_args if f"'{key}'" in ignored]


def _ignores_n_agents(caught: list[warnings.WarningMessage]) -> bool:
    return bool(_unused_arguments(caught, {"n_agents": None}))


def _refused(config: EnvConfig | TrainConfig, error: Exception) -> ConfigError:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ConfigError(
        f"scenario {config.scenario!r} refused these settings "
        f"(n_agents={config.n_agents}, {config.scenario_args}): {detail}"
    )


def _build_vmas(
    config: EnvConfig | TrainConfig, *, num_envs: int, seed: int, device: torch.device, step_limit: bool
) -> VmasEnv:
    try:
        env = VmasEnv(
            scenario=config.scenario,
            num_envs=num_envs,
            continuous_actions=not config.discrete,
            max_steps=config.max_steps if step_limit else None,
            device=device,
            seed=seed,
            n_agents=config.n_agents,
            **vmas_arguments(config.scenario, config.scenario_args),
        )
    except (AssertionError, TypeError, ValueError, KeyError) as error:
        raise _refused(config, error) from None
    mend_scenario(config.scenario, env._env.scenario)
    apply_added_arguments(config.scenario, env._env.scenario, config.scenario_args)
    return env


def observation_size(env: TransformedEnv, group: AgentGroup) -> int:
    return env.observation_spec[group.key("observation")].shape[-1]


def per_env(value: torch.Tensor, num_envs: int) -> torch.Tensor:
    """A reward or done as [envs]: VMAS gives [envs] in most scenarios and [envs, 1] in some (wheel)."""
    return value.reshape(num_envs)


def frame_rate(env: TransformedEnv) -> float:
    """Simulated steps per second: one frame per step plays the episode at its real speed."""
    return 1.0 / env.base_env._env.scenario.world.dt


def describe_spec(spec: TensorSpec) -> dict[str, Any]:
    """A spec as plain data: nested dicts for composites, shape/dtype/bounds at the leaves."""
    if isinstance(spec, Composite):
        return {str(key): describe_spec(sub) for key, sub in spec.items()}
    leaf: dict[str, Any] = {
        "shape": list(spec.shape),
        "dtype": str(spec.dtype).replace("torch.", ""),
        "type": type(spec).__name__,
    }
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
        "groups": group_layout(env),
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


MAX_LEGEND_ROWS = 12  # beyond this a legend hides the scene it explains


def entity_legend(env: TransformedEnv) -> list[LegendEntry]:
    """What each colour in a rendered frame is: VMAS's agents and landmarks by name, less their index
    ("agent", "goal") where one colour serves them all, by full name where colours tell them apart."""
    world = env.base_env._env.scenario.world
    entities = [*world.agents, *world.landmarks]
    labels = [re.sub(r"[ _]?\d+$", "", entity.name) or entity.name for entity in entities]
    colors = [_rgb(entity.color) for entity in entities]
    colors_per_label: dict[str, set] = {}
    for label, color in zip(labels, colors):
        colors_per_label.setdefault(label, set()).add(color)
    legend: dict[tuple[str, tuple[int, int, int]], LegendEntry] = {}
    for entity, label, color in zip(entities, labels, colors):
        shown = label if len(colors_per_label[label]) == 1 else entity.name
        legend.setdefault((shown, color), LegendEntry(shown, color))
    return list(legend.values())[:MAX_LEGEND_ROWS]


def _rgb(color: Any) -> tuple[int, int, int]:
    """VMAS colours are RGB floats in [0, 1]: a tuple, or a tensor (one row per env where it varies)."""
    values = torch.as_tensor(color, dtype=torch.float32).reshape(-1, torch.as_tensor(color).shape[-1])[0]
    return tuple(round(float(value) * 255) for value in values[:3])  # type: ignore[return-value]
