"""How marlnav scales: frames/s of collection and of a whole training iteration, by envs and agents.

Usage: python -m benchmarks.scale [--device cpu] [--envs 60 600 6000] [--agents 3 6 12]
           [--max-steps 20] [--epochs 1] [--out benchmarks/results/scale.json]

Each cell trains two iterations of navigation with the default preset, except frames per batch =
envs x max-steps, and reports the second iteration (the first pays for warm-up). Episodes are
shortened (--max-steps) and epochs cut (--epochs) so that 6000 envs x 12 agents fits in minutes on
2 cores; collection frames/s does not depend on either. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from marlnav_cli.config import DEFAULT_PRESET, preset_config
from marlnav_cli.envs import resolve_device
from marlnav_cli.train import train

REPO = Path(__file__).resolve().parent.parent


def measure(num_envs: int, n_agents: int, args: argparse.Namespace) -> dict:
    base = preset_config(DEFAULT_PRESET)
    frames = num_envs * args.max_steps
    config = dataclasses.replace(
        base,
        n_agents=n_agents,
        max_steps=args.max_steps,
        frames_per_batch=frames,
        total_frames=2 * frames,
        num_epochs=args.epochs,
        minibatch_size=min(base.minibatch_size, frames),
    ).validate()
    state = train(config, resolve_device(args.device))
    row = state.history[-1]
    return {
        "num_envs": num_envs,
        "n_agents": n_agents,
        "frames_per_batch": frames,
        "collect_frames_per_s": frames / row["collect_s"],
        "iteration_frames_per_s": frames / (row["collect_s"] + row["train_s"]),
        "collect_s": row["collect_s"],
        "train_s": row["train_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--envs", type=int, nargs="+", default=[60, 600, 6000])
    parser.add_argument("--agents", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args()

    rows = []
    print(f"{'envs':>6}{'agents':>8}{'collect frames/s':>18}{'iteration frames/s':>20}", flush=True)
    for num_envs in args.envs:
        for n_agents in args.agents:
            rows.append(measure(num_envs, n_agents, args))
            r = rows[-1]
            print(
                f"{num_envs:>6}{n_agents:>8}{r['collect_frames_per_s']:>18.0f}{r['iteration_frames_per_s']:>20.0f}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "device": args.device,
                "threads": torch.get_num_threads(),
                "max_steps": args.max_steps,
                "epochs": args.epochs,
                "preset": DEFAULT_PRESET,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
