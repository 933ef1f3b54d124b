"""The algorithm seam: MAPPO/IPPO training, readable top to bottom (CleanRL style)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from torchrl.envs import RewardScaling, TransformedEnv
from torchrl.modules import ProbabilisticActor
from torchrl.objectives.value import GAE

from marlnav_cli.checkpoint import (
    OPTIMIZER_PREFIX,
    Checkpoint,
    load_optimizer,
    load_weights,
    module_tensors,
    optimizer_tensors,
    rng_state,
    weight_prefixes,
)
from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig
from marlnav_cli.curriculum import stage_arguments, stage_of
from marlnav_cli.envs import AgentGroup, agent_groups, group_layout, make_env, observation_size
from marlnav_cli.errors import CheckpointError, ConfigError, MarlnavError, TrainingDiverged
from marlnav_cli.heuristics import heuristic_to_imitate
from marlnav_cli.imitation import Acting, ImitationRow, imitate_heuristic
from marlnav_cli.models import TensorCritic, build_critics, build_policies, tensor_policy
from marlnav_cli.observation_norm import measure_observation_statistics, set_observation_statistics
from marlnav_cli.ppo import PPOBatch, PPOLosses, PPOObjective
from marlnav_cli.rng import capture_rng, restore_rng


@dataclass
class TrainState:
    """Everything an iteration boundary holds: modules, optimiser, RNG state and per-iteration metrics.

    Every iteration starts all envs from a reset, so no simulator state crosses the boundary: saving
    this is enough to resume bit-exactly.
    """

    config: TrainConfig
    groups: dict[str, list[str]]  # group name -> agent names, as the env built them
    policies: dict[str, ProbabilisticActor]
    critics: dict[str, TensorDictModule]
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
        tensors: dict[str, torch.Tensor] = {}
        for group, (policy_prefix, critic_prefix) in weight_prefixes(list(self.groups)).items():
            tensors.update(module_tensors(policy_prefix, self.policies[group]))
            tensors.update(module_tensors(critic_prefix, self.critics[group]))
        return {**tensors, **optimizer_tensors(self.optimiser), **self.rng_state}


IterationCallback = Callable[[TrainState], None]


def train(
    config: TrainConfig,
    device: torch.device,
    on_iteration: IterationCallback | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    resume: Checkpoint | None = None,
    on_imitation: Callable[[ImitationRow], None] | None = None,
) -> TrainState:
    """Run PPO until config.total_frames: collection, GAE, then config.num_epochs of minibatch updates.

    `should_stop` is asked after each iteration (and each batch of a copy), so an interrupt never leaves
    half-updated weights.
    With `resume`, training continues from that checkpoint's weights, optimiser, RNG and metrics.
    A fresh run with config.imitate_heuristic first copies the scenario's heuristic (imitation.py).
    """
    # --- seeding, env, models, loss, optimiser ---------------------------------------------------
    started = time.perf_counter()  # wall time covers set-up too, as the tutorial's total does
    torch.manual_seed(config.seed)
    env = make_env(config, num_envs=config.num_envs, seed=config.seed, device=device)
    groups = agent_groups(env)
    state = _build_state(config, env, device)
    policies, critics, optimiser = state.policies, state.critics, state.optimiser
    group_parameters = {
        group.name: [*policies[group.name].parameters(), *critics[group.name].parameters()] for group in groups
    }
    if resume is not None:
        _restore(state, resume)
    elif config.normalize_observations:  # measured once, then kept with the weights (resume restores them)
        statistics = measure_observation_statistics(config, device)
        set_observation_statistics({name: [policies[name], critics[name]] for name in policies}, statistics)
    # One network and action box per group, shared by collection and the loss.
    actors = {group.name: tensor_policy(policies[group.name], group, bool(config.team_sizes)) for group in groups}
    objectives = {
        group.name: PPOObjective(
            actors[group.name],
            TensorCritic(critics[group.name]),
            clip_epsilon=config.clip_epsilon,
            entropy_coeff=config.entropy_coeff,
            normalize_advantage=config.normalize_advantage,
        )
        for group in groups
    }
    # Across team sizes, GAE reads values through the size-free TensorCritic (MultiAgentMLP checks its size).
    value_networks = {
        group.name: TensorDictModule(
            TensorCritic(critics[group.name]), in_keys=[group.key("observation")], out_keys=[group.key("state_value")]
        )
        if config.team_sizes
        else critics[group.name]
        for group in groups
    }
    advantage_modules = {group.name: _advantage_module(config, group, value_networks[group.name]) for group in groups}
    reward_scalers = {
        group.name: RewardScaling(loc=0.0, scale=config.reward_scale, in_keys=[("next", *group.key("reward"))])
        for group in groups
        if config.reward_scale != 1.0
    }

    def prepare(data: TensorDictBase) -> None:
        """A batch readied for GAE: done per agent, rewards scaled (after episode_reward was summed, so
        reported rewards stay unscaled)."""
        for group in groups:  # named as every team size's and stage's groups are
            _expand_done_to_agents(data, group)
            if group.name in reward_scalers:
                reward_scalers[group.name](data)

    if resume is None and config.imitate_heuristic:
        group = groups[0]
        heuristic = heuristic_to_imitate(config)

        def collector_for(policy: Acting) -> ExperienceCollector:
            return ExperienceCollector(
                env, {group.name: policy}, steps=config.max_steps, bootstrap_time_limit=config.bootstrap_time_limit
            )

        imitate_heuristic(
            config,
            heuristic,
            collector_for,
            group,
            actors[group.name],  # type: ignore[arg-type]  # continuous: config.validate refuses --discrete
            objectives[group.name].critic,
            advantage_modules[group.name],
            group_parameters[group.name],
            prepare,
            on_imitation,
            should_stop,
        )
        if should_stop():  # stopped during the copy: saved as it is, with no PPO iteration
            return state

    # --- collector: every iteration starts each env from a reset (see TrainState) ------------------
    # One env per team size and curriculum stage (a single one without either), each collecting a whole
    # batch in its turn; the task's own env is the last stage's at n_agents.
    stages = stage_arguments(config.curriculum, config.scenario_args)
    collectors = {
        (size, stage): ExperienceCollector(
            env
            if size == config.n_agents and stage == len(stages) - 1
            else _other_env(config, size, stages[stage], env, device),
            actors,
            steps=config.max_steps,
            bootstrap_time_limit=config.bootstrap_time_limit,
        )
        for size in config.team_size_list
        for stage in range(len(stages))
    }
    restore_rng(state.rng_state)
    wall_before = state.history[-1]["wall_s"] if state.history else 0.0

    while len(state.history) < config.n_iters:
        collect_started = time.perf_counter()
        team_size = _team_size(config, iteration=len(state.history))
        stage = stage_of(len(state.history), config.n_iters, len(stages))
        collector = collectors[(team_size, stage)]
        data = collector.collect()

        # --- advantages, per group ---------------------------------------------------------------
        iteration_started = time.perf_counter()
        batches = {}
        prepare(data)
        for group in collector.groups:
            with torch.no_grad():
                advantage_modules[group.name](data)
            batches[group.name] = PPOBatch.from_rollout(data, group, actors[group.name])
        # Schedules decay linearly to 0 over the run; functions of the iteration, so resume-safe.
        remaining = 1 - len(state.history) / config.n_iters
        if config.anneal_lr:
            for param_group in optimiser.param_groups:
                param_group["lr"] = config.lr * remaining
        if config.anneal_entropy:
            for objective in objectives.values():
                objective.entropy_coeff = config.entropy_coeff * remaining

        # --- PPO epochs over shuffled minibatches: every group on the same frames ----------------
        logged_sums = {group.name: torch.zeros(len(PPOLosses.METRIC_NAMES), device=device) for group in groups}
        grad_norm_max = torch.zeros((), device=device)
        frames = len(batches[groups[0].name])
        for _ in range(config.num_epochs):
            order = torch.randperm(frames, device=device)
            for start in range(0, config.minibatches_per_epoch * config.minibatch_size, config.minibatch_size):
                indices = order[start : start + config.minibatch_size]
                losses = {name: objectives[name](batch[indices]) for name, batch in batches.items()}
                sum(group_losses.total() for group_losses in losses.values()).backward()
                for name, group_losses in losses.items():
                    # Each group's gradient clipped on its own: one team's large gradient must not shrink another's.
                    grad_norm = torch.nn.utils.clip_grad_norm_(group_parameters[name], config.max_grad_norm)
                    grad_norm_max = torch.maximum(grad_norm_max, grad_norm.detach())
                    logged_sums[name] += group_losses.metrics()
                optimiser.step()
                optimiser.zero_grad(set_to_none=True)
        state.rng_state = capture_rng()

        # --- metrics -------------------------------------------------------------------------------
        iteration = len(state.history) + 1
        totals = torch.stack(list(logged_sums.values()))
        if not (torch.isfinite(totals).all() and torch.isfinite(grad_norm_max)):
            raise TrainingDiverged(f"loss or gradient became non-finite at iteration {iteration}")
        updates = config.num_epochs * config.minibatches_per_epoch
        now = time.perf_counter()
        episode_rewards = {
            group.name: data.get(("next", *group.key("episode_reward")))[data.get(("next", *group.key("done")))]
            for group in groups
        }
        state.history.append(
            {
                "iteration": iteration,
                **({"team_size": team_size} if config.team_sizes else {}),
                **({"curriculum_stage": stage} if config.curriculum else {}),
                "frames": iteration * config.frames_per_batch,
                "wall_s": wall_before + now - started,
                **_reward_metrics(torch.cat(list(episode_rewards.values()))),
                **_loss_metrics(totals.sum(dim=0), updates, len(groups)),
                "grad_norm_max": grad_norm_max.item(),
                "collect_s": iteration_started - collect_started,
                "train_s": now - iteration_started,
                "frames_per_s": config.frames_per_batch / (now - collect_started),
            }
        )
        if len(groups) > 1:  # each team's own figures too: in a competitive scenario the mean mixes them
            for group in groups:
                state.history[-1].update(
                    {
                        f"{group.name}/{name}": value
                        for name, value in {
                            **_reward_metrics(episode_rewards[group.name]),
                            **_loss_metrics(logged_sums[group.name], updates, 1),
                        }.items()
                    }
                )
        if on_iteration is not None:
            on_iteration(state)
        if should_stop():
            break
    return state


def _team_size(config: TrainConfig, *, iteration: int) -> int:
    """The team size an iteration collects at: in turn, or drawn from a generator of the seed and the
    iteration alone (so resuming draws the same sizes, and the global RNG is not touched)."""
    sizes = config.team_size_list
    if config.team_mix == "cycle" or len(sizes) == 1:
        return sizes[iteration % len(sizes)]
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + iteration)
    return sizes[int(torch.randint(len(sizes), (1,), generator=generator))]


def _other_env(
    config: TrainConfig, size: int, scenario_args: dict[str, Any], trained: TransformedEnv, device: torch.device
) -> TransformedEnv:
    """The env of another team size or curriculum stage, or one line saying why the shared policy cannot
    act in it."""
    other = dataclasses.replace(config, n_agents=size, team_sizes="", curriculum="", scenario_args=scenario_args)
    env = make_env(other, num_envs=config.num_envs, seed=config.seed, device=device)
    for group, trained_group in zip(agent_groups(env), agent_groups(trained)):
        size_seen, trained_seen = observation_size(env, group), observation_size(trained, trained_group)
        if size_seen != trained_seen:
            raise ConfigError(
                f"with {size} agents and {scenario_args or 'its default arguments'} an agent of "
                f"{config.scenario!r} observes {size_seen} numbers, with {config.n_agents} agents and the "
                f"task's arguments {trained_seen}: one policy cannot read both"
            )
    return env


def _build_state(config: TrainConfig, env: TransformedEnv, device: torch.device) -> TrainState:
    """Policies, critics and their optimiser, freshly initialised from the current RNG."""
    policies = build_policies(env, config, device)
    critics = build_critics(env, config, device)
    # Policies first, then critics: the order ClipPPOLoss gave with one group, so old checkpoints resume.
    parameters = [p for policy in policies.values() for p in policy.parameters()] + [
        p for critic in critics.values() for p in critic.parameters()
    ]
    # Fused Adam: one kernel over all parameters instead of small ops per tensor (docs/benchmarks.md).
    optimiser = torch.optim.Adam(parameters, lr=config.lr, fused=device.type in ("cpu", "cuda"))
    return TrainState(config=config, groups=group_layout(env), policies=policies, critics=critics, optimiser=optimiser)


def _restore(state: TrainState, resume: Checkpoint) -> None:
    resume.check_groups(state.groups)
    for group, (policy_prefix, critic_prefix) in weight_prefixes(list(state.groups)).items():
        load_weights(state.policies[group], resume, policy_prefix)
        load_weights(state.critics[group], resume, critic_prefix)
    load_optimizer(state.optimiser, resume)
    state.history = list(resume.history)
    state.rng_state = rng_state(resume)


def check_resumable(resume: Checkpoint) -> None:
    """Load everything a resume would into scratch modules on the CPU, after checking that the summary,
    the history and the optimiser's step counts tell one story: a bad part of the checkpoint is refused
    before any output is touched, not halfway into a run."""
    _check_records_agree(resume)
    cpu = torch.device("cpu")
    with torch.random.fork_rng(devices=[]):
        env = make_env(resume.config, num_envs=1, seed=resume.config.seed, device=cpu)
        _restore(_build_state(resume.config, env, cpu), resume)
        env.close()


def training_damage(checkpoint: Checkpoint) -> str | None:
    """Why this checkpoint could not be resumed, or None: what commands that only run the policy warn
    about. A policy-only file (from export) has no training part, so nothing in it is damaged."""
    if checkpoint.summary.get("policy_only"):
        return None
    try:
        check_resumable(checkpoint)
    except MarlnavError as error:
        return str(error)
    return None


def _check_records_agree(resume: Checkpoint) -> None:
    """The summary, the history and Adam's step counts agree: frames are whole batches, one record per
    iteration, and every parameter stepped once per minibatch of every epoch of every iteration."""
    config, history, path = resume.config, resume.history, resume.path
    for row in history:
        if row["frames"] != row["iteration"] * config.frames_per_batch:
            raise CheckpointError(
                f"{path} is inconsistent: its history's iteration {row['iteration']} records {row['frames']} "
                f"frames, not {row['iteration']} batches of {config.frames_per_batch}"
            )
    told = {
        "frames": history[-1]["frames"] if history else 0,
        "iterations": len(history),
        "final_reward": history[-1]["reward_mean"] if history else None,
    }
    for key, value in told.items():
        if key in resume.summary and resume.summary[key] != value:
            raise CheckpointError(
                f"{path} is inconsistent: its summary says {key} {resume.summary[key]!r}, its history {value!r}"
            )
    updates = len(history) * config.num_epochs * config.minibatches_per_epoch
    for name, tensor in resume.tensors.items():
        if not name.startswith(OPTIMIZER_PREFIX):
            continue
        if name.endswith(".step") and not (tensor.numel() == 1 and float(tensor.reshape(())) == updates):
            raise CheckpointError(
                f"{path} is inconsistent: its optimiser state {name} counts {tensor.reshape(-1)[:1].tolist()} steps, "
                f"its history {updates} ({len(history)} iterations x {config.num_epochs} epochs x "
                f"{config.minibatches_per_epoch} minibatches)"
            )
        if name.endswith(".exp_avg_sq") and tensor.is_floating_point() and (tensor < 0).any():
            raise CheckpointError(f"{path}: {name} holds negative values (Adam's second moment cannot)")


def _advantage_module(config: TrainConfig, group: AgentGroup, critic: TensorDictModule) -> GAE:
    advantage_module = GAE(gamma=config.gamma, lmbda=config.lmbda, value_network=critic)
    advantage_module.set_keys(
        reward=group.key("reward"),
        value=group.key("state_value"),
        done=group.key("done"),
        terminated=group.key("terminated"),
        advantage=group.key("advantage"),
        value_target=group.key("value_target"),
    )
    return advantage_module


def _reward_metrics(episode_rewards: torch.Tensor) -> dict[str, float]:
    """Training episodes' rewards, per agent, of the episodes that ended in this batch."""
    return {
        "reward_mean": episode_rewards.mean().item(),
        "reward_min": episode_rewards.min().item(),
        "reward_max": episode_rewards.max().item(),
    }


def _loss_metrics(sums: torch.Tensor, updates: int, n_groups: int) -> dict[str, float]:
    """Mean per update of the loss terms summed over groups (what the optimiser minimised); entropy
    averaged over groups."""
    values = {name: value / updates for name, value in zip(PPOLosses.METRIC_NAMES, sums.tolist())}
    values["entropy"] /= n_groups
    return values


def _expand_done_to_agents(data: TensorDictBase, group: AgentGroup) -> None:
    """VMAS's done is shared; GAE needs it with the reward's per-agent shape (as in the tutorial)."""
    reward_shape = data.get_item_shape(("next", *group.key("reward")))
    for key in ("done", "terminated"):
        data.set(("next", *group.key(key)), data.get(("next", key)).unsqueeze(-1).expand(reward_shape))
