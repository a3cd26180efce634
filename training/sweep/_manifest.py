"""The sweep folder: ``DIR/manifest.json`` (every block's config, seeds, status,
device, wall time), the compatibility of a folder with a spec, and what an overwrite
removes (the sweep's own files only)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import dynafit
from dynafit.internal import OwnedFolder, claim_out_dir, save_json

from ._spec import (
    CHECKPOINTS,
    MANIFEST,
    MANIFEST_SCHEMA,
    SUPERSEDED,
    SweepSpec,
    _jsonable,
    _show,
)


# ------------------------------------------------------------------- the folder
def claim(spec: SweepSpec, out: str | os.PathLike, overwrite: bool) -> OwnedFolder:
    """The one ``--out`` rule (:func:`dynafit.internal.claim_out_dir`) for a sweep: a folder
    whose manifest records the same fixed options (and block_size) is resumed."""
    return claim_out_dir(
        out,
        kind=MANIFEST_SCHEMA,
        what="a sweep",
        differs=lambda manifest: _differences(spec, manifest),
        overwrite=overwrite,
        manifest=MANIFEST,
    )


def _differences(spec: SweepSpec, manifest: dict[str, Any]) -> str | None:
    """Fixed options (and block_size) must equal those recorded in the folder."""
    recorded = manifest.get("fixed", {})
    now = spec.effective_fixed()
    diffs = [
        f"{k} = {_show(recorded[k])} in the folder, {_show(now[k])} in the spec"
        for k in now
        if k in recorded and recorded[k] != now[k]
    ]
    if spec.block_size is not None and manifest.get("block_size") not in (None, spec.block_size):
        diffs.append(
            f"block_size = {manifest['block_size']} in the folder, {spec.block_size} in the spec"
        )
    return "a sweep with other fixed options: " + "; ".join(diffs) if diffs else None


def _remove_own_files(out: Path, manifest: dict[str, Any] | None) -> None:
    """--overwrite: remove what a previous sweep wrote here (nothing else)."""
    for entry in (manifest or {}).get("blocks", []):
        (out / f"{entry['name']}.npz").unlink(missing_ok=True)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    shutil.rmtree(out / SUPERSEDED, ignore_errors=True)
    (out / MANIFEST).unlink(missing_ok=True)


def _stale_tmp_files(out: Path) -> None:
    """Remove temporary files left by a writer killed mid-write (never visible as .npz)."""
    for tmp in out.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


class _ManifestWriter:
    """The driver's copy of the manifest; written atomically, and only when it changed."""

    def __init__(self, out, spec, block_size, entries, old):
        self.path = out / MANIFEST
        self.entries = entries
        self.head = {
            "schema": MANIFEST_SCHEMA,
            "dynafit_version": dynafit.__version__,
            "spec": {
                "source": spec.source,
                "fixed": {k: _jsonable(v) for k, v in spec.fixed.items()},
                "grid": {k: [_jsonable(v) for v in vs] for k, vs in spec.grid.items()},
                "seeds": list(spec.seeds),
            },
            "fixed": spec.effective_fixed(),
            "block_size": block_size,
        }
        self._last = json.dumps(old, sort_keys=True) if old else None

    def set(self, name: str, **fields: Any) -> None:
        for e in self.entries:
            if e["name"] == name:
                e.update(fields)

    def write(self) -> None:
        doc = {**self.head, "blocks": self.entries}
        text = json.dumps(doc, sort_keys=True)
        if text != self._last:
            save_json(self.path, doc)
            self._last = text
