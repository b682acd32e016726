"""The outcome families poolwise supports, as data: link, scale, units and how to simulate outcomes.

Every stage reads a family from this registry instead of assuming binomial counts. A family's
*mean response* is what tables, decisions and figures call the rate: a probability (bernoulli,
binomial, beta-binomial), events per unit of exposure (poisson, negative binomial and their
zero-inflated and hurdle forms; per row without an offset) or the mean value (gaussian, t, gamma,
lognormal, beta). The beta-binomial is the binomial with overdispersion: each row's probability
varies around its mean, the less the larger ``kappa`` is. Zero-inflated and hurdle counts and the
lognormal have a mean response that needs their own parameters as well as the linear predictor
(``Family.mean``). Plain NumPy/SciPy: no Bambi here.
"""

import re
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats
from scipy.special import expit, logit, ndtr, ndtri

from poolwise import choices
from poolwise.choices import BINARY_LINKS, registry
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
        The link of the linear predictor: ``"logit"``, ``"probit"``, ``"cloglog"``, ``"log"`` or
        ``"identity"``; ``inverse`` maps the linear predictor to Bambi's location ``mu``
        (lognormal: ``exp(mu)``, the median).
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
        Each own parameter's default prior; ``{sy}`` stands for the outcome's sd (identity link),
        ``{spread}`` for the intercept prior's scale (widened for uncentred predictors).
    positive : bool
        Whether outcomes must be > 0 (gamma, lognormal).
    unit : bool
        Whether outcomes must lie strictly between 0 and 1 (beta).
    bambi_link : str, optional
        The link Bambi is given, where it is not ``link`` (lognormal: Bambi's ``mu`` is the mean of
        log(y), so Bambi's link is the identity and poolwise's inverse is exp).
    overdispersed : str, optional
        The family to fit instead when rows vary more than this one allows (binomial:
        beta_binomial; poisson: negativebinomial); None where there is nothing to check
        (``poolwise.dispersion``).
    links : tuple of str
        The links the family can also be fitted with (``family(name, link=...)``); the first
        link is ``link``, the default.
    ordinal : bool
        Whether outcomes are ordered categories, written as whole numbers in their order
        (cumulative). The linear predictor is then the location of a latent variable whose
        thresholds cut it into categories, the link names that latent variable's distribution, and
        the mean response is the expected rating over the categories' values (``mean``).

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
    unit: bool = False
    bambi_link: str | None = None
    overdispersed: str | None = None
    links: tuple[str, ...] = ()
    ordinal: bool = False

    def inverse(self, eta):
        """The mean response from the linear predictor: the inverse link.

        Parameters
        ----------
        eta : array-like
            Linear predictor values (NumPy or xarray).

        Returns
        -------
        array-like
            ``expit(eta)`` for logit, the standard normal CDF for probit, ``1 - exp(-exp(eta))``
            for cloglog, ``exp(eta)`` for log, ``eta`` itself for identity, of the same type.

        Examples
        --------
        >>> float(FAMILIES["binomial"].inverse(0.0))
        0.5
        >>> float(family("binomial", link="probit").inverse(1.0))
        0.8413447460685429
        """
        if self.ordinal:  # Bambi's location of an ordinal outcome is the latent one, eta itself
            return eta
        if self.link == "logit":
            return expit(eta)
        if self.link == "probit":
            return ndtr(eta)
        if self.link == "cloglog":
            return -np.expm1(-np.exp(eta))
        if self.link == "log":
            return np.exp(eta)
        return eta

    def mean(self, eta, aux: dict):
        """The mean response from the linear predictor and the family's own parameters.

        Most families' mean response is ``inverse(eta)``. A zero-inflated count's is ``psi * mu``
        (``psi``: the probability a row is not a structural zero); a hurdle count's is
        ``psi * mu / P(count > 0)`` (``psi``: the probability of a non-zero count); a lognormal's
        is ``exp(eta + sigma ** 2 / 2)``; an ordinal rating's is ``v_1 + sum_k (v_k+1 - v_k) P(Y > v_k)``
        with ``P(Y > v_k) = 1 - F(threshold_k - eta)`` over its categories' values ``v`` (``aux``'s
        ``category[k]``; 1 to K without them).

        Parameters
        ----------
        eta : array-like
            Linear predictor values (NumPy or xarray).
        aux : dict of str to array-like
            Draws of the family's own parameters (``aux``), broadcastable against ``eta``; unused
            where the mean does not need them. A vector parameter comes one entry per element
            (``threshold[0]``, ``threshold[1]``, ..., as ``estimates.aux_draws`` gives them).

        Returns
        -------
        array-like
            The mean response, of the type of ``eta``.

        Examples
        --------
        >>> round(float(FAMILIES["zero_inflated_poisson"].mean(0.0, {"psi": 0.25})), 3)
        0.25
        >>> round(float(FAMILIES["hurdle_poisson"].mean(0.0, {"psi": 0.5})), 3)
        0.791
        >>> float(FAMILIES["cumulative"].mean(0.0, {"threshold[0]": 0.0, "threshold[1]": 0.0}))
        2.0
        """
        if self.ordinal:
            cuts = thresholds(aux)
            values = self.share_values(aux)
            steps = zip(values, values[1:], cuts)
            return values[0] + sum((high - low) * (1 - self.cumulative(cut - eta)) for low, high, cut in steps)
        mu = self.inverse(eta)
        if self.name == "lognormal":
            return mu * np.exp(aux["sigma"] ** 2 / 2)
        if self.name.startswith("zero_inflated"):
            return aux["psi"] * mu
        if self.name == "hurdle_poisson":
            return aux["psi"] * mu / -np.expm1(-mu)
        if self.name == "hurdle_negativebinomial":
            return aux["psi"] * mu / -np.expm1(_negative_binomial_log_zero(mu, aux["alpha"]))
        return mu

    @property
    def has_shares(self) -> bool:
        """Whether decisions follow the probability of particular outcomes (``shares``)."""
        return self.ordinal or self.name.startswith(("zero_inflated", "hurdle"))

    def share_values(self, aux: dict) -> list:
        """The outcomes whose probabilities ``shares`` gives: an ordinal's categories, a count's 0.

        Parameters
        ----------
        aux : dict of str to array-like
            The family's own parameters and an ordinal fit's category values
            (``estimates.aux_draws``).

        Returns
        -------
        list
            The outcome values, in the order of ``shares``; empty for other families.

        Examples
        --------
        >>> FAMILIES["hurdle_poisson"].share_values({"psi": 0.5})
        [0]
        """
        if self.ordinal:
            return categories(aux) or list(range(1, len(thresholds(aux)) + 2))
        return [0] if self.has_shares else []

    def shares(self, eta, aux: dict) -> list:
        """The probability of each of ``share_values`` at linear predictor ``eta``.

        An ordinal's ``P(Y = v_k) = F(threshold_k - eta) - F(threshold_k-1 - eta)``, the first from
        0 and the last up to 1; a zero-inflated count's ``P(0) = 1 - psi + psi P_count(0)``
        (Poisson ``exp(-mu)``, negative binomial ``(alpha / (alpha + mu)) ** alpha``); a hurdle's
        ``P(0) = 1 - psi``.

        Parameters
        ----------
        eta : array-like
            Linear predictor values (NumPy or xarray), per unit of exposure for counts.
        aux : dict of str to array-like
            The family's own parameters, thresholds one entry each (``estimates.aux_draws``).

        Returns
        -------
        list of array-like
            One probability per value, of the type of ``eta``; empty for other families.

        Examples
        --------
        >>> [float(p) for p in FAMILIES["cumulative"].shares(0.0, {"threshold[0]": 0.0})]
        [0.5, 0.5]
        >>> [round(float(p), 3) for p in FAMILIES["zero_inflated_poisson"].shares(0.0, {"psi": 0.5})]
        [0.684]
        """
        if self.ordinal:
            below = [self.cumulative(cut - eta) for cut in thresholds(aux)]
            return [below[0], *(high - low for low, high in zip(below, below[1:])), 1 - below[-1]]
        if not self.has_shares:
            return []
        psi = aux["psi"]
        if self.name.startswith("hurdle"):
            return [1 - psi + 0 * eta]
        mu = self.inverse(eta)
        counted = (
            np.exp(-mu) if self.name.endswith("poisson") else np.exp(_negative_binomial_log_zero(mu, aux["alpha"]))
        )
        return [1 - psi + psi * counted]

    def cumulative(self, x):
        """The latent variable's CDF of an ordinal family: logistic (logit) or standard normal (probit).

        Parameters
        ----------
        x : array-like
            Threshold minus linear predictor.

        Returns
        -------
        array-like
            ``P(latent <= x)``, of the type of ``x``.

        Examples
        --------
        >>> float(FAMILIES["cumulative"].cumulative(0.0))
        0.5
        """
        return ndtr(x) if self.link == "probit" else expit(x)

    @property
    def own_mean(self) -> bool:
        """Whether the mean response needs the family's own parameters, not only ``inverse``."""
        return self.ordinal or self.name == "lognormal" or self.name.startswith(("zero_inflated", "hurdle"))

    @property
    def probability(self) -> bool:
        """Whether the mean response is a probability (shown in percent, differences in points)."""
        return self.scale == "probability"

    @property
    def inverse_name(self) -> str:
        """The inverse link in words, for figure labels."""
        names = {"logit": "inverse logit", "probit": "normal CDF", "cloglog": "inverse cloglog", "log": "exp"}
        return names.get(self.link, "identity")

    @property
    def key(self) -> str:
        """The family as specs and saved fits name it: its name, with the link where not the default.

        Examples
        --------
        >>> FAMILIES["binomial"].key, family("binomial", link="probit").key
        ('binomial', 'binomial(probit)')
        """
        return self.name if self.link == FAMILIES[self.name].link else f"{self.name}({self.link})"

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
        if self.ordinal:  # the inverse of ``inverse``: an ordinal's location is eta itself
            value = np.asarray(mean, dtype=float)
        elif self.link == "logit":
            value = logit(mean)
        elif self.link == "probit":
            value = ndtri(mean)
        elif self.link == "cloglog":
            value = np.log(-np.log1p(-np.asarray(mean, dtype=float)))
        elif self.link == "log":
            value = np.log(mean)
        else:
            value = np.asarray(mean, dtype=float)
        return value if np.ndim(value) else float(value)

    def simulate(
        self, rng: np.random.Generator, mean: np.ndarray, size: float | np.ndarray, aux: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Simulated outcomes of units with mean response ``mean`` and ``size`` each.

        ``size`` is trials (binomial, bernoulli), units of exposure (the count families) or
        observations (gaussian, t, gamma, lognormal, beta: the outcome is the sum of ``size``
        observations).

        Parameters
        ----------
        rng : numpy.random.Generator
            The random number generator.
        mean : numpy.ndarray
            Bambi's location ``mu`` of each unit, ``inverse`` of its linear predictor (the mean
            response itself except for zero-inflated, hurdle and lognormal outcomes).
        size : float or numpy.ndarray
            Each unit's size.
        aux : dict of str to numpy.ndarray
            The family's own parameters (``kappa`` of the beta-binomial and the beta, ``alpha`` of
            the negative binomial and the gamma, ``sigma`` of the gaussian, the t and the lognormal,
            ``nu`` of the t, ``psi`` of zero-inflated and hurdle counts).

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
            # A sum of Student-t observations has no closed form: add them one by one, the mean kept
            # at ``mean * size``, so heavy tails stay heavy for small groups.
            noise = _summed(lambda shape: aux["sigma"] * rng.standard_t(aux["nu"], shape), size, mean, aux)
            return mean * size + noise
        if self.name == "lognormal":
            return _summed(lambda shape: mean * np.exp(aux["sigma"] * rng.standard_normal(shape)), size, mean, aux)
        if self.name == "beta":
            kappa = aux["kappa"]
            return _summed(lambda shape: rng.beta(mean * kappa, (1 - mean) * kappa, shape), size, mean, aux)
        if self.name.startswith(("zero_inflated", "hurdle")):
            return self._zero_or_count(rng, mean * size, aux)
        if self.ordinal:
            return _summed(lambda shape: self._category(rng, mean, aux, shape), size, mean, aux)
        return rng.normal(mean * size, aux["sigma"] * np.sqrt(size))

    def _zero_or_count(self, rng: np.random.Generator, mu: np.ndarray, aux: dict[str, np.ndarray]) -> np.ndarray:
        """Zero-inflated or hurdle counts of location ``mu``: zero unless a ``psi`` coin says count."""
        mu, psi = np.broadcast_arrays(np.asarray(mu, dtype=float), aux["psi"])
        if self.name == "zero_inflated_negativebinomial":
            alpha = aux["alpha"]
            counts = rng.poisson(rng.gamma(alpha, mu / alpha))
        elif self.name == "zero_inflated_poisson":
            counts = rng.poisson(mu)
        elif self.name == "hurdle_negativebinomial":
            counts = positive_negative_binomial(rng, mu, aux["alpha"])
        else:
            # A hurdle's non-zero counts are Poisson truncated at zero: invert its CDF above P(0).
            # (At mu ~ 0 the quantile is 1 and ppf infinite: the count above zero is then 1.)
            counts = np.nan_to_num(stats.poisson(mu).ppf(rng.uniform(np.exp(-mu), 1.0)), posinf=1.0)
        return np.where(rng.random(mu.shape) < psi, counts, 0).astype(np.int64)

    def _category(self, rng: np.random.Generator, eta: np.ndarray, aux: dict, shape: tuple) -> np.ndarray:
        """Ordinal ratings of latent location ``eta``: the category above the thresholds the latent draw passes."""
        noise = rng.standard_normal(shape) if self.link == "probit" else rng.logistic(size=shape)
        latent = eta + noise
        cuts = thresholds(aux)
        values = self.share_values(aux)
        return values[0] + sum((high - low) * (latent > cut) for low, high, cut in zip(values, values[1:], cuts))


def _negative_binomial_log_zero(mu, alpha):
    """log P(0) of Bambi's NegativeBinomial(mu, alpha): alpha log(alpha / (alpha + mu)), written
    so that it stays exact as mu -> 0."""
    return -alpha * np.log1p(mu / alpha)


def positive_negative_binomial(rng: np.random.Generator, mu, alpha) -> np.ndarray:
    """Negative binomial counts of mean ``mu`` and shape ``alpha`` truncated at zero: a hurdle's
    counts above zero, zeros redrawn (up to 200 times; a count part so small that they stay 0
    counts 1, its smallest count above zero).

    Parameters
    ----------
    rng : numpy.random.Generator
        The random number generator.
    mu, alpha : array-like
        The untruncated count's mean and shape, broadcast together.

    Returns
    -------
    numpy.ndarray
        Counts >= 1, int64, of the broadcast shape.

    Examples
    --------
    >>> import numpy as np
    >>> int(positive_negative_binomial(np.random.default_rng(0), np.full(1000, 0.5), 2.0).min())
    1
    """
    mu, alpha = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(alpha, dtype=float))
    shape, alpha = mu.shape, alpha.reshape(-1)
    p = alpha / (alpha + mu.reshape(-1))
    counts = rng.negative_binomial(alpha, p)
    for _ in range(200):
        zero = counts == 0
        if not zero.any():
            break
        counts[zero] = rng.negative_binomial(alpha[zero], p[zero])
    return np.maximum(counts, 1).astype(np.int64).reshape(shape)


def thresholds(aux: dict) -> list:
    """An ordinal family's thresholds from ``aux``, in order (``threshold[0]``, ``threshold[1]``, ...).

    Parameters
    ----------
    aux : dict of str to array-like
        The family's own parameters, one entry per threshold.

    Returns
    -------
    list of array-like
        The thresholds, lowest first.

    Examples
    --------
    >>> thresholds({"threshold[1]": 2.0, "threshold[0]": -1.0})
    [-1.0, 2.0]
    """
    return _elements(aux, "threshold")


def categories(aux: dict) -> list:
    """An ordinal outcome's category values from ``aux`` (``category[0]``, ...), lowest first.

    Parameters
    ----------
    aux : dict of str to array-like
        The family's own parameters and, for an ordinal fit, its categories' values
        (``estimates.aux_draws``).

    Returns
    -------
    list of array-like
        The values; empty where ``aux`` has none.

    Examples
    --------
    >>> categories({"category[0]": 0, "category[1]": 4})
    [0, 4]
    """
    return _elements(aux, "category")


def _elements(aux: dict, name: str) -> list:
    found = [key for key in aux if key.startswith(f"{name}[")]
    return [aux[key] for key in sorted(found, key=lambda key: int(key[len(name) + 1 : -1]))]


def _summed(draw, size: float | np.ndarray, mean: np.ndarray, aux: dict[str, np.ndarray]) -> np.ndarray:
    """The sum of ``size`` (rounded to whole observations) independent draws ``draw(shape)`` per unit."""
    count = np.round(np.asarray(size, dtype=float))
    shape = np.broadcast_shapes(np.shape(mean), np.shape(count), *(np.shape(value) for value in aux.values()))
    total = np.zeros(shape)
    for k in range(int(np.max(count, initial=0))):
        total = total + np.where(k < count, draw(shape), 0.0)
    return total


# brms's default prior on a precision or shape parameter (beta-binomial phi, gamma shape):
# Bambi's HalfCauchy(1) puts half its mass below 1, strong overdispersion or skew.
BRMS_PRECISION = "Gamma(alpha=0.01, beta=0.01)"
NEGATIVE_BINOMIAL_SHAPE = "HalfCauchy(beta=1)"
# brms's beta(1, 1) on the zero-inflation and hurdle probabilities (Bambi's psi is 1 minus brms's
# zi and hu, and the uniform is symmetric).
UNIFORM = "Beta(alpha=1, beta=1)"
FAMILIES = registry(
    choices.FAMILIES,
    {
        family.name: family
        for family in (
            Family("bernoulli", "binomial", "logit", "probability", (), True, True, trials=True, links=BINARY_LINKS),
            Family(
                "binomial",
                "binomial",
                "logit",
                "probability",
                (),
                True,
                True,
                trials=True,
                overdispersed="beta_binomial",
                links=BINARY_LINKS,
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
                links=BINARY_LINKS,
            ),
            Family(
                "poisson",
                "poisson",
                "log",
                "events per unit of exposure",
                (),
                True,
                True,
                overdispersed="negativebinomial",
            ),
            Family(
                "negativebinomial",
                "negativebinomial",
                "log",
                "events per unit of exposure",
                ("alpha",),
                True,
                True,
                aux_priors=(("alpha", NEGATIVE_BINOMIAL_SHAPE),),
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
            Family(
                "lognormal",
                "lognormal",
                "log",
                "mean",
                ("sigma",),
                True,
                False,
                aux_priors=(("sigma", "HalfStudentT(nu=4, sigma={sy})"),),
                positive=True,
                bambi_link="identity",
            ),
            Family(
                "beta",
                "beta",
                "logit",
                "mean",
                ("kappa",),
                True,
                False,
                aux_priors=(("kappa", BRMS_PRECISION),),
                unit=True,
            ),
            Family(
                "cumulative",
                "cumulative",
                "logit",
                "expected rating",
                ("threshold",),
                False,
                False,
                # brms's student_t(3, 0, 2.5) is on the thresholds at the predictors' means; here they are
                # at x = 0, so the scale widens as the intercept's does ({spread}).
                aux_priors=(("threshold", "StudentT(nu=3, mu=0, sigma={spread})"),),
                ordinal=True,
                links=("logit", "probit"),
            ),
            *(
                Family(
                    f"{kind}_{counts}",
                    f"{kind}_{counts}",
                    "log",
                    # A hurdle's mean is not proportional to exposure, so it takes no offset.
                    "events per unit of exposure" if kind == "zero_inflated" else "mean count per row",
                    (*(("alpha",) if counts == "negativebinomial" else ()), "psi"),
                    True,
                    True,
                    aux_priors=(
                        *((("alpha", NEGATIVE_BINOMIAL_SHAPE),) if counts == "negativebinomial" else ()),
                        ("psi", UNIFORM),
                    ),
                )
                for kind, counts in (
                    ("zero_inflated", "poisson"),
                    ("zero_inflated", "negativebinomial"),
                    ("hurdle", "poisson"),
                    ("hurdle", "negativebinomial"),
                )
            ),
        )
    },
    "families",
)
NAMES = tuple(FAMILIES)
# "binomial(probit)" as Family.key writes it, or R's binomial(link = "probit").
_WITH_LINK = re.compile(r"""(?P<family>[a-z_-]+)\s*\(\s*(?:link\s*=\s*)?["']?(?P<link>[a-z]+)["']?\s*\)""")
ALIASES = {
    "betabinomial": "beta_binomial",
    "beta-binomial": "beta_binomial",
    "negbinomial": "negativebinomial",
    "negative_binomial": "negativebinomial",
    "normal": "gaussian",
    "student": "t",
    "student_t": "t",
    "zip": "zero_inflated_poisson",
    "zinb": "zero_inflated_negativebinomial",
    "zero_inflated_negbinomial": "zero_inflated_negativebinomial",
    "hurdle_negbinomial": "hurdle_negativebinomial",
}


def family(name: str, link: str | None = None) -> Family:
    """Look a family up by its name (Bambi's spelling) or a common alias, with its link.

    Parameters
    ----------
    name : str
        A name of ``FAMILIES`` (``bernoulli``, ``binomial``, ``beta_binomial``, ``poisson``,
        ``negativebinomial``, ``gaussian``, ``t``, ``gamma``, ``lognormal``, ``beta``,
        ``zero_inflated_poisson``, ``zero_inflated_negativebinomial``, ``hurdle_poisson``,
        ``hurdle_negativebinomial``) or an
        alias of ``ALIASES`` (``betabinomial``, ``beta-binomial``, ``negbinomial``,
        ``negative_binomial``, ``normal``, ``student``, ``student_t``, ``zip``, ``zinb``,
        ``zero_inflated_negbinomial``, ``hurdle_negbinomial``); case and spaces around are ignored. A link may follow in
        parentheses, as ``Family.key`` writes it and R spells it: ``binomial(probit)``,
        ``binomial(link = "probit")``.
    link : str, optional
        The link, one of the family's ``links`` (bernoulli, binomial, beta_binomial: logit,
        probit, cloglog); default: the family's own (or the one in ``name``).

    Returns
    -------
    Family
        The family's record, with ``link`` set.

    Raises
    ------
    PoolwiseError
        ``name`` is not a string, not a supported family, or the link is not one the family has.

    Examples
    --------
    >>> family("normal").name
    'gaussian'
    >>> family('binomial(link = "cloglog")').key
    'binomial(cloglog)'
    """
    if not isinstance(name, str):
        raise PoolwiseError(f"family must be a name such as 'poisson', not a {type(name).__name__}")
    text = name.strip().lower()
    match = _WITH_LINK.fullmatch(text)
    if match:
        text, named = match["family"], match["link"]
        if link is not None and link.strip().lower() != named:
            raise PoolwiseError(f"family {name!r} names the link {named}, and link is {link!r}; give the link once")
        link = named
    key = ALIASES.get(text, text)
    if key not in FAMILIES:
        raise PoolwiseError(f"unknown or unsupported family {name!r}; use one of: {', '.join(NAMES)}")
    found = FAMILIES[key]
    if link is None:
        return found
    if not isinstance(link, str) or link.strip().lower() not in (found.links or (found.link,)):
        choices = ", ".join(found.links or (found.link,))
        raise PoolwiseError(f"family {found.name} has no link {link!r}; use one of: {choices}")
    return replace(found, link=link.strip().lower())
