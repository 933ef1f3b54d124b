"""How far reverse_transport's package can get in an episode: every agent pushes straight at the goal.

Usage: python -m benchmarks.push_to_goal [--max-steps 100,300,500,1000] [--episodes 200] [--seed 100]

VMAS ships no heuristic for reverse_transport. This one is the obvious controller: each agent, inside the
package, drives at full force along the package-to-goal direction (the last two numbers of its own
observation), so the package moves as fast as the four agents can push it. Its success rate at a step limit
is about the most a policy can reach at that limit, which tells whether a zoo entry is short of the target
because of its training or because of its episode length. Evaluated as `marlnav evaluate` evaluates a
policy (same episodes: seed + 1,000,000). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from marlnav_cli.config import TrainConfig
from marlnav_cli.episodes import EVAL_SEED_OFFSET, EpisodeFigures, evaluate_actor
from marlnav_cli.heuristics import HeuristicActor, one_group_team


class PushToGoal:
    """A VMAS-style heuristic (`compute_action(observation, u_range)`): full force from the package toward
    its goal. reverse_transport's observation ends with the package's position minus the goal's."""

    def compute_action(self, observation: torch.Tensor, u_range: float) -> torch.Tensor:
        toward_goal = -observation[..., -2:]
        return u_range * toward_goal / toward_goal.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def push_to_goal(config: TrainConfig, episodes: int) -> EpisodeFigures:
    team = one_group_team(config)
    return evaluate_actor(
        config,
        HeuristicActor(PushToGoal(), team.group, team.u_ranges),
        episodes=episodes,
        seed=config.seed + EVAL_SEED_OFFSET,
        device=torch.device("cpu"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", default="100,300,500,1000", help="step limits, comma-separated")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--n-agents", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = TrainConfig(scenario="reverse_transport", n_agents=args.n_agents, seed=args.seed)
    print("| step limit | success [95% interval] | mean episode length | mean episode reward |")
    print("| ---: | ---: | ---: | ---: |")
    for max_steps in [int(limit) for limit in args.max_steps.split(",")]:
        figures = push_to_goal(dataclasses.replace(base, max_steps=max_steps), args.episodes)
        low, high = figures.success_rate_ci95 or (float("nan"), float("nan"))
        print(
            f"| {max_steps} | {figures.success_rate:.3f} [{low:.3f}, {high:.3f}] | {figures.mean_length:.1f} "
            f"| {figures.mean_reward:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
