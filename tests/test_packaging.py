"""The wheel a user installs: it carries the shipped policies and the ONNX runner, and the Quickstart runs
from it in another folder (installed without dependencies into a folder of its own, put first on the
path, so the repository's own files cannot stand in for it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_carries_policies_and_runner_and_the_quickstart_runs_from_it(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, REPO]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("marlnav-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "marlnav_cli/policies/navigation-3ag-mappo.safetensors" in names
    assert "marlnav_cli/onnx_runner.py" in names and "marlnav_cli/zoo.toml" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)

    installed = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", installed, wheel]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(installed), "OMP_NUM_THREADS": "1"}

    def marlnav(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "marlnav_cli", *args]
        return subprocess.run(command, cwd=elsewhere, env=environment, capture_output=True, text=True, timeout=300)

    where = subprocess.run(
        [sys.executable, "-c", "import marlnav_cli; print(marlnav_cli.__file__)"],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(installed))
    evaluated = marlnav("evaluate", "navigation-3ag-mappo", "--episodes", "8", "--device", "cpu", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["policy"]["success_rate"] >= 0.75
    rendered = marlnav("render", "navigation-3ag-mappo", "nav.gif", "--device", "cpu")
    assert rendered.returncode == 0 and (elsewhere / "nav.gif").exists(), rendered.stderr
    runner = subprocess.run(
        [sys.executable, "-m", "marlnav_cli.onnx_runner", "--help"],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert runner.returncode == 0 and "onnx" in runner.stdout.lower()
    missing = marlnav("evaluate", "navigation-9ag-mappo")
    assert missing.returncode == 2 and "shipped policies, by name: balance-3ag-mappo" in missing.stderr
