"""What one shared, deterministic policy can reach on dispersion: every agent heads for the nearest food.

Usage: python -m benchmarks.food_tour [--max-steps 100,200] [--episodes 200] [--seed 100] [--n-agents 4]

VMAS ships no heuristic for dispersion, and VMAS starts every agent at the origin, so a shared
deterministic policy moves the team as one. This controller does exactly that: each agent drives at full
force toward the nearest food not yet eaten (from its own observation: position, velocity, then per food
its relative position and an eaten flag), so the pack tours the food greedily. Its figures are what a
shared policy could reach without ever splitting the team, which tells whether a zoo entry is short of
them because of its training or because of the shared policy. (Splitting up finishes every episode:
marlnav's `FoodPerAgent` controller in marlnav_cli/heuristics.py, which dispersion's entry copies.)
Evaluated as `marlnav evaluate` evaluates a policy (same episodes: seed + 1,000,000). Prints a table;
asserts nothing.
"""

from __future__ import annotations

import torch

from benchmarks.step_limits import evaluate_controller, print_step_limit_table
from marlnav_cli.config import TrainConfig
from marlnav_cli.episodes import EpisodeFigures
from marlnav_cli.heuristics import FoodPerAgent

OWN_STATE, PER_FOOD = FoodPerAgent.OWN_STATE, FoodPerAgent.PER_FOOD  # dispersion's observation, read alike


class NearestFood:
    """A VMAS-style heuristic (`compute_action(observation, u_range)`): full force toward the nearest
    uneaten food."""

    def compute_action(self, observation: torch.Tensor, u_range: float) -> torch.Tensor:
        food = observation[..., OWN_STATE:].unflatten(-1, (-1, PER_FOOD))
        relative, eaten = food[..., :2], food[..., 2]
        distance = relative.norm(dim=-1) + 1e3 * eaten  # eaten food last
        nearest = distance.argmin(dim=-1)
        target = torch.take_along_dim(relative, nearest[..., None, None], dim=-2).squeeze(-2)
        return u_range * target / target.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def food_tour(config: TrainConfig, episodes: int) -> EpisodeFigures:
    return evaluate_controller(NearestFood(), config, episodes)


def main() -> None:
    print_step_limit_table(NearestFood(), "dispersion", __doc__.splitlines()[0], "100,200")


if __name__ == "__main__":
    main()
