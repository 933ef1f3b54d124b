"""Random-number state as tensors, so a checkpoint can carry it and resume bit-exactly.

Two sources matter: torch's global generator (policy sampling, minibatch order) and the generators
VMAS keeps to itself (class-level `Environment.vmas_random_state`: torch, numpy and Python's
random), which drive every env reset.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from vmas.simulator.environment.environment import Environment

RNG_PREFIX = "rng."


def capture_rng() -> dict[str, torch.Tensor]:
    vmas_torch, vmas_numpy, vmas_python = Environment.vmas_random_state
    _, numpy_keys, numpy_position, has_gauss, cached_gauss = vmas_numpy
    python_version, python_state, python_gauss = vmas_python
    return {
        f"{RNG_PREFIX}torch": torch.get_rng_state(),
        f"{RNG_PREFIX}vmas.torch": vmas_torch.clone(),
        f"{RNG_PREFIX}vmas.numpy.keys": torch.from_numpy(numpy_keys.astype(np.int64)),
        f"{RNG_PREFIX}vmas.numpy.rest": torch.tensor([numpy_position, has_gauss, cached_gauss], dtype=torch.float64),
        f"{RNG_PREFIX}vmas.python.state": torch.tensor(python_state, dtype=torch.int64),
        f"{RNG_PREFIX}vmas.python.rest": torch.tensor(
            [python_version, math.nan if python_gauss is None else python_gauss], dtype=torch.float64
        ),
    }


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors[f"{RNG_PREFIX}torch"])
    Environment.vmas_random_state[:] = [tensors[f"{RNG_PREFIX}vmas.torch"].clone(), *_numpy_and_python(tensors)]


def check_rng_state(tensors: dict[str, torch.Tensor]) -> None:
    """Hand every state to a scratch generator of its kind: raises what that generator raises."""
    for name in ("torch", "vmas.torch"):
        torch.Generator().set_state(tensors[f"{RNG_PREFIX}{name}"])
    numpy_state, python_state = _numpy_and_python(tensors)
    keys = tensors[f"{RNG_PREFIX}vmas.numpy.keys"]
    if ((keys < 0) | (keys >= 2**32)).any():
        raise ValueError("numpy generator keys outside 32 bits")
    np.random.RandomState().set_state(numpy_state)
    random.Random().setstate(python_state)


def _numpy_and_python(tensors: dict[str, torch.Tensor]) -> tuple[tuple, tuple]:
    position, has_gauss, cached_gauss = tensors[f"{RNG_PREFIX}vmas.numpy.rest"].tolist()
    python_version, python_gauss = tensors[f"{RNG_PREFIX}vmas.python.rest"].tolist()
    return (
        (
            "MT19937",
            tensors[f"{RNG_PREFIX}vmas.numpy.keys"].numpy().astype(np.uint32),
            int(position),
            int(has_gauss),
            cached_gauss,
        ),
        (
            int(python_version),
            tuple(tensors[f"{RNG_PREFIX}vmas.python.state"].tolist()),
            None if math.isnan(python_gauss) else python_gauss,
        ),
    )


def rng_names() -> set[str]:
    return set(capture_rng())
