"""The benchmarks run from a fresh clone: the tutorial reference (TorchRL's stock components) at tiny sizes,
and every benchmark module imports as part of the repo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from marlnav_cli.checkpoint import read_checkpoint

if TYPE_CHECKING:
    from marlnav_cli.config import TrainConfig
    from marlnav_cli.episodes import EpisodeFigures

REPO = Path(__file__).resolve().parent.parent


def _module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def test_tutorial_reference_trains_and_evaluates_at_tiny_sizes() -> None:
    completed = _module(
        "benchmarks.tutorial_reference",
        "--iters",
        "2",
        "--frames-per-batch",
        "200",
        "--max-steps",
        "20",
        "--epochs",
        "1",
        "--minibatch-size",
        "100",
        "--num-cells",
        "8",
        "--eval-episodes",
        "4",
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(result["rewards"]) == 2 and all(isinstance(reward, float) for reward in result["rewards"])
    assert result["total_s"] >= result["collect_s"] + result["train_s"] > 0
    assert 0.0 <= result["eval"]["success_rate"] <= 1.0 and 1 <= result["eval"]["mean_length"] <= 20


@pytest.mark.parametrize(
    "module",
    [
        "benchmarks.vs_tutorial",
        "benchmarks.hot_paths",
        "benchmarks.scale",
        "benchmarks.zoo",
        "benchmarks.team_sizes",
        "benchmarks.push_to_goal",
        "benchmarks.food_tour",
        "benchmarks.passage_paths",
    ],
)
def test_benchmark_modules_import_without_files_outside_the_repo(module: str) -> None:
    completed = _module(module, "--help")
    assert completed.returncode == 0, completed.stderr
    assert "usage" in completed.stdout.lower()


def test_zoo_benchmark_runs_every_side_at_tiny_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "zoo.json"
    completed = _module(
        "benchmarks.zoo",
        "--scenarios",
        "navigation",
        "--seeds",
        "0-1",
        "--smoke",
        "--episodes",
        "4",
        "--out",
        str(out),
        "--keep",
        str(tmp_path / "runs"),
        "--checkpoint",
        "best",
    )
    assert completed.returncode == 0, completed.stderr
    (result,) = json.loads(out.read_text())
    assert result["scenario"] == "navigation" and result["entry"]["seeds"] == [0, 1]
    assert result["checkpoint"] == "best"
    assert len(result["entry"]["runs"]) == len(result["benchmarl"]["runs"]) == 2
    assert 0 <= result["entry"]["success_rate"]["min"] <= result["entry"]["success_rate"]["mean"] <= 1
    assert result["random"]["success_rate"]["mean"] == 0.0
    assert "cvxpy" in result["heuristic"]  # navigation's controller needs it: said, not skipped silently
    assert "| navigation | mean episode reward |" in completed.stdout
    assert (tmp_path / "runs" / "navigation-seed1" / "policy.safetensors").is_file()  # --keep: shippable
    # --checkpoint best: the runs were validated as `marlnav train` validates, so best.safetensors was chosen
    history = read_checkpoint(tmp_path / "runs" / "navigation-seed1" / "best.safetensors").history
    assert history[-1]["eval_s"] is not None
    # --entry-runs with --checkpoint best evaluates the run's best.safetensors (one iteration here, where
    # best and final hold the same weights, so which file was evaluated is read off the call)
    import marlnav_cli.experiment
    from benchmarks.zoo import evaluate_run

    evaluated: list[Path] = []

    def record_path(path: Path, **_: object) -> None:
        evaluated.append(path)
        raise StopIteration

    monkeypatch.setattr(marlnav_cli.experiment, "evaluate_checkpoint", record_path)
    config_json = read_checkpoint(tmp_path / "runs" / "navigation-seed1" / "policy.safetensors").config.to_json()
    for checkpoint in ("best", "final"):
        with pytest.raises(StopIteration):
            evaluate_run(config_json, 4, str(tmp_path / "runs"), checkpoint)
    assert [path.name for path in evaluated] == ["best.safetensors", "policy.safetensors"]


def _random_actions(config: TrainConfig, episodes: int) -> EpisodeFigures:
    """Random actions on the episodes a scripted controller of this config is evaluated on."""
    import torch

    from marlnav_cli.episodes import EVAL_SEED_OFFSET, evaluate_actor

    return evaluate_actor(
        config, None, episodes=episodes, seed=config.seed + EVAL_SEED_OFFSET, device=torch.device("cpu")
    )


@pytest.mark.parametrize(
    ("module", "scenario", "n_agents", "max_steps"),
    [
        # every agent pushes reverse_transport's package at its goal: the reward is the package's progress
        ("push_to_goal", "reverse_transport", 4, 30),
        # the pack tours dispersion's food, nearest uneaten first: the reward is the food eaten
        ("food_tour", "dispersion", 2, 60),
    ],
)
def test_scripted_controllers_earn_what_random_actions_do_not(
    module: str, scenario: str, n_agents: int, max_steps: int
) -> None:
    import importlib

    from marlnav_cli.config import TrainConfig

    controller = getattr(importlib.import_module(f"benchmarks.{module}"), module)
    config = TrainConfig(scenario=scenario, n_agents=n_agents, max_steps=max_steps, seed=3)
    scripted = controller(config, episodes=16)
    random_actions = _random_actions(config, episodes=16)
    assert scripted.mean_reward is not None and random_actions.mean_reward is not None
    assert scripted.mean_reward > 0.5 and scripted.mean_reward > 5 * abs(random_actions.mean_reward)


def test_passage_pays_nothing_for_standing_still_and_can_be_finished_through_the_gap() -> None:
    from benchmarks.passage_paths import stand_still, through_the_gap
    from marlnav_cli.config import TrainConfig

    config = TrainConfig(scenario="passage", n_agents=5, max_steps=300, seed=3)
    still = stand_still(config, episodes=16)
    random_actions = _random_actions(config, episodes=16)
    assert still.mean_reward == 0.0 and still.success_rate == 0.0  # no progress, no collision
    assert random_actions.mean_reward is not None and random_actions.mean_reward < 0  # jitter collides
    assert through_the_gap(config, episodes=16).success_rate > 0  # the task can be finished at this limit
