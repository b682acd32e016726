"""Shared fixtures: the chapter's data from ../shared/data and one small seeded comparison."""

import os
import warnings
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

import poolwise as pw  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GYM_FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"


def shared_csv(name: str) -> Path:
    """Path of an outside data file; skip (or, on CI, fail) when ../shared/data is absent."""
    path = SHARED / name
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing on CI; CI must have ../shared/data beside the checkout")
        pytest.skip(f"{path} not found: the chapter's data live in ../shared/data beside the checkout")
    return path


@pytest.fixture(scope="session")
def gym():
    return pw.read_data(shared_csv("gym.csv"))


@pytest.fixture(scope="session")
def email():
    return pw.read_data(shared_csv("email_opens.csv"))


@pytest.fixture(scope="session")
def gym_study(gym):
    """The three models on gym.csv with small draws: shared by every test that needs posteriors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        return pw.compare(GYM_FORMULA, gym, draws=500, tune=500, chains=2, seed=11)
