"""Metrics computed from a run's outputs, apart from the models: op counts (`ops`), energy in two tiers
(`energy`), the corruption error relative to the baseline (`corruption`)."""
