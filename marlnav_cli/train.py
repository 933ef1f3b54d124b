"""The algorithm seam: MAPPO/IPPO training, readable top to bottom (CleanRL style)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from torchrl.collectors import Collector
from torchrl.modules import ProbabilisticActor
from torchrl.objectives import ClipPPOLoss, ValueEstimators

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import EPISODE_REWARD_KEY, GROUP, make_env
from marlnav_cli.errors import TrainingDiverged
from marlnav_cli.models import STATE_VALUE_KEY, build_critic, build_policy

LOSS_TERMS = ("loss_objective", "loss_critic", "loss_entropy")


@dataclass
class TrainState:
    """What the experiment layer needs after (or during) training: modules and per-iteration metrics."""

    config: TrainConfig
    policy: ProbabilisticActor
    critic: TensorDictModule
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return self.history[-1]["frames"] if self.history else 0

    @property
    def final_reward(self) -> float | None:
        return self.history[-1]["reward_mean"] if self.history else None


IterationCallback = Callable[[TrainState], None]


def train(config: TrainConfig, device: torch.device, on_iteration: IterationCallback | None = None,
          should_stop: Callable[[], bool] = lambda: False) -> TrainState:
    """Run PPO for config.n_iters iterations of collection then config.num_epochs of updates.

    `should_stop` is asked after each iteration, so an interrupt never leaves half-updated weights.
    """
    # --- seeding, env, models ------------------------------------------------------------------
    torch.manual_seed(config.seed)
    env = make_env(config, num_envs=config.num_envs, seed=config.seed, device=device)
    policy = build_policy(env, config, device)
    critic = build_critic(env, config, device)
    state = TrainState(config=config, policy=policy, critic=critic)

    # --- collector, loss, optimiser ------------------------------------------------------------
    collector = Collector(env, policy, frames_per_batch=config.frames_per_batch,
                          total_frames=config.n_iters * config.frames_per_batch,
                          device=device, storing_device=device, auto_register_policy_transforms=False)
    loss_module = ClipPPOLoss(actor_network=policy, critic_network=critic, clip_epsilon=config.clip_epsilon,
                              entropy_coeff=config.entropy_coeff, normalize_advantage=False)
    loss_module.set_keys(reward=env.reward_key, action=env.action_key, value=STATE_VALUE_KEY,
                         done=(GROUP, "done"), terminated=(GROUP, "terminated"))
    loss_module.make_value_estimator(ValueEstimators.GAE, gamma=config.gamma, lmbda=config.lmbda)
    optimiser = torch.optim.Adam(loss_module.parameters(), lr=config.lr)
    # Only what the loss reads is gathered per minibatch; the rest of the batch stays put.
    loss_keys = [key for key in loss_module.in_keys if key != "next" and not
                 (isinstance(key, tuple) and key[0] == "next")]

    started = time.perf_counter()
    for data in collector:
        # --- advantages --------------------------------------------------------------------------
        iteration_started = time.perf_counter()
        _expand_done_to_agents(data, env.reward_key)
        with torch.no_grad():
            loss_module.value_estimator(data, params=loss_module.critic_network_params,
                                        target_params=loss_module.target_critic_network_params)
        flat = data.reshape(-1).select(*loss_keys, "advantage", "value_target", strict=False)

        # --- PPO epochs over shuffled minibatches ------------------------------------------------
        loss_sums = torch.zeros(len(LOSS_TERMS), device=device)
        grad_norm_max = torch.zeros((), device=device)
        for _ in range(config.num_epochs):
            order = torch.randperm(flat.batch_size[0], device=device)
            for start in range(0, config.minibatches_per_epoch * config.minibatch_size, config.minibatch_size):
                losses = loss_module(flat[order[start:start + config.minibatch_size]])
                terms = torch.stack([losses[name] for name in LOSS_TERMS])
                terms.sum().backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(loss_module.parameters(), config.max_grad_norm)
                optimiser.step()
                optimiser.zero_grad(set_to_none=True)
                loss_sums += terms.detach()
                grad_norm_max = torch.maximum(grad_norm_max, grad_norm.detach())
        collector.update_policy_weights_()

        # --- metrics -------------------------------------------------------------------------------
        if not (torch.isfinite(loss_sums).all() and torch.isfinite(grad_norm_max)):
            raise TrainingDiverged(f"loss or gradient became non-finite at iteration {len(state.history) + 1}; "
                                   "try a lower --lr or --max-grad-norm")
        updates = config.num_epochs * config.minibatches_per_epoch
        now = time.perf_counter()
        episode_rewards = data.get(("next", *EPISODE_REWARD_KEY))[data.get(("next", GROUP, "done"))]
        state.history.append({
            "iteration": len(state.history) + 1,
            "frames": (len(state.history) + 1) * config.frames_per_batch,
            "wall_s": now - started,
            "reward_mean": episode_rewards.mean().item(),
            "reward_min": episode_rewards.min().item(),
            "reward_max": episode_rewards.max().item(),
            **{name: value / updates for name, value in zip(LOSS_TERMS, loss_sums.tolist())},
            "grad_norm_max": grad_norm_max.item(),
            "train_s": now - iteration_started,
            "frames_per_s": (len(state.history) + 1) * config.frames_per_batch / (now - started),
        })
        if on_iteration is not None:
            on_iteration(state)
        if should_stop():
            break
    collector.shutdown()
    return state


def _expand_done_to_agents(data: TensorDictBase, reward_key: tuple[str, ...]) -> None:
    """VMAS's done is shared; GAE needs it with the reward's per-agent shape (as in the tutorial)."""
    reward_shape = data.get_item_shape(("next", *reward_key))
    for key in ("done", "terminated"):
        data.set(("next", GROUP, key), data.get(("next", key)).unsqueeze(-1).expand(reward_shape))
