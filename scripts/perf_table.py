"""Runs the performance suite (tests/perf) with benchmarks enabled, prints its results as tables
and writes them, with provenance, to reports/perf.json.

    .venv/bin/python scripts/perf_table.py                  full measurement (minutes)
    .venv/bin/python scripts/perf_table.py --quick          every benchmark once, tiny inputs (a smoke test)
    .venv/bin/python scripts/perf_table.py --compile        also race the torch.compile'd engine
    .venv/bin/python scripts/perf_table.py --from-json F    tables from an earlier `--benchmark-json` F

Every number comes from one race of tests/perf (see tests/perf/workloads.py): contestants run side
by side in one process, interleaved; a ratio is the median over rounds of the per-round ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from benchmark.contract.io import write_json  # noqa: E402
from benchmark.contract.provenance import provenance  # noqa: E402
from tests.perf.workloads import (  # noqa: E402
    ARCHS, NEURON, PROFILES, TARGET_OPCOUNTER_OVERHEAD, TARGET_SNN_OVER_T_ANN, TARGET_SPEEDUP_OVER_SNNTORCH,
    TARGET_STEPS, select_device,
)


def run_suite(json_path: Path, profile: str, device: str, compile_engine: bool, extra: list[str]) -> int:
    env = {**os.environ, "SPIKECODE_PERF_PROFILE": profile, "SPIKECODE_PERF_DEVICE": device,
           "SPIKECODE_PERF_COMPILE": "1" if compile_engine else "0"}
    command = [sys.executable, "-m", "pytest", "tests/perf", "--benchmark-enable", f"--benchmark-json={json_path}",
               "-q", "-p", "no:cacheprovider", *extra]
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=REPO, env=env).returncode


def load_results(json_path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    data = json.loads(Path(json_path).read_text())
    results = []
    for entry in data.get("benchmarks", []):
        info = dict(entry.get("extra_info") or {})
        if "kind" not in info:
            continue
        info["test"] = entry["name"]
        info["round_s"] = {"median": entry["stats"]["median"], "min": entry["stats"]["min"],
                           "rounds": entry["stats"]["rounds"]}
        results.append(info)
    return results, data.get("machine_info", {})


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = lambda row: "  ".join(cell.rjust(width) for cell, width in zip(row, widths))  # noqa: E731
    return "\n".join([title, line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _full_verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def render(results: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(the tables, the targets with their verdicts); a quick profile's numbers get no verdict."""
    full = all(r.get("profile") == "full" for r in results)
    _verdict = _full_verdict if full else (lambda ok: "- (quick)")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_kind.setdefault(result["kind"], []).append(result)
    parts, targets = [], {}

    rows = []
    for r in sorted(by_kind.get("snn_vs_T_ann", []), key=lambda r: (r["arch"], r["T"])):
        ok = r["ratio"] <= TARGET_SNN_OVER_T_ANN if r["T"] == TARGET_STEPS else None
        if ok is not None:
            targets[f"snn_step_over_T_ann_{r['arch']}_T{r['T']}"] = {"value": r["ratio"], "target": f"<= {TARGET_SNN_OVER_T_ANN}", "pass": ok}
        t = r["times"]
        rows.append([r["arch"], r["T"], r["batch"], r["ann_step_ms"], t["T_x_ann"]["median_ms"], t["snn"]["median_ms"],
                     r["ratio"], _verdict(ok)])
    if rows:
        parts.append(table(f"(a) SNN training step vs T x ANN training step (target at T={TARGET_STEPS}: <= {TARGET_SNN_OVER_T_ANN})",
                           ["arch", "T", "batch", "ANN step ms", "T x ANN ms", "SNN step ms", "SNN/(T x ANN)", "target"], rows))

    rows = []
    for r in sorted(by_kind.get("snntorch", []), key=lambda r: r["arch"]):
        ok = r["speedup"] >= TARGET_SPEEDUP_OVER_SNNTORCH if r["arch"] == "cnn" else None
        if ok is not None:
            targets[f"speedup_over_snntorch_{r['arch']}_T{r['T']}"] = {"value": r["speedup"], "target": f">= {TARGET_SPEEDUP_OVER_SNNTORCH}", "pass": ok}
        t = r["times"]
        rows.append([r["arch"], r["T"], r["batch"], t["snntorch"]["median_ms"], t["harness"]["median_ms"], r["speedup"], _verdict(ok)])
    for r in by_kind.get("snntorch_single_thread", []):
        t = r["times"]
        rows.append([f"{r['arch']} (1 thread)", r["T"], r["batch"], t["snntorch"]["median_ms"], t["harness"]["median_ms"],
                     r["speedup"], "control"])
    if rows:
        parts.append(table(f"(b) snnTorch per-step loop vs harness engine, training step (target cnn: >= {TARGET_SPEEDUP_OVER_SNNTORCH}x)",
                           ["arch", "T", "batch", "snnTorch ms", "harness ms", "speedup", "target"], rows))

    rows = []
    for r in sorted(by_kind.get("opcounter", []), key=lambda r: r["arch"]):
        ok = r["overhead"] <= TARGET_OPCOUNTER_OVERHEAD
        targets[f"opcounter_overhead_{r['arch']}"] = {"value": r["overhead"], "target": f"<= {TARGET_OPCOUNTER_OVERHEAD}", "pass": ok}
        rows.append([r["arch"], r["T"], r["batch"], r["samples_per_s_plain"], r["samples_per_s_counted"],
                     f"{100 * r['overhead']:.1f} %", _verdict(ok)])
    if rows:
        parts.append(table(f"(c) inference throughput, op counter off/on (target overhead <= {TARGET_OPCOUNTER_OVERHEAD:.0%})",
                           ["arch", "T", "batch", "samples/s off", "samples/s on", "overhead", "target"], rows))

    rows = []
    for r in sorted(by_kind.get("memory", []), key=lambda r: r["arch"]):
        for implementation in ("fused", "reference"):
            if implementation not in r:
                continue
            m = r[implementation]
            growth = m["growth_bytes_per_step"]
            ok = growth[-1] <= 1.10 * growth[-2]  # tests/perf/test_memory.py explains the check
            targets[f"memory_linear_{r['arch']}_{implementation}"] = {"value": m["slope_bytes_per_step"], "target": "linear in T", "pass": ok}
            peaks = ", ".join(f"T{t}: {int(b) / 2**20:.1f}" for t, b in m["peak_bytes"].items())
            rows.append([r["arch"], implementation, r["batch"], peaks, m["slope_bytes_per_step"] / 2**20,
                         m["slope_bytes_per_step_per_sample"] / 2**10, _verdict(ok)])
    if rows:
        parts.append(table("(d) BPTT peak memory vs T (forward + backward, MiB); slope of the least-squares line",
                           ["arch", "LIF", "batch", "peak MiB by T", "MiB/step", "KiB/step/sample", "linear"], rows))

    rows = []
    for r in sorted(by_kind.get("fused_vs_reference", []), key=lambda r: r["arch"]):
        t = r["times"]
        rows.append([f"fused LIF vs lif_step loop ({r['arch']})", r["T"], t["reference"]["median_ms"], t["fused"]["median_ms"], r["speedup"]])
    for r in by_kind.get("channels_last", []):
        t = r["times"]
        rows.append(["channels-last, SNN (cnn)", r["T"], t["snn"]["median_ms"], t["snn_channels_last"]["median_ms"], r["snn_speedup"]])
        rows.append(["channels-last, T x ANN (cnn)", r["T"], t["T_x_ann"]["median_ms"], t["T_x_ann_channels_last"]["median_ms"], r["ann_speedup"]])
    for r in by_kind.get("step_threads", []):
        t = r["times"]
        rows.append([f"per-step LIF kernels on 1 of {r['threads']} threads (cnn)", r["T"], t["all_threads"]["median_ms"],
                     t["one_thread"]["median_ms"], r["speedup"]])
    for r in by_kind.get("allocation_cache", []):
        t = r["times"]
        rows.append([f"CPU allocation cache (cnn; page faults {t['uncached']['page_faults']:.0f} -> {t['cached']['page_faults']:.0f})",
                     r["T"], t["uncached"]["median_ms"], t["cached"]["median_ms"], r["speedup"]])
    for r in by_kind.get("compile", []):
        t = r["times"]
        rows.append([f"torch.compile LIF (cnn; compile {r['compile_s']:.0f} s)", r["T"], t["eager"]["median_ms"], t["compiled"]["median_ms"], r["speedup"]])
    if rows:
        parts.append(table("Engine optimizations (training step; speedup = before/after)",
                           ["optimization", "T", "before ms", "after ms", "speedup"], rows))
    return "\n\n".join(parts), targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-json", type=Path, help="read an earlier pytest-benchmark JSON instead of running")
    parser.add_argument("--quick", action="store_true", help="the quick profile: proves the suite runs, measures nothing")
    parser.add_argument("--compile", action="store_true", help="also race the torch.compile'd LIF")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:n]")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "perf.json")
    parser.add_argument("--keep-json", type=Path, help="also keep pytest-benchmark's JSON here")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --), e.g. -k cnn")
    args = parser.parse_args(argv)
    profile = "quick" if args.quick else "full"
    device = select_device(args.device)

    returncode = 0
    if args.from_json:
        json_path = args.from_json
    else:
        json_path = args.keep_json or Path(tempfile.mkdtemp(prefix="perf-")) / "benchmarks.json"
        returncode = run_suite(json_path, profile, str(device) if args.device != "auto" else "auto", args.compile,
                               args.pytest_args)
        if not json_path.exists():
            print(f"pytest wrote no benchmark JSON (exit code {returncode})", file=sys.stderr)
            return returncode or 1
    results, machine = load_results(json_path)
    if not results:
        print(f"{json_path} holds no tests/perf results", file=sys.stderr)
        return 1
    text, targets = render(results)
    print()
    print(text)
    measured_profile = results[0].get("profile", profile)
    settings = {"suite": "tests/perf", "profile": measured_profile, "neuron": NEURON,
                "archs": {name: spec.model_dump() for name, spec in ARCHS.items()},
                "sizes": PROFILES[measured_profile].__dict__ if measured_profile in PROFILES else None}
    record = {
        "schema": "spikecode-perf/1",
        "provenance": provenance(torch.device(results[0].get("device", str(device))), "n/a", settings),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_1min": {r["test"]: r.get("load_average_1min") for r in results},
                    "cpu": machine.get("cpu", {}).get("brand_raw") if isinstance(machine.get("cpu"), dict) else None},
        "profile": measured_profile,
        "targets": targets if measured_profile == "full" else {},
        "all_targets_pass": all(t["pass"] for t in targets.values()) if measured_profile == "full" else None,
        "results": results,
        "table": text,
    }
    write_json(args.out, record)
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
