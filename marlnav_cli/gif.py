"""GIF output with imageio: looping, at the simulator's frame rate, written atomically."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from marlnav_cli.errors import RenderError
from marlnav_cli.files import atomic_output, check_writable


def check_gif_path(path: Path) -> None:
    if path.suffix.lower() != ".gif":
        raise RenderError(f"output {path} must end in .gif")
    check_writable(path)


def write_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    if not frames:
        raise RenderError("no frames to write")
    with atomic_output(path) as temporary:
        iio.imwrite(temporary, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
