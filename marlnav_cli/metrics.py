"""Per-iteration metrics on disk (CSV and JSONL) and the learning-curve PNG."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from marlnav_cli.errors import ConfigError, install_hint
from marlnav_cli.files import atomic_output, write_text_atomic

# Also logging through TorchRL's loggers, and the package each needs (CSV and JSONL are always written).
LOGGER_PACKAGES = {"none": None, "csv": None, "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
LOGGERS = tuple(LOGGER_PACKAGES)


def write_metrics(history: list[dict[str, Any]], csv_path: Path, jsonl_path: Path) -> None:
    if not history:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(key for row in history for key in row)))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(csv_path, buffer.getvalue())
    write_text_atomic(jsonl_path, "".join(json.dumps(row) + "\n" for row in history))


def new_figure(columns: int = 1, size: tuple[float, float] = (8, 5)) -> tuple[Any, Any]:
    """A matplotlib figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, columns, figsize=size)


def save_figure(figure: Any, axes: list[Any], path: Path) -> None:
    """Grid and legend on every axis, then the PNG written atomically."""
    import matplotlib.pyplot as plt

    for axis in axes:
        axis.grid(alpha=0.3)
        # An axis with nothing drawn (every trial failed) has no legend; one that has its own (an axis and
        # its twin in one legend) keeps it.
        if axis.get_legend() is None and axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)


def group_names(row: dict[str, Any]) -> list[str]:
    """The agent groups a metrics row has figures for: none when the run had a single group."""
    return [key.removesuffix("/reward_mean") for key in row if key.endswith("/reward_mean")]


def plot_curve(history: list[dict[str, Any]], path: Path, title: str) -> None:
    """Mean (with min-max band) training episode reward, per group where there are several; evaluated
    success (or reward) where the run evaluated during training; the loss terms; all against frames."""
    frames = [row["frames"] for row in history]
    evaluated = [row for row in history if row.get("eval_s") is not None]
    figure, axes = new_figure(3 if evaluated else 2, (16 if evaluated else 11, 4))
    reward_axis, loss_axis = axes[0], axes[-1]
    for prefix in [f"{name}/" for name in group_names(history[0])] or [""]:
        label = prefix.rstrip("/") or "mean"
        reward_axis.plot(frames, [row[f"{prefix}reward_mean"] for row in history], marker="o", label=label)
        reward_axis.fill_between(
            frames,
            [row[f"{prefix}reward_min"] for row in history],
            [row[f"{prefix}reward_max"] for row in history],
            alpha=0.2,
            label=f"{label} min-max",
        )
    reward_axis.set(xlabel="frames", ylabel="episode reward (training)", title="Reward")
    if evaluated:
        _plot_evaluation(axes[1], evaluated)
    for name in ("loss_objective", "loss_critic", "loss_entropy"):
        loss_axis.plot(frames, [row[name] for row in history], label=name.removeprefix("loss_"))
    loss_axis.set(xlabel="frames", ylabel="mean loss per update", title="Losses")
    figure.suptitle(title)
    save_figure(figure, list(axes), path)


def _plot_evaluation(axis: Any, evaluated: list[dict[str, Any]]) -> None:
    frames = [row["frames"] for row in evaluated]
    if evaluated[0]["eval_success_rate"] is not None:
        axis.plot(frames, [row["eval_success_rate"] for row in evaluated], marker="o", label="success rate")
        axis.set(ylim=(-0.02, 1.02), ylabel="success rate (held-out episodes)")
        length_axis = axis.twinx()
        length_axis.plot(
            frames,
            [row["eval_mean_length"] for row in evaluated],
            color="grey",
            linestyle="--",
            marker=".",
            label="mean episode length",
        )
        length_axis.set(ylabel="mean episode length")
        lines, labels = axis.get_legend_handles_labels()
        length_lines, length_labels = length_axis.get_legend_handles_labels()
        axis.legend(lines + length_lines, labels + length_labels, fontsize=8)
    else:
        axis.plot(frames, [row["eval_mean_reward"] for row in evaluated], marker="o", label="mean reward")
        axis.set(ylabel="episode reward (held-out, deterministic)")
    axis.set(xlabel="frames", title="Evaluation (deterministic policy)")


def check_logger(kind: str) -> None:
    """Refuse an unknown or uninstalled logger before anything is written."""
    if kind not in LOGGER_PACKAGES:
        raise ConfigError(f"unknown --logger {kind!r}; choose from {', '.join(LOGGERS)}")
    package = LOGGER_PACKAGES[kind]
    if package is not None:
        try:
            __import__(package)
        except ImportError:
            raise ConfigError(f"--logger {kind} needs the {package} package: {install_hint(kind)}") from None


def make_logger(kind: str, folder: Path) -> Any:
    """A TorchRL logger writing into the run folder: wandb offline (sync it later with `wandb sync`) unless
    WANDB_MODE says otherwise, mlflow to a file store in the run folder unless MLFLOW_TRACKING_URI is set."""
    check_logger(kind)
    if kind == "none":
        return None
    from torchrl.record import loggers

    if kind == "csv":
        return loggers.CSVLogger(exp_name="csv", log_dir=str(folder))
    if kind == "tensorboard":
        return loggers.TensorboardLogger(exp_name="tensorboard", log_dir=str(folder))
    if kind == "wandb":
        offline = os.environ.get("WANDB_MODE", "offline") == "offline"
        return loggers.WandbLogger(exp_name=folder.name, save_dir=str(folder), offline=offline, project="marlnav")
    uri = os.environ.get("MLFLOW_TRACKING_URI") or (folder / "mlruns").resolve().as_uri()
    return loggers.MLFlowLogger(exp_name=folder.name, tracking_uri=uri)


def log_iteration(logger: Any, row: dict[str, Any]) -> None:
    for name, value in row.items():
        if name not in ("iteration", "frames") and value is not None:  # None: not evaluated this iteration
            logger.log_scalar(name, value, step=row["frames"])
