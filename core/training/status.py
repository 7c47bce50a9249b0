"""The run's ``status.json`` (atomically replaced, schema-checked) and ``metrics.jsonl`` (appended).

``status.json`` is what the CLI (``stylescope train --status``), the jobs module and the Train tab read to
show a run; it is written by rank 0 at every host sync of the loop and on every state change.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from core.errors import StyleScopeError
from core.training.checkpoint import atomic_write_json

STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
SCHEMA = "stylescope.training.status/1"
STATES = ("starting", "running", "stopping", "stopped", "finished", "failed")

# field -> allowed types (None allowed where listed). The schema the tests check.
STATUS_FIELDS: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "state": (str,),
    "run_dir": (str,),
    "pid": (int,),
    "world_size": (int,),
    "device": (str,),
    "kimg": (int, float),
    "total_kimg": (int, float),
    "cur_nimg": (int,),
    "step": (int,),
    "progress": (int, float),
    "img_per_s": (int, float, type(None)),
    "eta_s": (int, float, type(None)),
    "losses": (dict,),
    "augment_p": (int, float),
    "gpu_mem_gb": (int, float, type(None)),
    "last_checkpoint": (str, type(None)),
    "last_sample": (str, type(None)),
    "message": (str,),
    "started": (float,),
    "updated": (float,),
}


def validate_status(status: dict) -> dict:
    """Check ``status`` against :data:`STATUS_FIELDS` and :data:`STATES`; returns it.

    Raises:
        StyleScopeError: a field is missing or has the wrong type.
    """
    for key, types in STATUS_FIELDS.items():
        if key not in status:
            raise StyleScopeError(f"status.json lacks {key!r}")
        value = status[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise StyleScopeError(f"status.json field {key!r} has type {type(value).__name__}")
    if status["state"] not in STATES:
        raise StyleScopeError(f"status.json state {status['state']!r} is not one of {STATES}")
    return status


def new_status(run_dir: str | os.PathLike, *, total_kimg: float, world_size: int, device: str) -> dict:
    now = time.time()
    return {
        "schema": SCHEMA,
        "state": "starting",
        "run_dir": str(Path(run_dir).resolve()),
        "pid": os.getpid(),
        "world_size": int(world_size),
        "device": str(device),
        "kimg": 0.0,
        "total_kimg": float(total_kimg),
        "cur_nimg": 0,
        "step": 0,
        "progress": 0.0,
        "img_per_s": None,
        "eta_s": None,
        "losses": {},
        "augment_p": 0.0,
        "gpu_mem_gb": None,
        "last_checkpoint": None,
        "last_sample": None,
        "message": "",
        "started": now,
        "updated": now,
    }


def write_status(run_dir: str | os.PathLike, status: dict) -> None:
    status["updated"] = time.time()
    atomic_write_json(Path(run_dir) / STATUS_FILE, validate_status(status))


def read_status(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``status.json``; a run that has not written one yet reads as ``{"state": "unknown", ...}``."""
    path = Path(run_dir) / STATUS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {
            "schema": SCHEMA,
            "state": "unknown",
            "run_dir": str(Path(run_dir).resolve()),
            "message": "no status yet",
        }


def append_metrics(run_dir: str | os.PathLike, record: dict) -> None:
    with open(Path(run_dir) / METRICS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
