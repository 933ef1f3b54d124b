"""TorchRL's TanhNormal over an action box, as plain tensor arithmetic, with the per-batch part hoisted.

TanhNormal(loc, scale, low, high) draws x ~ Normal(loc, scale) and returns centre + half_range * tanh(x).
Its log-density of an action a is Normal(loc, scale).log_prob(x) - log|d action / dx| summed over the
action's dims, where x = atanh((a - centre) / half_range) (clamped as TorchRL's SafeTanhTransform does).
In PPO the actions are data: x and the Jacobian term are fixed for a whole batch, so they are computed
once per batch here instead of in each of the 450 minibatches of an iteration, and no distribution
object is built per minibatch (TanhNormal's construction checks its bounds and builds three transforms
each time). tests/test_equivalence.py checks log-probs against TorchRL's TanhNormal and every loss term
and gradient against ClipPPOLoss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


@dataclass(frozen=True)
class ActionPreimage:
    """Actions seen from the Normal's side: x = atanh of the rescaled action, and each frame's log-Jacobian."""

    value: torch.Tensor  # [..., action dims]
    log_det: torch.Tensor  # [...]: sum over action dims of log|d action / dx|


class SquashedNormal:
    """The arithmetic of TorchRL's TanhNormal (safe tanh, affine map onto [low, high]) on plain tensors."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor) -> None:
        self.centre, self.half_range = (high + low) / 2, (high - low) / 2
        self.log_half_range = self.half_range.log().sum()
        self.tanh_limit = 1.0 - torch.finfo(torch.get_default_dtype()).resolution  # SafeTanhTransform's clamp

    def sample(self, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        squashed = torch.normal(loc, scale).tanh().clamp(-self.tanh_limit, self.tanh_limit)
        return self.centre + self.half_range * squashed

    def mode(self, loc: torch.Tensor) -> torch.Tensor:
        """TanhNormal's deterministic sample: the safe tanh of the mean, on the action box."""
        return self.centre + self.half_range * loc.tanh().clamp(-self.tanh_limit, self.tanh_limit)

    def preimage(self, action: torch.Tensor) -> ActionPreimage:
        squashed = ((action - self.centre) / self.half_range).clamp(-self.tanh_limit, self.tanh_limit)
        value = squashed.atanh()
        return ActionPreimage(value=value, log_det=self._log_det(value))

    @staticmethod
    def log_prob(loc: torch.Tensor, scale: torch.Tensor, preimage: ActionPreimage) -> torch.Tensor:
        normal = -((preimage.value - loc) ** 2) / (2 * scale**2) - scale.log() - LOG_SQRT_2PI
        return normal.sum(-1) - preimage.log_det

    @staticmethod
    def beta_nll(loc: torch.Tensor, scale: torch.Tensor, preimage: ActionPreimage, beta: float) -> torch.Tensor:
        """-log_prob per frame up to terms without parameters, each action dim's weighted by its scale^(2 beta),
        the weight held constant (beta-NLL, Seitzer et al., 2022). Plain likelihood moves loc by (x - loc) /
        scale^2, so where a fit's spread has grown its mean all but stops learning; beta = 1 moves it as
        squared error would, while scale still learns to match the remaining error."""
        normal = (preimage.value - loc) ** 2 / (2 * scale**2) + scale.log()
        return (normal * scale.detach() ** (2 * beta)).sum(-1)

    def rsample_log_prob(self, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Log-prob of one reparameterised draw: TanhNormal.rsample_and_log_prob's, same RNG use."""
        # As torch's Normal.rsample draws it: contiguous, whatever loc's strides (vmap gives others).
        noise = torch.empty(loc.shape, dtype=loc.dtype, device=loc.device).normal_()
        value = loc + noise * scale
        # (value - loc) / scale is the noise itself: its gradients cancel exactly, so it is used as is.
        normal = -0.5 * noise**2 - scale.log() - LOG_SQRT_2PI
        return normal.sum(-1) - self._log_det(value)

    def _log_det(self, value: torch.Tensor) -> torch.Tensor:
        # torch's TanhTransform.log_abs_det_jacobian, plus the affine map's constant.
        log_tanh_slope = 2.0 * (math.log(2.0) - value - torch.nn.functional.softplus(-2.0 * value))
        return log_tanh_slope.sum(-1) + self.log_half_range
