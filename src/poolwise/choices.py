"""The names a user chooses from, once: the CLI's option choices and the library's registries
read them here, so a new family, backend or layout is named in one place.

A leaf module without imports, so ``poolwise --help`` lists the choices without importing pandas
or the samplers. Each registry keys its entries by these names and refuses, when imported, an
entry these names lack or a name without an entry (``registry``).
"""

POOLINGS = ("complete", "none", "partial")
FAMILIES = (
    "bernoulli",
    "binomial",
    "beta_binomial",
    "poisson",
    "negativebinomial",
    "gaussian",
    "t",
    "gamma",
    "lognormal",
    "beta",
    "cumulative",
    "zero_inflated_poisson",
    "zero_inflated_negativebinomial",
    "hurdle_poisson",
    "hurdle_negativebinomial",
)
SIMULATED_FAMILIES = FAMILIES[1:]  # bernoulli rows are simulated as binomial counts of one
BINARY_LINKS = ("logit", "probit", "cloglog")  # what glm, lme4 and brms offer for probabilities
BACKENDS = ("numpyro", "nutpie", "pymc")
PARAMETERIZATIONS = ("auto", "centered", "noncentered")
CROSS_VALIDATIONS = ("group",)
LOO_FIXES = ("refit", "moment_match", "off")  # how compare fixes LOO terms with Pareto k > 0.7


def registry(names: tuple[str, ...], entries: dict, what: str) -> dict:
    """``entries`` in the order of ``names``, refusing a name without an entry or an entry
    without a name.

    Parameters
    ----------
    names : tuple of str
        The choice names (this module's).
    entries : dict
        Name -> entry, as a registry writes them.
    what : str
        What the entries are, for the error.

    Returns
    -------
    dict

    Raises
    ------
    RuntimeError
        The two disagree (a programming error: add the name here, or the entry there).

    Examples
    --------
    >>> registry(("a", "b"), {"b": 2, "a": 1}, "letters")
    {'a': 1, 'b': 2}
    """
    if set(names) != set(entries):
        raise RuntimeError(
            f"{what}: names without an entry {sorted(set(names) - set(entries))}, "
            f"entries without a name in poolwise.choices {sorted(set(entries) - set(names))}"
        )
    return {name: entries[name] for name in names}
