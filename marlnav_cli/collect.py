"""Collection: one batch of experience, stepping the simulator inside TorchRL's VmasEnv directly.

Why not TorchRL's Collector: at the tutorial's 60 envs, Collector + VmasEnv + RewardSum build several
TensorDicts per step and took 2.4x the simulator's own stepping time; this takes 1.1-1.2x
(benchmarks/hot_paths.py). Here each step is plain tensors, and the batch is assembled once, in the
layout the Collector gives, so TorchRL's GAE reads it unchanged.

Semantics are VmasEnv's and the Collector's: done = terminated = the scenario's done or the step limit
(the tutorial bootstraps neither); done envs are reset one by one with VMAS's own RNG; actions are
sampled from the policy's TanhNormal; `("next", "agents", "episode_reward")` is RewardSum's running sum.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torchrl.envs import TransformedEnv

from marlnav_cli.envs import GROUP
from marlnav_cli.models import TensorPolicy


class ExperienceCollector:
    """Runs the policy in every env for `steps` steps, starting each batch from a full reset."""

    def __init__(self, env: TransformedEnv, policy: TensorPolicy, steps: int) -> None:
        self.simulator = env.base_env._env  # the vmas.Environment VmasEnv wraps: same scenario, seed, RNG
        self.device = env.device
        self.policy = policy
        self.steps = steps

    def collect(self) -> TensorDict:
        """A [num_envs, steps] batch with the keys TorchRL's Collector gives for this env."""
        # Inference mode made stepping ~10% faster than no_grad (VMAS runs many small ops); the batch is
        # stacked outside it, so training gets ordinary tensors.
        with torch.inference_mode():
            steps = self._run_steps()
        batch = {name: torch.stack(values, dim=1) for name, values in steps.items()}
        return TensorDict({
            GROUP: {"observation": batch["observation"], "action": batch["action"]},
            "next": {
                GROUP: {"observation": batch["next_observation"], "reward": batch["reward"],
                        "episode_reward": batch["episode_reward"]},
                "done": batch["done"],
                "terminated": batch["done"].clone(),
            },
        }, batch_size=batch["done"].shape[:2], device=self.device)

    def _run_steps(self) -> dict[str, list[torch.Tensor]]:
        observation = torch.stack(self.simulator.reset(), dim=1)
        episode_reward = torch.zeros(*observation.shape[:2], 1, device=observation.device)
        steps: dict[str, list[torch.Tensor]] = {name: [] for name in (
            "observation", "action", "next_observation", "reward", "episode_reward", "done")}
        for step in range(self.steps):
            action = self.policy.sample(observation)
            next_observations, rewards, done, _ = self.simulator.step(list(action.unbind(dim=1)))
            next_observation = torch.stack(next_observations, dim=1)
            reward = torch.stack(rewards, dim=1).unsqueeze(-1)
            episode_reward = episode_reward + reward
            for name, value in (("observation", observation), ("action", action),
                                ("next_observation", next_observation), ("reward", reward),
                                ("episode_reward", episode_reward), ("done", done.unsqueeze(-1))):
                steps[name].append(value)
            episode_reward = episode_reward.masked_fill(done[:, None, None], 0.0)  # done is [envs]
            if step + 1 < self.steps:  # the next batch starts from a full reset anyway
                observation = self._reset_done(done, next_observation)
        return steps

    def _reset_done(self, done: torch.Tensor, next_observation: torch.Tensor) -> torch.Tensor:
        """Reset the envs that are done, as VmasEnv does, and return every env's current observation."""
        if not done.any():
            return next_observation
        if done.all():
            return torch.stack(self.simulator.reset(), dim=1)
        for env_index in done.nonzero().squeeze(-1).tolist():
            self.simulator.reset_at(env_index, return_observations=False)
        observations = self.simulator.get_from_scenario(get_observations=True, get_rewards=False,
                                                        get_infos=False, get_dones=False)[0]
        return torch.stack(observations, dim=1)
