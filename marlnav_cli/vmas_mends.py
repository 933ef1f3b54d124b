"""VMAS scenarios whose `done` mixes up the envs of a batch, mended to judge each env on its own.

joint_passage and joint_passage_size (vmas 1.5) end an episode when the joint is within 0.01 of its goal
position and its angle within 0.01 of the goal's, but compute it as `all(on_position * on_angle, dim=1)`
with on_position shaped [envs] and on_angle [envs, 1]: the product broadcasts to [envs, envs], so env i
ends only when its own angle is right and *every* env's joint is on its goal position. With one env that
is the intended test; with the hundreds of envs of a training batch or an evaluation it practically never
fires, so a policy that brings its joint home would be reported at 0 success and never see the end. Here
each env's done is the same test on that env alone, computed with the scenario's own angle function.
tests/test_scenarios.py checks both: VMAS's version across envs (so a fixed VMAS is noticed), and this one
against VMAS's where VMAS's reduces to each env's own test (every env's joint on its goal position).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from vmas.simulator.scenario import BaseScenario

GOAL_TOLERANCE = 0.01  # VMAS's own, for position and angle alike


def joint_off_goal(scenario: BaseScenario) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """How far each env's joint is from its goal now, in position and in angle (VMAS's own line-angle
    distance), as a function of no arguments to call at every step."""
    # VMAS loads scenario files as nameless modules: the function is reached through its own done's globals
    angle_distance = type(scenario).done.__globals__["get_line_angle_dist_0_180"]

    def distances() -> tuple[torch.Tensor, torch.Tensor]:
        joint, goal = scenario.joint.landmark, scenario.goal
        position = torch.linalg.vector_norm(joint.state.pos - goal.state.pos, dim=-1)
        return position, angle_distance(joint.state.rot, goal.state.rot).reshape(-1)

    return distances


def _joint_on_goal_per_env(scenario: BaseScenario) -> Callable[[], torch.Tensor]:
    distances = joint_off_goal(scenario)

    def done() -> torch.Tensor:
        position, angle = distances()
        return (position <= GOAL_TOLERANCE) & (angle <= GOAL_TOLERANCE)

    return done


JOINT_DONE_MIXES_ENVS = {"joint_passage", "joint_passage_size"}


def mend_scenario(name: str, scenario: BaseScenario) -> None:
    """Replace the scenario object's `done` where VMAS's mixes up envs (a no-op for every other scenario)."""
    if name in JOINT_DONE_MIXES_ENVS:
        scenario.done = _joint_on_goal_per_env(scenario)  # type: ignore[method-assign]
