"""The yardstick: TorchRL's multi-agent PPO tutorial (MAPPO on VMAS navigation) with its stock components.

TorchRL's Collector, a ReplayBuffer sampling without replacement, ClipPPOLoss with its GAE value
estimator, MultiAgentMLP nets and TanhNormal, as the tutorial ("Multi-Agent Reinforcement Learning
(PPO) with TorchRL") writes them, on the installed torchrl (0.14: `Collector`, `entropy_coeff`, the
log-prob key under the group). Nothing of marlnav is used. Defaults are the tutorial's
hyperparameters; the size options exist so that a test can run it in seconds.

    python -m benchmarks.tutorial_reference [--iters 10] [--seed 0] [--device cpu] [--eval-episodes 200]

Prints a line per iteration, then one JSON line: {"rewards", "total_s", "collect_s", "train_s"} and, with
--eval-episodes N, "eval": the trained policy run deterministically (the distribution's mode) for N
episodes on seed + 1000, one per vectorised env; an episode succeeds when it ends before the step
limit (every agent on its goal). Training time excludes the evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

import torch
from tensordict.nn import TensorDictModule
from tensordict.nn.distributions import NormalParamExtractor
from torchrl.collectors import Collector
from torchrl.data.replay_buffers import ReplayBuffer
from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement
from torchrl.data.replay_buffers.storages import LazyTensorStorage
from torchrl.envs import RewardSum, TransformedEnv
from torchrl.envs.libs.vmas import VmasEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal
from torchrl.objectives import ClipPPOLoss, ValueEstimators


@dataclass(frozen=True)
class TutorialSettings:
    """The tutorial's hyperparameters."""

    frames_per_batch: int = 6_000
    iters: int = 10
    num_epochs: int = 30
    minibatch_size: int = 400
    lr: float = 3e-4
    max_grad_norm: float = 1.0
    clip_epsilon: float = 0.2
    gamma: float = 0.99
    lmbda: float = 0.9
    entropy_coeff: float = 1e-4
    max_steps: int = 100
    n_agents: int = 3
    num_cells: int = 256


def navigation(settings: TutorialSettings, num_envs: int, seed: int, device: torch.device) -> TransformedEnv:
    env = VmasEnv(
        scenario="navigation",
        num_envs=num_envs,
        continuous_actions=True,
        max_steps=settings.max_steps,
        device=device,
        n_agents=settings.n_agents,
        seed=seed,
    )
    return TransformedEnv(env, RewardSum(in_keys=[env.reward_key], out_keys=[("agents", "episode_reward")]))


def build_policy_and_critic(
    env: TransformedEnv, settings: TutorialSettings, device: torch.device
) -> tuple[ProbabilisticActor, TensorDictModule]:
    n_obs = env.observation_spec["agents", "observation"].shape[-1]
    n_act = env.full_action_spec[env.action_key].shape[-1]
    space = env.full_action_spec_unbatched[env.action_key].space
    policy_net = torch.nn.Sequential(
        MultiAgentMLP(
            n_agent_inputs=n_obs,
            n_agent_outputs=2 * n_act,
            n_agents=env.n_agents,
            centralised=False,
            share_params=True,
            device=device,
            depth=2,
            num_cells=settings.num_cells,
            activation_class=torch.nn.Tanh,
        ),
        NormalParamExtractor(),
    )
    policy = ProbabilisticActor(
        module=TensorDictModule(
            policy_net, in_keys=[("agents", "observation")], out_keys=[("agents", "loc"), ("agents", "scale")]
        ),
        spec=env.full_action_spec_unbatched,
        in_keys=[("agents", "loc"), ("agents", "scale")],
        out_keys=[env.action_key],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": space.low, "high": space.high},
        return_log_prob=True,
    )
    critic = TensorDictModule(
        MultiAgentMLP(
            n_agent_inputs=n_obs,
            n_agent_outputs=1,
            n_agents=env.n_agents,
            centralised=True,
            share_params=True,
            device=device,
            depth=2,
            num_cells=settings.num_cells,
            activation_class=torch.nn.Tanh,
        ),
        in_keys=[("agents", "observation")],
        out_keys=[("agents", "state_value")],
    )
    return policy, critic


def train(settings: TutorialSettings, seed: int, device: torch.device) -> tuple[ProbabilisticActor, dict[str, Any]]:
    """The tutorial's training loop, top to bottom."""
    torch.manual_seed(seed)
    started = time.time()
    env = navigation(settings, settings.frames_per_batch // settings.max_steps, seed, device)
    policy, critic = build_policy_and_critic(env, settings, device)
    collector = Collector(
        env,
        policy,
        device=device,
        storing_device=device,
        frames_per_batch=settings.frames_per_batch,
        total_frames=settings.frames_per_batch * settings.iters,
    )
    replay_buffer = ReplayBuffer(
        storage=LazyTensorStorage(settings.frames_per_batch, device=device),
        sampler=SamplerWithoutReplacement(),
        batch_size=settings.minibatch_size,
    )
    loss_module = ClipPPOLoss(
        actor_network=policy,
        critic_network=critic,
        clip_epsilon=settings.clip_epsilon,
        entropy_coeff=settings.entropy_coeff,
        normalize_advantage=False,
    )
    loss_module.set_keys(
        reward=env.reward_key,
        action=env.action_key,
        value=("agents", "state_value"),
        done=("agents", "done"),
        terminated=("agents", "terminated"),
    )
    loss_module.make_value_estimator(ValueEstimators.GAE, gamma=settings.gamma, lmbda=settings.lmbda)
    advantage = loss_module.value_estimator
    optimiser = torch.optim.Adam(loss_module.parameters(), settings.lr)

    rewards, collect_s, train_s = [], 0.0, 0.0
    previous = time.time()
    for data in collector:
        collect_s += time.time() - previous
        update_started = time.time()
        reward_shape = data.get_item_shape(("next", env.reward_key))
        for key in ("done", "terminated"):  # the shared done, with the reward's per-agent shape, for GAE
            data.set(("next", "agents", key), data.get(("next", key)).unsqueeze(-1).expand(reward_shape))
        with torch.no_grad():
            advantage(
                data, params=loss_module.critic_network_params, target_params=loss_module.target_critic_network_params
            )
        replay_buffer.extend(data.reshape(-1))
        for _ in range(settings.num_epochs):
            for _ in range(settings.frames_per_batch // settings.minibatch_size):
                losses = loss_module(replay_buffer.sample())
                (losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]).backward()
                torch.nn.utils.clip_grad_norm_(loss_module.parameters(), settings.max_grad_norm)
                optimiser.step()
                optimiser.zero_grad()
        collector.update_policy_weights_()
        train_s += time.time() - update_started
        done = data.get(("next", "agents", "done"))
        rewards.append(data.get(("next", "agents", "episode_reward"))[done].mean().item())
        print(f"iter {len(rewards)} reward {rewards[-1]:.3f} elapsed {time.time() - started:.1f}s", flush=True)
        previous = time.time()
    collector.shutdown()
    return policy, {"rewards": rewards, "total_s": time.time() - started, "collect_s": collect_s, "train_s": train_s}


def evaluate(
    policy: ProbabilisticActor, settings: TutorialSettings, episodes: int, seed: int, device: torch.device
) -> dict[str, float]:
    """Every vectorised env for one episode with the deterministic policy, on seed + 1000."""
    started = time.time()
    env = navigation(settings, episodes, seed + 1000, device)
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        data = env.rollout(settings.max_steps, policy=policy, break_when_any_done=False)
    done = data.get(("next", "done")).squeeze(-1)  # [envs, steps]
    first_done = done.float().argmax(dim=1)  # each env's first episode end
    episode_reward = data.get(("next", "agents", "episode_reward"))  # [envs, steps, agents, 1]
    per_env = episode_reward[torch.arange(episodes), first_done].mean(dim=(-2, -1))
    return {
        "mean_reward": per_env.mean().item(),
        "std_reward": per_env.std().item() if episodes > 1 else 0.0,
        "success_rate": (first_done < settings.max_steps - 1).float().mean().item(),
        "mean_length": (first_done + 1).float().mean().item(),
        "eval_s": time.time() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = TutorialSettings()
    parser.add_argument("--iters", type=int, default=defaults.iters)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-agents", type=int, default=defaults.n_agents)
    parser.add_argument("--eval-episodes", type=int, default=0)
    # Sizes, for a test that runs it in seconds; the benchmark keeps the tutorial's.
    parser.add_argument("--frames-per-batch", type=int, default=defaults.frames_per_batch)
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps)
    parser.add_argument("--epochs", type=int, default=defaults.num_epochs)
    parser.add_argument("--minibatch-size", type=int, default=defaults.minibatch_size)
    parser.add_argument("--num-cells", type=int, default=defaults.num_cells)
    args = parser.parse_args()
    settings = TutorialSettings(
        frames_per_batch=args.frames_per_batch,
        iters=args.iters,
        num_epochs=args.epochs,
        minibatch_size=args.minibatch_size,
        max_steps=args.max_steps,
        n_agents=args.n_agents,
        num_cells=args.num_cells,
    )
    device = torch.device(args.device)
    policy, result = train(settings, args.seed, device)
    if args.eval_episodes > 0:
        result["eval"] = evaluate(policy, settings, args.eval_episodes, args.seed, device)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
