"""Safetensors checkpoints: weights as tensors, the config and training summary as JSON metadata.

Nothing is pickled: a checkpoint is read by `safetensors` alone, and the policy is rebuilt from the
config in its metadata by the same builders training used, then loaded strictly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from marlnav_cli import __version__
from marlnav_cli.config import TrainConfig
from marlnav_cli.errors import CheckpointError, ConfigError
from marlnav_cli.files import atomic_output, require_checkpoint_file
from marlnav_cli.rng import RNG_PREFIX, capture_rng, check_rng_state, rng_names

FORMAT_NAME = "marlnav-checkpoint"
FORMAT_VERSION = 1
POLICY_PREFIX = "policy."
CRITIC_PREFIX = "critic."
OPTIMIZER_PREFIX = "optimizer."


@dataclass
class Checkpoint:
    path: Path
    config: TrainConfig
    tensors: dict[str, torch.Tensor]
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    marlnav_version: str = ""
    groups: dict[str, list[str]] | None = None  # None in checkpoints written before agent groups existed

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        return {name[len(prefix) :]: tensor for name, tensor in self.tensors.items() if name.startswith(prefix)}

    def check_resumable(self) -> None:
        if self.summary.get("policy_only"):
            raise CheckpointError(
                f"{self.path} holds only the policy (exported); resume from the run's own policy.safetensors"
            )
        if self.config.imitate_heuristic and not self.summary.get("iterations"):
            # Resuming would skip the rest of the copy: not the run its config describes.
            raise CheckpointError(
                f"{self.path} stopped while copying the heuristic, before its first PPO iteration, so it cannot be "
                f"resumed; train it again: marlnav train --config {self.path.parent / 'config.toml'}"
            )

    def check_groups(self, built: dict[str, list[str]]) -> None:
        """Refuse when the env rebuilt from the config groups its agents differently (another VMAS)."""
        if self.groups is not None and self.groups != built:
            raise CheckpointError(
                f"{self.path} was trained with agent groups {self.groups}, but this VMAS builds {built} from its config"
            )

    def check_matches(self, *, scenario: str | None = None) -> None:
        """Refuse when the caller asks for a scenario this checkpoint was not trained on."""
        if scenario is not None and scenario != self.config.scenario:
            raise CheckpointError(f"{self.path} was trained on scenario {self.config.scenario!r}, not {scenario!r}")


def weight_prefixes(groups: list[str]) -> dict[str, tuple[str, str]]:
    """Group -> (policy prefix, critic prefix). One group keeps the bare prefixes it had before groups
    existed, so older checkpoints load; several get one prefix per group ("policy.adversary.")."""
    if len(groups) == 1:
        return {groups[0]: (POLICY_PREFIX, CRITIC_PREFIX)}
    return {group: (f"{POLICY_PREFIX}{group}.", f"{CRITIC_PREFIX}{group}.") for group in groups}


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}{key}": value for key, value in module.state_dict().items()}


def optimizer_tensors(optimiser: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam's per-parameter state as flat tensors; its hyperparameters come from the config."""
    return {
        f"{OPTIMIZER_PREFIX}{index}.{name}": torch.as_tensor(value)
        for index, values in optimiser.state_dict()["state"].items()
        for name, value in values.items()
    }


def save_checkpoint(
    path: Path,
    config: TrainConfig,
    groups: dict[str, list[str]] | None,
    tensors: dict[str, torch.Tensor],
    summary: dict[str, Any],
    history: list[dict[str, Any]] | None = None,
) -> None:
    """Write the tensors, the config, the agent groups, the summary and (for resume) the metrics history,
    atomically."""
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "marlnav_version": __version__,
        "config": config.to_json(),
        "groups": json.dumps(groups),
        "summary": json.dumps(summary, sort_keys=True),
        "history": json.dumps(history or []),
    }
    # safetensors refuses tensors that share memory, and writes from the CPU.
    owned = {name: value.detach().to("cpu").contiguous().clone() for name, value in tensors.items()}
    with atomic_output(path) as temporary:
        save_file(owned, str(temporary), metadata=metadata)


def read_checkpoint(path: Path) -> Checkpoint:
    """Open and check a checkpoint; every way it can be wrong becomes one CheckpointError line."""
    require_checkpoint_file(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as reader:
            metadata = reader.metadata() or {}
            tensors = {name: reader.get_tensor(name) for name in reader.keys()}  # noqa: SIM118 - a safetensors reader, not a dict
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint (truncated or another format): {reason}"
        ) from None
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is a safetensors file but not a marlnav checkpoint")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise CheckpointError(f"{path} has no valid format version") from None
    if version < 1:
        raise CheckpointError(f"{path} has an invalid format version {version}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version}, newer than this marlnav "
            f"({__version__}) reads ({FORMAT_VERSION}); upgrade marlnav"
        )
    try:
        config = TrainConfig.from_json(metadata.get("config", "")).validate()
        summary = json.loads(metadata.get("summary", "{}"))
        history = json.loads(metadata.get("history", "[]"))
        groups = json.loads(metadata["groups"]) if "groups" in metadata else None
    except (ConfigError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} holds an invalid config: {error}") from None
    if not isinstance(summary, dict):
        raise CheckpointError(f"{path} holds an invalid summary: not a JSON object")
    _check_history(path, history)
    if groups is not None and not (
        isinstance(groups, dict)
        and all(isinstance(names, list) and all(isinstance(n, str) for n in names) for names in groups.values())
    ):
        raise CheckpointError(f"{path} holds an invalid agent-group layout")
    return Checkpoint(
        path=path,
        config=config,
        tensors=tensors,
        summary=summary,
        history=history,
        marlnav_version=metadata.get("marlnav_version", ""),
        groups=groups,
    )


# What resuming, the curves and the best-checkpoint choice read from each iteration record.
_HISTORY_NUMBERS = (
    "frames",
    "wall_s",
    "reward_mean",
    "reward_min",
    "reward_max",
    "loss_objective",
    "loss_critic",
    "loss_entropy",
    "entropy",
)
_EVALUATION_NUMBERS = ("eval_mean_length", "eval_mean_reward")  # present whenever an iteration was evaluated
_EVALUATION_OPTIONAL = ("eval_success_rate", "eval_ended_early_rate", "eval_mean_collisions")  # None: undefined
_GROUP_NUMBERS = ("reward_mean", "reward_min", "reward_max")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_history(path: Path, history: Any) -> None:
    """The per-iteration metrics that resume continues from: iteration records numbered 1, 2, ..., each
    with every figure the curves and the best-checkpoint choice read, and the same agent groups in all."""
    if not isinstance(history, list):
        raise CheckpointError(f"{path} holds an invalid history: not a list of iteration records")
    groups = None
    for number, row in enumerate(history, start=1):
        problem = _history_row_problem(row, number)
        if problem is None:
            row_groups = sorted(key.removesuffix("/reward_mean") for key in row if key.endswith("/reward_mean"))
            groups = row_groups if groups is None else groups
            if row_groups != groups or not all(_number(row.get(f"{g}/{k}")) for g in groups for k in _GROUP_NUMBERS):
                problem = "its agent groups' figures differ from the first record's"
        if problem is not None:
            raise CheckpointError(f"{path} holds an invalid history: record {number} {problem}")


def _history_row_problem(row: Any, number: int) -> str | None:
    if not isinstance(row, dict) or row.get("iteration") != number:
        return "is not an iteration record numbered in order"
    if not all(_number(row.get(key)) for key in _HISTORY_NUMBERS):
        return f"lacks finite {', '.join(_HISTORY_NUMBERS)}"
    if row.get("eval_s") is not None and not (
        _number(row["eval_s"])
        and all(_number(row.get(key)) for key in _EVALUATION_NUMBERS)
        and all(key in row and (row[key] is None or _number(row[key])) for key in _EVALUATION_OPTIONAL)
    ):
        return "has an evaluation without its figures"
    if row.get("eval_goal_rate") is not None and not _number(row["eval_goal_rate"]):  # absent before goal rates
        return "has a goal rate that is not a finite number"
    return None


def load_weights(module: torch.nn.Module, checkpoint: Checkpoint, prefix: str) -> None:
    """Strict load with a readable refusal when names, shapes, dtypes or values don't fit the rebuilt module."""
    saved = checkpoint.state_dict(prefix)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{checkpoint.path}: {prefix.rstrip('.')} weights don't fit its config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, tensor in expected.items():
        _check_like(checkpoint, f"{prefix}{name}", saved[name], tensor)
    module.load_state_dict(saved, strict=True)


def _check_like(checkpoint: Checkpoint, name: str, saved: torch.Tensor, expected: torch.Tensor) -> None:
    if saved.shape != expected.shape:
        raise CheckpointError(
            f"{checkpoint.path}: {name} has shape {tuple(saved.shape)}, its config needs {tuple(expected.shape)}"
        )
    if saved.dtype != expected.dtype:
        raise CheckpointError(
            f"{checkpoint.path}: {name} is {str(saved.dtype).replace('torch.', '')}, "
            f"not {str(expected.dtype).replace('torch.', '')}"
        )
    if saved.is_floating_point() and not torch.isfinite(saved).all():
        raise CheckpointError(f"{checkpoint.path}: {name} holds NaN or infinite values")


_ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")


def load_optimizer(optimiser: torch.optim.Optimizer, checkpoint: Checkpoint) -> None:
    """Adam's state, every tensor checked against its parameter first: the fused kernel trusts shapes and
    would write out of bounds on a wrong one."""
    parameters = [p for group in optimiser.param_groups for p in group["params"]]
    expected = {
        f"{index}.{key}": (torch.zeros((), dtype=torch.float32) if key == "step" else parameter.detach())
        for index, parameter in enumerate(parameters)
        for key in _ADAM_STATE
    }
    saved = checkpoint.state_dict(OPTIMIZER_PREFIX)
    missing, unexpected = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{checkpoint.path} holds no complete optimizer state for its config (missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}), so training cannot resume from it"
        )
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in saved.items():
        _check_like(checkpoint, f"{OPTIMIZER_PREFIX}{name}", tensor, expected[name])
        index, key = name.split(".", 1)
        if (key == "exp_avg_sq" and (tensor < 0).any()) or (key == "step" and tensor.item() < 0):
            raise CheckpointError(f"{checkpoint.path}: {OPTIMIZER_PREFIX}{name} holds negative values")
        state.setdefault(int(index), {})[key] = tensor
    optimiser.load_state_dict({"state": state, "param_groups": optimiser.state_dict()["param_groups"]})


def rng_state(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """The random-number state, checked on scratch generators before the real ones get it."""
    state = {name: tensor for name, tensor in checkpoint.tensors.items() if name.startswith(RNG_PREFIX)}
    if set(state) != rng_names():
        raise CheckpointError(
            f"{checkpoint.path} holds no complete random-number state, so training cannot resume from it"
        )
    for name, template in capture_rng().items():
        if state[name].shape != template.shape or state[name].dtype != template.dtype:
            raise CheckpointError(
                f"{checkpoint.path}: {name} is not a random-number state "
                f"({str(state[name].dtype).replace('torch.', '')} {tuple(state[name].shape)})"
            )
    try:
        check_rng_state(state)
    except (ValueError, TypeError, RuntimeError, OverflowError, IndexError) as error:
        raise CheckpointError(
            f"{checkpoint.path} holds a random-number state the generators refuse: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None
    return state


def export_policy(checkpoint: Checkpoint, out: Path) -> None:
    """A small checkpoint with the policy alone: enough to evaluate, render and roll out, not to resume."""
    if out.suffix != ".safetensors":
        raise CheckpointError(f"output {out} must end in .safetensors")
    summary = {**checkpoint.summary, "policy_only": True}
    policy = {name: tensor for name, tensor in checkpoint.tensors.items() if name.startswith(POLICY_PREFIX)}
    save_checkpoint(out, checkpoint.config, checkpoint.groups, policy, summary, checkpoint.history)
