"""One frozen dataclass holds every training setting; it travels into checkpoints and back."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, fields
from typing import Any

from marlnav_cli.errors import ConfigError

# Rough upper bound of floats stored per agent per frame (observations, next observations, values,
# advantages, log-probs...): used only to refuse sizes that cannot fit in memory before allocating.
_FLOATS_PER_AGENT_FRAME = 256


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run. Defaults reproduce TorchRL's multi-agent PPO tutorial."""

    scenario: str = "navigation"
    n_agents: int = 3
    frames_per_batch: int = 6_000
    total_frames: int = 60_000
    max_steps: int = 100
    num_epochs: int = 30
    minibatch_size: int = 400
    lr: float = 3e-4
    max_grad_norm: float = 1.0
    clip_epsilon: float = 0.2
    gamma: float = 0.99
    lmbda: float = 0.9
    entropy_coeff: float = 1e-4
    depth: int = 2
    num_cells: int = 256
    mappo: bool = True
    share_policy: bool = True
    share_critic: bool = True
    seed: int = 0

    @property
    def num_envs(self) -> int:
        """Vectorised VMAS envs: one batch holds exactly one full episode per env."""
        return self.frames_per_batch // self.max_steps

    @property
    def n_iters(self) -> int:
        return math.ceil(self.total_frames / self.frames_per_batch)

    @property
    def minibatches_per_epoch(self) -> int:
        return self.frames_per_batch // self.minibatch_size

    @property
    def algorithm(self) -> str:
        return "mappo" if self.mappo else "ippo"

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first bad value; return self so calls can chain."""
        positive_ints = ("n_agents", "frames_per_batch", "total_frames", "max_steps", "num_epochs",
                         "minibatch_size", "depth", "num_cells")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{_flag(name)} must be a positive integer, got {value!r}")
        for name in ("lr", "max_grad_norm", "clip_epsilon"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{_flag(name)} must be a positive number, got {value!r}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"--gamma must be in (0, 1], got {self.gamma!r}")
        if not 0 <= self.lmbda <= 1:
            raise ConfigError(f"--lmbda must be in [0, 1], got {self.lmbda!r}")
        if not math.isfinite(self.entropy_coeff) or self.entropy_coeff < 0:
            raise ConfigError(f"--entropy-coeff must be >= 0, got {self.entropy_coeff!r}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed!r}")
        if self.frames_per_batch % self.max_steps:
            raise ConfigError(
                f"--frames-per-batch ({self.frames_per_batch}) must be a multiple of --max-steps "
                f"({self.max_steps}) so that each batch holds whole episodes")
        if self.minibatch_size > self.frames_per_batch:
            raise ConfigError(
                f"--minibatch-size ({self.minibatch_size}) is larger than a batch "
                f"(--frames-per-batch {self.frames_per_batch})")
        check_scenario(self.scenario)
        check_fits_in_memory(self.frames_per_batch, self.n_agents)
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ConfigError("config JSON must be an object")
        return cls.from_dict(values)


# Named starting points for `train`; options given on the command line override them.
# "tutorial" is the dataclass's own defaults: TorchRL's multi-agent PPO tutorial, exactly.
PRESETS: dict[str, dict[str, Any]] = {
    "tutorial": {},
    "fast": {},
}
DEFAULT_PRESET = "tutorial"


def preset_config(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return dataclasses.replace(TrainConfig(), **PRESETS[name])


def _flag(field_name: str) -> str:
    return "--" + {"total_frames": "frames", "num_epochs": "epochs"}.get(field_name, field_name).replace("_", "-")


def available_scenarios() -> list[str]:
    import vmas

    return sorted(set(vmas.scenarios) | set(vmas.mpe_scenarios) | set(vmas.debug_scenarios))


def check_scenario(name: str) -> None:
    if name not in available_scenarios():
        raise ConfigError(f"unknown VMAS scenario {name!r}; known: {', '.join(available_scenarios())}")


def check_fits_in_memory(frames: int, n_agents: int) -> None:
    needed = frames * n_agents * _FLOATS_PER_AGENT_FRAME * 4
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise ConfigError(
            f"{frames} frames x {n_agents} agents needs about {needed / 2**30:.0f} GiB, "
            f"more than this machine's {available / 2**30:.0f} GiB")


def check_positive(flag: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"{flag} must be a positive integer, got {value}")
