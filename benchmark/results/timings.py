"""Where a reproduction's time went, from runs/timings.jsonl (benchmark.run.timings): per stage
(command), the targets it ran, their summed and largest wall seconds and share of the total; the
slowest targets; the span from the first command's start to the last one's end; and, apart, the grids
(run by `spikecode grid`, by hand or as part of run.grids), which would otherwise blur the span."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

SLOWEST = 10  # targets listed one by one


def timing_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """{"stages": [{"command", "targets", "seconds", "largest", "share"}] by seconds descending,
    "slowest": the SLOWEST longest entries, "total_seconds": their sum, "span_seconds": first start to
    last end (the wall time of the reproduction when its commands ran one after another), "threads",
    "grids": [{"target", "seconds", "ended"}]}; every figure but "grids" leaves the grids out."""
    grids = [entry for entry in entries if entry["command"] == "grid"]
    entries = [entry for entry in entries if entry["command"] != "grid"]
    total = sum(entry["seconds"] for entry in entries)
    stages: dict[str, dict[str, Any]] = {}
    for entry in entries:
        stage = stages.setdefault(entry["command"], {"command": entry["command"], "targets": 0, "seconds": 0.0,
                                                     "largest": 0.0})
        stage["targets"] += 1
        stage["seconds"] += entry["seconds"]
        stage["largest"] = max(stage["largest"], entry["seconds"])
    for stage in stages.values():
        stage["share"] = stage["seconds"] / total if total else 0.0
    starts = [datetime.fromisoformat(e["ended"]) - timedelta(seconds=e["seconds"]) for e in entries]
    ends = [datetime.fromisoformat(e["ended"]) for e in entries]
    return {"stages": sorted(stages.values(), key=lambda stage: -stage["seconds"]),
            "slowest": sorted(entries, key=lambda entry: -entry["seconds"])[:SLOWEST],
            "total_seconds": total,
            "span_seconds": (max(ends) - min(starts)).total_seconds() if entries else 0.0,
            "threads": sorted({entry["threads"] for entry in entries if entry.get("threads")}),
            "grids": [{key: entry[key] for key in ("target", "seconds", "ended")} for entry in grids]}
