"""Where a reproduction's time goes: every computing command appends its wall time to runs/timings.jsonl,
and the report turns the latest line of each target into reports/timings.md."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.render.tables import timings_markdown
from benchmark.results.timings import timing_summary
from benchmark.run.timings import load_timings, record_timing


def test_the_latest_line_of_a_target_counts_and_a_cut_line_is_left_out(tmp_path):
    path = tmp_path / "timings.jsonl"
    record_timing("train", "d/m/0", 10.0, 2, path)
    record_timing("train", "d/m/0", 12.5, 2, path)  # a rerun replaces the first
    record_timing("evaluate", "d/m/0", 3.0, 2, path)
    with open(path, "a") as file:
        file.write('{"command": "train", "tar')  # an interrupted write
    assert [(e["command"], e["seconds"]) for e in load_timings(path)] == [("train", 12.5), ("evaluate", 3.0)]
    assert load_timings(tmp_path / "absent.jsonl") == []


def test_the_summary_adds_each_stage_and_keeps_grids_apart_by_hand():
    entries = [
        {"command": "train", "target": "a", "seconds": 60.0, "threads": 2, "ended": "2026-01-01T00:01:00+00:00"},
        {"command": "train", "target": "b", "seconds": 120.0, "threads": 2, "ended": "2026-01-01T00:03:00+00:00"},
        {"command": "evaluate", "target": "a", "seconds": 60.0, "threads": 2, "ended": "2026-01-01T00:04:00+00:00"},
        {"command": "grid", "target": "g", "seconds": 600.0, "threads": 2, "ended": "2026-01-01T01:00:00+00:00"},
    ]
    summary = timing_summary(entries)
    # train 180 s of 240 (75 %), evaluate 60 s (25 %); span 00:00 -> 00:04 = 240 s; the grid apart
    assert [(s["command"], s["targets"], s["seconds"], s["largest"]) for s in summary["stages"]] == [
        ("train", 2, 180.0, 120.0), ("evaluate", 1, 60.0, 60.0)]
    assert [s["share"] for s in summary["stages"]] == pytest.approx([0.75, 0.25])
    assert summary["total_seconds"] == 240.0 and summary["span_seconds"] == 240.0
    assert summary["grids"] == [{"target": "g", "seconds": 600.0, "ended": "2026-01-01T01:00:00+00:00"}]
    text = timings_markdown(summary)
    assert "**4.0 min**" in text and "| train | 2 | 3.0 | 2.0 | 75 |" in text and "| g | 10.0 |" in text


def test_a_pipeline_command_records_its_time_and_a_failed_one_does_not(workspace):
    assert main(["prepare", "digits"]) == 0
    [entry] = [json.loads(line) for line in (workspace / "runs" / "timings.jsonl").read_text().splitlines()]
    assert (entry["command"], entry["target"], entry["threads"]) == ("prepare", "digits", 1) and entry["seconds"] > 0
    assert main(["evaluate", "--dataset", "digits", "--method", "ann", "--seed", "0"]) == 2  # not trained: an error
    assert len((workspace / "runs" / "timings.jsonl").read_text().splitlines()) == 1
