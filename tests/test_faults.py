"""Reliability under tampered checkpoints, failed writes, signals and concurrent runs: every fault is one
line and exit 2 (or the signal's code), nothing is lost, no partial file sits under a final name."""

from __future__ import annotations

import errno
import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from marlnav_cli.checkpoint import read_checkpoint
from marlnav_cli.errors import ConfigError
from tests.conftest import TINY_TRAIN, start_long_training

MARLNAV = [sys.executable, "-c", "from marlnav_cli.cli import main; main()"]


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), "pt") as reader:
        tensors = {name: reader.get_tensor(name) for name in reader.keys()}  # noqa: SIM118 - not a dict
        return tensors, dict(reader.metadata())


def _tampered(source: Path, target: Path, *, tensors=None, metadata=None, without: str | None = None) -> Path:
    original_tensors, original_metadata = _load(source)
    kept = {
        name: tensor for name, tensor in original_tensors.items() if without is None or not name.startswith(without)
    }
    save_file({**kept, **(tensors or {})}, str(target), metadata={**original_metadata, **(metadata or {})})
    return target


def _config_with(source: Path, **changes) -> str:
    config = json.loads(_load(source)[1]["config"])
    config.update(changes)
    return json.dumps(config)


def _history_without(source: Path, key: str) -> str:
    """The history with `key` renamed in the evaluated records (one flipped byte in the header does that)."""
    history = json.loads(_load(source)[1]["history"])
    assert any(row.get("eval_s") is not None for row in history)
    return json.dumps(
        [{(k + "x" if k == key and row.get("eval_s") is not None else k): v for k, v in row.items()} for row in history]
    )


def _first(tensors: dict[str, torch.Tensor], prefix: str) -> str:
    return next(name for name in sorted(tensors) if name.startswith(prefix) and tensors[name].dim() > 0)


def _one_line_refusal(result, message: str, *, during_run: bool = False) -> None:
    """Exit 2 and one `error:` line; a fault in the middle of a run may follow its `run folder:` line."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    if during_run and len(lines) == 2 and lines[0].startswith("run folder: "):
        lines = lines[1:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def _crafted(checkpoint: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    tensors, _ = _load(checkpoint)
    weight, moment = _first(tensors, "policy."), _first(tensors, "optimizer.")
    cases = {
        "nan-weights": ({weight: torch.full_like(tensors[weight], float("nan"))}, None, "NaN or infinite"),
        "float64-weights": ({weight: tensors[weight].double()}, None, "is float64, not float32"),
        "int32-weights": ({weight: tensors[weight].int()}, None, "is int32, not float32"),
        "rng-wrong-length": ({"rng.torch": tensors["rng.torch"][:100]}, None, "not a random-number state"),
        "rng-wrong-dtype": (
            {"rng.vmas.numpy.keys": tensors["rng.vmas.numpy.keys"].float()},
            None,
            "not a random-number state",
        ),
        "rng-refused": (
            {"rng.vmas.python.state": torch.cat([tensors["rng.vmas.python.state"][:-1], torch.tensor([10_000])])},
            None,
            "generators refuse",
        ),
        "optimizer-wrong-shape": ({moment: torch.zeros(tensors[moment].numel() * 4)}, None, "has shape"),
        "optimizer-nan": ({moment: torch.full_like(tensors[moment], float("nan"))}, None, "NaN or infinite"),
        "optimizer-bad-name": ({"optimizer.first.exp_avg": torch.zeros(3)}, None, "no complete optimizer state"),
        "summary-list": (None, {"summary": "[1, 2]"}, "invalid summary"),
        "summary-null": (None, {"summary": "null"}, "invalid summary"),
        "history-not-records": (None, {"history": '[{"frames": 100}]'}, "invalid history"),
        "history-object": (None, {"history": '{"a": 1}'}, "invalid history"),
        "history-partial-evaluation": (
            None,
            {"history": _history_without(checkpoint, "eval_success_rate")},
            "has an evaluation without its figures",
        ),
        "negative-version": (None, {"format_version": "-3"}, "invalid format version"),
        "huge-lr": (None, {"config": _config_with(checkpoint, lr=10**400)}, "too large"),
        "huge-net": (None, {"config": _config_with(checkpoint, num_cells=10**9)}, "GiB"),
        "huge-frames": (None, {"config": _config_with(checkpoint, total_frames=10**400)}, "--frames must be"),
        "missing-key": (
            None,
            {"config": json.dumps({k: v for k, v in json.loads(_load(checkpoint)[1]["config"]).items() if k != "lr"})},
            "config lacks keys: lr",
        ),
    }
    return {
        name: (_tampered(checkpoint, tmp_path / f"{name}.safetensors", tensors=t, metadata=m), message)
        for name, (t, m, message) in cases.items()
    }


def test_tampered_checkpoints_are_refused_whole_before_use(cli, checkpoint: Path, tmp_path: Path) -> None:
    """Each part checked, whether the policy is only evaluated or training resumes from it all."""
    policy_only_faults = {
        "nan-weights",
        "float64-weights",
        "int32-weights",
        "summary-list",
        "summary-null",
        "history-not-records",
        "history-object",
        "negative-version",
        "huge-lr",
        "huge-net",
        "huge-frames",
        "missing-key",
    }
    for name, (path, message) in _crafted(checkpoint, tmp_path).items():
        if name in policy_only_faults:
            _one_line_refusal(cli("evaluate", path, "--episodes", "2", "--device", "cpu"), message)
        before = path.read_bytes()
        _one_line_refusal(cli("train", "--resume", path, "--frames", "400", "--device", "cpu", "--quiet"), message)
        assert path.read_bytes() == before


def _summary_with(source: Path, **changes) -> str:
    summary = json.loads(_load(source)[1]["summary"])
    summary.update(changes)
    return json.dumps(summary)


def _training_part_damage(checkpoint: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Files whose policy is sound but whose training part (critic, Adam, RNG, records) is not."""
    tensors, _ = _load(checkpoint)
    moment = _first(tensors, "optimizer.")
    second_moment = next(name for name in sorted(tensors) if name.endswith(".exp_avg_sq"))
    step = next(name for name in sorted(tensors) if name.startswith("optimizer.") and name.endswith(".step"))
    cases = {
        "critic-missing": (None, None, "critic.", "critic weights don't fit"),
        "optimizer-nan": ({moment: torch.full_like(tensors[moment], float("nan"))}, None, None, "NaN or infinite"),
        "adam-negative": ({second_moment: -torch.ones_like(tensors[second_moment])}, None, None, "negative values"),
        "adam-absurd-steps": ({step: torch.full_like(tensors[step], 1e9)}, None, None, "counts [1000000000.0] steps"),
        "rng-wrong-length": ({"rng.torch": tensors["rng.torch"][:100]}, None, None, "not a random-number state"),
        "rng-wrong-keys": ({"rng.vmas.numpy.keys": tensors["rng.vmas.numpy.keys"].float()}, None, None, "random"),
        "summary-frames": (None, {"summary": _summary_with(checkpoint, frames=123)}, None, "summary says frames 123"),
        "summary-iterations": (None, {"summary": _summary_with(checkpoint, iterations=7)}, None, "iterations 7"),
    }
    return {
        name: (_tampered(checkpoint, tmp_path / f"{name}.safetensors", tensors=t, metadata=m, without=w), message)
        for name, (t, m, w, message) in cases.items()
    }


def _one_warning(result, message: str) -> None:
    """Exit 0 and exactly one `warning:` line, naming the damage and that the file cannot be resumed."""
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and message in warnings[0] and "cannot be resumed" in warnings[0], result.stderr


def test_a_damaged_training_part_is_named_by_every_reading_command(cli, checkpoint: Path, tmp_path: Path) -> None:
    """The policy still evaluates, renders, exports and transfers, each with one warning line; resume refuses."""
    for name, (path, message) in _training_part_damage(checkpoint, tmp_path).items():
        _one_warning(cli("evaluate", path, "--episodes", "2", "--device", "cpu"), message)
        _one_warning(cli("render", path, tmp_path / f"{name}.gif", "--device", "cpu"), message)
        _one_warning(cli("export", path, tmp_path / f"{name}-policy.safetensors"), message)
        _one_warning(cli("transfer", path, "--agents", "2,3", "--episodes", "2", "--out", tmp_path / "t.png"), message)
        _one_refusal = cli("train", "--resume", path, "--frames", "400", "--device", "cpu", "--quiet")
        _one_line_refusal(_one_refusal, message)
        exported = cli("evaluate", tmp_path / f"{name}-policy.safetensors", "--episodes", "2", "--device", "cpu")
        assert exported.exit_code == 0 and "warning" not in exported.stderr  # nothing in a policy-only file is damaged
    sound = cli("evaluate", checkpoint, "--episodes", "2", "--device", "cpu")
    assert sound.exit_code == 0 and "warning" not in sound.stderr


def test_disk_full_during_training_keeps_the_last_good_checkpoint(cli, tmp_path: Path, monkeypatch) -> None:
    import marlnav_cli.checkpoint as checkpoint_module

    run = tmp_path / "run"
    assert cli("train", *TINY_TRAIN, "--constant-lr", "--out", run).exit_code == 0
    kept = (run / "policy.safetensors").read_bytes()
    metrics = (run / "metrics.jsonl").read_text()
    real_save = checkpoint_module.save_file

    def disk_full(tensors, path, metadata=None):
        real_save(tensors, path, metadata=metadata)  # a partial file sits under the temporary name...
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "save_file", disk_full)
    result = cli("train", "--resume", run / "policy.safetensors", "--frames", "400", "--device", "cpu", "--quiet")
    _one_line_refusal(result, "No space left on device", during_run=True)
    assert (run / "policy.safetensors").read_bytes() == kept  # ...and the last good checkpoint is intact
    assert (run / "metrics.jsonl").read_text() == metrics  # the metrics did not run ahead of it
    assert not list(run.glob(".*"))  # nor is any temporary file left


@pytest.mark.parametrize("command", ["render", "export", "compare"])
def test_disk_full_on_other_outputs_is_one_line(
    cli, checkpoint: Path, tmp_path: Path, monkeypatch, command: str
) -> None:
    import marlnav_cli.files as files

    real_replace = files.os.replace

    def disk_full(source, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", disk_full)
    args = {
        "render": ["render", checkpoint, tmp_path / "out.gif", "--device", "cpu"],
        "export": ["export", checkpoint, tmp_path / "small.safetensors"],
        "compare": ["compare", checkpoint.parent, "--out", tmp_path / "out.png"],
    }[command]
    _one_line_refusal(cli(*args), "No space left on device")
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_stops_like_ctrl_c_and_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    metrics = run / "metrics.jsonl"
    process = start_long_training(run)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    checkpoint = read_checkpoint(run / "policy.safetensors")
    assert checkpoint.summary["complete"] is False and checkpoint.summary["iterations"] >= 2
    assert len(metrics.read_text().splitlines()) == checkpoint.summary["iterations"]


def test_a_run_folder_belongs_to_one_run(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = start_long_training(run, iterations=1)
    second = subprocess.run(
        [*MARLNAV, "train", *TINY_TRAIN, "--seed", "9", "--out", str(run)], capture_output=True, text=True, timeout=120
    )
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert second.returncode == 2 and "another marlnav process is writing into" in second.stderr
    assert read_checkpoint(run / "policy.safetensors").config.seed == 0  # the first run's, untouched

    again = cli("train", *TINY_TRAIN, "--seed", "9", "--out", run)
    _one_line_refusal(again, "already holds a run")
    replaced = cli("train", *TINY_TRAIN, "--seed", "9", "--out", run, "--overwrite")
    assert replaced.exit_code == 0 and read_checkpoint(run / "policy.safetensors").config.seed == 9


def test_stale_temporary_files_are_cleaned_at_the_next_write(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert cli("train", *TINY_TRAIN, "--constant-lr", "--out", run).exit_code == 0
    stale = run / ".policy.safetensors.k1ll3d.safetensors"
    stale.write_bytes(b"\0" * 1000)  # what a kill -9 during a save leaves
    result = cli("train", "--resume", run / "policy.safetensors", "--frames", "300", "--device", "cpu", "--quiet")
    assert result.exit_code == 0 and not stale.exists()


def test_a_failed_train_leaves_no_run_folder(cli, tmp_path: Path, monkeypatch) -> None:
    import marlnav_cli.experiment as experiment

    def refuse(*args, **kwargs):
        raise ConfigError("refused after the folder was made")

    monkeypatch.setattr(experiment, "train", refuse)
    _one_line_refusal(
        cli("train", *TINY_TRAIN, "--out", tmp_path / "run"), "refused after the folder was made", during_run=True
    )
    assert not (tmp_path / "run").exists()


def test_compare_refuses_broken_run_folders(cli, trained_run: Path, tmp_path: Path) -> None:
    cases = {
        "binary": b"\xff\xfe\x00garbage",
        "missing-keys": b'{"frames": 100}\n',
        "list": b"[1, 2, 3]\n",
        "strings": b'{"frames": "many", "reward_mean": "good", "wall_s": "soon"}\n',
        "nan": b'{"frames": 100, "reward_mean": NaN, "wall_s": 1.0}\n',
    }
    for name, content in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.toml").write_text((trained_run / "config.toml").read_text())
        (folder / "metrics.jsonl").write_bytes(content)
        result = cli("compare", trained_run, folder, "--out", tmp_path / "out.png")
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
    assert not (tmp_path / "out.png").exists()


MUTATIONS = 60


def _mutations(path: Path, rng: random.Random):
    """Random faults in a real checkpoint: header bytes, tensor values and dtypes, metadata values."""
    tensors, metadata = _load(path)
    data = path.read_bytes()
    header_length = int.from_bytes(data[:8], "little")
    for _ in range(MUTATIONS):
        kind = rng.choice(["header-byte", "body-byte", "value", "dtype", "metadata", "drop"])
        changed_tensors, changed_metadata = dict(tensors), dict(metadata)
        if kind in ("header-byte", "body-byte"):
            raw = bytearray(data)
            low, high = (8, 8 + header_length) if kind == "header-byte" else (8 + header_length, len(data))
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(low, high)] = rng.randrange(256)
            yield kind, bytes(raw)
            continue
        name = rng.choice(sorted(tensors))
        if kind == "value":
            tensor = changed_tensors[name].clone()
            if tensor.numel() and tensor.is_floating_point():
                tensor.view(-1)[rng.randrange(tensor.numel())] = rng.choice([float("nan"), float("inf"), 1e30, -7.0])
            changed_tensors[name] = tensor
        elif kind == "dtype":
            changed_tensors[name] = changed_tensors[name].to(
                rng.choice([torch.float16, torch.float64, torch.int32, torch.bool, torch.uint8])
            )
        elif kind == "drop":
            del changed_tensors[name]
        else:
            key = rng.choice(sorted(metadata))
            changed_metadata[key] = rng.choice(
                ['"text"', "null", "[]", "{}", "-1", "1e400", "NaN", "{broken", json.dumps(rng.random())]
            )
        target = path.with_name("mutated.safetensors")
        save_file(changed_tensors, str(target), metadata=changed_metadata)
        yield kind, target.read_bytes()


def test_random_mutations_of_a_checkpoint_never_give_a_traceback(cli, checkpoint: Path, tmp_path: Path) -> None:
    """Every time, through every command that reads a checkpoint: exit 0 with a valid report (and at most
    one warning line), or exit 2 with one line. A traceback fails the test. evaluate and resume read every
    mutation; render, export and transfer every fourth (seconds each)."""
    source = tmp_path / "source.safetensors"
    source.write_bytes(checkpoint.read_bytes())
    mutated = tmp_path / "case.safetensors"
    outcomes = {0: 0, 2: 0}
    for number, (kind, content) in enumerate(_mutations(source, random.Random(20261127))):
        mutated.write_bytes(content)
        readers = [
            ["evaluate", mutated, "--episodes", "2", "--device", "cpu", "--json"],
            ["train", "--resume", mutated, "--device", "cpu", "--quiet", "--json"],
        ]
        if number % 4 == 0:
            readers += [
                ["render", mutated, tmp_path / "case.gif", "--device", "cpu", "--json"],
                ["export", mutated, tmp_path / "case-policy.safetensors", "--json"],
                ["transfer", mutated, "--agents", "2", "--episodes", "2", "--out", tmp_path / "t.png", "--json"],
            ]
        for args in readers:
            result = cli(*args)
            assert result.exit_code in (0, 2), (number, kind, args[0], result.stderr)
            lines = result.stderr.strip().splitlines()
            if result.exit_code == 2:
                assert len(lines) == 1 and lines[0].startswith("error:"), (number, kind, result.stderr)
            else:
                assert isinstance(result.json(), dict)
                assert len([line for line in lines if line.startswith("warning:")]) <= 1, result.stderr
            outcomes[result.exit_code] += 1
    assert outcomes[2] > 0 and outcomes[0] > 0  # the mutations both break and spare checkpoints


def test_a_scenario_that_cannot_place_its_agents_times_out(cli, monkeypatch) -> None:
    """agent_radius=1e5 makes VMAS's placement loop run for ever; the build is given a time limit."""
    import marlnav_cli.envs as envs

    monkeypatch.setattr(envs, "SCENARIO_BUILD_LIMIT_S", 2)
    result = cli("inspect-specs", "--scenario-arg", "agent_radius=100000", "--num-envs", "1")
    _one_line_refusal(result, "did not finish building in 2 s")


def test_the_time_limit_comes_back_when_its_error_is_swallowed() -> None:
    """A finaliser that runs when the alarm fires drops the error; the limit must not stop at one try."""
    import time

    from marlnav_cli import envs
    from marlnav_cli.config import EnvConfig

    config = EnvConfig("navigation", 3, 100, False, 0, {})
    swallowed = 0
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"did not finish building in 0\.2 s"), envs._time_limit(config, 0.2):
        try:
            time.sleep(5)
        except ConfigError:
            swallowed += 1  # as Python does with an error raised inside a __del__
        time.sleep(5)
    assert swallowed == 1 and time.perf_counter() - started < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # nothing left armed


def test_vmas_placement_complaints_are_not_kept() -> None:
    """Past 50,000 tries VMAS warns on every try; recording each would grow by gigabytes."""
    import warnings

    from marlnav_cli import envs

    with envs._recorded_warnings() as caught:
        for _ in range(3):
            warnings.warn("It is taking many iterations to spawn the entity, make sure the bounds ...", stacklevel=1)
        warnings.warn("The following kwargs were not used by the scenario: foo", stacklevel=1)
    assert [str(w.message) for w in caught] == ["The following kwargs were not used by the scenario: foo"]
