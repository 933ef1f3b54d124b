"""The Typer app: commands parse options into a config, call one experiment function, print the result.

This is the only module that imports typer and turns errors into exit codes.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import shlex
import sys
import warnings
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from marlnav_cli import __version__
from marlnav_cli.config import (
    DEFAULT_PRESET,
    PRESETS,
    TrainConfig,
    flag_of,
    parse_scenario_args,
    preset_config,
    team_settings,
)
from marlnav_cli.episode_end import EpisodeEnd
from marlnav_cli.errors import MarlnavError, MarlnavWarning
from marlnav_cli.files import require_checkpoint_file
from marlnav_cli.metrics import LOGGERS, group_names
from marlnav_cli.threads import use_threads


class _FlagHelp:
    """--help is a flag: no `<bool>` after it in the help, as after every other flag."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class _Command(_FlagHelp, typer.core.TyperCommand):
    pass


class _Group(_FlagHelp, typer.core.TyperGroup):
    pass


app = typer.Typer(
    cls=_Group,
    name="marlnav",
    help="Train, inspect, evaluate and render multi-agent PPO (MAPPO/IPPO) policies on VMAS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
DEFAULTS = TrainConfig()

LoggerName = Literal[LOGGERS]  # type: ignore[valid-type]

JSON_SIGNIFICANT_DIGITS = 6  # float32 figures carry ~7; more prints noise such as 0.9919999837875366


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{JSON_SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    return value


def _print_json(data: Any) -> None:
    """--json output: floats to JSON_SIGNIFICANT_DIGITS significant digits."""
    console.print_json(json.dumps(_rounded(data)))


# --- options shared by several commands ------------------------------------------------------
ENV_PANEL, RUN_PANEL, OUTPUT_PANEL = "Environment", "Run", "Output"
Scenario = Annotated[
    str | None,
    typer.Option(
        help="VMAS scenario (marlnav scenarios lists them; default navigation).",
        metavar="NAME",
        rich_help_panel=ENV_PANEL,
        show_default=False,
    ),
]
NAgents = Annotated[
    int | None,
    typer.Option(
        help="Number of agents, for scenarios that take it (default: 3, or the scenario's own team).",
        show_default=False,
        metavar="N",
        rich_help_panel=ENV_PANEL,
    ),
]
Discrete = Annotated[
    bool,
    typer.Option(
        "--discrete", help="Discrete actions (VMAS's continuous_actions=False).", metavar="", rich_help_panel=ENV_PANEL
    ),
]
MaxSteps = Annotated[
    int | None,
    typer.Option(
        help="Episode length limit in steps (default 100).", metavar="N", rich_help_panel=ENV_PANEL, show_default=False
    ),
]
Seed = Annotated[
    int | None,
    typer.Option(
        help="Random seed (torch and VMAS; default 0).", metavar="N", rich_help_panel=RUN_PANEL, show_default=False
    ),
]
Device = Annotated[
    str,
    typer.Option(
        help="auto (cuda if available, else cpu), cpu, or cuda[:N].", metavar="DEVICE", rich_help_panel=RUN_PANEL
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        help="CPU threads torch computes with (default: $OMP_NUM_THREADS if set, else the cores not busy when "
        "the command starts, at least 1). Results depend on it in the last float bits: name it to rebuild a run.",
        metavar="N",
        rich_help_panel=RUN_PANEL,
        show_default=False,
    ),
]
AsJson = Annotated[
    bool,
    typer.Option(
        "--json", help="Print machine-readable JSON instead of tables.", metavar="", rich_help_panel=OUTPUT_PANEL
    ),
]
CheckpointPath = Annotated[
    Path,
    typer.Argument(
        help="A marlnav .safetensors checkpoint, or a shipped policy's name (navigation-3ag-mappo).",
        show_default=False,
        metavar="CHECKPOINT",
        callback=require_checkpoint_file,  # a missing file is refused before torch is imported
    ),
]
NumEnvs = Annotated[int, typer.Option(help="Vectorised environments.", metavar="N", rich_help_panel=ENV_PANEL)]
ScenarioArgs = Annotated[
    list[str] | None,
    typer.Option(
        "--scenario-arg",
        help="Scenario keyword argument key=value (repeatable; typed: true/false, int, float, "
        "else string), e.g. --scenario-arg collisions=false.",
        show_default=False,
        metavar="KEY=VALUE",
        rich_help_panel=ENV_PANEL,
    ),
]


RayAddress = Annotated[
    str | None,
    typer.Option(
        envvar="RAY_ADDRESS",
        help="Ray cluster to run on (default: a local Ray on 127.0.0.1).",
        show_default=False,
        metavar="HOST:PORT",
    ),
]
CpusPerTrial = Annotated[float, typer.Option(help="CPUs Ray reserves per trial.", metavar="X")]
GpusPerTrial = Annotated[float, typer.Option(help="GPUs Ray reserves per trial (fractions allowed).", metavar="X")]
MaxParallel = Annotated[int, typer.Option(help="Trials running at once at most.", metavar="N")]


def _zoo_help() -> str:
    from marlnav_cli.zoo import zoo

    return (
        f"Starting settings, which options override: {', '.join(PRESETS)} (tutorial: TorchRL's multi-agent PPO "
        "tutorial, exactly; benchmarl: BenchMARL's tuned VMAS settings). Default: the scenario's zoo entry "
        f"(the zoo has {', '.join(zoo())}), else {DEFAULT_PRESET}."
    )


Preset = Annotated[
    str | None,
    typer.Option(help=_zoo_help(), show_default=False, metavar="NAME", rich_help_panel=RUN_PANEL),
]


def _preset_help(text: str, field: str) -> str:
    """Option help that names each preset's value, since the default depends on --preset."""
    values = ", ".join(f"{name}: {getattr(preset_config(name), field)}" for name in PRESETS)
    return f"{text} ({values})"


_FIELD_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_METAVARS = {int: "N", float: "X", str: "NAME", bool: ""}


def _config_parameters(leave_out: tuple[str, ...]) -> list[inspect.Parameter]:
    """One option per TrainConfig setting, described by the config's own field metadata."""
    parameters = []
    for field in fields(TrainConfig):
        if field.name in ("scenario_args", "team_sizes", *leave_out):  # --n-agents gives team sizes
            continue
        kind = str if field.name == "n_agents" else _FIELD_TYPES[str(field.type)]  # a size, range or list
        declaration = flag_of(field.name) + (f"/{field.metadata['off']}" if field.metadata.get("off") else "")
        option = typer.Option(
            declaration,
            help=_preset_help(field.metadata["help"], field.name),
            show_default=False,
            rich_help_panel=field.metadata["panel"],
            metavar="N" if field.name == "n_agents" else _METAVARS[kind],
        )
        parameters.append(
            inspect.Parameter(
                field.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, option]
            )
        )
    return parameters


def with_config_options(command: Any, leave_out: tuple[str, ...] = ()) -> Any:
    """Give a command every training setting as an option; the ones given arrive as its `settings`."""
    config_parameters = _config_parameters(leave_out)
    names = [parameter.name for parameter in config_parameters]

    @functools.wraps(command)
    def with_settings(**kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in names}
        settings = {name: value for name, value in given.items() if value is not None}
        if "n_agents" in settings:
            settings |= team_settings(settings["n_agents"])
        return command(settings=settings, **kwargs)

    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "settings"]
    with_settings.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + config_parameters
    )
    return with_settings


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav train\n\n  marlnav train --n-agents 3 --frames 60000\n\n"
    "  marlnav train --preset tutorial\n\n"
    "  marlnav train --scenario balance              # balance's zoo entry\n\n"
    "  marlnav train --scenario transport --preset benchmarl --frames 600000\n\n"
    "  marlnav train --scenario wheel --imitate-heuristic 120000 --dagger   # copy VMAS's controller first\n\n"
    "  marlnav train --n-agents 2-8 --frames 300000       # one policy for teams of 2 to 8\n\n"
    "  marlnav train --ippo --no-share-policy --seed 1 --out checkpoints/ippo-run\n\n"
    "  marlnav train --resume checkpoints/ippo-run/policy.safetensors --frames 120000",
)
@with_config_options
def train(
    settings: dict[str, Any],
    preset: Preset = None,
    scenario_arg: ScenarioArgs = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML settings (a run's config.toml reproduces it); options given here override them.",
            show_default=False,
            metavar="PATH",
            rich_help_panel="Run",
        ),
    ] = None,
    device: Device = "auto",
    threads: Threads = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--run-dir",
            help="Run folder (default: checkpoints/<scenario>-<n>ag-<algo>-<preset, zoo or config>-seed<k>-<time>).",
            show_default=False,
            metavar="PATH",
            rich_help_panel="Run",
        ),
    ] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help="Save the latest checkpoint every N iterations.", metavar="N", rich_help_panel="Run")
    ] = 1,
    eval_every: Annotated[
        int,
        typer.Option(
            help="Evaluate the deterministic policy on held-out episodes every N iterations and at the end (0: off); "
            "best.safetensors is then the best evaluated.",
            metavar="N",
            rich_help_panel="Run",
        ),
    ] = 8,
    eval_episodes: Annotated[
        int, typer.Option(help="Episodes per evaluation during training.", metavar="N", rich_help_panel="Run")
    ] = 100,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace the run already in --out (without it, a folder holding a run is refused).",
            metavar="",
            rich_help_panel="Run",
        ),
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue this checkpoint's run (weights, optimiser, RNG, metrics); only --frames may change.",
            show_default=False,
            metavar="PATH",
            rich_help_panel="Run",
        ),
    ] = None,
    logger: Annotated[
        LoggerName,
        typer.Option(
            help="Also log the metrics through TorchRL's logger (wandb offline, mlflow to a file store in the run "
            "folder); each but csv needs its extra, e.g. pip install -e '.\\[wandb]' in marlnav's folder.",
            rich_help_panel="Output",
        ),
    ] = "none",
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress bar.", metavar="", rich_help_panel="Output")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Train MAPPO/IPPO on a VMAS scenario, from its zoo entry or a preset (--preset tutorial is TorchRL's
    tutorial, exactly).

    Writes policy.safetensors (latest), best.safetensors, metrics.csv/.jsonl, curve.png and
    config.toml (pass it to --config to reproduce the run) into the run folder.
    """
    from marlnav_cli import api
    from marlnav_cli.progress import TrainingProgress

    with TrainingProgress(err_console, disabled=quiet) as progress:
        outcome = api.train(
            preset=preset,
            config_file=config_file,
            resume=resume,
            out=out,
            overwrite=overwrite,
            scenario_args=parse_scenario_args(scenario_arg) if scenario_arg else None,
            device=device,
            threads=threads,
            checkpoint_every=checkpoint_every,
            eval_every=eval_every,
            eval_episodes=eval_episodes,
            logger=logger,
            on_start=progress.on_start,
            on_iteration=progress.on_iteration,
            on_imitation=progress.on_imitation,
            **settings,
        )
    _print_training(outcome, as_json)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def _print_training(outcome: Any, as_json: bool) -> None:
    outputs = {label: str(path) for label, path in outcome.files.outputs().items()}
    last = outcome.state.history[-1] if outcome.state.history else {}
    # Several groups (competing or distinct teams): each its own figure, as a mean over them means nothing.
    by_group = {name: last[f"{name}/reward_mean"] for name in group_names(last)}
    reward = by_group or outcome.state.final_reward
    if as_json:
        _print_json(
            {
                "run_folder": str(outcome.files.folder),
                "interrupted": outcome.interrupted,
                "frames": outcome.state.frames,
                "final_reward": reward,
                "wall_s": outcome.wall_s,
                **outputs,
            }
        )
        return
    if by_group:
        reward_text = ", ".join(f"{name} {value:.3f}" for name, value in by_group.items())
    else:
        reward_text = "n/a" if reward is None else f"{reward:.3f}"
    err_console.print(
        f"{'interrupted' if outcome.interrupted else 'done'}: {outcome.state.frames} frames in "
        f"{outcome.wall_s:.1f}s, final mean episode reward {reward_text}"
    )
    console.print(f"run folder: {escape(str(outcome.files.folder))}")
    for label, path in outputs.items():
        console.print(f"{label:>10}: {escape(path)}")


@app.command(
    "inspect-specs",
    cls=_Command,
    epilog="Examples:\n\n  marlnav inspect-specs\n\n  marlnav inspect-specs --scenario balance --n-agents 4 --json",
)
def inspect_specs(
    scenario: Scenario = None,
    n_agents: NAgents = None,
    num_envs: NumEnvs = DEFAULTS.num_envs,
    max_steps: MaxSteps = None,
    discrete: Discrete = False,
    scenario_arg: ScenarioArgs = None,
    seed: Seed = None,
    device: Device = "auto",
    threads: Threads = None,
    as_json: AsJson = False,
) -> None:
    """Print the env's agent groups, action, reward, done and observation specs and keys, and run check_env_specs."""
    use_threads(threads)
    from marlnav_cli.experiment import inspect_env

    config = _env_config(scenario, n_agents, max_steps, seed, discrete, scenario_arg)
    description = inspect_env(config, num_envs=num_envs, device_name=device)
    if as_json:
        _print_json(description)
        return
    groups = ", ".join(f"{name} x{len(agents)}" for name, agents in description["groups"].items())
    tree = Tree(
        f"[bold]{escape(description['scenario'])}[/]: {num_envs} envs, {description['n_agents']} agents (groups: "
        f"{escape(groups)}), batch size {description['batch_size']}"
    )
    for section in ("action_spec", "reward_spec", "done_spec", "observation_spec"):
        _add_spec(tree.add(f"[bold]{section}[/]"), description[section])
    for section in ("action_keys", "reward_keys", "done_keys"):
        tree.add(f"[bold]{section}[/]: " + escape(", ".join(str(tuple(k)) for k in description[section])))
    console.print(tree)
    console.print("[green]check_env_specs passed[/]")


def _env_config(
    scenario: str | None,
    n_agents: int | None,
    max_steps: int | None,
    seed: int | None,
    discrete: bool,
    scenario_arg: list[str] | None,
) -> Any:
    """The env settings given; the defaults (the tutorial's) for the rest."""
    from marlnav_cli.experiment import env_config

    return env_config(
        scenario=scenario,
        n_agents=n_agents,
        max_steps=max_steps,
        seed=seed,
        discrete=discrete,
        scenario_args=parse_scenario_args(scenario_arg or []),
    )


def _refuse_env_options(**given: Any) -> None:
    """With a checkpoint the env is the one it was trained in: an env option would be silently ignored."""
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value not in (None, False, [])]
    if named:
        raise MarlnavError(
            f"the checkpoint fixes the env it runs in; {', '.join(named)} would be ignored: leave "
            f"{'it' if len(named) == 1 else 'them'} out (evaluate and render take --n-agents for "
            "another team size)"
        )


def _rollout_table(report: Any) -> Table:
    table = Table(title=f"rollout ({report.policy} actions), batch size {report.batch_size}")
    table.add_column("key")
    table.add_column("shape")
    table.add_column("dtype")
    for leaf in report.leaves:
        table.add_row(escape(".".join(leaf.key)), str(leaf.shape), leaf.dtype)
    return table


def _add_spec(node: Tree, spec: dict[str, Any]) -> None:
    for name, value in spec.items():
        if "shape" in value and isinstance(value["shape"], list):
            bounds = f" in [{value['low']:.3g}, {value['high']:.3g}]" if "low" in value else ""
            node.add(f"{escape(name)}: {value['type']} {tuple(value['shape'])} {value['dtype']}{bounds}")
        else:
            _add_spec(node.add(escape(name)), value)


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav rollout\n\n  marlnav rollout --steps 20 --num-envs 4 --json\n\n"
    "  marlnav rollout checkpoints/RUN/policy.safetensors",
)
def rollout(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(
            help="Act with this checkpoint's policy (or a shipped policy's, by name) instead of random actions.",
            show_default=False,
            metavar="CHECKPOINT",
            callback=lambda path: None if path is None else require_checkpoint_file(path),
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="Steps to run.", metavar="N")] = 5,
    scenario: Scenario = None,
    n_agents: NAgents = None,
    num_envs: NumEnvs = DEFAULTS.num_envs,
    max_steps: MaxSteps = None,
    discrete: Discrete = False,
    scenario_arg: ScenarioArgs = None,
    seed: Seed = None,
    device: Device = "auto",
    threads: Threads = None,
    as_json: AsJson = False,
) -> None:
    """Run a few steps with random actions (or a checkpoint's policy) and show the rollout TensorDict."""
    use_threads(threads)
    from marlnav_cli.experiment import rollout_summary

    if checkpoint is not None:
        _refuse_env_options(
            scenario=scenario,
            n_agents=n_agents,
            max_steps=max_steps,
            discrete=discrete,
            scenario_arg=scenario_arg,
            seed=seed,
        )
    config = (
        None if checkpoint is not None else _env_config(scenario, n_agents, max_steps, seed, discrete, scenario_arg)
    )
    report = rollout_summary(config, steps=steps, num_envs=num_envs, checkpoint=checkpoint, device_name=device)
    if as_json:
        _print_json(report.as_dict())
        return
    console.print(_rollout_table(report))
    rewards = ", ".join(f"{escape(name)}: {r:.3f}" for name, r in report.reward_per_agent.items())
    ran = report.steps_run
    ended = "" if ran == steps else f" (the episodes ended after {ran}: --max-steps or the scenario's end)"
    console.print(f"reward over {ran} steps{ended} (mean over envs): {rewards}")


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav evaluate checkpoints/RUN/policy.safetensors\n\n"
    "  marlnav evaluate ckpt.safetensors --episodes 500 --json\n\n"
    "  marlnav evaluate ckpt.safetensors --n-agents 5\n\n"
    "  marlnav evaluate ckpt.safetensors --sampled",
)
def evaluate(
    checkpoint: CheckpointPath,
    episodes: Annotated[int, typer.Option(help="Episodes to run (one vectorised env each).", metavar="N")] = 200,
    seed: Annotated[
        int | None,
        typer.Option(help="Evaluation seed (default: training seed + 1,000,000).", show_default=False, metavar="N"),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Refuse unless the checkpoint was trained on this scenario.", show_default=False, metavar="TEXT"
        ),
    ] = None,
    n_agents: Annotated[
        int | None,
        typer.Option(
            help="Run the checkpoint's shared policy with this many agents (default: as trained).",
            show_default=False,
            metavar="N",
        ),
    ] = None,
    sampled: Annotated[
        bool,
        typer.Option(
            "--sampled",
            help="Sample the policy's actions (as in training) instead of taking its most likely ones.",
            metavar="",
        ),
    ] = False,
    device: Device = "auto",
    threads: Threads = None,
    as_json: AsJson = False,
) -> None:
    """Run the policy deterministically and report reward, success (with its 95% interval), collisions and length
    next to random actions."""
    from marlnav_cli import api

    results = api.evaluate(
        checkpoint,
        episodes=episodes,
        seed=seed,
        scenario=scenario,
        n_agents=n_agents,
        sampled=sampled,
        device=device,
        threads=threads,
    )
    if as_json:
        _print_json(results.as_dict())
        return
    table = Table(
        title=f"{escape(str(checkpoint))}: {results.n_agents} agents, {episodes} episodes, seed "
        f"{results.seed}, step limit {results.max_steps}"
    )
    table.add_column("metric")
    table.add_column(f"policy ({results.policy_actions})", justify="right")
    table.add_column("random actions", justify="right")
    for label, figure in _evaluation_rows(results):
        table.add_row(escape(label), figure(results.policy), figure(results.random))
    console.print(table)
    console.print(_episode_end_note(results))


def _evaluation_rows(results: Any) -> list[tuple[str, Any]]:
    """Table rows: a label and how to read its figure from one side's results."""
    groups = list(results.policy.groups)
    rows: list[tuple[str, Any]] = []
    if len(groups) == 1:
        rows += [
            (
                "mean episode reward (± s.e.)",
                lambda side: f"{_number(side.mean_reward)} ± {_number(side.mean_reward_se)}",
            ),
            ("std episode reward", lambda side: _number(side.std_reward)),
        ]
    else:
        rows += [
            (f"mean episode reward, {group}", lambda side, g=group: _number(side.groups[g].mean_reward))
            for group in groups
        ]
    rows += [("success rate [95% interval]", lambda side: _rate(side.success_rate, side.success_rate_ci95))]
    if results.policy.goal_rate is not None:  # the two kinds of early end apart
        rows += [
            ("goal rate [95% interval]", lambda side: _rate(side.goal_rate, side.goal_rate_ci95)),
            ("failure rate [95% interval]", lambda side: _rate(side.failure_rate, side.failure_rate_ci95)),
        ]
    elif results.episode_end in (EpisodeEnd.MIXED.value, EpisodeEnd.FAILURE.value):
        rows += [(f"ended early ({results.episode_end})", lambda side: _number(side.ended_early_rate))]
    rows += [
        ("collisions per episode", lambda side: _number(side.mean_collisions)),
        ("mean episode length", lambda side: _number(side.mean_length)),
    ]
    return rows


def _rate(rate: float | None, interval: tuple[float, float] | None) -> str:
    return _number(rate) + ("" if interval is None else " [{:.3f}, {:.3f}]".format(*interval))


def _episode_end_note(results: Any) -> str:
    end, means = results.episode_end, results.episode_end_means
    if end == EpisodeEnd.SUCCESS.value:
        return f"success: the episode ended before the step limit ({means})"
    if end == EpisodeEnd.NEVER.value:
        return "success rate n/a: this scenario never ends before the step limit, so it defines no success"
    note = f"success rate n/a: this scenario's episodes end on {means}, so an early end is not success"
    if results.policy.goal_rate is not None:
        note += "; goal and failure rates tell them apart, read from the step each episode ended on"
    return note


def _number(value: float | str | None, digits: int = 3) -> str:
    return "n/a" if value in (None, "") else f"{float(value):.{digits}f}"


def _mean_and_interval(entry: dict[str, Any], metric: str, digits: int = 3) -> str:
    """A sweep summary's mean across seeds above its 95% interval, or n/a where no seed has the figure."""
    if f"{metric}_mean" not in entry:
        return "n/a"
    return (
        f"{entry[f'{metric}_mean']:.{digits}f}\n"
        f"[{entry[f'{metric}_ci_low']:.{digits}f}, {entry[f'{metric}_ci_high']:.{digits}f}]"
    )


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav render checkpoints/RUN/policy.safetensors nav.gif\n\n"
    "  marlnav render ckpt.safetensors three.gif --episodes 3\n\n"
    "  marlnav render ckpt.safetensors five.gif --n-agents 5\n\n"
    "  marlnav render ckpt.safetensors episode.mp4\n\n"
    "  marlnav render --random random.gif --n-agents 4",
)
def render(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="[CHECKPOINT] OUT.gif|OUT.mp4",
            help="Checkpoint and output path (.gif, or .mp4 with the video extra); only the output with --random.",
            show_default=False,
        ),
    ],
    episodes: Annotated[int, typer.Option(help="Episodes to render one after another.", metavar="N")] = 1,
    random: Annotated[
        bool, typer.Option("--random", help="Random actions instead of a trained policy.", metavar="")
    ] = False,
    annotate: Annotated[
        bool,
        typer.Option(
            "--annotate",
            help="Draw each frame's step and a legend of what the colours are (agents, goals).",
            metavar="",
        ),
    ] = False,
    scenario: Scenario = None,
    n_agents: NAgents = None,
    max_steps: MaxSteps = None,
    discrete: Discrete = False,
    scenario_arg: ScenarioArgs = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Episode seed (default: training seed + 1,000,000).", show_default=False, metavar="N"),
    ] = None,
    device: Device = "auto",
    threads: Threads = None,
    as_json: AsJson = False,
) -> None:
    """Render episodes of a policy (or random actions) to a looping GIF or an MP4 at the simulator's frame rate."""
    from marlnav_cli import api

    checkpoint, media_path = _render_paths(paths, random)
    if not random:  # --n-agents stays: the checkpoint's shared policy for another team size
        _refuse_env_options(scenario=scenario, max_steps=max_steps, discrete=discrete, scenario_arg=scenario_arg)
    config = _env_config(scenario, n_agents, max_steps, seed or 0, discrete, scenario_arg) if random else None
    with err_console.status("rendering..."):
        result = api.render(
            checkpoint,
            media_path,
            random_env=config,
            episodes=episodes,
            seed=seed,
            device=device,
            threads=threads,
            n_agents=None if random else n_agents,
            annotate=annotate,
        )
    if as_json:
        _print_json(result.as_dict())
        return
    console.print(
        f"wrote {escape(str(result.path))}: {result.frames} frames {result.width}x{result.height} "
        f"at {result.fps:.0f} fps, episode lengths {result.episode_lengths}"
    )


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav transfer checkpoints/navigation-3ag-mappo.safetensors --agents 1-8\n\n"
    "  marlnav transfer ckpt.safetensors --agents 2,3,4,6,8 --episodes 500 --out sizes.png --json",
)
def transfer(
    checkpoint: CheckpointPath,
    agents: Annotated[
        str, typer.Option(help="Team sizes: ranges and lists, e.g. 1-8 or 2,3,4,6,8.", metavar="TEXT")
    ] = "1-8",
    episodes: Annotated[int, typer.Option(help="Episodes per team size.", metavar="N")] = 200,
    seed: Annotated[
        int | None,
        typer.Option(help="Evaluation seed (default: training seed + 1,000,000).", show_default=False, metavar="N"),
    ] = None,
    out: Annotated[Path, typer.Option(help="PNG of the figures against team size.", metavar="PATH")] = Path(
        "transfer.png"
    ),
    device: Device = "auto",
    threads: Threads = None,
    as_json: AsJson = False,
) -> None:
    """Evaluate a shared policy at other team sizes: success (95% interval), length, collisions and reward
    against the number of agents, the policy beside random actions."""
    use_threads(threads)
    from marlnav_cli.config import parse_int_ranges
    from marlnav_cli.transfer import transfer as run_transfer

    sizes = parse_int_ranges(agents, flag="--agents", most=64, smallest=1)
    with err_console.status("evaluating...") as status:
        reports = run_transfer(
            checkpoint,
            sizes,
            out,
            episodes=episodes,
            seed=seed,
            device_name=device,
            on_size=lambda n: status.update(f"evaluating with {n} agents..."),
        )
    if as_json:
        _print_json({"plot": str(out), "team_sizes": [report.as_dict() for report in reports]})
        return
    console.print(_transfer_table(reports, checkpoint, episodes))
    console.print(f"plot: {escape(str(out))}")


def _transfer_table(reports: list[Any], checkpoint: Path, episodes: int) -> Table:
    table = Table(
        title=f"{escape(str(checkpoint))} (trained with {reports[0].trained_team} agents): "
        f"{episodes} episodes per team size"
    )
    # Two-line headers and an interval that never wraps: the table reads at 80 columns.
    table.add_column("agents", justify="right")
    table.add_column("success\n[95% interval]", justify="right", no_wrap=True)
    for column in ("random\nsuccess", "mean\nlength", "colli-\nsions", "mean\nreward", "random\nreward"):
        table.add_column(column, justify="right")
    for report in reports:
        policy, random_side = report.policy, report.random
        table.add_row(
            str(report.n_agents),
            _rate(policy.success_rate, policy.success_rate_ci95),
            _number(random_side.success_rate),
            _number(policy.mean_length, 1),
            _number(policy.mean_collisions, 2),
            _number(policy.mean_reward),
            _number(random_side.mean_reward),
        )
    return table


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav compare checkpoints/RUN_A checkpoints/RUN_B\n\n"
    "  marlnav compare checkpoints/navigation-3ag-mappo-zoo-* checkpoints/navigation-3ag-ippo-zoo-* --out m.png --json",
)
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders written by train.", show_default=False)],
    out: Annotated[Path, typer.Option(help="PNG with the overlaid learning curves.", metavar="PATH")] = Path(
        "compare.png"
    ),
    as_json: AsJson = False,
) -> None:
    """Overlay learning curves of several runs in one PNG and print their final figures."""
    from marlnav_cli.compare import compare_runs

    rows = compare_runs(runs, out)
    if as_json:
        _print_json({"plot": str(out), "runs": [row.as_dict() for row in rows]})
        return
    console.print(_compare_table(rows, out))


def _compare_table(rows: list[Any], out: Path) -> Table:
    """One row per run. The run's folder name already says its scenario, team, algorithm and seed: below
    120 columns those columns give way, and the name folds instead of being cut."""
    table = Table(title=f"{len(rows)} runs (curves in {escape(str(out))})")
    wide = console.width >= 120
    table.add_column("run", overflow="fold")
    described = ("algorithm", "scenario", "agents", "seed") if wide else ()
    for column in (*described, "frames", "final\nreward", "best\nreward", "evaluated\nsuccess", "time\n(s)"):
        table.add_column(column, justify="left" if column in ("algorithm", "scenario") else "right", no_wrap=True)
    for row in rows:
        details = (row.algorithm, escape(row.scenario), str(row.n_agents), str(row.seed)) if wide else ()
        table.add_row(
            escape(row.run),
            *details,
            str(row.frames),
            _number(row.final_reward)
            if row.final_reward_by_group is None
            else "\n".join(f"{name} {value:.3f}" for name, value in row.final_reward_by_group.items()),
            _number(row.best_reward),
            _number(row.evaluated_success, 2),
            f"{row.wall_s:.1f}",
        )
    return table


def _render_paths(paths: list[Path], random: bool) -> tuple[Path | None, Path]:
    """render's positional arguments: CHECKPOINT and OUT, or only OUT with --random."""
    if len(paths) != (1 if random else 2):
        raise MarlnavError(
            "give CHECKPOINT and OUT.gif (or OUT.mp4)"
            if not random
            else "with --random give only OUT.gif or OUT.mp4 (the scenario comes from the options)"
        )
    return (None, paths[0]) if random else (require_checkpoint_file(paths[0]), paths[1])


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav sweep --seeds 0-4 --set algo=mappo,ippo\n\n"
    "  marlnav sweep --seeds 0,1 --set lr=3e-4,1e-3 --set num_cells=64,128 --max-parallel 2\n\n"
    "  marlnav sweep --seeds 0-4 --frames-per-batch 600 --max-steps 50 --set lr=1e-3,3e-3\n\n"
    "  marlnav sweep --seeds 0-9 --set algo=mappo,ippo --address 10.0.0.5:6379 --gpus-per-trial 0.25",
)
@functools.partial(with_config_options, leave_out=("seed",))  # --seeds sets them
def sweep(
    settings: dict[str, Any],
    seeds: Annotated[str, typer.Option(help="Seeds: ranges and lists, e.g. 0-4 or 0,2,7.", metavar="TEXT")] = "0-2",
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Swept setting key=v1,v2,... (repeatable; any train setting, plus algo=mappo,ippo); "
            "one value fixes it.",
            show_default=False,
            metavar="TEXT",
        ),
    ] = None,
    preset: Preset = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="Base settings from TOML, over the preset.", show_default=False, metavar="PATH"),
    ] = None,
    scenario_arg: ScenarioArgs = None,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes per trial.", metavar="N")] = 200,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Sweep folder (default: checkpoints/sweep-<hash of the sweep>, so the same command resumes).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    address: RayAddress = None,
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = 0.0,
    max_parallel: MaxParallel = 4,
    device: Device = "cpu",
    as_json: AsJson = False,
) -> None:
    """Train and evaluate every combination of --set values x seeds as Ray tasks; summarise across seeds."""
    from marlnav_cli import sweep as sweeps
    from marlnav_cli.api import given_settings

    resources = sweeps.SweepResources(episodes, device, address, cpus_per_trial, gpus_per_trial, max_parallel).check()
    plan = sweeps.plan_sweep(
        given_settings(
            settings,
            preset=preset,
            scenario_args=parse_scenario_args(scenario_arg) if scenario_arg else None,
            config_file=config_file,
        ),
        set_values or [],
        preset=preset,
        seeds=seeds,
        folder=out,
    )
    err_console.print(f"sweep folder: {escape(str(plan.folder))} ({len(plan.trials)} trials)")
    outcome = sweeps.sweep_and_summarise(plan, resources, on_result=_print_trial_result)
    if as_json:
        _print_json({"folder": str(plan.folder), "summary": outcome.summary, "failed": outcome.failed})
    else:
        _print_sweep_summary(outcome)
    _exit_if_trials_failed(outcome)


# A scenario's own rate, in order of preference: success, the goal (goal-or-failure ends), ended early.
_RATES = (("eval_success_rate", "success"), ("eval_goal_rate", "goal"), ("eval_ended_early_rate", "ended early"))


def _print_trial_result(row: dict[str, Any], done: int, total: int) -> None:
    figure = next(
        (f"{label} {_number(row[key], 2)}" for key, label in _RATES if row.get(key) is not None),
        "success n/a",
    )
    ok = row["status"] == "ok"
    detail = f"reward {_number(row['eval_mean_reward'])}, {figure}" if ok else f"failed: {row['error']}"
    err_console.print(f"[{done}/{total}] {escape(row['trial'])}: {escape(detail)}")


def _print_sweep_summary(outcome: Any) -> None:
    folder = outcome.folder
    table = Table(title=f"sweep {escape(str(folder))}: evaluated figures across seeds (95% bootstrap intervals)")
    # The scenario's own figure: success; else, where the end can be the goal or a failure, the goal rate
    # (with the failure rate); else, where an end means only failure, how often episodes ended early.
    rate, name = "eval_success_rate", "success"
    for metric, label in _RATES:
        if any(f"{metric}_mean" in entry for entry in outcome.summary):
            rate, name = metric, label
            break
    # Means above their intervals, two-line headers, the config folding: the table reads at 80 columns.
    table.add_column("config", overflow="fold")
    columns = ["seeds\nok", "reward", f"{name}\n(worst seed)"] + (["failure"] if name == "goal" else [])
    for column in (*columns, "mean\nlength", "colli-\nsions"):
        table.add_column(column, justify="right", no_wrap=True)
    for entry in outcome.summary:
        figures = [
            _mean_and_interval(entry, "eval_mean_reward"),
            _mean_and_interval(entry, rate)
            + (f"\n({_number(entry[f'{rate}_min'])})" if f"{rate}_min" in entry else ""),
            *([_number(entry.get("eval_failure_rate_mean"))] if name == "goal" else []),
            _number(entry.get("eval_mean_length_mean"), 1),
            _number(entry.get("eval_collisions_mean"), 2),
        ]
        seeds = f"{entry['seeds_ok']}" + (f"\n({entry['seeds_failed']} failed)" if entry["seeds_failed"] else "")
        table.add_row(escape(entry["config"]), seeds, *figures)
    console.print(table)
    console.print(
        f"results: {escape(str(folder / 'results.csv'))}, summary: {escape(str(folder / 'summary.csv'))}, "
        f"curves: {escape(str(folder / 'curves.png'))}"
    )


def _exit_if_trials_failed(outcome: Any) -> None:
    if outcome.failed:
        err_console.print(
            f"error: {len(outcome.failed)} of {len(outcome.rows)} trials failed: "
            f"{escape(', '.join(outcome.failed[:5]))}"
        )
        raise typer.Exit(1)


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav tune --scenario navigation --trials 40\n\n"
    "  marlnav tune --scenario balance --trials 30 --frames 600000 --objective goal --max-parallel 2\n\n"
    "  marlnav tune --scenario sampling --space my-space.toml --seeds-per-trial 2 --final-seeds 100-104\n\n"
    "  marlnav tune --scenario navigation --trials 100 --address 10.0.0.5:6379\n\n"
    "A space file names training settings, each a choice or a range:\n\n"
    "  lr = { low = 1e-4, high = 5e-3, log = true }\n\n"
    "  gamma = { values = [0.9, 0.95, 0.99] }",
)
@functools.partial(with_config_options, leave_out=("seed",))  # --seeds-per-trial and --final-seeds set them
def tune(
    settings: dict[str, Any],
    trials: Annotated[int, typer.Option(help="Trials the search runs (each: train, then evaluate).", metavar="N")] = 20,
    objective: Annotated[
        str | None,
        typer.Option(
            help="What the search maximises, evaluated on held-out episodes: success, goal or reward "
            "(default: success where the scenario's end means success, goal where it can be the goal or a "
            "failure, else reward).",
            show_default=False,
            metavar="NAME",
        ),
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option(
            help="TOML search space over training settings (default: a PPO space of lr, gamma, lmbda, epochs, "
            "minibatch size, entropy, clip, net width, batch size and advantage normalisation).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    seeds_per_trial: Annotated[
        int, typer.Option(help="Runs per trial (seeds 0 to K-1); its objective is their mean.", metavar="K")
    ] = 1,
    final_seeds: Annotated[
        str,
        typer.Option(help="Seeds the best settings are re-trained on: the reported result.", metavar="TEXT"),
    ] = "100-102",
    prune: Annotated[
        bool,
        typer.Option(
            "--prune/--no-prune",
            help="Stop trials that trail the others at the same frames (ASHA, on evaluations during training).",
            metavar="",
        ),
    ] = True,
    sampler_seed: Annotated[int, typer.Option(help="Seed of Optuna's TPE sampler.", metavar="N")] = 0,
    preset: Preset = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="Base settings from TOML, over the preset.", show_default=False, metavar="PATH"),
    ] = None,
    scenario_arg: ScenarioArgs = None,
    episodes: Annotated[int, typer.Option(help="Held-out evaluation episodes per run.", metavar="N")] = 200,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Search folder (default: checkpoints/tune-<scenario>-<hash of the search>, so the same command "
            "resumes).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    address: RayAddress = None,
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = 0.0,
    max_parallel: MaxParallel = 2,
    device: Device = "cpu",
    as_json: AsJson = False,
) -> None:
    """Search training settings with Optuna's TPE on Ray Tune; re-train the best on unseen seeds."""
    from marlnav_cli import api

    plan, resources = api.plan_tune(
        settings,
        trials=trials,
        objective=objective,
        space=space,
        seeds_per_trial=seeds_per_trial,
        final_seeds=final_seeds,
        prune=prune,
        sampler_seed=sampler_seed,
        preset=preset,
        config_file=config_file,
        scenario_args=parse_scenario_args(scenario_arg) if scenario_arg else None,
        episodes=episodes,
        out=out,
        address=address,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        max_parallel=max_parallel,
        device=device,
        command=shlex.join(["marlnav", *_invocation]),
    )
    err_console.print(
        f"tune folder: {escape(str(plan.folder))} ({plan.trials} trials, {plan.objective}, "
        f"{', '.join(parameter.describe() for parameter in plan.space)})"
    )
    from marlnav_cli.tune import tune_and_report

    outcome = tune_and_report(
        plan, resources, on_line=lambda line: err_console.print(escape(line)), on_final=_print_trial_result
    )
    if as_json:
        _print_json(_tune_json(outcome))
    else:
        _print_tune(outcome)
    if outcome.best is None:
        err_console.print("error: no trial completed; trials.csv holds each trial's error")
        raise typer.Exit(1)
    if outcome.final is not None:
        _exit_if_trials_failed(outcome.final)


def _tune_json(outcome: Any) -> dict[str, Any]:
    return {
        "folder": str(outcome.plan.folder),
        "objective": outcome.plan.objective,
        "trials": [row.as_csv() for row in outcome.rows],
        "best": {"trial": outcome.best.trial, "settings": outcome.best.settings, "objective": outcome.best.objective}
        if outcome.best
        else None,
        "final": outcome.final_figures,
        "importance": outcome.importance,
    }


def _print_tune(outcome: Any) -> None:
    plan = outcome.plan
    table = Table(title=f"tune {escape(str(plan.folder))}: {plan.objective} on held-out episodes")
    table.add_column("trial", overflow="fold")
    table.add_column("settings", overflow="fold")
    table.add_column(plan.objective, justify="right")
    table.add_column("status", overflow="fold")  # a failed trial's error, whole
    table.add_column("time", justify="right", no_wrap=True)
    for row in sorted(outcome.rows, key=lambda row: (row.objective is None, -(row.objective or 0.0))):
        settings = ", ".join(
            f"{name} {f'{value:.3g}' if isinstance(value, float) else value}" for name, value in row.settings.items()
        )
        status = row.status if not row.error else f"failed: {row.error}"
        table.add_row(
            escape(row.trial), escape(settings), _number(row.objective), escape(status), f"{row.wall_s:.0f} s"
        )
    console.print(table)
    if outcome.importance:
        console.print(
            "importance (fANOVA): "
            + ", ".join(f"{name} {value:.2f}" for name, value in list(outcome.importance.items())[:5])
        )
    if outcome.best is None:
        return
    figures = outcome.final_figures or {}
    metric = plan.metric
    if f"{metric}_mean" in figures:
        console.print(
            f"result: the best settings ({escape(outcome.best.trial)}, search's own {_number(outcome.best.objective)})"
            f" re-trained on seeds {escape(','.join(map(str, plan.final_seeds)))}: {plan.objective} "
            f"{_mean_and_interval(figures, metric)} (worst seed {_number(figures[f'{metric}_min'])})"
        )
    folder = plan.folder
    console.print(
        f"trials: {escape(str(folder / 'trials.csv'))}, best config: {escape(str(folder / 'best-config.toml'))}, "
        f"zoo entry: {escape(str(folder / 'zoo-entry.toml'))}, plot: {escape(str(folder / 'tune.png'))}"
    )


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav export checkpoints/RUN/policy.safetensors policy.onnx\n\n"
    "  marlnav export checkpoints/RUN/policy.safetensors checkpoints/navigation-3ag-mappo.safetensors",
)
def export(
    checkpoint: CheckpointPath,
    out: Annotated[
        Path,
        typer.Argument(
            help="policy.onnx (an ONNX model, checked against marlnav's actions) or a policy-only .safetensors.",
            show_default=False,
        ),
    ],
    threads: Threads = None,
    as_json: AsJson = False,
) -> None:
    """Export the policy: to ONNX for onnxruntime (deterministic actions, checked for parity on real
    observations before it is written), or as a small policy-only checkpoint that evaluate, render and
    rollout take."""
    from marlnav_cli import api

    result = api.export(checkpoint, out, threads=threads)
    if as_json:
        _print_json(result)
        return
    detail = ""
    if "max_abs_difference" in result:
        detail = (
            f"; onnxruntime matches marlnav on {result['observations_checked']} observations"
            + (
                f" at team sizes {','.join(map(str, result['team_sizes_checked']))}"
                if len(result["team_sizes_checked"]) > 1
                else ""
            )
            + " (largest difference "
            f"{result['max_abs_difference']:.2g}, {100 * result['actions_at_edge']:.0f}% of action components "
            "at the box edges)"
        )
    console.print(f"wrote {escape(str(out))} ({result['size_bytes'] / 1024:.0f} KiB){escape(detail)}")


@app.command(
    cls=_Command,
    epilog="Examples:\n\n  marlnav scenarios\n\n  marlnav scenarios --details\n\n  marlnav scenarios --details --json",
)
def scenarios(
    details: Annotated[
        bool,
        typer.Option(
            "--details",
            help="Build each scenario (a few seconds each) and show its "
            "agent groups, observation and action sizes, and what its end means.",
            metavar="",
        ),
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown",
            help="With --details: the table as Markdown (docs/scenarios.md's is this output).",
            metavar="",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """List the VMAS scenarios --scenario accepts."""
    from marlnav_cli.config import available_scenarios

    names = available_scenarios()
    if not details:
        _print_json(names) if as_json else console.print("\n".join(names))
        return
    from marlnav_cli.experiment import describe_scenario  # torch: seconds, only where scenarios are built

    with err_console.status("building scenarios...") as status:
        described = []
        for name in names:
            status.update(f"building {name}...")
            described.append(describe_scenario(name))
    if as_json:
        _print_json(described)
        return
    if markdown:
        console.print(scenarios_markdown(described), markup=False, highlight=False)
        return
    console.print(_scenarios_table(described))


def _scenarios_table(described: list[dict[str, Any]]) -> Table:
    table = Table(title="VMAS scenarios with their default settings")
    for column in (
        "scenario",
        "groups (agents: observation, continuous action / discrete choices)",
        "team size",
        "episode end",
        "zoo entry (train's default settings)",
    ):
        table.add_column(column)
    for entry in described:
        groups = "; ".join(
            f"{name} x{g['agents']}: {g['observation_size']}, {g['action_size']} / {g['discrete_actions']}"
            for name, g in entry["groups"].items()
        )
        end = (
            entry["episode_end"]
            if entry["episode_end"] == "never"
            else f"{entry['episode_end']}: {entry['episode_end_means']}"
        )
        zoo_entry = entry["zoo_entry"]
        zoo_text = "none: the fast preset" if zoo_entry is None else _zoo_entry_text(zoo_entry)
        table.add_row(entry["scenario"], escape(groups), entry["team_size"], escape(end), escape(zoo_text))
    return table


def scenarios_markdown(described: list[dict[str, Any]]) -> str:
    """`scenarios --details` as the Markdown table docs/scenarios.md holds (a test compares them)."""
    lines = [
        "| scenario | agents: groups (observation size; continuous action size / discrete choices) "
        "| team size set by | episode end means |",
        "| --- | --- | --- | --- |",
    ]
    for entry in described:
        groups = "; ".join(
            f"{name} x{g['agents']} ({g['observation_size']}; {g['action_size']} / {g['discrete_actions']})"
            for name, g in entry["groups"].items()
        )
        team = entry["team_size"]
        if team not in ("fixed", "--n-agents"):
            team = " ".join(f"`--scenario-arg {argument}`" for argument in team.split())
        elif team == "--n-agents":
            team = "`--n-agents`"
        end, means = entry["episode_end"], entry["episode_end_means"]
        if end == EpisodeEnd.SUCCESS.value:
            end_text = f"**success**: {means}"
        elif end == EpisodeEnd.NEVER.value:
            end_text = "never ends (no success rate)"
        else:
            end_text = f"{end}: {means} (no success rate)"
        lines.append(f"| {entry['scenario']} | {entry['n_agents']}: {groups} | {team} | {end_text} |")
    return "\n".join(lines)


def _zoo_entry_text(entry: dict[str, Any]) -> str:
    changed = " ".join(_as_options(name, value) for name, value in entry["settings"].items())
    return f"{entry['frames']:,} frames" + (f"; {changed}" if changed else "; the fast preset")


def _as_options(name: str, value: Any) -> str:
    """A setting as the train options that give it."""
    if name == "scenario_args":
        return " ".join(f"--scenario-arg {key}={item}" for key, item in value.items())
    if isinstance(value, bool):
        off = {f.name: f.metadata.get("off") for f in fields(TrainConfig)}[name]
        return flag_of(name) if value or off is None else off
    return f"{flag_of(name)} {value}"


@app.command(cls=_Command)
def version() -> None:
    """Print marlnav's version."""
    console.print(__version__)


def _print_version(asked: bool) -> None:
    if asked:
        console.print(__version__)
        raise typer.Exit()


@app.callback()
def _app_options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print marlnav's version and exit.", is_eager=True, callback=_print_version, metavar=""
        ),
    ] = False,
) -> None:
    """Train, inspect, evaluate and render multi-agent PPO (MAPPO/IPPO) policies on VMAS."""


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """marlnav's own warnings (MarlnavWarning) as one `warning:` line each, once per command; others as usual."""
    shown: set[str] = set()
    library_way = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if not issubclass(category, MarlnavWarning):
            library_way(message, category, *args, **kwargs)
        elif str(message) not in shown:
            shown.add(str(message))
            err_console.print(f"warning: {escape(' '.join(str(message).split()))}")

    with warnings.catch_warnings():
        warnings.simplefilter("always", MarlnavWarning)
        warnings.showwarning = show
        yield


_invocation: list[str] = []  # the arguments of the running command, which tune records in its zoo entry


def run(argv: list[str] | None = None) -> int:
    """Run the app and return its exit code; bad input of any kind becomes one line and code 2."""
    _invocation[:] = sys.argv[1:] if argv is None else argv
    try:
        with _warnings_as_lines():
            result = app(args=argv, prog_name="marlnav", standalone_mode=False)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.TyperException as error:
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        if "NoArgsIsHelp" in type(error).__name__:
            console.print(message)
            return 0
        err_console.print(f"error: {escape(' '.join(message.split()))}")
        return getattr(error, "exit_code", 2)
    except MarlnavError as error:
        err_console.print(f"error: {escape(' '.join(str(error).split()))}")
        return 2
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
