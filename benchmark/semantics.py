"""Deprecated alias of `benchmark.contract.semantics`, kept so that plugins written against `benchmark.semantics` keep working;
import `benchmark.contract.semantics` instead (README, "Adding a coding method")."""

import warnings

warnings.warn("benchmark.semantics is deprecated: import benchmark.contract.semantics instead", DeprecationWarning, stacklevel=2)

from benchmark.contract.semantics import *  # noqa: E402,F401,F403
