"""Deprecated alias of `benchmark.contract.registry`, kept so that plugins written against `benchmark.registry` keep working;
import `benchmark.contract.registry` instead (README, "Adding a coding method")."""

import warnings

warnings.warn("benchmark.registry is deprecated: import benchmark.contract.registry instead", DeprecationWarning, stacklevel=2)

from benchmark.contract.registry import *  # noqa: E402,F401,F403
