"""File modes for everything trainguard writes that another local user must not read.

The state database holds job tokens and manifests with their env values, worker logs carry
training output, checkpoints carry the model: on a shared machine none of it may follow the
umask (commonly 022, i.e. world-readable). Every place that creates such a directory or file
goes through these helpers, so the modes are decided here once:

* directories are created ``0700`` (`PRIVATE_DIR`); an existing one of ours that is looser is
  tightened with a warning (one not ours is only warned about: we cannot change it);
* files are created ``0600`` (`PRIVATE_FILE`) with ``O_CREAT``'s mode, never chmod-ed after
  the fact, so there is no window in which they are readable;
* secret files handed to us (``--token-file``) are refused when group or others have any
  access, as ssh refuses such a private key (`check_secret_file`).

Modes are applied explicitly (``chmod`` after ``mkdir``), so the umask can only make them
stricter, never looser. Importable from every layer: it uses only the standard library.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from trainguard.errors import UsageError

log = logging.getLogger("trainguard.permissions")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SECRET_FORBIDDEN_BITS = 0o077
"""Mode bits a secret file (``--token-file``) must not have: any group or other access."""


def private_dir(path: str | os.PathLike[str], *, mode: int = PRIVATE_DIR) -> Path:
    """Create ``path`` (and missing parents) and make sure ``path`` itself has ``mode``.

    Parents created on the way get the same mode. An existing directory owned by this user
    that grants more than ``mode`` is tightened (and logged); one owned by another user is
    left alone with a warning.

    Returns:
        ``path`` as a `Path`.
    """
    target = Path(path)
    missing = [p for p in (target, *target.parents) if not p.exists()]
    target.mkdir(parents=True, exist_ok=True)
    for created in missing:
        _chmod_quiet(created, mode)
    if target not in missing:
        tighten(target, mode)
    return target


def tighten(path: Path, mode: int) -> None:
    """Remove every permission bit of ``path`` beyond ``mode`` (ours), or warn (not ours)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    current = stat.S_IMODE(info.st_mode)
    if current & ~mode == 0:
        return
    if info.st_uid != os.geteuid():
        log.warning(
            "%s has mode %04o (owned by uid %d, not us): others may read what we write there",
            path,
            current,
            info.st_uid,
        )
        return
    log.warning("%s had mode %04o: tightened to %04o", path, current, current & mode)
    _chmod_quiet(path, current & mode)


def create_private_file(path: str | os.PathLike[str], *, mode: int = PRIVATE_FILE) -> Path:
    """Create ``path`` empty with ``mode`` if it does not exist; tighten it if it does."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, mode)
    try:
        current = stat.S_IMODE(os.fstat(fd).st_mode)
        if current & ~mode:
            os.fchmod(fd, current & mode)
    finally:
        os.close(fd)
    return target


def open_private(path: str | os.PathLike[str], flags: int, *, mode: int = PRIVATE_FILE) -> int:
    """``os.open`` with ``mode`` for a new file, and an existing looser file tightened."""
    fd = os.open(path, flags | os.O_CREAT, mode)
    current = stat.S_IMODE(os.fstat(fd).st_mode)
    if current & ~mode:
        os.fchmod(fd, current & mode)
    return fd


def check_secret_file(path: str | os.PathLike[str], *, what: str) -> None:
    """Refuse a secret file that group or others may access (ssh's rule for private keys).

    Raises:
        UsageError: the file is missing or its mode has any of `SECRET_FORBIDDEN_BITS`
            (the message names ``what``, the file, its mode and the fix).
    """
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        raise UsageError(f"{what} {path}: {exc.strerror}") from exc
    if current & SECRET_FORBIDDEN_BITS:
        raise UsageError(
            f"{what} {path} has mode {current:04o}: group or others can read it; "
            f"run 'chmod 600 {path}' (a secret file must be readable by its owner only)"
        )


def _chmod_quiet(path: Path, mode: int) -> None:
    try:
        path.chmod(mode)
    except OSError as exc:
        log.warning("cannot set mode %04o on %s: %s", mode, path, exc)
