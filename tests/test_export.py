"""A policy that leaves marlnav: ONNX export with its parity check, the standalone runner, and shared
policies at other team sizes (evaluate / render --n-agents, transfer)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from marlnav_cli.episodes import wilson_interval
from tests.conftest import TINY_TRAIN

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "navigation-3ag-mappo.safetensors"
RUNNER = Path(__file__).resolve().parent.parent / "marlnav_cli" / "onnx_runner.py"


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from marlnav_cli.cli import run

    path = tmp_path_factory.mktemp("onnx") / "navigation.onnx"
    assert run(["export", str(SHIPPED), str(path)]) == 0
    return path


def test_shipped_policy_exports_with_parity_and_self_describing_metadata(shipped_onnx: Path) -> None:
    metadata = {entry.key: entry.value for entry in onnx.load(str(shipped_onnx)).metadata_props}
    assert json.loads(metadata["config"])["scenario"] == "navigation"
    layout = json.loads(metadata["layout"])
    assert layout == {
        "agents": {
            "input": "observation_agents",
            "output": "action_agents",
            "agent_names": ["agent_0", "agent_1", "agent_2"],
            "agent_indices": [0, 1, 2],
            "observation_size": 18,
        }
    }
    assert json.loads(metadata["action_bounds"]) == {"agents": {"low": [[-1.0, -1.0]] * 3, "high": [[1.0, 1.0]] * 3}}
    assert metadata["action_type"] == "continuous" and metadata["episode_end"] == "success"
    session = onnxruntime.InferenceSession(str(shipped_onnx))
    for batch, agents in ((1, 3), (7, 5)):  # dynamic batch and, for a shared policy, agent axes
        actions = session.run(None, {"observation_agents": np.random.randn(batch, agents, 18).astype(np.float32)})[0]
        assert actions.shape == (batch, agents, 2) and np.abs(actions).max() <= 1.0


def test_export_reports_its_parity_check(cli, tmp_path: Path) -> None:
    result = cli("export", SHIPPED, tmp_path / "policy.onnx", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["observations_checked"] >= 10_000 and report["max_abs_difference"] <= 1e-5
    assert report["actions_at_edge"] > 0.01  # the check reaches saturated actions too


def test_runner_reaches_the_success_rate_of_marlnav_evaluate(cli, shipped_onnx: Path) -> None:
    run_episodes = runpy.run_path(str(RUNNER))["run_episodes"]
    runner = run_episodes(str(shipped_onnx), episodes=60)
    marlnav = cli("evaluate", SHIPPED, "--episodes", "60", "--device", "cpu", "--json").json()
    assert runner["seed"] == marlnav["seed"]
    assert runner["success_rate"] == pytest.approx(marlnav["policy"]["success_rate"], abs=1e-6)  # float32 there
    assert runner["success_rate"] > 0.8
    assert runner["mean_length"] == pytest.approx(marlnav["policy"]["mean_length"], abs=1e-4)


def test_runner_draws_each_passage_episode_apart_as_marlnav_evaluate_does(cli, tmp_path: Path) -> None:
    """VMAS gives every passage env one gap when they reset together; marlnav evaluate resets each again alone,
    and so must the runner, or the two would report different episodes (the same reward says they do not)."""
    shipped = SHIPPED.parent / "passage-5ag-mappo.safetensors"
    assert cli("export", shipped, tmp_path / "passage.onnx").exit_code == 0
    runner = runpy.run_path(str(RUNNER))["run_episodes"](str(tmp_path / "passage.onnx"), episodes=20)
    marlnav = cli("evaluate", shipped, "--episodes", "20", "--device", "cpu", "--json").json()
    assert runner["mean_reward"] == pytest.approx(marlnav["policy"]["mean_reward"], abs=1e-3)


def test_runner_calls_no_end_success_where_vmas_done_mixes_up_envs() -> None:
    """joint_passage's own done needs every env's joint home (marlnav mends it; the runner, free of marlnav,
    cannot), so the runner's early ends there are not called success, while navigation's still are."""
    reported_end = runpy.run_path(str(RUNNER))["reported_end"]
    assert reported_end("joint_passage", "success") == reported_end("joint_passage_size", "success") == "unknown"
    assert reported_end("navigation", "success") == "success"


@pytest.mark.parametrize(
    "task",
    [
        ["--discrete"],
        ["--scenario", "simple_tag"],
        ["--no-share-policy"],
        ["--no-share-policy", "--centralised-policy"],
    ],
    ids=["discrete", "two-groups", "per-agent-weights", "centralised"],
)
def test_other_policies_export_with_parity(cli, tmp_path: Path, task: list[str]) -> None:
    assert cli("train", *TINY_TRAIN, *task, "--out", tmp_path / "run").exit_code == 0
    result = cli("export", tmp_path / "run" / "policy.safetensors", tmp_path / "policy.onnx", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["max_abs_difference"] <= 1e-5
    inputs = [node.name for node in onnxruntime.InferenceSession(str(tmp_path / "policy.onnx")).get_inputs()]
    assert inputs == (
        ["observation_adversary", "observation_agent"] if "simple_tag" in task else ["observation_agents"]
    )


def test_failed_parity_check_leaves_nothing(cli, tmp_path: Path, monkeypatch) -> None:
    import marlnav_cli.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "PARITY_TOLERANCE", -1.0)
    result = cli("export", SHIPPED, tmp_path / "policy.onnx")
    assert result.exit_code == 2 and "differ from marlnav's" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_to_overwrite_its_input_and_unknown_formats(cli, checkpoint: Path, tmp_path: Path) -> None:
    before = checkpoint.read_bytes()
    result = cli("export", checkpoint, checkpoint)
    assert result.exit_code == 2 and "overwrite its input" in result.stderr
    assert checkpoint.read_bytes() == before
    result = cli("export", checkpoint, tmp_path / "policy.pt")
    assert result.exit_code == 2 and ".onnx" in result.stderr and not (tmp_path / "policy.pt").exists()


def test_export_without_onnx_says_what_to_install(cli, tmp_path: Path, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def without_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnxruntime)
    result = cli("export", SHIPPED, tmp_path / "policy.onnx")
    assert result.exit_code == 2 and "pip install -e '.[export]'" in result.stderr


def test_shared_policy_runs_with_another_team_size(cli, tmp_path: Path) -> None:
    report = cli("evaluate", SHIPPED, "--n-agents", "5", "--episodes", "30", "--device", "cpu", "--json").json()
    assert report["n_agents"] == 5 and report["trained_n_agents"] == 3
    assert report["policy"]["success_rate"] > report["random"]["success_rate"] == 0.0
    gif = cli("render", SHIPPED, tmp_path / "five.gif", "--n-agents", "5", "--device", "cpu", "--json")
    assert gif.exit_code == 0, gif.stderr


def test_team_size_refusals(cli, tmp_path: Path) -> None:
    cases = {
        "unshared": (["--no-share-policy"], "5", "one set of weights per agent"),
        "observation-grows": (["--scenario-arg", "observe_all_goals=true"], "5", "depends on the team size"),
        "fixed-team": (["--scenario", "passage"], "4", "fixed team of 5 agents"),
        "groups": (["--scenario", "simple_tag"], "5", "several agent groups"),
    }
    for name, (task, size, message) in cases.items():
        folder = tmp_path / name
        assert cli("train", *TINY_TRAIN, *task, "--out", folder).exit_code == 0, name
        result = cli(
            "evaluate", folder / "policy.safetensors", "--n-agents", size, "--episodes", "2", "--device", "cpu"
        )
        assert result.exit_code == 2 and message in result.stderr, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def test_transfer_table_and_plot(cli, tmp_path: Path) -> None:
    plot = tmp_path / "sizes.png"
    result = cli("transfer", SHIPPED, "--agents", "2,4", "--episodes", "20", "--out", plot, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    sizes = result.json()["team_sizes"]
    assert [entry["n_agents"] for entry in sizes] == [2, 4]
    for entry in sizes:
        low, high = entry["policy"]["success_rate_ci95"]
        assert low <= entry["policy"]["success_rate"] <= high
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert cli("transfer", SHIPPED, "--agents", "0-3", "--out", plot).exit_code == 2


def test_wilson_interval_known_values() -> None:
    # Wilson (1927) score interval at z = 1.96, as tabulated e.g. by Newcombe (1998).
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
