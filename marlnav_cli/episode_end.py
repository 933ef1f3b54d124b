"""What a scenario's `done` means: apart from the scenario table, so that the command line can name it
without importing torch."""

from __future__ import annotations

from enum import Enum


class EpisodeEnd(Enum):
    """What a scenario's `done` means."""

    SUCCESS = "success"  # the task was completed
    MIXED = "goal or failure"  # the task was completed, or failed beyond repair
    FAILURE = "failure"  # a crash or a fall: the end is always bad
    NEVER = "never"  # the scenario never ends before the step limit
