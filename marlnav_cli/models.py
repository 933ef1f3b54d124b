"""The model seam: the tutorial's policy and critic. MAPPO and IPPO differ only in the critic's view."""

from __future__ import annotations

import torch
from tensordict.nn import TensorDictModule
from tensordict.nn.distributions import NormalParamExtractor
from torchrl.envs import TransformedEnv
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import GROUP, OBSERVATION_KEY, observation_size

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


def policy_network(policy: ProbabilisticActor) -> torch.nn.Module:
    """The policy's own network, observation -> (loc, scale), without the TensorDict wrappers.

    With shared parameters, MultiAgentMLP swaps them into a template net on every call; its stateful
    net holds the very same Parameter objects (so optimiser steps and loaded weights show through) and
    skips the swap, which was 40% of collection's per-step cost outside the simulator
    (benchmarks/hot_paths.py).
    """
    multi_agent_mlp, param_extractor = policy.module[0].module
    if multi_agent_mlp.share_params:
        return torch.nn.Sequential(multi_agent_mlp.get_stateful_net(), param_extractor)
    return policy.module[0].module


def action_bounds(policy: ProbabilisticActor) -> tuple[torch.Tensor, torch.Tensor]:
    """Low and high of the action space the policy's TanhNormal is squashed into."""
    space = policy.spec[(GROUP, "action")].space
    return space.low, space.high
