"""Deprecated alias of `snn.arch`, kept so that plugins written against `benchmark.arch` keep working;
import `snn.arch` instead (README, "Adding a coding method")."""

import warnings

warnings.warn("benchmark.arch is deprecated: import snn.arch instead", DeprecationWarning, stacklevel=2)

from snn.arch import *  # noqa: E402,F401,F403
