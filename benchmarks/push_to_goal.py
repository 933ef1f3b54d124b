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

import torch

from benchmarks.step_limits import evaluate_controller, print_step_limit_table
from marlnav_cli.config import TrainConfig
from marlnav_cli.episodes import EpisodeFigures


class PushToGoal:
    """A VMAS-style heuristic (`compute_action(observation, u_range)`): full force from the package toward
    its goal. reverse_transport's observation ends with the package's position minus the goal's."""

    def compute_action(self, observation: torch.Tensor, u_range: float) -> torch.Tensor:
        toward_goal = -observation[..., -2:]
        return u_range * toward_goal / toward_goal.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def push_to_goal(config: TrainConfig, episodes: int) -> EpisodeFigures:
    return evaluate_controller(PushToGoal(), config, episodes)


def main() -> None:
    print_step_limit_table(PushToGoal(), "reverse_transport", __doc__.splitlines()[0], "100,300,500,1000")


if __name__ == "__main__":
    main()
