"""Where the project keeps its files, relative to the repository root: params.yaml, datasets/, runs/,
reports/, and the per-sample files of a run (nothing here imports torch: the CLI reads these before it
pins the numeric libraries)."""

from pathlib import Path

DEFAULT_PARAMS = Path("params.yaml")
DATASETS_DIR = Path("datasets")
RUNS_DIR = Path("runs")
REPORTS_DIR = Path("reports")
TIMINGS_FILE = RUNS_DIR / "timings.jsonl"  # one line per pipeline command: what ran, for how long

# A run's per-sample results (runs/<dataset>/<method>/<seed>/): the evaluate and robustness stages'
PREDICTIONS_FILE = "predictions.npz"
ROBUST_PREDICTIONS_FILE = "robust_predictions.npz"

# A run's headline numbers for `dvc metrics show` (a few keys each; the full results stay in eval.json,
# energy.json and robust.json): one small file per stage, as DVC lets one stage own each file
# (the energy stage's, energy_metrics.json, is named in benchmark.metrics.energy)
METRICS_FILE = "metrics.json"
ROBUST_METRICS_FILE = "robust_metrics.json"
