"""The figures: structural tests on every figure's table, image baselines for the signature figures.

Fast tests use the gym data, synthetic tables and the saved tiny study (tests/data/tiny_study),
whose draws are on disk, so nothing here samples except the tests marked slow. Image baselines
are drawn from deterministic inputs (data, seeded synthetic tables), never from fresh MCMC.
Regenerate them after an intended change with:

    POOLWISE_UPDATE_BASELINES=1 .venv/bin/python -m pytest tests/test_plots.py -k baseline
"""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib.style
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.testing.compare import compare_images
from matplotlib.text import Text
from scipy.special import expit

import poolwise as pw
from poolwise import plots
from poolwise.estimates import coefficients, group_draws, groups
from poolwise.plots.style import MODEL_COLORS, TREATED, UNTREATED, model_label, save

from helpers import GYM_FORMULA, TINY

HERE = Path(__file__).parent
BASELINE = HERE / "baseline"
# RMS on the 0-255 scale, compared with all text hidden (titles, ticks, legends), so that fonts,
# FreeType versions and text layout cannot move a pixel; text is asserted through the Figure's
# objects instead. Measured: another font family or size moves the text-free images by 0.0;
# one bar one count taller by 2.6, one interval shifted by 0.1 by 2.4, two model colours
# swapped by 7.
TOLERANCE = 1.0


@pytest.fixture(scope="module")
def tiny():
    """The saved three-model study on the bundled franchise (draws loaded, models rebuilt, no sampling)."""
    from poolwise.io import load_study

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        return load_study(TINY)


def without_text(figure: Figure) -> Figure:
    """The figure with every text artist hidden and legends removed (their text is tested apart)."""
    for legend in [*figure.legends, *(ax.get_legend() for ax in figure.axes)]:
        if legend is not None:
            legend.remove()
    for text in figure.findobj(Text):
        text.set_visible(False)
    return figure


def check_baseline(draw, name: str, tmp_path: Path) -> Figure:
    """Draw with matplotlib's default style (whatever the local matplotlibrc says), compare the
    text-free image with tests/baseline/<name>.png, and return the figure for text checks."""
    with matplotlib.style.context("default"):
        figure = draw()
        actual = save(without_text(draw()), tmp_path / f"{name}.png", dpi=80)
    expected = BASELINE / f"{name}.png"
    if os.environ.get("POOLWISE_UPDATE_BASELINES"):
        BASELINE.mkdir(exist_ok=True)
        shutil.copyfile(actual, expected)
    assert expected.is_file(), f"no baseline {expected}; create it with POOLWISE_UPDATE_BASELINES=1"
    result = compare_images(str(expected), str(actual), tol=TOLERANCE)
    assert result is None, result
    return figure


def texts(figure: Figure) -> set[str]:
    return {text.get_text() for text in figure.findobj(Text) if text.get_text()}


def synthetic_forest() -> pd.DataFrame:
    """A forest table of 8 groups, no pooling wide and spread, partial pooling narrower and pulled in."""
    rng = np.random.default_rng(3)
    rows = []
    for model, spread, width in (("none", 1.0, 1.5), ("partial", 0.5, 1.0)):
        for quantity, centre in (("alpha", -1.0), ("beta", 0.5)):
            means = centre + spread * rng.normal(size=8)
            sds = width * rng.uniform(0.1, 0.5, size=8)
            for group, mean, sd in zip(range(1, 9), means, sds):
                rows.append(
                    {
                        "model": model,
                        "kind": "group",
                        "group": str(group),
                        "quantity": quantity,
                        "mean": mean,
                        "sd": sd,
                        "lower": mean - 1.6 * sd,
                        "upper": mean + 1.6 * sd,
                    }
                )
            if model == "partial":
                rows.append(
                    {
                        "model": model,
                        "kind": "population",
                        "group": "population",
                        "quantity": quantity,
                        "mean": centre,
                        "sd": 0.2,
                        "lower": centre - 0.32,
                        "upper": centre + 0.32,
                    }
                )
    table = pd.DataFrame(rows)
    table.insert(1, "label", table["model"].map(model_label))
    table.insert(2, "color", table["model"].map(MODEL_COLORS))
    table.attrs["labels"] = {
        "group": "Gym",
        "alpha": "Intercept α: logit rate without yoga stretch",
        "beta": "Yoga stretch slope β (logit scale)",
        "interval": "89% interval",
    }
    return table


def synthetic_ppc(scale: str = "count") -> pd.DataFrame:
    """Observed counts from group-varying rates; a one-rate model that misses them, a per-group one that fits."""
    rng = np.random.default_rng(4)
    trials = rng.integers(20, 90, size=40)
    rates = expit(rng.normal(-1.2, 0.9, size=40))
    observed = rng.binomial(trials, rates)
    pooled = rng.binomial(trials, observed.sum() / trials.sum(), size=(20, 40))
    grouped = rng.binomial(trials, rates, size=(20, 40))
    table = pd.concat(
        [
            plots.predictive_table(observed, pooled, trials, scale=scale, model="complete"),
            plots.predictive_table(observed, grouped, trials, scale=scale, model="partial"),
        ],
        ignore_index=True,
    )
    table.attrs.update(labels={"successes": "Signed", "rate": "Signup rate"}, scale=scale)
    return table


# ---------------------------------------------------------------- labels and import cost


def test_import_does_not_load_matplotlib_or_pymc():
    code = "import sys, poolwise.plots; print(sorted(m for m in ('matplotlib', 'pymc', 'bambi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plots_is_an_attribute_of_the_package_and_stays_light():
    code = (
        "import sys, poolwise; heavy = [m for m in ('matplotlib', 'pandas') if m in sys.modules]; "
        "print(heavy, poolwise.plots.forest.__name__, 'plots' in dir(poolwise), 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "forest", "True", "False"]


def test_the_figure_registry_lists_each_figure_once():
    from poolwise.plots.figures import FigureKind

    assert list(plots.FIGURES) == [kind.name for kind in plots.FIGURES.values()]
    assert len({kind.file for kind in plots.FIGURES.values()}) == len(plots.FIGURES)
    for kind in plots.FIGURES.values():
        assert isinstance(kind, FigureKind) and kind.file.endswith(".png") and kind.title
        assert "\n" not in kind.description and kind.description.endswith("."), kind.name
        assert callable(kind.draw) or kind.name == "graph"
    assert [name for name, kind in plots.FIGURES.items() if kind.study] == ["shrinkage", "loo"]


def test_a_figure_that_compares_models_refuses_one_fit(tiny, tmp_path):
    with pytest.raises(pw.PoolwiseError, match="the loo figure compares models; pass a Study"):
        plots.FIGURES["loo"].save(tiny.fits["partial"], tmp_path / "loo.png")
    assert not (tmp_path / "loo.png").exists()


def test_decision_figures_need_a_treatment(tiny):
    from dataclasses import replace

    fit = tiny.fits["partial"]
    spec = replace(fit.spec, common=(), factors=tuple(replace(f, terms=()) for f in fit.spec.factors))
    untreated = replace(fit, spec=spec)  # p(k, n) ~ 1 + (1|g): nothing to decide
    for name in ("densities", "differences"):
        with pytest.raises(pw.PoolwiseError, match="has no treatment term"):
            plots.FIGURES[name].draw(untreated)
    with pytest.raises(pw.PoolwiseError, match="no pooling has no population"):
        plots.FIGURES["densities"].draw(tiny.fits["none"])


@pytest.mark.parametrize(
    "name, label",
    [
        ("gymID", "Gym"),
        ("nTrialCustomers", "Trial customers"),
        ("timePeriod", "Time period"),
        ("yogaStretch", "Yoga stretch"),
        ("nSigned", "Signed"),
        ("n_trials", "Trials"),
        ("HTTPStatus", "HTTP status"),
        ("store_id", "Store"),
        ("x", "X"),
        ("n", "N"),
    ],
)
def test_humanise(name, label):
    assert plots.humanise(name) == label


# ---------------------------------------------------------------- data bars


def test_data_bars_table_one_row_per_observation(gym):
    table = plots.data_bars_table(gym, GYM_FORMULA)
    assert len(table) == len(gym)
    assert list(pd.unique(table["group"])) == [str(g) for g in range(1, 13)]
    by_group = gym.groupby(gym["gymID"].astype(str))[["nTrialCustomers", "nSigned"]].sum()
    sums = table.groupby("group")[["trials", "successes"]].sum()
    assert (sums["trials"] == by_group["nTrialCustomers"]).all() and (sums["successes"] == by_group["nSigned"]).all()
    for _, rows in table.groupby("group"):
        assert rows["x"].is_monotonic_increasing
    assert table.attrs["labels"]["group"] == "Gym" and table.attrs["labels"]["time"] == "Time period"


def test_data_bars_treatment_split_and_colours(gym):
    table = plots.data_bars_table(gym, GYM_FORMULA)
    merged = table.merge(gym.astype({"gymID": str}), left_on=["group", "x"], right_on=["gymID", "timePeriod"])
    assert len(merged) == len(gym)
    assert (merged["treated"] == (merged["yogaStretch"] == 1)).all()
    assert set(map(tuple, table.loc[table["treated"], ["light", "dark"]].to_numpy())) == {TREATED}
    assert set(map(tuple, table.loc[~table["treated"], ["light", "dark"]].to_numpy())) == {UNTREATED}
    assert set(table["condition"]) == {"With yoga stretch", "Without yoga stretch"}


def test_data_bars_categorical_treatment_matches_binary(gym):
    named = gym.assign(yoga=gym["yogaStretch"].map({0: "none", 1: "stretch"}))
    formula = "p(nSigned, nTrialCustomers) ~ yoga + (yoga|gymID)"
    binary = plots.data_bars_table(gym, GYM_FORMULA)
    categorical = plots.data_bars_table(named, formula)
    assert (categorical["treated"] == binary["treated"]).all()
    flipped = plots.data_bars_table(named, formula, untreated="stretch")
    assert (flipped["treated"] == ~binary["treated"]).all()


def test_data_bars_without_time_numbers_rows(gym):
    table = plots.data_bars_table(gym.drop(columns="timePeriod"), GYM_FORMULA)
    for _, rows in table.groupby("group"):
        assert list(rows["x"]) == list(range(1, len(rows) + 1))
    assert table.attrs["labels"]["time"] == "Row"


def test_data_bars_aggregates_row_level_outcomes():
    rows = pd.DataFrame(
        {"store": [1, 1, 1, 2, 2], "week": [1, 1, 2, 1, 1], "promo": [0, 0, 1, 0, 0], "bought": [1, 0, 1, 0, 0]}
    )
    table = plots.data_bars_table(rows, "bought ~ promo + (promo|store)")
    assert table[["group", "x", "trials", "successes"]].values.tolist() == [
        ["1", 1, 2, 1],
        ["1", 2, 1, 1],
        ["2", 1, 2, 0],
    ]
    assert list(table["treated"]) == [False, True, False]


def test_data_bars_treatment_must_be_binary_or_categorical(gym):
    with pytest.raises(pw.PoolwiseError, match="not 0/1"):
        plots.data_bars_table(gym, GYM_FORMULA, treatment="nTrialCustomers")
    derived = plots.data_bars_table(gym, "p(nSigned, nTrialCustomers) ~ log(timePeriod) + (1|gymID)", time="timePeriod")
    assert not derived["treated"].any()


def test_data_bars_grid_and_single_group(gym):
    table = plots.data_bars_table(gym, GYM_FORMULA, labels={"group": "Club"})
    figure = plots.data_bars(table)
    visible = [ax for ax in figure.axes if ax.axison]
    assert [ax.get_title() for ax in visible] == [f"Club {g}" for g in range(1, 13)]
    assert len({ax.get_ylim() for ax in visible}) == 1 and len({ax.get_xlim() for ax in visible}) == 1
    assert len(figure.legends[0].get_texts()) == 4
    single = plots.data_bars(table, group=3)
    assert len(single.axes) == 1 and single.axes[0].get_title().startswith("Club 3")
    with pytest.raises(pw.PoolwiseError, match="Club 99 is not in the data"):
        plots.data_bars(table, group=99)
    with pytest.raises(pw.PoolwiseError, match="pass group"):
        plots.data_bars(table, ax=Figure().subplots())


def test_data_bars_legend_fills_an_empty_cell(gym):
    ten = plots.data_bars_table(gym[gym["gymID"] <= 10], GYM_FORMULA)
    figure = plots.data_bars(ten)
    empty = [ax for ax in figure.axes if not ax.axison]
    assert len(empty) == 2 and empty[-1].get_legend() is not None and not figure.legends


def test_baseline_data_bars(gym, tmp_path):
    figure = check_baseline(lambda: plots.data_bars(plots.data_bars_table(gym, GYM_FORMULA)), "data_bars", tmp_path)
    assert {
        "Signed out of trial customers by gym",
        "Gym 12",
        "Time period",
        "Count",
        "Signed, with yoga stretch",
        "Trial customers, without yoga stretch",
    } <= texts(figure)


# ---------------------------------------------------------------- image baselines from synthetic tables


def test_baseline_forest_overlay(tmp_path):
    figure = check_baseline(lambda: plots.forest(synthetic_forest()), "forest_overlay", tmp_path)
    assert {
        "Intercepts",
        "Slopes",
        "Gym",
        "Yoga stretch slope β (logit scale)",
        "No pooling: mean and 89% interval",
        "Partial pooling: population mean and interval",
    } <= texts(figure)


def test_baseline_ppc(tmp_path):
    figure = check_baseline(lambda: plots.ppc(synthetic_ppc()), "ppc", tmp_path)
    assert {
        "Complete pooling",
        "Partial pooling",
        "Observed",
        "Signed per row (count)",
        "20 posterior predictive data sets (model colour)",
    } <= texts(figure)
    rates = plots.ppc(synthetic_ppc("rate"))
    assert rates.axes[0].get_xlabel() == "Signup rate" and rates.axes[0].get_xlim()[1] <= 1.1


def test_baseline_tolerance_catches_a_real_change(tmp_path):
    swapped = synthetic_forest()
    swapped["color"] = swapped["model"].map({"none": MODEL_COLORS["partial"], "partial": MODEL_COLORS["none"]})
    with matplotlib.style.context("default"):
        actual = save(without_text(plots.forest(swapped)), tmp_path / "swapped.png", dpi=80)
    assert compare_images(str(BASELINE / "forest_overlay.png"), str(actual), tol=TOLERANCE) is not None


def test_draw_functions_accept_an_existing_axes():
    figure = Figure()
    axes = figure.subplots(1, 2)
    assert plots.forest(synthetic_forest(), ax=axes) is figure
    with pytest.raises(pw.PoolwiseError, match="needs 2 axes"):
        plots.forest(synthetic_forest(), ax=axes[0])
    one = Figure()
    assert plots.ppc(synthetic_ppc("rate")[lambda t: t["model"] == "partial"], ax=one.subplots()) is one


# ---------------------------------------------------------------- tables from saved fits (no sampling)


def test_forest_table_rows_intervals_and_colours(tiny):
    table = plots.forest_table([tiny.fits["none"], tiny.fits["partial"]])
    names = groups(tiny.fits["partial"])
    for model in ("none", "partial"):
        own = table[(table["model"] == model) & (table["kind"] == "group")]
        assert len(own) == 2 * len(names) and list(pd.unique(own["group"])) == names
        expected = coefficients(tiny.fits[model])
        expected = expected[expected["quantity"].isin(["alpha", "beta"])]
        assert np.allclose(own["mean"].to_numpy(), expected["mean"].to_numpy())
    assert (table["lower"] <= table["mean"]).all() and (table["mean"] <= table["upper"]).all()
    assert table.groupby("model")["color"].unique().map(list).to_dict() == {
        "none": [MODEL_COLORS["none"]],
        "partial": [MODEL_COLORS["partial"]],
    }
    population = table[table["kind"] == "population"]
    assert list(population["model"]) == ["partial", "partial"] and list(population["quantity"]) == ["alpha", "beta"]
    figure = plots.forest(table)
    assert [ax.get_title() for ax in figure.axes] == ["Intercepts", "Slopes"]


def test_forest_colours_stay_distinct_and_overridable(tiny):
    twice = plots.forest_table({"a": tiny.fits["partial"], "b": tiny.fits["partial"]}, colors={"b": "black"})
    colours = twice.groupby("model")["color"].first()
    assert colours["a"] == MODEL_COLORS["partial"] and colours["b"] == "black"
    listed = plots.forest_table([tiny.fits["partial"], tiny.fits["partial"]])
    assert listed["model"].nunique() == 2 and listed.groupby("model")["color"].first().nunique() == 2


def test_ppc_table_series_and_scales(tiny):
    counts = plots.ppc_table(tiny, draws=7, seed=1)
    n_rows = len(tiny.fits["partial"].data)
    observed = tiny.fits["partial"].data["nSigned"].to_numpy()
    trials = tiny.fits["partial"].data["nTrialCustomers"].to_numpy()
    for model, rows in counts.groupby("model"):
        assert (rows["series"] == "observed").sum() == n_rows
        assert rows.loc[rows["series"] == "predicted", "draw"].nunique() == 7
        assert (rows.loc[rows["series"] == "observed", "value"].to_numpy() == observed).all()
        predicted = rows.loc[rows["series"] == "predicted", "value"].to_numpy().reshape(7, n_rows)
        assert (predicted >= 0).all() and (predicted <= trials).all()
    rates = plots.ppc_table(tiny, draws=7, seed=1, scale="rate")
    assert np.allclose(rates["value"], counts["value"] / np.tile(trials, len(counts) // n_rows))
    assert counts.equals(plots.ppc_table(tiny, draws=7, seed=1))
    assert not counts.equals(plots.ppc_table(tiny, draws=7, seed=2))
    with pytest.raises(pw.PoolwiseError, match="scale"):
        plots.ppc_table(tiny, scale="logit")


def test_ppc_rebuilds_the_model_of_a_loaded_fit(tiny):
    from dataclasses import replace

    fit = tiny.fits["partial"]
    assert np.array_equal(
        plots.predictive_draws(replace(fit, model=None), draws=5, seed=3), plots.predictive_draws(fit, draws=5, seed=3)
    )


def test_logistic_table_marks_each_group_on_the_curve(tiny):
    fit = tiny.fits["partial"]
    table = plots.logistic_table(fit)
    assert len(table) == 2 * len(groups(fit))
    assert np.allclose(table["rate"], expit(table["eta"]))
    untreated = table[~table["treated"]].set_index("group")["eta"]
    expected = group_draws(fit)["alpha"].mean(("chain", "draw")).to_series()
    assert np.allclose(untreated.loc[expected.index], expected)
    assert set(table.loc[table["treated"], "color"]) == {TREATED[1]}
    pooled = plots.logistic_table(tiny.fits["complete"])
    assert pooled.groupby("treated")["eta"].nunique().eq(1).all()


def test_shrinkage_table_counts_and_estimates(tiny):
    table = plots.shrinkage_table(tiny)
    data = tiny.fits["partial"].data
    assert len(table) == 2 * len(groups(tiny.fits["partial"]))
    totals = table.groupby("treated")["trials"].sum()
    assert totals[True] == data.loc[data["yogaStretch"] == 1, "nTrialCustomers"].sum()
    assert totals[False] == data.loc[data["yogaStretch"] == 0, "nTrialCustomers"].sum()
    never = set(data["gymID"].astype(str)) - set(data.loc[data["yogaStretch"] == 1, "gymID"].astype(str))
    assert set(table.loc[table["treated"] & (table["trials"] == 0), "group"]) == never
    none = coefficients(tiny.fits["none"]).query("quantity == 'rate_with'").set_index("group")["mean"]
    assert np.allclose(table[table["treated"]].set_index("group")["no_pooling"], none)
    assert table["population"].between(0, 1).all() and table.groupby("treated")["population"].nunique().eq(1).all()
    with pytest.raises(pw.PoolwiseError, match="'none'"):
        plots.shrinkage_table({"partial": tiny.fits["partial"]})


def test_comparison_table_best_first(tiny):
    table = plots.comparison_table(tiny)
    assert table["elpd"].is_monotonic_decreasing and table["elpd_diff"].iloc[0] == 0
    assert dict(zip(table["model"], table["color"])) == {name: MODEL_COLORS[name] for name in table["model"]}
    assert list(table["label"]) == [model_label(name) for name in table["model"]]
    panel = plots.comparison(table).axes[0]
    top = [tick.get_text() for tick in panel.get_yticklabels()][int(np.argmax(panel.get_yticks()))]
    assert (
        top == f"{table['label'].iloc[0]}\nPareto k > 0.7: {table['n_bad_k'].iloc[0]} of {table['n_obs'].iloc[0]} rows"
    )


def test_model_graph_needs_dot_or_writes_dot_source(tiny, tmp_path, monkeypatch):
    source = plots.model_graph(tiny.fits["partial"], tmp_path / "partial.gv")
    assert source.read_text().startswith("digraph") and "gymID" in source.read_text()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pw.PoolwiseError, match="Graphviz"):
        plots.model_graph(tiny.fits["partial"], tmp_path / "partial.png")
    assert not (tmp_path / "partial.png").exists()


def test_gallery_writes_every_figure_atomically(tiny, tmp_path):
    paths = plots.gallery(tiny, tmp_path / "figures", draws=5, dpi=40)
    names = {path.name for path in paths}
    assert names - {name for name in names if name.startswith("model_graph_")} == {
        "data_bars.png",
        "forest.png",
        "ppc_counts.png",
        "ppc_rates.png",
        "ppc_groups.png",
        "loo_pit.png",
        "logistic.png",
        "shrinkage.png",
        "loo_compare.png",
        "densities.png",
        "differences.png",
    }
    graphs = {name for name in names if name.startswith("model_graph_")}
    assert {name.rsplit(".", 1)[0] for name in graphs} == {f"model_graph_{m}" for m in tiny.fits}
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(names)


# ---------------------------------------------------------------- the chapter's data (samples once, shared)


@pytest.mark.slow
def test_gym_ppc_shows_complete_pooling_failing(gym_study):
    """The figure's message in numbers: the typical largest gap between the observed ECDF and a
    predictive ECDF is beyond the Kolmogorov-Smirnov 5% bound for complete pooling, within it for partial."""
    table = plots.ppc_table(gym_study, draws=20, seed=0, scale="rate")

    def distance(rows: pd.DataFrame) -> float:
        observed = np.sort(rows.loc[rows["series"] == "observed", "value"].to_numpy())
        grid = np.unique(rows["value"])
        ecdf = np.searchsorted(observed, grid, side="right") / len(observed)
        gaps = [
            np.abs(ecdf - np.searchsorted(np.sort(one["value"]), grid, side="right") / len(one)).max()
            for _, one in rows[rows["series"] == "predicted"].groupby("draw")
        ]
        return float(np.median(gaps))

    gaps = {model: distance(rows) for model, rows in table.groupby("model")}
    critical = 1.36 / np.sqrt(len(gym_study.fits["partial"].data))  # Kolmogorov-Smirnov at 5%
    assert gaps["complete"] > critical > gaps["partial"]


@pytest.mark.slow
def test_gym_gallery(gym_study, tmp_path):
    paths = plots.gallery(gym_study, tmp_path, labels={"rate": "Signup rate"}, dpi=40)
    assert len([p for p in paths if p.suffix == ".png"]) >= 8
    forest = plots.forest_table([gym_study.fits["none"], gym_study.fits["partial"]])
    assert list(pd.unique(forest.loc[forest["kind"] == "group", "group"])) == [str(g) for g in range(1, 13)]
    shrink = plots.shrinkage_table(gym_study)
    assert shrink["trials"].sum() == gym_study.fits["partial"].data["nTrialCustomers"].sum()


# ---------------------------------------------------------------- other families

VISITS = "nVisits ~ yogaStretch + offset(log(memberMonths)) + (yogaStretch||gymID)"


def test_baseline_data_bars_poisson(tmp_path):
    visits = pw.load_dataset("visits")
    table = plots.data_bars_table(visits, VISITS)
    assert table["successes"].sum() == visits["nVisits"].sum() and table["trials"].sum() == visits["memberMonths"].sum()
    assert np.allclose(table["rate"], table["successes"] / table["trials"])
    figure = check_baseline(lambda: plots.data_bars(table), "data_bars_poisson", tmp_path)
    assert {"Visits by gym", "Count", "Visits, with yoga stretch", "Visits, without yoga stretch"} <= texts(figure)
    assert not any("Member months" in text for text in texts(figure))  # exposure is not drawn as bars


def test_baseline_data_points_gaussian(tmp_path):
    scores, _ = pw.simulate_franchise(6, 4, family="gaussian", seed=3)
    table = plots.data_bars_table(scores, "satisfaction ~ yogaStretch + (yogaStretch||gymID)")
    assert len(table) == len(scores) and (table["trials"] == 1).all() and table.attrs["bars"] == "points"
    figure = check_baseline(lambda: plots.data_bars(table), "data_points_gaussian", tmp_path)
    assert {"Satisfaction by gym", "Satisfaction", "Satisfaction, with yoga stretch"} <= texts(figure)


def synthetic_curve(family: str) -> pd.DataFrame:
    """A response-curve table of 6 groups on the log scale (rates 2 to 9 per unit of exposure)."""
    rng = np.random.default_rng(5)
    eta = np.log(rng.uniform(2, 9, 6))
    rows = [
        {
            "model": "partial",
            "group": str(g + 1),
            "condition": condition,
            "treated": treated,
            "eta": e + 0.3 * treated,
            "rate": float(np.exp(e + 0.3 * treated)),
            "color": (TREATED if treated else UNTREATED)[1],
        }
        for treated, condition in ((False, "Without yoga stretch"), (True, "With yoga stretch"))
        for g, e in enumerate(eta)
    ]
    table = pd.DataFrame(rows)
    table.attrs.update(
        family=family,
        labels={
            "group": "Gym",
            "treatment": "Yoga stretch",
            "rate": "Visits per member month",
            "model": "Partial pooling",
        },
    )
    return table


def test_baseline_response_curve_poisson(tmp_path):
    figure = check_baseline(lambda: plots.logistic(synthetic_curve("poisson")), "response_curve_poisson", tmp_path)
    assert {
        "Visits per member month",
        "Linear predictor α + β · yoga stretch (log scale)",
        "Visits per member month = exp of the linear predictor",
        "Where each gym sits on the exponential curve (Partial pooling)",
    } <= texts(figure)


def test_arviz_plot_compare_accepts_the_study_table(tiny):
    """Study.table keeps ArviZ's column names, so ArviZ's own comparison plot takes it as is."""
    import arviz_plots

    for relative in (True, False):
        plot = arviz_plots.plot_compare(tiny.table, relative_scale=relative, backend="matplotlib")
        labels = [t.get_text() for t in plot.viz["plot"].item().get_yticklabels()]
        assert set(tiny.table.index) <= set(labels), labels


def test_loo_pit_finds_complete_poolings_overconfidence(tiny):
    """On the gym data complete pooling's predictions are far too narrow (the gyms differ): its
    LOO-PIT values pile up at 0 and 1, partial pooling's do not; every value is a probability."""
    from poolwise.plots.checks import loo_pit, loo_pit_table

    table = loo_pit_table(tiny, seed=1)
    assert table.groupby("model").size().to_dict() == {name: len(fit.data) for name, fit in tiny.fits.items()}
    assert table["pit"].between(0, 1).all()
    extreme = table.assign(tail=(table["pit"] < 0.05) | (table["pit"] > 0.95)).groupby("model")["tail"].mean()
    assert extreme["complete"] > 0.3 > 0.15 > extreme["partial"]
    figure = loo_pit(table)
    assert [axis.get_title() for axis in figure.axes] == [
        f"{label} ({len(tiny.fits[name].data)} rows)"
        for name, label in zip(pd.unique(table["model"]), pd.unique(table["label"]))
    ]


def test_the_check_per_group_holds_each_groups_observed_rate_and_finds_complete_poolings_misses(tiny):
    """Each group's observed rate is its signups over its trial customers; complete pooling gives
    every group one rate, so its intervals miss gyms that partial pooling's cover."""
    from poolwise.plots.checks import ppc_groups, ppc_groups_table

    table = ppc_groups_table(tiny, seed=1)
    data = tiny.fits["partial"].data
    sums = data.groupby(data["gymID"].astype(str))[["nSigned", "nTrialCustomers"]].sum()
    observed = table[table["model"] == "partial"].set_index("group")["observed"]
    assert observed.to_dict() == pytest.approx((sums["nSigned"] / sums["nTrialCustomers"]).to_dict())
    assert (table["lower"] <= table["median"]).all() and (table["median"] <= table["upper"]).all()
    covered = table.assign(inside=table["observed"].between(table["lower"], table["upper"])).groupby("model")["inside"]
    assert covered.mean()["complete"] < covered.mean()["partial"]
    figure = ppc_groups(table)
    assert [axis.get_title() for axis in figure.axes] == list(pd.unique(table["label"]))
