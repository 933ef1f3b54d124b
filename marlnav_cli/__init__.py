"""marlnav: train, inspect, evaluate and render multi-agent PPO policies on VMAS."""

__version__ = "0.1.0"
