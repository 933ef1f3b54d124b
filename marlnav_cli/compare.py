"""Several runs side by side: overlaid learning curves in one PNG and a table of final figures."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from marlnav_cli.errors import MarlnavError
from marlnav_cli.metrics import new_figure, save_figure


def read_run(folder: Path) -> dict[str, Any]:
    metrics, config = folder / "metrics.jsonl", folder / "config.toml"
    if not folder.is_dir():
        raise MarlnavError(f"run folder {folder} does not exist")
    if not metrics.is_file() or not config.is_file():
        raise MarlnavError(f"{folder} is not a marlnav run folder (no metrics.jsonl or config.toml)")
    try:
        history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        settings = tomllib.loads(config.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise MarlnavError(f"{folder} holds unreadable metrics or config: {error}") from None
    if not history:
        raise MarlnavError(f"{folder} has no completed iteration yet")
    return {"folder": folder, "history": history, "config": settings}


def summarise_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        history, config = run["history"], run["config"]
        rows.append({
            "run": run["folder"].name,
            "algorithm": "mappo" if config.get("mappo", True) else "ippo",
            "scenario": config.get("scenario"),
            "n_agents": config.get("n_agents"),
            "seed": config.get("seed"),
            "frames": history[-1]["frames"],
            "final_reward": history[-1]["reward_mean"],
            "best_reward": max(row["reward_mean"] for row in history),
            "wall_s": history[-1]["wall_s"],
        })
    return rows


def plot_runs(runs: list[dict[str, Any]], path: Path) -> None:
    figure, axis = new_figure()
    for run in runs:
        frames = [row["frames"] for row in run["history"]]
        axis.plot(frames, [row["reward_mean"] for row in run["history"]], marker="o", markersize=3,
                  label=run["folder"].name)
    axis.set(xlabel="frames", ylabel="mean episode reward (training)", title="Learning curves")
    save_figure(figure, [axis], path)


def compare_runs(folders: list[Path], out: Path) -> list[dict[str, Any]]:
    if out.suffix.lower() != ".png":
        raise MarlnavError(f"output {out} must end in .png")
    runs = [read_run(folder) for folder in folders]
    plot_runs(runs, out)
    return summarise_runs(runs)
