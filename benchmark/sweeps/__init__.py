"""Sweeps over many runs: grids of hyperparameters (`grid`) and the temporal-resolution sweep of an
event dataset (`resolution`); their tables and plots are drawn by benchmark.render."""
