"""The outcome families poolwise supports, as data: link, scale, units and how to simulate outcomes.

Every stage reads a family from this registry instead of assuming binomial counts. A family's
*mean response* is what tables, decisions and figures call the rate: a probability (bernoulli,
binomial, beta-binomial), events per unit of exposure (poisson, negative binomial; per row without
an offset) or the mean value (gaussian, t, gamma). The beta-binomial is the binomial with overdispersion:
each row's probability varies around its mean, the less the larger ``kappa`` is. Plain
NumPy/SciPy: no Bambi here.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from poolwise.errors import PoolwiseError


@dataclass(frozen=True)
class Family:
    """One outcome family.

    Parameters
    ----------
    name : str
        The family's name, as Bambi spells it (a key of ``FAMILIES``).
    bambi : str
        The family Bambi fits (bernoulli rows are aggregated and fitted as binomial counts).
    link : str
        The link of the mean: ``"logit"``, ``"log"`` or ``"identity"``.
    scale : str
        What the mean response is, in words: a probability, events per unit of exposure, a mean.
    aux : tuple of str
        The family's own parameters besides the mean, as Bambi names them (``"alpha"``, ``"sigma"``).
    ratio : bool
        Whether a ratio of two means is meaningful (the mean is positive).
    counts : bool
        Whether outcomes are counts (whole numbers).
    trials : bool
        Whether outcomes are successes out of trials (a unit's size is its trials; bernoulli rows
        are aggregated to them).
    aux_priors : tuple of (str, str)
        Each own parameter's default prior; ``{sy}`` stands for the outcome's sd (identity link).
    positive : bool
        Whether outcomes must be > 0 (gamma).
    overdispersed : str, optional
        The family to fit instead when rows vary more than this one allows (binomial:
        beta_binomial; poisson: negativebinomial); None where there is nothing to check
        (``poolwise.dispersion``).

    Examples
    --------
    >>> FAMILIES["poisson"].link, FAMILIES["poisson"].scale
    ('log', 'events per unit of exposure')
    """

    name: str
    bambi: str
    link: str
    scale: str
    aux: tuple[str, ...]
    ratio: bool
    counts: bool
    trials: bool = False
    aux_priors: tuple[tuple[str, str], ...] = ()
    positive: bool = False
    overdispersed: str | None = None

    def inverse(self, eta):
        """The mean response from the linear predictor: the inverse link.

        Parameters
        ----------
        eta : array-like
            Linear predictor values (NumPy or xarray).

        Returns
        -------
        array-like
            ``expit(eta)`` for logit, ``exp(eta)`` for log, ``eta`` itself for identity, of the same type.

        Examples
        --------
        >>> float(FAMILIES["binomial"].inverse(0.0))
        0.5
        """
        if self.link == "logit":
            return expit(eta)
        if self.link == "log":
            return np.exp(eta)
        return eta

    @property
    def probability(self) -> bool:
        """Whether the mean response is a probability (shown in percent, differences in points)."""
        return self.scale == "probability"

    @property
    def inverse_name(self) -> str:
        """The inverse link in words, for figure labels."""
        return {"logit": "inverse logit", "log": "exp", "identity": "identity"}[self.link]

    def linked(self, mean: float | np.ndarray) -> float | np.ndarray:
        """The linear predictor of a mean response (the inverse of ``inverse``).

        Parameters
        ----------
        mean : float or numpy.ndarray
            A mean response on the family's scale, or an array of them.

        Returns
        -------
        float or numpy.ndarray
            ``logit(mean)``, ``log(mean)`` or ``mean``, a float for a scalar ``mean``.

        Examples
        --------
        >>> FAMILIES["binomial"].linked(0.5)
        0.0
        """
        if self.link == "logit":
            value = logit(mean)
        elif self.link == "log":
            value = np.log(mean)
        else:
            value = np.asarray(mean, dtype=float)
        return value if np.ndim(value) else float(value)

    def simulate(
        self, rng: np.random.Generator, mean: np.ndarray, size: float | np.ndarray, aux: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Simulated outcomes of units with mean response ``mean`` and ``size`` each.

        ``size`` is trials (binomial, bernoulli), units of exposure (poisson, negative binomial) or
        observations (gaussian, t, gamma: the outcome is the sum of ``size`` observations).

        Parameters
        ----------
        rng : numpy.random.Generator
            The random number generator.
        mean : numpy.ndarray
            Mean responses.
        size : float or numpy.ndarray
            Each unit's size.
        aux : dict of str to numpy.ndarray
            The family's own parameters (``kappa`` of the beta-binomial, ``alpha`` of the negative
            binomial and the gamma, ``sigma`` of the gaussian and the t, ``nu`` of the t).

        Returns
        -------
        numpy.ndarray
            One outcome per unit.

        Examples
        --------
        >>> import numpy as np
        >>> FAMILIES["poisson"].simulate(np.random.default_rng(0), np.array([2.0]), 10, {}).shape
        (1,)
        """
        if self.name == "beta_binomial":
            # Bambi's BetaBinomial(mu, kappa): each unit's probability is Beta(mu kappa, (1 - mu) kappa).
            kappa = aux["kappa"]
            return rng.binomial(np.asarray(size, dtype=np.int64), rng.beta(mean * kappa, (1 - mean) * kappa))
        if self.trials:
            return rng.binomial(np.asarray(size, dtype=np.int64), mean)
        if self.name == "poisson":
            return rng.poisson(mean * size)
        if self.name == "negativebinomial":
            # Bambi's NegativeBinomial(mu, alpha): variance mu + mu^2 / alpha, a gamma-Poisson mixture.
            alpha = aux["alpha"]
            return rng.poisson(rng.gamma(alpha, mean * size / alpha))
        if self.name == "gamma":
            # Bambi's Gamma(mu, alpha): shape alpha, mean mu; a sum of n is Gamma(n alpha, mean n mu).
            alpha = aux["alpha"]
            return rng.gamma(alpha * size, mean / alpha)
        if self.name == "t":
            # A sum of Student-t observations has no closed form: add each unit's noise term by
            # term (``size`` rounded to whole observations, the mean kept at ``mean * size``), so
            # heavy tails stay heavy for small groups.
            sigma, nu, count = np.broadcast_arrays(aux["sigma"], aux["nu"], np.round(size), np.asarray(mean))[:3]
            total = np.asarray(mean * size, dtype=float)
            for k in range(int(np.max(count, initial=0))):
                total = total + np.where(k < count, sigma * rng.standard_t(nu), 0.0)
            return total
        return rng.normal(mean * size, aux["sigma"] * np.sqrt(size))


# brms's default prior on a precision or shape parameter (beta-binomial phi, gamma shape):
# Bambi's HalfCauchy(1) puts half its mass below 1, strong overdispersion or skew.
BRMS_PRECISION = "Gamma(alpha=0.01, beta=0.01)"
FAMILIES = {
    family.name: family
    for family in (
        Family("bernoulli", "binomial", "logit", "probability", (), True, True, trials=True),
        Family(
            "binomial", "binomial", "logit", "probability", (), True, True, trials=True, overdispersed="beta_binomial"
        ),
        Family(
            "beta_binomial",
            "beta_binomial",
            "logit",
            "probability",
            ("kappa",),
            True,
            True,
            trials=True,
            aux_priors=(("kappa", BRMS_PRECISION),),
        ),
        Family(
            "poisson", "poisson", "log", "events per unit of exposure", (), True, True, overdispersed="negativebinomial"
        ),
        Family(
            "negativebinomial",
            "negativebinomial",
            "log",
            "events per unit of exposure",
            ("alpha",),
            True,
            True,
            aux_priors=(("alpha", "HalfCauchy(beta=1)"),),
        ),
        Family(
            "gaussian",
            "gaussian",
            "identity",
            "mean",
            ("sigma",),
            False,
            False,
            aux_priors=(("sigma", "HalfStudentT(nu=4, sigma={sy})"),),
        ),
        Family(
            "t",
            "t",
            "identity",
            "mean",
            ("sigma", "nu"),
            False,
            False,
            aux_priors=(("sigma", "HalfStudentT(nu=4, sigma={sy})"), ("nu", "Gamma(alpha=2, beta=0.1)")),
        ),
        Family(
            "gamma",
            "gamma",
            "log",
            "mean",
            ("alpha",),
            True,
            False,
            aux_priors=(("alpha", BRMS_PRECISION),),
            positive=True,
        ),
    )
}
NAMES = tuple(FAMILIES)
ALIASES = {
    "betabinomial": "beta_binomial",
    "beta-binomial": "beta_binomial",
    "negbinomial": "negativebinomial",
    "negative_binomial": "negativebinomial",
    "normal": "gaussian",
    "student": "t",
    "student_t": "t",
}


def family(name: str) -> Family:
    """Look a family up by its name (Bambi's spelling) or a common alias.

    Parameters
    ----------
    name : str
        A name of ``FAMILIES`` (``bernoulli``, ``binomial``, ``beta_binomial``, ``poisson``,
        ``negativebinomial``, ``gaussian``, ``t``, ``gamma``) or an alias of ``ALIASES``
        (``betabinomial``, ``beta-binomial``, ``negbinomial``, ``negative_binomial``, ``normal``,
        ``student``, ``student_t``); case and spaces around are ignored.

    Returns
    -------
    Family
        The family's record.

    Raises
    ------
    PoolwiseError
        ``name`` is not a string, or not a supported family.

    Examples
    --------
    >>> family("normal").name
    'gaussian'
    """
    if not isinstance(name, str):
        raise PoolwiseError(f"family must be a name such as 'poisson', not a {type(name).__name__}")
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in FAMILIES:
        raise PoolwiseError(f"unknown or unsupported family {name!r}; use one of: {', '.join(NAMES)}")
    return FAMILIES[key]
