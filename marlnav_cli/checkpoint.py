"""Safetensors checkpoints: weights as tensors, the config and training summary as JSON metadata.

Nothing is pickled: a checkpoint is read by `safetensors` alone, and the policy is rebuilt from the
config in its metadata by the same builders training used, then loaded strictly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from marlnav_cli import __version__
from marlnav_cli.config import TrainConfig
from marlnav_cli.errors import CheckpointError, ConfigError
from marlnav_cli.files import atomic_output
from marlnav_cli.rng import RNG_PREFIX, rng_names

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
        return {name[len(prefix):]: tensor for name, tensor in self.tensors.items() if name.startswith(prefix)}

    def check_resumable(self) -> None:
        if self.summary.get("policy_only"):
            raise CheckpointError(f"{self.path} holds only the policy (exported); resume from the run's own "
                                  "policy.safetensors")

    def check_groups(self, built: dict[str, list[str]]) -> None:
        """Refuse when the env rebuilt from the config groups its agents differently (another VMAS)."""
        if self.groups is not None and self.groups != built:
            raise CheckpointError(f"{self.path} was trained with agent groups {self.groups}, but this VMAS builds "
                                  f"{built} from its config")

    def check_matches(self, *, scenario: str | None = None) -> None:
        """Refuse when the caller asks for a scenario this checkpoint was not trained on."""
        if scenario is not None and scenario != self.config.scenario:
            raise CheckpointError(f"{self.path} was trained on scenario {self.config.scenario!r}, "
                                  f"not {scenario!r}")


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
    return {f"{OPTIMIZER_PREFIX}{index}.{name}": torch.as_tensor(value)
            for index, values in optimiser.state_dict()["state"].items() for name, value in values.items()}


def save_checkpoint(path: Path, config: TrainConfig, groups: dict[str, list[str]] | None, tensors: dict[str, torch.Tensor],
                    summary: dict[str, Any], history: list[dict[str, Any]] | None = None) -> None:
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
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as reader:
            metadata = reader.metadata() or {}
            tensors = {name: reader.get_tensor(name) for name in reader.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint "
                              f"(truncated or another format): {reason}") from None
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is a safetensors file but not a marlnav checkpoint")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise CheckpointError(f"{path} has no valid format version") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} uses checkpoint format {version}, newer than this marlnav "
                              f"({__version__}) reads ({FORMAT_VERSION}); upgrade marlnav")
    try:
        config = TrainConfig.from_json(metadata.get("config", "")).validate()
        summary = json.loads(metadata.get("summary", "{}"))
        history = json.loads(metadata.get("history", "[]"))
        groups = json.loads(metadata["groups"]) if "groups" in metadata else None
    except (ConfigError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} holds an invalid config: {error}") from None
    if groups is not None and not (isinstance(groups, dict) and all(
            isinstance(names, list) and all(isinstance(n, str) for n in names) for names in groups.values())):
        raise CheckpointError(f"{path} holds an invalid agent-group layout")
    return Checkpoint(path=path, config=config, tensors=tensors, summary=summary, history=history,
                      marlnav_version=metadata.get("marlnav_version", ""), groups=groups)


def load_weights(module: torch.nn.Module, checkpoint: Checkpoint, prefix: str) -> None:
    """Strict load with a readable refusal when names or shapes don't fit the rebuilt module."""
    saved = checkpoint.state_dict(prefix)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{checkpoint.path}: {prefix.rstrip('.')} weights don't fit its config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, tensor in expected.items():
        if saved[name].shape != tensor.shape:
            raise CheckpointError(f"{checkpoint.path}: {prefix}{name} has shape {tuple(saved[name].shape)}, "
                                  f"its config needs {tuple(tensor.shape)}")
    module.load_state_dict(saved, strict=True)


def load_optimizer(optimiser: torch.optim.Optimizer, checkpoint: Checkpoint) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in checkpoint.state_dict(OPTIMIZER_PREFIX).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    expected = len(optimiser.state_dict()["param_groups"][0]["params"])
    if len(state) != expected:
        raise CheckpointError(f"{checkpoint.path} holds no complete optimizer state "
                              f"({len(state)} of {expected} parameters), so training cannot resume from it")
    optimiser.load_state_dict({"state": state, "param_groups": optimiser.state_dict()["param_groups"]})


def rng_state(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    state = {name: tensor for name, tensor in checkpoint.tensors.items() if name.startswith(RNG_PREFIX)}
    if set(state) != rng_names():
        raise CheckpointError(f"{checkpoint.path} holds no complete random-number state, so training cannot "
                              "resume from it")
    return state


def export_policy(checkpoint: Checkpoint, out: Path) -> None:
    """A small checkpoint with the policy alone: enough to evaluate, render and roll out, not to resume."""
    if out.suffix != ".safetensors":
        raise CheckpointError(f"output {out} must end in .safetensors")
    summary = {**checkpoint.summary, "policy_only": True}
    policy = {name: tensor for name, tensor in checkpoint.tensors.items() if name.startswith(POLICY_PREFIX)}
    save_checkpoint(out, checkpoint.config, checkpoint.groups, policy, summary, checkpoint.history)
