"""Evaluation during training: the deterministic policy on held-out episodes every few iterations.

It runs on its own seeds (training seed + 2,000,000), apart from both training and `marlnav evaluate`'s
(+ 1,000,000), so choosing the best checkpoint by it does not peek at the final evaluation. The random
state of torch and VMAS is saved before and restored after, so a run with evaluation trains exactly as
one without it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from marlnav_cli.episodes import evaluate_actor
from marlnav_cli.models import joint_actor
from marlnav_cli.rng import capture_rng, restore_rng
from marlnav_cli.train import TrainState

VALIDATION_SEED_OFFSET = 2_000_000
EVAL_KEYS = (
    "eval_success_rate",
    "eval_ended_early_rate",
    "eval_goal_rate",
    "eval_mean_length",
    "eval_mean_collisions",
    "eval_mean_reward",
    "eval_s",
)


@dataclass(frozen=True)
class EvaluationSchedule:
    every: int  # iterations; 0 turns evaluation off
    episodes: int

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def due(self, iteration: int, last: int) -> bool:
        """Every `every` iterations, and always at the run's last one (so the final policy is scored)."""
        return self.enabled and (iteration % self.every == 0 or iteration == last)


def evaluate_iteration(state: TrainState, schedule: EvaluationSchedule, device: torch.device) -> dict[str, Any]:
    """The EVAL_KEYS figures of the current policy; the RNG state is left as training had it."""
    started = time.perf_counter()
    saved = capture_rng()
    try:
        config = state.config
        summary = evaluate_actor(
            config,
            joint_actor(state.policies),
            episodes=schedule.episodes,
            seed=config.seed + VALIDATION_SEED_OFFSET,
            device=device,
        )
    finally:
        restore_rng(saved)
    rewards = [group.mean_reward for group in summary.groups.values()]
    return {
        "eval_success_rate": summary.success_rate,
        "eval_ended_early_rate": summary.ended_early_rate,
        "eval_goal_rate": summary.goal_rate,
        "eval_mean_length": summary.mean_length,
        "eval_mean_collisions": summary.mean_collisions,
        # with several groups, the first group's (a competitive mean would mean nothing)
        "eval_mean_reward": summary.mean_reward if len(rewards) == 1 else rewards[0],
        "eval_s": time.perf_counter() - started,
    }


def quality(row: dict[str, Any]) -> tuple[float, ...]:
    """How a checkpoint ranks for best.safetensors: evaluated success, then shorter episodes, then reward;
    goal rate then reward where the end can be the goal or a failure; evaluated reward where the scenario
    defines neither; training reward without evaluation."""
    if row.get("eval_success_rate") is not None:
        return (row["eval_success_rate"], -row["eval_mean_length"], row["eval_mean_reward"])
    if row.get("eval_goal_rate") is not None:
        return (row["eval_goal_rate"], row["eval_mean_reward"])
    if row.get("eval_mean_reward") is not None:
        return (row["eval_mean_reward"],)
    return (row["reward_mean"],)
