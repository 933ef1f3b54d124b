"""Rendered episodes on disk: a looping GIF, or an MP4 through imageio's ffmpeg plugin, written atomically.

GIFs are written with one palette for the whole animation (median cut over a sample of frames) instead
of one per frame as imageio does: several times faster and a smaller file, at a colour error of about one
level in 255 (docs/benchmarks.md, Rendering, has the measurement).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marlnav_cli.errors import RenderError, install_hint
from marlnav_cli.files import atomic_output, check_writable

FORMATS = (".gif", ".mp4")
PALETTE_SAMPLE_FRAMES = 8


@dataclass(frozen=True)
class RenderedMedia:
    path: Path
    frames: int
    episode_lengths: list[int]
    fps: float
    width: int
    height: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "frames": self.frames,
            "episode_lengths": self.episode_lengths,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
        }


def check_media_path(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise RenderError(f"output {path} must end in .gif or .mp4")
    if path.suffix.lower() == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise RenderError(f"MP4 output needs imageio's ffmpeg plugin: {install_hint('video')}") from None
    check_writable(path)


@dataclass(frozen=True)
class LegendEntry:
    label: str  # what VMAS names the entity, less its index: "agent", "goal", "package"
    color: tuple[int, int, int]


def annotate_frames(
    frames: list[np.ndarray], episode_lengths: list[int], legend: list[LegendEntry]
) -> list[np.ndarray]:
    """Each frame with its step ("step 12/43", and the episode where there are several) and a legend of
    what the colours are, drawn in the top-left corner, so a newcomer can tell agents from goals."""
    from PIL import Image, ImageDraw

    steps = [(episode, step, length) for episode, length in enumerate(episode_lengths) for step in range(length + 1)]
    annotated = []
    for frame, (episode, step, length) in zip(frames, steps, strict=True):
        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        text = f"step {step}/{length}" + (
            f"  episode {episode + 1}/{len(episode_lengths)}" if len(episode_lengths) > 1 else ""
        )
        draw.text((8, 6), text, fill=(0, 0, 0))
        for row, entry in enumerate(legend):
            top = 24 + 14 * row
            draw.rectangle((8, top + 1, 18, top + 11), fill=entry.color, outline=(0, 0, 0))
            draw.text((24, top), entry.label, fill=(0, 0, 0))
        annotated.append(np.asarray(image))
    return annotated


def write_media(path: Path, frames: list[np.ndarray], fps: float) -> None:
    if not frames:
        raise RenderError("no frames to write")
    with atomic_output(path) as temporary:
        if path.suffix.lower() == ".mp4":
            import imageio.v3 as iio

            # macro_block_size=1: keep the simulator's frame size (imageio would pad 700 to 704)
            iio.imwrite(temporary, np.stack(frames), extension=".mp4", fps=fps, macro_block_size=1)
        else:
            _write_gif(temporary, frames, fps)


def _write_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    from PIL import Image

    step = max(1, len(frames) // PALETTE_SAMPLE_FRAMES)
    palette = Image.fromarray(np.concatenate(frames[::step], axis=0)).quantize(
        colors=256, method=Image.Quantize.MEDIANCUT
    )
    images = [Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)
