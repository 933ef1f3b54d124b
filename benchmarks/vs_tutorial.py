"""marlnav against the tutorial port, side by side in one run: time to quality, and the two floors.

Usage: python -m benchmarks.vs_tutorial [--seeds 0 1 2] [--floors-only] [--floor-iterations 8] [--device cpu]
           [--eval-episodes 200] [--tutorial SCRIPT]
           [--out benchmarks/results/vs_tutorial.json]

For each seed it trains the tutorial port (its own script, in a subprocess) and `marlnav train` with
its defaults, one after the other, and evaluates both the same way: the tutorial port's own evaluation
(deterministic policy, one episode per env on seed + 1000, success = done before the step limit) is
re-implemented here and applied to marlnav's checkpoint, and marlnav's `evaluate` is reported too.
Then it measures, on this machine and in this run:
  - the training-phase floor: the tutorial's two 2x256 tanh nets and 30 epochs x 15 minibatches of 400
    in plain torch (Normal + tanh log-prob, Adam, grad clipping), per iteration; against marlnav's
    training phase with `--preset tutorial`;
  - the collection floor: raw `vmas.make_env` stepping with random actions, 6000 frames in 60 envs;
    against marlnav's collection time per iteration with `--preset tutorial`.
  The floors run in the same process as that marlnav training, one floor iteration of each kind after
  each marlnav iteration, so that the shared machine's load weighs on both alike.
It prints one table (each figure for both, and the ratio) and writes it to a JSON file.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from operator import truediv
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def run_tutorial(script: Path | None, seed: int, device: str, episodes: int) -> dict:
    """The tutorial in its own process: benchmarks/tutorial_reference.py, or another script taking its options."""
    program = ["-m", "benchmarks.tutorial_reference"] if script is None else [str(script)]
    completed = subprocess.run(
        [
            sys.executable,
            *program,
            "--iters",
            "10",
            "--seed",
            str(seed),
            "--device",
            device,
            "--eval-episodes",
            str(episodes),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return {
        "train_s": result["total_s"],
        "collect_s": result["collect_s"],
        "update_s": result["train_s"],
        "final_train_reward": result["rewards"][-1],
        "eval": result["eval"],
    }


def marlnav(*args: str) -> subprocess.CompletedProcess:
    """This checkout's CLI in a fresh process (cwd = repo, so `-m marlnav_cli` imports this tree)."""
    return subprocess.run(
        [sys.executable, "-m", "marlnav_cli", *args], capture_output=True, text=True, check=True, cwd=REPO
    )


def run_marlnav(seed: int, device: str, episodes: int, folder: Path, extra: list[str]) -> dict:
    run_folder = folder / f"seed{seed}"
    marlnav("train", "--seed", str(seed), "--device", device, "--quiet", "--out", str(run_folder), *extra)
    rows = [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines()]
    checkpoint = run_folder / "policy.safetensors"
    evaluated = marlnav("evaluate", str(checkpoint), "--episodes", str(episodes), "--device", device, "--json")
    return {
        "train_s": rows[-1]["wall_s"],
        "collect_s": sum(r["collect_s"] for r in rows),
        "update_s": sum(r["train_s"] for r in rows),
        "final_train_reward": rows[-1]["reward_mean"],
        "eval": tutorial_style_evaluation(checkpoint, seed, episodes, device),
        "marlnav_evaluate": json.loads(evaluated.stdout)["policy"],
        "iterations": len(rows),
        "frames": rows[-1]["frames"],
    }


def tutorial_style_evaluation(checkpoint: Path, seed: int, episodes: int, device: str) -> dict:
    """The tutorial port's `evaluate`, verbatim in method, applied to a marlnav checkpoint."""
    from torchrl.envs import RewardSum, TransformedEnv
    from torchrl.envs.libs.vmas import VmasEnv
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    from marlnav_cli.experiment import load_policy

    loaded = load_policy(checkpoint, device_name=device)
    config = loaded.checkpoint.config
    started = time.time()
    env = VmasEnv(
        scenario=config.scenario,
        num_envs=episodes,
        continuous_actions=True,
        max_steps=config.max_steps,
        device=loaded.device,
        n_agents=config.n_agents,
        seed=seed + 1000,
    )
    env = TransformedEnv(env, RewardSum(in_keys=[env.reward_key], out_keys=[("agents", "episode_reward")]))
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        td = env.rollout(config.max_steps, policy=loaded.actor, break_when_any_done=False)
    done = td.get(("next", "done")).squeeze(-1)
    first_done = done.float().argmax(dim=1)
    per_env = td.get(("next", "agents", "episode_reward"))[torch.arange(episodes), first_done].mean(dim=(-2, -1))
    return {
        "mean_reward": per_env.mean().item(),
        "std_reward": per_env.std().item(),
        "success_rate": (first_done < config.max_steps - 1).float().mean().item(),
        "mean_length": (first_done + 1).float().mean().item(),
        "eval_s": time.time() - started,
    }


def floors_against_marlnav(device: str, iterations: int) -> dict[str, dict]:
    """marlnav's collection and update seconds per iteration with `--preset tutorial`, and the two floors.

    One process, interleaved: after each marlnav iteration, one floor iteration of each kind runs, so
    the machine's load at any moment weighs on both alike. Each figure is the best of iterations 2..N
    (the first pays for warm-up); the median of the per-iteration ratios (each marlnav iteration over
    the floor iteration right after it) is given too, as a check on that best-of figure.
    """
    import dataclasses

    from benchmarks.hot_paths import RawVmasFloor, UpdateFloor
    from marlnav_cli.config import preset_config
    from marlnav_cli.train import train

    tutorial = preset_config("tutorial")
    update_floor, collection_floor = UpdateFloor(device), RawVmasFloor(tutorial, torch.device(device))
    floor_update_s: list[float] = []
    floor_collect_s: list[float] = []

    def after_marlnav_iteration(_state) -> None:
        floor_update_s.append(update_floor.iteration_seconds())
        started = time.perf_counter()
        collection_floor.step_one_batch()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        floor_collect_s.append(time.perf_counter() - started)

    config = dataclasses.replace(tutorial, total_frames=iterations * tutorial.frames_per_batch, seed=0)
    history = train(config, torch.device(device), on_iteration=after_marlnav_iteration).history
    marlnav_update_s = [row["train_s"] for row in history[1:]]
    marlnav_collect_s = [row["collect_s"] for row in history[1:]]
    return {
        "update": {
            "floor": min(floor_update_s[1:]),
            "marlnav": min(marlnav_update_s),
            "paired_ratio_median": statistics.median(map(truediv, marlnav_update_s, floor_update_s[1:])),
            "floor_s": floor_update_s,
            "marlnav_s": [row["train_s"] for row in history],
        },
        "collect": {
            "floor": min(floor_collect_s[1:]),
            "marlnav": min(marlnav_collect_s),
            "paired_ratio_median": statistics.median(map(truediv, marlnav_collect_s, floor_collect_s[1:])),
            "floor_s": floor_collect_s,
            "marlnav_s": [row["collect_s"] for row in history],
        },
    }


def mean(values: list[float]) -> float:
    return statistics.fmean(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument(
        "--tutorial",
        type=Path,
        default=None,
        help="another tutorial script (default: benchmarks/tutorial_reference.py)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "vs_tutorial.json")
    parser.add_argument("--floors-only", action="store_true", help="skip the training runs; measure the floors only")
    parser.add_argument(
        "--floor-iterations",
        type=int,
        default=8,
        help="marlnav iterations (each followed by one of each floor) for the floor comparison",
    )
    parser.add_argument("--marlnav-args", default="", help="extra options for marlnav train, e.g. '--frames 90000'")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="marlnav-bench-"))
    runs: dict[str, list[dict]] = {"tutorial": [], "marlnav": []}
    for seed in [] if args.floors_only else args.seeds:
        runs["tutorial"].append(run_tutorial(args.tutorial, seed, args.device, args.eval_episodes))
        print(f"seed {seed} tutorial: {json.dumps(runs['tutorial'][-1])}", flush=True)
        runs["marlnav"].append(run_marlnav(seed, args.device, args.eval_episodes, folder, args.marlnav_args.split()))
        print(f"seed {seed} marlnav:  {json.dumps(runs['marlnav'][-1])}", flush=True)
    phases = floors_against_marlnav(args.device, args.floor_iterations)

    rows = []

    def row(name: str, tutorial: float, marlnav: float, better: str) -> None:
        rows.append(
            {
                "figure": name,
                "tutorial": tutorial,
                "marlnav": marlnav,
                "ratio": marlnav / tutorial if tutorial else float("nan"),
                "better": better,
            }
        )

    for name, get, better in (
        ()
        if args.floors_only
        else (
            ("training time (s)", lambda r: r["train_s"], "lower"),
            ("  of which collection (s)", lambda r: r["collect_s"], "lower"),
            ("  of which updates (s)", lambda r: r["update_s"], "lower"),
            ("final training reward", lambda r: r["final_train_reward"], "higher"),
            ("eval mean reward", lambda r: r["eval"]["mean_reward"], "higher"),
            ("eval success rate", lambda r: r["eval"]["success_rate"], "higher"),
            ("eval mean length", lambda r: r["eval"]["mean_length"], "lower"),
        )
    ):
        row(name, mean([get(r) for r in runs["tutorial"]]), mean([get(r) for r in runs["marlnav"]]), better)
    floors = [
        {"figure": figure, **phases[phase], "ratio": phases[phase]["marlnav"] / phases[phase]["floor"]}
        for figure, phase in (
            ("update phase per iteration, tutorial hyperparameters (s)", "update"),
            ("collection of 6000 frames, 60 envs (s)", "collect"),
        )
    ]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, {args.device}",
        "torch": torch.__version__,
        "seeds": args.seeds,
        "eval_episodes": args.eval_episodes,
        "marlnav_args": args.marlnav_args,
        "table": rows,
        "floors": floors,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\nmarlnav vs tutorial port, mean of seeds {args.seeds}, {report['machine']}, {report['date']}")
    print(f"{'figure':<28}{'tutorial':>10}{'marlnav':>10}{'ratio':>8}")
    for entry in rows:
        print(f"{entry['figure']:<28}{entry['tutorial']:>10.3f}{entry['marlnav']:>10.3f}{entry['ratio']:>8.2f}")
    print(f"\n{'floor (best of iterations 2..N)':<58}{'floor':>8}{'marlnav':>9}{'ratio':>7}{'paired median':>15}")
    for entry in floors:
        print(
            f"{entry['figure']:<58}{entry['floor']:>8.2f}{entry['marlnav']:>9.2f}{entry['ratio']:>7.2f}"
            f"{entry['paired_ratio_median']:>15.2f}"
        )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
