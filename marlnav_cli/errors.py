"""The project's exception types. Library code raises these; only the CLI turns them into exit codes."""


class MarlnavError(Exception):
    """A problem the user can fix, reported as one line and exit code 2."""


class ConfigError(MarlnavError):
    """A setting is out of range or inconsistent with another."""


class CheckpointError(MarlnavError):
    """A checkpoint file is missing, malformed, or does not fit what was asked."""


class RenderError(MarlnavError):
    """Frames cannot be produced (no display) or the GIF cannot be written."""


class MarlnavWarning(UserWarning):
    """Something the user should know that does not stop the command; printed as one `warning:` line."""


class TrainingDiverged(MarlnavError):
    """A loss or gradient became NaN or infinite."""


def install_hint(extra: str) -> str:
    """How to install one of marlnav's extras: from its folder, as long as it is not published on an index."""
    return f"pip install -e '.[{extra}]' in marlnav's folder"
