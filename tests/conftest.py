"""Shared fixtures: the chapter's data from ../shared/data, one small seeded comparison, and the rule
that a test which samples is marked slow (by its fixtures, or it fails in the fast run)."""

import gc
import sys
import warnings

import matplotlib
import pytest

matplotlib.use("Agg")

import poolwise as pw  # noqa: E402

from helpers import GYM_FORMULA, shared_csv  # noqa: E402


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
        # 1,000 warm-up draws: with 500, NumPyro's adaptation windows are short enough that a
        # chain of the non-centred slope funnel can end badly adapted (divergences, r_hat 1.02).
        return pw.compare(GYM_FORMULA, gym, draws=500, tune=1000, chains=2, seed=11)


# Fixtures that run MCMC: a test that uses one is slow whether or not it says so.
SAMPLING_FIXTURES = {"gym_study", "gym_cv_study", "gym_none_fit", "over_fit"}


def pytest_collection_modifyitems(items):
    """Mark slow every test that uses a sampling fixture, so `-m "not slow"` never samples."""
    for item in items:
        if SAMPLING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
    """After each test module, drop JAX's in-memory compiled programs: one pytest process compiles
    hundreds of models, and a full run once aborted inside XLA (serialising an executable for the
    persistent cache) late in the run. What a later module needs is recompiled or read back from
    the persistent cache."""
    yield
    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    gc.collect()


@pytest.fixture(autouse=True)
def refuse_sampling_unless_slow(request, monkeypatch):
    """A test not marked slow that reaches a sampler fails at once, saying how to fix it."""
    if request.node.get_closest_marker("slow"):
        return
    from poolwise import adapter, program

    def refuse(*args, **kwargs):
        pytest.fail("this test runs MCMC: mark it @pytest.mark.slow, or use the tiny saved study (helpers.TINY)")

    monkeypatch.setattr(adapter, "sample", refuse)
    monkeypatch.setattr(program.Program, "run", refuse)
