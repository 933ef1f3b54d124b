"""Scripted controllers evaluated as policies are, at several step limits: shared by the benchmarks that
ask what a zoo entry could reach on a task (push_to_goal, food_tour)."""

from __future__ import annotations

import argparse
import dataclasses

import torch

from marlnav_cli.config import TrainConfig
from marlnav_cli.episodes import EVAL_SEED_OFFSET, EpisodeFigures, evaluate_actor
from marlnav_cli.heuristics import HeuristicActor, one_group_team


def evaluate_controller(controller: object, config: TrainConfig, episodes: int) -> EpisodeFigures:
    """A VMAS-style heuristic (`compute_action(observation, u_range)`) for every agent, on the episodes a
    policy of this config is evaluated on (seed + 1,000,000)."""
    team = one_group_team(config)
    return evaluate_actor(
        config,
        HeuristicActor(controller, team.group, team.u_ranges),
        episodes=episodes,
        seed=config.seed + EVAL_SEED_OFFSET,
        device=torch.device("cpu"),
    )


def print_step_limit_table(
    controller: object, scenario: str, description: str, default_steps: str, n_agents: int = 4
) -> None:
    """The command line of such a benchmark: the controller's figures at each step limit, as a table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--max-steps", default=default_steps, help="step limits, comma-separated")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--n-agents", type=int, default=n_agents)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = TrainConfig(scenario=scenario, n_agents=args.n_agents, seed=args.seed)
    print("| step limit | success [95% interval] | mean episode length | mean episode reward |")
    print("| ---: | ---: | ---: | ---: |")
    for max_steps in [int(limit) for limit in args.max_steps.split(",")]:
        figures = evaluate_controller(controller, dataclasses.replace(base, max_steps=max_steps), args.episodes)
        low, high = figures.success_rate_ci95 or (float("nan"), float("nan"))
        print(
            f"| {max_steps} | {figures.success_rate:.3f} [{low:.3f}, {high:.3f}] | {figures.mean_length:.1f} "
            f"| {figures.mean_reward:.3f} |",
            flush=True,
        )
