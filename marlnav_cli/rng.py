"""Random-number state as tensors, so a checkpoint can carry it and resume bit-exactly.

Two sources matter: torch's global generator (policy sampling, minibatch order) and the generators
VMAS keeps to itself (class-level `Environment.vmas_random_state`: torch, numpy and Python's
random), which drive every env reset.
"""

from __future__ import annotations

import math

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
            [python_version, math.nan if python_gauss is None else python_gauss], dtype=torch.float64),
    }


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors[f"{RNG_PREFIX}torch"])
    position, has_gauss, cached_gauss = tensors[f"{RNG_PREFIX}vmas.numpy.rest"].tolist()
    python_version, python_gauss = tensors[f"{RNG_PREFIX}vmas.python.rest"].tolist()
    Environment.vmas_random_state[:] = [
        tensors[f"{RNG_PREFIX}vmas.torch"].clone(),
        ("MT19937", tensors[f"{RNG_PREFIX}vmas.numpy.keys"].numpy().astype(np.uint32), int(position),
         int(has_gauss), cached_gauss),
        (int(python_version), tuple(tensors[f"{RNG_PREFIX}vmas.python.state"].tolist()),
         None if math.isnan(python_gauss) else python_gauss),
    ]


def rng_names() -> set[str]:
    return set(capture_rng())
