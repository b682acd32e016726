"""Categorical treatments (A/B/C tests) and several grouping factors, end to end (slow): a
simulated three-arm test against its truth, and the CLI on a two-factor design."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

import poolwise as pw
from poolwise.cli import app

pytestmark = pytest.mark.slow
ARMS = {"A": 0.0, "B": 0.35, "C": 0.15}  # logit effects against A: B is best


def three_arm_test(seed: int, stores: int = 24) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every store runs every arm for two weeks; store intercepts ~ N(-1.2, 0.5)."""
    rng = np.random.default_rng(seed)
    rows = []
    for store in range(stores):
        base = rng.normal(-1.2, 0.5)
        for arm, effect in ARMS.items():
            for week in (1, 2):
                n = int(rng.integers(60, 140))
                rows.append((f"s{store}", week, arm, n, int(rng.binomial(n, expit(base + effect)))))
    truth = {arm: float(expit(-1.2 + effect) - expit(-1.2)) for arm, effect in ARMS.items() if arm != "A"}
    return pd.DataFrame(rows, columns=["store", "week", "variant", "visitors", "orders"]), truth


def test_three_arms_recover_their_differences_and_the_best_arm():
    picked, covered = 0, 0
    for seed in (1, 2, 3):
        data, truth = three_arm_test(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pw.PoolwiseWarning)
            fit = pw.fit("p(orders, visitors) ~ variant + (1|store)", data, draws=500, tune=500, chains=2, seed=seed)
        decision = pw.decide(fit, seed=seed)
        assert decision.reference == "A" and decision.arms == ["B", "C"]
        typical = decision.typical[decision.typical["quantity"] == "difference"].set_index("arm")
        covered += sum(typical.loc[arm, "lower"] <= value <= typical.loc[arm, "upper"] for arm, value in truth.items())
        best = decision.best[decision.best["scope"] == "typical"].set_index("level")["p_best"]
        assert best.sum() == pytest.approx(1.0)
        picked += best.idxmax() == "B"
    assert covered >= 5 and picked >= 2, (covered, picked)


def test_cli_on_a_three_arm_test_and_on_crossed_factors(tmp_path):
    runner = CliRunner()
    data, _ = three_arm_test(7, stores=10)
    path = tmp_path / "abc.csv"
    data.to_csv(path, index=False)
    common = ["--draws", "200", "--tune", "200", "--chains", "2", "--seed", "1"]
    result = runner.invoke(
        app,
        [
            "compare",
            str(path),
            "p(orders, visitors) ~ variant + (1|store) + (1|week)",
            "--out",
            str(tmp_path / "res"),
            "--plots",
            *common,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    figures = {p.name for p in (tmp_path / "res" / "figures").glob("*.png")}
    assert {"forest.png", "shrinkage.png", "logistic.png", "data_bars.png", "ppc_counts.png"} <= figures
    result = runner.invoke(app, ["decide", str(tmp_path / "res"), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["reference"] == "A" and decision["arms"] == ["B", "C"] and len(decision["best"]) == 6
    assert "P(best)" in decision["verdict"]
    result = runner.invoke(app, ["decide", str(tmp_path / "res"), "--group", "week"], catch_exceptions=False)
    assert result.exit_code == 0 and "new week" in result.stdout, result.output
    result = runner.invoke(
        app,
        ["plot", "forest", str(tmp_path / "res"), "--group", "week", "--out", str(tmp_path / "f.png")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["decide", str(tmp_path / "res"), "--group", "day"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: 'day' is not a grouping factor of 'p(orders, visitors) ~ variant + (1|store) + "
        "(1|week)'; its factors are: store, week"
    )
    result = runner.invoke(app, ["show", str(tmp_path / "res" / "partial.nc")], catch_exceptions=False)
    assert (
        "Group-level effects: ~store (10 levels)" in result.stdout
        and "Group-level effects: ~week (2 levels)" in result.stdout
    )


def test_grouped_cv_leaves_out_the_factor_asked_for():
    data, _ = three_arm_test(3, stores=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        result = pw.group_cv(
            "p(orders, visitors) ~ variant + (1|store) + (1|week)",
            data,
            by="store",
            folds=4,
            poolings=["partial"],
            draws=150,
            tune=150,
            chains=1,
            seed=2,
            workers=1,
        )
    assert sorted(label for fold in result.folds for label in fold) == sorted(data["store"].unique())
    assert np.isfinite(result.table.loc["partial", "elpd_cv"])
