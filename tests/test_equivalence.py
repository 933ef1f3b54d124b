"""marlnav's two hand-written hot paths give what TorchRL's own components give on the same inputs.

Collection (collect.py) is checked against TorchRL's Collector over VmasEnv + RewardSum, frame by
frame from the same RNG state; the PPO loss (ppo.py) against ClipPPOLoss, term by term and gradient by
gradient, on the same minibatch and the same entropy sample. Both on one group and on several (a
competitive scenario), with continuous and discrete actions.
"""

from __future__ import annotations

import pytest
import torch
from torchrl.collectors import Collector
from torchrl.modules import TanhNormal

from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import agent_groups, make_env
from marlnav_cli.models import TensorCritic, build_critics, build_policies, joint_actor, tensor_policy
from marlnav_cli.ppo import PPOBatch, PPOObjective, clip_ppo_loss_for
from marlnav_cli.rng import capture_rng, restore_rng
from marlnav_cli.tanh_normal import SquashedNormal

CPU = torch.device("cpu")
COLLECTED = {
    # Balance: a random policy drops the package now and then, so some envs end mid-batch and reset alone.
    "balance": TrainConfig(scenario="balance", frames_per_batch=8 * 100, max_steps=100, num_cells=16),
    "balance-discrete": TrainConfig(
        scenario="balance", frames_per_batch=8 * 100, max_steps=100, num_cells=16, discrete=True
    ),
    # Two groups (three adversaries, one agent), each with its own policy.
    "simple_tag": TrainConfig(scenario="simple_tag", n_agents=4, frames_per_batch=4 * 30, max_steps=30, num_cells=16),
    # Rewards come as [envs, 1] per agent.
    "wheel": TrainConfig(scenario="wheel", frames_per_batch=4 * 30, max_steps=30, num_cells=16),
    # Each agent's network reads the whole team's observations (--centralised-policy).
    "wheel-centralised": TrainConfig(
        scenario="wheel",
        frames_per_batch=4 * 30,
        max_steps=30,
        num_cells=16,
        share_policy=False,
        centralised_policy=True,
    ),
}
RESETS_EXPECTED = {"balance", "balance-discrete"}


def _env_and_policies(config: TrainConfig):
    torch.manual_seed(0)
    env = make_env(config, num_envs=config.num_envs, seed=0, device=CPU)
    return env, build_policies(env, config, CPU)


def _compared_keys(env) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = [("next", "done"), ("next", "terminated")]
    for group in agent_groups(env):
        keys += [
            group.key("observation"),
            group.key("action"),
            ("next", *group.key("observation")),
            ("next", *group.key("reward")),
            ("next", *group.key("episode_reward")),
        ]
    return keys


@pytest.mark.parametrize("name", list(COLLECTED))
def test_collection_equals_torchrl_collector_frame_by_frame(name: str) -> None:
    config = COLLECTED[name]
    env, policies = _env_and_policies(config)
    collector = Collector(
        env,
        joint_actor(policies),
        frames_per_batch=config.frames_per_batch,
        total_frames=config.frames_per_batch,
        reset_at_each_iter=True,
        device=CPU,
        storing_device=CPU,
        auto_register_policy_transforms=False,
    )
    start = capture_rng()  # after the Collector's own construction-time reset
    expected = next(iter(collector))
    collector.shutdown()
    if name in RESETS_EXPECTED:
        assert expected.get(("next", "done")).any(dim=1).sum() >= 2, "the batch must exercise resets"
        assert expected.get(("next", "done"))[:, :-1].any(), "and resets before the last step"

    restore_rng(start)
    groups = agent_groups(env)
    actors = {group.name: tensor_policy(policies[group.name], group) for group in groups}
    ours = ExperienceCollector(env, actors, steps=config.max_steps).collect()

    assert ours.batch_size == expected.batch_size
    for key in _compared_keys(env):
        torch.testing.assert_close(ours.get(key), expected.get(key), rtol=0, atol=0, msg=f"{key} differs")
    for group in groups:
        # Scored once per batch here, per step there (and TorchRL may score the pre-tanh draw): float noise only.
        actor = actors[group.name]
        action = actor.prepare(ours.get(group.key("action")))
        torch.testing.assert_close(
            actor.log_prob(ours.get(group.key("observation")), action),
            expected.get(group.key("action_log_prob")),
            rtol=1e-4,
            atol=1e-4,
        )


LOSS_CASES = {
    "mappo": dict(mappo=True, shared=True, discrete=False, scenario="navigation", n_agents=3),
    "ippo": dict(mappo=False, shared=True, discrete=False, scenario="navigation", n_agents=3),
    "unshared": dict(mappo=True, shared=False, discrete=False, scenario="navigation", n_agents=3),
    "discrete": dict(mappo=True, shared=True, discrete=True, scenario="navigation", n_agents=3),
    "discrete-unshared": dict(mappo=False, shared=False, discrete=True, scenario="navigation", n_agents=3),
    "two-groups": dict(mappo=True, shared=True, discrete=False, scenario="simple_tag", n_agents=4),
    "normalized-advantage": dict(
        mappo=True, shared=True, discrete=False, scenario="navigation", n_agents=3, normalize_advantage=True
    ),
    "normalized-advantage-discrete-two-groups": dict(
        mappo=False, shared=False, discrete=True, scenario="simple_tag", n_agents=4, normalize_advantage=True
    ),
}


@pytest.mark.parametrize("case", list(LOSS_CASES))
@pytest.mark.filterwarnings("ignore:You requested advantage normalization")  # over agents too, as ours
def test_ppo_loss_equals_clip_ppo_loss_terms_and_gradients(case: str) -> None:
    options = LOSS_CASES[case]
    config = TrainConfig(
        scenario=options["scenario"],
        n_agents=options["n_agents"],
        frames_per_batch=4 * 40,
        max_steps=40,
        num_cells=16,
        mappo=options["mappo"],
        entropy_coeff=0.01,
        share_policy=options["shared"],
        share_critic=options["shared"],
        discrete=options["discrete"],
        normalize_advantage=options.get("normalize_advantage", False),
    )
    env, policies = _env_and_policies(config)
    critics = build_critics(env, config, CPU)
    with torch.no_grad():
        data = env.rollout(40, policy=joint_actor(policies), break_when_any_done=False)
    for group in agent_groups(env):
        policy, critic = policies[group.name], critics[group.name]
        minibatch = data.reshape(-1)[:64]
        minibatch.set(group.key("advantage"), torch.randn(64, group.n_agents, 1))
        minibatch.set(group.key("value_target"), torch.randn(64, group.n_agents, 1))
        # Pretend the batch came from a slightly different policy, so the ratio is clipped on both sides.
        log_prob_key = group.key("action_log_prob")
        behaviour_log_prob = minibatch.get(log_prob_key) + 0.3 * torch.randn_like(minibatch.get(log_prob_key))
        minibatch.set(log_prob_key, behaviour_log_prob)
        parameters = [*policy.parameters(), *critic.parameters()]

        reference = clip_ppo_loss_for(
            policy,
            critic,
            group,
            clip_epsilon=config.clip_epsilon,
            entropy_coeff=config.entropy_coeff,
            normalize_advantage=config.normalize_advantage,
        )
        torch.manual_seed(1)
        expected = reference(minibatch)
        assert 0 < expected["clip_fraction"] < 1
        expected_total = expected["loss_objective"] + expected["loss_critic"] + expected["loss_entropy"]
        expected_grads = torch.autograd.grad(expected_total, parameters)

        actor = tensor_policy(policy, group)
        objective = PPOObjective(
            actor,
            TensorCritic(critic),
            clip_epsilon=config.clip_epsilon,
            entropy_coeff=config.entropy_coeff,
            normalize_advantage=config.normalize_advantage,
        )
        batch = PPOBatch.from_rollout(minibatch, group, actor, log_prob=behaviour_log_prob)
        torch.manual_seed(1)
        losses = objective(batch)
        grads = torch.autograd.grad(losses.total(), parameters)

        for ours, theirs in (
            (losses.objective, "loss_objective"),
            (losses.critic, "loss_critic"),
            (losses.entropy_bonus, "loss_entropy"),
            (losses.entropy, "entropy"),
        ):
            torch.testing.assert_close(ours, expected[theirs], msg=f"{group.name}: {theirs} differs")
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

    torch.testing.assert_close(
        squash.log_prob(loc, scale, squash.preimage(action)), reference.log_prob(action), rtol=1e-4, atol=1e-4
    )
    torch.manual_seed(3)
    _, expected = reference.rsample_and_log_prob()
    torch.manual_seed(3)
    ours = squash.rsample_log_prob(loc, scale)
    torch.testing.assert_close(ours, expected)
    for mine, theirs in zip(
        torch.autograd.grad(ours.sum(), (loc, scale)), torch.autograd.grad(expected.sum(), (loc, scale))
    ):
        torch.testing.assert_close(mine, theirs)
    torch.manual_seed(4)
    drawn = squash.sample(loc, scale)
    torch.manual_seed(4)
    torch.testing.assert_close(drawn, reference.sample())


def test_beta_nll_is_tanh_normal_s_likelihood_at_beta_0_and_moves_the_mean_as_squared_error_at_beta_1() -> None:
    """--imitate-beta's loss against TorchRL's TanhNormal: at 0 its gradients are the likelihood's; at 1 the
    mean's gradient is squared error's on the preimage, whatever the scale (plain likelihood divides it by
    scale^2), and the scale's is the likelihood's times scale^2."""
    torch.manual_seed(0)
    low, high = torch.tensor([-2.0, 0.5]), torch.tensor([3.0, 0.75])
    loc = torch.randn(50, 2, requires_grad=True)
    scale = (torch.rand(50, 2) * 3 + 0.1).requires_grad_()
    squash = SquashedNormal(low, high)
    reference = TanhNormal(loc, scale, low=low, high=high)
    preimage = squash.preimage(reference.sample())

    def gradients(loss: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(loss.sum(), (loc, scale))

    likelihood = gradients(-reference.log_prob(squash.centre + squash.half_range * preimage.value.tanh()))
    for mine, theirs in zip(gradients(squash.beta_nll(loc, scale, preimage, 0.0)), likelihood):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-4)
    loc_gradient, scale_gradient = gradients(squash.beta_nll(loc, scale, preimage, 1.0))
    torch.testing.assert_close(loc_gradient, loc.detach() - preimage.value)
    torch.testing.assert_close(scale_gradient, likelihood[1] * scale.detach() ** 2, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scenario", ["balance", "simple_spread"])
def test_bootstrap_time_limit_terminates_where_vmas_says_terminated(scenario: str) -> None:
    """--bootstrap-time-limit collects the same experience; only the last step's terminated changes, to
    VMAS's own terminated (its terminated_truncated split), so GAE bootstraps where the limit cut an episode."""
    config = TrainConfig(scenario=scenario, frames_per_batch=8 * 100, max_steps=100, num_cells=16)
    env, policies = _env_and_policies(config)
    actors = {group.name: tensor_policy(policies[group.name], group) for group in agent_groups(env)}
    start = capture_rng()
    plain = ExperienceCollector(env, actors, steps=config.max_steps).collect()
    restore_rng(start)
    collector = ExperienceCollector(env, actors, steps=config.max_steps, bootstrap_time_limit=True)
    cut = collector.collect()
    done = plain.get(("next", "done"))
    assert torch.equal(cut.get(("next", "done")), done) and torch.equal(plain.get(("next", "terminated")), done)
    assert torch.equal(cut.get(("next", "terminated"))[:, :-1], done[:, :-1])
    collector.simulator.terminated_truncated = True
    terminated, truncated = collector.simulator.done()
    assert torch.equal(cut.get(("next", "terminated"))[:, -1, 0], terminated)
    assert torch.equal(done[:, -1, 0], terminated | truncated)
    if scenario == "simple_spread":  # never ends: every last step is a cut, never an end
        assert not terminated.any() and truncated.all()
