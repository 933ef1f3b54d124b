"""PPO's clipped loss on flat tensors: the terms of TorchRL's ClipPPOLoss, without its per-call TensorDicts.

Why not ClipPPOLoss itself: at the tutorial's hyperparameters (450 minibatches of 400 per iteration)
its per-call TensorDict work, TanhNormal's construction and MultiAgentMLP's parameter swap made the
update phase 1.84x the plain-torch floor, and ClipPPOLoss alone is 1.2-1.5x this loss per minibatch
(benchmarks/hot_paths.py). Here the batch is flattened once, minibatches are slices of one permutation
per epoch, the TanhNormal's arithmetic runs on plain tensors with the actions' part computed once per
batch (tanh_normal.py), and both nets run as stateful nets (models.TensorPolicy, models.TensorCritic).
tests/test_equivalence.py checks every term and every gradient against ClipPPOLoss on the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from tensordict import TensorDictBase

from marlnav_cli.envs import GROUP
from marlnav_cli.models import TensorCritic, TensorPolicy
from marlnav_cli.tanh_normal import ActionPreimage


@dataclass(frozen=True)
class PPOBatch:
    """One iteration's experience, flattened to [frames, agents, ...] contiguous tensors once."""

    observation: torch.Tensor
    action_preimage: torch.Tensor  # see tanh_normal.ActionPreimage: fixed for the batch, so computed once
    action_log_det: torch.Tensor
    log_prob: torch.Tensor  # of the action under the policy that collected it
    advantage: torch.Tensor
    value_target: torch.Tensor

    @classmethod
    @torch.no_grad()
    def from_rollout(cls, data: TensorDictBase, policy: TensorPolicy, log_prob: torch.Tensor | None = None) -> PPOBatch:
        """`data` has been through GAE. `log_prob` ([*data.batch_size, agents]) defaults to the actions'
        log-probabilities under the policy's current weights: those that collected them."""
        def flat(value: torch.Tensor) -> torch.Tensor:
            return value.reshape(-1, *value.shape[data.batch_dims:]).contiguous()

        observation = flat(data.get((GROUP, "observation")))
        preimage = policy.preimage(flat(data.get((GROUP, "action"))))
        return cls(observation=observation, action_preimage=preimage.value, action_log_det=preimage.log_det,
                   log_prob=policy.log_prob(observation, preimage) if log_prob is None else flat(log_prob),
                   advantage=flat(data.get("advantage")), value_target=flat(data.get("value_target")))

    def __len__(self) -> int:
        return self.observation.shape[0]

    def __getitem__(self, index: torch.Tensor) -> PPOBatch:
        return PPOBatch(*(getattr(self, field.name)[index] for field in fields(self)))


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
    """ClipPPOLoss's clipped surrogate + smooth-L1 critic loss + Monte-Carlo entropy bonus (one sample)."""

    def __init__(self, policy: TensorPolicy, critic: TensorCritic, *, clip_epsilon: float,
                 entropy_coeff: float) -> None:
        self.policy, self.critic = policy, critic
        epsilon = torch.tensor(clip_epsilon)  # float32 bounds, as ClipPPOLoss computes them
        self.log_ratio_bounds = ((-epsilon).log1p().item(), epsilon.log1p().item())
        self.entropy_coeff = entropy_coeff

    def __call__(self, batch: PPOBatch) -> PPOLosses:
        loc, scale = self.policy.loc_scale(batch.observation)
        squash = self.policy.squash
        log_prob = squash.log_prob(loc, scale, ActionPreimage(batch.action_preimage, batch.action_log_det))
        log_ratio = (log_prob - batch.log_prob).unsqueeze(-1)
        gain = torch.minimum(log_ratio.exp() * batch.advantage,
                             log_ratio.clamp(*self.log_ratio_bounds).exp() * batch.advantage)
        # TanhNormal has no closed-form entropy: ClipPPOLoss estimates it from one reparameterised sample.
        entropy = -squash.rsample_log_prob(loc, scale)
        value = self.critic(batch.observation)
        critic_loss = torch.nn.functional.smooth_l1_loss(batch.value_target, value)
        return PPOLosses(objective=-gain.mean(), critic=critic_loss, entropy_bonus=-self.entropy_coeff * entropy.mean(),
                         entropy=entropy.detach().mean())
