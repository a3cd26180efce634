"""Atomic file writing and safe (pickle-free) reading of dynafit's data files."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    Readers never see a partial file: either the old content or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def ensure_writable_dir(out: str | os.PathLike) -> Path:
    """Create the folder ``out`` if needed and prove it writable; a ``ValueError`` otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write there ({err.strerror or err})") from None
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """Write plain arrays to ``path`` (an ``.npz``) atomically. Object arrays are refused."""
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise ValueError(f"array {key!r} has dtype object; dynafit files hold plain data only")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` without pickle; a non-npz file is a ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err})") from None
    except ValueError as err:  # object arrays need pickle: refused
        raise ValueError(
            f"{path}: holds arrays that need pickle to load; refused ({err})"
        ) from None


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)

    def write(tmp: Path) -> None:
        tmp.write_text(text + "\n")

    return atomic_write(path, write)


def load_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def to_jsonable(obj: Any) -> Any:
    """Round-trip ``obj`` through JSON so numpy scalars and tuples become plain types."""
    return json.loads(json.dumps(obj, default=_json_default))


# ------------------------------------------------------------- the owned folder
MANIFEST = "manifest.json"
#: checkpoints of an unfinished run, under its ``--out``
CHECKPOINTS = ".checkpoints"


def _is_scratch(name: str) -> bool:
    """dynafit's own scratch in a folder: checkpoints and atomic writes' temporaries."""
    return name == CHECKPOINTS or (name.startswith(".") and name.endswith(".tmp"))


@dataclass(frozen=True)
class OwnedFolder:
    """A command's ``--out`` folder, checked by :func:`claim_out_dir`.

    ``previous`` is the manifest a run of the same kind left there (None when there is
    none), ``resume`` whether it records the same config (the command picks up where it
    stopped), and ``owned`` the files that manifest lists as dynafit's (besides itself).
    """

    path: Path
    previous: dict[str, Any] | None
    resume: bool
    owned: frozenset[str]

    @property
    def replacing(self) -> bool:
        """``--overwrite`` over a run with another config: its own files are to go."""
        return self.previous is not None and not self.resume

    def check_free(self, names: Iterable[str]) -> None:
        """Refuse to write over a file that is there and not dynafit's (``ValueError``)."""
        for rel in names:
            path = self.path / rel
            if path.exists() and rel not in self.owned:
                raise ValueError(
                    f"{path} exists and was not written by dynafit; refusing to replace it"
                )


def claim_out_dir(
    out: str | os.PathLike,
    *,
    kind: str,
    what: str,
    differs: Callable[[dict[str, Any]], str | None],
    overwrite: bool,
    manifest: str = MANIFEST,
) -> OwnedFolder:
    """The one rule for every command's ``--out`` (train, sweep, fit, reproduce).

    The folder must be writable (or creatable: it is not created here). Its ``manifest`` (a JSON file
    whose ``kind``, or ``schema``, is ``kind``) says what wrote it:

    - none, and the folder is empty (but for checkpoints and temporaries): a new run;
    - none, and the folder holds files: refused unless ``overwrite`` (they are the
      user's: the command then writes beside them, never over them; see
      :meth:`OwnedFolder.check_free`);
    - unreadable, or of another kind: refused, even with ``overwrite`` (not dynafit's);
    - the same config (``differs(previous)`` is None): resumed;
    - another config: refused unless ``overwrite``, naming ``differs(previous)``; with
      ``overwrite`` the command replaces its own files (those the manifest names).

    ``what`` names the writer in messages ("`dynafit fit`", "a sweep", ...).
    """
    out = Path(out)
    if not out.exists():  # created by the first write, so bad input leaves nothing behind
        _check_creatable(out)
        return OwnedFolder(out, None, False, frozenset())
    out = ensure_writable_dir(out)
    path = out / manifest
    if not path.exists():
        entries = sorted(p.name for p in out.iterdir() if not _is_scratch(p.name))
        if entries and not overwrite:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise ValueError(
                f"--out {out} is not empty and was not written by {what} ({shown}); "
                "choose a new or empty --out, or pass --overwrite to write beside those "
                "files (none of them is replaced)"
            )
        return OwnedFolder(out, None, False, frozenset())
    try:
        previous = load_json(path)
    except ValueError as err:
        raise ValueError(f"--out {out}: {err}; choose another --out") from None
    if not isinstance(previous, dict) or kind not in (
        previous.get("kind"),
        previous.get("schema"),
    ):
        raise ValueError(
            f"{path} was not written by {what}; choose another --out (it is left as it is)"
        )
    owned = frozenset(str(f) for f in previous.get("files", []))
    difference = differs(previous)
    if difference is not None and not overwrite:
        raise ValueError(
            f"--out {out} holds {difference}; choose another --out, or pass --overwrite "
            "(which replaces dynafit's own files there)"
        )
    return OwnedFolder(out, previous, difference is None, owned)


def _check_creatable(out: Path) -> None:
    """The nearest existing folder above ``out`` must be a writable folder."""
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {out}: cannot write there ({parent} is not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: cannot write there (no permission in {parent})")
