"""The outcome families poolwise supports, as data: link, scale, units and how to simulate outcomes.

Every stage reads a family from this registry instead of assuming binomial counts. A family's
*mean response* is what tables, decisions and figures call the rate: a probability (bernoulli,
binomial), events per unit of exposure (poisson, negative binomial; per row without an offset) or
the mean value (gaussian). Plain NumPy/SciPy: no Bambi here.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from poolwise.errors import PoolwiseError


@dataclass(frozen=True)
class Family:
    """One outcome family.

    ``bambi`` is the family Bambi fits (bernoulli rows are aggregated and fitted as binomial
    counts); ``link`` the link of the mean; ``aux`` the family's own parameters besides the mean
    (Bambi's names); ``ratio`` whether a ratio of two means is meaningful (a positive mean).
    """

    name: str
    bambi: str
    link: str
    scale: str
    aux: tuple[str, ...]
    ratio: bool
    counts: bool

    def inverse(self, eta):
        """The mean response from the linear predictor (works on NumPy and xarray)."""
        if self.link == "logit":
            return expit(eta)
        if self.link == "log":
            return np.exp(eta)
        return eta

    @property
    def inverse_name(self) -> str:
        """The inverse link in words, for figure labels."""
        return {"logit": "inverse logit", "log": "exp", "identity": "identity"}[self.link]

    def linked(self, mean: float) -> float:
        """The linear predictor of a mean response (the inverse of ``inverse``)."""
        if self.link == "logit":
            return float(logit(mean))
        if self.link == "log":
            return float(np.log(mean))
        return float(mean)

    def simulate(
        self, rng: np.random.Generator, mean: np.ndarray, size: float | np.ndarray, aux: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Outcomes of units with mean response ``mean`` and ``size`` trials / exposure /
        observations each; a gaussian outcome is the sum of ``size`` observations."""
        if self.name in ("binomial", "bernoulli"):
            return rng.binomial(np.asarray(size, dtype=np.int64), mean)
        if self.name == "poisson":
            return rng.poisson(mean * size)
        if self.name == "negativebinomial":
            # Bambi's NegativeBinomial(mu, alpha): variance mu + mu^2 / alpha, a gamma-Poisson mixture.
            alpha = aux["alpha"]
            return rng.poisson(rng.gamma(alpha, mean * size / alpha))
        return rng.normal(mean * size, aux["sigma"] * np.sqrt(size))


FAMILIES = {
    family.name: family
    for family in (
        Family("bernoulli", "binomial", "logit", "probability", (), True, True),
        Family("binomial", "binomial", "logit", "probability", (), True, True),
        Family("poisson", "poisson", "log", "events per unit of exposure", (), True, True),
        Family("negativebinomial", "negativebinomial", "log", "events per unit of exposure", ("alpha",), True, True),
        Family("gaussian", "gaussian", "identity", "mean", ("sigma",), False, False),
    )
}
NAMES = tuple(FAMILIES)
ALIASES = {"negbinomial": "negativebinomial", "negative_binomial": "negativebinomial", "normal": "gaussian"}


def family(name: str) -> Family:
    """Look a family up by its name (Bambi's spelling) or a common alias."""
    if not isinstance(name, str):
        raise PoolwiseError(f"family must be a name such as 'poisson', not a {type(name).__name__}")
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in FAMILIES:
        raise PoolwiseError(f"unknown or unsupported family {name!r}; use one of: {', '.join(NAMES)}")
    return FAMILIES[key]
