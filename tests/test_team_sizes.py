"""One policy across team sizes: --n-agents as a range, the DeepSets critic, training cycled over the
sizes, evaluation/transfer/export at any size, resume, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from marlnav_cli.config import TrainConfig, format_team_sizes, parse_team_sizes, team_settings
from marlnav_cli.errors import ConfigError
from marlnav_cli.models import DeepSetsCritic, TensorCritic

TINY = ["--frames-per-batch", "100", "--max-steps", "25", "--epochs", "2", "--minibatch-size", "50"]
TINY += ["--num-cells", "16", "--device", "cpu", "--quiet"]


def test_team_sizes_parse_and_print_as_given() -> None:
    assert parse_team_sizes("2-8") == list(range(2, 9))
    assert parse_team_sizes("8,2,4") == [2, 4, 8]
    for text in ("2-8", "2,4,8", "1-8,12,16", "3-4"):
        assert format_team_sizes(parse_team_sizes(text)) == text
    assert team_settings("5") == {"n_agents": 5}
    assert team_settings("4,2-3") == {"n_agents": 4, "team_sizes": "2-4"}
    with pytest.raises(ConfigError, match="at least 1"):
        parse_team_sizes("0-3")
    with pytest.raises(ConfigError, match="a range or list"):
        parse_team_sizes("two")


def test_deepsets_critic_takes_any_team_in_any_order() -> None:
    torch.manual_seed(0)
    critic = DeepSetsCritic(6, depth=2, num_cells=16, device=torch.device("cpu"))
    for agents in (1, 3, 16):
        observation = torch.randn(5, agents, 6)
        values = critic(observation)
        assert values.shape == (5, agents, 1)
        order = torch.randperm(agents)
        assert torch.allclose(critic(observation[:, order]), values[:, order], atol=1e-6)  # equivariant
    # Every agent's value sees the whole team: changing one agent's observation changes the others' values.
    observation = torch.randn(1, 3, 6)
    changed = observation.clone()
    changed[0, 2] += 1.0
    assert not torch.allclose(critic(changed)[0, 0], critic(observation)[0, 0])
    from tensordict.nn import TensorDictModule

    module = TensorDictModule(critic, in_keys=["o"], out_keys=["v"])
    assert torch.equal(TensorCritic(module)(observation), critic(observation))


def test_config_refuses_what_cannot_train_across_sizes() -> None:
    base = TrainConfig(n_agents=4, team_sizes="2-4", critic="deepsets")
    base.validate()
    for changes, message in (
        ({"critic": "mlp"}, "use --critic deepsets"),
        ({"share_policy": False}, "leave --no-share-policy"),
        ({"n_agents": 3}, "n_agents their largest"),
        ({"team_sizes": "4"}, "two or more sizes"),
        ({"critic": "gnn"}, "--critic takes mlp or deepsets"),
    ):
        with pytest.raises(ConfigError, match=message):
            TrainConfig(**{**base.__dict__, **changes}).validate()
    with pytest.raises(ConfigError, match="MAPPO's critic"):
        TrainConfig(critic="deepsets", mappo=False).validate()
    TrainConfig(n_agents=4, team_sizes="2-4", mappo=False).validate()  # IPPO's local critic takes any size


def _history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_across_sizes_then_evaluate_transfer_and_resume(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    # --constant-lr: an annealed rate depends on the run's length, so 300 + 200 frames would not be 500.
    result = cli("train", "--n-agents", "2-4", "--constant-lr", "--frames", "300", *TINY, "--out", run)
    assert result.exit_code == 0, result.stderr
    config = (run / "config.toml").read_text()
    assert 'team_sizes = "2-4"' in config and 'critic = "deepsets"' in config and "n_agents = 4" in config
    assert [row["team_size"] for row in _history(run)] == [2, 3, 4]  # a size per iteration, in turn

    checkpoint = run / "policy.safetensors"
    for size in (1, 6):
        evaluated = cli("evaluate", checkpoint, "--n-agents", size, "--episodes", "3", "--json")
        assert evaluated.exit_code == 0, evaluated.stderr
    transferred = cli("transfer", checkpoint, "--agents", "1-3", "--episodes", "2", "--out", tmp_path / "t.png")
    assert transferred.exit_code == 0, transferred.stderr

    # Resumed, the cycle goes on where it stopped, and the run is the one trained straight through.
    more = cli("train", "--resume", checkpoint, "--frames", "500")
    assert more.exit_code == 0, more.stderr
    assert [row["team_size"] for row in _history(run)] == [2, 3, 4, 2, 3]
    straight = tmp_path / "straight"
    assert (
        cli("train", "--n-agents", "2-4", "--constant-lr", "--frames", "500", *TINY, "--out", straight).exit_code == 0
    )
    resumed, whole = load_file(checkpoint), load_file(straight / "policy.safetensors")
    assert resumed.keys() == whole.keys()
    for name, tensor in whole.items():  # weights, Adam, RNG (NaN where Python's random has no cached gauss)
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=0, equal_nan=True, msg=name)


def test_ippo_trains_across_sizes(cli, tmp_path: Path) -> None:
    result = cli("train", "--n-agents", "1,3", "--ippo", "--frames", "200", *TINY, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert [row["team_size"] for row in _history(tmp_path / "run")] == [1, 3]


def test_onnx_parity_is_checked_at_every_trained_size(cli, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    assert cli("train", "--n-agents", "1,3", "--frames", "200", *TINY, "--out", run).exit_code == 0
    exported = cli("export", run / "policy.safetensors", tmp_path / "p.onnx", "--json")
    assert exported.exit_code == 0, exported.stderr
    report = exported.json()
    assert report["team_sizes_checked"] == [1, 3] and report["max_abs_difference"] <= 1e-5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n-agents", "2-4", "--no-share-policy"], "leave --no-share-policy"),
        (["--n-agents", "2-4", "--critic", "mlp"], "use --critic deepsets"),
        (["--critic", "deepsets", "--ippo"], "it is MAPPO's critic"),
        (["--scenario", "multi_give_way", "--n-agents", "2-4"], "cannot train across team sizes"),
        (["--scenario", "football", "--n-agents", "2,3"], "cannot train across team sizes"),
        (["--scenario", "balance", "--n-agents", "1-3"], "balance"),  # VMAS refuses a team of 1
        (["--n-agents", "2-4x"], "a range or list"),
    ],
)
def test_bad_team_sizes_are_one_line_and_no_folder(cli, tmp_path: Path, args: list, message: str) -> None:
    result = cli("train", *args, "--frames", "100", *TINY, "--out", tmp_path / "run")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr
    assert not (tmp_path / "run").exists()


def test_sampled_sizes_come_from_the_seed_and_iteration_alone(cli, tmp_path: Path) -> None:
    from marlnav_cli.train import _team_size

    config = TrainConfig(n_agents=4, team_sizes="1-4", team_mix="sample", mappo=False, seed=7)
    drawn = [_team_size(config, iteration=index) for index in range(40)]
    assert set(drawn) == {1, 2, 3, 4} and drawn == [_team_size(config, iteration=i) for i in range(40)]
    cycled = TrainConfig(n_agents=4, team_sizes="1-4", mappo=False)
    assert [_team_size(cycled, iteration=i) for i in range(6)] == [1, 2, 3, 4, 1, 2]

    run = tmp_path / "run"
    args = ["train", "--n-agents", "1-3", "--team-mix", "sample", "--ippo", "--constant-lr", *TINY]
    assert cli(*args, "--frames", "300", "--out", run).exit_code == 0
    assert cli("train", "--resume", run / "policy.safetensors", "--frames", "500").exit_code == 0
    history = [row["team_size"] for row in _history(run)]
    expected = TrainConfig(n_agents=3, team_sizes="1-3", team_mix="sample", mappo=False)
    assert history == [_team_size(expected, iteration=i) for i in range(5)]


def test_shipped_policy_across_team_sizes_acts_for_teams_it_was_not_built_at(cli) -> None:
    """The shipped 1-8 policy, by name, at 8 agents (the largest it trained at) and at 2: it succeeds
    where random actions do not (docs/deploy.md has its full table, 200 episodes per size)."""
    for size in (2, 8):
        report = cli("evaluate", "navigation-1-8ag-mappo", "--n-agents", size, "--episodes", "20", "--json")
        assert report.exit_code == 0, report.stderr
        figures = report.json()
        assert figures["trained_team_sizes"] == list(range(1, 9))
        assert figures["policy"]["success_rate"] >= 0.8 and figures["random"]["success_rate"] <= 0.1
