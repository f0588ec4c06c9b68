"""`spikecode`: every pipeline stage as a subcommand, so everything runs without DVC too. Dispatch only:
each command calls its stage's function.

    spikecode list                                   methods (and broken plugins) and datasets, one line each
    spikecode prepare DATASET                        raw files -> datasets/<name>/prepared.pt
    spikecode train    --dataset D --method M --seed S   -> runs/D/M/S/{model.pt, train.json}
    spikecode evaluate --dataset D --method M --seed S   -> runs/D/M/S/{eval.json, ops.json}
    spikecode robustness --dataset D --method M --seed S -> runs/D/M/S/robust.json
    spikecode energy   --dataset D --method M --seed S   -> runs/D/M/S/energy.json
    spikecode export   --dataset D --method M --seed S   -> runs/D/M/S/deploy.json (+ model.nir when NIR can express it)
    spikecode grid NAME                              a sweep or ablation of params.yaml `grids:`
    spikecode resolution NAME                        Δt, Δt/2, Δt/4 invariance sweep of params.yaml `resolution:`
    spikecode severity NAME                          the board's runs under Gaussian noise of growing σ (`severity:`)
    spikecode report                                 runs/ -> reports/ (tables, plots, leaderboard)
    spikecode report --merge PATH...                 leaderboards or runs/ from other machines -> reports/, site
    spikecode claims                                 the seed papers' claims tested over reports/ (verdicts)
    spikecode verify RUN...                          re-run a record from its provenance: does it match?
    spikecode publish                                reports/leaderboard.json -> reports/site/ (static site)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmark.contract.errors import DatasetSkipped, MissingData, SpikeCodeError
from benchmark.run.numerics import pin, profile_threads
from benchmark.run.paths import DATASETS_DIR, DEFAULT_PARAMS, REPORTS_DIR, RUNS_DIR


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="a dataset name (see `spikecode list`)")
    parser.add_argument("--method", required=True, help="a method name (see `spikecode list`)")
    parser.add_argument("--seed", type=int, required=True, help="the run's seed (one of run.seeds)")
    parser.add_argument("--profile", help="a profile of params.yaml (default: its `profile` key)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--skip-missing", action="store_true",
                        help="for a dataset that `prepare --skip-missing` marked absent, write skip markers instead of failing")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikecode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="configuration file (default: params.yaml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="list the registered methods and datasets")

    prepare = commands.add_parser("prepare", help="check and prepare a dataset under datasets/<name>/")
    prepare.add_argument("dataset", help="dataset name (see `spikecode list`)")
    prepare.add_argument("--download", action="store_true",
                         help="let torchvision or tonic download missing files (needs network access)")
    prepare.add_argument("--skip-missing", action="store_true",
                         help="when the raw files are absent, mark the dataset skipped instead of failing (the pipeline uses this)")

    for name, text in [("train", "train a method (or convert a trained source network)"),
                       ("evaluate", "evaluate a trained run on the clean test set: accuracy, decision steps, ops"),
                       ("robustness", "evaluate a trained run under every corruption and severity"),
                       ("energy", "estimate a run's energy per sample from its op counts"),
                       ("export", "export a trained run to NIR (or name why not), round-trip it through other SNN "
                                  "libraries, and evaluate it in fixed point (int8/int4 weights, 16-bit membranes)")]:
        _run_arguments(commands.add_parser(name, help=text, description=text))

    grid = commands.add_parser("grid", help="run a sweep or ablation declared under `grids:` and write its table and plot")
    grid.add_argument("name", help="a grid of params.yaml")
    grid.add_argument("--profile", help="a profile of params.yaml (default: its `profile` key)")
    grid.add_argument("--no-progress", action="store_true", help="hide progress bars")

    resolution = commands.add_parser("resolution", help="train and evaluate methods at finer time steps of an event "
                                                        "dataset (params.yaml `resolution:`)")
    resolution.add_argument("name", help="a sweep under `resolution:` in params.yaml")
    resolution.add_argument("--profile", help="a profile of params.yaml (default: its `profile` key)")
    resolution.add_argument("--no-progress", action="store_true", help="hide progress bars")
    severity = commands.add_parser("severity", help="evaluate every board run under Gaussian noise of growing σ on "
                                                    "the whole test set (params.yaml `severity:`)")
    severity.add_argument("name", help="a sweep under `severity:` in params.yaml")
    severity.add_argument("--profile", help="a profile of params.yaml (default: its `profile` key)")
    severity.add_argument("--no-progress", action="store_true", help="hide progress bars")

    report = commands.add_parser("report", help="collect every run into leaderboard tables and plots in reports/")
    report.add_argument("--runs", type=Path, default=RUNS_DIR, help="folder of runs (default: runs/)")
    report.add_argument("--out", type=Path, default=REPORTS_DIR, help="output folder (default: reports/)")
    report.add_argument("--merge", nargs="+", type=Path, metavar="PATH",
                        help="merge these leaderboard.json files, reports/ or runs/ folders (e.g. from other machines) "
                             "instead of reading --runs, then rebuild the tables and the site")
    report.add_argument("--strict", action="store_true", help="with --merge: stop at a conflicting duplicate")

    claims = commands.add_parser("claims", help="test every claim of params.yaml `claims:` over the reported records "
                                                "and print the verdicts")
    claims.add_argument("--reports", type=Path, default=REPORTS_DIR, help="reports folder (default: reports/)")

    publish = commands.add_parser("publish", help="build the static leaderboard site from reports/leaderboard.json")
    publish.add_argument("--reports", type=Path, default=REPORTS_DIR, help="reports folder (default: reports/)")
    publish.add_argument("--out", type=Path, help="site folder (default: <reports>/site)")

    verify = commands.add_parser("verify", help="re-run records from their provenance (params, seed, commit) and "
                                                "report whether their metrics match (exit 1 on a mismatch)")
    verify.add_argument("targets", nargs="+", metavar="TARGET",
                        help="a run folder (runs/D/M/S, runs/grids/G/D/M@point/S) or a record id of "
                             "reports/leaderboard.json")
    verify.add_argument("--allow-other-commit", action="store_true",
                        help="re-run a record made at another commit than HEAD (the report notes it)")
    verify.add_argument("--keep", type=Path, metavar="DIR",
                        help="write the re-runs under DIR and keep them (default: a temporary folder, deleted)")
    verify.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def cmd_list(args) -> None:
    from benchmark.contract.registry import available_methods, broken_methods
    from benchmark.data.registry import available_datasets

    print("methods:")
    for name, cls in available_methods().items():
        print(f"  {name:<14} {cls.family:<10} {cls.citation}")
    for name, error in broken_methods().items():
        print(f"  {name:<14} {'BROKEN':<10} {error}")
    print("datasets:")
    for name, info in available_datasets().items():
        print(f"  {name:<14} {info.description}")


def cmd_prepare(args) -> None:
    from benchmark.data.prepared import mark_skipped, prepare
    from benchmark.data.registry import get_dataset
    from benchmark.run.config import load_params

    get_dataset(args.dataset)
    params = load_params(args.params)
    split = params.datasets.get(args.dataset)
    options = split.model_dump(exclude={"methods"}) if split else {}
    try:
        path = prepare(args.dataset, DATASETS_DIR, allow_download=args.download, **options)
    except MissingData as error:
        if not args.skip_missing:
            raise
        mark_skipped(args.dataset, str(error), DATASETS_DIR)
        print(f"spikecode prepare: skipping {args.dataset}, its files are missing:\n{error}", file=sys.stderr)
        return
    print(f"prepared {args.dataset}: {path}")


STAGE_OUTPUTS = {"train": ("model.pt", "train.json"),
                 "evaluate": ("eval.json", "ops.json", "metrics.json", "predictions.npz"),
                 "robustness": ("robust.json", "robust_metrics.json", "robust_predictions.npz"),
                 "energy": ("energy.json", "energy_metrics.json"), "export": ("deploy.json",)}


def _write_skip_markers(args, spec, reason: str) -> None:
    """Writes the stage's declared outputs as markers, so DVC sees the stage done and the report
    lists the run as skipped."""
    from benchmark.contract.io import write_json

    for name in STAGE_OUTPUTS[args.command]:
        write_json(spec.run_dir / name, {"skipped": reason})
    if args.command == "train":  # the stage's plots output (dvclive's folder): DVC needs it to exist
        (spec.run_dir / "live" / "plots" / "metrics").mkdir(parents=True, exist_ok=True)
    print(f"spikecode {args.command}: skipping {spec.dataset}/{spec.method}/{spec.seed}: {reason}", file=sys.stderr)


def _skipped_upstream(args, spec) -> str | None:
    """The reason a previous stage skipped this run, or None."""
    from benchmark.contract.io import read_json

    upstream = {"train": None, "evaluate": "train.json", "robustness": "train.json", "energy": "ops.json",
                "export": "train.json"}[args.command]
    path = spec.run_dir / upstream if upstream else None
    if args.skip_missing and path is not None and path.exists():
        return read_json(path).get("skipped")
    return None


def _run_stage(args, stage) -> None:
    """Runs `stage(params, spec)`; with --skip-missing, a skipped dataset writes skip markers."""
    params, spec = _spec(args)
    reason = _skipped_upstream(args, spec)
    if reason is None:
        try:
            return stage(params, spec)
        except DatasetSkipped as error:
            if not args.skip_missing:
                raise
            reason = str(error)
    _write_skip_markers(args, spec, reason)


def _spec(args):
    from benchmark.contract.registry import get_method
    from benchmark.run.config import load_params, resolve_run

    get_method(args.method)  # an unknown (or broken) method is the first error, naming the known ones
    params = load_params(args.params)
    return params, resolve_run(params, args.dataset, args.method, args.seed, args.profile)


def cmd_train(args) -> None:
    _run_stage(args, lambda params, spec: _train(args, params, spec))


def _train(args, params, spec) -> None:
    from benchmark.run.train import source_of, train

    summary = train(spec, progress=not args.no_progress, source=source_of(params, spec))
    print(f"trained {spec.method} on {spec.dataset} (seed {spec.seed}) in {summary['train_seconds']:.1f} s -> {spec.run_dir}")


def cmd_evaluate(args) -> None:
    _run_stage(args, lambda params, spec: _evaluate(args, spec))


def _evaluate(args, spec) -> None:
    from benchmark.run.evaluate import evaluate

    record = evaluate(spec, progress=not args.no_progress)
    print(f"{spec.method} on {spec.dataset}: accuracy {record['accuracy']:.4f}, "
          f"mean decision step {record['decision_step']['mean']:.2f} of T={record['T']}")


def cmd_robustness(args) -> None:
    _run_stage(args, lambda params, spec: _robustness(args, spec))


def _robustness(args, spec) -> None:
    from benchmark.run.robustness import run_robustness

    result = run_robustness(spec, progress=not args.no_progress)
    print(f"{spec.method} on {spec.dataset}: mean corruption accuracy {result['mean_accuracy']:.4f} "
          f"over {len(result['per_corruption'])} corruptions × 5 severities")


def cmd_energy(args) -> None:
    _run_stage(args, _energy)


def _energy(params, spec) -> None:
    from benchmark.metrics.energy import run_energy

    energy = run_energy(spec.run_dir, params.energy.cost_model)
    print(f"{spec.method} on {spec.dataset}: {energy['tier1_pj'] / 1e3:.1f} nJ per sample ({energy['cost_model']})")


def cmd_export(args) -> None:
    _run_stage(args, lambda params, spec: _export(args, spec))


def _export(args, spec) -> None:
    from benchmark.deploy.stage import run_deploy

    record = run_deploy(spec, progress=not args.no_progress)
    fixed = record["fixed_point"]
    print(f"{spec.method} on {spec.dataset}: portable: {record.get('portable', record['export']['exportable'])}; "
          f"accuracy fp32 {fixed['fp32']['accuracy']:.4f}, int8 {fixed['int8']['accuracy']:.4f}, "
          f"int4 {fixed['int4']['accuracy']:.4f}")


def cmd_grid(args) -> None:
    from benchmark.run.config import load_params
    from benchmark.sweeps.grid import run_grid

    written = run_grid(load_params(args.params), args.name, args.profile, progress=not args.no_progress)
    print(f"grid {args.name}: wrote {', '.join(str(path) for path in written)}")


def cmd_resolution(args) -> None:
    from benchmark.run.config import load_params
    from benchmark.sweeps.resolution import RESULTS_FILE, run_resolution

    record = run_resolution(load_params(args.params), args.name, args.profile, progress=not args.no_progress)
    for method, entry in record["methods"].items():
        print(f"{method}: trained at Δt, run at Δt/k: {entry['evaluated_shift_pp']:.2f} pp; retrained: "
              f"{entry['retrained_shift_pp']:.2f} pp")
    print(f"resolution {args.name}: wrote {RUNS_DIR / 'resolution' / args.name / RESULTS_FILE} "
          "(`spikecode report` draws it under reports/resolution/)")


def cmd_severity(args) -> None:
    from benchmark.run.config import load_params
    from benchmark.sweeps.severity import RESULTS_FILE, run_severity

    results = run_severity(load_params(args.params), args.name, args.profile, progress=not args.no_progress)
    for row in sorted(results["rows"], key=lambda row: row["rank"]):
        print(f"rank {row['rank']}: {row['label']} (T={row['T']}): clean {row['clean'][0]:.2f} %, mean over σ "
              f"{row['mean'][0]:.2f} % ({len(row['seeds'])} seeds)")
    print(f"severity {args.name}: wrote {REPORTS_DIR / 'severity' / args.name}/{{{RESULTS_FILE}, table.md, "
          "accuracy_vs_sigma.png}")


def cmd_report(args) -> None:
    from benchmark.render.report import build_report, write_leaderboard
    from benchmark.render.resolution import write_resolution_reports
    from benchmark.run.config import load_params

    params = load_params(args.params)
    grids = args.out / "grids"
    baseline = params.run.baseline
    exceptions = {name: profile.budget_exceptions for name, profile in params.profiles.items()}
    claim_settings = {"claims": [claim.model_dump() for claim in params.claims], "profile": params.profile}
    if args.merge:
        from benchmark.render.site import build_site
        from benchmark.results.merge import merge_leaderboards, summary

        merged = merge_leaderboards(args.merge, on_conflict="error" if args.strict else "keep-first", baseline=baseline)
        print(summary(merged))
        # The sweeps' pages first: the claims read reports/resolution (a merge of reports/ alone redraws them)
        written = write_resolution_reports(args.runs / "resolution", args.out / "resolution")
        written += write_leaderboard(merged["records"], args.out, baseline,
                                     [*params.references, *merged["references"]], grids, exceptions, **claim_settings)
        written += build_site(args.out / "leaderboard.json", args.out / "site", args.out)
    else:
        written = build_report(args.runs, args.out, baseline, params.references, grids, exceptions, **claim_settings)
    print(f"wrote {len(written)} files under {args.out}/")


def cmd_claims(args) -> None:
    from benchmark.render.claims import claims_table
    from benchmark.results.claims_report import reported_claims
    from benchmark.run.config import load_params

    params = load_params(args.params)
    verdicts = reported_claims(args.reports, [claim.model_dump() for claim in params.claims], params.run.baseline,
                               params.profile)
    table = claims_table(verdicts)
    for row in table.itertuples(index=False):
        print(f"[{row.verdict}] {row.paper}: {row.claim}\n    test: {row.test}\n    measured: {row[4]}")
    counts = table["verdict"].value_counts().to_dict()
    print(", ".join(f"{count} {verdict}" for verdict, count in counts.items()))


def cmd_publish(args) -> None:
    from benchmark.render.site import build_site

    out = args.out or args.reports / "site"
    written = build_site(args.reports / "leaderboard.json", out, args.reports)
    print(f"wrote the site ({len(written)} files) under {out}/: open {out / 'index.html'}")


def cmd_verify(args) -> int:
    from benchmark.audit.verify import verify
    from benchmark.run.config import load_params

    params = load_params(args.params)
    results = []
    for target in args.targets:
        results.append(verify(target, params, allow_other_commit=args.allow_other_commit, keep=args.keep,
                              progress=not args.no_progress))
        print(results[-1].report(), flush=True)
    return 0 if all(result.matches for result in results) else 1  # a mismatch is a finding; errors exit with 2


COMMANDS = {"list": cmd_list, "prepare": cmd_prepare, "train": cmd_train, "evaluate": cmd_evaluate,
            "robustness": cmd_robustness, "energy": cmd_energy, "grid": cmd_grid,
            "resolution": cmd_resolution, "severity": cmd_severity, "report": cmd_report, "claims": cmd_claims,
            "publish": cmd_publish, "verify": cmd_verify, "export": cmd_export}


# The commands that compute (report and publish read the timings: they must not change their own dependency, runs/)
TIMED = {"prepare", "train", "evaluate", "robustness", "energy", "export", "grid", "resolution", "severity"}


def _target(args) -> str:
    if hasattr(args, "seed"):
        return f"{args.dataset}/{args.method}/{args.seed}"
    return getattr(args, "name", None) or getattr(args, "dataset", "")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = profile_threads(args.params, getattr(args, "profile", None))
    if threads is not None:  # before any numeric work: the profile's threads, reproducible kernels
        pin(threads)
    started = time.perf_counter()
    try:
        status = COMMANDS[args.command](args)
    except SpikeCodeError as error:
        print(f"spikecode {args.command}: error: {error}", file=sys.stderr)
        return 2
    if args.command in TIMED:
        from benchmark.run.timings import record_timing

        record_timing(args.command, _target(args), time.perf_counter() - started, threads)
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
