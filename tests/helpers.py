"""What several test files share, defined once: the chapter's formula, the saved tiny study, the
outside data's location and a Fit with known posteriors (no sampler)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from poolwise.formulas import parse_formula
from poolwise.results import Fit

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"
TINY = HERE / "data" / "tiny_study"  # a saved compare of the franchise with tiny draws (made once, never regenerated)
GYM_FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"


def shared_csv(name: str) -> Path:
    """Path of an outside data file; skip (or, on CI, fail) when ../shared/data is absent."""
    path = SHARED / name
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing on CI; CI must have ../shared/data beside the checkout")
        pytest.skip(f"{path} not found: the chapter's data live in ../shared/data beside the checkout")
    return path


def fake_fit(data: pd.DataFrame, pooling: str, *, draws: int = 4000, seed: int = 0) -> Fit:
    """A Fit whose posterior is drawn from known distributions and named as Bambi names it: no MCMC,
    so these tests run in milliseconds and their exact answers are known."""
    rng = np.random.default_rng(seed)
    labels = [str(g) for g in sorted(data["gymID"].unique())]
    scalar = ("chain", "draw")

    def normal(mean, sd, *extra):
        return rng.normal(mean, sd, (1, draws, *extra))

    coords = {"chain": [0], "draw": np.arange(draws)}
    if pooling == "complete":
        variables = {"Intercept": (scalar, normal(-1.15, 0.05)), "yogaStretch": (scalar, normal(0.5, 0.08))}
    elif pooling == "partial":
        dims = (*scalar, "gymID__factor_dim")
        coords["gymID__factor_dim"] = labels
        variables = {
            "Intercept": (scalar, normal(-1.2, 0.3)),
            "yogaStretch": (scalar, normal(0.5, 0.2)),
            "1|gymID_sigma": (scalar, np.abs(normal(1.0, 0.2))),
            "yogaStretch|gymID_sigma": (scalar, np.abs(normal(0.4, 0.2))),
            "1|gymID": (dims, normal(0, 1.0, len(labels))),
            "yogaStretch|gymID": (dims, normal(0, 0.4, len(labels))),
        }
    else:
        coords |= {"C(gymID)_dim": labels, "C(gymID):yogaStretch_dim": labels}
        variables = {
            "C(gymID)": ((*scalar, "C(gymID)_dim"), normal(-1.2, 0.5, len(labels))),
            "C(gymID):yogaStretch": ((*scalar, "C(gymID):yogaStretch_dim"), normal(0.4, 0.5, len(labels))),
        }
    posterior = xr.Dataset(variables, coords=coords)
    return Fit(
        pooling,
        GYM_FORMULA,
        parse_formula(GYM_FORMULA, data),
        {},
        xr.DataTree.from_dict({"posterior": posterior}),
        data,
    )
