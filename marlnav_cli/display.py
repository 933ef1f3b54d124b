"""Headless rendering: EGL where it exists, else a virtual X display (Xvfb) started for the process."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from ctypes import byref
from pathlib import Path

from marlnav_cli.errors import RenderError

NO_DISPLAY_MESSAGE = (
    "no display to render with: install EGL (apt-get install libegl1) or Xvfb (apt-get install xvfb), or set DISPLAY"
)


def egl_available() -> bool:
    """The same test VMAS makes before rendering headless through EGL."""
    try:
        import pyglet

        pyglet.lib.load_library("EGL")
        from pyglet.libs.egl import egl, eglext

        devices = egl.EGLint()
        eglext.eglQueryDevicesEXT(0, None, byref(devices))
        return devices.value > 0
    except Exception:
        return False


def restore_matplotlib_get_cmap() -> None:
    """VMAS's colour maps (the sampling scenario) call matplotlib.cm.get_cmap, which matplotlib 3.9
    removed; its replacement takes the same arguments. Put back only where it is missing."""
    import matplotlib
    from matplotlib import cm

    if not hasattr(cm, "get_cmap"):
        cm.get_cmap = lambda name=None, lut=None: (
            matplotlib.colormaps.get_cmap(name).resampled(lut)
            if lut is not None
            else matplotlib.colormaps.get_cmap(name)
        )


def ensure_display(
    egl_check: Callable[[], bool] = egl_available, find_xvfb: Callable[[], str | None] = lambda: shutil.which("Xvfb")
) -> str:
    """Make rendering possible in this process; return how ('display', 'egl' or 'xvfb')."""
    restore_matplotlib_get_cmap()
    if os.environ.get("DISPLAY"):
        return "display"
    if egl_check():
        return "egl"
    xvfb = find_xvfb()
    if xvfb is None:
        raise RenderError(NO_DISPLAY_MESSAGE)
    os.environ["DISPLAY"] = _start_xvfb(xvfb)
    return "xvfb"


def _start_xvfb(executable: str) -> str:
    for number in range(99, 199):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        display = f":{number}"
        process = subprocess.Popen(
            [executable, display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                atexit.register(process.terminate)
                return display
            if process.poll() is not None:
                break
            time.sleep(0.1)
        process.terminate()
    raise RenderError("Xvfb is installed but could not start a virtual display")
