"""`marlnav tune`: hyperparameter search on Ray Tune with Optuna's TPE sampler, as rl-baselines3-zoo's
optimise mode does for single-agent tasks.

Each trial is a normal `train` (one run per search seed) and a normal evaluation on held-out episodes;
the evaluations during training report to Tune, whose ASHA scheduler stops the trials that trail the
others at the same frame count. The search's best is optimistic (it was chosen on those very figures),
so its settings are then trained again on seeds the search never used, and those runs' figures are
the result. Everything lands in one folder: Tune's own experiment (so the same command resumes),
trials.csv, best-config.toml, zoo-entry.toml, tune.png and final/ (the re-trained runs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marlnav_cli.config import DEFAULT_PRESET, TrainConfig, parse_int_ranges, preset_config
from marlnav_cli.errors import ConfigError, MarlnavError, install_hint
from marlnav_cli.search_space import Parameter, base_point, settings_of
from marlnav_cli.sweep import SweepOutcome, SweepPlan, SweepResources, plan_trials, start_ray, sweep_and_summarise

# The objective's name on the command line, and the evaluated figure it is.
OBJECTIVES = {"success": "eval_success_rate", "goal": "eval_goal_rate", "reward": "eval_mean_reward"}
# Evaluations during training per run, for the scheduler (100 episodes each, on validation seeds).
CHECKS_PER_RUN = 4
CHECK_EPISODES = 100
MAX_TRIALS = 10_000
TRIAL_FIELDS = ("eval_mean_reward", "eval_success_rate", "eval_goal_rate", "eval_failure_rate", "eval_mean_length")


def import_tune() -> Any:
    try:
        import optuna  # noqa: F401
        from ray import tune
    except ImportError:
        raise MarlnavError(f"marlnav tune needs Ray Tune and Optuna: {install_hint('tune')}") from None
    return tune


def default_objective(scenario: str, scenario_args: dict[str, Any]) -> str:
    """The scenario's own figure: success where its end means success, the goal rate where the end can be
    the goal or a failure (and the two can be told apart), else the evaluated reward."""
    from marlnav_cli.episode_end import EpisodeEnd
    from marlnav_cli.scenarios import end_meaning, goal_reader

    meaning = end_meaning(scenario, scenario_args)
    if meaning.defines_success:
        return "success"
    if meaning.end is EpisodeEnd.MIXED and goal_reader(scenario, scenario_args) is not None:
        return "goal"
    return "reward"


def check_objective(objective: str, scenario: str, scenario_args: dict[str, Any]) -> str:
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective takes {', '.join(OBJECTIVES)}, not {objective!r}")
    own = default_objective(scenario, scenario_args)
    if objective != "reward" and objective != own:
        from marlnav_cli.scenarios import end_meaning

        meaning = end_meaning(scenario, scenario_args)
        raise ConfigError(
            f"scenario {scenario!r} has no {objective} rate (its episode end: {meaning.what}); "
            f"use --objective {own}" + (" or reward" if own != "reward" else "")
        )
    return objective


@dataclass(frozen=True)
class TunePlan:
    """A whole search, checked before Ray starts."""

    base: TrainConfig  # the settings every trial starts from (its seed is replaced per run)
    space: list[Parameter]
    objective: str
    trials: int
    search_seeds: list[int]  # each trial trains one run per seed; its objective is their mean
    final_seeds: list[int]  # the best settings are re-trained on these, never searched on
    episodes: int  # held-out evaluation episodes per run
    prune: bool
    sampler_seed: int
    folder: Path
    command: str  # how the search was asked for, for the zoo entry

    @property
    def metric(self) -> str:
        return OBJECTIVES[self.objective]

    def spec(self) -> dict[str, Any]:
        """What makes a search this search: a folder holding another is refused, not mixed in."""
        return {
            "base": json.loads(self.base.to_json()),
            "space": [dataclasses.asdict(parameter) for parameter in self.space],
            "objective": self.objective,
            "trials": self.trials,
            "search_seeds": self.search_seeds,
            "episodes": self.episodes,
            "prune": self.prune,
            "sampler_seed": self.sampler_seed,
        }


def plan_tune(
    base: TrainConfig,
    space: list[Parameter],
    *,
    objective: str | None,
    trials: int,
    seeds_per_trial: int,
    final_seeds: str,
    episodes: int,
    prune: bool,
    sampler_seed: int,
    folder: Path | None,
    command: str,
) -> TunePlan:
    from marlnav_cli.config import check_positive, check_seed

    check_positive("--trials", trials)
    if trials > MAX_TRIALS:
        raise ConfigError(f"--trials must be at most {MAX_TRIALS}, got {trials}")
    check_positive("--seeds-per-trial", seeds_per_trial)
    check_positive("--episodes", episodes)
    check_seed(sampler_seed)
    if seeds_per_trial > 100:
        raise ConfigError(f"--seeds-per-trial must be at most 100, got {seeds_per_trial}")
    objective = check_objective(
        objective or default_objective(base.scenario, base.scenario_args), base.scenario, base.scenario_args
    )
    search_seeds = list(range(seeds_per_trial))
    finals = parse_int_ranges(final_seeds, flag="--final-seeds", most=1000)
    overlap = sorted(set(finals) & set(search_seeds))
    if overlap:
        raise ConfigError(
            f"--final-seeds must be seeds the search does not train on (0 to {seeds_per_trial - 1}), "
            f"but {', '.join(map(str, overlap[:5]))} are"
        )
    plan = TunePlan(
        base=base,
        space=space,
        objective=objective,
        trials=trials,
        search_seeds=search_seeds,
        final_seeds=finals,
        episodes=episodes,
        prune=prune,
        sampler_seed=sampler_seed,
        folder=Path("."),
        command=command,
    )
    folder = folder or default_tune_folder(plan)
    plan = dataclasses.replace(plan, folder=folder.absolute())  # Ray Tune's storage must be absolute
    check_same_search(plan)
    return plan


def default_tune_folder(plan: TunePlan) -> Path:
    """Named by the search, so the same command finds its folder again and resumes."""
    digest = hashlib.sha256(json.dumps(plan.spec(), sort_keys=True).encode()).hexdigest()[:10]
    return Path("checkpoints") / f"tune-{plan.base.scenario}-{digest}"


def check_same_search(plan: TunePlan) -> None:
    spec_file = plan.folder / "search.json"
    if spec_file.exists():
        try:
            held = json.loads(spec_file.read_text())
        except (OSError, json.JSONDecodeError):
            held = None
        if held != json.loads(json.dumps(plan.spec())):
            raise ConfigError(f"{plan.folder} holds another search (its search.json); give another --out")


# --- one trial, in a Ray Tune worker -----------------------------------------------------------


def run_tune_trial(params: dict[str, Any], *, plan: TunePlan, device_name: str, threads: int) -> None:
    """Train the trial's settings once per search seed, reporting each evaluation during training (the
    running estimate of the objective: finished seeds' held-out figures with the current seed's latest),
    then the held-out figures' mean over seeds as the trial's result."""
    import torch
    from ray import tune

    from marlnav_cli.experiment import evaluate_checkpoint, run_training
    from marlnav_cli.validation import EvaluationSchedule

    torch.set_num_threads(threads)
    trial_id = tune.get_context().get_trial_id()
    started = time.perf_counter()
    finished: list[dict[str, Any]] = []
    frames_before = 0
    for seed in plan.search_seeds:
        config = dataclasses.replace(plan.base, **settings_of(plan.space, params), seed=seed).validate()
        checks = EvaluationSchedule(every=max(1, config.n_iters // CHECKS_PER_RUN), episodes=CHECK_EPISODES)

        def report_check(state: Any, before: int = frames_before) -> None:
            row = state.history[-1]
            if row.get(plan.metric) is not None and row["iteration"] < state.config.n_iters:
                estimate = [*(run[plan.metric] for run in finished), row[plan.metric]]
                tune.report({"objective": sum(estimate) / len(estimate), "frames": before + row["frames"]})

        outcome = run_training(
            config,
            device_name=device_name,
            run_folder=plan.folder / "runs" / f"{trial_id}-seed{seed}",
            overwrite=True,  # a trial cut short by a stopped search is run again from the start
            evaluation=checks,
            on_iteration=report_check,
        )
        report = evaluate_checkpoint(
            outcome.files.checkpoint, episodes=plan.episodes, seed=None, device_name=device_name
        )
        figures = {
            "eval_mean_reward": report.policy.mean_reward,
            "eval_success_rate": report.policy.success_rate,
            "eval_goal_rate": report.policy.goal_rate,
            "eval_failure_rate": report.policy.failure_rate,
            "eval_mean_length": report.policy.mean_length,
        }
        if figures[plan.metric] is None:
            raise MarlnavError(f"the evaluation gave no {plan.objective} figure")
        finished.append(figures)
        frames_before += outcome.state.frames
    means = {
        name: (sum(run[name] for run in finished) / len(finished) if finished[0][name] is not None else None)
        for name in TRIAL_FIELDS
    }
    tune.report(
        {
            "objective": means[plan.metric],
            "frames": frames_before,
            "complete": True,
            "trial_wall_s": time.perf_counter() - started,
            **{name: value for name, value in means.items() if value is not None},
        }
    )


# --- the search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRow:
    trial: str
    settings: dict[str, Any]
    objective: float | None  # the held-out figure's mean over search seeds; None unless complete
    status: str  # complete, stopped early, failed
    frames: int  # frames trained when it ended
    wall_s: float
    figures: dict[str, Any]
    error: str = ""
    order: int = 0  # the order trials were started in

    def as_csv(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            **self.settings,
            "objective": self.objective,
            "status": self.status,
            "frames": self.frames,
            "wall_s": round(self.wall_s, 1),
            **self.figures,
            "error": self.error,
        }


@dataclass(frozen=True)
class TuneOutcome:
    plan: TunePlan
    rows: list[TrialRow]
    best: TrialRow | None
    best_config: TrainConfig | None
    final: SweepOutcome | None  # the best settings re-trained on the final seeds
    importance: dict[str, float]

    @property
    def final_figures(self) -> dict[str, Any] | None:
        return self.final.summary[0] if self.final is not None and self.final.summary else None


def run_search(plan: TunePlan, resources: SweepResources, on_line: Callable[[str], None]) -> list[TrialRow]:
    """Every trial of the search (resumed where the folder holds an unfinished one), as table rows."""
    import ray

    tune = import_tune()
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from marlnav_cli.files import ensure_folder, write_text_atomic

    ensure_folder(plan.folder)
    write_text_atomic(plan.folder / "search.json", json.dumps(plan.spec(), indent=1, sort_keys=True))
    import optuna

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic reporter: silent at verbose 0
    # A failed trial's traceback would flood the progress lines: its last line is in its progress line,
    # and its error in trials.csv.
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its study lines would break the progress lines
    threads = max(1, int(resources.cpus_per_trial))
    trainable = tune.with_resources(
        tune.with_parameters(run_tune_trial, plan=plan, device_name=resources.device_name, threads=threads),
        {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial},
    )
    experiment = plan.folder / "search"
    from marlnav_cli import tune_progress

    tune_progress.line_sinks[:] = [on_line]
    start_ray(ray, resources.address)
    try:
        if tune.Tuner.can_restore(str(experiment)):
            on_line(f"resuming the search in {experiment}")
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=False)
        else:
            start = base_point(plan.space, plan.base)
            searcher = OptunaSearch(
                metric="objective",
                mode="max",
                points_to_evaluate=[start] if start is not None else None,
                seed=plan.sampler_seed,
            )
            budget = plan.base.total_frames * len(plan.search_seeds)
            scheduler = (
                ASHAScheduler(
                    time_attr="frames",
                    metric="objective",
                    mode="max",
                    max_t=budget,
                    grace_period=max(1, budget // 9),
                    reduction_factor=3,
                )
                if plan.prune
                else FIFOScheduler()
            )
            tuner = tune.Tuner(
                trainable,
                param_space={parameter.name: parameter.domain() for parameter in plan.space},
                tune_config=tune.TuneConfig(
                    search_alg=ConcurrencyLimiter(searcher, max_concurrent=resources.max_parallel),
                    scheduler=scheduler,
                    num_samples=plan.trials,
                ),
                run_config=tune.RunConfig(
                    name=experiment.name,
                    storage_path=str(experiment.parent),
                    verbose=0,
                    callbacks=[tune_progress.TuneProgress(plan.objective, plan.trials)],
                    failure_config=tune.FailureConfig(max_failures=0),
                ),
            )
        results = tuner.fit()
    finally:
        tune_progress.line_sinks.clear()
        ray.shutdown()
    return _rows(results, plan)


def _rows(results: Any, plan: TunePlan) -> list[TrialRow]:
    rows = []
    for index, result in enumerate(results):
        metrics = result.metrics or {}
        settings = settings_of(plan.space, result.config)
        if result.error is not None:
            status, error = "failed", _one_line(result.error)
        else:
            status, error = ("complete" if metrics.get("complete") else "stopped early"), ""
        rows.append(
            TrialRow(
                trial=metrics.get("trial_id") or Path(result.path).name,
                settings=settings,
                objective=metrics.get("objective") if status == "complete" else None,
                status=status,
                frames=int(metrics.get("frames", 0)),
                wall_s=float(metrics.get("time_total_s", 0.0)),
                figures={name: metrics.get(name) for name in TRIAL_FIELDS} if status == "complete" else {},
                error=error,
                order=index,
            )
        )
    return sorted(rows, key=lambda row: row.trial)


def _one_line(error: BaseException) -> str:
    """The root cause of a trial's error, without Ray's traceback."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    message = text[-1] if text else ""
    return " ".join(f"{type(cause).__name__}: {message}".split())[:300]


def best_trial(rows: list[TrialRow]) -> TrialRow | None:
    """The complete trial with the highest objective; ties go to the higher reward, then shorter episodes."""
    complete = [row for row in rows if row.status == "complete"]
    if not complete:
        return None
    return max(
        complete,
        key=lambda row: (
            row.objective,
            row.figures.get("eval_mean_reward") or 0.0,
            -(row.figures.get("eval_mean_length") or 0.0),
        ),
    )


def tune_and_report(
    plan: TunePlan,
    resources: SweepResources,
    on_line: Callable[[str], None],
    on_final: Callable[[dict[str, Any], int, int], None] | None = None,
) -> TuneOutcome:
    """The search, its table and plot, then the best settings re-trained on the final seeds."""
    rows = run_search(plan, resources, on_line)
    write_trials(plan.folder / "trials.csv", rows)
    importance = parameter_importance(rows, plan)
    plot_search(rows, importance, plan, plan.folder / "tune.png")
    best = best_trial(rows)
    if best is None:
        return TuneOutcome(plan, rows, None, None, None, importance)
    best_config = dataclasses.replace(plan.base, **best.settings, seed=plan.final_seeds[0]).validate()
    from marlnav_cli.files import write_text_atomic

    write_text_atomic(plan.folder / "best-config.toml", best_config.to_toml())
    on_line(f"re-training the best settings ({best.trial}) on seeds {_seed_text(plan.final_seeds)}")
    final_plan = SweepPlan(
        folder=plan.folder / "final", trials=plan_trials(best_config, {}, plan.final_seeds, plan.folder / "final")
    )
    final = sweep_and_summarise(final_plan, resources, on_final)
    outcome = TuneOutcome(plan, rows, best, best_config, final, importance)
    write_text_atomic(plan.folder / "zoo-entry.toml", zoo_entry(outcome))
    return outcome


def _seed_text(seeds: list[int]) -> str:
    return (
        f"{seeds[0]}-{seeds[-1]}"
        if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1
        else (",".join(map(str, seeds)))
    )


def write_trials(path: Path, rows: list[TrialRow]) -> None:
    from marlnav_cli.files import write_csv_atomic

    write_csv_atomic(path, [row.as_csv() for row in rows])


def parameter_importance(rows: list[TrialRow], plan: TunePlan) -> dict[str, float]:
    """Optuna's fANOVA importance of each searched setting for the objective, over the complete trials
    (empty with fewer than two, or where every trial scored the same)."""
    import optuna

    complete = [row for row in rows if row.status == "complete"]
    if len(complete) < 2 or len({row.objective for row in complete}) < 2:
        return {}
    distributions = {parameter.name: _distribution(parameter) for parameter in plan.space}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for row in complete:
        study.add_trial(
            optuna.trial.create_trial(params=row.settings, distributions=distributions, value=row.objective)
        )
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):
        return {}


def _distribution(parameter: Parameter) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if parameter.values is not None:
        return CategoricalDistribution(list(parameter.values))
    if parameter.is_int:
        return IntDistribution(int(parameter.low), int(parameter.high), log=parameter.log)
    return FloatDistribution(parameter.low, parameter.high, log=parameter.log)


def plot_search(rows: list[TrialRow], importance: dict[str, float], plan: TunePlan, path: Path) -> None:
    """The objective of each complete trial in the order they started, the best so far, and (where Optuna
    gives it) each setting's importance."""
    from marlnav_cli.metrics import new_figure, save_figure

    if importance:
        figure, (axis, bars) = new_figure(2, (12.0, 4.2))
        names = list(importance)[:8]
        bars.barh(names[::-1], [importance[name] for name in names][::-1])
        bars.set(xlabel="importance (Optuna's fANOVA)", title="what the objective depended on")
    else:
        figure, axis = new_figure()
    ordered = sorted((row for row in rows if row.status == "complete"), key=lambda row: row.order)
    if ordered:
        trials = [row.order + 1 for row in ordered]
        values = [row.objective for row in ordered]
        best = [max(values[: index + 1]) for index in range(len(values))]
        axis.scatter(trials, values, label="trial (complete)", s=14)
        axis.step(trials, best, where="post", label="best so far")
    early = [row.order + 1 for row in rows if row.status == "stopped early"]
    if early and ordered:
        axis.scatter(early, [min(values)] * len(early), marker="x", label="stopped early (drawn at the lowest)")
    axis.set(
        xlabel="trial",
        ylabel=f"{plan.objective} (held-out, mean over search seeds)",
        title=f"marlnav tune on {plan.base.scenario}: {len(rows)} trials",
    )
    axes = [axis, bars] if importance else [axis]
    save_figure(figure, axes, path)


def zoo_entry(outcome: TuneOutcome) -> str:
    """The best settings as a zoo.toml entry: only what differs from the `fast` preset, with the search
    and the re-trained figures as its justification."""
    plan, best, config = outcome.plan, outcome.best, outcome.best_config
    assert best is not None and config is not None
    fast = preset_config(DEFAULT_PRESET)
    differing = {
        name: value
        for name, value in dataclasses.asdict(config).items()
        if name not in ("scenario", "total_frames", "seed") and value != getattr(fast, name)
    }
    figures = outcome.final_figures or {}
    metric = plan.metric
    measured = (
        f"{plan.objective} {figures[f'{metric}_mean']:.3g} over seeds {_seed_text(plan.final_seeds)} "
        f"(worst {figures[f'{metric}_min']:.3g})"
        if f"{metric}_mean" in figures
        else "not re-trained"
    )
    why = f"Found by marlnav tune ({plan.trials} trials, TPE): {measured}; the search's own best {best.objective:.3g}"
    lines = [
        f"[{plan.base.scenario}]",
        f"frames = {plan.base.total_frames}",
        f"why = {json.dumps(why)}",
        f"command = {json.dumps(plan.command)}",
        f'record = "{plan.folder.name}/trials.csv"',
    ]
    if differing:
        lines += ["", f"[{plan.base.scenario}.settings]"]
        lines += [f"{name} = {_toml(value)}" for name, value in differing.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def command_line(argv: list[str]) -> str:
    return shlex.join(["marlnav", *argv])
