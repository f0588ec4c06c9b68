"""Where a reproduction's time goes: every pipeline command appends one line to runs/timings.jsonl
(the command, what it ran on, its wall seconds, when it ended, the threads it used). The report stage
turns the lines into reports/timings.md (benchmark.results.timings). A rerun of the same target
appends again; the latest line counts."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmark.run.paths import TIMINGS_FILE


def record_timing(command: str, target: str, seconds: float, threads: int | None,
                  path: Path = TIMINGS_FILE) -> None:
    """Append one line (a single small write, so concurrent stages do not interleave)."""
    line = json.dumps({"command": command, "target": target, "seconds": round(seconds, 3), "threads": threads,
                       "ended": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write(line)
        file.flush()
        os.fsync(file.fileno())


def load_timings(path: Path = TIMINGS_FILE) -> list[dict[str, Any]]:
    """The latest line of each (command, target), in the order they ended; [] without the file.
    A line cut short by an interruption is left out."""
    if not Path(path).exists():
        return []
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for text in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            continue
        latest.pop((entry["command"], entry["target"]), None)
        latest[(entry["command"], entry["target"])] = entry
    return list(latest.values())
