"""The algorithm seam: MAPPO/IPPO training, readable top to bottom (CleanRL style)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from torchrl.modules import ProbabilisticActor
from torchrl.objectives.value import GAE

from marlnav_cli.checkpoint import (CRITIC_PREFIX, POLICY_PREFIX, Checkpoint, load_optimizer, load_weights,
                                    module_tensors, optimizer_tensors, rng_state)
from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import EPISODE_REWARD_KEY, GROUP, make_env
from marlnav_cli.errors import TrainingDiverged
from marlnav_cli.models import STATE_VALUE_KEY, TensorCritic, TensorPolicy, build_critic, build_policy
from marlnav_cli.ppo import PPOBatch, PPOLosses, PPOObjective
from marlnav_cli.rng import capture_rng, restore_rng

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
    parameters = [*policy.parameters(), *critic.parameters()]  # the order ClipPPOLoss gave, so old checkpoints resume
    # Fused Adam (one kernel over all parameters, not small ops per tensor): from no gain to 23% less time
    # per minibatch update than the default Adam in four interleaved runs (README, Benchmarks).
    optimiser = torch.optim.Adam(parameters, lr=config.lr, fused=device.type in ("cpu", "cuda"))
    state = TrainState(config=config, policy=policy, critic=critic, optimiser=optimiser)
    if resume is not None:
        load_weights(policy, resume, POLICY_PREFIX)
        load_weights(critic, resume, CRITIC_PREFIX)
        load_optimizer(optimiser, resume)
        state.history = list(resume.history)
        state.rng_state = rng_state(resume)
    tensor_policy = TensorPolicy(policy)  # one network and action box for collection and the loss
    objective = PPOObjective(tensor_policy, TensorCritic(critic), clip_epsilon=config.clip_epsilon,
                             entropy_coeff=config.entropy_coeff)
    advantage_module = GAE(gamma=config.gamma, lmbda=config.lmbda, value_network=critic)
    advantage_module.set_keys(reward=env.reward_key, value=STATE_VALUE_KEY, done=(GROUP, "done"),
                              terminated=(GROUP, "terminated"))

    # --- collector: every iteration starts each env from a reset (see TrainState) ------------------
    collector = ExperienceCollector(env, tensor_policy, steps=config.max_steps)
    restore_rng(state.rng_state)
    wall_before = state.history[-1]["wall_s"] if state.history else 0.0

    while len(state.history) < config.n_iters:
        collect_started = time.perf_counter()
        data = collector.collect()

        # --- advantages --------------------------------------------------------------------------
        iteration_started = time.perf_counter()
        _expand_done_to_agents(data, env.reward_key)
        with torch.no_grad():
            advantage_module(data)
        batch = PPOBatch.from_rollout(data, tensor_policy)
        if config.anneal_lr:  # linear decay to 0 over the run; a function of the iteration, so resume-safe
            for group in optimiser.param_groups:
                group["lr"] = config.lr * (1 - len(state.history) / config.n_iters)

        # --- PPO epochs over shuffled minibatches ------------------------------------------------
        logged_sums = torch.zeros(len(PPOLosses.METRIC_NAMES), device=device)
        grad_norm_max = torch.zeros((), device=device)
        for _ in range(config.num_epochs):
            order = torch.randperm(len(batch), device=device)
            for start in range(0, config.minibatches_per_epoch * config.minibatch_size, config.minibatch_size):
                losses = objective(batch[order[start:start + config.minibatch_size]])
                losses.total().backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
                optimiser.step()
                optimiser.zero_grad(set_to_none=True)
                logged_sums += losses.metrics()
                grad_norm_max = torch.maximum(grad_norm_max, grad_norm.detach())
        state.rng_state = capture_rng()

        # --- metrics -------------------------------------------------------------------------------
        iteration = len(state.history) + 1
        if not (torch.isfinite(logged_sums).all() and torch.isfinite(grad_norm_max)):
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
            **{name: value / updates for name, value in zip(PPOLosses.METRIC_NAMES, logged_sums.tolist())},
            "grad_norm_max": grad_norm_max.item(),
            "collect_s": iteration_started - collect_started,
            "train_s": now - iteration_started,
            "frames_per_s": config.frames_per_batch / (now - collect_started),
        })
        if on_iteration is not None:
            on_iteration(state)
        if should_stop():
            break
    return state


def _expand_done_to_agents(data: TensorDictBase, reward_key: tuple[str, ...]) -> None:
    """VMAS's done is shared; GAE needs it with the reward's per-agent shape (as in the tutorial)."""
    reward_shape = data.get_item_shape(("next", *reward_key))
    for key in ("done", "terminated"):
        data.set(("next", GROUP, key), data.get(("next", key)).unsqueeze(-1).expand(reward_shape))
