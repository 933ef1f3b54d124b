"""Several runs side by side: overlaid learning curves in one PNG and a table of final figures."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marlnav_cli.config import MAX_CONFIG_FILE_BYTES, TrainConfig, read_small_text
from marlnav_cli.errors import ConfigError, MarlnavError
from marlnav_cli.files import check_writable
from marlnav_cli.metrics import group_names, new_figure, save_figure

MAX_METRICS_BYTES = 256 << 20
_NUMBERS = ("frames", "reward_mean", "wall_s")  # what the table and the curves read from each row


@dataclass(frozen=True)
class Run:
    folder: Path
    history: list[dict[str, Any]]  # metrics.jsonl, one row per iteration
    config: TrainConfig


@dataclass(frozen=True)
class RunSummary:
    """One row of the comparison table."""

    run: str
    algorithm: str
    scenario: str
    n_agents: int
    seed: int
    frames: int
    final_reward: float | None  # None where the run has several groups: a mean over teams means nothing
    best_reward: float | None
    final_reward_by_group: dict[str, float] | None  # each group's, where there are several
    evaluated_success: float | None  # the last evaluation during training; None without one or success
    wall_s: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_run(folder: Path) -> Run:
    """A run folder's metrics and config, every value the comparison reads checked first."""
    metrics, config = folder / "metrics.jsonl", folder / "config.toml"
    if not folder.is_dir():
        raise MarlnavError(f"run folder {folder} does not exist")
    if not metrics.is_file() or not config.is_file():
        raise MarlnavError(f"{folder} is not a marlnav run folder (no metrics.jsonl or config.toml)")
    try:
        history = [
            json.loads(line)
            for line in read_small_text(metrics, "metrics file", MAX_METRICS_BYTES).splitlines()
            if line.strip()
        ]
        settings = TrainConfig.from_dict(tomllib.loads(read_small_text(config, "config file", MAX_CONFIG_FILE_BYTES)))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, ConfigError) as error:
        raise MarlnavError(f"{folder} holds unreadable metrics or config: {error}") from None
    if not history:
        raise MarlnavError(f"{folder} has no completed iteration yet")
    for number, row in enumerate(history, start=1):
        if not isinstance(row, dict) or not all(_is_finite_number(row.get(key)) for key in _NUMBERS):
            raise MarlnavError(f"{metrics} line {number} is not an iteration record with finite {', '.join(_NUMBERS)}")
    return Run(folder=folder, history=history, config=settings)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summarise_runs(runs: list[Run]) -> list[RunSummary]:
    return [_summary(run) for run in runs]


def _summary(run: Run) -> RunSummary:
    last = run.history[-1]
    groups = group_names(last)
    return RunSummary(
        run=run.folder.name,
        algorithm=run.config.algorithm,
        scenario=run.config.scenario,
        n_agents=run.config.n_agents,
        seed=run.config.seed,
        frames=last["frames"],
        final_reward=None if groups else last["reward_mean"],
        best_reward=None if groups else max(row["reward_mean"] for row in run.history),
        final_reward_by_group={name: last[f"{name}/reward_mean"] for name in groups} or None,
        evaluated_success=_last_evaluated_success(run.history),
        wall_s=last["wall_s"],
    )


def _last_evaluated_success(history: list[dict[str, Any]]) -> float | None:
    evaluated = [row["eval_success_rate"] for row in history if _is_finite_number(row.get("eval_success_rate"))]
    return evaluated[-1] if evaluated else None


def plot_runs(runs: list[Run], path: Path) -> None:
    figure, axis = new_figure()
    for run in runs:
        frames = [row["frames"] for row in run.history]
        axis.plot(frames, [row["reward_mean"] for row in run.history], marker="o", markersize=3, label=run.folder.name)
    axis.set(xlabel="frames", ylabel="mean episode reward (training)", title="Learning curves")
    save_figure(figure, [axis], path)


def compare_runs(folders: list[Path], out: Path) -> list[RunSummary]:
    if out.suffix.lower() != ".png":
        raise MarlnavError(f"output {out} must end in .png")
    check_writable(out)
    runs = [read_run(folder) for folder in folders]
    plot_runs(runs, out)
    return summarise_runs(runs)
