"""The one error type poolwise raises for bad input, so callers (and the CLI) can catch it."""


class PoolwiseError(ValueError):
    """Bad input: the message is one line that names the problem and the fix."""


class PoolwiseWarning(UserWarning):
    """Something the analyst should know about a fit (prior-only coefficients, sampling trouble)."""
