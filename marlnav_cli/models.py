"""The model seam: the tutorial's policy and critic. MAPPO and IPPO differ only in the critic's view."""

from __future__ import annotations

import torch
from tensordict.nn import TensorDictModule
from tensordict.nn.distributions import NormalParamExtractor
from torchrl.envs import TransformedEnv
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import GROUP, OBSERVATION_KEY, observation_size
from marlnav_cli.tanh_normal import ActionPreimage, SquashedNormal

STATE_VALUE_KEY = (GROUP, "state_value")


def build_policy(env: TransformedEnv, config: TrainConfig, device: torch.device) -> ProbabilisticActor:
    """Per-agent MLP giving loc and scale of a TanhNormal bounded by the action spec."""
    action_spec = env.full_action_spec_unbatched
    n_actions = action_spec[env.action_key].shape[-1]
    net = torch.nn.Sequential(
        MultiAgentMLP(
            n_agent_inputs=observation_size(env),
            n_agent_outputs=2 * n_actions,
            n_agents=config.n_agents,
            centralised=False,
            share_params=config.share_policy,
            device=device,
            depth=config.depth,
            num_cells=config.num_cells,
            activation_class=torch.nn.Tanh,
        ),
        NormalParamExtractor(),
    )
    space = action_spec[env.action_key].space
    return ProbabilisticActor(
        module=TensorDictModule(net, in_keys=[OBSERVATION_KEY], out_keys=[(GROUP, "loc"), (GROUP, "scale")]),
        spec=action_spec,
        in_keys=[(GROUP, "loc"), (GROUP, "scale")],
        out_keys=[env.action_key],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": space.low, "high": space.high},
        return_log_prob=True,
    )


def build_critic(env: TransformedEnv, config: TrainConfig, device: torch.device) -> TensorDictModule:
    """Centralised (MAPPO: each value sees every agent's observation) or local (IPPO)."""
    net = MultiAgentMLP(
        n_agent_inputs=observation_size(env),
        n_agent_outputs=1,
        n_agents=config.n_agents,
        centralised=config.mappo,
        share_params=config.share_critic,
        device=device,
        depth=config.depth,
        num_cells=config.num_cells,
        activation_class=torch.nn.Tanh,
    )
    return TensorDictModule(net, in_keys=[OBSERVATION_KEY], out_keys=[STATE_VALUE_KEY])


class TensorPolicy:
    """The policy on plain tensors: its network, and TanhNormal's arithmetic over the action box.

    Shared by collection and the PPO loss, so both see one network and one set of bounds. With shared
    parameters, MultiAgentMLP swaps them into a template net on every call; its stateful net holds the
    very same Parameter objects (optimiser steps and loaded weights show through) and skips the swap,
    which was 40% of collection's per-step cost outside the simulator (benchmarks/hot_paths.py).
    """

    def __init__(self, policy: ProbabilisticActor) -> None:
        multi_agent_mlp, param_extractor = policy.module[0].module
        self.network = (torch.nn.Sequential(multi_agent_mlp.get_stateful_net(), param_extractor)
                        if multi_agent_mlp.share_params else policy.module[0].module)
        space = policy.spec[(GROUP, "action")].space
        self.squash = SquashedNormal(space.low, space.high)

    def loc_scale(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network(observation)

    def sample(self, observation: torch.Tensor) -> torch.Tensor:
        """What TanhNormal(loc, scale).sample() draws, without building the distribution each step."""
        return self.squash.sample(*self.network(observation))

    def preimage(self, action: torch.Tensor) -> ActionPreimage:
        return self.squash.preimage(action)

    def log_prob(self, observation: torch.Tensor, action: ActionPreimage) -> torch.Tensor:
        return self.squash.log_prob(*self.network(observation), action)


class TensorCritic:
    """The critic on plain tensors: [..., agents, obs] -> [..., agents, 1], as MultiAgentMLP computes it.

    With shared parameters it runs MultiAgentMLP's stateful net (same Parameter objects) instead of
    swapping parameters into a template net on each call; a shared centralised critic gives every agent
    the same value, so it is computed once per frame and expanded, as MultiAgentMLP does.
    """

    def __init__(self, critic: TensorDictModule) -> None:
        self.multi_agent_mlp: MultiAgentMLP = critic.module
        self.network = self.multi_agent_mlp.get_stateful_net() if self.multi_agent_mlp.share_params else None

    def __call__(self, observation: torch.Tensor) -> torch.Tensor:
        if self.network is None:
            return self.multi_agent_mlp(observation)
        if not self.multi_agent_mlp.centralized:
            return self.network(observation)
        value = self.network(observation.flatten(-2))
        return value.unsqueeze(-2).expand(*value.shape[:-1], self.multi_agent_mlp.n_agents, value.shape[-1])
