"""The experiment seam: what each command does, as plain functions of a config or a checkpoint.

Commands in cli.py only parse options and print; everything they run is here.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from tensordict.nn import TensorDictSequential
from torchrl.envs import TransformedEnv
from torchrl.envs.utils import check_env_specs
from torchrl.modules import ProbabilisticActor

from marlnav_cli.checkpoint import Checkpoint, load_weights, read_checkpoint, save_checkpoint, weight_prefixes
from marlnav_cli.config import (
    MAX_COUNT,
    EnvConfig,
    TrainConfig,
    check_fits_in_memory,
    check_positive,
    check_seed,
    default_env,
)
from marlnav_cli.curriculum import stage_arguments
from marlnav_cli.display import ensure_display
from marlnav_cli.envs import (
    agent_groups,
    describe_env,
    entity_legend,
    fixed_team_size,
    frame_rate,
    group_layout,
    make_env,
    observation_size,
    resolve_device,
)
from marlnav_cli.episodes import (
    EVAL_SEED_OFFSET,
    EvaluationReport,
    RolloutReport,
    describe_rollout,
    evaluate,
    render_frames,
    rollout,
)
from marlnav_cli.errors import ConfigError, MarlnavError, MarlnavWarning, TrainingDiverged
from marlnav_cli.files import ensure_folder, folder_lock, remove_stale_temporaries, write_text_atomic
from marlnav_cli.heuristics import heuristic_to_imitate
from marlnav_cli.imitation import ImitationRow
from marlnav_cli.media import RenderedMedia, annotate_frames, check_media_path, write_media
from marlnav_cli.metrics import check_logger, log_iteration, make_logger, plot_curve, write_metrics
from marlnav_cli.models import build_policies, joint_actor
from marlnav_cli.scenarios import TEAM_SIZE_ARGUMENTS, end_meaning, team_size_hint
from marlnav_cli.train import TrainState, check_resumable, train, training_damage
from marlnav_cli.validation import EVAL_KEYS, EvaluationSchedule, evaluate_iteration, quality
from marlnav_cli.zoo import starting_config, zoo

CHECKPOINTS_FOLDER = Path("checkpoints")
ConfigT = TypeVar("ConfigT", EnvConfig, TrainConfig)
# Evaluation during training by default: every 8 iterations (and the last), 100 held-out episodes. An
# evaluation costs its max_steps simulator steps whatever the episode count (the episodes are vectorised),
# so the schedule, not the episodes, sets the cost (measured in docs/learning.md).
DEFAULT_EVALUATION = EvaluationSchedule(every=8, episodes=100)


# --- train -------------------------------------------------------------------------------------


class RunFiles:
    """Where a run keeps its outputs, all in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.checkpoint = folder / "policy.safetensors"
        self.best_checkpoint = folder / "best.safetensors"
        self.metrics_csv = folder / "metrics.csv"
        self.metrics_jsonl = folder / "metrics.jsonl"
        self.curve = folder / "curve.png"
        self.config = folder / "config.toml"
        self.imitation_csv = folder / "imitation.csv"  # --imitate-heuristic's batches, before training
        self.imitation_jsonl = folder / "imitation.jsonl"
        self.logger_outputs = [folder / name for name in ("tensorboard", "csv", "wandb", "mlruns")]

    def run_outputs(self) -> list[Path]:
        """Everything a run writes here, the marks of a folder that already holds one."""
        return [
            self.checkpoint,
            self.best_checkpoint,
            self.metrics_csv,
            self.metrics_jsonl,
            self.curve,
            self.config,
            self.imitation_csv,
            self.imitation_jsonl,
            *self.logger_outputs,
        ]

    def outputs(self) -> dict[str, Path]:
        """The outputs a user opens, by label, those that exist."""
        labelled = {
            "checkpoint": self.checkpoint,
            "best": self.best_checkpoint,
            "metrics": self.metrics_csv,
            "curve": self.curve,
            "config": self.config,
            "imitation": self.imitation_csv,
        }
        return {label: path for label, path in labelled.items() if path.exists()}


@dataclass
class TrainOutcome:
    files: RunFiles
    state: TrainState
    interrupted: bool
    wall_s: float
    stop_signal: int | None = None  # SIGINT or SIGTERM when one stopped the run early

    @property
    def exit_code(self) -> int:
        """0, or the shell's 128 + signal: 130 after Ctrl-C, 143 after SIGTERM."""
        return 128 + self.stop_signal if self.interrupted and self.stop_signal else 130 if self.interrupted else 0


def default_run_folder(config: TrainConfig, start: str) -> Path:
    """checkpoints/<scenario>-<n>ag-<algo>-<start>-seed<k>-<time>; `start` says what the settings came from
    (a preset's name, zoo, config), so a glob over run folders can tell presets apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{config.scenario}-{config.n_agents}ag-{config.algorithm}-{start}-seed{config.seed}-{stamp}"
    return CHECKPOINTS_FOLDER / name


def command_config(
    given: dict[str, Any], *, preset: str | None, config_file: Path | None, resume: Path | None
) -> tuple[TrainConfig, Checkpoint | None]:
    """train's settings: the given ones over the preset, or over the checkpoint it resumes (with that
    checkpoint, read and checked whole)."""
    if resume is not None and (preset is not None or config_file is not None):
        raise MarlnavError("--resume continues a run with its own settings; --preset and --config don't apply")
    checkpoint = read_checkpoint(resume) if resume is not None else None
    return resolve_train_config(given, preset=preset, resume=checkpoint), checkpoint


def resolve_train_config(
    overrides: dict[str, Any], *, preset: str | None = None, resume: Checkpoint | None = None
) -> TrainConfig:
    """A preset (None: the scenario's zoo entry, else the default preset), or a resumed checkpoint's
    config, with the options the user gave on top.

    A resumed run may only be extended (a larger total_frames): any other change would make it a
    different run that merely starts from these weights.
    """
    if resume is None:
        start = starting_config(preset, overrides.get("scenario", TrainConfig.scenario))
        config = dataclasses.replace(start, **overrides)
        if config.team_sizes and config.mappo and "critic" not in overrides:
            config = dataclasses.replace(config, critic="deepsets")  # the centralised critic for any team size
        return fit_team_size(config.validate(), explicit="n_agents" in overrides)
    resume.check_resumable()
    check_resumable(resume)
    done_frames = resume.history[-1]["frames"] if resume.history else 0
    if "total_frames" in overrides and overrides["total_frames"] < done_frames:
        raise ConfigError(
            f"--frames {overrides['total_frames']} is below the {done_frames} frames {resume.path} has already trained"
        )
    changed = sorted(
        name for name, value in overrides.items() if name != "total_frames" and getattr(resume.config, name) != value
    )
    if changed:
        raise ConfigError(
            f"--resume continues {resume.path} with its own settings; only --frames may change, "
            f"not {', '.join(changed)}"
        )
    return dataclasses.replace(resume.config, **overrides).validate()


def fit_team_size(config: ConfigT, *, explicit: bool) -> ConfigT:
    """The scenario's own team size where it ignores n_agents; asking for another one is refused, saying
    how that scenario's team is set. Checked before any run folder exists, as is every curriculum stage
    (VMAS builds each once, refusing arguments it does not take)."""
    if isinstance(config, TrainConfig) and config.curriculum:
        for stage_args in stage_arguments(config.curriculum, config.scenario_args)[:-1]:
            fixed_team_size(dataclasses.replace(config, scenario_args=stage_args))
    if isinstance(config, TrainConfig) and config.team_sizes:
        for size in config.team_size_list:  # each size built once: VMAS refuses a size it cannot take
            if fixed_team_size(dataclasses.replace(config, n_agents=size)) is not None:
                raise ConfigError(
                    f"scenario {config.scenario!r} sets its own team size, so it cannot train across team "
                    f"sizes; leave --n-agents {config.team_sizes} out"
                )
        return config
    fixed = fixed_team_size(config)
    if fixed is None or fixed == config.n_agents:
        return config
    if explicit:
        raise ConfigError(f"{team_size_hint(config.scenario, fixed)}, not --n-agents {config.n_agents}")
    return dataclasses.replace(config, n_agents=fixed).validate()


def env_config(
    *,
    scenario: str | None,
    n_agents: int | None,
    max_steps: int | None,
    seed: int | None,
    discrete: bool,
    scenario_args: dict[str, Any],
) -> EnvConfig:
    """The env settings given (None: the default), for commands that build an env but train nothing."""
    config = default_env(
        scenario=scenario,
        n_agents=n_agents,
        max_steps=max_steps,
        seed=seed,
        discrete=discrete,
        scenario_args=scenario_args,
    ).validate()
    return fit_team_size(config, explicit=n_agents is not None)


def run_training(
    config: TrainConfig,
    *,
    device_name: str,
    run_folder: Path | None,
    checkpoint_every: int = 1,
    resume: Checkpoint | None = None,
    logger_kind: str = "none",
    overwrite: bool = False,
    evaluation: EvaluationSchedule = DEFAULT_EVALUATION,
    on_iteration: Callable[[TrainState], None] | None = None,
    on_start: Callable[[RunFiles, TrainConfig, int], None] | None = None,
    start: str = "config",
    on_imitation: Callable[[ImitationRow], None] | None = None,
) -> TrainOutcome:
    """Train, keeping the latest and best checkpoints and the metrics on disk as it goes; with
    `evaluation`, the policy is evaluated every few iterations and the best checkpoint is the best evaluated.

    The run folder belongs to this run alone: it is locked while training, a folder holding another run
    is refused (unless `overwrite`, or it is the resumed run's own), and a run that fails before it
    saved anything leaves no folder behind. `start` (what the settings came from) names a default folder.
    """
    config.validate()
    check_positive("--checkpoint-every", checkpoint_every)
    if evaluation.every < 0 or evaluation.every > MAX_COUNT:
        raise ConfigError(f"--eval-every must be 0 (off) or a positive integer, got {evaluation.every}")
    # Checked even when --eval-every 0 leaves them unused: a bad value is a typo whether or not it runs.
    check_positive("--eval-episodes", evaluation.episodes)
    check_fits_in_memory(evaluation.episodes * config.max_steps, config.n_agents)
    device = resolve_device(device_name)
    if run_folder is None:
        run_folder = resume.path.parent if resume is not None else default_run_folder(config, start)
    check_logger(logger_kind)
    if config.imitate_heuristic and resume is None:
        heuristic_to_imitate(config)  # one line now, not after the run folder exists
    created = not run_folder.exists()
    files = RunFiles(ensure_folder(run_folder))
    try:
        with folder_lock(files.folder):
            _claim_folder(files, resume=resume, overwrite=overwrite)
            logger = make_logger(logger_kind, files.folder)
            try:
                return _train_into(
                    files,
                    config,
                    device,
                    checkpoint_every=checkpoint_every,
                    resume=resume,
                    logger=logger,
                    evaluation=evaluation,
                    on_iteration=on_iteration,
                    on_start=on_start,
                    on_imitation=on_imitation,
                )
            finally:
                if logger is not None:
                    logger.close()  # flushes and finishes its run now: a sweep trains many runs in one process
    except MarlnavError:
        if created and not files.checkpoint.exists():
            shutil.rmtree(files.folder, ignore_errors=True)
        raise


def _claim_folder(files: RunFiles, *, resume: Checkpoint | None, overwrite: bool) -> None:
    remove_stale_temporaries(files.folder)  # left by a killed save; the lock says no one else writes
    own = resume is not None and resume.path.parent.resolve() == files.folder.resolve()
    existing = [path for path in files.run_outputs() if path.exists()]
    if not existing or own:
        return
    if not overwrite:
        raise MarlnavError(
            f"{files.folder} already holds a run ({existing[0].name}); continue it with --resume "
            f"{files.checkpoint}, or pass --overwrite to replace it"
        )
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _train_into(
    files: RunFiles,
    config: TrainConfig,
    device: torch.device,
    *,
    checkpoint_every: int,
    resume: Checkpoint | None,
    logger: Any,
    evaluation: EvaluationSchedule,
    on_iteration: Callable[[TrainState], None] | None,
    on_start: Callable[[RunFiles, TrainConfig, int], None] | None,
    on_imitation: Callable[[ImitationRow], None] | None = None,
) -> TrainOutcome:
    write_text_atomic(files.config, config.to_toml())
    history = resume.history if resume is not None else []
    if on_start is not None:  # the run folder, the settings, and the iterations already done
        on_start(files, config, len(history))
    started = time.perf_counter()
    # Candidates for best.safetensors: evaluated iterations when evaluation is on, else every iteration.
    candidates = [row for row in history if not evaluation.enabled or row.get("eval_s") is not None]
    best = max((quality(row) for row in candidates), default=None)

    def after_iteration(state: TrainState) -> None:
        nonlocal best
        row = state.history[-1]
        if evaluation.enabled:
            row.update(dict.fromkeys(EVAL_KEYS))  # every row has the columns; None where not evaluated
            if evaluation.due(row["iteration"], config.n_iters):
                row.update(evaluate_iteration(state, evaluation, device))
                row["wall_s"] += row["eval_s"]  # evaluation counts in the run's time
        if logger is not None:
            log_iteration(logger, row)
        if (not evaluation.enabled or row["eval_s"] is not None) and (best is None or quality(row) > best):
            best = quality(row)
            _save(files.best_checkpoint, state, complete=False)
        if len(state.history) % checkpoint_every == 0:
            _save(files.checkpoint, state, complete=False)
            # Only after the checkpoint holds them: metrics on disk never run ahead of what resumes.
            write_metrics(state.history, files.metrics_csv, files.metrics_jsonl)
        if on_iteration is not None:
            on_iteration(state)

    imitation: list[ImitationRow] = []

    def after_imitation_batch(row: ImitationRow) -> None:
        imitation.append(row)
        write_metrics(imitation, files.imitation_csv, files.imitation_jsonl)
        if on_imitation is not None:
            on_imitation(row)

    try:
        with _stop_on_signals() as stop_signal:
            state = train(
                config,
                device,
                on_iteration=after_iteration,
                should_stop=lambda: stop_signal() is not None,
                resume=resume,
                on_imitation=after_imitation_batch,
            )
    except TrainingDiverged as error:
        kept = f"last good checkpoint kept at {files.checkpoint}" if files.checkpoint.exists() else "no checkpoint kept"
        raise TrainingDiverged(f"{error}; {kept}; try a lower --lr or --max-grad-norm") from None
    interrupted = len(state.history) < config.n_iters
    _save(files.checkpoint, state, complete=not interrupted)
    write_metrics(state.history, files.metrics_csv, files.metrics_jsonl)
    if state.history:
        plot_curve(
            state.history,
            files.curve,
            f"{config.algorithm.upper()} on {config.scenario}, {config.n_agents} agents, seed {config.seed}",
        )
    return TrainOutcome(
        files=files,
        state=state,
        interrupted=interrupted,
        wall_s=time.perf_counter() - started,
        stop_signal=stop_signal(),
    )


def _save(path: Path, state: TrainState, *, complete: bool) -> None:
    last = state.history[-1] if state.history else {}
    summary = {
        "frames": state.frames,
        "iterations": len(state.history),
        "final_reward": state.final_reward,
        "wall_s": round(last.get("wall_s", 0.0), 3),
        "complete": complete,
    }
    save_checkpoint(path, state.config, state.groups, state.tensors(), summary, state.history)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what a cluster scheduler sends


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], int | None]]:
    """The first Ctrl-C or SIGTERM asks training to stop after the current iteration (and save); a
    second one aborts. Yields a function giving the signal that asked, or None."""
    received: int | None = None

    def handler(signum: int, frame: Any) -> None:
        nonlocal received
        if received is not None:
            raise KeyboardInterrupt
        received = signum

    if threading.current_thread() is not threading.main_thread():  # e.g. inside a Ray worker
        yield lambda: None
        return
    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield lambda: received
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


# --- loading a trained policy ------------------------------------------------------------------


@dataclass
class LoadedPolicy:
    checkpoint: Checkpoint
    config: TrainConfig  # the checkpoint's, with the team size asked for
    policies: dict[str, ProbabilisticActor]  # per agent group, in the env's group order
    actor: TensorDictSequential  # every group's policy as one module, for env.rollout
    device: torch.device


def load_policy(
    path: Path, *, device_name: str = "auto", scenario: str | None = None, n_agents: int | None = None
) -> LoadedPolicy:
    """Rebuild the exact policy from the checkpoint alone and load its weights strictly.

    With `n_agents`, a shared policy on decentralised observations is rebuilt for that many agents: the
    same weights then act for every agent of the larger or smaller team.
    """
    checkpoint = read_checkpoint(path)
    checkpoint.check_matches(scenario=scenario)
    device = resolve_device(device_name)
    config = checkpoint.config
    env = make_env(config, num_envs=1, seed=config.seed, device=device)
    checkpoint.check_groups(group_layout(env))
    if n_agents is not None and n_agents != config.n_agents:
        config, env = _with_team_size(checkpoint, env, n_agents, device)
    policies = build_policies(env, config, device)
    for group, (policy_prefix, _) in weight_prefixes(list(policies)).items():
        load_weights(policies[group], checkpoint, policy_prefix)
    actor = joint_actor(policies)
    actor.eval()
    damage = _training_damage_once(checkpoint)  # the policy loaded: only the rest can be damaged now
    if damage is not None:
        warnings.warn(f"{damage}; its policy runs, but the file cannot be resumed", MarlnavWarning, stacklevel=2)
    return LoadedPolicy(checkpoint=checkpoint, config=config, policies=policies, actor=actor, device=device)


_DAMAGE_SEEN: dict[tuple[Path, int, int], str | None] = {}


def _training_damage_once(checkpoint: Checkpoint) -> str | None:
    """training_damage, checked once per file version (transfer loads the same file at every team size)."""
    status = checkpoint.path.stat()
    key = (checkpoint.path.resolve(), status.st_mtime_ns, status.st_size)
    if key not in _DAMAGE_SEEN:
        _DAMAGE_SEEN[key] = training_damage(checkpoint)
    return _DAMAGE_SEEN[key]


def _with_team_size(
    checkpoint: Checkpoint, trained_env: TransformedEnv, n_agents: int, device: torch.device
) -> tuple[TrainConfig, TransformedEnv]:
    """The config and env for another team size, or one line saying why this policy cannot take it."""
    trained = checkpoint.config
    groups = agent_groups(trained_env)
    if len(groups) > 1:
        raise ConfigError(
            f"{checkpoint.path} has several agent groups ({', '.join(g.name for g in groups)}); "
            "--n-agents changes the size of a single-group team only"
        )
    if not trained.share_policy:
        raise ConfigError(
            f"{checkpoint.path} has one set of weights per agent (trained with --no-share-policy), "
            f"so it cannot act for {n_agents} agents; train with a shared policy"
        )
    other = dataclasses.replace(trained, n_agents=n_agents, team_sizes="", team_mix="cycle").validate()
    if fixed_team_size(other) is not None:
        raise ConfigError(
            f"scenario {trained.scenario!r} has a fixed team of {trained.n_agents} agents; --n-agents cannot change it"
        )
    env = make_env(other, num_envs=1, seed=other.seed, device=device)
    trained_size, size = observation_size(trained_env, groups[0]), observation_size(env, agent_groups(env)[0])
    if size != trained_size:
        raise ConfigError(
            f"with {n_agents} agents an agent of {trained.scenario!r} observes {size} numbers, with "
            f"{trained.n_agents} (as trained) {trained_size}: its observation depends on the team "
            f"size (scenario args {trained.scenario_args}), so the policy cannot read it"
        )
    return other, env


# --- evaluate, render, rollout, inspect-specs --------------------------------------------------


def evaluate_checkpoint(
    path: Path,
    *,
    episodes: int,
    seed: int | None,
    device_name: str,
    scenario: str | None = None,
    n_agents: int | None = None,
    deterministic: bool = True,
) -> EvaluationReport:
    check_positive("--episodes", episodes)
    if seed is not None:
        check_seed(seed)
    loaded = load_policy(path, device_name=device_name, scenario=scenario, n_agents=n_agents)
    config = loaded.config
    check_fits_in_memory(episodes * config.max_steps, config.n_agents)  # one env per episode, all steps kept
    eval_seed = config.seed + EVAL_SEED_OFFSET if seed is None else seed
    results = evaluate(
        config, loaded.actor, episodes=episodes, seed=eval_seed, device=loaded.device, deterministic=deterministic
    )
    frames = loaded.checkpoint.summary.get("frames")
    return dataclasses.replace(
        results,
        checkpoint=str(path),
        trained_frames=frames if isinstance(frames, int) else None,
        trained_n_agents=loaded.checkpoint.config.n_agents,
        trained_team_sizes=loaded.checkpoint.config.team_size_list,
    )


def render_episodes(
    out: Path,
    *,
    checkpoint: Path | None,
    config: EnvConfig | None,
    episodes: int,
    seed: int | None,
    device_name: str,
    n_agents: int | None = None,
    annotate: bool = False,
) -> RenderedMedia:
    """Render `episodes` episodes of the checkpoint's policy (or random actions) into a GIF; with
    `n_agents`, the checkpoint's shared policy acts for that many agents; with `annotate`, each frame
    says its step and what the colours are."""
    check_media_path(out)
    check_positive("--episodes", episodes)
    if seed is not None:
        check_seed(seed)
    if checkpoint is not None:
        loaded = load_policy(checkpoint, device_name=device_name, n_agents=n_agents)
        config, policy, device = loaded.config, loaded.actor, loaded.device
    else:
        assert config is not None
        config.validate()
        policy, device = None, resolve_device(device_name)
    ensure_display()
    env_seed = config.seed + EVAL_SEED_OFFSET if seed is None else seed
    torch.manual_seed(env_seed)
    env = make_env(config, num_envs=1, seed=env_seed, device=device)
    frames, lengths = render_frames(env, policy, episodes=episodes, max_steps=config.max_steps)
    if annotate:
        frames = annotate_frames(frames, lengths, entity_legend(env))
    fps = frame_rate(env)
    write_media(out, frames, fps)
    height, width = frames[0].shape[:2]
    return RenderedMedia(path=out, frames=len(frames), episode_lengths=lengths, fps=fps, width=width, height=height)


def rollout_summary(
    config: EnvConfig | None, *, steps: int, num_envs: int, checkpoint: Path | None, device_name: str
) -> RolloutReport:
    check_positive("--steps", steps)
    check_positive("--num-envs", num_envs)
    check_fits_in_memory(steps * num_envs, config.n_agents if config is not None else 1)
    policy = None
    if checkpoint is not None:
        loaded = load_policy(checkpoint, device_name=device_name)
        config, policy, device = loaded.config, loaded.actor, loaded.device
    else:
        assert config is not None
        config.validate()
        device = resolve_device(device_name)
    torch.manual_seed(config.seed)
    env = make_env(config, num_envs=num_envs, seed=config.seed, device=device)
    data = rollout(env, policy, steps, deterministic=False, scenario=config.scenario)
    return describe_rollout(data, agent_groups(env), policy="checkpoint" if policy is not None else "random")


def describe_scenario(scenario: str) -> dict[str, Any]:
    """A scenario with its default settings: its agent groups, what each observes and does, and what the
    end of an episode means. Builds it twice (continuous and discrete actions), one env on the CPU."""
    groups: dict[str, Any] = {}
    for discrete in (False, True):
        config = env_config(
            scenario=scenario,
            n_agents=None,
            max_steps=TrainConfig.max_steps,
            seed=0,
            discrete=discrete,
            scenario_args={},
        )
        env = make_env(config, num_envs=1, seed=0, device=torch.device("cpu"))
        for group in agent_groups(env):
            action = env.full_action_spec_unbatched[group.key("action")]
            groups.setdefault(group.name, {"agents": group.n_agents, "observation_size": observation_size(env, group)})
            groups[group.name]["discrete_actions" if discrete else "action_size"] = (
                int(action.space.n) if discrete else action.shape[-1]
            )
        env.close()
    meaning = end_meaning(scenario, {})
    return {
        "scenario": scenario,
        "n_agents": config.n_agents,
        "groups": groups,
        "episode_end": meaning.end.value,
        "episode_end_means": meaning.what,
        "success_defined": meaning.defines_success,
        "team_size": "--n-agents"
        if fixed_team_size(config) is None
        else " ".join(f"{name}=K" for name in TEAM_SIZE_ARGUMENTS.get(scenario, ())) or "fixed",
        "zoo_entry": _zoo_summary(scenario),
    }


def _zoo_summary(scenario: str) -> dict[str, Any] | None:
    """What `train --scenario S` starts from when S has a zoo entry: its frames and changed settings."""
    entry = zoo().get(scenario)
    return None if entry is None else {"frames": entry.frames, "settings": entry.settings, "why": entry.why}


def inspect_env(config: EnvConfig, *, num_envs: int, device_name: str) -> dict[str, Any]:
    check_positive("--num-envs", num_envs)
    config.validate()
    check_fits_in_memory(num_envs, config.n_agents)
    env = make_env(config, num_envs=num_envs, seed=config.seed, device=resolve_device(device_name))
    description = describe_env(env, config.scenario)
    check_env_specs(env)
    description["check_env_specs"] = "passed"
    return description
