"""One policy across team sizes against the 3-agent policy: success, collisions and length at each size.

Usage: python -m benchmarks.team_sizes [--scenario navigation] [--train-sizes 1-8] [--frames 192000]
           [--max-steps 200] [--seeds 100-104] [--eval-sizes 1-8,12,16] [--episodes 200] [--parallel 2]
           [--out benchmarks/results/team-sizes.json] [--plot benchmarks/results/team-sizes.png]

For each seed (seeds the settings were not chosen on), in worker processes with one torch thread each:
- the scenario's own settings (its zoo entry) at one team size (`--n-agents 3`), as a user trains today;
- the same settings with `--n-agents TRAIN_SIZES` (a size per iteration in turn, the DeepSets critic)
  and `--frames`;
- with `--max-steps`, both that episode limit for the policy across sizes and a 3-agent policy trained
  with it, so the limit is not mistaken for what team-size training did;
each final policy evaluated as `marlnav transfer` does (the same held-out episodes at every size). Prints
a table per policy (mean and worst seed per size, training time) and writes every figure to --out and
the success curves to --plot. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def train_and_transfer(settings: dict[str, Any], eval_sizes: list[int], episodes: int) -> dict[str, Any]:
    """One seed of one setting in a worker: train, then evaluate the final policy at every size."""
    import time

    import torch

    from marlnav_cli.experiment import resolve_train_config, run_training
    from marlnav_cli.transfer import evaluate_team_sizes
    from marlnav_cli.validation import EvaluationSchedule

    torch.set_num_threads(1)
    config = resolve_train_config(settings)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        outcome = run_training(
            config, device_name="cpu", run_folder=Path(folder) / "run", evaluation=EvaluationSchedule(0, 1)
        )
        train_s = time.perf_counter() - started
        reports = evaluate_team_sizes(
            outcome.files.checkpoint, eval_sizes, episodes=episodes, seed=None, device_name="cpu"
        )
    return {
        "seed": config.seed,
        "train_s": train_s,
        "team": reports[0].trained_team,
        "sizes": {
            report.n_agents: {
                "success_rate": report.policy.success_rate,
                "mean_collisions": report.policy.mean_collisions,
                "mean_length": report.policy.mean_length,
                "random_success_rate": report.random.success_rate,
            }
            for report in reports
        },
    }


def summarise(runs: list[dict[str, Any]], eval_sizes: list[int]) -> dict[str, Any]:
    import numpy as np

    from marlnav_cli.sweep import bootstrap_ci

    per_size = {}
    for size in eval_sizes:
        success = [run["sizes"][size]["success_rate"] for run in runs]
        collisions = [run["sizes"][size]["mean_collisions"] for run in runs]
        low, high = bootstrap_ci(success)
        per_size[size] = {
            "success_mean": float(np.mean(success)),
            "success_ci95": [low, high],
            "success_worst": min(success),
            "collisions_mean": float(np.mean(collisions)),
            "length_mean": float(np.mean([run["sizes"][size]["mean_length"] for run in runs])),
        }
    return {
        "team": runs[0]["team"],
        "train_s_mean": float(np.mean([run["train_s"] for run in runs])),
        "sizes": per_size,
    }


def print_table(results: dict[str, dict[str, Any]], eval_sizes: list[int]) -> None:
    names = list(results)
    print("| agents | " + " | ".join(f"{name}: success mean [95%]; worst; collisions" for name in names) + " |")
    print("| ---: | " + " | ".join("---:" for _ in names) + " |")
    for size in eval_sizes:
        cells = []
        for name in names:
            entry = results[name]["summary"]["sizes"][size]
            low, high = entry["success_ci95"]
            cells.append(
                f"{entry['success_mean']:.3f} [{low:.3f}, {high:.3f}]; {entry['success_worst']:.3f}; "
                f"{entry['collisions_mean']:.2f}"
            )
        print(f"| {size} | " + " | ".join(cells) + " |")
    for name in names:
        summary = results[name]["summary"]
        print(f"{name}: trained with {summary['team']} agents, {summary['train_s_mean']:.0f} s per seed")


def plot(results: dict[str, dict[str, Any]], eval_sizes: list[int], path: Path) -> None:
    from marlnav_cli.metrics import new_figure, save_figure

    figure, axis = new_figure()
    for name, result in results.items():
        sizes = result["summary"]["sizes"]
        means = [sizes[size]["success_mean"] for size in eval_sizes]
        lows = [sizes[size]["success_ci95"][0] for size in eval_sizes]
        highs = [sizes[size]["success_ci95"][1] for size in eval_sizes]
        axis.plot(eval_sizes, means, marker="o", label=f"{name} ({len(result['runs'])} seeds)")
        axis.fill_between(eval_sizes, lows, highs, alpha=0.2)
    axis.set(
        xlabel="agents",
        ylabel="success (200 held-out episodes)",
        xticks=eval_sizes,
        title="One policy across team sizes vs the 3-agent policy (mean over seeds, 95% interval)",
    )
    save_figure(figure, [axis], path)


def main() -> None:
    from marlnav_cli.config import parse_int_ranges, team_settings
    from marlnav_cli.sweep import parse_seeds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="navigation")
    parser.add_argument("--train-sizes", default="1-8")
    parser.add_argument("--frames", type=int, default=192_000)
    parser.add_argument("--seeds", default="100-104")
    parser.add_argument(
        "--max-steps", type=int, help="episode limit for the policy across sizes, and a 3-agent policy beside it"
    )
    parser.add_argument("--eval-sizes", default="1-8,12,16")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "team-sizes.json")
    parser.add_argument("--plot", type=Path, default=REPO / "benchmarks" / "results" / "team-sizes.png")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    eval_sizes = parse_int_ranges(args.eval_sizes, flag="--eval-sizes", most=100, smallest=1)
    across = team_settings(args.train_sizes)
    steps = {"max_steps": args.max_steps} if args.max_steps else {}
    label = f", {args.max_steps} steps" if args.max_steps else ""
    settings = {
        "3 agents": {"scenario": args.scenario, "n_agents": 3},
        **({f"3 agents{label}": {"scenario": args.scenario, "n_agents": 3, **steps}} if steps else {}),
        f"{across.get('team_sizes', args.train_sizes)} agents{label}": {
            "scenario": args.scenario,
            **across,
            **steps,
            "total_frames": args.frames,
        },
    }
    results: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=args.parallel, mp_context=get_context("spawn")) as pool:
        futures = {
            name: [
                pool.submit(train_and_transfer, {**given, "seed": seed}, eval_sizes, args.episodes) for seed in seeds
            ]
            for name, given in settings.items()
        }
        for name, pending in futures.items():
            runs = [future.result() for future in pending]
            results[name] = {"settings": settings[name], "runs": runs, "summary": summarise(runs, eval_sizes)}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
    print_table(results, eval_sizes)
    plot(results, eval_sizes, args.plot)
    print(f"figures: {args.out}, plot: {args.plot}")


if __name__ == "__main__":
    main()
