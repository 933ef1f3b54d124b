"""Sweeps on Ray: seeds x settings as tasks, failures recorded, resume, statistics, a real 127.0.0.1 head."""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from marlnav_cli.errors import ConfigError
from marlnav_cli.sweep import bootstrap_ci, interquartile_mean, parse_seeds, parse_sets, split_fixed

TINY_SWEEP = [
    "--frames",
    "100",
    "--set",
    "frames_per_batch=100",
    "--set",
    "max_steps=25",
    "--set",
    "minibatch_size=50",
    "--set",
    "epochs=1",
    "--set",
    "num_cells=8",
    "--episodes",
    "3",
    "--device",
    "cpu",
    "--max-parallel",
    "2",
]


def test_seed_and_set_parsing() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,7") == [0, 2, 7]
    assert parse_seeds("3-4,0") == [0, 3, 4]
    with pytest.raises(ConfigError):
        parse_seeds("a-b")
    grid = parse_sets(["algo=mappo,ippo", "lr=3e-4,1e-3", "epochs=5"])
    assert grid == {"mappo": [True, False], "lr": [3e-4, 1e-3], "num_epochs": [5]}
    assert split_fixed(grid) == ({"num_epochs": 5}, {"mappo": [True, False], "lr": [3e-4, 1e-3]})
    with pytest.raises(ConfigError, match="not a training setting"):
        parse_sets(["colour=red"])


def test_statistics() -> None:
    assert interquartile_mean([1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.5)
    assert interquartile_mean([4.0]) == 4.0
    low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0])
    assert 1.0 <= low < 2.5 < high <= 4.0
    assert bootstrap_ci([1.0, 2.0, 3.0, 4.0]) == (low, high)  # seeded: same interval every time


def _rows(folder: Path) -> list[dict]:
    with (folder / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.ray
def test_local_sweep_records_results_summary_curves_and_resumes(cli, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    folder = tmp_path / "sweep"
    result = cli("sweep", "--seeds", "0-1", "--set", "algo=mappo,ippo", *TINY_SWEEP, "--out", folder, "--json")
    assert result.exit_code == 0, result.stderr
    rows = _rows(folder)
    assert sorted(row["trial"] for row in rows) == ["ippo-seed0", "ippo-seed1", "mappo-seed0", "mappo-seed1"]
    assert all(row["status"] == "ok" for row in rows)
    for row in rows:  # each trial is a normal run folder; its numbers are the run's own
        last = (folder / row["trial"] / "metrics.jsonl").read_text().splitlines()[-1]
        assert float(row["final_train_reward"]) == pytest.approx(__import__("json").loads(last)["reward_mean"])
    summary = {entry["config"]: entry for entry in result.json()["summary"]}
    assert set(summary) == {"mappo", "ippo"} and summary["mappo"]["seeds_ok"] == 2
    mappo = [float(r["eval_mean_reward"]) for r in rows if r["trial"].startswith("mappo")]
    assert summary["mappo"]["eval_mean_reward_mean"] == pytest.approx(sum(mappo) / 2, rel=1e-5)  # JSON: 6 digits
    assert summary["mappo"]["eval_mean_reward_ci_low"] <= summary["mappo"]["eval_mean_reward_mean"]
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG" and (folder / "summary.csv").exists()

    checkpoint = folder / "mappo-seed0" / "policy.safetensors"
    written = checkpoint.stat().st_mtime_ns
    again = cli("sweep", "--seeds", "0-1", "--set", "algo=mappo,ippo", *TINY_SWEEP, "--out", folder, "--json")
    assert again.exit_code == 0 and checkpoint.stat().st_mtime_ns == written  # nothing retrained
    assert _rows(folder) == rows


@pytest.mark.ray
def test_failed_trial_is_recorded_and_the_sweep_goes_on(cli, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    folder = tmp_path / "sweep"
    # balance needs at least 2 agents: VMAS refuses n_agents=1 inside the trial.
    result = cli(
        "sweep",
        "--seeds",
        "0",
        "--scenario",
        "balance",
        "--set",
        "n_agents=1,2",
        *TINY_SWEEP,
        "--out",
        folder,
        "--json",
    )
    assert result.exit_code == 1, result.stderr  # a sweep with failed trials does not report success
    assert "error: 1 of 2 trials failed: n_agents=1-seed0" in result.stderr
    rows = {row["trial"]: row for row in _rows(folder)}
    assert rows["n_agents=1-seed0"]["status"] == "failed" and "ConfigError" in rows["n_agents=1-seed0"]["error"]
    assert rows["n_agents=2-seed0"]["status"] == "ok"
    assert result.json()["failed"] == ["n_agents=1-seed0"]


def test_sweep_without_ray_says_how_to_install(cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    result = cli("sweep", "--seeds", "0")
    assert result.exit_code == 2 and "pip install" in result.stderr and "[sweep]" in result.stderr


@pytest.mark.ray
def test_sweep_runs_on_a_ray_cluster_through_address(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray_cli is not None
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 for the head: without it Ray rewrites 127.0.0.1 to this
    # machine's interface address. The drivers run without it: marlnav keeps a loopback --address on
    # loopback itself, as a user's shell would not know to. RAY_AUTH_MODE=disabled: with Ray 2.60's token
    # auth a `ray start` head and a separate driver here did not agree on the token (InvalidAuthToken);
    # this test cluster listens on loopback only.
    driver_env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    driver_env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env = {**driver_env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    port = "6391"
    log = tmp_path / "ray.log"
    # --block keeps the head in this process group, so the test stops its own cluster alone: `ray stop`
    # would stop every Ray on the machine (a user's searches included).
    with log.open("w") as output:  # not a pipe: Ray's daemons would hold it open
        head = subprocess.Popen(
            [
                ray_cli,
                "start",
                "--head",
                "--block",
                "--port",
                port,
                "--node-ip-address",
                "127.0.0.1",
                "--num-cpus",
                "2",
                "--include-dashboard",
                "false",
                "--temp-dir",
                temp_dir,
                "--disable-usage-stats",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_for_port(int(port), head)
    try:
        folder = tmp_path / "sweep"
        with log.open("a") as output:  # the driver is a separate process, as a user's would be
            sweep = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "marlnav_cli",
                    "sweep",
                    "--seeds",
                    "0-1",
                    *TINY_SWEEP,
                    "--out",
                    str(folder),
                    "--address",
                    f"127.0.0.1:{port}",
                ],
                env=driver_env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        assert sweep.returncode == 0, log.read_text()[-2000:]
        assert [row["status"] for row in _rows(folder)] == ["ok", "ok"]
        if importlib.util.find_spec("optuna") is not None:  # marlnav tune on the same cluster
            space = tmp_path / "space.toml"
            space.write_text("lr = { low = 1e-4, high = 1e-2 }\n")
            with log.open("a") as output:
                tuned = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "marlnav_cli",
                        "tune",
                        "--trials",
                        "2",
                        "--space",
                        str(space),
                        *TINY_SWEEP[:2],
                        "--frames-per-batch",
                        "100",
                        "--max-steps",
                        "25",
                        "--minibatch-size",
                        "50",
                        "--epochs",
                        "1",
                        "--num-cells",
                        "8",
                        "--episodes",
                        "3",
                        "--final-seeds",
                        "100",
                        "--out",
                        str(tmp_path / "tune"),
                        "--address",
                        f"127.0.0.1:{port}",
                    ],
                    env=driver_env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=300,
                )
            assert tuned.returncode == 0, log.read_text()[-2000:]
            assert (tmp_path / "tune" / "trials.csv").read_text().count("complete") == 2
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_port(port: int, head: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert head.poll() is None, "ray start exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no Ray head on 127.0.0.1:{port} after {timeout_s} s")


@pytest.mark.ray
def test_local_ray_lives_on_loopback_alone() -> None:
    """Ray would bind a local instance to this machine's network address: marlnav keeps it on 127.0.0.1,
    even when Ray was imported before the sweep started (as here)."""
    from marlnav_cli.sweep import import_ray, start_ray

    ray = import_ray()
    start_ray(ray, None)
    try:
        assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    finally:
        ray.shutdown()


def test_local_ray_is_its_own_even_beside_a_running_cluster() -> None:
    """With no --address, Ray's own default would join the latest `ray start` cluster on the machine (seen
    here: a sweep ran on another search's head, with that head's code and CPUs); marlnav asks for its own."""
    from marlnav_cli.sweep import start_ray

    calls: list[dict] = []

    class RecordingRay:
        @staticmethod
        def init(**kwargs: object) -> None:
            calls.append(kwargs)

    start_ray(RecordingRay, None)
    start_ray(RecordingRay, "127.0.0.1:6379")
    start_ray(RecordingRay, "10.1.2.3:6379")
    assert [call.get("address") for call in calls] == ["local", "127.0.0.1:6379", "10.1.2.3:6379"]
    assert [call.get("_node_ip_address") for call in calls] == ["127.0.0.1", "127.0.0.1", None]


def test_summary_table_gives_each_figure_or_n_a(monkeypatch) -> None:
    """The printed table reads summarise()'s entries: success with its interval and worst seed, length and
    collisions; n/a where the scenario defines no success."""
    from rich.console import Console

    from marlnav_cli import cli
    from marlnav_cli.sweep import SweepOutcome, Trial, summarise

    def row(trial: str, seed: int, success: float | None) -> dict:
        figures = {"eval_success_rate": success, "eval_collisions": 0.1 * seed, "eval_mean_length": 50.0 + seed}
        return {"trial": trial, "seed": seed, "status": "ok", "eval_mean_reward": 3.0 + seed, **figures}

    trials = [Trial(f"lr={lr}-seed{seed}", {"lr": lr}, None, Path(".")) for lr in (1, 2) for seed in (0, 1)]
    rows = [
        row("lr=1-seed0", 0, 0.9),
        row("lr=1-seed1", 1, 0.8),
        row("lr=2-seed0", 0, None),
        row("lr=2-seed1", 1, None),
    ]
    recorder = Console(record=True, width=200)
    monkeypatch.setattr(cli, "console", recorder)
    cli._print_sweep_summary(SweepOutcome(folder=Path("sweep"), rows=rows, summary=summarise(rows, trials)))
    lines = recorder.export_text().splitlines()
    (first,) = [k for k, line in enumerate(lines) if "lr=1" in line]
    (second,) = [k for k, line in enumerate(lines) if "lr=2" in line]
    # Each mean above its interval; success's worst seed below them.
    assert "0.850" in lines[first] and "50.5" in lines[first] and "0.05" in lines[first]
    assert "[0.800, 0.900]" in lines[first + 1] and "(0.800)" in lines[first + 2]
    assert "3.500" in lines[second] and "[3.000, 4.000]" in lines[second + 1] and lines[second].count("n/a") == 1


def test_summary_table_shows_how_often_episodes_ended_where_an_end_is_only_failure(monkeypatch) -> None:
    """road_traffic-like trials (an end is a crash: no success, no goal) show the ended-early rate."""
    from rich.console import Console

    from marlnav_cli import cli
    from marlnav_cli.sweep import SweepOutcome, Trial, summarise

    trials = [Trial(f"lr=1-seed{seed}", {"lr": 1}, None, Path(".")) for seed in (0, 1)]
    rows = [
        {"trial": f"lr=1-seed{seed}", "seed": seed, "status": "ok", "eval_mean_reward": 1.0, "eval_mean_length": 80.0}
        | {"eval_success_rate": None, "eval_goal_rate": None, "eval_ended_early_rate": rate}
        for seed, rate in ((0, 0.25), (1, 0.75))
    ]
    recorder = Console(record=True, width=200)
    monkeypatch.setattr(cli, "console", recorder)
    cli._print_sweep_summary(SweepOutcome(folder=Path("sweep"), rows=rows, summary=summarise(rows, trials)))
    text = recorder.export_text()
    assert "ended early" in text and "0.500" in text and "success" not in text
