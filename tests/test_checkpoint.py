"""Checkpoints: a loaded policy acts exactly like the trained one; every bad file is refused clearly."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from marlnav_cli.checkpoint import (
    CRITIC_PREFIX,
    FORMAT_VERSION,
    POLICY_PREFIX,
    module_tensors,
    read_checkpoint,
    save_checkpoint,
)
from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import group_layout, make_env
from marlnav_cli.errors import CheckpointError, ConfigError
from marlnav_cli.experiment import load_policy
from marlnav_cli.models import build_critics, build_policies

CPU = torch.device("cpu")
SMALL = TrainConfig(
    num_cells=8, depth=1, frames_per_batch=100, max_steps=25, minibatch_size=50, total_frames=100, share_policy=False
)


def _save_small(path: Path, config: TrainConfig = SMALL) -> torch.nn.Module:
    torch.manual_seed(0)
    env = make_env(config, num_envs=2, seed=0, device=CPU)
    policy, critic = build_policies(env, config, CPU)["agents"], build_critics(env, config, CPU)["agents"]
    tensors = {**module_tensors(POLICY_PREFIX, policy), **module_tensors(CRITIC_PREFIX, critic)}
    save_checkpoint(path, config, group_layout(env), tensors, {"frames": 0})
    return policy


def test_loaded_policy_gives_identical_actions(tmp_path: Path) -> None:
    path = tmp_path / "small.safetensors"
    original = _save_small(path)
    loaded = load_policy(path, device_name="cpu")
    assert loaded.checkpoint.config == SMALL
    observation = make_env(SMALL, num_envs=5, seed=11, device=CPU).reset()
    with torch.no_grad():
        expected = original.get_dist(observation.clone())
        actual = loaded.policies["agents"].get_dist(observation.clone())
    assert torch.equal(expected.loc, actual.loc) and torch.equal(expected.scale, actual.scale)


def test_checkpoint_holds_config_version_and_no_pickle(tmp_path: Path) -> None:
    path = tmp_path / "small.safetensors"
    _save_small(path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.config == SMALL and checkpoint.summary == {"frames": 0}
    # Nothing but safetensors' layout: an 8-byte header length, a JSON header, then exactly the tensors'
    # bytes it lists. A pickled payload anywhere would break the byte count.
    data = path.read_bytes()
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_length])
    spans = sorted(tuple(entry["data_offsets"]) for name, entry in header.items() if name != "__metadata__")
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert 8 + header_length + spans[-1][1] == len(data)
    assert header["__metadata__"]["format"] == "marlnav-checkpoint"


def test_no_temporary_file_left_beside_checkpoint(tmp_path: Path) -> None:
    _save_small(tmp_path / "small.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["small.safetensors"]


def _write_raw(path: Path, tensors: dict, metadata: dict) -> Path:
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
        (lambda p: (p.write_bytes(b"not a checkpoint at all, just text"), p)[1], "not a readable safetensors"),
        (lambda p: (p.write_bytes(b"\x80\x04\x95" + b"\x00" * 64), p)[1], "not a readable safetensors"),
        (lambda p: _write_raw(p, {"w": torch.zeros(3)}, {"format": "other"}), "not a marlnav checkpoint"),
        (
            lambda p: _write_raw(
                p,
                {"w": torch.zeros(3)},
                {"format": "marlnav-checkpoint", "format_version": str(FORMAT_VERSION + 1), "config": SMALL.to_json()},
            ),
            "newer",
        ),
        (
            lambda p: _write_raw(
                p, {"w": torch.zeros(3)}, {"format": "marlnav-checkpoint", "format_version": "1", "config": "{broken"}
            ),
            "invalid config",
        ),
        (
            lambda p: _write_raw(
                p,
                {"w": torch.zeros(3)},
                {"format": "marlnav-checkpoint", "format_version": "1", "config": SMALL.to_json()},
            ),
            "don't fit",
        ),
    ],
    ids=["missing", "empty", "text", "pickle", "foreign-safetensors", "newer-format", "bad-config", "no-weights"],
)
def test_bad_checkpoint_files_are_refused(tmp_path: Path, make_file, message: str) -> None:
    path = make_file(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match=message):
        load_policy(path, device_name="cpu")


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.safetensors"
    _save_small(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_policy(path, device_name="cpu")


def test_weights_that_dont_fit_the_config_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.safetensors"
    _save_small(path)
    checkpoint = read_checkpoint(path)
    tensors = dict(checkpoint.tensors)
    name = next(n for n in tensors if n.startswith("policy.") and n.endswith("weight"))
    tensors[name] = torch.zeros(*tensors[name].shape[:-1], tensors[name].shape[-1] + 1)
    metadata = {
        "format": "marlnav-checkpoint",
        "format_version": "1",
        "config": SMALL.to_json(),
        "summary": json.dumps({}),
    }
    _write_raw(path, tensors, metadata)
    with pytest.raises(CheckpointError, match="has shape"):
        load_policy(path, device_name="cpu")


def test_mismatched_task_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.safetensors"
    _save_small(path)
    with pytest.raises(ConfigError, match="one set of weights per agent"):
        load_policy(path, device_name="cpu", n_agents=4)
    with pytest.raises(CheckpointError, match="scenario 'navigation', not 'balance'"):
        load_policy(path, device_name="cpu", scenario="balance")
