"""The automatic rescue of a default fit whose chains diverged or disagree: the rule on made-up
draws (fast), and a real diverging fit sampled again, shown in the summary and the saved settings."""

import json
import re

import numpy as np
import pytest
from arviz_base import from_dict
from typer.testing import CliRunner

from poolwise.cli import app
from poolwise.fitting import rescue_step

from helpers import shared_csv


def draws(*, divergent: int = 0, offset: float = 0.0):
    """Four chains of 1,000 standard normal draws, chain k shifted by k * offset."""
    rng = np.random.default_rng(0)
    value = rng.normal(size=(4, 1000)) + offset * np.arange(4)[:, None]
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging.flat[:divergent] = True
    return from_dict({"posterior": {"a": value}, "sample_stats": {"diverging": diverging}})


def test_divergences_at_the_defaults_raise_the_target_acceptance_once_then_again():
    first = rescue_step(draws(divergent=3), draws=1000, tune=1000, chains=4, target_accept=None)
    assert first == (
        {"target_accept": 0.95},
        "3 divergent transitions at target acceptance 0.8; sampled again with target acceptance 0.95 "
        "(automatic, once, at the default draws, tune and chains)",
    )
    assert rescue_step(draws(divergent=1), draws=1000, tune=1000, chains=4, target_accept=0.95)[0] == {
        "target_accept": 0.99
    }
    assert rescue_step(draws(divergent=1), draws=1000, tune=1000, chains=4, target_accept=0.99) is None


def test_chains_that_disagree_get_twice_the_warm_up_and_clean_chains_nothing():
    changes, why = rescue_step(draws(offset=0.5), draws=1000, tune=1000, chains=4, target_accept=None)
    assert changes == {"tune": 2000}
    assert re.fullmatch(r"r_hat up to 1\.\d{3} after 1000 warm-up draws; sampled again with 2000 \(.*\)", why)
    assert rescue_step(draws(), draws=1000, tune=1000, chains=4, target_accept=None) is None


@pytest.mark.parametrize("settings", [(500, 1000, 4), (1000, 2000, 4), (1000, 1000, 2)])
def test_settings_the_user_chose_are_never_changed(settings):
    chosen = dict(zip(("draws", "tune", "chains"), settings))
    assert rescue_step(draws(divergent=5, offset=0.5), **chosen, target_accept=None) is None


@pytest.mark.slow
def test_a_diverging_default_fit_is_sampled_again_and_says_so(tmp_path):
    """The gym's partial pooling forced centred diverges at target acceptance 0.8 (the funnel of
    12 gyms): poolwise samples it again at 0.95 and says so in the warning, the summary, the
    JSON and the saved fit's settings."""
    runner = CliRunner()
    formula = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)"
    saved = tmp_path / "partial.nc"
    result = runner.invoke(
        app,
        ["fit", str(shared_csv("gym.csv")), formula, "--parameterization", "centered", "--seed", "1", "--json"]
        + ["--out", str(saved)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rescue = json.loads(result.stdout)["settings"]["rescue"]
    found = re.fullmatch(
        r"(\d+) divergent transitions at target acceptance 0\.8; sampled again with target acceptance 0\.95 \(.*\)",
        rescue,
    )
    assert found, rescue
    assert f"Partial pooling: {rescue}" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["settings"]["target_accept"] == 0.95
    assert summary["divergences"] < int(found.group(1))  # smaller steps: fewer divergences
    shown = runner.invoke(app, ["show", str(saved)], catch_exceptions=False)
    assert f"Sampled twice: {rescue}." in " ".join(shown.stdout.split())
