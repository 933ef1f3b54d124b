"""Rebuild the shipped policies from their documented commands and compare them tensor by tensor.

Usage: python -m benchmarks.shipped [--policies navigation-3ag-mappo] [--keep DIR]

Each shipped policy (marlnav_cli/policies/) is retrained with the command below, in a fresh process,
exported as a policy-only file, and compared with the shipped file: "bit for bit" means every tensor
equal. The thread count is part of the command because floating-point results depend on it
(docs/benchmarks.md, "Threads"). Prints one line per policy; exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

from marlnav_cli.files import shipped_policies

# The commands that built the shipped policies (docs/benchmarks.md and docs/zoo.md say the same).
REBUILD = {
    "navigation-3ag-mappo": ["train", "--threads", "2"],
    "navigation-1-8ag-mappo": [
        "train",
        "--n-agents",
        "1-8",
        "--max-steps",
        "200",
        "--frames",
        "384000",
        "--seed",
        "100",
        "--threads",
        "1",
    ],
}


def rebuild(name: str, folder: Path) -> Path:
    run = folder / name
    marlnav = [sys.executable, "-m", "marlnav_cli"]
    subprocess.run([*marlnav, *REBUILD[name], "--out", str(run), "--quiet"], check=True)
    exported = folder / f"{name}.safetensors"
    subprocess.run([*marlnav, "export", str(run / "policy.safetensors"), str(exported)], check=True)
    return exported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", default=",".join(REBUILD), help="comma-separated shipped policy names")
    parser.add_argument("--keep", type=Path, help="keep the rebuilt runs here")
    args = parser.parse_args()
    differs = False
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        for name in args.policies.split(","):
            rebuilt, shipped = load_file(rebuild(name, folder)), load_file(shipped_policies()[name])
            same = rebuilt.keys() == shipped.keys() and all(rebuilt[key].equal(shipped[key]) for key in shipped)
            largest = max((rebuilt[k] - shipped[k]).abs().max().item() for k in shipped if k in rebuilt)
            print(
                f"{name}: {'bit for bit' if same else 'DIFFERS'} (largest difference {largest:.3g}); "
                f"command: marlnav {' '.join(REBUILD[name])}"
            )
            differs |= not same
    sys.exit(1 if differs else 0)


if __name__ == "__main__":
    main()
