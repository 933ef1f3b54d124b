"""Each command end to end through the real CLI, asserting the values it reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from safetensors import safe_open

from tests.conftest import TINY_TRAIN, training_metrics


def test_train_writes_checkpoint_metrics_and_curve(trained_run: Path) -> None:
    rows = list(csv.DictReader((trained_run / "metrics.csv").open()))
    assert [int(row["iteration"]) for row in rows] == [1, 2]
    assert [int(row["frames"]) for row in rows] == [100, 200]
    assert all(np.isfinite(float(row["reward_mean"])) for row in rows)
    jsonl = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [row["reward_mean"] for row in jsonl] == pytest.approx([float(row["reward_mean"]) for row in rows])
    assert (trained_run / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with safe_open(str(trained_run / "policy.safetensors"), "pt") as reader:
        metadata = reader.metadata()
        names = list(reader.keys())
    config = json.loads(metadata["config"])
    assert config["total_frames"] == 200 and config["max_steps"] == 25 and config["num_cells"] == 16
    summary = json.loads(metadata["summary"])
    assert summary["frames"] == 200 and summary["complete"] is True
    assert summary["final_reward"] == pytest.approx(float(rows[-1]["reward_mean"]))
    assert any(n.startswith("policy.") for n in names) and any(n.startswith("critic.") for n in names)


def test_train_prints_where_outputs_are(cli, tmp_path: Path) -> None:
    result = cli("train", *TINY_TRAIN, "--frames", "100", "--out", tmp_path / "run")
    assert result.exit_code == 0
    assert f"checkpoint: {tmp_path / 'run' / 'policy.safetensors'}" in result.stdout
    assert "final mean episode reward" in result.stderr


def test_inspect_specs_json_has_tutorial_shapes(cli) -> None:
    result = cli("inspect-specs", "--num-envs", "60", "--device", "cpu", "--json")
    assert result.exit_code == 0
    specs = result.json()
    assert specs["observation_spec"]["agents"]["observation"]["shape"] == [60, 3, 18]
    assert specs["action_spec"]["agents"]["action"]["shape"] == [60, 3, 2]
    assert specs["action_spec"]["agents"]["action"]["low"] == -1.0
    assert specs["reward_spec"]["agents"]["reward"]["shape"] == [60, 3, 1]
    assert specs["done_spec"]["done"]["shape"] == [60, 1]
    assert specs["action_keys"] == [["agents", "action"]]
    assert specs["reward_keys"] == [["agents", "reward"]]
    assert specs["check_env_specs"] == "passed"


def test_inspect_specs_table_follows_n_agents(cli) -> None:
    result = cli("inspect-specs", "--n-agents", "4", "--num-envs", "2", "--device", "cpu")
    assert result.exit_code == 0
    assert "observation: UnboundedContinuous (2, 4, 18) float32" in result.stdout
    assert "action: BoundedContinuous (2, 4, 2) float32 in [-1, 1]" in result.stdout
    assert "check_env_specs passed" in result.stdout


def test_rollout_random_reports_structure_and_rewards(cli) -> None:
    result = cli("rollout", "--steps", "7", "--num-envs", "3", "--device", "cpu", "--json")
    assert result.exit_code == 0
    summary = result.json()
    assert summary["batch_size"] == [3, 7]
    assert summary["policy"] == "random"
    shapes = {".".join(leaf["key"]): leaf["shape"] for leaf in summary["keys"]}
    assert shapes["next.agents.reward"] == [3, 7, 3, 1]
    assert shapes["agents.action"] == [3, 7, 3, 2]
    assert len(summary["reward_per_agent"]) == 3


def test_rollout_with_checkpoint_uses_policy(cli, checkpoint: Path) -> None:
    result = cli("rollout", checkpoint, "--num-envs", "2", "--device", "cpu", "--json")
    assert result.exit_code == 0
    summary = result.json()
    assert summary["policy"] == "checkpoint"
    keys = {".".join(leaf["key"]) for leaf in summary["keys"]}
    assert "agents.action_log_prob" in keys  # written by the policy, absent with random actions


def test_evaluate_reports_policy_and_random(cli, checkpoint: Path) -> None:
    result = cli("evaluate", checkpoint, "--episodes", "6", "--device", "cpu", "--json")
    assert result.exit_code == 0
    report = result.json()
    assert report["episodes"] == 6 and report["max_steps"] == 25
    for side in ("policy", "random"):
        figures = report[side]
        assert 0.0 <= figures["success_rate"] <= 1.0
        assert 1.0 <= figures["mean_length"] <= 25.0
        assert figures["mean_collisions"] >= 0.0
        assert np.isfinite(figures["mean_reward"])
    # The trained seed is 3; evaluation must use another one.
    assert report["seed"] != 3


def test_evaluate_is_deterministic(cli, checkpoint: Path) -> None:
    first = cli("evaluate", checkpoint, "--episodes", "4", "--device", "cpu", "--json").json()
    second = cli("evaluate", checkpoint, "--episodes", "4", "--device", "cpu", "--json").json()
    assert first["policy"] == second["policy"] and first["random"] == second["random"]


def test_evaluate_table(cli, checkpoint: Path) -> None:
    result = cli("evaluate", checkpoint, "--episodes", "3", "--device", "cpu")
    assert result.exit_code == 0
    for label in ("mean episode reward", "success rate", "collisions per episode", "mean episode length"):
        assert label in result.stdout


def test_render_writes_looping_gif_with_one_frame_per_state(cli, checkpoint: Path, tmp_path: Path) -> None:
    gif = tmp_path / "policy.gif"
    result = cli("render", checkpoint, gif, "--episodes", "2", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == report["frames"] == sum(length + 1 for length in report["episode_lengths"])
    assert len(report["episode_lengths"]) == 2 and all(1 <= n <= 25 for n in report["episode_lengths"])
    assert frames.shape[1:3] == (report["height"], report["width"])
    assert frames.std() > 1.0  # not a blank image
    assert not np.array_equal(frames[0], frames[-1])  # agents moved
    metadata = iio.immeta(gif)
    assert metadata.get("loop") == 0
    assert metadata.get("duration") == pytest.approx(1000 / report["fps"], abs=10)


def test_render_random_needs_no_checkpoint(cli, tmp_path: Path) -> None:
    gif = tmp_path / "random.gif"
    result = cli("render", "--random", gif, "--max-steps", "5", "--n-agents", "2", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    assert iio.imread(gif, index=None).shape[0] == result.json()["frames"] == 6


def test_render_writes_mp4_at_the_simulator_rate(cli, checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    video = tmp_path / "episode.mp4"
    result = cli("render", checkpoint, video, "--episodes", "2", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    frames = iio.imread(video, index=None)
    assert frames.shape[0] == report["frames"] and frames.shape[1:3] == (report["height"], report["width"])
    assert iio.immeta(video)["fps"] == pytest.approx(report["fps"])


def test_gif_shares_one_palette_and_stays_close_to_the_frames(tmp_path: Path) -> None:
    from marlnav_cli.media import write_media

    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(128, 60, (40, 50, 3)), 0, 255).astype(np.uint8) for _ in range(12)]
    write_media(tmp_path / "noise.gif", frames, fps=10.0)
    written = iio.imread(tmp_path / "noise.gif", index=None)[..., :3].astype(int)
    assert written.shape == (12, 40, 50, 3)
    assert np.abs(written - np.stack(frames).astype(int)).mean() < 12  # 256 colours for random noise


def test_normalize_advantage_reaches_the_loss_and_the_checkpoint(cli, tmp_path: Path) -> None:
    """The same seed trains to other weights with standardised advantages, and the setting is kept."""
    weights = {}
    for name, flag in (("raw", "--raw-advantage"), ("normalised", "--normalize-advantage")):
        run = tmp_path / name
        assert cli("train", *TINY_TRAIN, "--frames", "100", flag, "--out", run).exit_code == 0
        with safe_open(str(run / "policy.safetensors"), "pt") as reader:
            names = list(reader.keys())  # a safetensors reader is not iterable
            weights[name] = {key: reader.get_tensor(key) for key in names if key.startswith("policy.")}
            assert json.loads(reader.metadata()["config"])["normalize_advantage"] is (name == "normalised")
    assert any(not weights["raw"][key].equal(weights["normalised"][key]) for key in weights["raw"])


def test_reward_scale_changes_learning_but_not_the_rewards_reported(cli, tmp_path: Path) -> None:
    """Scaled rewards reach advantages and value targets only: the first iteration collects the same
    episodes (same reward, as the scenario pays it) and then trains other weights; the setting is kept."""
    runs = {}
    for scale in ("1.0", "0.1"):
        run = tmp_path / scale
        assert cli("train", *TINY_TRAIN, "--frames", "100", "--reward-scale", scale, "--out", run).exit_code == 0
        runs[scale] = run
    first = {scale: training_metrics(run)[0] for scale, run in runs.items()}
    assert first["0.1"]["reward_mean"] == first["1.0"]["reward_mean"]
    assert first["0.1"]["loss_critic"] != pytest.approx(first["1.0"]["loss_critic"], rel=0.05)
    with safe_open(str(runs["0.1"] / "policy.safetensors"), "pt") as reader:
        assert json.loads(reader.metadata()["config"])["reward_scale"] == 0.1
    assert cli("train", *TINY_TRAIN, "--reward-scale", "0", "--out", tmp_path / "zero").exit_code == 2


def test_anneal_entropy_decays_the_bonus_linearly_to_zero(cli, tmp_path: Path) -> None:
    """Each iteration's logged entropy term is -coefficient x entropy: with --anneal-entropy the coefficient
    falls as the learning rate does (1, 3/4, 1/2, 1/4 of it over 4 iterations), without it it stays."""
    coefficients = {}
    for name, flag in (("annealed", "--anneal-entropy"), ("constant", "--constant-entropy")):
        run = tmp_path / name
        options = ("--frames", "400", "--entropy-coeff", "0.5", flag, "--out", run)
        assert cli("train", *TINY_TRAIN, *options).exit_code == 0
        coefficients[name] = [-row["loss_entropy"] / row["entropy"] for row in training_metrics(run)]
        with safe_open(str(run / "policy.safetensors"), "pt") as reader:
            assert json.loads(reader.metadata()["config"])["anneal_entropy"] is (name == "annealed")
    assert coefficients["annealed"] == pytest.approx([0.5, 0.375, 0.25, 0.125], rel=1e-4)
    assert coefficients["constant"] == pytest.approx([0.5] * 4, rel=1e-4)


def test_evaluate_sampled_runs_the_policy_as_it_trained(cli, checkpoint: Path) -> None:
    """--sampled draws the policy's actions: other figures than its most likely actions, the same random side."""
    reports = {
        name: cli("evaluate", checkpoint, "--episodes", "6", "--device", "cpu", "--json", *flags).json()
        for name, flags in (("deterministic", ()), ("sampled", ("--sampled",)))
    }
    assert [reports[name]["policy_actions"] for name in reports] == ["deterministic", "sampled"]
    assert reports["sampled"]["random"] == reports["deterministic"]["random"]
    assert reports["sampled"]["policy"]["mean_reward"] != reports["deterministic"]["policy"]["mean_reward"]
    table = cli("evaluate", checkpoint, "--episodes", "6", "--device", "cpu", "--sampled").stdout
    assert "policy (sampled)" in table


def test_threads_set_torch_and_default_to_omp_num_threads_or_the_idle_cores(cli, checkpoint: Path, monkeypatch) -> None:
    """--threads reaches torch; without it, $OMP_NUM_THREADS where set, else the cores the load leaves idle."""
    import os

    import torch

    evaluate = ("evaluate", checkpoint, "--episodes", "2", "--device", "cpu", "--json")
    assert cli(*evaluate, "--threads", "2").exit_code == 0
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cli(*evaluate).exit_code == 0
    assert torch.get_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    refused = cli(*evaluate)
    assert refused.exit_code == 2 and "OMP_NUM_THREADS must be a whole number" in refused.stderr
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    for load, expected in ((0.2, 4), (1.4, 3), (2.6, 1), (9.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert cli(*evaluate).exit_code == 0
        assert torch.get_num_threads() == expected
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cli(*evaluate)  # leave the suite on one thread


def test_json_figures_carry_no_float32_noise(cli, checkpoint: Path) -> None:
    """--json rounds floats to 6 significant digits: 0.992, not 0.9919999837875366."""

    def floats(value: object) -> list[float]:
        if isinstance(value, float):
            return [value]
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        return [number for item in items for number in floats(item)]

    report = cli("evaluate", checkpoint, "--episodes", "7", "--device", "cpu", "--json").json()
    numbers = floats(report)
    assert len(numbers) > 10
    assert all(number == float(f"{number:.6g}") for number in numbers)


def test_progress_is_a_plain_line_per_iteration_when_not_a_terminal(cli, tmp_path: Path) -> None:
    """Logged to a file (not a terminal), training prints one line per iteration, not a bar shown at the end."""
    options = [option for option in TINY_TRAIN if option != "--quiet"]
    result = cli("train", *options, "--eval-every", "1", "--eval-episodes", "2", "--out", tmp_path / "run")
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("iteration ")]
    assert [line.split("  ")[0] for line in lines] == ["iteration 1/2", "iteration 2/2"]
    assert all("frames/s" in line and "ETA" in line and "success" in line for line in lines)


def test_competing_teams_end_with_a_reward_per_team_never_their_mean(cli, tmp_path: Path) -> None:
    """simple_tag's adversaries and agent compete: train's last line and JSON give each team's reward."""
    options = ("--scenario", "simple_tag", *TINY_TRAIN, "--out", tmp_path / "tag")
    result = cli("train", *options)
    assert result.exit_code == 0
    done_line = next(line for line in result.stderr.splitlines() if line.startswith("done:"))
    assert "adversary" in done_line and "agent" in done_line
    report = cli("train", *options, "--overwrite", "--json").json()
    assert set(report["final_reward"]) == {"adversary", "agent"}
    compared = cli("compare", tmp_path / "tag", "--out", tmp_path / "tag.png", "--json").json()["runs"][0]
    assert compared["final_reward"] is None and compared["best_reward"] is None
    assert set(compared["final_reward_by_group"]) == {"adversary", "agent"}
    table = cli("compare", tmp_path / "tag", "--out", tmp_path / "tag.png").stdout
    assert "adversary" in table and "agent" in table


def test_learning_curve_legend_names_the_dashed_episode_length(tmp_path: Path, monkeypatch) -> None:
    """The evaluation panel's legend holds its twin axis's dashed episode-length line too."""
    from marlnav_cli import metrics

    losses = {"loss_objective": 0.0, "loss_critic": 0.0, "loss_entropy": 0.0}
    rewards = {"reward_mean": 0.0, "reward_min": -1.0, "reward_max": 1.0}
    evaluation = {"eval_s": 0.1, "eval_success_rate": 0.5, "eval_mean_reward": 1.0}
    history = [{"frames": 100 * k, "eval_mean_length": 40.0 + k, **evaluation, **rewards, **losses} for k in (1, 2)]
    drawn = {}
    monkeypatch.setattr(metrics, "save_figure", lambda figure, axes, path: drawn.update(axes=axes))
    metrics.plot_curve(history, tmp_path / "curve.png", "test")
    legend = [text.get_text() for text in drawn["axes"][1].get_legend().get_texts()]
    assert legend == ["success rate", "mean episode length"]


def test_bootstrap_time_limit_reaches_the_critic_and_the_checkpoint(cli, tmp_path: Path) -> None:
    """simple_spread never ends: with the step limit as a cut, its value targets (so the critic's loss)
    change from the first iteration; the same episodes are collected; the setting is kept."""
    runs = {}
    for name, flag in (("cut", "--bootstrap-time-limit"), ("end", "--terminate-at-limit")):
        runs[name] = tmp_path / name
        # --imitate-heuristic 0: simple_spread's zoo entry copies marlnav's controller first
        options = ("--scenario", "simple_spread", *TINY_TRAIN, "--imitate-heuristic", "0", flag, "--out", runs[name])
        assert cli("train", *options).exit_code == 0
    first = {name: training_metrics(run)[0] for name, run in runs.items()}
    assert first["cut"]["reward_mean"] == first["end"]["reward_mean"]
    assert first["cut"]["loss_critic"] != first["end"]["loss_critic"]  # other value targets at each last step
    with safe_open(str(runs["cut"] / "policy.safetensors"), "pt") as reader:
        assert json.loads(reader.metadata()["config"])["bootstrap_time_limit"] is True


def test_render_annotate_draws_step_and_legend_in_a_corner(cli, checkpoint: Path, tmp_path: Path) -> None:
    """--annotate changes the top-left corner of every frame (step counter, legend) and nothing else; the
    legend names VMAS's own entities in their own colours."""
    import imageio.v3 as iio

    from marlnav_cli.config import TrainConfig
    from marlnav_cli.envs import entity_legend, make_env

    gifs = {}
    for name, flags in (("plain", ()), ("annotated", ("--annotate",))):
        gifs[name] = tmp_path / f"{name}.gif"
        assert cli("render", checkpoint, gifs[name], "--device", "cpu", *flags).exit_code == 0
    plain, annotated = (iio.imread(gifs[name], index=None)[..., :3].astype(int) for name in ("plain", "annotated"))
    assert plain.shape == annotated.shape
    in_corner = [np.abs(annotated[k, :120, :160] - plain[k, :120, :160]).mean() for k in range(len(plain))]
    outside = np.abs(annotated[:, 130:, :] - plain[:, 130:, :]).mean()
    assert outside < 4  # one palette per GIF, chosen with the text's colours in it: a few levels of noise
    assert min(in_corner) > 3 * outside

    env = make_env(TrainConfig(scenario="navigation", n_agents=3), num_envs=1, seed=0, device=torch.device("cpu"))
    legend = {entry.label: entry.color for entry in entity_legend(env)}
    agent = env.base_env._env.scenario.world.agents[0]
    assert legend["agent_0"] == tuple(round(value * 255) for value in agent.color)
    assert {"agent_0", "agent_1", "agent_2"} <= set(legend) and any(label.startswith("goal") for label in legend)
