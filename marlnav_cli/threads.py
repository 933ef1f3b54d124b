"""How many CPU threads torch computes with.

By default, the cores nothing else is using when the command starts (at least one), not torch's default of
every core: on this project's 2-core machine a default `marlnav train` took 25 s with one thread and 102 s
with two beside two other runs, while on the idle machine two threads were 6% faster for it and 1.7x for
BenchMARL's larger networks (docs/benchmarks.md, "Threads"). Floating-point results depend on the count,
so a run meant to be rebuilt bit for bit names it (--threads).
"""

from __future__ import annotations

import os

from marlnav_cli.errors import ConfigError

MAX_THREADS = 1024


def idle_cores() -> int:
    """Cores this process may use, less the 1-minute load average (rounded), at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, cores - busy)


def threads_wanted(threads: int | None) -> int:
    """The count given, else $OMP_NUM_THREADS where the user set one, else the idle cores."""
    if threads is None:
        from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if not from_env:
            return idle_cores()
        if not from_env.isdigit() or not 1 <= int(from_env) <= MAX_THREADS:
            raise ConfigError(f"OMP_NUM_THREADS must be a whole number from 1 to {MAX_THREADS}, got {from_env!r}")
        return int(from_env)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise ConfigError(f"--threads must be from 1 to {MAX_THREADS}, got {threads!r}")
    return threads


def use_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (checked first, so a bad count is one error line); return it."""
    count = threads_wanted(threads)
    import torch

    torch.set_num_threads(count)
    return count
