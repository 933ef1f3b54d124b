"""--imitate-heuristic: the policy learns VMAS's controller's actions and the critic its value (TorchRL's
GAE targets on the controller's episodes) before PPO, in whole batches, recorded in the run folder."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from torchrl.objectives.value import GAE

from marlnav_cli.collect import ExperienceCollector
from marlnav_cli.config import TrainConfig
from marlnav_cli.envs import AgentGroup, agent_groups, make_env
from marlnav_cli.heuristics import HeuristicActor, SquareApproach, heuristic_to_imitate
from marlnav_cli.imitation import Acting, imitate_heuristic
from marlnav_cli.models import TensorCritic, TensorPolicy, build_critics, build_policies, tensor_policy
from marlnav_cli.ppo import flat_frames
from marlnav_cli.train import _advantage_module, _expand_done_to_agents
from tests.conftest import TINY_TRAIN

CPU = torch.device("cpu")
WHEEL = TrainConfig(
    scenario="wheel",
    n_agents=4,
    frames_per_batch=400,
    max_steps=25,
    num_epochs=8,
    minibatch_size=100,
    num_cells=32,
    lr=3e-3,
    gamma=0.9,
    imitate_heuristic=2000,
)


@dataclass
class Copying:
    """What `imitate_heuristic` works on, for wheel: a fresh policy and critic beside the heuristic."""

    config: TrainConfig
    group: AgentGroup
    parameters: list[torch.nn.Parameter]  # the policy's and the critic's
    actor: TensorPolicy
    critic: TensorCritic
    gae: GAE
    heuristic: HeuristicActor
    collector_for: Callable[[HeuristicActor | TensorPolicy], ExperienceCollector]

    @classmethod
    def of(cls, config: TrainConfig) -> Copying:
        torch.manual_seed(0)
        env = make_env(config, num_envs=config.num_envs, seed=0, device=CPU)
        group = agent_groups(env)[0]
        policy, critic = build_policies(env, config, CPU)[group.name], build_critics(env, config, CPU)[group.name]
        return cls(
            config,
            group,
            [*policy.parameters(), *critic.parameters()],
            tensor_policy(policy, group),
            TensorCritic(critic),
            _advantage_module(config, group, critic),
            heuristic_to_imitate(config),
            lambda actor: ExperienceCollector(env, {group.name: actor}, steps=config.max_steps),
        )

    def imitate(self, on_batch: Callable[[dict[str, float]], None] | None = None) -> list[dict[str, float]]:
        return imitate_heuristic(
            self.config,
            self.heuristic,
            self.collector_for,
            self.group,
            self.actor,  # type: ignore[arg-type]  # wheel's actions are continuous
            self.critic,
            self.gae,
            self.parameters,
            lambda data: _expand_done_to_agents(data, self.group),
            on_batch=on_batch,
        )


def test_the_policy_copies_the_heuristic_and_the_critic_learns_its_gae_targets() -> None:
    copying = Copying.of(WHEEL)
    group, actor, critic, gae = copying.group, copying.actor, copying.critic, copying.gae
    held_out = copying.collector_for(copying.heuristic).collect()  # a batch the fit never sees
    _expand_done_to_agents(held_out, group)

    def errors() -> tuple[float, float]:
        """The policy's most likely action against the heuristic's, and the critic against GAE's targets."""
        with torch.no_grad():
            observation, action = held_out.get(group.key("observation")), held_out.get(group.key("action"))
            loc, _ = actor.network(observation)
            gae(held_out)
            value_error = torch.nn.functional.smooth_l1_loss(
                critic(observation), held_out.get(group.key("value_target"))
            )
            return torch.nn.functional.mse_loss(actor.squash.mode(loc), action).item(), value_error.item()

    action_before, value_before = errors()
    seen: list[dict[str, float]] = []
    rows = copying.imitate(on_batch=seen.append)
    action_after, value_after = errors()
    assert len(rows) == math.ceil(WHEEL.imitate_heuristic / WHEEL.frames_per_batch) and seen == rows
    assert [row["frames"] for row in rows] == [400, 800, 1200, 1600, 2000]
    assert action_after < 0.3 * action_before, (action_before, action_after)
    assert value_after < 0.5 * value_before, (value_before, value_after)
    assert rows[-1]["reward_mean"] < 0  # wheel pays a penalty every step, the heuristic's too
    assert not any(row["policy_acting"] for row in rows)


def _own_state_error_after_copying(frames: int, dagger: bool) -> tuple[float, list[dict[str, float]]]:
    """Copy wheel's heuristic over `frames`, then score the policy on its own rollouts: its most likely action
    against the heuristic's at the states it reached."""
    copying = Copying.of(dataclasses.replace(WHEEL, imitate_heuristic=frames, dagger=dagger))
    rows = copying.imitate()
    with torch.no_grad():
        rollout = copying.collector_for(copying.actor).collect()
        observation = flat_frames(rollout, rollout.get(copying.group.key("observation")))
        loc, _ = copying.actor.network(observation)
        labels = copying.heuristic.sample(observation)
        return torch.nn.functional.mse_loss(copying.actor.squash.mode(loc), labels).item(), rows


def test_dagger_teaches_the_heuristic_s_action_at_the_states_the_policy_itself_reaches() -> None:
    """After the first batch the policy acts and each state it reaches is labelled with the heuristic's
    action there: the later batches keep closing the gap on the policy's own rollouts (labelled with the
    policy's own actions instead, they would leave it where the first batch did: 0.13 against 0.09)."""
    after_first_batch, _ = _own_state_error_after_copying(WHEEL.frames_per_batch, dagger=False)
    after_dagger, rows = _own_state_error_after_copying(5 * WHEEL.frames_per_batch, dagger=True)
    assert [row["policy_acting"] for row in rows] == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert after_dagger < 0.3 * after_first_batch, (after_first_batch, after_dagger)


def _watch_batches(copying: Copying, watch: Callable[[TensorDict], None]) -> None:
    """Have `watch` see each batch the copy collects, as soon as it is collected (before it is fitted on)."""
    collector_for = copying.collector_for

    def watched_collector(actor: Acting) -> ExperienceCollector:
        collector = collector_for(actor)
        collect = collector.collect

        def collect_and_watch() -> TensorDict:
            data = collect()
            watch(data)
            return data

        collector.collect = collect_and_watch  # type: ignore[method-assign]
        return collector

    copying.collector_for = watched_collector


def _states_fitted_in_each_batch(aggregate: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Copy wheel's heuristic over 3 DAgger batches: each batch's collected states, and the states the copy
    was fitted on after it (the policy network's inputs while gradients are on), one row per frame."""
    config = dataclasses.replace(WHEEL, imitate_heuristic=3 * WHEEL.frames_per_batch, dagger=True)
    copying = Copying.of(dataclasses.replace(config, dagger_aggregate=aggregate))
    collected: list[torch.Tensor] = []
    fitted: list[list[torch.Tensor]] = []
    network = copying.actor.network

    def recording_network(observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.is_grad_enabled():  # fitting; the collector runs the policy in inference mode
            fitted[-1].append(observation.flatten(-2).detach())
        return network(observation)

    def record(data: TensorDict) -> None:
        collected.append(flat_frames(data, data.get(copying.group.key("observation"))).flatten(-2))
        fitted.append([])

    copying.actor.network = recording_network  # type: ignore[union-attr,assignment]
    _watch_batches(copying, record)
    copying.imitate()
    return collected, [torch.cat(rows) for rows in fitted]


def _share_from(states: torch.Tensor, batch: torch.Tensor) -> float:
    return (states[:, None, :] == batch[None, :, :]).all(-1).any(-1).float().mean().item()


def test_dagger_aggregate_fits_every_batch_labelled_so_far_and_plain_dagger_the_latest_alone() -> None:
    """DAgger as Ross et al. wrote it fits the union of its batches: after the third, about a third of what
    the copy is fitted on comes from each batch, where plain --dagger fits the third batch alone. The number
    of minibatches stays a batch's, so aggregating costs no fitting time."""
    collected, fitted = _states_fitted_in_each_batch(aggregate=True)
    assert len(collected) == len(fitted) == 3
    assert _share_from(fitted[0], collected[0]) == 1.0  # the first batch is the heuristic's, alone either way
    shares = [_share_from(fitted[2], batch) for batch in collected]
    assert all(0.2 < share < 0.47 for share in shares) and sum(shares) > 0.99, shares
    assert len(fitted[2]) == len(fitted[0])
    collected, fitted = _states_fitted_in_each_batch(aggregate=False)
    assert [_share_from(fitted[2], batch) for batch in collected] == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("most_likely", [True, False])
def test_dagger_most_likely_runs_the_copy_by_its_most_likely_action_and_plain_dagger_samples(most_likely: bool) -> None:
    config = dataclasses.replace(WHEEL, imitate_heuristic=2 * WHEEL.frames_per_batch, dagger=True)
    copying = Copying.of(dataclasses.replace(config, dagger_most_likely=most_likely))
    acted_most_likely: list[bool] = []

    def check(data: TensorDict) -> None:
        with torch.no_grad():  # the copy as it was when it acted: it is fitted after this
            loc, _ = copying.actor.network(data.get(copying.group.key("observation")))
        most_likely_action = copying.actor.squash.mode(loc)  # type: ignore[union-attr]
        acted_most_likely.append(torch.allclose(most_likely_action, data.get(copying.group.key("action"))))

    _watch_batches(copying, check)
    copying.imitate()
    assert acted_most_likely == [False, most_likely]  # the first batch is the heuristic's own


@pytest.mark.parametrize("anneal", [True, False])
def test_imitate_anneal_lr_lowers_the_copys_lr_linearly_to_nothing_and_without_it_the_lr_stays(
    anneal: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--imitate-anneal-lr: every one of the copy's steps is taken at imitate_lr times the share of its steps
    still to come, the last at 1/steps of it; without it every step at imitate_lr."""
    config = dataclasses.replace(WHEEL, imitate_heuristic=2 * WHEEL.frames_per_batch, imitate_lr=0.004)
    stepped_at: list[float] = []
    step = torch.optim.Adam.step

    def recording_step(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        stepped_at.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    Copying.of(dataclasses.replace(config, imitate_anneal_lr=anneal)).imitate()
    steps = 2 * config.num_epochs * config.minibatches_per_epoch
    assert len(stepped_at) == steps
    expected = [0.004 * (steps - taken) / steps if anneal else 0.004 for taken in range(steps)]
    assert stepped_at == pytest.approx(expected, rel=1e-6)


def test_the_copy_learns_at_imitate_lr_and_at_lr_without_it() -> None:
    """--imitate-lr is the copy's own: a run whose PPO --lr would learn nothing copies as one at the copy's.
    --imitate-beta changes how the copy is fitted, not whether it learns."""
    copying_at = {
        name: Copying.of(dataclasses.replace(WHEEL, imitate_heuristic=800, **settings)).imitate()
        for name, settings in {
            "lr": {},
            "imitate_lr": {"lr": 1e-12, "imitate_lr": WHEEL.lr},
            "neither": {"lr": 1e-12},
            "beta": {"imitate_beta": 1.0},
        }.items()
    }
    assert copying_at["imitate_lr"] == copying_at["lr"]
    assert copying_at["neither"][-1]["action_mse"] > 2 * copying_at["lr"][-1]["action_mse"]
    # --imitate-beta weights the likelihood (tests/test_equivalence.py): another fit, which copies as well
    assert copying_at["beta"] != copying_at["lr"]
    assert copying_at["neither"][-1]["action_mse"] > 2 * copying_at["beta"][-1]["action_mse"]


def test_a_run_records_its_imitation_and_a_scenario_without_a_heuristic_is_refused_first(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = cli("train", *TINY_TRAIN, "--scenario", "wheel", "--imitate-heuristic", "150", "--out", run)
    assert result.exit_code == 0, result.stderr
    lines = (run / "imitation.csv").read_text().splitlines()
    assert lines[0].startswith("batch,frames,policy_acting,reward_mean") and len(lines) == 3  # 150 frames: 2 batches
    assert "imitate_heuristic = 150" in (run / "config.toml").read_text()

    refused = tmp_path / "refused"
    result = cli("train", *TINY_TRAIN, "--scenario", "sampling", "--imitate-heuristic", "100", "--out", refused)
    assert result.exit_code == 2 and "VMAS ships no heuristic for sampling" in result.stderr
    assert not refused.exists()


# Where transport's package starts off its goal in the square-approach test: diagonally, 0.3 to 0.39 away.
DIAGONAL_OFFSETS = ((0.3, 0.25), (-0.3, 0.2), (0.2, -0.3), (-0.25, -0.3))


def _transport_reward_until_touch(policy: object) -> torch.Tensor:
    """VMAS's transport reward summed until the package first touches its goal, in 4 envs whose package sits
    DIAGONAL_OFFSETS off its goal with the agents behind it."""
    import vmas

    offset = torch.tensor(DIAGONAL_OFFSETS)
    env = vmas.make_env("transport", num_envs=4, n_agents=4, seed=3, continuous_actions=True)
    env.reset()
    package = env.scenario.packages[0]
    package.set_pos(package.goal.state.pos + offset, batch_index=None)
    generator = torch.Generator().manual_seed(0)
    for agent in env.agents:
        behind = package.state.pos - 0.15 * offset / offset.norm(dim=-1, keepdim=True)
        agent.set_pos(behind + 0.03 * torch.randn(4, 2, generator=generator), batch_index=None)
    package.global_shaping = (package.state.pos - package.goal.state.pos).norm(dim=-1) * env.scenario.shaping_factor
    observations = [env.scenario.observation(agent) for agent in env.agents]
    total, moving = torch.zeros(4), torch.ones(4, dtype=torch.bool)
    for _ in range(600):
        actions = [policy.compute_action(o, u_range=a.u_range) for o, a in zip(observations, env.agents)]  # type: ignore[attr-defined]
        observations, rewards, dones, _ = env.step(actions)
        total += rewards[0] * moving
        moving &= ~dones
        if not moving.any():
            return total
    late = moving.nonzero().flatten().tolist()
    raise AssertionError(f"the package did not reach its goal in 600 steps in envs {late}")


def test_imitate_square_approach_brings_transport_s_package_on_face_first_and_keeps_the_reward_vmas_pays(
    cli, tmp_path: Path
) -> None:
    """--imitate-square-approach: VMAS's transport heuristic steered so the package comes onto its goal along
    an axis. VMAS's own reward, summed until the package touches the goal, is the progress up to the touch:
    the bound is 100 x (start distance - 0.225, the face-on touch). Straight from a diagonal, VMAS's heuristic
    touches corner first, over 2 below the bound; steered, it keeps more on every env (0.45-0.77 here, where
    the package starts too near its goal to come fully in line). In line with its goal the package is pushed
    exactly as VMAS's heuristic pushes it; other scenarios are refused."""
    from vmas.scenarios.transport import HeuristicPolicy

    bound = 100 * (torch.tensor(DIAGONAL_OFFSETS).norm(dim=-1) - 0.225)
    direct = _transport_reward_until_touch(HeuristicPolicy(continuous_action=True))
    square = _transport_reward_until_touch(SquareApproach(HeuristicPolicy(continuous_action=True)))
    assert (direct < bound - 2).all() and (square > direct + 0.3).all() and (square < bound).all(), (square, direct)

    config = TrainConfig(scenario="transport", n_agents=4, imitate_heuristic=100, imitate_square_approach=True)
    actor = heuristic_to_imitate(config)
    assert isinstance(actor.policy, SquareApproach)
    in_line = [[0.1, -0.2, 0.0, 0.0, 0.5, 0.0, 0.12, 0.01], [0.3, 0.4, 0.1, 0.0, 0.0, -0.6, 0.0, -0.1]]
    observation = torch.tensor(in_line)
    vmas_own = HeuristicPolicy(continuous_action=True)
    assert torch.equal(actor.policy.compute_action(observation, 1.0), vmas_own.compute_action(observation, 1.0))
    observation[:, 5] = 0.3  # now 0.3 off the axis: no longer in line
    assert not torch.equal(actor.policy.compute_action(observation, 1.0), vmas_own.compute_action(observation, 1.0))

    refused = tmp_path / "refused"
    args = ("train", *TINY_TRAIN, "--scenario", "wheel", "--imitate-heuristic", "100", "--imitate-square-approach")
    result = cli(*args, "--out", refused)
    assert result.exit_code == 2 and "steers transport's heuristic, not wheel's" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not refused.exists()


def test_imitate_speed_sets_vmas_transport_heuristic_s_speed_and_is_refused_where_a_heuristic_has_none(
    cli, tmp_path: Path
) -> None:
    """--imitate-speed 1.2: the copied actions are VMAS's transport heuristic's at speed 1.2 (VMAS's own
    is 0.95), the same object VMAS computes them with; a heuristic without a speed is refused before any
    run folder exists."""
    from vmas.scenarios.transport import HeuristicPolicy

    config = TrainConfig(scenario="transport", n_agents=4, imitate_heuristic=100, imitate_speed=1.2)
    actor = heuristic_to_imitate(config)
    env = make_env(config, num_envs=8, seed=1, device=CPU)
    observation = env.reset()["agents", "observation"]
    env.close()
    faster = HeuristicPolicy(continuous_action=True)
    faster.speed = 1.2
    expected = torch.stack(
        [faster.compute_action(observation[:, i], u_range=u) for i, u in enumerate(actor.u_ranges)], 1
    )
    assert torch.equal(actor.sample(observation), expected)
    own = heuristic_to_imitate(dataclasses.replace(config, imitate_speed=0.0)).sample(observation)
    assert not torch.equal(own, expected) and own.abs().max() <= 0.95 * max(actor.u_ranges)

    refused = tmp_path / "refused"
    args = ("train", *TINY_TRAIN, "--scenario", "wheel", "--imitate-heuristic", "100", "--imitate-speed", "1.2")
    result = cli(*args, "--out", refused)
    assert result.exit_code == 2 and "wheel's heuristic has no speed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not refused.exists()
    assert cli(*args[:-1], "-1", "--out", refused).exit_code == 2 and not refused.exists()
