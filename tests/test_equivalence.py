"""marlnav's two hand-written hot paths give what TorchRL's own components give on the same inputs.

Collection (collect.py) is checked against TorchRL's Collector over VmasEnv + RewardSum, frame by
frame from the same RNG state; the PPO loss (ppo.py) against ClipPPOLoss, term by term and gradient by
gradient, on the same minibatch and the same entropy sample.
"""

from __future__ import annotations

import pytest
import torch
from torchrl.collectors import Collector
from torchrl.modules import TanhNormal
from torchrl.objectives import ClipPPOLoss

from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import GROUP, make_env
from marlnav_cli.models import STATE_VALUE_KEY, TensorCritic, TensorPolicy, build_critic, build_policy
from marlnav_cli.ppo import PPOBatch, PPOObjective
from marlnav_cli.rng import capture_rng, restore_rng
from marlnav_cli.tanh_normal import SquashedNormal

CPU = torch.device("cpu")
# Balance: a random policy drops the package now and then, so some envs end mid-batch and reset alone.
CONFIG = TrainConfig(scenario="balance", frames_per_batch=8 * 100, max_steps=100, num_cells=16)
COMPARED_KEYS = [(GROUP, "observation"), (GROUP, "action"), ("next", GROUP, "observation"),
                 ("next", GROUP, "reward"), ("next", GROUP, "episode_reward"), ("next", "done"),
                 ("next", "terminated")]


def _env_and_policy(config: TrainConfig):
    torch.manual_seed(0)
    env = make_env(config, num_envs=config.num_envs, seed=0, device=CPU)
    return env, build_policy(env, config, CPU)


def test_collection_equals_torchrl_collector_frame_by_frame() -> None:
    env, policy = _env_and_policy(CONFIG)
    collector = Collector(env, policy, frames_per_batch=CONFIG.frames_per_batch, total_frames=CONFIG.frames_per_batch,
                          reset_at_each_iter=True, device=CPU, storing_device=CPU, auto_register_policy_transforms=False)
    start = capture_rng()  # after the Collector's own construction-time reset
    expected = next(iter(collector))
    collector.shutdown()
    assert expected.get(("next", "done")).any(dim=1).sum() >= 2, "the batch must exercise resets"
    assert expected.get(("next", "done"))[:, :-1].any(), "and resets before the last step"

    restore_rng(start)
    tensor_policy = TensorPolicy(policy)
    ours = ExperienceCollector(env, tensor_policy, steps=CONFIG.max_steps).collect()

    assert ours.batch_size == expected.batch_size
    for key in COMPARED_KEYS:
        torch.testing.assert_close(ours.get(key), expected.get(key), rtol=0, atol=0, msg=f"{key} differs")
    # Scored once per batch here, per step there (and TorchRL may score the pre-tanh draw): float noise only.
    action_preimage = tensor_policy.preimage(ours.get((GROUP, "action")))
    torch.testing.assert_close(tensor_policy.log_prob(ours.get((GROUP, "observation")), action_preimage),
                               expected.get((GROUP, "action_log_prob")), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("mappo", "shared"), [(True, True), (False, True), (True, False)])
def test_ppo_loss_equals_clip_ppo_loss_terms_and_gradients(mappo: bool, shared: bool) -> None:
    config = TrainConfig(frames_per_batch=4 * 40, max_steps=40, num_cells=16, mappo=mappo, entropy_coeff=0.01,
                         share_policy=shared, share_critic=shared)
    env, policy = _env_and_policy(config)
    critic = build_critic(env, config, CPU)
    with torch.no_grad():
        data = env.rollout(40, policy=policy, break_when_any_done=False)
    minibatch = data.reshape(-1)[:64]
    minibatch.set("advantage", torch.randn(64, config.n_agents, 1))
    minibatch.set("value_target", torch.randn(64, config.n_agents, 1))
    # Pretend the batch came from a slightly different policy, so the ratio is clipped on both sides.
    behaviour_log_prob = minibatch.get((GROUP, "action_log_prob"))
    minibatch.set((GROUP, "action_log_prob"), behaviour_log_prob + 0.3 * torch.randn_like(behaviour_log_prob))
    parameters = [*policy.parameters(), *critic.parameters()]

    reference = ClipPPOLoss(actor_network=policy, critic_network=critic, clip_epsilon=config.clip_epsilon,
                            entropy_coeff=config.entropy_coeff, normalize_advantage=False)
    reference.set_keys(value=STATE_VALUE_KEY)
    torch.manual_seed(1)
    expected = reference(minibatch)
    assert 0 < expected["clip_fraction"] < 1
    expected_total = expected["loss_objective"] + expected["loss_critic"] + expected["loss_entropy"]
    expected_grads = torch.autograd.grad(expected_total, parameters)

    tensor_policy = TensorPolicy(policy)
    objective = PPOObjective(tensor_policy, TensorCritic(critic), clip_epsilon=config.clip_epsilon,
                             entropy_coeff=config.entropy_coeff)
    batch = PPOBatch.from_rollout(minibatch, tensor_policy, log_prob=minibatch.get((GROUP, "action_log_prob")))
    torch.manual_seed(1)
    losses = objective(batch)
    grads = torch.autograd.grad(losses.total(), parameters)

    for ours, theirs in ((losses.objective, "loss_objective"), (losses.critic, "loss_critic"),
                         (losses.entropy_bonus, "loss_entropy"), (losses.entropy, "entropy")):
        torch.testing.assert_close(ours, expected[theirs], msg=f"{theirs} differs")
    for ours, theirs in zip(grads, expected_grads):
        torch.testing.assert_close(ours, theirs)


def test_squashed_normal_equals_tanh_normal_on_a_box_that_is_not_minus_one_to_one() -> None:
    torch.manual_seed(0)
    low, high = torch.tensor([-2.0, 0.5]), torch.tensor([3.0, 0.75])
    loc = torch.randn(50, 2, requires_grad=True)
    scale = (torch.rand(50, 2) + 0.1).requires_grad_()
    reference = TanhNormal(loc, scale, low=low, high=high)
    squash = SquashedNormal(low, high)
    action = reference.sample()

    torch.testing.assert_close(squash.log_prob(loc, scale, squash.preimage(action)), reference.log_prob(action),
                               rtol=1e-4, atol=1e-4)
    torch.manual_seed(3)
    _, expected = reference.rsample_and_log_prob()
    torch.manual_seed(3)
    ours = squash.rsample_log_prob(loc, scale)
    torch.testing.assert_close(ours, expected)
    for mine, theirs in zip(torch.autograd.grad(ours.sum(), (loc, scale)),
                            torch.autograd.grad(expected.sum(), (loc, scale))):
        torch.testing.assert_close(mine, theirs)
    torch.manual_seed(4)
    drawn = squash.sample(loc, scale)
    torch.manual_seed(4)
    torch.testing.assert_close(drawn, reference.sample())
