"""`marlnav export`: the output format follows the path's extension."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from marlnav_cli.checkpoint import export_policy, read_checkpoint
from marlnav_cli.errors import MarlnavError


def export_policy_file(checkpoint: Path, out: Path) -> dict[str, Any]:
    """An ONNX model (.onnx) or a policy-only checkpoint (.safetensors); never onto the input itself."""
    if out.exists() and checkpoint.exists() and out.resolve() == checkpoint.resolve():
        raise MarlnavError(f"export would overwrite its input {checkpoint}; choose another output path")
    suffix = out.suffix.lower()
    if suffix == ".onnx":
        from marlnav_cli.onnx_export import export_onnx

        report = export_onnx(checkpoint, out)
        return {**asdict(report), "path": str(report.path), "format": "onnx"}
    if suffix == ".safetensors":
        from marlnav_cli.experiment import load_policy

        load_policy(checkpoint, device_name="cpu")  # refuse a checkpoint whose policy would not load
        export_policy(read_checkpoint(checkpoint), out)
        return {"path": str(out), "size_bytes": out.stat().st_size, "format": "safetensors"}
    raise MarlnavError(f"output {out} must end in .onnx (ONNX model) or .safetensors (policy-only checkpoint)")
