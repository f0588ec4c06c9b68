"""Deprecated alias of `benchmark.contract.method`, kept so that plugins written against `benchmark.method` keep working;
import `benchmark.contract.method` instead (README, "Adding a coding method")."""

import warnings

warnings.warn("benchmark.method is deprecated: import benchmark.contract.method instead", DeprecationWarning, stacklevel=2)

from benchmark.contract.method import *  # noqa: E402,F401,F403
