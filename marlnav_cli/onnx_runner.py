"""Run a policy exported by `marlnav export CKPT policy.onnx` with onnxruntime alone.

The policy runs in numpy through onnxruntime; VMAS is only the world it drives (VMAS takes and gives
torch tensors, so they are converted at that boundary). Everything needed comes from the model's
metadata: the scenario and its settings, which VMAS agent feeds which input, and the action type.

    python -m marlnav_cli.onnx_runner policy.onnx --episodes 200    # or this file, copied anywhere

It reports what `marlnav evaluate` reports for the policy, measured the same way: one env per episode,
VMAS without its step limit, the first episode of each env, `max_steps` steps at most.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnxruntime
import torch
import vmas

EVAL_SEED_OFFSET = 1_000_000  # marlnav evaluate's default: the training seed + 1,000,000
# VMAS's done in these asks every env's joint to be on its goal (marlnav_cli/vmas_mends.py mends it per env;
# this file stays free of marlnav): with many episodes at once their early ends say nothing, so none is given.
DONE_MIXES_ENVS = {"joint_passage", "joint_passage_size"}


# VMAS's reset draws one permutation for the whole batch in these (marlnav_cli/scenarios.py's
# SHARED_RESET_DRAWS): every env but the first is reset again alone, as marlnav evaluate does.
SHARED_RESET_DRAWS = {
    "passage",
    "joint_passage",
    "ball_passage",
    "football",
    "ball_trajectory",
    "wind_flocking",
    "asym_joint",
}


# Arguments marlnav adds to VMAS's scenarios (marlnav_cli/scenario_arguments.py): VMAS alone takes none of
# them, so they are left out here, and the reward reported is then VMAS's own (the output names them).
MARLNAV_ARGUMENTS = {"passage": {"collision_reward"}}


def reported_end(scenario: str, episode_end: str) -> str:
    """What an early end means here: marlnav's meaning, or "unknown" where VMAS's done mixes up envs."""
    return "unknown" if scenario in DONE_MIXES_ENVS else episode_end


def run_episodes(model_path: str, episodes: int, seed: int | None = None) -> dict:
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    config, layout = json.loads(metadata["config"]), json.loads(metadata["layout"])
    seed = config["seed"] + EVAL_SEED_OFFSET if seed is None else seed
    torch.manual_seed(seed)
    left_out = sorted(MARLNAV_ARGUMENTS.get(config["scenario"], set()) & set(config["scenario_args"]))
    vmas_arguments = {name: value for name, value in config["scenario_args"].items() if name not in left_out}
    env = vmas.make_env(
        config["scenario"],
        num_envs=episodes,
        device="cpu",
        seed=seed,
        continuous_actions=metadata["action_type"] == "continuous",
        max_steps=None,
        n_agents=config["n_agents"],
        **vmas_arguments,
    )
    observations = env.reset()
    if config["scenario"] in SHARED_RESET_DRAWS:
        for index in range(1, episodes):
            observations = env.reset_at(index)
    ended = np.zeros(episodes, dtype=bool)
    length = np.full(episodes, config["max_steps"])
    reward = np.zeros(episodes)
    for step in range(config["max_steps"]):
        feeds = {
            group["input"]: np.stack([observations[i].numpy() for i in group["agent_indices"]], axis=1)
            for group in layout.values()
        }
        outputs = dict(
            zip(
                [group["output"] for group in layout.values()],
                session.run([group["output"] for group in layout.values()], feeds),
            )
        )
        actions = [None] * env.n_agents
        for group in layout.values():
            for column, index in enumerate(group["agent_indices"]):
                actions[index] = torch.from_numpy(np.ascontiguousarray(outputs[group["output"]][:, column]))
        observations, rewards, done, _ = env.step(actions)
        running = ~ended
        reward[running] += np.mean([r.reshape(episodes).numpy() for r in rewards], axis=0)[running]
        done = done.reshape(episodes).numpy()
        length[done & running] = step + 1
        ended |= done
    ended_rate = float(ended.mean())
    episode_end = reported_end(config["scenario"], metadata["episode_end"])
    return {
        "episodes": episodes,
        "seed": seed,
        "episode_end": episode_end,
        # an early end is success only where the scenario says so (marlnav's scenario table)
        "success_rate": ended_rate if episode_end == "success" else None,
        "ended_early_rate": ended_rate if episode_end not in ("never", "unknown") else None,
        "mean_length": float(length.mean()),
        "mean_reward": float(reward.mean()),
        **({"vmas_reward_without": left_out} if left_out else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an ONNX model written by marlnav export")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="default: the training seed + 1,000,000")
    arguments = parser.parse_args()
    print(json.dumps(run_episodes(arguments.model, arguments.episodes, arguments.seed), indent=2))


if __name__ == "__main__":
    main()
