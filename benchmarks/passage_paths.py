"""What passage's reward pays for: standing still, and every agent taking the gap on its own.

Usage: python -m benchmarks.passage_paths [--max-steps 100,200,300] [--episodes 200] [--seed 100]

VMAS ships no heuristic for passage. Its reward is each agent's progress toward its goal (100 per unit of
distance) less 10 for every step it overlaps another agent or the wall, and an agent's observation holds
no other agent, so a team that moves must keep apart without seeing one another. Two scripted controllers
bound what a policy can reach: one stands still (no progress, no collision: reward 0 exactly), one drives
each agent below the gap, through it and on to its goal, with no regard for the others (how often the
task can be finished at a step limit, and what the collisions on the way cost). Evaluated as `marlnav
evaluate` evaluates a policy (same episodes: seed + 1,000,000). Prints a table per controller; asserts
nothing.
"""

from __future__ import annotations

import torch

from benchmarks.step_limits import evaluate_controller, print_step_limit_table
from marlnav_cli.config import TrainConfig
from marlnav_cli.episodes import EpisodeFigures

ALIGNED = 0.02  # how close to the gap's centre line an agent must be before it enters
BELOW_GAP = 0.15  # where an agent lines up, under the gap's centre (the wall is 0.2 thick)
PAST_GAP = 0.3  # where it heads once lined up: beyond the wall
WALL_CLEARED = 0.12  # above this height an agent is through and heads for its goal
POSITION_GAIN, VELOCITY_GAIN = 3.0, 1.0


class StandStill:
    """A VMAS-style heuristic (`compute_action(observation, u_range)`): no force at all."""

    def compute_action(self, observation: torch.Tensor, u_range: float) -> torch.Tensor:
        return torch.zeros(*observation.shape[:-1], 2, dtype=observation.dtype)


class ThroughTheGap:
    """A VMAS-style heuristic: line up under the gap, go through, then to the goal. passage's observation
    is the agent's position, velocity, goal minus position and gap minus position."""

    def compute_action(self, observation: torch.Tensor, u_range: float) -> torch.Tensor:
        velocity, to_goal, to_gap = observation[..., 2:4], observation[..., 4:6], observation[..., 6:8]
        below_wall = (observation[..., 1] < WALL_CLEARED)[..., None]
        aligned = (to_gap[..., 0].abs() < ALIGNED)[..., None]
        line_up = to_gap + torch.tensor([0.0, -BELOW_GAP])
        go_through = to_gap + torch.tensor([0.0, PAST_GAP])
        target = torch.where(below_wall, torch.where(aligned, go_through, line_up), to_goal)
        return (POSITION_GAIN * target - VELOCITY_GAIN * velocity).clamp(-u_range, u_range)


def stand_still(config: TrainConfig, episodes: int) -> EpisodeFigures:
    return evaluate_controller(StandStill(), config, episodes)


def through_the_gap(config: TrainConfig, episodes: int) -> EpisodeFigures:
    return evaluate_controller(ThroughTheGap(), config, episodes)


def main() -> None:
    for name, controller in (("stand still", StandStill()), ("through the gap", ThroughTheGap())):
        print(f"\n{name}")
        print_step_limit_table(controller, "passage", __doc__.splitlines()[0], "100,200,300", n_agents=5)


if __name__ == "__main__":
    main()
