"""Run folders, config files, scenario arguments, other scenarios, comparison, export, TensorBoard."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

import pytest

from marlnav_cli.checkpoint import read_checkpoint
from tests.conftest import TINY_TRAIN, training_metrics


def test_default_run_folder_is_named_after_the_run(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("train", *TINY_TRAIN, "--ippo", "--seed", "4", "--json")
    assert result.exit_code == 0, result.stderr
    folder = Path(result.json()["run_folder"])
    assert folder.parent == Path("checkpoints") and folder.name.startswith("navigation-3ag-ippo-zoo-seed4-")
    tutorial = cli("train", *TINY_TRAIN, "--preset", "tutorial", "--json").json()["run_folder"]
    assert Path(tutorial).name.startswith("navigation-3ag-mappo-tutorial-seed0-")
    from_file = cli("train", *TINY_TRAIN, "--config", folder / "config.toml", "--json").json()["run_folder"]
    assert Path(from_file).name.startswith("navigation-3ag-ippo-config-seed4-")
    assert {p.name for p in folder.iterdir()} >= {
        "policy.safetensors",
        "best.safetensors",
        "metrics.csv",
        "metrics.jsonl",
        "curve.png",
        "config.toml",
    }
    row = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])
    for key in (
        "frames",
        "wall_s",
        "reward_mean",
        "reward_min",
        "reward_max",
        "loss_objective",
        "loss_critic",
        "loss_entropy",
        "entropy",
        "frames_per_s",
        "collect_s",
        "train_s",
    ):
        assert key in row


def test_config_toml_reproduces_the_run(cli, trained_run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    result = cli("train", "--config", trained_run / "config.toml", "--device", "cpu", "--quiet", "--out", again)
    assert result.exit_code == 0, result.stderr
    assert (again / "config.toml").read_text() == (trained_run / "config.toml").read_text()
    assert training_metrics(again) == training_metrics(trained_run)


def test_command_line_overrides_config_file(cli, trained_run: Path, tmp_path: Path) -> None:
    result = cli(
        "train",
        "--config",
        trained_run / "config.toml",
        "--seed",
        "9",
        "--frames",
        "100",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        tmp_path / "run",
    )
    assert result.exit_code == 0, result.stderr
    settings = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert settings["seed"] == 9 and settings["total_frames"] == 100 and settings["num_cells"] == 16


def test_bad_config_file_is_refused(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("num_cells = 'many'\n")
    result = cli("train", "--config", bad)
    assert result.exit_code == 2 and "num_cells has the wrong type" in result.stderr
    bad.write_text("learning_rate = 0.1\n")
    assert "unknown config keys: learning_rate" in cli("train", "--config", bad).stderr


def test_scenario_args_are_typed_and_reach_vmas(cli) -> None:
    with_lidar = cli("inspect-specs", "--num-envs", "2", "--device", "cpu", "--json").json()
    without = cli(
        "inspect-specs", "--num-envs", "2", "--device", "cpu", "--json", "--scenario-arg", "collisions=false"
    ).json()
    lidar_rays = (
        with_lidar["observation_spec"]["agents"]["observation"]["shape"][-1]
        - without["observation_spec"]["agents"]["observation"]["shape"][-1]
    )
    assert lidar_rays == 12  # navigation's lidar exists only with collisions on
    result = cli("inspect-specs", "--num-envs", "2", "--scenario-arg", "colisions=false")
    assert result.exit_code == 2 and "takes no argument colisions" in result.stderr


def test_scenarios_command_lists_vmas_scenarios(cli) -> None:
    names = cli("scenarios", "--json").json()
    assert {"navigation", "balance", "transport"} <= set(names)


@pytest.mark.parametrize(
    ("scenario", "entry_sized"),
    [("balance", []), ("transport", ["--imitate-heuristic", "200"])],  # transport's entry copies 600,000 frames
)
def test_other_scenarios_train_and_evaluate(cli, tmp_path: Path, scenario: str, entry_sized: list[str]) -> None:
    folder = tmp_path / scenario
    result = cli("train", *TINY_TRAIN, *entry_sized, "--scenario", scenario, "--n-agents", "3", "--out", folder)
    assert result.exit_code == 0, result.stderr
    report = cli("evaluate", folder / "policy.safetensors", "--episodes", "3", "--device", "cpu", "--json").json()
    assert report["episodes"] == 3 and 1 <= report["policy"]["mean_length"] <= 25
    assert read_checkpoint(folder / "policy.safetensors").config.scenario == scenario


def test_compare_overlays_runs(cli, trained_run: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert cli("train", *TINY_TRAIN, "--seed", "5", "--eval-every", "0", "--out", other).exit_code == 0
    plot = tmp_path / "both.png"
    result = cli("compare", trained_run, other, "--out", plot, "--json")
    assert result.exit_code == 0, result.stderr
    rows = result.json()["runs"]
    assert [row["seed"] for row in rows] == [3, 5]
    last_logged = json.loads((other / "metrics.jsonl").read_text().splitlines()[-1])["reward_mean"]
    assert rows[1]["final_reward"] == pytest.approx(last_logged, rel=1e-5)  # --json keeps 6 significant digits
    evaluated = json.loads((trained_run / "metrics.jsonl").read_text().splitlines()[-1])["eval_success_rate"]
    assert rows[0]["evaluated_success"] == pytest.approx(evaluated, rel=1e-5) and rows[1]["evaluated_success"] is None
    assert "n/a" in cli("compare", trained_run, other, "--out", plot).stdout  # the run never evaluated
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert cli("compare", tmp_path / "nothing").exit_code == 2


def test_export_writes_small_policy_only_checkpoint(cli, checkpoint: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.safetensors"
    assert cli("export", checkpoint, small).exit_code == 0
    assert small.stat().st_size < checkpoint.stat().st_size / 3
    assert set(read_checkpoint(small).tensors) == {
        n for n in read_checkpoint(checkpoint).tensors if n.startswith("policy.")
    }
    assert cli("evaluate", small, "--episodes", "2", "--device", "cpu", "--json").exit_code == 0
    refused = cli("train", "--resume", small, "--device", "cpu")
    assert refused.exit_code == 2 and "holds only the policy" in refused.stderr


def test_tensorboard_logger_writes_events(cli, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    folder = tmp_path / "tb"
    assert cli("train", *TINY_TRAIN, "--logger", "tensorboard", "--out", folder).exit_code == 0
    events = list((folder / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    result = cli("train", "--logger", "neptune")
    assert (
        result.exit_code == 2
        and "'neptune' is not one of 'none', 'csv', 'tensorboard', 'wandb', 'mlflow'" in result.stderr
    )


def test_csv_logger_writes_each_metric_per_iteration(cli, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    assert cli("train", *TINY_TRAIN, "--frames", "300", "--logger", "csv", "--out", folder).exit_code == 0
    rewards = next((folder / "csv").rglob("reward_mean.csv")).read_text().splitlines()
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    logged = [tuple(map(float, line.split(","))) for line in rewards]
    assert logged == [(row["frames"], pytest.approx(row["reward_mean"])) for row in rows]


def test_wandb_logger_records_every_iteration_offline(cli, tmp_path: Path, monkeypatch) -> None:
    """Offline (the default): nothing leaves the machine, the run lands in the run folder for `wandb sync`."""
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    folder = tmp_path / "wandb-run"
    assert cli("train", *TINY_TRAIN, "--logger", "wandb", "--out", folder).exit_code == 0
    (record,) = (folder / "wandb").glob("offline-run-*/run-*.wandb")
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    expected = [json.dumps(row["reward_mean"]).encode() for row in rows]
    # wandb's service process writes the file: on a loaded machine it can land after finish() returns
    # (CI once read only its header), so wait for it, up to a minute.
    deadline = time.monotonic() + 60
    logged = record.read_bytes()  # protobuf records: metric names and JSON values appear as text
    while not all(value in logged for value in expected) and time.monotonic() < deadline:
        time.sleep(0.5)
        logged = record.read_bytes()
    for value in expected:
        assert value in logged
    assert b"reward_mean" in logged and b"eval_success_rate" in logged


def test_uninstalled_logger_says_what_to_install(cli, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def without_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_wandb)
    result = cli("train", "--logger", "wandb", *TINY_TRAIN)
    assert result.exit_code == 2 and "pip install -e '.[wandb]'" in result.stderr


def test_shipped_policy_loads_and_beats_random(cli) -> None:
    shipped = Path(__file__).resolve().parent.parent / "checkpoints" / "navigation-3ag-mappo.safetensors"
    assert shipped.stat().st_size < 500_000
    report = cli("evaluate", shipped, "--episodes", "50", "--device", "cpu", "--json").json()
    assert report["policy"]["success_rate"] >= 0.8 and report["random"]["success_rate"] == 0.0
    assert report["policy"]["mean_reward"] > report["random"]["mean_reward"] + 2.0
