"""marlnav's two hand-written hot paths against the TorchRL components they replace, interleaved in one process.

Usage: python -m benchmarks.hot_paths [--device cpu] [--repeats 7] [--preset tutorial]
           [--out benchmarks/results/hot_paths.json]

  - collection of one batch (6000 frames, 60 envs at the tutorial's settings): raw VMAS stepping with
    random actions (the floor), TorchRL's Collector over VmasEnv + RewardSum (what marlnav used before),
    marlnav's ExperienceCollector, and the same with the floor's random actions in the policy's place;
  - one PPO minibatch update (forward, backward, grad clipping, Adam step): the plain-torch floor (the
    same nets and minibatch size, see UpdateFloor), TorchRL's ClipPPOLoss on a TensorDict minibatch, and
    marlnav's PPOObjective on flat tensors; these three with torch's default Adam, then PPOObjective with
    the fused Adam that training uses.
Each figure is the minimum over --repeats rounds, the variants taking turns in every round, so the
machine's load hits all of them alike. tests/test_equivalence.py checks that both paths give the same
numbers as the TorchRL components. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import vmas
from torchrl.collectors import Collector

from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig, preset_config
from marlnav_cli.envs import agent_groups, make_env
from marlnav_cli.models import TensorCritic, build_critics, build_policies, tensor_policy
from marlnav_cli.ppo import PPOBatch, PPOObjective, clip_ppo_loss_for

REPO = Path(__file__).resolve().parent.parent


def fastest(variants: dict[str, Callable[[], None]], repeats: int, device: torch.device) -> dict[str, float]:
    """Minimum seconds of each variant, the variants taking turns in every round."""
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            gc.collect()  # so that one variant's garbage is not collected on another's clock
            started = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in timings.items()}


class RawVmasFloor:
    """The collection floor: raw `vmas.make_env` stepped for one batch with uniform random actions."""

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        self.env = vmas.make_env(
            config.scenario,
            num_envs=config.num_envs,
            n_agents=config.n_agents,
            continuous_actions=True,
            max_steps=config.max_steps,
            device=device,
            seed=0,
            **config.scenario_args,
        )
        self.env.reset()
        self.action_size = self.env.get_agent_action_size(self.env.agents[0])

    def step_one_batch(self) -> None:
        for _ in range(self.config.max_steps):
            self.env.step(
                [
                    torch.rand(self.config.num_envs, self.action_size, device=self.device) * 2 - 1
                    for _ in range(self.config.n_agents)
                ]
            )


class UpdateFloor:
    """The update phase in plain torch; by default the tutorial's: two 2x256 tanh nets, 30 epochs x 15
    minibatches of 400 (Normal + tanh log-prob, Adam, grad clipping)."""

    def __init__(self, device: str, cells: int = 256, minibatch_size: int = 400) -> None:
        torch.manual_seed(0)
        self.n_agents, n_obs, n_act, self.frames = 3, 18, 2, 6000
        self.minibatch_size = minibatch_size
        self.device = torch.device(device)
        dev = self.device

        def mlp(inputs: int, outputs: int) -> torch.nn.Module:
            return torch.nn.Sequential(
                torch.nn.Linear(inputs, cells),
                torch.nn.Tanh(),
                torch.nn.Linear(cells, cells),
                torch.nn.Tanh(),
                torch.nn.Linear(cells, outputs),
            ).to(dev)

        self.policy, self.critic = mlp(n_obs, 2 * n_act), mlp(n_obs * self.n_agents, 1)
        self.parameters = list(self.policy.parameters()) + list(self.critic.parameters())
        self.optimiser = torch.optim.Adam(self.parameters, lr=3e-4)
        self.obs = torch.randn(self.frames, self.n_agents, n_obs, device=dev)
        self.actions = torch.rand(self.frames, self.n_agents, n_act, device=dev) * 1.8 - 0.9
        self.old_log_prob = torch.randn(self.frames, self.n_agents, device=dev)
        self.advantage = torch.randn(self.frames, self.n_agents, 1, device=dev)
        self.target = torch.randn(self.frames, self.n_agents, 1, device=dev)

    def update(self, index: torch.Tensor) -> None:
        """One minibatch: loss, backward, grad clipping, Adam step."""
        actions = self.actions[index]
        loc, raw_scale = self.policy(self.obs[index]).chunk(2, -1)
        scale = torch.nn.functional.softplus(raw_scale + 0.5413) + 1e-4
        normal = torch.distributions.Normal(loc, scale)
        log_prob = (normal.log_prob(torch.atanh(actions)) - torch.log1p(-(actions**2) + 1e-6)).sum(-1)
        ratio = (log_prob - self.old_log_prob[index]).exp().unsqueeze(-1)
        advantage = self.advantage[index]
        gain = torch.minimum(ratio * advantage, ratio.clamp(0.8, 1.2) * advantage)
        sample = torch.tanh(normal.rsample())
        entropy = -(normal.log_prob(torch.atanh(sample.clamp(-0.999, 0.999))) - torch.log1p(-(sample**2) + 1e-6)).sum(
            -1
        )
        value = self.critic(self.obs[index].flatten(1)).unsqueeze(1).expand(-1, self.n_agents, 1)
        loss = -gain.mean() - 1e-4 * entropy.mean() + torch.nn.functional.smooth_l1_loss(value, self.target[index])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, 1.0)
        self.optimiser.step()
        self.optimiser.zero_grad()

    def iteration_seconds(self) -> float:
        started = time.perf_counter()
        for _ in range(30):
            order = torch.randperm(self.frames, device=self.device)
            for start in range(0, self.frames, self.minibatch_size):
                self.update(order[start : start + self.minibatch_size])
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started


class UniformActions:
    """Stands in for the policy in the collector: uniform actions in [-1, 1], as the floor draws."""

    def __init__(self, action_size: int) -> None:
        self.action_size = action_size

    def sample(self, observation: torch.Tensor) -> torch.Tensor:
        return torch.rand(*observation.shape[:-1], self.action_size, device=observation.device) * 2 - 1


def collection(config: TrainConfig, device: torch.device, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    env = make_env(config, num_envs=config.num_envs, seed=0, device=device)
    group = agent_groups(env)[0]
    policy = build_policies(env, config, device)[group.name]
    floor = RawVmasFloor(config, device)
    collector = Collector(
        env,
        policy,
        frames_per_batch=config.frames_per_batch,
        total_frames=-1,
        reset_at_each_iter=True,
        device=device,
        storing_device=device,
        auto_register_policy_transforms=False,
    )
    batches = iter(collector)
    ours = ExperienceCollector(env, {group.name: tensor_policy(policy, group)}, steps=config.max_steps)
    # The floor's random actions in the policy's place: what the collection loop costs beyond the policy.
    ours_random = ExperienceCollector(env, {group.name: UniformActions(floor.action_size)}, steps=config.max_steps)
    timings = fastest(
        {
            "raw VMAS, random actions (floor)": floor.step_one_batch,
            "TorchRL Collector": lambda: next(batches),
            "marlnav ExperienceCollector": ours.collect,
            "marlnav ExperienceCollector, random actions": ours_random.collect,
        },
        repeats,
        device,
    )
    collector.shutdown()
    return timings


def minibatch_update(config: TrainConfig, device: torch.device, repeats: int, steps: int = 45) -> dict[str, float]:
    """Seconds per minibatch update, averaged over `steps` minibatches of one iteration's batch."""
    torch.manual_seed(0)
    env = make_env(config, num_envs=config.num_envs, seed=0, device=device)
    group = agent_groups(env)[0]
    policy, critic = build_policies(env, config, device)[group.name], build_critics(env, config, device)[group.name]
    actor = tensor_policy(policy, group)
    data = ExperienceCollector(env, {group.name: actor}, steps=config.max_steps).collect().reshape(-1)
    objective = PPOObjective(
        actor, TensorCritic(critic), clip_epsilon=config.clip_epsilon, entropy_coeff=config.entropy_coeff
    )
    data.set(group.key("advantage"), torch.randn(*data.batch_size, config.n_agents, 1, device=device))
    data.set(group.key("value_target"), torch.randn(*data.batch_size, config.n_agents, 1, device=device))
    flat_batch = PPOBatch.from_rollout(data, group, actor)
    data.set(group.key("action_log_prob"), flat_batch.log_prob)
    reference = clip_ppo_loss_for(
        policy, critic, group, clip_epsilon=config.clip_epsilon, entropy_coeff=config.entropy_coeff
    )
    loss_keys = [
        group.key("observation"),
        group.key("action"),
        group.key("action_log_prob"),
        group.key("advantage"),
        group.key("value_target"),
    ]
    tensordict_batch = data.select(*loss_keys)
    parameters = [*policy.parameters(), *critic.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=config.lr)

    floor = UpdateFloor(str(device), cells=config.num_cells, minibatch_size=config.minibatch_size)

    def minibatches(update: Callable[[torch.Tensor], None]) -> None:
        order = torch.randperm(config.frames_per_batch, device=device)
        for step in range(steps):
            start = (step % config.minibatches_per_epoch) * config.minibatch_size
            update(order[start : start + config.minibatch_size])

    fused_optimiser = torch.optim.Adam(parameters, lr=config.lr, fused=True)  # as train.py steps

    def step(total: torch.Tensor, adam: torch.optim.Optimizer = optimiser) -> None:
        total.backward()
        torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
        adam.step()
        adam.zero_grad(set_to_none=True)

    def clip_ppo_loss(index: torch.Tensor) -> None:
        losses = reference(tensordict_batch[index])
        step(losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"])

    timings = fastest(
        {
            "plain torch (floor)": lambda: minibatches(floor.update),
            "TorchRL ClipPPOLoss": lambda: minibatches(clip_ppo_loss),
            "marlnav PPOObjective": lambda: minibatches(lambda index: step(objective(flat_batch[index]).total())),
            "marlnav PPOObjective, fused Adam": lambda: minibatches(
                lambda index: step(objective(flat_batch[index]).total(), fused_optimiser)
            ),
        },
        repeats,
        device,
    )
    return {name: seconds / steps for name, seconds in timings.items()}


def measure(preset: str, device: torch.device, repeats: int) -> dict:
    config = preset_config(preset)
    return {
        "preset": preset,
        "collection_s_per_batch": collection(config, device, repeats),
        "update_s_per_minibatch": minibatch_update(config, device, repeats),
    }


def print_report(report: dict) -> None:
    for figure, unit in (("collection_s_per_batch", "s per batch"), ("update_s_per_minibatch", "ms per minibatch")):
        rows = report[figure]
        scale = 1000 if unit.startswith("ms") else 1
        first = next(iter(rows.values()))
        print(f"\n{figure.split('_')[0]} ({unit}, preset {report['preset']}):")
        for name, seconds in rows.items():
            print(f"  {name:<44}{seconds * scale:>8.3f}{seconds / first:>7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--preset", nargs="+", default=["tutorial", "fast"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "hot_paths.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    reports = [measure(preset, device, args.repeats) for preset in args.preset]
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, {args.device}",
        "torch": torch.__version__,
        "repeats": args.repeats,
        "reports": reports,
    }
    for report in reports:
        print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
