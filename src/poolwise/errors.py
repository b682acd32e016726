"""The one error type poolwise raises for bad input, so callers (and the CLI) can catch it."""


class PoolwiseError(ValueError):
    """Bad input: the message is one line that names the problem and the fix.

    A ``ValueError``, so code that already catches those keeps working; the command line prints it as
    ``error: ...`` with exit code 2.

    Parameters
    ----------
    message : str
        What is wrong, then what to do: "gymID is numeric; wrap it in C() or pass --group gymID".

    Examples
    --------
    >>> try:
    ...     raise PoolwiseError("draws must be a whole number >= 1, got 0")
    ... except ValueError as error:
    ...     print(error)
    draws must be a whole number >= 1, got 0
    """


class PoolwiseWarning(UserWarning):
    """Something the analyst should know about a fit (prior-only coefficients, sampling trouble).

    The command line prints these in yellow at the end of a command, without failing it.

    Parameters
    ----------
    message : str
        What happened and what it means for the numbers.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("r_hat up to 1.05 > 1.01", PoolwiseWarning)
    >>> caught[0].category.__name__
    'PoolwiseWarning'
    """
