"""The model seam: one policy and one critic per agent group. MAPPO and IPPO differ only in the critic's view.

Continuous actions take the tutorial's TanhNormal over the action box; discrete actions (--discrete)
a Categorical over the scenario's actions. MAPPO's centralised critic sees every agent of its own group.
"""

from __future__ import annotations

import torch
from tensordict.nn import TensorDictModule, TensorDictSequential
from tensordict.nn.distributions import NormalParamExtractor
from torchrl.envs import TransformedEnv
from torchrl.modules import MLP, MultiAgentMLP, ProbabilisticActor, TanhNormal

from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import AgentGroup, agent_groups, observation_size
from marlnav_cli.errors import ConfigError
from marlnav_cli.tanh_normal import ActionPreimage, SquashedNormal


def _mlp(
    env: TransformedEnv,
    group: AgentGroup,
    config: TrainConfig,
    device: torch.device,
    *,
    outputs: int,
    centralised: bool,
    share_params: bool,
) -> MultiAgentMLP:
    return MultiAgentMLP(
        n_agent_inputs=observation_size(env, group),
        n_agent_outputs=outputs,
        n_agents=group.n_agents,
        centralised=centralised,
        share_params=share_params,
        device=device,
        depth=config.depth,
        num_cells=config.num_cells,
        activation_class=torch.nn.Tanh,
    )


def _policy_mlp(
    env: TransformedEnv, group: AgentGroup, config: TrainConfig, device: torch.device, *, outputs: int
) -> MultiAgentMLP:
    """The policy's network, for either action kind: shared or per agent, on the agent's own observation or
    (--centralised-policy) the whole group's."""
    return _mlp(
        env,
        group,
        config,
        device,
        outputs=outputs,
        centralised=config.centralised_policy,
        share_params=config.share_policy,
    )


def build_policies(env: TransformedEnv, config: TrainConfig, device: torch.device) -> dict[str, ProbabilisticActor]:
    """A policy per group, in the env's group order (which fixes the order parameters are drawn in)."""
    return {group.name: _build_policy(env, group, config, device) for group in agent_groups(env)}


def build_critics(env: TransformedEnv, config: TrainConfig, device: torch.device) -> dict[str, TensorDictModule]:
    """Centralised over the group (MAPPO: each value sees every agent's observation) or local (IPPO)."""
    critics = {}
    for group in agent_groups(env):
        network = (
            DeepSetsCritic(observation_size(env, group), config.depth, config.num_cells, device)
            if config.critic == "deepsets"
            else _mlp(env, group, config, device, outputs=1, centralised=config.mappo, share_params=config.share_critic)
        )
        critics[group.name] = TensorDictModule(
            _scaled(network, _scalers(env, group, config, device)),
            in_keys=[group.key("observation")],
            out_keys=[group.key("state_value")],
        )
    return critics


class ObservationScaler(torch.nn.Module):
    """(observation - loc) / scale, per feature, as TorchRL's ObservationNorm (standard_normal=True)
    computes it, with the loc and scale its init_stats measured before training (observation_norm.py).

    Inside the networks rather than an env transform: collection steps VMAS directly, and evaluate, render,
    transfer and the ONNX export all run the networks, so the statistics travel with the weights (buffers
    in the safetensors file). One loc and scale per feature, shared by every agent: any team size.
    """

    def __init__(self, n_inputs: int, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("loc", torch.zeros(n_inputs, device=device))
        self.register_buffer("scale", torch.ones(n_inputs, device=device))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return (observation - self.loc) / self.scale


def _scalers(env: TransformedEnv, group: AgentGroup, config: TrainConfig, device: torch.device) -> list:
    """The observation scaler a network starts with, where --normalize-observations asks for one."""
    return [ObservationScaler(observation_size(env, group), device)] if config.normalize_observations else []


def _scaled(network: torch.nn.Module, scalers: list) -> torch.nn.Module:
    """The network, behind its observation scaler where it has one (the plain network keeps its weight names)."""
    return torch.nn.Sequential(*scalers, network) if scalers else network


def observation_scalers(module: torch.nn.Module) -> list[ObservationScaler]:
    return [layer for layer in module.modules() if isinstance(layer, ObservationScaler)]


class DeepSetsCritic(torch.nn.Module):
    """MAPPO's centralised critic for any team size: each agent's value from its own observation and the
    mean of every agent's encoding (DeepSets, Zaheer et al. 2017), so it takes any number of agents in any
    order. MultiAgentMLP's centralised critic reads exactly n_agents observations, concatenated, so a
    policy trained across team sizes needs this one (BenchMARL's Deepsets model has the same shape).

    [..., agents, observation] -> [..., agents, 1], both networks shared by every agent.
    """

    def __init__(self, n_inputs: int, depth: int, num_cells: int, device: torch.device) -> None:
        super().__init__()
        layers = {"depth": depth, "num_cells": num_cells, "activation_class": torch.nn.Tanh, "device": device}
        self.encoder = MLP(in_features=n_inputs, out_features=num_cells, activate_last_layer=True, **layers)
        self.head = MLP(in_features=n_inputs + num_cells, out_features=1, **layers)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        team = self.encoder(observation).mean(dim=-2, keepdim=True).expand(*observation.shape[:-1], -1)
        return self.head(torch.cat([observation, team], dim=-1))


def joint_actor(policies: dict[str, ProbabilisticActor]) -> TensorDictSequential:
    """Every group's policy as one module, for env.rollout."""
    return TensorDictSequential(*policies.values())


def _build_policy(
    env: TransformedEnv, group: AgentGroup, config: TrainConfig, device: torch.device
) -> ProbabilisticActor:
    action_spec = env.full_action_spec_unbatched
    action_key = group.key("action")
    scaler = _scalers(env, group, config, device)
    if config.discrete:
        net = _policy_mlp(env, group, config, device, outputs=action_spec[action_key].space.n)
        return ProbabilisticActor(
            module=TensorDictModule(
                _scaled(net, scaler),
                in_keys=[group.key("observation")],
                out_keys=[group.key("logits")],
            ),
            spec=action_spec[action_key],
            in_keys=[group.key("logits")],
            out_keys=[action_key],
            distribution_class=torch.distributions.Categorical,
            return_log_prob=True,
        )
    n_actions = action_spec[action_key].shape[-1]
    net = torch.nn.Sequential(
        *scaler,
        _policy_mlp(env, group, config, device, outputs=2 * n_actions),
        NormalParamExtractor(),
    )
    space = action_spec[action_key].space
    return ProbabilisticActor(
        module=TensorDictModule(
            net, in_keys=[group.key("observation")], out_keys=[group.key("loc"), group.key("scale")]
        ),
        spec=action_spec[action_key],
        in_keys=[group.key("loc"), group.key("scale")],
        out_keys=[action_key],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": space.low, "high": space.high},
        return_log_prob=True,
    )


def policy_network(policy: ProbabilisticActor) -> torch.nn.Module:
    """The policy's network without MultiAgentMLP's per-call parameter swap, where parameters are shared.

    With shared parameters, MultiAgentMLP swaps them into a template net on every call; its stateful net
    holds the very same Parameter objects (optimiser steps and loaded weights show through) and skips the
    swap, which was most of collection's per-step cost outside the simulator (benchmarks/hot_paths.py).
    """
    module = policy.module[0].module
    if isinstance(module, MultiAgentMLP):
        return module.get_stateful_net() if module.share_params else module
    layers = [layer.get_stateful_net() if _shared_mlp(layer) else layer for layer in module]
    return torch.nn.Sequential(*layers) if any(map(_shared_mlp, module)) else module


def _shared_mlp(layer: torch.nn.Module) -> bool:
    return isinstance(layer, MultiAgentMLP) and layer.share_params


class ContinuousPolicy:
    """The policy on plain tensors: its network, and TanhNormal's arithmetic over the action box.

    Shared by collection and the PPO loss, so both see one network and one set of bounds. Actions are
    prepared once per batch (their preimage under the tanh, see tanh_normal.py) for the loss.
    """

    def __init__(self, policy: ProbabilisticActor, action_key: tuple[str, ...], any_team_size: bool = False) -> None:
        self.network = policy_network(policy)
        space = policy.spec[action_key].space
        low, high = (_one_box(space.low), _one_box(space.high)) if any_team_size else (space.low, space.high)
        self.squash = SquashedNormal(low, high)

    def sample(self, observation: torch.Tensor) -> torch.Tensor:
        """What TanhNormal(loc, scale).sample() draws, without building the distribution each step."""
        return self.squash.sample(*self.network(observation))

    def prepare(self, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        preimage = self.squash.preimage(action)
        return preimage.value, preimage.log_det

    def log_prob(self, observation: torch.Tensor, action: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.squash.log_prob(*self.network(observation), ActionPreimage(*action))

    def log_prob_and_entropy(
        self, observation: torch.Tensor, action: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loc, scale = self.network(observation)
        log_prob = self.squash.log_prob(loc, scale, ActionPreimage(*action))
        # TanhNormal has no closed-form entropy: ClipPPOLoss estimates it from one reparameterised sample.
        return log_prob, -self.squash.rsample_log_prob(loc, scale)


class CategoricalPolicy:
    """A discrete policy on plain tensors: logits from the network, torch's Categorical on top."""

    def __init__(self, policy: ProbabilisticActor) -> None:
        self.network = policy_network(policy)

    def _distribution(self, observation: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.network(observation), validate_args=False)

    def sample(self, observation: torch.Tensor) -> torch.Tensor:
        return self._distribution(observation).sample()

    def prepare(self, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (action,)

    def log_prob(self, observation: torch.Tensor, action: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self._distribution(observation).log_prob(action[0])

    def log_prob_and_entropy(
        self, observation: torch.Tensor, action: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        distribution = self._distribution(observation)
        return distribution.log_prob(action[0]), distribution.entropy()  # closed form, as ClipPPOLoss takes it


TensorPolicy = ContinuousPolicy | CategoricalPolicy


def tensor_policy(policy: ProbabilisticActor, group: AgentGroup, any_team_size: bool = False) -> TensorPolicy:
    """The policy on plain tensors; with `any_team_size`, for teams of any size (one action box for all)."""
    if group.key("logits") in policy.module[0].out_keys:
        return CategoricalPolicy(policy)
    return ContinuousPolicy(policy, group.key("action"), any_team_size)


def _one_box(bound: torch.Tensor) -> torch.Tensor:
    """A per-agent action bound [agents, action] as the one [action] every agent has, which broadcasts over
    a team of any size."""
    if bound.dim() < 2:
        return bound
    if not (bound == bound[0]).all():
        raise ConfigError("the agents' action boxes differ, so one policy cannot act for another team size")
    return bound[0]


class TensorCritic:
    """The critic on plain tensors: [..., agents, obs] -> [..., agents, 1], as MultiAgentMLP computes it.

    With shared parameters it runs MultiAgentMLP's stateful net (same Parameter objects) instead of
    swapping parameters into a template net on each call; a shared centralised critic gives every agent
    the same value, so it is computed once per frame and expanded, as MultiAgentMLP does.
    """

    def __init__(self, critic: TensorDictModule) -> None:
        module = critic.module
        scaled = isinstance(module, torch.nn.Sequential) and isinstance(module[0], ObservationScaler)
        self.scaler = module[0] if scaled else None  # --normalize-observations
        module = module[1] if scaled else module
        self.multi_agent_mlp: MultiAgentMLP | None = module if isinstance(module, MultiAgentMLP) else None
        if self.multi_agent_mlp is None:  # a critic on plain tensors already (DeepSetsCritic)
            self.network = module
        else:
            self.network = self.multi_agent_mlp.get_stateful_net() if self.multi_agent_mlp.share_params else None

    def __call__(self, observation: torch.Tensor) -> torch.Tensor:
        if self.scaler is not None:
            observation = self.scaler(observation)
        if self.multi_agent_mlp is None:
            return self.network(observation)
        if self.network is None:
            return self.multi_agent_mlp(observation)
        if not self.multi_agent_mlp.centralized:
            return self.network(observation)
        value = self.network(observation.flatten(-2))
        return value.unsqueeze(-2).expand(*value.shape[:-1], self.multi_agent_mlp.n_agents, value.shape[-1])
