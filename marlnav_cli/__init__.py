"""marlnav: train, inspect, evaluate and render multi-agent PPO policies on VMAS.

From Python: `from marlnav_cli import api as marlnav`, then marlnav.train / evaluate / render / export
(marlnav_cli.api), the functions the commands call."""

__version__ = "0.1.0"
