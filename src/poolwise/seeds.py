"""The seed rule: how one user seed becomes the seed of every model, refit, fold and chain.

A run records one base seed. Model k of a comparison (in ``POOLINGS`` order) is fitted with
base + k, so each saved fit can be refitted alone with its own recorded seed. Refits derive
theirs from their fit's seed and what they leave out (a row, or a model and fold), never from the
order they run in, so serial, batched and parallel runs give the same numbers.
"""

import numpy as np


def base(seed: int | None) -> int:
    """The run's base seed: ``seed``, or one drawn here (and recorded by the caller) when None.

    Parameters
    ----------
    seed : int or None
        The user's seed.

    Returns
    -------
    int

    Examples
    --------
    >>> base(7)
    7
    """
    return int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)


def of_model(seed: int, index: int) -> int:
    """The seed of model ``index`` (its place in ``POOLINGS``) of a comparison with base ``seed``.

    Parameters
    ----------
    seed : int
        The comparison's base seed.
    index : int
        The model's place in ``POOLINGS``.

    Returns
    -------
    int

    Examples
    --------
    >>> of_model(1, 2)
    3
    """
    return int(seed) + int(index)


def of_comparison(seed: int, index: int) -> int:
    """The base seed of the comparison whose model ``index`` was fitted with ``seed`` (the inverse
    of ``of_model``).

    Parameters
    ----------
    seed : int
        The fit's recorded seed.
    index : int
        The model's place in ``POOLINGS``.

    Returns
    -------
    int

    Examples
    --------
    >>> of_comparison(3, 2)
    1
    """
    return int(seed) - int(index)


def of_row(seed: int, row: int) -> int:
    """The seed of the exact LOO refit that leaves out ``row`` of a fit with seed ``seed``.

    Parameters
    ----------
    seed : int
        The fit's seed.
    row : int
        The held-out row.

    Returns
    -------
    int

    Examples
    --------
    >>> of_row(1, 3) == of_row(1, 3) != of_row(1, 4)
    True
    """
    return int(np.random.SeedSequence([int(seed), int(row)]).generate_state(1)[0])


def of_fold(seed: int, index: int, fold: int) -> int:
    """The seed of the grouped-CV refit of model ``index`` (its place in ``POOLINGS``) without
    fold ``fold``, in a run with base ``seed``.

    Parameters
    ----------
    seed : int
        The run's base seed.
    index : int
        The model's place in ``POOLINGS``.
    fold : int
        The fold's number.

    Returns
    -------
    int

    Examples
    --------
    >>> of_fold(1, 0, 2) != of_fold(1, 1, 2)
    True
    """
    return int(np.random.SeedSequence([int(seed), int(index), int(fold)]).generate_state(1)[0])


def of_chains(seed: int, chains: int) -> np.ndarray:
    """The chains' seeds of one fit or refit with seed ``seed``.

    Parameters
    ----------
    seed : int
        The fit's (or refit's) seed.
    chains : int
        Number of chains.

    Returns
    -------
    numpy.ndarray
        One uint32 seed per chain.

    Examples
    --------
    >>> len(of_chains(1, 4))
    4
    """
    return np.random.SeedSequence(int(seed)).generate_state(chains)
