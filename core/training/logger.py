"""The run log: one JSON object per line in ``<work_dir>/log.jsonl``, written by rank 0.

Every record has ``"event"`` (``"start"``, ``"train"``, ``"val"``, ``"checkpoint"``,
``"resume"``, ``"end"``), ``"iter"`` (iterations completed) and ``"time"`` (UNIX seconds);
``train`` records add ``loss``, ``lr``, ``grad_norm`` and ``s_per_iter``; ``val`` records add
``psnr``, ``ssim``, ``images`` and ``best``. Lines are flushed as they are written. On resume
from iteration ``k`` the records a killed run wrote after ``k`` are dropped (the resumed run
writes them again), so the log of a resumed run reads like the log of an uninterrupted one
plus a ``resume`` record.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, TextIO

from ..image_io import atomic_write_text

__all__ = ["JsonLinesLogger"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class JsonLinesLogger:
    """Append-only JSON-lines log (a no-op when ``path`` is ``None``, e.g. on ranks > 0).

    Args:
        path: the log file, or ``None``.
        truncate_after: on resume, drop existing records whose ``iter`` exceeds this.
    """

    def __init__(self, path: str | Path | None, truncate_after: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._handle: TextIO | None = None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after is not None and self.path.is_file():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if int(record.get("iter", 0)) <= truncate_after:
                    kept.append(line)
            atomic_write_text(self.path, "".join(f"{line}\n" for line in kept), overwrite=True)
        self._handle = self.path.open("a", encoding="utf-8")

    def log(self, event: str, iteration: int, **fields: Any) -> None:
        """Write one record."""
        if self._handle is None:
            return
        record = {"event": event, "iter": iteration, "time": round(time.time(), 3), **_clean(fields)}
        self._handle.write(json.dumps(record, sort_keys=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
