"""A curriculum: scenario arguments that change over a run, in stages that end at the task itself.

`--curriculum package_mass=5,20` splits the run's iterations into three equal stages: transport with a
package of mass 5, then 20, then the task as the config states it (its `--scenario-arg`s, else VMAS's
defaults). The last stage is always the task, so evaluation, rendering, export and transfer build the
env from the config as for any run; a stage is a function of the iteration alone, so a resumed run
continues in the stage it left. Several arguments change together, one stage list each, separated by
';' (`package_mass=5,20; package_width=0.3,0.2`). Each stage is one VMAS env built from these arguments:
the scenario's own code applies them, as it applies `--scenario-arg`.
"""

from __future__ import annotations

from typing import Any

from marlnav_cli.errors import ConfigError

MAX_STAGES = 20
FLAG = "--curriculum"


def parse_curriculum(text: str) -> dict[str, list[Any]]:
    """'key=v1,v2; other=w1,w2' into {key: [v1, v2], other: [w1, w2]}: every list as long as the others."""
    from marlnav_cli.config import typed_value

    schedule: dict[str, list[Any]] = {}
    for part in filter(None, (part.strip() for part in text.split(";"))):
        key, separator, values = part.partition("=")
        key = key.strip()
        stages = [value.strip() for value in values.split(",")]
        if not separator or not key or not all(stages):
            raise ConfigError(f"{FLAG} takes key=value,value,... (';' between arguments), got {part!r}")
        if key in schedule:
            raise ConfigError(f"{FLAG} names {key!r} twice")
        schedule[key] = [typed_value(value) for value in stages]
    if not schedule:
        raise ConfigError(f"{FLAG} takes key=value,value,... (';' between arguments), got {text!r}")
    lengths = {len(values) for values in schedule.values()}
    if len(lengths) > 1:
        raise ConfigError(f"{FLAG}: every argument needs as many stages as the others, got {text!r}")
    if lengths.pop() >= MAX_STAGES:
        raise ConfigError(f"{FLAG} takes fewer than {MAX_STAGES} stages before the task, got {text!r}")
    return schedule


def stage_arguments(curriculum: str, scenario_args: dict[str, Any]) -> list[dict[str, Any]]:
    """The scenario arguments of every stage in order, the last being `scenario_args` (the task)."""
    if not curriculum:
        return [scenario_args]
    schedule = parse_curriculum(curriculum)
    count = len(next(iter(schedule.values())))
    before = [{**scenario_args, **{key: values[stage] for key, values in schedule.items()}} for stage in range(count)]
    return [*before, scenario_args]


def stage_of(iteration: int, n_iters: int, n_stages: int) -> int:
    """The stage an iteration (0-based) trains in: the run split into `n_stages` stages of equal length."""
    return min(iteration * n_stages // max(n_iters, 1), n_stages - 1)
