"""PPO's clipped loss on flat tensors: the terms of TorchRL's ClipPPOLoss, without its per-call TensorDicts.

Why not ClipPPOLoss itself: at the tutorial's hyperparameters (hundreds of small minibatches per
iteration) its per-call TensorDict work, TanhNormal's construction and MultiAgentMLP's parameter swap
dominate the update phase (benchmarks/hot_paths.py measures both). Here each group's batch is flattened
once, minibatches are slices of one permutation per epoch, the actions' part of the log-density is
computed once per batch (models.ContinuousPolicy.prepare), and both nets run as stateful nets.
tests/test_equivalence.py checks every term and every gradient against ClipPPOLoss on the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from torchrl.modules import ProbabilisticActor
from torchrl.objectives import ClipPPOLoss

from marlnav_cli.envs import AgentGroup
from marlnav_cli.models import TensorCritic, TensorPolicy

STANDARDISE_EPS = torch.finfo(torch.float).resolution  # ClipPPOLoss's floor on the advantages' std


def flat_frames(data: TensorDictBase, value: torch.Tensor) -> torch.Tensor:
    """A rollout's [envs, steps, ...] entry as one contiguous [frames, ...] tensor."""
    return value.reshape(-1, *value.shape[data.batch_dims :]).contiguous()


@dataclass(frozen=True)
class PPOBatch:
    """One group's experience in an iteration, flattened to [frames, agents, ...] contiguous tensors once."""

    observation: torch.Tensor
    action: tuple[torch.Tensor, ...]  # as the policy prepared it (policy.prepare): fixed for the batch
    log_prob: torch.Tensor  # of the action under the policy that collected it
    advantage: torch.Tensor
    value_target: torch.Tensor

    @classmethod
    @torch.no_grad()
    def from_rollout(
        cls, data: TensorDictBase, group: AgentGroup, policy: TensorPolicy, log_prob: torch.Tensor | None = None
    ) -> PPOBatch:
        """`data` has been through GAE. `log_prob` ([*data.batch_size, agents]) defaults to the actions'
        log-probabilities under the policy's current weights: those that collected them."""

        observation = flat_frames(data, data.get(group.key("observation")))
        action = policy.prepare(flat_frames(data, data.get(group.key("action"))))
        return cls(
            observation=observation,
            action=action,
            log_prob=policy.log_prob(observation, action) if log_prob is None else flat_frames(data, log_prob),
            advantage=flat_frames(data, data.get(group.key("advantage"))),
            value_target=flat_frames(data, data.get(group.key("value_target"))),
        )

    def __len__(self) -> int:
        return self.observation.shape[0]

    def __getitem__(self, index: torch.Tensor) -> PPOBatch:
        return PPOBatch(
            self.observation[index],
            tuple(part[index] for part in self.action),
            self.log_prob[index],
            self.advantage[index],
            self.value_target[index],
        )


@dataclass(frozen=True)
class PPOLosses:
    objective: torch.Tensor
    critic: torch.Tensor
    entropy_bonus: torch.Tensor  # -entropy_coeff * entropy, as ClipPPOLoss's loss_entropy
    entropy: torch.Tensor  # detached, for the curves

    METRIC_NAMES = ("loss_objective", "loss_critic", "loss_entropy", "entropy")  # ClipPPOLoss's names

    def total(self) -> torch.Tensor:
        return self.objective + self.critic + self.entropy_bonus

    def metrics(self) -> torch.Tensor:
        """The four terms in METRIC_NAMES order, detached: summed over an iteration without a sync."""
        return torch.stack([self.objective, self.critic, self.entropy_bonus, self.entropy]).detach()


class PPOObjective:
    """ClipPPOLoss's clipped surrogate + smooth-L1 critic loss + entropy bonus, for one group; with
    `normalize_advantage`, its standardisation of the minibatch's advantages over every dimension."""

    def __init__(
        self,
        policy: TensorPolicy,
        critic: TensorCritic,
        *,
        clip_epsilon: float,
        entropy_coeff: float,
        normalize_advantage: bool = False,
    ) -> None:
        self.policy, self.critic = policy, critic
        epsilon = torch.tensor(clip_epsilon)  # float32 bounds, as ClipPPOLoss computes them
        self.log_ratio_bounds = ((-epsilon).log1p().item(), epsilon.log1p().item())
        self.entropy_coeff = entropy_coeff
        self.normalize_advantage = normalize_advantage

    def __call__(self, batch: PPOBatch) -> PPOLosses:
        log_prob, entropy = self.policy.log_prob_and_entropy(batch.observation, batch.action)
        log_ratio = (log_prob - batch.log_prob).unsqueeze(-1)
        advantage = batch.advantage
        if self.normalize_advantage and advantage.numel() > 1:
            advantage = (advantage - advantage.mean()) / advantage.std().clamp_min(STANDARDISE_EPS)
        gain = torch.minimum(log_ratio.exp() * advantage, log_ratio.clamp(*self.log_ratio_bounds).exp() * advantage)
        value = self.critic(batch.observation)
        critic_loss = torch.nn.functional.smooth_l1_loss(batch.value_target, value)
        return PPOLosses(
            objective=-gain.mean(),
            critic=critic_loss,
            entropy_bonus=-self.entropy_coeff * entropy.mean(),
            entropy=entropy.detach().mean(),
        )


def clip_ppo_loss_for(
    policy: ProbabilisticActor,
    critic: TensorDictModule,
    group: AgentGroup,
    *,
    clip_epsilon: float,
    entropy_coeff: float,
    normalize_advantage: bool = False,
) -> ClipPPOLoss:
    """TorchRL's ClipPPOLoss keyed to one group, set up as PPOObjective computes it: the reference the
    equivalence tests and the hot-path benchmark hold PPOObjective against."""
    reference = ClipPPOLoss(
        actor_network=policy,
        critic_network=critic,
        clip_epsilon=clip_epsilon,
        entropy_coeff=entropy_coeff,
        normalize_advantage=normalize_advantage,
    )
    reference.set_keys(
        value=group.key("state_value"),
        action=group.key("action"),
        sample_log_prob=group.key("action_log_prob"),
        advantage=group.key("advantage"),
        value_target=group.key("value_target"),
        reward=group.key("reward"),
        done=group.key("done"),
        terminated=group.key("terminated"),
    )
    return reference
