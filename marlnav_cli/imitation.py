"""Copying the scenario's hand-written controller before PPO (--imitate-heuristic FRAMES).

Why: in transport the only reward is the package moving toward its goal, and agents acting at random
almost never push it the right way, so PPO from scratch never finds the reward (docs/zoo.md: every
setting tried stayed near 0 where VMAS's heuristic scores about 5). The scenario's own HeuristicPolicy
does push it: copying that first starts PPO where the reward is, and PPO then has something to improve.

The policy's most likely action (what evaluate, render and export run) is fitted to the heuristic's by
mean squared error; its spread is left to PPO. The critic is fitted to TorchRL's GAE value targets on the
heuristic's episodes, recomputed every epoch (TD(lambda) evaluation of the heuristic), so that PPO's first
advantages compare with the heuristic's value rather than a random critic's. A separate Adam does this:
the training optimiser's step counts stay PPO's alone (checkpoints check them).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from tensordict import TensorDictBase
from torchrl.objectives.value import GAE

from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import AgentGroup
from marlnav_cli.models import ContinuousPolicy, TensorCritic

ImitationRow = dict[str, float]


def imitate_heuristic(
    config: TrainConfig,
    collector: ExperienceCollector,
    group: AgentGroup,
    actor: ContinuousPolicy,
    critic: TensorCritic,
    advantage_module: GAE,
    parameters: list[torch.nn.Parameter],
    prepare: Callable[[TensorDictBase], None],
    on_batch: Callable[[ImitationRow], None] | None = None,
) -> list[ImitationRow]:
    """Fit `actor` and `critic` to config.imitate_heuristic frames (whole batches) of the controller that
    `collector` runs; `prepare` readies a batch for GAE as training does. One row of figures per batch."""
    optimiser = torch.optim.Adam(parameters, lr=config.lr)
    rows: list[ImitationRow] = []
    for batch in range(math.ceil(config.imitate_heuristic / config.frames_per_batch)):
        data = collector.collect()
        prepare(data)
        observation, action = (_flat(data, data.get(group.key(name))) for name in ("observation", "action"))
        done = data.get(("next", *group.key("done")))
        action_losses, critic_losses = [], []
        for _ in range(config.num_epochs):
            with torch.no_grad():
                advantage_module(data)
            value_target = _flat(data, data.get(group.key("value_target")))
            order = torch.randperm(len(observation), device=observation.device)
            for start in range(0, config.minibatches_per_epoch * config.minibatch_size, config.minibatch_size):
                indices = order[start : start + config.minibatch_size]
                loc, _ = actor.network(observation[indices])
                action_loss = torch.nn.functional.mse_loss(actor.squash.mode(loc), action[indices])
                critic_loss = torch.nn.functional.smooth_l1_loss(critic(observation[indices]), value_target[indices])
                (action_loss + critic_loss).backward()
                torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
                optimiser.step()
                optimiser.zero_grad(set_to_none=True)
                action_losses.append(action_loss.detach())
                critic_losses.append(critic_loss.detach())
        updates = config.minibatches_per_epoch  # the last epoch's: how well the fit ended on this batch
        rows.append(
            {
                "batch": batch + 1,
                "frames": (batch + 1) * config.frames_per_batch,
                "heuristic_reward_mean": data.get(("next", *group.key("episode_reward")))[done].mean().item(),
                "action_mse": torch.stack(action_losses[-updates:]).mean().item(),
                "loss_critic": torch.stack(critic_losses[-updates:]).mean().item(),
            }
        )
        if on_batch is not None:
            on_batch(rows[-1])
    return rows


def _flat(data: TensorDictBase, value: torch.Tensor) -> torch.Tensor:
    """[envs, steps, agents, ...] as [frames, agents, ...]."""
    return value.reshape(-1, *value.shape[data.batch_dims :])
