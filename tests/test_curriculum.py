"""--curriculum: scenario arguments in stages that end at the task, applied by VMAS's own scenario code,
recorded in the config, and refused before any run folder exists when the scenario cannot take them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig
from marlnav_cli.curriculum import parse_curriculum, stage_arguments, stage_of
from marlnav_cli.envs import make_env
from marlnav_cli.errors import ConfigError

TINY = ["--frames-per-batch", "100", "--max-steps", "25", "--epochs", "1", "--minibatch-size", "50"]
TINY += ["--num-cells", "16", "--device", "cpu", "--quiet", "--scenario", "transport", "--n-agents", "2"]
TINY += ["--imitate-heuristic", "0"]  # transport's zoo entry copies VMAS's heuristic first


def test_stages_end_at_the_task_and_split_the_run_evenly() -> None:
    assert parse_curriculum("package_mass=5,20; package_width=0.3,0.2") == {
        "package_mass": [5, 20],
        "package_width": [0.3, 0.2],
    }
    assert stage_arguments("package_mass=5,20", {"package_length": 0.2}) == [
        {"package_length": 0.2, "package_mass": 5},
        {"package_length": 0.2, "package_mass": 20},
        {"package_length": 0.2},
    ]
    assert stage_arguments("", {"a": 1}) == [{"a": 1}]
    assert [stage_of(iteration, 9, 3) for iteration in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [stage_of(iteration, 4, 3) for iteration in range(4)] == [0, 0, 1, 2]  # the task always trained
    for text, message in (
        ("package_mass", "takes key=value"),
        ("package_mass=5,", "takes key=value"),
        ("package_mass=5; package_mass=6", "twice"),
        ("package_mass=5,20; package_width=1", "as many stages"),
        ("n_agents=2,3", "cannot change n_agents"),
    ):
        with pytest.raises(ConfigError, match=message):
            TrainConfig(curriculum=text).validate()


def test_each_stage_trains_on_the_scenario_as_vmas_builds_it(cli, tmp_path: Path, monkeypatch) -> None:
    masses: list[float] = []
    collect = ExperienceCollector.collect

    def collect_and_record(self: ExperienceCollector):
        masses.append(float(self.simulator.scenario.packages[0].mass))  # the body VMAS simulates
        return collect(self)

    monkeypatch.setattr(ExperienceCollector, "collect", collect_and_record)
    run = tmp_path / "run"
    result = cli("train", "--curriculum", "package_mass=5,20", "--frames", "300", *TINY, "--out", run)
    assert result.exit_code == 0, result.stderr
    task = make_env(TrainConfig(scenario="transport", n_agents=2), num_envs=1, seed=0, device=torch.device("cpu"))
    assert masses == [5.0, 20.0, float(task.base_env._env.scenario.packages[0].mass)]
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["curriculum_stage"] for row in history] == [0, 1, 2]
    assert 'curriculum = "package_mass=5,20"' in (run / "config.toml").read_text()
    # The config alone rebuilds the run, the curriculum with it.
    again = tmp_path / "again"
    masses.clear()
    assert cli("train", "--config", run / "config.toml", "--quiet", "--out", again).exit_code == 0
    assert masses == [5.0, 20.0, masses[-1]] and len(masses) == 3
    # Without a curriculum the history has no stage column: single-stage runs are unchanged.
    plain = tmp_path / "plain"
    assert cli("train", "--frames", "100", *TINY, "--out", plain).exit_code == 0
    assert "curriculum_stage" not in (plain / "metrics.jsonl").read_text()


@pytest.mark.parametrize(
    ("curriculum", "message"),
    [
        ("packge_mass=5,20", "takes no argument packge_mass"),
        ("package_mass=abc", "refused these settings"),  # builds, then fails in VMAS's physics
        ("package_mass=5,20; package_width=1", "as many stages"),
    ],
)
def test_a_stage_the_scenario_refuses_is_refused_before_any_folder(
    cli, tmp_path: Path, curriculum: str, message: str
) -> None:
    run = tmp_path / "run"
    result = cli("train", "--curriculum", curriculum, "--frames", "100", *TINY, "--out", run)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not run.exists()
