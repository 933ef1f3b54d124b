"""A shared policy at other team sizes: evaluation at each size, policy beside random, and its plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from marlnav_cli.episodes import EvaluationReport
from marlnav_cli.errors import MarlnavError
from marlnav_cli.experiment import evaluate_checkpoint
from marlnav_cli.files import check_writable
from marlnav_cli.metrics import new_figure, save_figure

FIGURES = (
    ("success_rate", "success rate"),
    ("mean_length", "mean episode length"),
    ("mean_collisions", "collisions per episode"),
    ("mean_reward", "mean episode reward"),
)


def transfer(
    path: Path,
    team_sizes: list[int],
    out: Path,
    *,
    episodes: int,
    seed: int | None,
    device_name: str,
    on_size: Callable[[int], None] = lambda n: None,
) -> list[EvaluationReport]:
    """Evaluate at every team size, then plot the figures against team size into `out`."""
    check_png_path(out)
    reports = evaluate_team_sizes(
        path, team_sizes, episodes=episodes, seed=seed, device_name=device_name, on_size=on_size
    )
    plot_transfer(
        reports,
        out,
        f"{path.name}: trained with {reports[0].trained_team} agents, {episodes} episodes per team size",
    )
    return reports


def check_png_path(out: Path) -> None:
    if out.suffix.lower() != ".png":
        raise MarlnavError(f"output {out} must end in .png")
    check_writable(out)


def evaluate_team_sizes(
    path: Path,
    team_sizes: list[int],
    *,
    episodes: int,
    seed: int | None,
    device_name: str,
    on_size: Callable[[int], None] = lambda n: None,
) -> list[EvaluationReport]:
    """`marlnav evaluate --n-agents K` for each K: the same episodes' seed at every size."""
    reports = []
    for n_agents in team_sizes:
        on_size(n_agents)
        reports.append(
            evaluate_checkpoint(path, episodes=episodes, seed=seed, device_name=device_name, n_agents=n_agents)
        )
    return reports


def plot_transfer(reports: list[EvaluationReport], out: Path, title: str) -> None:
    """Each figure against team size, policy beside random; success with its 95% (Wilson) interval."""
    sizes = [report.n_agents for report in reports]
    shown = [(key, label) for key, label in FIGURES if getattr(reports[0].policy, key) is not None]
    figure, axes = new_figure(len(shown), (4.2 * len(shown), 3.8))
    axes = list(axes) if len(shown) > 1 else [axes]
    for axis, (key, label) in zip(axes, shown):
        for side, marker in (("policy", "o"), ("random", "x")):
            values = [getattr(getattr(report, side), key) for report in reports]
            axis.plot(sizes, values, marker=marker, label=side)
            if key == "success_rate":
                low, high = zip(*(getattr(report, side).success_rate_ci95 for report in reports))
                axis.fill_between(sizes, low, high, alpha=0.2, label=f"{side} 95% interval")
        for index, trained in enumerate(reports[0].trained_team_sizes or [reports[0].trained_n_agents]):
            label = f"trained ({reports[0].trained_team})" if index == 0 else None
            axis.axvline(trained, color="grey", linestyle=":", label=label)
        axis.set(xlabel="agents", ylabel=label, title=label, xticks=sizes)
    figure.suptitle(title)
    save_figure(figure, axes, out)
