"""Progress lines of `marlnav tune`, as a Ray Tune callback (imported only where Ray Tune is).

Ray Tune pickles its callbacks with the search's state, to resume it; this class lives in a module of
its own so that it pickles by reference, and its lines go to `line_sinks`, which is not pickled (a
console cannot be).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

line_sinks: list[Callable[[str], None]] = []


class TuneProgress(Callback):
    """A line per finished trial, with the best so far and the time left. It counts from the trials' own
    states, so a resumed search counts on from where it stopped."""

    def __init__(self, objective: str, total: int) -> None:
        self.objective, self.total = objective, total
        self.started = time.perf_counter()
        self.finished_here = 0

    def setup(
        self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None, **info: Any
    ) -> None:
        """At every start of the search, a resumed one too (the callback comes back from its pickle)."""
        self.started = time.perf_counter()
        self.finished_here = 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, failed=True)

    def _line(self, trials: list, trial: Any, *, failed: bool) -> None:
        self.finished_here += 1
        ended = {t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR")} | {trial.trial_id}
        result = trial.last_result or {}
        if failed:
            what = f"failed: {_error_line(trial)}"
        elif result.get("complete"):
            what = f"{self.objective} {result['objective']:.3g}"
        else:
            what = f"stopped early at {result.get('frames', 0):,} frames"
        scores = [t.last_result["objective"] for t in trials if (t.last_result or {}).get("complete")]
        best = f"best so far {max(scores):.3g}" if scores else "no trial complete yet"
        left = (time.perf_counter() - self.started) / self.finished_here * (self.total - len(ended))
        line = f"[{len(ended)}/{self.total}] {trial.trial_id}: {what}; {best}; about {left / 60:.0f} min left"
        for sink in line_sinks:
            sink(line)


def _error_line(trial: Any) -> str:
    """The last line of a failed trial's error (its exception). Ray writes it to the trial's local folder
    before this callback; its storage copy (`get_error`) may come later, so the local file is read first."""
    try:
        local = Path(trial.error_file) if trial.error_file else None
        error = local.read_text() if local is not None and local.is_file() else trial.get_error()
    except Exception:  # Ray's own bookkeeping: the line is a courtesy, trials.csv holds the error at the end
        error = None
    lines = str(error or "").strip().splitlines()
    return " ".join(lines[-1].split())[:200] if lines else "its error goes to trials.csv at the end"
