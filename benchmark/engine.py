"""Deprecated alias of `snn.engine`, kept so that plugins written against `benchmark.engine` keep working;
import `snn.engine` instead (README, "Adding a coding method")."""

import warnings

warnings.warn("benchmark.engine is deprecated: import snn.engine instead", DeprecationWarning, stacklevel=2)

from snn.engine import *  # noqa: E402,F401,F403
from snn.layers import Folded, ReLU, neuron_layers, prefer_channels_last  # noqa: E402,F401  (moved with the engine)
from snn.memory import cache_cpu_allocations  # noqa: E402,F401
