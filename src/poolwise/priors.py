"""Priors as strings: parse ``"Normal(mu=0, sigma=1)"``, validate terms, and the named presets."""

import ast
from collections.abc import Mapping

from poolwise.errors import PoolwiseError
from poolwise.formulas import FormulaSpec

PRESETS = ("chapter",)
Priors = str | Mapping[str, str] | None


def chapter_priors(spec: FormulaSpec, pooling: str) -> dict[str, str]:
    """The textbook priors, on the scale the textbook means (predictors uncentred, rate at x = 0).

    Intercept Normal(-1, 1.5); slopes Normal(0, 0.75); partial pooling's group sd of the intercept
    Uniform(0, 3) and of each slope Uniform(0, 1.5). No pooling gives each group the intercept's
    and slopes' priors directly.
    """
    intercept, slope = "Normal(mu=-1, sigma=1.5)", "Normal(mu=0, sigma=0.75)"
    priors = {term: slope for term in spec.common}
    if spec.intercept:
        priors["Intercept"] = intercept
    if pooling == "none":
        group = f"C({spec.group})"
        for term in spec.varying:
            priors.pop(term, None)
            priors[f"{group}:{term}"] = slope
        if spec.group_intercept:
            priors.pop("Intercept", None)
            priors[group] = intercept
    elif pooling == "partial":
        if spec.group_intercept:
            priors[f"1|{spec.group}"] = "Normal(mu=0, sigma=Uniform(lower=0, upper=3))"
        for term in spec.varying:
            priors[f"{term}|{spec.group}"] = "Normal(mu=0, sigma=Uniform(lower=0, upper=1.5))"
    return priors


def prior_strings(priors: Priors, spec: FormulaSpec, pooling: str) -> dict[str, str]:
    """Resolve ``priors`` (None, a preset name, or a term -> distribution dict that may name a
    ``"preset"`` to start from) into term -> distribution strings for one pooling model."""
    if priors is None:
        return {}
    if isinstance(priors, str):
        priors = {"preset": priors}
    if not isinstance(priors, Mapping):
        raise PoolwiseError(f"priors must be a preset name or a dict of term -> distribution string, not a {type(priors).__name__}")
    for term, text in priors.items():
        if not (isinstance(term, str) and isinstance(text, str)):
            raise PoolwiseError(
                f"priors map term names to distribution strings, got {type(term).__name__} -> {type(text).__name__}; "
                "write e.g. {'x': 'Normal(mu=0, sigma=1)'}"
            )
    priors = dict(priors)
    preset = priors.pop("preset", None)
    resolved: dict[str, str] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise PoolwiseError(f"unknown prior preset {preset!r}; use one of: {', '.join(PRESETS)}, or term=distribution strings")
        resolved = chapter_priors(spec, pooling)
    resolved.update(priors)
    return resolved


def parse_prior(text: str):
    """``"Normal(mu=0, sigma=HalfNormal(sigma=1))"`` -> ``bambi.Prior``; distributions must be PyMC's."""
    import bambi as bmb

    if not isinstance(text, str):
        raise PoolwiseError(f"a prior must be a string such as 'Normal(mu=0, sigma=1)', not a {type(text).__name__}")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise PoolwiseError(f"cannot read prior {text!r}; write it as Normal(mu=0, sigma=1)") from None
    return _to_prior(node, text, bmb)


def _to_prior(node: ast.expr, text: str, bmb):
    import pymc as pm

    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise PoolwiseError(f"cannot read prior {text!r}; write it as Normal(mu=0, sigma=1)")
    name = node.func.id
    dist = getattr(pm, name, None)
    if not (isinstance(dist, type) and issubclass(dist, pm.Distribution)):
        raise PoolwiseError(f"unknown prior distribution {name!r} in {text!r}; use a PyMC distribution such as Normal, HalfNormal, StudentT, Uniform, Flat")
    if node.args:
        raise PoolwiseError(f"prior {text!r} has unnamed arguments; name them, e.g. Normal(mu=0, sigma=1)")
    kwargs = {}
    for keyword in node.keywords:
        value = keyword.value
        if keyword.arg is None:  # Normal(**params)
            raise PoolwiseError(f"prior {text!r} has unnamed arguments; name them, e.g. Normal(mu=0, sigma=1)")
        if isinstance(value, ast.Call):
            kwargs[keyword.arg] = _to_prior(value, text, bmb)
        else:
            try:
                kwargs[keyword.arg] = ast.literal_eval(value)
            except (ValueError, TypeError):  # TypeError: an unhashable key such as {[]: 1}
                raise PoolwiseError(f"prior {text!r}: {keyword.arg} must be a number or a distribution") from None
    return bmb.Prior(name, **kwargs)


def check_terms(priors: Mapping[str, str], known: set[str], model: str) -> None:
    """Every prior must name a term of the model; say which terms there are if not."""
    for term in priors:
        if term not in known:
            raise PoolwiseError(
                f"unknown prior term {term!r} for the {model} model; its terms are: {', '.join(sorted(known))}"
            )
