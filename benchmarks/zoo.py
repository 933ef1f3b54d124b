"""The zoo's benchmark: each entry over several seeds, beside random actions, VMAS's heuristic and BenchMARL.

Usage: python -m benchmarks.zoo [--scenarios navigation,balance] [--seeds 100-102] [--parallel 2]
           [--episodes 200] [--checkpoint final|best] [--out benchmarks/results/zoo.json]

For every zoo scenario (or those named), on seeds the entries were not chosen on:
- the entry, trained from scratch per seed, its final policy evaluated with `marlnav evaluate`'s
  evaluation (200 episodes on seed + 1,000,000); with `--checkpoint best`, the run's best.safetensors
  instead, chosen as `marlnav train` chooses it (evaluated every 8 iterations on validation episodes,
  seed + 2,000,000, apart from the final evaluation's), for BenchMARL's settings too;
- `--preset benchmarl` at the entry's scenario, team and episode length, given the same wall time: as
  many of its 60,000-frame iterations as fit in the entry's mean training time on this machine, measured
  from one of its iterations run here first;
- random actions and the scenario's heuristic (VMAS's, else marlnav's where it has one) on the same episodes.
Trials run `--parallel` at a time, one torch thread each. Prints the table docs/zoo.md holds and writes
every figure to --out. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIGURES = ("mean_reward", "success_rate", "goal_rate", "failure_rate", "mean_length", "mean_collisions")


CHECKPOINTS = ("final", "best")


def chosen_checkpoint(folder: Path, checkpoint: str) -> Path:
    """The run's file that --checkpoint names: its final policy, or its best validated one."""
    from marlnav_cli.experiment import RunFiles

    files = RunFiles(folder)
    return files.best_checkpoint if checkpoint == "best" else files.checkpoint


def train_and_evaluate(
    config_json: str, episodes: int, keep: str | None = None, checkpoint: str = "final"
) -> dict[str, Any]:
    """One seed of one setting, in a worker process: train to the end, evaluate the final policy (or the
    best validated one, with checkpoint="best"); its run folder is kept under `keep` when given (to ship a
    policy from), else removed."""
    import torch

    from marlnav_cli.config import TrainConfig
    from marlnav_cli.experiment import DEFAULT_EVALUATION, evaluate_checkpoint, run_training
    from marlnav_cli.validation import EvaluationSchedule

    torch.set_num_threads(1)
    config = TrainConfig.from_json(config_json)
    # Validation restores the RNG it used, so the run trains the same with it or without it.
    validation = DEFAULT_EVALUATION if checkpoint == "best" else EvaluationSchedule(0, 1)
    with tempfile.TemporaryDirectory() as folder:
        run = Path(keep) / f"{config.scenario}-seed{config.seed}" if keep else Path(folder) / "run"
        outcome = run_training(config, device_name="cpu", run_folder=run, evaluation=validation, overwrite=True)
        report = evaluate_checkpoint(
            chosen_checkpoint(outcome.files.folder, checkpoint), episodes=episodes, seed=None, device_name="cpu"
        )
    policy = report.policy
    return {
        "seed": config.seed,
        "frames": outcome.state.frames,
        "train_s": outcome.state.history[-1]["wall_s"],
        **{name: getattr(policy, name) for name in FIGURES},
    }


def evaluate_run(config_json: str, episodes: int, runs: str, checkpoint: str = "final") -> dict[str, Any]:
    """One seed of the entry trained already (a `marlnav tune` search's final/ runs re-train its best on
    these very seeds): the run whose checkpoint holds exactly this config, evaluated as a fresh one is
    (its best.safetensors with checkpoint="best")."""
    import torch

    from marlnav_cli.checkpoint import read_checkpoint
    from marlnav_cli.config import TrainConfig
    from marlnav_cli.experiment import evaluate_checkpoint

    torch.set_num_threads(1)
    config = TrainConfig.from_json(config_json)
    matching = []
    for path in sorted(Path(runs).glob("*/policy.safetensors")):
        run_checkpoint = read_checkpoint(path)
        if run_checkpoint.config == config:
            matching.append((path, run_checkpoint))
    if len(matching) != 1:
        raise SystemExit(f"{runs}: {len(matching)} runs hold the entry's settings at seed {config.seed}, not 1")
    path, final = matching[0]
    report = evaluate_checkpoint(
        chosen_checkpoint(path.parent, checkpoint), episodes=episodes, seed=None, device_name="cpu"
    )
    return {
        "seed": config.seed,
        "frames": final.history[-1]["frames"],
        "train_s": final.history[-1]["wall_s"],
        "run": str(path.parent),
        **{name: getattr(report.policy, name) for name in FIGURES},
    }


def evaluate_fixed(config_json: str, episodes: int, kind: str) -> dict[str, Any] | str:
    """Random actions or the scenario's heuristic on the episodes a policy of this config is evaluated on."""
    import torch

    from marlnav_cli.config import TrainConfig
    from marlnav_cli.episodes import EVAL_SEED_OFFSET, evaluate_actor
    from marlnav_cli.heuristics import HeuristicUnavailable, heuristic_actor

    torch.set_num_threads(1)
    config = TrainConfig.from_json(config_json)
    actor = heuristic_actor(config) if kind == "heuristic" else None
    if isinstance(actor, HeuristicUnavailable):
        return actor.reason
    figures = evaluate_actor(
        config, actor, episodes=episodes, seed=config.seed + EVAL_SEED_OFFSET, device=torch.device("cpu")
    )
    return {"seed": config.seed, **{name: getattr(figures, name) for name in FIGURES}}


def across_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, 95% bootstrap interval and worst seed of each figure the runs have."""
    from marlnav_cli.sweep import bootstrap_ci

    summary: dict[str, Any] = {"seeds": [run["seed"] for run in runs]}
    for name in (*FIGURES, "train_s"):
        values = [run[name] for run in runs if run.get(name) is not None]
        if values:
            low, high = bootstrap_ci(values)
            summary[name] = {"mean": sum(values) / len(values), "ci95": [low, high], "min": min(values)}
    return summary


# --smoke: every run one small iteration, to check the benchmark end to end in seconds (tests do).
SMOKE = {"frames_per_batch": 200, "total_frames": 200, "max_steps": 20, "num_epochs": 1, "minibatch_size": 100}


def benchmark_scenario(
    scenario: str,
    seeds: list[int],
    pool: ProcessPoolExecutor,
    episodes: int,
    *,
    smoke: bool = False,
    keep: Path | None = None,
    entry_runs_folder: Path | None = None,
    checkpoint: str = "final",
) -> dict[str, Any]:
    from marlnav_cli.config import preset_config
    from marlnav_cli.experiment import resolve_train_config
    from marlnav_cli.zoo import zoo

    entry = zoo()[scenario]
    # As `marlnav train --scenario S` resolves it (a fixed team's size included).
    entry_config = dataclasses.replace(resolve_train_config({"scenario": scenario}), **(SMOKE if smoke else {}))
    configs = [dataclasses.replace(entry_config, seed=seed) for seed in seeds]
    # The entry's runs: trained here, or taken from a folder that holds them already (--entry-runs).
    if entry_runs_folder is not None:
        run_entry, folder = evaluate_run, str(entry_runs_folder)
    else:
        run_entry, folder = train_and_evaluate, None if keep is None else str(keep)
    entry_runs = list(
        pool.map(
            run_entry,
            [c.to_json() for c in configs],
            [episodes] * len(configs),
            [folder] * len(configs),
            [checkpoint] * len(configs),
        )
    )
    fixed = {
        kind: list(
            pool.map(evaluate_fixed, [c.to_json() for c in configs], [episodes] * len(configs), [kind] * len(configs))
        )
        for kind in ("random", "heuristic")
    }

    # BenchMARL's settings on the entry's task, for the entry's wall time.
    task = {name: getattr(entry_config, name) for name in ("scenario", "n_agents", "max_steps", "scenario_args")}
    benchmarl = dataclasses.replace(preset_config("benchmarl"), **{**task, **(SMOKE if smoke else {})})
    if not smoke:  # its 600 envs, at the entry's episode length
        benchmarl = dataclasses.replace(benchmarl, frames_per_batch=600 * benchmarl.max_steps)
    probe = pool.submit(
        train_and_evaluate, dataclasses.replace(benchmarl, total_frames=benchmarl.frames_per_batch).to_json(), 10
    ).result()
    entry_seconds = sum(run["train_s"] for run in entry_runs) / len(entry_runs)
    iterations = max(1, math.floor(entry_seconds / probe["train_s"]))
    benchmarl = dataclasses.replace(benchmarl, total_frames=iterations * benchmarl.frames_per_batch)
    benchmarl_configs = [dataclasses.replace(benchmarl, seed=seed) for seed in seeds]
    benchmarl_runs = list(
        pool.map(
            train_and_evaluate,
            [c.to_json() for c in benchmarl_configs],
            [episodes] * len(benchmarl_configs),
            [None] * len(benchmarl_configs),
            [checkpoint] * len(benchmarl_configs),
        )
    )
    return {
        "scenario": scenario,
        "checkpoint": checkpoint,
        "entry": {
            "settings": entry.settings,
            "frames": entry_config.total_frames,
            "runs": entry_runs,
            **across_seeds(entry_runs),
        },
        "benchmarl": {
            "frames": benchmarl.total_frames,
            "iteration_s": probe["train_s"],
            "runs": benchmarl_runs,
            **across_seeds(benchmarl_runs),
        },
        **{
            kind: (runs[0] if isinstance(runs[0], str) else {"runs": runs, **across_seeds(runs)})
            for kind, runs in fixed.items()
        },
    }


def print_table(results: list[dict[str, Any]]) -> None:
    def cell(side: Any, name: str, digits: int = 3) -> str:
        if isinstance(side, str) or name not in side:
            return "n/a"
        figure = side[name]
        return f"{figure['mean']:.{digits}f} [{figure['ci95'][0]:.{digits}f}, {figure['ci95'][1]:.{digits}f}]"

    print("| scenario | figure | entry (mean [95%]; worst seed) | benchmarl, same time | heuristic | random |", end="")
    print(" entry time |")
    print("| --- | --- | --- | --- | --- | --- | ---: |")
    for result in results:
        entry = result["entry"]
        rows = [("mean episode reward", "mean_reward")]
        rows += [(label, name) for label, name in (("success", "success_rate"), ("goal", "goal_rate")) if name in entry]
        rows += [("failure", "failure_rate")] if "failure_rate" in entry else []
        time = f"{entry['train_s']['mean']:.0f} s, {entry['frames']:,} frames"
        for number, (label, name) in enumerate(rows):
            # The worst seed: the lowest figure, but the highest failure rate.
            per_seed = [run[name] for run in entry["runs"] if run.get(name) is not None]
            worst = f"; {(max if name == 'failure_rate' else min)(per_seed):.3f}" if per_seed else ""
            print(
                f"| {result['scenario'] if number == 0 else ''} | {label} | {cell(entry, name)}{worst} "
                f"| {cell(result['benchmarl'], name)} | {cell(result['heuristic'], name)} "
                f"| {cell(result['random'], name)} "
                f"| {'' if number else time} |"
            )


def main() -> None:
    from marlnav_cli.config import parse_int_ranges
    from marlnav_cli.zoo import zoo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(zoo()))
    parser.add_argument("--seeds", default="100-102")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "zoo.json")
    parser.add_argument("--smoke", action="store_true", help="every run one tiny iteration (checks the script)")
    parser.add_argument("--keep", type=Path, help="keep each entry run's folder here (SCENARIO-seedK)")
    parser.add_argument(
        "--entry-runs",
        type=Path,
        help="take the entry's runs from this folder instead of training them (one scenario): e.g. the final/ "
        "folder of the `marlnav tune` search that found the entry, whose runs must hold the entry's exact config",
    )
    parser.add_argument(
        "--checkpoint",
        choices=CHECKPOINTS,
        default="final",
        help="evaluate each run's final policy, or its best.safetensors (chosen on validation episodes, as "
        "`marlnav train` chooses it); the same for the entry and BenchMARL's settings",
    )
    args = parser.parse_args()
    seeds = parse_int_ranges(args.seeds, flag="--seeds", most=100)
    scenarios = [name.strip() for name in args.scenarios.split(",")]
    if args.entry_runs is not None and len(scenarios) != 1:
        parser.error("--entry-runs holds one scenario's runs: name that one with --scenarios")
    unknown = [name for name in scenarios if name not in zoo()]
    if unknown:
        parser.error(f"no zoo entry for {', '.join(unknown)}; the zoo has {', '.join(zoo())}")
    results = []
    with ProcessPoolExecutor(max_workers=args.parallel, mp_context=get_context("spawn")) as pool:
        for scenario in scenarios:
            results.append(
                benchmark_scenario(
                    scenario,
                    seeds,
                    pool,
                    args.episodes,
                    smoke=args.smoke,
                    keep=args.keep,
                    entry_runs_folder=args.entry_runs,
                    checkpoint=args.checkpoint,
                )
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))  # kept as each scenario lands
            print(f"{scenario}: done", flush=True)
    print_table(results)
    print(f"figures: {args.out}")


if __name__ == "__main__":
    main()
