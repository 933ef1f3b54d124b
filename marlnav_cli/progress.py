"""Training progress: iteration, frames, reward per group, last evaluated figure, speed, ETA; a bar on a
terminal, else one plain line per iteration (a bar written to a log file shows nothing until the end)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from marlnav_cli.metrics import group_names


class TrainingProgress:
    """Started only once the run has checked its settings (`on_start`, which also says how many
    iterations there are), so an error stays one line; use it as a context manager so the bar is stopped
    however the run ends."""

    def __init__(self, console: Console, *, disabled: bool) -> None:
        self.console = console
        self.total, self.done_before = 0, 0
        self.plain_lines = not disabled and not console.is_terminal
        self.started = time.monotonic()
        self.bar = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("frames {task.fields[frames]}"),
            TextColumn("reward {task.fields[reward]}"),
            TextColumn("{task.fields[evaluated]}"),
            TextColumn("{task.fields[fps]} frames/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=disabled or self.plain_lines,
        )

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.bar.stop()

    def on_start(self, files: Any, config: Any, done_before: int) -> None:
        self.console.print(f"run folder: {escape(str(files.folder))}")
        self.total, self.done_before = config.n_iters, done_before
        self.task = self.bar.add_task(
            "train", total=self.total, completed=done_before, frames=0, reward="-", fps="-", evaluated=""
        )
        self.started = time.monotonic()
        self.bar.start()

    def on_iteration(self, state: Any) -> None:
        row = state.history[-1]
        groups = group_names(row)
        reward = (
            " ".join(f"{name} {row[f'{name}/reward_mean']:.2f}" for name in groups)
            if groups
            else f"{row['reward_mean']:.3f}"
        )
        evaluated = {}
        if row.get("eval_s") is not None:
            # The scenario's own figure: success, else the goal rate, else the evaluated reward.
            if row["eval_success_rate"] is not None:
                label, figure = "success", row["eval_success_rate"]
            elif row.get("eval_goal_rate") is not None:
                label, figure = "goal", row["eval_goal_rate"]
            else:
                label, figure = "eval reward", row["eval_mean_reward"]
            evaluated = {"evaluated": f"{label} {figure:.2f}"}
        if self.plain_lines:
            self._print_line(row, reward, evaluated.get("evaluated"))
        self.bar.update(
            self.task,
            completed=row["iteration"],
            frames=row["frames"],
            reward=escape(reward),
            fps=f"{row['frames_per_s']:.0f}",
            **evaluated,
        )

    def on_imitation(self, row: dict[str, float]) -> None:
        """--imitate-heuristic's batches come before the first iteration: one line each."""
        acting = "the policy's" if row["policy_acting"] else "its"
        self.console.print(
            f"imitating the heuristic: frames {row['frames']:.0f}  {acting} reward {row['reward_mean']:.3f}  "
            f"action error {row['action_mse']:.4f}  critic loss {row['loss_critic']:.4f}"
        )

    def _print_line(self, row: dict[str, Any], reward: str, evaluated: str | None) -> None:
        elapsed = time.monotonic() - self.started
        done_here = row["iteration"] - self.done_before
        remaining = elapsed / done_here * (self.total - row["iteration"]) if done_here > 0 else 0.0
        parts = [
            f"iteration {row['iteration']}/{self.total}",
            f"frames {row['frames']}",
            f"reward {reward}",
            *([evaluated] if evaluated else []),
            f"{row['frames_per_s']:.0f} frames/s",
            f"elapsed {elapsed:.0f}s",
            f"ETA {remaining:.0f}s",
        ]
        self.console.print(escape("  ".join(parts)))
