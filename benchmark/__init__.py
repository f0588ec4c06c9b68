"""SpikeCode Bench: the harness. Its subpackages follow the pipeline, and their imports point down it:

    contract   what a coding method is (`CodingMethod`, `register_method`, op semantics, errors, io,
               provenance): the public interface a plugin is written against
    data       image and event datasets, the event camera, corruptions, augmentation
    run        params.yaml, the runtime (devices, seeds, model files, the one inference loop, input
               formats), training, evaluation, robustness
    metrics    op counting, energy, the corruption error
    results    result records, the one aggregation over seeds, merge
    render     tables, plots, leaderboards, the site
    sweeps     grids and temporal-resolution sweeps
    cli        `spikecode`: every stage as a subcommand

Method building blocks live in the top-level package `snn`, the methods in `methods`.
"""
