"""The zoo of per-scenario settings: every shipped entry is valid, and train starts from it by default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from marlnav_cli import zoo as zoo_module
from marlnav_cli.config import PRESETS, TrainConfig, available_scenarios, preset_config
from marlnav_cli.envs import make_env
from marlnav_cli.errors import ConfigError
from marlnav_cli.experiment import describe_scenario, resolve_train_config
from marlnav_cli.zoo import parse_zoo, zoo

REPOSITORY = Path(__file__).resolve().parent.parent
ENTRY = """
[transport]
frames = 12_000
why = "a test entry"
command = "marlnav sweep --scenario transport"
record = "docs/zoo.md"

[transport.settings]
gamma = 0.99
n_agents = 4
"""


@pytest.mark.parametrize("scenario", sorted(zoo()))
def test_every_shipped_entry_is_a_valid_run(scenario: str) -> None:
    entry = zoo()[scenario]
    assert scenario in available_scenarios()
    config = resolve_train_config({"scenario": scenario})  # as `marlnav train --scenario S` has it
    assert config.scenario == scenario and config.total_frames == entry.frames
    make_env(config, num_envs=1, seed=0, device=torch.device("cpu")).close()  # VMAS takes its arguments
    fast, written = preset_config("fast"), entry.config()  # what the entry itself sets, before team fitting
    changed = {f.name for f in dataclasses.fields(TrainConfig) if getattr(written, f.name) != getattr(fast, f.name)}
    assert changed <= {"scenario", "total_frames", *entry.settings}
    assert entry.command.startswith("marlnav ")
    assert (REPOSITORY / entry.record).is_file(), f"{scenario}'s record {entry.record} is not in the repository"


def test_navigation_by_default_is_the_fast_preset_exactly() -> None:
    assert resolve_train_config({}) == preset_config("fast")
    assert resolve_train_config({"scenario": "navigation"}) == preset_config("fast")


def test_a_scenario_with_an_entry_starts_from_it_unless_a_preset_is_named(monkeypatch) -> None:
    monkeypatch.setattr(zoo_module, "zoo", lambda: parse_zoo(ENTRY))
    config = resolve_train_config({"scenario": "transport"})
    assert (config.gamma, config.n_agents, config.total_frames) == (0.99, 4, 12_000)
    assert config.lr == preset_config("fast").lr  # what the entry leaves out is the fast preset's
    assert resolve_train_config({"scenario": "transport", "gamma": 0.9}).gamma == 0.9  # options win
    assert resolve_train_config({"scenario": "transport"}, preset="fast") == dataclasses.replace(
        preset_config("fast"), scenario="transport"
    )
    assert resolve_train_config({"scenario": "balance"}) == dataclasses.replace(
        preset_config("fast"), scenario="balance"
    )


def test_scenario_arguments_given_go_on_top_of_the_entry_s(monkeypatch, tmp_path: Path) -> None:
    """give_way's entry sets two of VMAS's arguments; a user's --scenario-arg adds to them or changes one.
    A config file's table is whole: a run's config.toml with none still reproduces that run."""
    from marlnav_cli.api import given_settings

    monkeypatch.setattr(
        zoo_module, "zoo", lambda: parse_zoo(ENTRY + "\n[transport.settings.scenario_args]\npackage_mass = 5\n")
    )

    def resolved(scenario_args: dict | None = None, config_file: Path | None = None) -> dict:
        given = given_settings({"scenario": "transport"}, scenario_args=scenario_args, config_file=config_file)
        return resolve_train_config(given).scenario_args

    assert resolved() == {"package_mass": 5}
    added = resolved({"package_width": 0.2})
    assert added == {"package_mass": 5, "package_width": 0.2}
    changed = resolved({"package_mass": 2})
    assert changed == {"package_mass": 2}
    config_toml = tmp_path / "config.toml"
    config_toml.write_text(dataclasses.replace(preset_config("fast"), scenario="transport").to_toml())
    assert resolved(config_file=config_toml) == {}
    assert resolved({"package_width": 0.2}, config_toml) == {"package_width": 0.2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ENTRY.replace("gamma = 0.99", "gama = 0.99"), "unknown or misplaced settings: gama"),
        (ENTRY.replace("gamma = 0.99", "total_frames = 10"), "unknown or misplaced settings: total_frames"),
        (ENTRY.replace("gamma = 0.99", "scenario = 'wheel'"), "unknown or misplaced settings: scenario"),
        (ENTRY.replace("gamma = 0.99", "gamma = 'high'"), "config key gamma has the wrong type"),
        (ENTRY.replace("why =", "reason ="), "unknown keys: reason"),
        (ENTRY.replace("frames = 12_000", "frames = 1.5"), "frames must be a int"),
        (ENTRY.replace('record = "docs/zoo.md"', ""), "record must be a str"),
        ("transport = 3", "must be a table"),
        ("[transport", "not valid TOML"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_zoo(text)


def test_an_entry_whose_settings_do_not_validate_fails() -> None:
    entry = parse_zoo(ENTRY.replace("gamma = 0.99", "gamma = 1.5"))["transport"]
    with pytest.raises(ConfigError, match="--gamma must be in"):
        entry.config()


def test_the_benchmarl_preset_is_its_published_settings() -> None:
    config = preset_config("benchmarl")
    assert config.num_envs == 600 and config.frames_per_batch == 60_000 and config.total_frames == 10_000_000
    assert (config.num_epochs, config.minibatch_size, config.lr) == (45, 4096, 5e-5)
    assert (config.gamma, config.lmbda, config.clip_epsilon, config.entropy_coeff) == (0.9, 0.9, 0.2, 0.0)
    assert (config.max_grad_norm, config.depth, config.num_cells, config.anneal_lr) == (5.0, 2, 256, False)


def test_an_unknown_preset_gets_a_did_you_mean_line(cli, tmp_path: Path) -> None:
    result = cli("train", "--preset", "benchmrl", "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: unknown preset 'benchmrl'; did you mean 'benchmarl'? choose from " + (
        ", ".join(PRESETS)
    )
    assert not (tmp_path / "run").exists()


def test_scenario_details_and_help_name_the_zoo(cli) -> None:
    assert describe_scenario("navigation")["zoo_entry"]["frames"] == zoo()["navigation"].frames
    assert describe_scenario("give_way")["zoo_entry"] is None or "give_way" in zoo()
    help_text = cli("train", "--help").stdout
    assert "the zoo has" in help_text and all(scenario in help_text for scenario in zoo())
