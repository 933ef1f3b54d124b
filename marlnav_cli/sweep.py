"""Sweeps: the cartesian product of settings x seeds, each a normal train + evaluate, run as Ray tasks.

Ray is an optional extra (`pip install ".[sweep]"`). With no address, a local Ray starts in-process on
127.0.0.1; with one, the same tasks run on that cluster. Results land in one folder: every trial's run
folder, results.csv (a row per trial, failed ones with their error), summary.csv and curves.png.
Running the same sweep again skips the trials already complete.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marlnav_cli.config import TrainConfig, field_of_flag, parse_int_ranges, typed_value
from marlnav_cli.errors import ConfigError, MarlnavError
from marlnav_cli.files import ensure_folder, write_csv_atomic, write_text_atomic

# The evaluated figures a trial's row holds and the summary gives across seeds (None where undefined).
EVALUATED_FIGURES = (
    "eval_mean_reward",
    "eval_success_rate",
    "eval_goal_rate",
    "eval_failure_rate",
    "eval_ended_early_rate",
    "eval_collisions",
    "eval_mean_length",
)
RESULT_FIELDS = ("trial", "seed", *EVALUATED_FIGURES, "final_train_reward", "wall_s", "status", "error")


MAX_SEEDS = 10_000  # a sweep's trials are planned up front: a bound keeps a typo from filling memory


def parse_seeds(text: str) -> list[int]:
    """'0-4', '0,2,7' or '0-2,9' into a sorted list of distinct non-negative seeds."""
    return parse_int_ranges(text, flag="--seeds", most=MAX_SEEDS)


def parse_sets(items: list[str]) -> dict[str, list[Any]]:
    """Repeatable key=v1,v2 into {config field: [typed values]}; algo=mappo,ippo sets the critic."""
    grid: dict[str, list[Any]] = {}
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "scenario_args"}
    for item in items:
        key, separator, values = item.partition("=")
        key = key.strip()
        if not separator or not values.strip():
            raise ConfigError(f"--set takes key=v1,v2,...; got {item!r}")
        if key == "algo":
            unknown = [v for v in values.split(",") if v.strip() not in ("mappo", "ippo")]
            if unknown:
                raise ConfigError(f"--set algo takes mappo and ippo, not {', '.join(unknown)}")
            grid["mappo"] = [v.strip() == "mappo" for v in values.split(",")]
            continue
        name = field_of_flag(key)  # a field's name or its flag's: lr, frames, num_epochs, epochs
        if name is None or name not in fields:
            raise ConfigError(f"--set {key}: not a training setting (use seeds with --seeds)")
        grid[name] = [typed_value(v.strip()) for v in values.split(",")]
        for value in grid[name]:
            try:
                TrainConfig.from_dict({name: value})  # its type: a setting's values are checked before Ray starts
            except ConfigError:
                raise ConfigError(f"--set {key}: {value!r} is not a value of that setting") from None
    return grid


def split_fixed(grid: dict[str, list[Any]]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A --set with one value fixes a setting for every trial; only the rest is swept."""
    fixed = {name: values[0] for name, values in grid.items() if len(values) == 1}
    return fixed, {name: values for name, values in grid.items() if len(values) > 1}


@dataclass(frozen=True)
class Trial:
    name: str
    settings: dict[str, Any]  # the swept values, for results and summary
    config: TrainConfig
    folder: Path

    @property
    def config_name(self) -> str:
        return self.name.rsplit("-seed", 1)[0]


def plan_trials(base: TrainConfig, grid: dict[str, list[Any]], seeds: list[int], folder: Path) -> list[Trial]:
    trials = []
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values))
        label = "-".join(_label(name, value) for name, value in settings.items()) or "base"
        for seed in seeds:
            config = dataclasses.replace(base, **settings, seed=seed)
            try:
                config.validate()
            except ConfigError as error:
                raise ConfigError(f"sweep setting {label}: {error}") from None
            name = f"{label}-seed{seed}"
            trials.append(Trial(name=name, settings=settings, config=config, folder=folder / name))
    return trials


@dataclass(frozen=True)
class SweepPlan:
    folder: Path
    trials: list[Trial]


def plan_sweep(
    given: dict[str, Any], sets: list[str], *, preset: str | None, seeds: str, folder: Path | None
) -> SweepPlan:
    """Every trial of a sweep: the given settings (the same in every trial) over the preset, then each
    combination of the --set values, for each seed. Each trial's config is checked here, before Ray."""
    from marlnav_cli.experiment import resolve_train_config

    fixed_by_set, grid = split_fixed(parse_sets(sets))
    base = resolve_train_config({**given, **fixed_by_set}, preset=preset)
    seed_list = parse_seeds(seeds)
    folder = folder or default_sweep_folder(base, grid, seed_list)
    return SweepPlan(folder=folder, trials=plan_trials(base, grid, seed_list, folder))


@dataclass(frozen=True)
class SweepResources:
    """Where and how the trials run."""

    episodes: int  # evaluation episodes per trial
    device_name: str
    address: str | None  # a Ray cluster, or None for a local Ray on 127.0.0.1
    cpus_per_trial: float
    gpus_per_trial: float
    max_parallel: int

    def check(self) -> SweepResources:
        """One line for what cannot work, before Ray starts: Ray missing, bad counts, an unusable device, an
        address that does not answer."""
        from marlnav_cli.config import check_positive
        from marlnav_cli.envs import resolve_device

        import_ray()
        check_positive("--episodes", self.episodes)
        check_positive("--max-parallel", self.max_parallel)
        finite = math.isfinite(self.cpus_per_trial) and math.isfinite(self.gpus_per_trial)
        if not finite or self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise MarlnavError("--cpus-per-trial must be a finite number > 0 and --gpus-per-trial one >= 0")
        resolve_device(self.device_name)
        if self.address:
            check_address(self.address)
        return self


def _label(name: str, value: Any) -> str:
    if name == "mappo":
        return "mappo" if value else "ippo"
    return f"{name}={value}"


def default_sweep_folder(base: TrainConfig, grid: dict[str, list[Any]], seeds: list[int]) -> Path:
    """Named by what is swept, so the same command finds its own folder again and resumes."""
    spec = json.dumps({"base": base.to_json(), "grid": grid, "seeds": seeds}, sort_keys=True)
    return Path("checkpoints") / f"sweep-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"


# --- one trial, in a Ray worker ---------------------------------------------------------------


def run_trial(trial: Trial, episodes: int, device_name: str, threads: int) -> dict[str, Any]:
    """A normal train then a normal evaluate; any failure becomes a row with its one-line error."""
    import time

    import torch

    from marlnav_cli.experiment import evaluate_checkpoint, run_training

    torch.set_num_threads(max(1, threads))
    started = time.perf_counter()
    row: dict[str, Any] = {"trial": trial.name, "seed": trial.config.seed, **trial.settings}
    try:
        # A trial left unfinished by a stopped sweep is run again from the start.
        outcome = run_training(trial.config, device_name=device_name, run_folder=trial.folder, overwrite=True)
        report = evaluate_checkpoint(outcome.files.checkpoint, episodes=episodes, seed=None, device_name=device_name)
        row.update(
            eval_mean_reward=report.policy.mean_reward,
            eval_success_rate=report.policy.success_rate,
            eval_goal_rate=report.policy.goal_rate,
            eval_failure_rate=report.policy.failure_rate,
            eval_ended_early_rate=report.policy.ended_early_rate,
            eval_collisions=report.policy.mean_collisions,
            eval_mean_length=report.policy.mean_length,
            final_train_reward=outcome.state.final_reward,
            status="ok",
            error="",
        )
    except Exception as error:
        row.update(status="failed", error=" ".join(f"{type(error).__name__}: {error}".split())[:300])
    row["wall_s"] = time.perf_counter() - started
    return row


# --- the sweep ----------------------------------------------------------------------------------


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MarlnavError('marlnav sweep needs Ray: pip install ".[sweep]" (or pip install ray)') from None
    return ray


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """A Ray cluster's host:port must answer before Ray is asked to join it (Ray would retry for minutes,
    deaf to Ctrl-C)."""
    import socket

    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address takes host:port, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ConfigError(f"no Ray cluster answers at {address} ({error.strerror or error})") from None


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def start_ray(ray: Any, address: str | None) -> None:
    if address and not is_loopback(address):
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        return
    # A local Ray, or a cluster on this machine's loopback, must stay on loopback. Ray rewrites 127.0.0.1
    # to this machine's network address (the driver then knocks on the interface, where no head listens)
    # unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which it reads into a constant when first imported: set
    # both the variable (for the processes Ray starts) and, since Ray is imported by now, the constant.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    # address="local": a Ray of this process's own. Without it Ray joins the latest `ray start` cluster on
    # the machine (its workers, its code, its CPUs), which --address alone should choose. The dashboard is
    # a head's to start: only a Ray of our own is told not to.
    own = {} if address else {"include_dashboard": False}
    ray.init(
        address=address or "local", log_to_driver=False, configure_logging=False, _node_ip_address="127.0.0.1", **own
    )


def is_loopback(address: str) -> bool:
    return address.removeprefix("ray://").rpartition(":")[0] in LOOPBACK_HOSTS


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def write_results(path: Path, rows: list[dict[str, Any]], swept: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*RESULT_FIELDS[:2], *swept, *RESULT_FIELDS[2:]], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: row["trial"]))
    write_text_atomic(path, buffer.getvalue())


@dataclass(frozen=True)
class SweepOutcome:
    folder: Path
    rows: list[dict[str, Any]]  # one per trial, as results.csv holds them
    summary: list[dict[str, Any]]  # one per config, as summary.csv holds it

    @property
    def failed(self) -> list[str]:
        return [row["trial"] for row in self.rows if row.get("status") != "ok"]


def sweep_and_summarise(
    plan: SweepPlan,
    resources: SweepResources,
    on_result: Callable[[dict[str, Any], int, int], None] | None = None,
) -> SweepOutcome:
    """The whole sweep: every trial (see run_sweep), then summary.csv and curves.png beside results.csv."""
    rows = run_sweep(plan, resources, on_result)
    summary = summarise(rows, plan.trials)
    write_summary(plan.folder / "summary.csv", summary)
    plot_sweep(plan.trials, rows, plan.folder / "curves.png")
    return SweepOutcome(folder=plan.folder, rows=rows, summary=summary)


def run_sweep(
    plan: SweepPlan,
    resources: SweepResources,
    on_result: Callable[[dict[str, Any], int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every trial not yet complete; return all rows (earlier complete ones included)."""
    trials, folder = plan.trials, plan.folder
    ray = import_ray()
    ensure_folder(folder)
    results_path = folder / "results.csv"
    swept = list(trials[0].settings) if trials else []
    planned = {trial.name for trial in trials}
    rows = {row["trial"]: row for row in read_results(results_path) if row["trial"] in planned}
    pending = [trial for trial in trials if rows.get(trial.name, {}).get("status") != "ok"]
    start_ray(ray, resources.address)
    try:
        task = ray.remote(num_cpus=resources.cpus_per_trial, num_gpus=resources.gpus_per_trial, max_retries=0)(
            run_trial
        )
        threads = max(1, int(resources.cpus_per_trial))
        running: dict[Any, Trial] = {}
        done = len(trials) - len(pending)
        while pending or running:
            while pending and len(running) < resources.max_parallel:
                trial = pending.pop(0)
                running[task.remote(trial, resources.episodes, resources.device_name, threads)] = trial
            finished, _ = ray.wait(list(running), num_returns=1)
            trial = running.pop(finished[0])
            try:
                row = ray.get(finished[0])
            except Exception as error:
                row = {
                    "trial": trial.name,
                    "seed": trial.config.seed,
                    **trial.settings,
                    "status": "failed",
                    "error": " ".join(str(error).split())[:300],
                    "wall_s": 0.0,
                }
            rows[trial.name] = row
            write_results(results_path, list(rows.values()), swept)
            done += 1
            if on_result is not None:
                on_result(row, done, len(trials))
    except KeyboardInterrupt:
        for reference in running:
            ray.cancel(reference, force=True)
        raise
    finally:
        ray.shutdown()
    return list(rows.values())


# --- statistics across seeds --------------------------------------------------------------------


def bootstrap_ci(values: list[float], *, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean, resampling seeds."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return float(data.mean()), float(data.mean())
    means = np.random.default_rng(seed).choice(data, size=(resamples, len(data)), replace=True).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def interquartile_mean(values: list[float]) -> float:
    """Mean of the middle half (25% trimmed from each end), as in rliable."""
    ordered = sorted(values)
    cut = math.floor(len(ordered) * 0.25)
    middle = ordered[cut : len(ordered) - cut] or ordered
    return sum(middle) / len(middle)


def summarise(rows: list[dict[str, Any]], trials: list[Trial]) -> list[dict[str, Any]]:
    """Per config: seeds done and failed, and mean / 95% CI / IQM of evaluated reward, success, goal and
    failure rates, collisions and episode length."""
    by_config: dict[str, list[dict[str, Any]]] = {}
    settings = {trial.config_name: trial.settings for trial in trials}
    config_of = {trial.name: trial.config_name for trial in trials}
    for row in rows:
        by_config.setdefault(config_of[row["trial"]], []).append(row)
    summary = []
    for name in dict.fromkeys(trial.config_name for trial in trials):
        ok = [row for row in by_config.get(name, []) if row.get("status") == "ok"]
        entry: dict[str, Any] = {
            "config": name,
            **settings[name],
            "seeds_ok": len(ok),
            "seeds_failed": len(by_config.get(name, [])) - len(ok),
        }
        for metric in EVALUATED_FIGURES:
            # None (or empty, read back from CSV) where the scenario has no such figure: no success defined,
            # or rewards only per group.
            values = [float(row[metric]) for row in ok if row.get(metric) not in (None, "")]
            if values:
                low, high = bootstrap_ci(values)
                entry.update(
                    {
                        f"{metric}_mean": sum(values) / len(values),
                        f"{metric}_ci_low": low,
                        f"{metric}_ci_high": high,
                        f"{metric}_iqm": interquartile_mean(values),
                        f"{metric}_min": min(values),  # the worst seed, for success
                        f"{metric}_max": max(values),
                    }
                )
        summary.append(entry)
    return summary


def write_summary(path: Path, summary: list[dict[str, Any]]) -> None:
    write_csv_atomic(path, summary)


def plot_sweep(trials: list[Trial], rows: list[dict[str, Any]], path: Path) -> None:
    """Mean training curve per config across its complete seeds, with a 95% normal band."""
    import numpy as np

    from marlnav_cli.metrics import new_figure, save_figure

    complete = {row["trial"] for row in rows if row.get("status") == "ok"}
    figure, axis = new_figure()
    for name in dict.fromkeys(trial.config_name for trial in trials):
        curves = []
        for trial in trials:
            metrics = trial.folder / "metrics.jsonl"
            if trial.config_name == name and trial.name in complete and metrics.exists():
                curves.append([json.loads(line) for line in metrics.read_text().splitlines()])
        if not curves:
            continue
        length = min(len(curve) for curve in curves)
        frames = [row["frames"] for row in curves[0][:length]]
        rewards = np.array([[row["reward_mean"] for row in curve[:length]] for curve in curves])
        mean = rewards.mean(axis=0)
        half_width = 1.96 * rewards.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
        axis.plot(frames, mean, label=f"{name} ({len(curves)} seeds)")
        axis.fill_between(frames, mean - half_width, mean + half_width, alpha=0.2)
    axis.set(xlabel="frames", ylabel="mean episode reward (training)", title="Sweep: mean over seeds, 95% band")
    save_figure(figure, [axis], path)
