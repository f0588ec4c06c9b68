"""Running one (dataset, method, seed): params.yaml (`config`), the shared runtime (`runtime`: devices,
seeds, model files, the one inference loop), input formats (`inputs`), and the stages `train`,
`evaluate` and `robustness`."""
