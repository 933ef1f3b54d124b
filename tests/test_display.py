"""Headless rendering falls back in order: DISPLAY, EGL, Xvfb, then one line saying what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from marlnav_cli.config import preset_config
from marlnav_cli.display import NO_DISPLAY_MESSAGE, ensure_display
from marlnav_cli.errors import RenderError


def test_existing_display_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":5")
    assert ensure_display(egl_check=lambda: False, find_xvfb=lambda: None) == "display"


def test_egl_is_used_without_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    assert ensure_display(egl_check=lambda: True, find_xvfb=lambda: None) == "egl"


def test_without_egl_or_xvfb_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(RenderError, match="apt-get install xvfb") as error:
        ensure_display(egl_check=lambda: False, find_xvfb=lambda: None)
    assert str(error.value) == NO_DISPLAY_MESSAGE and "\n" not in NO_DISPLAY_MESSAGE


def test_tables_read_at_80_columns(cli, checkpoint: Path, trained_run: Path, monkeypatch, capsys) -> None:
    """compare, transfer and a sweep's summary at 80 columns: no table line wider, no figure cut to '…' (the
    lines that print a path stay whole, however long)."""
    from types import SimpleNamespace

    from marlnav_cli import cli as commands

    monkeypatch.setattr(commands.console, "width", 80)
    outputs = [
        cli("compare", trained_run, trained_run, "--out", trained_run.parent / "cmp.png").stdout,
        cli("transfer", checkpoint, "--agents", "2,3", "--episodes", "4", "--out", trained_run.parent / "t.png").stdout,
    ]
    figures = {"eval_mean_reward": (-538.125, -560.5, -520.25), "eval_success_rate": (0.992, 0.99, 0.995)}
    entry = {"config": "lr=0.001,gamma=0.99", "seeds_ok": 9, "seeds_failed": 1, "eval_success_rate_min": 0.99}
    for metric, (mean, low, high) in figures.items():
        entry |= {f"{metric}_mean": mean, f"{metric}_ci_low": low, f"{metric}_ci_high": high}
    entry |= {"eval_mean_length_mean": 50.6, "eval_collisions_mean": 0.07}
    commands._print_sweep_summary(SimpleNamespace(folder=trained_run.parent / "sweep", summary=[entry]))
    outputs.append(capsys.readouterr().out)
    from marlnav_cli.search_space import read_space
    from marlnav_cli.tune import TrialRow

    space = read_space(None, preset_config("fast"))
    settings = {parameter.name: (parameter.values or (parameter.low,))[0] for parameter in space}
    rows = [
        TrialRow("3f2a1b0c", settings, 0.995, "complete", 96_000, 31.2, {}),
        TrialRow("5e6f7a8b", settings, None, "stopped early", 12_000, 4.0, {}),
        TrialRow("9c0d1e2f", settings, None, "failed", 0, 0.5, {}, error="ConfigError: " + "x" * 200),
    ]
    plan = SimpleNamespace(
        objective="success", metric="eval_success_rate", folder=trained_run.parent / "t", final_seeds=[100, 101, 102]
    )
    final = {
        "eval_success_rate_mean": 0.99,
        "eval_success_rate_ci_low": 0.98,
        "eval_success_rate_ci_high": 1.0,
        "eval_success_rate_min": 0.98,
    }
    commands._print_tune(
        SimpleNamespace(plan=plan, rows=rows, importance={"lr": 0.5}, best=rows[0], final_figures=final)
    )
    outputs.append(capsys.readouterr().out)
    for output in outputs:
        table_lines = [line for line in output.splitlines() if line[:1] in "┏┃┡│└"]
        assert table_lines and max(len(line) for line in table_lines) <= 80, output
        assert "…" not in output, output
    assert "[0.990, 0.995]" in outputs[2] and "-538.125" in outputs[2]
