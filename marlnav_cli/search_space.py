"""The search space of `marlnav tune`: which training settings vary, over what values.

Settings are named as the one config source names them (a field's name or its flag's: `lr`, `epochs`),
each a TOML table with either `values = [...]` (a choice) or `low`, `high` and optionally `log = true`
(a range: integers for an integer setting). The default space is rl-baselines3-zoo's PPO space cut to
what marlnav's config has. Everything is checked here, before Ray starts: a bad file is one error line.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from marlnav_cli.config import TrainConfig, field_of_flag, flag_of, read_small_text
from marlnav_cli.errors import ConfigError

# The PPO space of rl-baselines3-zoo's optimise mode (its hyperparams_opt.py), on marlnav's settings:
# categorical where the zoo's are, a log range for the learning rate and the entropy bonus. Batch sizes
# are multiples of the step limits VMAS's scenarios use (100, 200, 500 steps), minibatches at most the
# smallest batch, so every combination is a valid config.
DEFAULT_SPACE = """\
lr = { low = 1e-4, high = 5e-3, log = true }
gamma = { values = [0.9, 0.95, 0.98, 0.99] }
lmbda = { values = [0.8, 0.9, 0.95, 1.0] }
num_epochs = { values = [5, 10, 20, 30] }
minibatch_size = { values = [375, 750, 1500, 3000] }
entropy_coeff = { low = 1e-6, high = 1e-2, log = true }
clip_epsilon = { values = [0.1, 0.2, 0.3] }
num_cells = { values = [64, 128, 256] }
frames_per_batch = { values = [6000, 12000, 30000] }
normalize_advantage = { values = [true, false] }
"""
# What a search may not vary: the task itself, the seeds (--seeds-per-trial), and the budget (--frames:
# more frames would always win).
NOT_SEARCHABLE = {"scenario", "seed", "scenario_args", "total_frames"}
# Settings whose every value is checked by building the scenario with it (before Ray starts): a stage's
# arguments. (A team size the scenario refuses fails its trials, each recorded with VMAS's error.)
BUILDS_THE_SCENARIO = {"curriculum"}
MAX_SPACE_FILE_BYTES = 64 * 1024
MAX_CHOICES = 1000


@dataclass(frozen=True)
class Parameter:
    """One searched setting: a choice of values, or a range (low, high) searched linearly or in log."""

    name: str  # the config field
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def is_int(self) -> bool:
        return _field_type(self.name) == "int"

    def domain(self) -> Any:
        """The Ray Tune domain (Optuna's TPE samples it through Ray Tune's OptunaSearch)."""
        from ray import tune

        if self.values is not None:
            return tune.choice(list(self.values))
        low, high = self.low, self.high
        if self.is_int:
            # Ray's integer ranges exclude `high`: +1 makes the file's range inclusive, as its reader expects.
            return (tune.lograndint if self.log else tune.randint)(int(low), int(high) + 1)
        return (tune.loguniform if self.log else tune.uniform)(low, high)

    def setting(self, sampled: Any) -> Any:
        """The value a trial trains with: a float from a range to 3 significant digits, so that settings
        read as a person would write them (lr 0.00123, not 0.001229607110732572)."""
        if self.values is None and not self.is_int:
            return float(f"{sampled:.3g}")
        return sampled

    def contains(self, value: Any) -> bool:
        if self.values is not None:
            return value in self.values
        return self.low <= value <= self.high

    def describe(self) -> str:
        if self.values is not None:
            return f"{self.name} in {{{', '.join(_text(v) for v in self.values)}}}"
        return f"{self.name} in [{_text(self.low)}, {_text(self.high)}]" + (" (log)" if self.log else "")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value or '""'
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _field_type(name: str) -> str:
    return next(str(f.type) for f in fields(TrainConfig) if f.name == name)


def read_space(path: Path | None, base: TrainConfig) -> list[Parameter]:
    """The space in `path` (None: DEFAULT_SPACE), checked against the base config it varies."""
    text = DEFAULT_SPACE if path is None else read_small_text(path, "space file", MAX_SPACE_FILE_BYTES)
    where = "the default space" if path is None else f"space file {path}"
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where} is not valid TOML: {error}") from None
    if not tables:
        raise ConfigError(f"{where} names no setting to search")
    space = [_parameter(key, table, base) for key, table in tables.items()]
    names = [parameter.name for parameter in space]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{where} names {', '.join(repeated)} twice (a field's name and its flag's)")
    return space


def _parameter(key: str, table: Any, base: TrainConfig) -> Parameter:
    name = field_of_flag(key)
    known = {f.name for f in fields(TrainConfig)}
    if name is None or name not in known:
        raise ConfigError(f"--space {key}: not a training setting (marlnav train --help lists them)")
    if name in NOT_SEARCHABLE:
        raise ConfigError(f"--space {key}: not searched (the scenario, seeds and --frames are the tune command's)")
    if not isinstance(table, dict):
        raise ConfigError(f"--space {key}: give a table, {{ values = [...] }} or {{ low = A, high = B }}")
    unknown = sorted(set(table) - {"values", "low", "high", "log"})
    if unknown:
        raise ConfigError(f"--space {key}: unknown keys {', '.join(unknown)} (values, or low, high and log)")
    kind = _field_type(name)
    if "values" in table:
        if set(table) != {"values"}:
            raise ConfigError(f"--space {key}: give either values or low and high, not both")
        values = table["values"]
        if not isinstance(values, list) or not values or len(values) > MAX_CHOICES:
            raise ConfigError(f"--space {key}: values must be a list of 1 to {MAX_CHOICES} settings")
        parameter = Parameter(name, values=tuple(_typed(key, kind, value) for value in values))
        if len(set(parameter.values)) != len(parameter.values):
            raise ConfigError(f"--space {key}: a value is listed twice")
    else:
        if kind not in ("int", "float") or set(table) - {"log"} != {"low", "high"}:
            raise ConfigError(f"--space {key}: a range needs low and high (a {kind} setting takes values = [...])")
        low, high = _typed(key, kind, table["low"]), _typed(key, kind, table["high"])
        log = table.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"--space {key}: log must be true or false")
        if not low < high:
            raise ConfigError(f"--space {key}: low ({low}) must be below high ({high})")
        if log and low <= 0:
            raise ConfigError(f"--space {key}: a log range needs low > 0, got {low}")
        parameter = Parameter(name, low=low, high=high, log=log)
    ends = parameter.values if parameter.values is not None else (parameter.low, parameter.high)
    for value in ends:  # each value in the base config: a value no run accepts is a typo
        try:
            candidate = dataclasses.replace(base, **{name: value}).validate()
            if name in BUILDS_THE_SCENARIO:  # the scenario itself must take it: VMAS builds each once
                from marlnav_cli.experiment import fit_team_size

                fit_team_size(candidate, explicit=True)
        except ConfigError as error:
            raise ConfigError(f"--space {key}: {_text(value)} does not fit this search ({error})") from None
    return parameter


def _typed(key: str, kind: str, value: Any) -> Any:
    good = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }[kind]
    if not good:
        raise ConfigError(f"--space {key}: {value!r} is not a value of {flag_of(field_of_flag(key) or key)} ({kind})")
    return float(value) if kind == "float" else value


def settings_of(space: list[Parameter], sampled: dict[str, Any]) -> dict[str, Any]:
    """A trial's training settings from what the sampler drew."""
    return {parameter.name: parameter.setting(sampled[parameter.name]) for parameter in space}


def base_point(space: list[Parameter], base: TrainConfig) -> dict[str, Any] | None:
    """The base config's own values, where every one lies in the space: the search's first trial, so
    its best is never worse than where it started on the search's seeds."""
    point = {parameter.name: getattr(base, parameter.name) for parameter in space}
    return point if all(parameter.contains(point[parameter.name]) for parameter in space) else None
