"""The built-in coding methods, one module per method; importing this package registers them."""

from methods import ann, convert, css, latency, qcfs, rate, sigma_delta, ttfs  # noqa: F401  (import registers)
