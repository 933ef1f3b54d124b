"""Headless rendering falls back in order: DISPLAY, EGL, Xvfb, then one line saying what to install."""

from __future__ import annotations

import pytest

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
