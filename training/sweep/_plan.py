"""The plan of a sweep run: which blocks of the spec are done, which resume from a
checkpoint and which are new."""

from __future__ import annotations

import json
import os
from typing import Any

import dynafit

from ._spec import SUPERSEDED


def _plan(spec, blocks, block_size, manifest, out):
    """Manifest entries for every block (old ones kept), and the names left to train."""
    old = {e["name"]: e for e in (manifest or {}).get("blocks", [])}
    entries: list[dict[str, Any]] = []
    todo: set[str] = set()
    for b in blocks:
        prev = old.pop(b.name, None)
        # A block's file is written (atomically) only when the block is complete, and
        # its name hashes config and seeds: a file there is a finished block, even when
        # the driver died before recording it.
        done = (out / f"{b.name}.npz").is_file()
        if done and prev is not None and prev.get("status") == "done":
            entry = dict(prev)
        else:
            entry = {
                "name": b.name,
                "config": b.config.to_dict(),
                "grid": b.grid_values(spec.grid),
                "seeds": list(b.seeds),
                "status": "pending",
            }
            if done:
                entry.update(status="done", recovered=True, dynafit_version=dynafit.__version__)
        entry["in_spec"] = True
        entries.append(entry)
        if not done:
            todo.add(b.name)
    # Blocks of earlier specs: kept; moved aside when they hold runs (same config and
    # seed) that a block of this spec also holds, so the folder never has a run twice.
    current = {(json.dumps(b.config.to_dict(), sort_keys=True), s) for b in blocks for s in b.seeds}
    for entry in old.values():
        cfg = json.dumps(entry["config"], sort_keys=True)
        entry["in_spec"] = False
        path = out / f"{entry['name']}.npz"
        if path.is_file() and any((cfg, s) in current for s in entry["seeds"]):
            (out / SUPERSEDED).mkdir(exist_ok=True)
            os.replace(path, out / SUPERSEDED / path.name)
            entry["status"] = "superseded"
        entries.append(entry)
    return entries, todo
