"""Files: atomic output (a crash or a failed command never leaves a half-written file under its name), and
the cheap checks on an input path that come before any heavy import."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from marlnav_cli.errors import CheckpointError, MarlnavError


def check_writable(path: Path) -> None:
    """Refuse an output path early, before any long work is done for it."""
    if not str(path).strip() or path == Path(""):
        raise MarlnavError("an output path is empty")
    if path.is_dir():
        raise MarlnavError(f"output path {path} is a directory, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise MarlnavError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MarlnavError(f"cannot write {path}: folder {parent} is not writable")


def ensure_folder(folder: Path) -> Path:
    if not str(folder).strip() or folder == Path("."):
        raise MarlnavError(f"output folder {str(folder)!r} is empty or the current folder; name a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MarlnavError(f"cannot create folder {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MarlnavError(f"cannot write into folder {folder}")
    return folder


TEMPORARY_PREFIX = "."  # temporary files are hidden: ".<name>.<random><suffix>" beside the output


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    A write that fails for want of space or permission (OSError, or safetensors' own error for the
    same) becomes one MarlnavError line; the temporary file is removed and `path` keeps what it held.
    """
    from safetensors import SafetensorError

    check_writable(path)
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f"{TEMPORARY_PREFIX}{path.name}.", suffix=path.suffix
        )
    except OSError as error:
        raise MarlnavError(f"cannot write {path}: {error.strerror or error}") from None
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp's 0600 would hide results from others
        os.replace(temporary, path)
    except (OSError, SafetensorError) as error:
        Path(temporary).unlink(missing_ok=True)
        reason = getattr(error, "strerror", None) or (
            str(error).splitlines()[0] if str(error) else type(error).__name__
        )
        raise MarlnavError(f"cannot write {path}: {reason}; it keeps what it held before") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files a killed process left in `folder` (call only while holding the folder's lock)."""
    stale = [p for p in folder.glob(f"{TEMPORARY_PREFIX}*.*") if p.is_file() and p.name != LOCK_NAME]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


LOCK_NAME = ".marlnav.lock"


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """One writer per run folder: a second process is refused at once, not left to interleave files."""
    import fcntl

    lock = folder / LOCK_NAME
    try:
        handle = open(lock, "a")  # noqa: SIM115 - held for the whole block
    except OSError as error:
        raise MarlnavError(f"cannot lock folder {folder}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise MarlnavError(
                f"another marlnav process is writing into {folder}; wait for it or choose another --out"
            ) from None
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # while still held: no file is left behind
    finally:
        handle.close()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text(text)


def write_csv_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV, every key any row has a column (in first-seen order), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


SHIPPED_POLICIES = Path(__file__).resolve().parent / "policies"


def shipped_policies() -> dict[str, Path]:
    """The policies that come with marlnav (package data, so an installed wheel has them), by name."""
    return {path.stem: path for path in sorted(SHIPPED_POLICIES.glob("*.safetensors"))}


def require_checkpoint_file(path: Path) -> Path:
    """The checks a checkpoint path gets before anything heavy is imported: it exists, is a file, is not
    empty. A bare name that is no file here is a shipped policy's name (`marlnav evaluate
    navigation-3ag-mappo`), from any folder and from an installed wheel."""
    if not path.exists():
        shipped, name = shipped_policies(), path.name.removesuffix(".safetensors")
        if path.parent == Path(".") and name in shipped:
            return shipped[name]
        raise CheckpointError(f"checkpoint {path} does not exist (shipped policies, by name: {', '.join(shipped)})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    return path
