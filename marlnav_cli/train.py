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

from marlnav_cli.checkpoint import (CRITIC_PREFIX, POLICY_PREFIX, Checkpoint, load_optimizer, load_weights,
                                    module_tensors, optimizer_tensors, rng_state)
from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import EPISODE_REWARD_KEY, GROUP, make_env
from marlnav_cli.errors import TrainingDiverged
from marlnav_cli.models import STATE_VALUE_KEY, build_critic, build_policy
from marlnav_cli.rng import capture_rng, restore_rng

LOSS_TERMS = ("loss_objective", "loss_critic", "loss_entropy")
LOGGED_TERMS = (*LOSS_TERMS, "entropy")  # entropy: the policy's, estimated by the loss, for the curves


@dataclass
class TrainState:
    """Everything an iteration boundary holds: modules, optimiser, RNG state and per-iteration metrics.

    Every iteration starts all envs from a reset, so no simulator state crosses the boundary: saving
    this is enough to resume bit-exactly.
    """

    config: TrainConfig
    policy: ProbabilisticActor
    critic: TensorDictModule
    optimiser: torch.optim.Optimizer
    rng_state: dict[str, torch.Tensor] = field(default_factory=capture_rng)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return self.history[-1]["frames"] if self.history else 0

    @property
    def final_reward(self) -> float | None:
        return self.history[-1]["reward_mean"] if self.history else None

    def tensors(self) -> dict[str, torch.Tensor]:
        """What a checkpoint stores to rebuild this state."""
        return {**module_tensors(POLICY_PREFIX, self.policy), **module_tensors(CRITIC_PREFIX, self.critic),
                **optimizer_tensors(self.optimiser), **self.rng_state}


IterationCallback = Callable[[TrainState], None]


def train(config: TrainConfig, device: torch.device, on_iteration: IterationCallback | None = None,
          should_stop: Callable[[], bool] = lambda: False, resume: Checkpoint | None = None) -> TrainState:
    """Run PPO until config.total_frames: collection, GAE, then config.num_epochs of minibatch updates.

    `should_stop` is asked after each iteration, so an interrupt never leaves half-updated weights.
    With `resume`, training continues from that checkpoint's weights, optimiser, RNG and metrics.
    """
    # --- seeding, env, models, loss, optimiser ---------------------------------------------------
    started = time.perf_counter()  # wall time covers set-up too, as the tutorial's total does
    torch.manual_seed(config.seed)
    env = make_env(config, num_envs=config.num_envs, seed=config.seed, device=device)
    policy = build_policy(env, config, device)
    critic = build_critic(env, config, device)
    loss_module = ClipPPOLoss(actor_network=policy, critic_network=critic, clip_epsilon=config.clip_epsilon,
                              entropy_coeff=config.entropy_coeff, normalize_advantage=False)
    loss_module.set_keys(reward=env.reward_key, action=env.action_key, value=STATE_VALUE_KEY,
                         done=(GROUP, "done"), terminated=(GROUP, "terminated"))
    loss_module.make_value_estimator(ValueEstimators.GAE, gamma=config.gamma, lmbda=config.lmbda)
    optimiser = torch.optim.Adam(loss_module.parameters(), lr=config.lr)
    state = TrainState(config=config, policy=policy, critic=critic, optimiser=optimiser)
    if resume is not None:
        load_weights(policy, resume, POLICY_PREFIX)
        load_weights(critic, resume, CRITIC_PREFIX)
        load_optimizer(optimiser, resume)
        state.history = list(resume.history)
        state.rng_state = rng_state(resume)
    # Only what the loss reads is gathered per minibatch; the rest of the batch stays put.
    loss_keys = [key for key in loss_module.in_keys if key != "next" and not (isinstance(key, tuple) and key[0] == "next")]

    # --- collector: every iteration starts each env from a reset (see TrainState) ------------------
    remaining_iterations = config.n_iters - len(state.history)
    if remaining_iterations <= 0:
        return state
    collector = Collector(env, policy, frames_per_batch=config.frames_per_batch,
                          total_frames=remaining_iterations * config.frames_per_batch, reset_at_each_iter=True,
                          device=device, storing_device=device, auto_register_policy_transforms=False)
    restore_rng(state.rng_state)
    wall_before = state.history[-1]["wall_s"] if state.history else 0.0
    collect_started = time.perf_counter()

    for data in collector:
        # --- advantages --------------------------------------------------------------------------
        iteration_started = time.perf_counter()
        _expand_done_to_agents(data, env.reward_key)
        with torch.no_grad():
            loss_module.value_estimator(data, params=loss_module.critic_network_params,
                                        target_params=loss_module.target_critic_network_params)
        flat = data.reshape(-1).select(*loss_keys, "advantage", "value_target", strict=False)
        if config.anneal_lr:  # linear decay to 0 over the run; a function of the iteration, so resume-safe
            for group in optimiser.param_groups:
                group["lr"] = config.lr * (1 - len(state.history) / config.n_iters)

        # --- PPO epochs over shuffled minibatches ------------------------------------------------
        logged_sums = torch.zeros(len(LOGGED_TERMS), device=device)
        grad_norm_max = torch.zeros((), device=device)
        for _ in range(config.num_epochs):
            order = torch.randperm(flat.batch_size[0], device=device)
            for start in range(0, config.minibatches_per_epoch * config.minibatch_size, config.minibatch_size):
                losses = loss_module(flat[order[start:start + config.minibatch_size]])
                terms = torch.stack([losses[name] for name in LOGGED_TERMS])
                terms[:len(LOSS_TERMS)].sum().backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(loss_module.parameters(), config.max_grad_norm)
                optimiser.step()
                optimiser.zero_grad(set_to_none=True)
                logged_sums += terms.detach()
                grad_norm_max = torch.maximum(grad_norm_max, grad_norm.detach())
        collector.update_policy_weights_()
        state.rng_state = capture_rng()

        # --- metrics -------------------------------------------------------------------------------
        iteration = len(state.history) + 1
        if not (torch.isfinite(logged_sums).all() and torch.isfinite(grad_norm_max)):
            collector.shutdown()
            raise TrainingDiverged(f"loss or gradient became non-finite at iteration {iteration}")
        updates = config.num_epochs * config.minibatches_per_epoch
        now = time.perf_counter()
        episode_rewards = data.get(("next", *EPISODE_REWARD_KEY))[data.get(("next", GROUP, "done"))]
        state.history.append({
            "iteration": iteration,
            "frames": iteration * config.frames_per_batch,
            "wall_s": wall_before + now - started,
            "reward_mean": episode_rewards.mean().item(),
            "reward_min": episode_rewards.min().item(),
            "reward_max": episode_rewards.max().item(),
            **{name: value / updates for name, value in zip(LOGGED_TERMS, logged_sums.tolist())},
            "grad_norm_max": grad_norm_max.item(),
            "collect_s": iteration_started - collect_started,
            "train_s": now - iteration_started,
            "frames_per_s": config.frames_per_batch / (now - collect_started),
        })
        if on_iteration is not None:
            on_iteration(state)
        if should_stop():
            break
        collect_started = time.perf_counter()
    collector.shutdown()
    return state


def _expand_done_to_agents(data: TensorDictBase, reward_key: tuple[str, ...]) -> None:
    """VMAS's done is shared; GAE needs it with the reward's per-agent shape (as in the tutorial)."""
    reward_shape = data.get_item_shape(("next", *reward_key))
    for key in ("done", "terminated"):
        data.set(("next", GROUP, key), data.get(("next", key)).unsqueeze(-1).expand(reward_shape))
