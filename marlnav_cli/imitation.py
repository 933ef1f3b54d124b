"""Copying the scenario's hand-written controller before PPO (--imitate-heuristic FRAMES).

Why: in transport the only reward is the package moving toward its goal, and agents acting at random
almost never push it the right way, so PPO from scratch never finds the reward (docs/zoo.md: every
setting tried stayed near 0 where VMAS's heuristic scores about 5). The scenario's own HeuristicPolicy
does push it: copying that first starts PPO where the reward is, and PPO then has something to improve.

The policy is fitted to the heuristic's actions by likelihood (each pulled 1% inside the action box,
where tanh's preimage is finite): its most likely action (what evaluate, render and export run) comes
to the heuristic's, and its spread narrows to how well it copies, so that PPO's sampled actions start
near the heuristic's rather than drowned in the initial noise (fitting the most likely action alone,
PPO lost the copy on transport: docs/zoo.md). The critic is fitted to TorchRL's GAE value targets on the
heuristic's episodes, recomputed every epoch (TD(lambda) evaluation of the heuristic), so that PPO's first
advantages compare with the heuristic's value rather than a random critic's. A separate Adam does this:
the training optimiser's step counts stay PPO's alone (checkpoints check them). It steps at --imitate-lr
where given: on buzz_wire the copy converged only at fast's lr 0.002, and PPO at 0.002 wrecked it in its
first iteration where PPO at 0.0003 kept it (docs/zoo.md).

With --dagger, every batch after the first is collected by the policy itself and labelled with the
heuristic's action at each state it reached (DAgger, Ross et al., 2011): a copy fitted on the heuristic's
states alone drifts off them in closed loop and never learned to come back. On transport's held-out seeds
it delivered the package in 0.598 of 1,000-step episodes, with DAgger 0.627 (reward higher on every seed;
the heuristic 0.658), and in 2,000-step episodes with DAgger 0.955 (the heuristic 0.990: docs/zoo.md).
With --dagger-aggregate the copy is fitted on every batch labelled so far, as DAgger was published, rather
than the latest batch alone, which lets it forget states its policy no longer reaches (docs/zoo.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from torchrl.objectives.value import GAE

from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import AgentGroup
from marlnav_cli.heuristics import HeuristicActor
from marlnav_cli.models import ContinuousPolicy, TensorCritic, TensorPolicy
from marlnav_cli.ppo import flat_frames
from marlnav_cli.tanh_normal import ActionPreimage

ImitationRow = dict[str, float]
INSIDE_MARGIN = 0.01  # a heuristic's full push becomes 99% of it: tanh's preimage of the bound is infinite


@dataclass(frozen=True)
class Taught:
    """Every state labelled so far with the heuristic's action (--dagger-aggregate): DAgger as Ross et al.
    wrote it fits the union of its batches, so the copy does not forget the states its policy has since left."""

    observation: torch.Tensor
    action: torch.Tensor
    target: tuple[torch.Tensor, ...]

    def joined(self, later: Taught) -> Taught:
        return Taught(
            torch.cat([self.observation, later.observation]),
            torch.cat([self.action, later.action]),
            tuple(torch.cat([kept, new]) for kept, new in zip(self.target, later.target, strict=True)),
        )


class MostLikelyActions:
    """The copy acting by its most likely action, as evaluate, render and export run it (--dagger-most-likely):
    a copy whose spread is wide visits other states under sampling than the deterministic policy gets stuck in,
    and DAgger can only teach the states it visits."""

    def __init__(self, policy: ContinuousPolicy) -> None:
        self.policy = policy

    def sample(self, observation: torch.Tensor) -> torch.Tensor:
        loc, _ = self.policy.network(observation)
        return self.policy.squash.mode(loc)


Acting = HeuristicActor | TensorPolicy | MostLikelyActions


def imitate_heuristic(
    config: TrainConfig,
    heuristic: HeuristicActor,
    collector_for: Callable[[Acting], ExperienceCollector],
    group: AgentGroup,
    actor: ContinuousPolicy,
    critic: TensorCritic,
    advantage_module: GAE,
    parameters: list[torch.nn.Parameter],
    prepare: Callable[[TensorDictBase], None],
    on_batch: Callable[[ImitationRow], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[ImitationRow]:
    """Fit `actor` to `heuristic`'s actions and `critic` to GAE's value targets over config.imitate_heuristic
    frames (whole batches): the heuristic's own episodes, or with config.dagger the policy's after the first
    batch, each run by `collector_for` the actor; `prepare` readies a batch for GAE as training does. One row
    of figures per batch. `should_stop` is asked after each batch: a copy of a million frames takes minutes,
    and Ctrl-C or a scheduler's SIGTERM must not wait for all of it."""
    heuristic_collector = collector_for(heuristic)
    policy_acting = MostLikelyActions(actor) if config.dagger_most_likely else actor
    policy_collector = collector_for(policy_acting) if config.dagger else heuristic_collector
    optimiser = torch.optim.Adam(parameters, lr=config.imitate_lr or config.lr)
    batches = math.ceil(config.imitate_heuristic / config.frames_per_batch)
    steps = batches * config.num_epochs * config.minibatches_per_epoch
    # --imitate-anneal-lr: the last steps move the copy by little, so its fit settles where the goal needs
    # precision (joint_passage's 0.01); the factor reaches 0 after the last step
    schedule = (
        torch.optim.lr_scheduler.LinearLR(optimiser, start_factor=1.0, end_factor=0.0, total_iters=steps)
        if config.imitate_anneal_lr
        else None
    )
    rows: list[ImitationRow] = []
    taught: Taught | None = None
    for batch in range(batches):
        policy_acts = config.dagger and batch > 0
        data = (policy_collector if policy_acts else heuristic_collector).collect()
        prepare(data)
        observation = flat_frames(data, data.get(group.key("observation")))
        with torch.no_grad():  # the heuristic's action where it acted, else what it would do at that state
            action = heuristic.sample(observation) if policy_acts else flat_frames(data, data.get(group.key("action")))
        done = data.get(("next", *group.key("done")))
        # The heuristic's actions pulled just inside the box: a saturated one has no finite preimage.
        inside = actor.squash.centre + (action - actor.squash.centre) * (1 - INSIDE_MARGIN)
        target = tuple(part.contiguous() for part in actor.prepare(inside))
        latest = Taught(observation, action, target)
        # DAgger as Ross et al. wrote it fits every batch labelled so far (--dagger-aggregate); the critic
        # fits the latest batch alone, whose GAE targets are the current ones
        if config.dagger and config.dagger_aggregate:
            taught = latest if taught is None else taught.joined(latest)
        copied = latest if taught is None else taught
        for _ in range(config.num_epochs):
            action_losses, critic_losses = [], []  # the last epoch's are reported: how well the fit ended
            with torch.no_grad():
                advantage_module(data)
            value_target = flat_frames(data, data.get(group.key("value_target")))
            order = torch.randperm(len(observation), device=observation.device)
            # as many minibatches as the latest batch holds, drawn from all that is taught: the same time a batch
            copied_order = order if copied is latest else torch.randperm(len(copied.observation), device=order.device)
            for start in range(0, config.minibatches_per_epoch * config.minibatch_size, config.minibatch_size):
                indices = order[start : start + config.minibatch_size]
                copied_indices = copied_order[start : start + config.minibatch_size]
                loc, scale = actor.network(copied.observation[copied_indices])
                preimage = ActionPreimage(*(part[copied_indices] for part in copied.target))
                if config.imitate_beta:
                    imitation_loss = actor.squash.beta_nll(loc, scale, preimage, config.imitate_beta).mean()
                else:
                    imitation_loss = -actor.squash.log_prob(loc, scale, preimage).mean()
                critic_loss = torch.nn.functional.smooth_l1_loss(critic(observation[indices]), value_target[indices])
                (imitation_loss + critic_loss).backward()
                torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
                optimiser.step()
                optimiser.zero_grad(set_to_none=True)
                if schedule is not None:
                    schedule.step()
                with torch.no_grad():
                    action_losses.append(
                        torch.nn.functional.mse_loss(actor.squash.mode(loc), copied.action[copied_indices])
                    )
                critic_losses.append(critic_loss.detach())
        rows.append(
            {
                "batch": batch + 1,
                "frames": (batch + 1) * config.frames_per_batch,
                "policy_acting": float(policy_acts),
                "reward_mean": data.get(("next", *group.key("episode_reward")))[done].mean().item(),
                "action_mse": torch.stack(action_losses).mean().item(),
                "loss_critic": torch.stack(critic_losses).mean().item(),
            }
        )
        if on_batch is not None:
            on_batch(rows[-1])
        if should_stop():
            break
    return rows
