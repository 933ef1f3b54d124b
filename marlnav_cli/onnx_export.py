"""The deterministic policy as an ONNX model, refused unless onnxruntime acts exactly like marlnav.

One model for every agent group: an input `observation_<group>` [batch, agents, observation] and an
output `action_<group>` per group ([batch, agents, action] in the env's action box, or [batch, agents]
action indices with --discrete). The batch axis is dynamic, and so is the agent axis of a shared policy
(one network for every agent, so it can act for any team size). The model's metadata carries the
config, the layout (group inputs, VMAS agent order, sizes), the action bounds and marlnav's version:
marlnav_cli/onnx_runner.py needs nothing else to drive VMAS with it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from marlnav_cli import __version__
from marlnav_cli.envs import AgentGroup, agent_groups, make_env
from marlnav_cli.errors import ConfigError, MarlnavError, install_hint
from marlnav_cli.experiment import LoadedPolicy, load_policy
from marlnav_cli.files import atomic_output
from marlnav_cli.models import policy_network
from marlnav_cli.scenarios import end_meaning
from marlnav_cli.tanh_normal import SquashedNormal

PARITY_TOLERANCE = 1e-5  # largest absolute difference in any action component
PARITY_ENVS, PARITY_STEPS = 64, 100  # per kind of rollout (policy and random): 12,800 real frames
# Real observations scaled up: inputs beyond what rollouts reach, where the policy's actions saturate at the
# box edges and where float differences between runtimes would show first.
PARITY_SCALES = (1.0, 4.0, 16.0)
EDGE_MARGIN = 0.01  # an action within 1% of the box's width of a bound counts as at the edge


class ExportError(MarlnavError):
    """The exported model does not act like marlnav's policy."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    size_bytes: int
    observations_checked: int
    max_abs_difference: float
    actions_at_edge: float  # share of continuous action components within EDGE_MARGIN of a bound
    team_sizes_checked: list[int]  # the trained team sizes, each checked for parity


class DeterministicPolicy(torch.nn.Module):
    """Every group's observations in, its deterministic actions out: TanhNormal's deterministic sample
    (the tanh of the mean, on the action box) or the most likely discrete action."""

    def __init__(self, loaded: LoadedPolicy, groups: list[AgentGroup]) -> None:
        super().__init__()
        self.discrete = loaded.config.discrete
        self.networks = torch.nn.ModuleList(policy_network(loaded.policies[group.name]) for group in groups)
        self.boxes = [None if self.discrete else SquashedNormal(*_agent_bounds(loaded, group)) for group in groups]
        # A shared network with the same box for every agent acts for any number of agents.
        self.any_team_size = [
            loaded.config.share_policy and (box is None or box.centre.dim() == 1) for box in self.boxes
        ]

    def forward(self, *observations: torch.Tensor) -> tuple[torch.Tensor, ...]:
        actions = []
        for network, box, observation in zip(self.networks, self.boxes, observations):
            if box is None:
                actions.append(network(observation).argmax(dim=-1))
            else:
                actions.append(box.mode(network(observation)[0]))
        return tuple(actions)


def _bounds(loaded: LoadedPolicy, group: AgentGroup) -> tuple[torch.Tensor, torch.Tensor]:
    space = loaded.policies[group.name].spec[group.key("action")].space
    return space.low, space.high


def _agent_bounds(loaded: LoadedPolicy, group: AgentGroup) -> tuple[torch.Tensor, torch.Tensor]:
    """The group's action box: [action] where every agent has the same one, else [agents, action]."""
    low, high = _bounds(loaded, group)
    if bool((low == low[0]).all() and (high == high[0]).all()):
        return low[0], high[0]
    return low, high


def check_onnx_installed() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError(f"ONNX export needs onnx, onnxruntime and onnxscript: {install_hint('export')}") from None


def export_onnx(checkpoint: Path, out: Path) -> ExportReport:
    """Export, then run the model in onnxruntime on observations from real rollouts and compare its
    actions with marlnav's; above PARITY_TOLERANCE nothing is written."""
    check_onnx_installed()
    loaded = load_policy(checkpoint, device_name="cpu")
    env = make_env(loaded.config, num_envs=PARITY_ENVS, seed=loaded.config.seed, device=torch.device("cpu"))
    groups = agent_groups(env)
    model = DeterministicPolicy(loaded, groups).eval()
    observations = _parity_observations(env, loaded)
    with atomic_output(out) as temporary:
        _write_model(model, loaded, groups, observations, temporary)
        expected = _marlnav_actions(loaded, groups, observations)
        difference = _largest_difference(_onnx_actions(temporary, groups, observations), expected)
        checked = observations[0].shape[0]
        # A policy trained across team sizes: the same model (its agent axis is dynamic) at each other size.
        for size in loaded.config.team_size_list:
            if size != loaded.config.n_agents:
                at_size = load_policy(checkpoint, device_name="cpu", n_agents=size)
                size_env = make_env(at_size.config, num_envs=PARITY_ENVS, seed=at_size.config.seed, device=env.device)
                size_groups = agent_groups(size_env)
                size_observations = _parity_observations(size_env, at_size)
                difference = max(
                    difference,
                    _largest_difference(
                        _onnx_actions(temporary, size_groups, size_observations),
                        _marlnav_actions(at_size, size_groups, size_observations),
                    ),
                )
                checked += size_observations[0].shape[0]
        if not difference <= PARITY_TOLERANCE:
            raise ExportError(
                f"the ONNX model's actions differ from marlnav's by up to {difference:.3g} "
                f"(tolerance {PARITY_TOLERANCE}); nothing written"
            )
    edge = 0.0 if loaded.config.discrete else _share_at_edge(loaded, groups, expected)
    return ExportReport(
        path=out,
        size_bytes=out.stat().st_size,
        observations_checked=checked,
        team_sizes_checked=loaded.config.team_size_list,
        max_abs_difference=difference,
        actions_at_edge=edge,
    )


def _largest_difference(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    return max((a.double() - e.double()).abs().max().item() for a, e in zip(actual, expected))


def _parity_observations(env: Any, loaded: LoadedPolicy) -> list[torch.Tensor]:
    """Observations from the stochastic policy's rollouts and from random actions', as they are and scaled
    up (PARITY_SCALES), per group: [frames, agents, obs]."""
    torch.manual_seed(loaded.config.seed)
    batches = []
    with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
        for actor in (loaded.actor, None):
            batches.append(env.rollout(PARITY_STEPS, policy=actor, break_when_any_done=False))
    return [
        torch.cat(
            [scale * batch.get(group.key("observation")).flatten(0, 1) for scale in PARITY_SCALES for batch in batches]
        )
        for group in agent_groups(env)
    ]


def _marlnav_actions(
    loaded: LoadedPolicy, groups: list[AgentGroup], observations: list[torch.Tensor]
) -> list[torch.Tensor]:
    """What `marlnav evaluate` does: the TorchRL actor under deterministic exploration."""
    from tensordict import TensorDict

    data = TensorDict(
        {group.name: {"observation": obs} for group, obs in zip(groups, observations)},
        batch_size=observations[0].shape[:1],
    )
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        acted = loaded.actor(data)
    return [acted.get(group.key("action")) for group in groups]


def _write_model(
    model: DeterministicPolicy,
    loaded: LoadedPolicy,
    groups: list[AgentGroup],
    observations: list[torch.Tensor],
    path: Path,
) -> None:
    import onnx

    batch = torch.export.Dim("batch")
    dynamic = [
        {0: batch, 1: torch.export.Dim(f"agents_{g.name}", min=1)} if any_size else {0: batch}
        for g, any_size in zip(groups, model.any_team_size)
    ]
    examples = tuple(obs[:8] for obs in observations)
    # The exporter reports progress on stdout and warns about absent optional packages (torchvision).
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                examples,
                str(path),
                input_names=[f"observation_{g.name}" for g in groups],
                output_names=[f"action_{g.name}" for g in groups],
                dynamic_shapes=(tuple(dynamic),),
                dynamo=True,
                verbose=False,
                external_data=False,
            )
    finally:
        onnx_logger.setLevel(level)
    proto = onnx.load(str(path))
    for key, value in _metadata(loaded, groups, [obs.shape[-1] for obs in observations]).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def _metadata(loaded: LoadedPolicy, groups: list[AgentGroup], observation_sizes: list[int]) -> dict[str, str]:
    layout = {
        group.name: {
            "input": f"observation_{group.name}",
            "output": f"action_{group.name}",
            "agent_names": list(group.agent_names),
            "agent_indices": list(group.agent_indices),
            "observation_size": size,
        }
        for group, size in zip(groups, observation_sizes)
    }
    bounds = {}
    if not loaded.config.discrete:
        for group in groups:
            low, high = _bounds(loaded, group)
            bounds[group.name] = {"low": low.tolist(), "high": high.tolist()}
    meaning = end_meaning(loaded.config.scenario, loaded.config.scenario_args)
    return {
        "marlnav_version": __version__,
        "config": loaded.config.to_json(),
        "layout": json.dumps(layout),
        "episode_end": meaning.end.value,
        "action_type": "discrete" if loaded.config.discrete else "continuous",
        "action_bounds": json.dumps(bounds),
        "shared_policy": json.dumps(loaded.config.share_policy),
    }


def _onnx_actions(path: Path, groups: list[AgentGroup], observations: list[torch.Tensor]) -> list[torch.Tensor]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(
        [f"action_{g.name}" for g in groups],
        {f"observation_{g.name}": obs.numpy() for g, obs in zip(groups, observations)},
    )
    return [torch.from_numpy(output) for output in outputs]


def _share_at_edge(loaded: LoadedPolicy, groups: list[AgentGroup], actions: list[torch.Tensor]) -> float:
    at_edge, total = 0, 0
    for group, action in zip(groups, actions):
        low, high = _bounds(loaded, group)
        margin = EDGE_MARGIN * (high - low)
        at_edge += int(((action <= low + margin) | (action >= high - margin)).sum())
        total += action.numel()
    return at_edge / total
