"""`--help` of every command, as users see it: snapshots (UPDATE_SNAPSHOTS=1 rewrites them), no `<bool>`
after a flag, nothing swallowed by rich markup, examples everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
COMMANDS = [
    "",
    "train",
    "evaluate",
    "render",
    "rollout",
    "inspect-specs",
    "transfer",
    "compare",
    "sweep",
    "tune",
    "export",
    "scenarios",
    "version",
]


def _help(command: str) -> str:
    env = {**os.environ, "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1"}
    args = [sys.executable, "-m", "marlnav_cli", *([command] if command else []), "--help"]
    completed = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=True)
    return "\n".join(line.rstrip() for line in completed.stdout.splitlines()) + "\n"


@pytest.mark.parametrize("command", COMMANDS, ids=[c or "marlnav" for c in COMMANDS])
def test_help_matches_its_snapshot(command: str) -> None:
    text = _help(command)
    assert "<bool>" not in text
    if command not in ("", "version"):
        assert "Examples" in text and f"marlnav {command}" in text
    snapshot = SNAPSHOTS / f"help-{command or 'marlnav'}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(text)
    assert text == snapshot.read_text(), f"--help of {command or 'marlnav'} changed; UPDATE_SNAPSHOTS=1 to accept"


def test_help_keeps_square_brackets_and_groups_options() -> None:
    text = _help("train")
    assert ".[wandb]" in " ".join(text.split())  # not swallowed as rich markup
    for panel in ("Environment", "PPO", "Model", "Run", "Output"):
        assert f"─ {panel} " in text
    assert "KEY=VALUE" in text and "PATH" in text


def test_version_as_a_flag_and_as_a_command(cli) -> None:
    """`marlnav --version` (what users try first) and `marlnav version` print the package's version."""
    from marlnav_cli import __version__

    for args in (["--version"], ["version"]):
        result = cli(*args)
        assert result.exit_code == 0 and result.stdout.strip() == __version__


def test_cheap_commands_and_checks_do_not_import_torch(tmp_path) -> None:
    """Listing scenarios, --version and a missing checkpoint answer without importing torch (seconds on
    2 cores): run in a fresh interpreter that reports whether torch got imported."""
    probe = (
        "import sys; from marlnav_cli.cli import run; code = run(sys.argv[1:]); "
        "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr); sys.exit(code)"
    )
    for args, code in ((["scenarios"], 0), (["--version"], 0), (["evaluate", str(tmp_path / "none.safetensors")], 2)):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == code, done.stderr
        assert done.stderr.strip().endswith("no torch"), (args, done.stderr)
