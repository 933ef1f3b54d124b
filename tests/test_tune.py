"""marlnav tune: the search space, the checks before Ray starts, a tiny search on a local Ray Tune
(table, best config, zoo entry, re-training, resume) and failed trials recorded."""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import pytest

from marlnav_cli.config import TrainConfig, preset_config
from marlnav_cli.search_space import DEFAULT_SPACE, Parameter, base_point, read_space
from marlnav_cli.zoo import parse_zoo, zoo

TINY_TUNE = [
    "--frames",
    "200",
    "--frames-per-batch",
    "100",
    "--max-steps",
    "25",
    "--minibatch-size",
    "50",
    "--num-cells",
    "8",
    "--episodes",
    "3",
    "--final-seeds",
    "100",
    "--max-parallel",
    "2",
]


def _space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def _trials(folder: Path) -> list[dict]:
    with (folder / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_default_space_fits_every_zoo_entry_and_holds_the_fast_preset() -> None:
    fast = preset_config("fast")
    space = read_space(None, fast)
    assert len(space) == DEFAULT_SPACE.count("\n")
    assert base_point(space, fast) == {parameter.name: getattr(fast, parameter.name) for parameter in space}
    values = {parameter.name: parameter.values for parameter in space}
    for entry in zoo().values():  # every batch and minibatch a valid pair at every entry's step limit
        config = entry.config()
        read_space(None, config)
        for batch in values["frames_per_batch"]:
            for minibatch in values["minibatch_size"]:
                dataclasses.replace(config, frames_per_batch=batch, minibatch_size=minibatch).validate()


def test_space_file_names_settings_as_the_config_does(tmp_path: Path) -> None:
    base = TrainConfig()
    space = read_space(
        _space(tmp_path, "lr = { low = 1e-4, high = 1e-2, log = true }\nepochs = { low = 2, high = 4 }\n"), base
    )
    assert space == [
        Parameter("lr", low=1e-4, high=1e-2, log=True),
        Parameter("num_epochs", low=2, high=4),  # the flag's name, --epochs, is the field num_epochs
    ]
    pytest.importorskip("ray.tune")
    import random

    random.seed(0)
    epochs = {space[1].domain().sample() for _ in range(200)}
    assert epochs == {2, 3, 4}  # the file's integer range includes its high end
    assert all(1e-4 <= space[0].domain().sample() <= 1e-2 for _ in range(100))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr = [", "is not valid TOML"),
        ("", "names no setting to search"),
        ("colour = { values = [1] }", "colour: not a training setting"),
        ("seed = { values = [1, 2] }", "seed: not searched"),
        ("frames = { values = [100, 200] }", "frames: not searched"),
        ("lr = 0.1", "give a table"),
        ("lr = { low = 0.1 }", "a range needs low and high"),
        ("lr = { low = 0.1, high = 0.01 }", "low (0.1) must be below high (0.01)"),
        ("lr = { low = 0.0, high = 0.01, log = true }", "a log range needs low > 0"),
        ("lr = { values = [] }", "values must be a list"),
        ("lr = { values = [0.1, 0.1] }", "a value is listed twice"),
        ("lr = { values = [0.1], low = 0.1 }", "either values or low and high"),
        ("lr = { values = [-1.0] }", "-1 does not fit this search"),
        ("epochs = { values = [1.5] }", "1.5 is not a value of --epochs"),
        ("anneal_lr = { low = 0, high = 1 }", "a bool setting takes values"),
        ("gamma = { values = [0.9], step = 2 }", "unknown keys step"),
        ("lr = { values = [0.1] }\n'--lr' = { values = [0.2] }", "names lr twice"),
        ("minibatch_size = { values = [200] }", "does not fit this search"),  # larger than a batch of 100
        ('curriculum = { values = ["", "agent_radius=0.05,abc"] }', "refused these settings"),  # VMAS builds it
        ('curriculum = { values = ["colour=1"] }', "takes no argument colour"),
    ],
)
def test_bad_space_is_one_error_before_ray(cli, tmp_path: Path, monkeypatch, text: str, message: str) -> None:
    monkeypatch.setattr("marlnav_cli.tune.start_ray", _no_ray)
    result = cli("tune", *TINY_TUNE, "--space", _space(tmp_path, text), "--out", tmp_path / "t")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr
    assert not (tmp_path / "t").exists()


def _no_ray(*args: object, **kwargs: object) -> None:
    raise AssertionError("Ray started")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "simple_spread", "--objective", "success"], "has no success rate"),
        (["--scenario", "navigation", "--objective", "goal"], "has no goal rate"),
        (["--objective", "speed"], "--objective takes success, goal, reward"),
        (["--colour", "red"], "No such option"),
        (["--trials", "0"], "--trials must be a positive integer"),
        (["--seeds-per-trial", "2", "--final-seeds", "1-3"], "--final-seeds must be seeds the search does not"),
        (["--scenario", "navigatoin"], "did you mean"),
        (["--lr", "-1"], "--lr must be a positive number"),
        (["--max-parallel", "0"], "--max-parallel must be a positive integer"),
    ],
)
def test_bad_tune_input_is_one_error_before_ray(cli, tmp_path: Path, monkeypatch, args: list, message: str) -> None:
    monkeypatch.setattr("marlnav_cli.tune.start_ray", _no_ray)
    space = _space(tmp_path, "lr = { low = 1e-4, high = 1e-2 }")
    result = cli("tune", *TINY_TUNE, "--space", space, *args, "--out", tmp_path / "t")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "t").exists()


def test_tune_without_optuna_says_how_to_install(cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    result = cli("tune", "--trials", "1")
    assert result.exit_code == 2 and "marlnav tune needs Ray Tune and Optuna: pip install -e '.[tune]'" in result.stderr


@pytest.mark.ray
def test_tiny_search_gives_table_best_config_zoo_entry_and_resumes(cli, tmp_path: Path) -> None:
    pytest.importorskip("ray.tune")
    pytest.importorskip("optuna")
    folder = tmp_path / "tune"
    space = _space(tmp_path, "lr = { low = 1e-4, high = 1e-2, log = true }\nepochs = { values = [1, 2] }\n")
    # --no-prune: with 3 trials ASHA could stop one at random; pruning is tested on its own below.
    args = ["tune", "--trials", "3", *TINY_TUNE, "--no-prune", "--space", space, "--out", folder]
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    rows = _trials(folder)
    assert len(rows) == 3 and all(row["status"] == "complete" for row in rows)
    for row in rows:  # each trial's objective is its run's own held-out evaluation
        assert 0.0 <= float(row["objective"]) <= 1.0 and float(row["objective"]) == float(row["eval_success_rate"])
        assert (folder / "runs" / f"{row['trial']}-seed0" / "policy.safetensors").exists()
        assert int(row["num_epochs"]) in (1, 2) and 1e-4 <= float(row["lr"]) <= 1e-2
    assert "[3/3]" in result.stderr  # a progress line per trial
    report = result.json()
    best = report["best"]
    assert best["objective"] == max(float(row["objective"]) for row in rows)
    assert report["final"]["seeds_ok"] == 1  # re-trained on the final seed, never searched on

    # The best config reproduces through train --config, and the zoo entry through the zoo's reader.
    config_file = folder / "best-config.toml"
    trained = cli("train", "--config", config_file, "--out", tmp_path / "again", "--quiet", "--json")
    assert trained.exit_code == 0, trained.stderr
    again = (tmp_path / "again" / "config.toml").read_text()
    assert again == (folder / "final" / "base-seed100" / "config.toml").read_text()
    entry = parse_zoo((folder / "zoo-entry.toml").read_text())["navigation"]
    assert entry.settings["num_epochs"] == best["settings"]["num_epochs"] and entry.frames == 200
    assert entry.settings["lr"] == best["settings"]["lr"] == float(f"{entry.settings['lr']:.3g}")  # 3 digits
    assert (folder / "tune.png").read_bytes()[:4] == b"\x89PNG"

    # The same command resumes: nothing is trained again.
    checkpoint = folder / "runs" / f"{rows[0]['trial']}-seed0" / "policy.safetensors"
    written = checkpoint.stat().st_mtime_ns
    final = (folder / "final" / "base-seed100" / "policy.safetensors").stat().st_mtime_ns
    resumed = cli(*args)
    assert resumed.exit_code == 0, resumed.stderr
    assert checkpoint.stat().st_mtime_ns == written and _trials(folder) == rows
    assert (folder / "final" / "base-seed100" / "policy.safetensors").stat().st_mtime_ns == final
    # Another search is refused in this folder rather than mixed into it.
    other = cli("tune", "--trials", "4", *TINY_TUNE, "--no-prune", "--space", space, "--out", folder)
    assert other.exit_code == 2 and "holds another search" in other.stderr


@pytest.mark.ray
def test_failed_trials_are_recorded_with_their_error(cli, tmp_path: Path) -> None:
    pytest.importorskip("ray.tune")
    pytest.importorskip("optuna")
    folder = tmp_path / "tune"
    # balance needs at least 2 agents: VMAS refuses n_agents=1 inside every trial.
    space = _space(tmp_path, "n_agents = { values = [1] }\nlr = { low = 1e-4, high = 1e-2 }\n")
    result = cli("tune", "--scenario", "balance", "--trials", "2", *TINY_TUNE, "--space", space, "--out", folder)
    assert result.exit_code == 1
    assert "no trial completed" in result.stderr and "Traceback" not in result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("[2/2]")]
    assert progress and "failed: " in progress[0] and "ConfigError" in progress[0]  # it names the error
    rows = _trials(folder)
    assert len(rows) == 2 and all(row["status"] == "failed" and "ConfigError" in row["error"] for row in rows)


@dataclasses.dataclass
class _Result:  # what Ray Tune's ResultGrid yields, as far as the table reads it
    metrics: dict
    config: dict
    error: BaseException | None = None
    path: str = "/x/run_tune_trial_abc"


def test_trial_rows_tell_complete_stopped_early_and_failed_apart() -> None:
    from marlnav_cli.tune import TunePlan, _rows, best_trial

    plan = TunePlan(
        TrainConfig(),
        [Parameter("lr", low=1e-4, high=1e-2)],
        "success",
        3,
        [0],
        [100],
        10,
        True,
        0,
        Path("/x"),
        "marlnav tune",
    )
    complete = {
        "trial_id": "a",
        "objective": 0.9,
        "complete": True,
        "frames": 600,
        "eval_success_rate": 0.9,
        "eval_mean_reward": 1.0,
        "time_total_s": 3.0,
    }
    stopped = {"trial_id": "b", "objective": 0.95, "frames": 200, "time_total_s": 1.0}  # its last check, mid-run
    cause = ValueError("first line\nthe root cause")
    failed = RuntimeError("wrapped")
    failed.cause = cause  # Ray's task errors carry the trial's own exception as `cause`
    rows = _rows(
        [_Result(complete, {"lr": 1e-3}), _Result(stopped, {"lr": 2e-3}), _Result({}, {"lr": 3e-3}, failed)], plan
    )
    by_status = {row.status: row for row in rows}
    assert set(by_status) == {"complete", "stopped early", "failed"}
    assert by_status["stopped early"].objective is None  # a mid-run estimate is not the trial's result
    assert by_status["failed"].error == "ValueError: the root cause"
    assert best_trial(rows) is by_status["complete"]


def test_python_api_refuses_before_ray(monkeypatch) -> None:
    from marlnav_cli import api
    from marlnav_cli.errors import MarlnavError

    monkeypatch.setattr("marlnav_cli.tune.start_ray", _no_ray)
    with pytest.raises(MarlnavError, match="has no success rate"):
        api.tune({"scenario": "simple_spread"}, objective="success", trials=2)


def test_importance_and_plot_from_trial_rows(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    from marlnav_cli.tune import TrialRow, TunePlan, parameter_importance, plot_search

    space = [Parameter("lr", low=1e-4, high=1e-2, log=True), Parameter("num_epochs", values=(1, 2, 4))]
    plan = TunePlan(TrainConfig(), space, "success", 6, [0], [100], 10, True, 0, tmp_path, "marlnav tune")
    rows = [  # the objective follows the learning rate alone
        TrialRow(f"t{index}", {"lr": lr, "num_epochs": epochs}, lr * 50, "complete", 100, 1.0, {}, order=index)
        for index, (lr, epochs) in enumerate([(1e-4, 1), (1e-3, 2), (5e-3, 4), (2e-3, 1), (3e-4, 4), (8e-3, 2)])
    ]
    rows.append(TrialRow("t6", {"lr": 1e-3, "num_epochs": 1}, None, "stopped early", 50, 0.5, {}, order=6))
    importance = parameter_importance(rows, plan)
    assert set(importance) == {"lr", "num_epochs"} and importance["lr"] > importance["num_epochs"]
    plot_search(rows, importance, plan, tmp_path / "tune.png")
    assert (tmp_path / "tune.png").read_bytes()[:4] == b"\x89PNG"
