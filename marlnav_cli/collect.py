"""Collection: one batch of experience, stepping the simulator inside TorchRL's VmasEnv directly.

Why not TorchRL's Collector: at the tutorial's 60 envs, Collector + VmasEnv + RewardSum build several
TensorDicts per step, which cost more than the simulator's own stepping (benchmarks/hot_paths.py
measures both). Here each step is plain tensors, and the batch is assembled once, in the layout the
Collector gives, so TorchRL's GAE reads it unchanged.

Semantics are VmasEnv's and the Collector's: done = terminated = the scenario's done or the step limit
(the tutorial bootstraps neither), unless `bootstrap_time_limit`: then terminated is the scenario's own
done, what VMAS calls terminated apart from truncated, so GAE bootstraps where only the limit ended an
episode. Done envs are reset one by one with VMAS's own RNG; each group's
actions are sampled from its policy, groups in the env's order; `("next", group, "episode_reward")` is
RewardSum's running sum.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torchrl.envs import TransformedEnv

from marlnav_cli.envs import agent_groups, per_env
from marlnav_cli.models import TensorPolicy

_PER_GROUP = ("observation", "action", "next_observation", "reward", "episode_reward")


class ExperienceCollector:
    """Runs every group's policy in every env for `steps` steps, starting each batch from a full reset."""

    def __init__(
        self, env: TransformedEnv, policies: dict[str, TensorPolicy], steps: int, bootstrap_time_limit: bool = False
    ) -> None:
        self.simulator = env.base_env._env  # the vmas.Environment VmasEnv wraps: same scenario, seed, RNG
        self.device = env.device
        self.groups = agent_groups(env)
        self.policies = [policies[group.name] for group in self.groups]
        self.steps = steps
        self.bootstrap_time_limit = bootstrap_time_limit

    def collect(self) -> TensorDict:
        """A [num_envs, steps] batch with the keys TorchRL's Collector gives for this env."""
        # Inference mode steps faster than no_grad (VMAS runs many small ops; docs/benchmarks.md); the
        # batch is stacked outside it, so training gets ordinary tensors.
        with torch.inference_mode():
            per_group, done = self._run_steps()
            terminated = list(done)
            if self.bootstrap_time_limit:
                # Every batch starts from a full reset and runs `steps` (the step limit) steps, so only its
                # last step can be cut by the limit: there the scenario's own done ended the episode.
                terminated[-1] = per_env(self.simulator.scenario.done(), done[-1].shape[0]).unsqueeze(-1)
        terminated = torch.stack(terminated, dim=1)
        done = torch.stack(done, dim=1)
        batch: dict = {"next": {"done": done, "terminated": terminated}}
        for group, steps in zip(self.groups, per_group):
            stacked = {name: torch.stack(values, dim=1) for name, values in steps.items()}
            batch[group.name] = {"observation": stacked["observation"], "action": stacked["action"]}
            batch["next"][group.name] = {
                "observation": stacked["next_observation"],
                "reward": stacked["reward"],
                "episode_reward": stacked["episode_reward"],
            }
        return TensorDict(batch, batch_size=done.shape[:2], device=self.device)

    def _run_steps(self) -> tuple[list[dict[str, list[torch.Tensor]]], list[torch.Tensor]]:
        observations = self._by_group(self.simulator.reset())
        num_envs = observations[0].shape[0]
        n_agents = len(self.simulator.agents)
        episode_rewards = [
            torch.zeros(*observation.shape[:2], 1, device=observation.device) for observation in observations
        ]
        per_group: list[dict[str, list[torch.Tensor]]] = [{name: [] for name in _PER_GROUP} for _ in self.groups]
        dones: list[torch.Tensor] = []
        for step in range(self.steps):
            group_actions = [policy.sample(observation) for policy, observation in zip(self.policies, observations)]
            agent_actions: list[torch.Tensor] = [torch.empty(0)] * n_agents
            for group, actions in zip(self.groups, group_actions):
                for index, action in zip(group.agent_indices, actions.unbind(dim=1)):
                    agent_actions[index] = action
            next_agent_observations, agent_rewards, done, _ = self.simulator.step(agent_actions)
            done = per_env(done, num_envs)
            next_observations = self._by_group(next_agent_observations)
            rewards = self._by_group([per_env(reward, num_envs) for reward in agent_rewards])
            for index, group_steps in enumerate(per_group):
                reward = rewards[index].unsqueeze(-1)
                episode_rewards[index] = episode_rewards[index] + reward
                for name, value in (
                    ("observation", observations[index]),
                    ("action", group_actions[index]),
                    ("next_observation", next_observations[index]),
                    ("reward", reward),
                    ("episode_reward", episode_rewards[index]),
                ):
                    group_steps[name].append(value)
                episode_rewards[index] = episode_rewards[index].masked_fill(done[:, None, None], 0.0)
            dones.append(done.unsqueeze(-1))
            if step + 1 < self.steps:  # the next batch starts from a full reset anyway
                observations = self._reset_done(done, next_observations)
        return per_group, dones

    def _by_group(self, per_agent: list[torch.Tensor]) -> list[torch.Tensor]:
        """VMAS's per-agent list as one [envs, agents, ...] tensor per group."""
        return [torch.stack([per_agent[index] for index in group.agent_indices], dim=1) for group in self.groups]

    def _reset_done(self, done: torch.Tensor, next_observations: list[torch.Tensor]) -> list[torch.Tensor]:
        """Reset the envs that are done, as VmasEnv does, and return every env's current observations."""
        if not done.any():
            return next_observations
        if done.all():
            return self._by_group(self.simulator.reset())
        for env_index in done.nonzero().squeeze(-1).tolist():
            self.simulator.reset_at(env_index, return_observations=False)
        observations = self.simulator.get_from_scenario(
            get_observations=True, get_rewards=False, get_infos=False, get_dones=False
        )[0]
        return self._by_group(observations)
