"""One frozen dataclass holds every training setting; it travels into checkpoints and back."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from marlnav_cli.curriculum import parse_curriculum
from marlnav_cli.errors import ConfigError

# Rough upper bound of floats stored per agent per frame (observations, next observations, values,
# advantages, log-probs...): used only to refuse sizes that cannot fit in memory before allocating.
_FLOATS_PER_AGENT_FRAME = 256
# Seeds reach numpy's generator through VMAS, which takes 32-bit seeds.
MAX_SEED = 2**32 - 1
# Counts beyond this are typos, not runs (and beyond 2**53 they would not survive a float round trip).
MAX_COUNT = 10**12
MAX_CONFIG_FILE_BYTES = 1 << 20
# Keys that checkpoints and config files written before they existed lack, with what they meant then.
# Any other missing key is refused: a silent default would make a resumed run a different run.
ADDED_LATER = {
    "discrete": False,
    "normalize_advantage": False,
    "reward_scale": 1.0,
    "anneal_entropy": False,
    "bootstrap_time_limit": False,
    "team_sizes": "",
    "team_mix": "cycle",
    "critic": "mlp",
    "curriculum": "",
    "normalize_observations": False,
    "imitate_heuristic": 0,
    "dagger": False,
    "imitate_lr": 0.0,
    "dagger_aggregate": False,
    "imitate_beta": 0.0,
    "dagger_most_likely": False,
    "imitate_anneal_lr": False,
    "imitate_speed": 0.0,
    "centralised_policy": False,
    "imitate_square_approach": False,
}


ENVIRONMENT, PPO, MODEL, RUN = "Environment", "PPO", "Model", "Run"  # help panels


def setting(default: Any, help: str, panel: str, *, flag: str | None = None, off: str | None = None) -> Any:
    """A config field with what the command line needs to offer it: the flag (default: the field's name
    with dashes), the flag that turns a bool off, the help text and the help panel. The one place each
    setting is described: train's and sweep's options, --set and error messages are built from it."""
    return field(default=default, metadata={"help": help, "panel": panel, "flag": flag, "off": off})


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run. Defaults reproduce TorchRL's multi-agent PPO tutorial."""

    scenario: str = setting("navigation", "VMAS scenario (marlnav scenarios lists them).", ENVIRONMENT)
    n_agents: int = setting(
        3,
        "Number of agents, for scenarios that take it (else the scenario's own team); a range or list (2-8, "
        "2,4,8) trains one shared policy across those team sizes, a size per iteration in turn.",
        ENVIRONMENT,
    )
    team_sizes: str = setting(
        "", "The team sizes a run trains across (set through --n-agents; empty: --n-agents alone).", ENVIRONMENT
    )
    team_mix: str = setting(
        "cycle",
        "How a run across team sizes picks each iteration's size: cycle (each in turn) or sample (one drawn at "
        "random per iteration, from a generator of the seed and the iteration).",
        ENVIRONMENT,
    )
    curriculum: str = setting(
        "",
        "Scenario arguments that change over the run before the task itself: KEY=V1,V2 (';' between "
        "arguments) splits the run into equal stages, e.g. package_mass=5,20 trains a third at 5, a third at "
        "20, the last third at the task's own.",
        ENVIRONMENT,
    )
    frames_per_batch: int = setting(6_000, "Frames per iteration (a multiple of --max-steps).", PPO)
    total_frames: int = setting(60_000, "Total frames to collect (rounded up to whole batches).", PPO, flag="--frames")
    max_steps: int = setting(100, "Episode step limit.", ENVIRONMENT)
    num_epochs: int = setting(30, "PPO epochs over each batch.", PPO, flag="--epochs")
    minibatch_size: int = setting(400, "Frames per minibatch.", PPO)
    lr: float = setting(3e-4, "Adam learning rate.", PPO)
    max_grad_norm: float = setting(1.0, "Gradient clipping norm.", PPO)
    clip_epsilon: float = setting(0.2, "PPO clip range.", PPO)
    gamma: float = setting(0.99, "Discount factor.", PPO)
    lmbda: float = setting(0.9, "GAE lambda.", PPO)
    entropy_coeff: float = setting(1e-4, "Entropy bonus coefficient.", PPO)
    normalize_advantage: bool = setting(
        False,
        "Standardise each minibatch's advantages (ClipPPOLoss's normalize_advantage).",
        PPO,
        off="--raw-advantage",
    )
    anneal_lr: bool = setting(False, "Decay the learning rate linearly to 0 over the run.", PPO, off="--constant-lr")
    anneal_entropy: bool = setting(
        False,
        "Decay the entropy bonus linearly to 0 over the run: explore early, and end on a policy whose most "
        "likely action (what evaluate, render and export run) is what it learned.",
        PPO,
        off="--constant-entropy",
    )
    bootstrap_time_limit: bool = setting(
        False,
        "Treat the step limit as a cut, not an end: bootstrap the value there (terminated only when the scenario "
        "ends the episode), as a critic cannot see the time left (Pardo et al., Time Limits in RL, 2018).",
        PPO,
        off="--terminate-at-limit",
    )
    reward_scale: float = setting(
        1.0,
        "Multiply rewards by this for advantages and value targets (reported rewards stay the scenario's own), "
        "so a critic meets values near 1 where a scenario pays hundreds per episode.",
        PPO,
    )
    normalize_observations: bool = setting(
        False,
        "Standardise each observation feature for policy and critic by its mean and spread over random-action "
        "episodes, measured once before training (TorchRL's ObservationNorm.init_stats); kept with the weights.",
        MODEL,
        off="--raw-observations",
    )
    imitate_heuristic: int = setting(
        0,
        "Frames of the scenario's hand-written controller (VMAS's HeuristicPolicy, else marlnav's own) that "
        "the policy learns to copy, and the critic to value, before PPO starts (0: off); whole batches, on top of "
        "--frames. For tasks where random exploration never finds the reward (transport's package).",
        PPO,
    )
    dagger: bool = setting(
        False,
        "With --imitate-heuristic (alone it does nothing): after the first batch the policy acts and the heuristic "
        "labels the states it reaches (DAgger), so the copy also learns to come back from its own drift.",
        PPO,
        off="--no-dagger",
    )
    dagger_aggregate: bool = setting(
        False,
        "With --dagger: the copy is fitted on every batch labelled so far (DAgger's aggregated data set), not the "
        "latest alone, so states the policy has left stay taught; the critic still fits the latest batch.",
        PPO,
        off="--dagger-latest",
    )
    dagger_most_likely: bool = setting(
        False,
        "With --dagger: the policy acts by its most likely action, as evaluate runs it, so the heuristic labels the "
        "states the evaluated policy reaches rather than those its sampling noise leads to.",
        PPO,
        off="--dagger-sampled",
    )
    imitate_lr: float = setting(
        0.0,
        "With --imitate-heuristic: the copy's learning rate (0: --lr's). A precise copy can need a far smaller --lr "
        "for the PPO after it than the copy needs to be learned at all (buzz_wire: docs/zoo.md).",
        PPO,
    )
    imitate_anneal_lr: bool = setting(
        False,
        "With --imitate-heuristic: the copy's learning rate falls linearly to 0 over all its minibatches "
        "(torch's LinearLR), so its last steps settle rather than jitter: for tasks whose goal needs a precise copy.",
        PPO,
        off="--imitate-constant-lr",
    )
    imitate_speed: float = setting(
        0.0,
        "With --imitate-heuristic: the copied heuristic pushes at this fraction of the full push (0: the heuristic's "
        "own). Only VMAS's transport heuristic has one (its speed, 0.95): at 1.2 it delivers the package in every "
        "one of 600 episodes, about a sixth sooner, where at 0.95 it misses 0.01 of them (docs/zoo.md).",
        PPO,
    )
    imitate_square_approach: bool = setting(
        False,
        "With --imitate-heuristic: VMAS's transport heuristic is steered to bring the package onto its goal along "
        "the axis of its longer way. Transport pays the package's progress until it first touches the goal, and "
        "the square package touches the round goal 0.225 from its centre face on and 0.256 corner first, so a "
        "square approach keeps up to 3.1 of an episode's reward (docs/zoo.md).",
        PPO,
        off="--imitate-direct-approach",
    )
    imitate_beta: float = setting(
        0.0,
        "With --imitate-heuristic: beta of beta-NLL (Seitzer et al., 2022), in [0, 1]. Each action's likelihood is "
        "weighted by its spread to the power 2*beta, so the copy's most likely action keeps learning where its "
        "spread has grown (0: plain likelihood; 1: that action learns as by squared error).",
        PPO,
    )
    depth: int = setting(2, "Hidden layers of policy and critic.", MODEL)
    num_cells: int = setting(256, "Units per hidden layer.", MODEL)
    mappo: bool = setting(
        True, "Critic centralised over the agent's group (MAPPO) or local (IPPO).", MODEL, off="--ippo"
    )
    critic: str = setting(
        "mlp",
        "MAPPO's critic: mlp (TorchRL's MultiAgentMLP over exactly the team's observations) or deepsets (each "
        "agent's observation with the mean of the team's encodings: any team size, any agent order).",
        MODEL,
    )
    share_policy: bool = setting(True, "One policy network for all agents of a group.", MODEL, off="--no-share-policy")
    share_critic: bool = setting(True, "One critic network for all agents of a group.", MODEL, off="--no-share-critic")
    centralised_policy: bool = setting(
        False,
        "Each agent's policy network sees every agent's observation of its group (TorchRL's MultiAgentMLP, "
        "centralised), not its own alone: for tasks whose observation hides the teammates an agent must make way "
        "for (passage). Needs --no-share-policy; the policy then runs on the whole team, not on one robot alone.",
        MODEL,
        off="--local-policy",
    )
    discrete: bool = setting(
        False, "Discrete actions (a categorical policy) or continuous ones.", ENVIRONMENT, off="--continuous"
    )
    seed: int = setting(0, "Random seed (torch and VMAS), 0 to 2^32-1.", RUN)
    scenario_args: dict[str, Any] = field(default_factory=dict)

    @property
    def num_envs(self) -> int:
        """Vectorised VMAS envs: one batch holds exactly one full episode per env."""
        return self.frames_per_batch // self.max_steps

    @property
    def n_iters(self) -> int:
        return math.ceil(self.total_frames / self.frames_per_batch)

    @property
    def team_size_list(self) -> list[int]:
        """The team sizes the run trains at: its team sizes, else n_agents alone."""
        return parse_team_sizes(self.team_sizes) if self.team_sizes else [self.n_agents]

    @property
    def minibatches_per_epoch(self) -> int:
        return self.frames_per_batch // self.minibatch_size

    @property
    def algorithm(self) -> str:
        return "mappo" if self.mappo else "ippo"

    @property
    def env(self) -> EnvConfig:
        """The settings of this run that build its env."""
        return EnvConfig(**{name: getattr(self, name) for name in ENV_FIELDS})

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first bad value; return self so calls can chain."""
        self.env.validate()
        _check_counts(self, ("frames_per_batch", "total_frames", "num_epochs", "minibatch_size", "depth", "num_cells"))
        for name in (
            "lr",
            "max_grad_norm",
            "clip_epsilon",
            "gamma",
            "lmbda",
            "entropy_coeff",
            "reward_scale",
            "imitate_lr",
            "imitate_beta",
            "imitate_speed",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
                raise ConfigError(f"{flag_of(name)} must be a finite number, got {value!r}")
        for name in ("lr", "max_grad_norm", "clip_epsilon", "reward_scale"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{flag_of(name)} must be a positive number, got {getattr(self, name)!r}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"--gamma must be in (0, 1], got {self.gamma!r}")
        if not 0 <= self.lmbda <= 1:
            raise ConfigError(f"--lmbda must be in [0, 1], got {self.lmbda!r}")
        for name, zero_means in (("imitate_lr", "--lr's"), ("imitate_speed", "the heuristic's own")):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"{flag_of(name)} must be 0 ({zero_means}) or a positive number, got {getattr(self, name)!r}"
                )
        if not 0 <= self.imitate_beta <= 1:
            raise ConfigError(f"--imitate-beta must be in [0, 1], got {self.imitate_beta!r}")
        if not math.isfinite(self.entropy_coeff) or self.entropy_coeff < 0:
            raise ConfigError(f"--entropy-coeff must be >= 0, got {self.entropy_coeff!r}")
        if self.frames_per_batch % self.max_steps:
            raise ConfigError(
                f"--frames-per-batch ({self.frames_per_batch}) must be a multiple of --max-steps "
                f"({self.max_steps}) so that each batch holds whole episodes"
            )
        if self.minibatch_size > self.frames_per_batch:
            raise ConfigError(
                f"--minibatch-size ({self.minibatch_size}) is larger than a batch "
                f"(--frames-per-batch {self.frames_per_batch})"
            )
        check_fits_in_memory(self.frames_per_batch, self.n_agents)
        check_network_fits_in_memory(self.depth, self.num_cells, self.n_agents)
        self._check_networks_and_team_sizes()
        self._check_imitation()
        if self.curriculum and "n_agents" in parse_curriculum(self.curriculum):
            raise ConfigError("--curriculum cannot change n_agents: --n-agents 2-8 trains across team sizes")
        return self

    def _check_imitation(self) -> None:
        value = self.imitate_heuristic
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
            raise ConfigError(
                f"--imitate-heuristic must be 0 (off) or a frame count up to {MAX_COUNT:.0e}, got {value!r}"
            )
        if value and self.discrete:
            raise ConfigError(
                "--imitate-heuristic copies a hand-written controller, which acts in continuous actions: "
                "leave --discrete out, or give --imitate-heuristic 0 (a zoo entry that copies one sets it)"
            )
        if value and self.team_sizes:
            raise ConfigError(
                "--imitate-heuristic copies one team's controller: give --n-agents one size, or --imitate-heuristic 0"
            )

    def _check_networks_and_team_sizes(self) -> None:
        if self.centralised_policy and self.share_policy:
            raise ConfigError(
                "--centralised-policy gives one shared network the same input for every agent, so every agent "
                "the same action: add --no-share-policy"
            )
        if self.critic not in CRITICS:
            raise ConfigError(f"--critic takes {' or '.join(CRITICS)}, not {self.critic!r}")
        if self.critic == "deepsets" and not self.mappo:
            raise ConfigError("--critic deepsets pools over the team: it is MAPPO's critic (leave --ippo out)")
        if self.team_mix not in TEAM_MIXES:
            raise ConfigError(f"--team-mix takes {' or '.join(TEAM_MIXES)}, not {self.team_mix!r}")
        if not self.team_sizes:
            return
        sizes = parse_team_sizes(self.team_sizes)
        if len(sizes) < 2 or self.team_sizes != format_team_sizes(sizes) or self.n_agents != max(sizes):
            raise ConfigError(
                f"team_sizes {self.team_sizes!r} must list two or more sizes as --n-agents gives them, "
                f"with n_agents their largest"
            )
        if not (self.share_policy and self.share_critic):
            raise ConfigError(
                "--n-agents with several team sizes trains one shared policy and critic: leave "
                "--no-share-policy and --no-share-critic out"
            )
        if self.mappo and self.critic != "deepsets":
            raise ConfigError(
                "MultiAgentMLP's centralised critic takes exactly one team size: use --critic deepsets with "
                f"--n-agents {self.team_sizes}, or --ippo"
            )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def to_toml(self) -> str:
        """The config as TOML that `train --config` reads back into an identical config."""
        scalars = {name: value for name, value in dataclasses.asdict(self).items() if name != "scenario_args"}
        lines = [f"{name} = {_toml_value(value)}" for name, value in scalars.items()]
        lines += ["", "[scenario_args]"] + [
            f"{key} = {_toml_value(value)}" for key, value in self.scenario_args.items()
        ]
        return (
            "# marlnav training config: `marlnav train --config this-file` reproduces the run\n"
            + "\n".join(lines)
            + "\n"
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, complete: bool = False) -> TrainConfig:
        """Checked names and types; ints where floats go become floats. With `complete`, every key must be
        there (but those in ADDED_LATER), as in a checkpoint's config."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        missing = sorted(known - set(values) - set(ADDED_LATER))
        if complete and missing:
            raise ConfigError(f"config lacks keys: {', '.join(missing)}")
        expected_types = {f.name: f.type for f in fields(cls)}
        typed = {}
        for name, value in values.items():
            if not _has_type(value, expected_types[name]):
                raise ConfigError(f"config key {name} has the wrong type: {value!r}")
            typed[name] = _as_float(name, value) if str(expected_types[name]) == "float" else value
        return cls(**typed)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ConfigError("config JSON must be an object")
        return cls.from_dict(values, complete=True)


ENV_FIELDS = ("scenario", "n_agents", "max_steps", "discrete", "seed", "scenario_args")


@dataclass(frozen=True)
class EnvConfig:
    """The settings that build an env, apart from training's: what inspect-specs, rollout and render take,
    and the env part of every run (TrainConfig.env). Described, with their defaults, in TrainConfig."""

    scenario: str
    n_agents: int
    max_steps: int
    discrete: bool
    seed: int
    scenario_args: dict[str, Any]

    def validate(self) -> EnvConfig:
        _check_counts(self, ("n_agents", "max_steps"))
        check_seed(self.seed)
        check_scenario(self.scenario)
        for key, value in self.scenario_args.items():
            check_scenario_arg(key, value)
        return self


def default_env(**given: Any) -> EnvConfig:
    """TrainConfig's env defaults (the tutorial's) with the given settings on top; None keeps a default."""
    return dataclasses.replace(TrainConfig().env, **{k: v for k, v in given.items() if v is not None})


def _check_counts(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_COUNT:
            raise ConfigError(f"{flag_of(name)} must be a positive integer up to {MAX_COUNT:.0e}, got {value!r}")


# Named starting points for `train`; options given on the command line override them.
# "tutorial" is the dataclass's own defaults: TorchRL's multi-agent PPO tutorial, exactly.
# "fast" reaches better evaluated quality than the tutorial in under a third of its time on 2 CPU cores.
# The tutorial spends its time on 450 minibatches of 400 per iteration through 2x256 nets; "fast" takes
# 2x64 nets and 160 minibatches of 750 (8 per epoch, 20 epochs), a higher learning rate decayed linearly
# to 0, standardised advantages, a shorter GAE horizon and a shorter discount horizon, over 60% more frames.
# Why each: the lever study in docs/learning.md (more gradient steps per frame helped most; a short GAE
# horizon only with them; gamma 0.95 removed the slow seeds that ended below 0.93 success).
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {
        "num_cells": 64,
        "minibatch_size": 750,
        "num_epochs": 20,
        "lr": 2e-3,
        "anneal_lr": True,
        "normalize_advantage": True,
        "gamma": 0.95,
        "lmbda": 0.8,
        "total_frames": 96_000,
    },
    "tutorial": {},
    # BenchMARL's published tuned VMAS settings (fine_tuned/vmas/conf/config.yaml with its MAPPO/IPPO
    # files): the anchor the zoo is measured against. 600 envs of 100 steps; its critic loss is L2 where
    # marlnav's is the tutorial's smooth L1, and its minibatches of 4096 leave 2,656 frames of each
    # 60,000 unused per epoch here (marlnav takes whole minibatches of a fresh permutation each epoch).
    "benchmarl": {
        "frames_per_batch": 60_000,
        "total_frames": 10_000_000,
        "num_epochs": 45,
        "minibatch_size": 4096,
        "lr": 5e-5,
        "gamma": 0.9,
        "lmbda": 0.9,
        "clip_epsilon": 0.2,
        "entropy_coeff": 0.0,
        "max_grad_norm": 5.0,
    },
}
DEFAULT_PRESET = "fast"


def preset_config(name: str) -> TrainConfig:
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown preset {name!r}; {hint}choose from {', '.join(PRESETS)}")
    return dataclasses.replace(TrainConfig(), **PRESETS[name])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string of printable text is a TOML basic string
    return repr(value)


def _has_type(value: Any, type_name: str) -> bool:
    checks = {
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "dict[str, Any]": lambda v: isinstance(v, dict),
    }
    return checks.get(str(type_name), lambda v: True)(value)


def load_config_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML file written by `train` (config.toml) or by hand; checked by from_dict.

    Only a regular file of at most MAX_CONFIG_FILE_BYTES is read: a FIFO would block and /dev/zero would
    never end.
    """
    text = read_small_text(path, "config file", MAX_CONFIG_FILE_BYTES)
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    checked = TrainConfig.from_dict({**dataclasses.asdict(TrainConfig()), **values})  # names and types
    return {name: getattr(checked, name) for name in values}


def read_small_text(path: Path, what: str, limit: int) -> str:
    """A regular UTF-8 file of at most `limit` bytes, or one ConfigError line saying why not."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"{what} {path} is not a regular file")
    if status.st_size > limit:
        raise ConfigError(f"{what} {path} is {status.st_size} bytes, more than the {limit} a {what} may have")
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror}") from None
    if len(data) > limit:
        raise ConfigError(f"{what} {path} is larger than the {limit} bytes a {what} may have")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None


CRITICS = ("mlp", "deepsets")
TEAM_MIXES = ("cycle", "sample")
MAX_TEAM_SIZE = 1000  # VMAS's scenarios slow quadratically with team size: beyond this is a typo


def parse_team_sizes(text: str) -> list[int]:
    """'2-8', '2,4,8' or '1-8,12,16' into sorted distinct team sizes."""
    if not re.fullmatch(r"[\d\s,-]+", text):
        raise ConfigError(
            f"--n-agents takes a team size, or a range or list of them such as 2-8 or 2,4,8; got {text!r}"
        )
    return parse_int_ranges(text, flag="--n-agents", most=MAX_TEAM_SIZE, smallest=1)


def format_team_sizes(sizes: list[int]) -> str:
    """Sorted sizes as --n-agents takes them: runs of consecutive sizes as ranges (1-8,12,16)."""
    parts: list[str] = []
    start = previous = sizes[0]
    for size in [*sizes[1:], None]:
        if size is not None and size == previous + 1:
            previous = size
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if size is not None:
            start = previous = size
    return ",".join(parts)


def team_settings(text: str) -> dict[str, Any]:
    """--n-agents as settings: one size is n_agents; several are team_sizes, with n_agents the largest
    (the team a run evaluates and renders by default)."""
    sizes = parse_team_sizes(text)
    if len(sizes) == 1:
        return {"n_agents": sizes[0]}
    return {"n_agents": max(sizes), "team_sizes": format_team_sizes(sizes)}


def parse_scenario_args(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs, typed: true/false are bools, then int, then float, else a string."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"--scenario-arg takes key=value, got {item!r}")
        parsed[key.strip()] = typed_value(text.strip())
    return parsed


def parse_int_ranges(text: str, *, flag: str, most: int, smallest: int = 0) -> list[int]:
    """'0-4', '0,2,7' or '0-2,9' into a sorted list of distinct integers, at most `most` of them."""
    values: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise ConfigError(f"{flag} takes ranges and lists like 0-4 or 0,2,7; got {text!r}")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ConfigError(f"{flag} range {part.strip()} is empty")
        if first < smallest:
            raise ConfigError(f"{flag} values must be at least {smallest}; got {first}")
        if last - first + 1 + len(values) > most:
            raise ConfigError(f"{flag} {text} gives more than {most} values")
        values.update(range(first, last + 1))
    return sorted(values)


def typed_value(text: str) -> bool | int | float | str:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


# Words a user may mean as booleans: passed on as strings, VMAS would read every one of them as true.
_BOOLEAN_LOOKING = {"on", "off", "yes", "no", "y", "n"}


def check_scenario_arg(key: str, value: Any) -> None:
    if isinstance(value, (bool, str)):
        if isinstance(value, str) and value.strip().lower() in _BOOLEAN_LOOKING:
            raise ConfigError(f"--scenario-arg {key}={value}: write true or false")
        return
    if not isinstance(value, (int, float)):
        raise ConfigError(f"--scenario-arg {key} must be a bool, int, float or string, got {value!r}")
    if not _finite(value) or abs(value) > MAX_COUNT:
        raise ConfigError(f"--scenario-arg {key} must be a finite number up to {MAX_COUNT:.0e}, got {value!r}")


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _as_float(name: str, value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(f"config key {name} is too large: {value}") from None


def flag_of(field_name: str) -> str:
    """The command-line flag of a config field: its metadata's, else the name with dashes."""
    metadata = {f.name: f.metadata for f in fields(TrainConfig)}[field_name]
    return metadata.get("flag") or "--" + field_name.replace("_", "-")


def field_of_flag(name: str) -> str | None:
    """The config field a flag or field name (with or without dashes) stands for, or None."""
    wanted = "--" + name.lstrip("-").replace("_", "-")
    for f in fields(TrainConfig):
        if f.name != "scenario_args" and wanted in (flag_of(f.name), "--" + f.name.replace("_", "-")):
            return f.name
    return None


def vmas_scenario_files() -> list[Path]:
    """The source files of VMAS's scenario folders (its own, mpe and debug), found without importing vmas:
    importing it imports torch, seconds that a listing or a misspelt name should not wait for."""
    spec = importlib.util.find_spec("vmas")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("VMAS is not installed: pip install vmas")
    folder = Path(next(iter(spec.submodule_search_locations))) / "scenarios"
    files = [*folder.glob("*.py"), *(folder / "mpe").glob("*.py"), *(folder / "debug").glob("*.py")]
    return [file for file in files if file.stem != "__init__"]


def available_scenarios() -> list[str]:
    """VMAS's scenarios (its `scenarios`, `mpe_scenarios` and `debug_scenarios`), read from the files of its
    scenario folders (tested equal to vmas's own lists)."""
    return sorted({file.stem for file in vmas_scenario_files()})


def check_scenario(name: str) -> None:
    known = available_scenarios()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown VMAS scenario {name!r}; {hint}marlnav scenarios lists the {len(known)} known")


def check_fits_in_memory(frames: int, n_agents: int) -> None:
    needed = frames * n_agents * _FLOATS_PER_AGENT_FRAME * 4
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise ConfigError(
            f"{frames} frames x {n_agents} agents needs about {needed / 2**30:.0f} GiB, "
            f"more than this machine's {available / 2**30:.0f} GiB"
        )


def check_network_fits_in_memory(depth: int, num_cells: int, n_agents: int) -> None:
    """Policy and critic (one per agent at most), with Adam's two moments: refuse what cannot be built."""
    weights = 2 * n_agents * (depth * num_cells * num_cells + 4 * num_cells * (n_agents + 64))
    needed = 3 * weights * 4
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise ConfigError(
            f"--depth {depth} x --num-cells {num_cells} nets need about {needed / 2**30:.0f} GiB, "
            f"more than this machine's {available / 2**30:.0f} GiB"
        )


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"--seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")


def check_positive(flag: str, value: int) -> None:
    if value <= 0 or value > MAX_COUNT:
        raise ConfigError(f"{flag} must be a positive integer up to {MAX_COUNT:.0e}, got {value}")
