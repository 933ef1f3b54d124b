"""--normalize-observations: each observation feature's mean and spread, measured before training.

TorchRL's ObservationNorm.init_stats measures them on random-action episodes of the task (one batch of
the run's envs, seeded apart from training); the figures are copied into the networks' ObservationScaler
layers (models.py), which apply ObservationNorm's own arithmetic. The statistics stay fixed for the run:
a running normaliser would shift what the policy reads while it learns, and would make a checkpoint's
policy depend on how long it ran. The random state is saved and restored around the measurement, so a
run with it draws the same weights and episodes as one without.
"""

from __future__ import annotations

import dataclasses

import torch
from torchrl.envs import ObservationNorm

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import agent_groups, make_env
from marlnav_cli.models import observation_scalers
from marlnav_cli.rng import capture_rng, restore_rng

STATISTICS_SEED_OFFSET = 3_000_000  # apart from training (seed), evaluate (+1e6) and validation (+2e6)


def measure_observation_statistics(
    config: TrainConfig, device: torch.device
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per group: (loc, scale) over every env, step and agent of random-action episodes, per feature."""
    saved = capture_rng()
    try:
        task = dataclasses.replace(config, team_sizes="", curriculum="")
        env = make_env(task, num_envs=config.num_envs, seed=config.seed + STATISTICS_SEED_OFFSET, device=device)
        norms = {}
        for group in agent_groups(env):
            norms[group.name] = ObservationNorm(in_keys=[group.key("observation")], standard_normal=True)
            env.append_transform(norms[group.name])
        for norm in norms.values():  # in order: ObservationNorm asks that earlier ones be initialised
            # A rollout is [envs, steps, agents, features]: one loc and scale per feature. A rollout stops
            # when any env's episode ends (balance's package falls within ~30 random steps), so rollouts
            # differ in length and are joined along the steps.
            norm.init_stats(num_iter=config.num_envs * config.max_steps, reduce_dim=(0, 1, 2), cat_dim=1)
        return {name: (norm.loc.detach().clone(), norm.scale.detach().clone()) for name, norm in norms.items()}
    finally:
        restore_rng(saved)


def set_observation_statistics(
    networks: dict[str, list[torch.nn.Module]], statistics: dict[str, tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Copy each group's statistics into every ObservationScaler of its networks (policy and critic)."""
    with torch.no_grad():
        for name, modules in networks.items():
            loc, scale = statistics[name]
            for module in modules:
                for scaler in observation_scalers(module):
                    scaler.loc.copy_(loc)
                    scaler.scale.copy_(scale)
