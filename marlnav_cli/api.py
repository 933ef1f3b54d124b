"""marlnav from Python (a notebook, a script): train, evaluate, render and export, returning the result
dataclasses the commands print. The commands call these same functions, so a setting means the same here
as on the command line, and bad input raises the one-line `MarlnavError` the command would print.

    from marlnav_cli import api as marlnav

    run = marlnav.train(scenario="navigation", total_frames=96_000, out="runs/nav")
    report = marlnav.evaluate(run.files.checkpoint, episodes=200)
    print(report.policy.success_rate, report.policy.success_rate_ci95)
    marlnav.render(run.files.checkpoint, "nav.gif")
    marlnav.export(run.files.checkpoint, "nav.onnx")

Training settings are TrainConfig's field names (`marlnav train --help` shows each with its flag:
`total_frames` is --frames, `num_epochs` --epochs); unknown ones are refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marlnav_cli.config import TrainConfig, load_config_file
from marlnav_cli.threads import use_threads
from marlnav_cli.zoo import starting_config, starting_point

if TYPE_CHECKING:
    from marlnav_cli.episodes import EvaluationReport
    from marlnav_cli.experiment import RunFiles, TrainOutcome
    from marlnav_cli.media import RenderedMedia
    from marlnav_cli.sweep import SweepResources
    from marlnav_cli.train import TrainState
    from marlnav_cli.tune import TuneOutcome, TunePlan


def train(
    scenario: str | None = None,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    resume: str | Path | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    scenario_args: dict[str, Any] | None = None,
    device: str = "auto",
    threads: int | None = None,
    checkpoint_every: int = 1,
    eval_every: int = 8,
    eval_episodes: int = 100,
    logger: str = "none",
    on_start: Callable[[RunFiles, TrainConfig, int], None] | None = None,
    on_iteration: Callable[[TrainState], None] | None = None,
    on_imitation: Callable[[dict[str, float]], None] | None = None,
    **settings: Any,
) -> TrainOutcome:
    """Train as `marlnav train` does: the scenario's zoo entry (or `preset`, or `config_file`) with
    `settings` on top, or continue `resume`; returns the outcome (run files, history, interrupted or not)."""
    use_threads(threads)
    from marlnav_cli.experiment import command_config, run_training
    from marlnav_cli.validation import EvaluationSchedule

    if scenario is not None:
        settings["scenario"] = scenario
    config_path = Path(config_file) if config_file is not None else None
    given = given_settings(settings, preset=preset, scenario_args=scenario_args, config_file=config_path)
    config, checkpoint = command_config(
        given, preset=preset, config_file=config_path, resume=Path(resume) if resume is not None else None
    )
    return run_training(
        config,
        device_name=device,
        run_folder=Path(out) if out is not None else None,
        checkpoint_every=checkpoint_every,
        resume=checkpoint,
        logger_kind=logger,
        overwrite=overwrite,
        evaluation=EvaluationSchedule(every=eval_every, episodes=eval_episodes),
        on_iteration=on_iteration,
        on_start=on_start,
        on_imitation=on_imitation,
        start=starting_point(preset, config.scenario, config_file=config_path is not None),
    )


def given_settings(
    settings: dict[str, Any],
    *,
    preset: str | None = None,
    scenario_args: dict[str, Any] | None = None,
    config_file: Path | None = None,
) -> dict[str, Any]:
    """The training settings given (names and types checked, as a config file's), over `config_file`'s;
    what train and sweep start from. `scenario_args` (--scenario-arg) add to the scenario arguments the run
    starts from, a config file's whole table else the preset's or zoo entry's (give_way's sets two), so a
    config.toml still reproduces its run exactly."""
    given = dict(settings)
    TrainConfig.from_dict({**dataclasses.asdict(TrainConfig()), **given})
    if config_file is not None:
        given = {**load_config_file(config_file), **given}
    if scenario_args:
        start = given.get("scenario_args")
        if start is None:
            start = starting_config(preset, given.get("scenario", TrainConfig.scenario)).scenario_args
        given["scenario_args"] = {**start, **scenario_args}
    return given


def evaluate(
    checkpoint: str | Path,
    *,
    episodes: int = 200,
    seed: int | None = None,
    scenario: str | None = None,
    n_agents: int | None = None,
    sampled: bool = False,
    device: str = "auto",
    threads: int | None = None,
) -> EvaluationReport:
    """The policy (its most likely actions, or `sampled`) beside random actions on held-out episodes, as
    `marlnav evaluate` reports them."""
    use_threads(threads)
    from marlnav_cli.experiment import evaluate_checkpoint

    return evaluate_checkpoint(
        Path(checkpoint),
        episodes=episodes,
        seed=seed,
        device_name=device,
        scenario=scenario,
        n_agents=n_agents,
        deterministic=not sampled,
    )


def render(
    checkpoint: str | Path | None,
    out: str | Path,
    *,
    episodes: int = 1,
    seed: int | None = None,
    n_agents: int | None = None,
    random_env: Any = None,
    annotate: bool = False,
    device: str = "auto",
    threads: int | None = None,
) -> RenderedMedia:
    """Episodes of the policy as a GIF or MP4, as `marlnav render`; with `checkpoint` None, random actions
    on `random_env` (an EnvConfig); with `annotate`, each frame's step and a legend of the colours."""
    use_threads(threads)
    from marlnav_cli.experiment import render_episodes

    return render_episodes(
        Path(out),
        checkpoint=Path(checkpoint) if checkpoint is not None else None,
        config=random_env,
        episodes=episodes,
        seed=seed,
        device_name=device,
        n_agents=n_agents,
        annotate=annotate,
    )


def export(checkpoint: str | Path, out: str | Path, *, threads: int | None = None) -> dict[str, Any]:
    """The policy as ONNX (checked for parity first) or as a policy-only checkpoint, as `marlnav export`."""
    use_threads(threads)
    from marlnav_cli.exporting import export_policy_file

    return export_policy_file(Path(checkpoint), Path(out))


def plan_tune(
    settings: dict[str, Any],
    *,
    trials: int = 20,
    objective: str | None = None,
    space: str | Path | None = None,
    seeds_per_trial: int = 1,
    final_seeds: str = "100-102",
    prune: bool = True,
    sampler_seed: int = 0,
    preset: str | None = None,
    config_file: str | Path | None = None,
    scenario_args: dict[str, Any] | None = None,
    episodes: int = 200,
    out: str | Path | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_parallel: int = 2,
    device: str = "cpu",
    command: str = "",
) -> tuple[TunePlan, SweepResources]:
    """A search `marlnav tune` can run (tune.tune_and_report), every input checked before Ray starts: the
    settings, the space, the objective against the scenario, the seeds, the resources."""
    from marlnav_cli.experiment import resolve_train_config
    from marlnav_cli.search_space import read_space
    from marlnav_cli.sweep import SweepResources
    from marlnav_cli.tune import import_tune
    from marlnav_cli.tune import plan_tune as plan

    import_tune()
    given = given_settings(
        settings,
        preset=preset,
        scenario_args=scenario_args,
        config_file=Path(config_file) if config_file is not None else None,
    )
    base = resolve_train_config(given, preset=preset)
    resources = SweepResources(episodes, device, address, cpus_per_trial, gpus_per_trial, max_parallel).check()
    tune_plan = plan(
        base,
        read_space(Path(space) if space is not None else None, base),
        objective=objective,
        trials=trials,
        seeds_per_trial=seeds_per_trial,
        final_seeds=final_seeds,
        episodes=episodes,
        prune=prune,
        sampler_seed=sampler_seed,
        folder=Path(out) if out is not None else None,
        command=command or f"marlnav tune --scenario {base.scenario} --trials {trials}",
    )
    return tune_plan, resources


def tune(
    settings: dict[str, Any] | None = None,
    *,
    on_line: Callable[[str], None] = print,
    **options: Any,
) -> TuneOutcome:
    """`marlnav tune`: the search (options as plan_tune takes them), then the best settings re-trained on
    the final seeds. Needs the `tune` extra."""
    from marlnav_cli.tune import tune_and_report

    plan, resources = plan_tune(settings or {}, **options)
    return tune_and_report(plan, resources, on_line=on_line)
