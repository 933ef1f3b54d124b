"""The zoo: per-scenario training settings that learn, each with the command and the record behind it.

Like rl-baselines3-zoo's hyperparameter files: one data file (zoo.toml, beside this module), an entry
per scenario, the `fast` preset for scenarios without one. An entry holds only what differs from `fast`,
so a reader sees at a glance what each scenario needed. `train --scenario S` starts from S's entry
unless --preset is given; the resolved settings go into config.toml, so a run is reproduced without
the zoo.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

from marlnav_cli.config import DEFAULT_PRESET, TrainConfig, preset_config
from marlnav_cli.errors import ConfigError

ZOO_FILE = "zoo.toml"
# The keys an entry may have besides its settings: what justifies it.
ENTRY_KEYS = {"frames", "settings", "why", "command", "record"}
# What an entry's settings may set: any config field but those the entry or the run gives.
ENTRY_SETTINGS = {f.name for f in fields(TrainConfig)} - {"scenario", "total_frames", "seed"}


@dataclass(frozen=True)
class ZooEntry:
    scenario: str
    settings: dict[str, Any]  # what differs from the `fast` preset, by config field name
    frames: int  # the frame budget the entry was measured at
    why: str  # one line: what the scenario needed
    command: str  # the command that measured it
    record: str  # the records of that measurement, a path in the repository

    def config(self) -> TrainConfig:
        """The `fast` preset with this entry's settings and frame budget on top, checked; a scenario with a
        fixed team gets its size where a run is resolved (experiment.resolve_train_config), as from any preset."""
        return dataclasses.replace(
            preset_config(DEFAULT_PRESET), scenario=self.scenario, total_frames=self.frames, **self.settings
        ).validate()


def parse_zoo(text: str) -> dict[str, ZooEntry]:
    """Entries from zoo TOML; a bad key, setting or type is one ConfigError naming the entry.

    Scenario names are not checked here (that imports VMAS): tests/test_zoo.py checks every entry's
    scenario and builds every entry's config, so a bad entry fails the suite, not a user's run.
    """
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"zoo file is not valid TOML: {error}") from None
    entries = {}
    for scenario, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"zoo entry {scenario!r} must be a table")
        unknown = sorted(set(table) - ENTRY_KEYS)
        if unknown:
            raise ConfigError(f"zoo entry {scenario!r} has unknown keys: {', '.join(unknown)}")
        settings = table.get("settings", {})
        if not isinstance(settings, dict):
            raise ConfigError(f"zoo entry {scenario!r}: settings must be a table")
        wrong = sorted(set(settings) - ENTRY_SETTINGS)
        if wrong:
            raise ConfigError(f"zoo entry {scenario!r} names unknown or misplaced settings: {', '.join(wrong)}")
        try:
            checked = TrainConfig.from_dict(settings)  # types
            entries[scenario] = ZooEntry(
                scenario=scenario,
                settings={name: getattr(checked, name) for name in settings},
                frames=_required(table, "frames", int),
                why=_required(table, "why", str),
                command=_required(table, "command", str),
                record=_required(table, "record", str),
            )
        except ConfigError as error:
            raise ConfigError(f"zoo entry {scenario!r}: {error}") from None
    return entries


def _required(table: dict[str, Any], key: str, kind: type) -> Any:
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{key} must be a {kind.__name__}, got {value!r}")
    return value


@functools.cache
def zoo() -> dict[str, ZooEntry]:
    """The zoo shipped inside the package."""
    return parse_zoo(resources.files("marlnav_cli").joinpath(ZOO_FILE).read_text(encoding="utf-8"))


def starting_point(preset: str | None, scenario: str, *, config_file: bool = False) -> str:
    """What a run starts from, in a word for its folder name: the preset's name, `zoo`, or `config`."""
    if config_file:
        return "config"
    if preset is not None:
        return preset
    return "zoo" if scenario in zoo() else DEFAULT_PRESET


def starting_config(preset: str | None, scenario: str) -> TrainConfig:
    """What a run starts from before its own options: the named preset, else the scenario's zoo entry,
    else the default preset."""
    if preset is not None:
        return preset_config(preset)
    entry = zoo().get(scenario)
    return entry.config() if entry is not None else preset_config(DEFAULT_PRESET)
