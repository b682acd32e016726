"""The ``poolwise`` command line: parse arguments, call the library, print.

Library modules are imported inside the commands, so ``poolwise --help`` never imports pandas,
Bambi, PyMC or ArviZ. Bad input (a ``PoolwiseError``) is one line on stderr and exit code 2;
sampling trouble (``PoolwiseWarning``) is printed in yellow and does not fail the command.
"""

import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from poolwise.errors import PoolwiseError, PoolwiseWarning

GYM = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)"

app = typer.Typer(
    name="poolwise",
    help="Bayesian multilevel models of rates: complete, no and partial pooling from one formula.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

Data = Annotated[str, typer.Argument(help="CSV/Parquet file, or a dataset name: gym, franchise.", show_default=False)]
Formula = Annotated[str, typer.Argument(help=f"Rate formula, e.g. '{GYM}'.", show_default=False)]
Prior = Annotated[list[str] | None, typer.Option("--prior", help="TERM=DISTRIBUTION, e.g. 'yogaStretch=Normal(mu=0, sigma=1)'; repeatable.", show_default=False)]
Preset = Annotated[str | None, typer.Option("--priors", help="Start from a prior preset: chapter.", show_default=False)]
Backend = Annotated[str | None, typer.Option(help="Sampler: nutpie (default), pymc or numpyro.", show_default=False)]
Draws = Annotated[int, typer.Option(help="Posterior draws per chain.")]
Tune = Annotated[int, typer.Option(help="Tuning (warm-up) draws per chain.")]
Chains = Annotated[int, typer.Option(help="Number of chains.")]
Seed = Annotated[int | None, typer.Option(help="Random seed, for identical numbers on a rerun.", show_default=False)]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing output.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
Progress = Annotated[bool, typer.Option("--progress", help="Show the sampler's own progress bar instead of a spinner.")]
AllowUnidentified = Annotated[bool, typer.Option("--allow-unidentified", help="Fit even when the data cannot identify some coefficients (the priors decide them).")]


@contextmanager
def _guarded() -> Iterator[list]:
    """Run a command body: bad input becomes one line on stderr and exit code 2; poolwise's warnings
    are collected (the list yielded) and printed in yellow on stderr at the end."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PoolwiseWarning)
        try:
            yield caught
        except PoolwiseError as error:
            stderr.print(f"[bold red]error:[/] {escape(str(error))}")
            raise typer.Exit(2) from None
        finally:
            for message in _messages(caught):
                stderr.print(f"[yellow]warning: {escape(message)}[/]")


def _messages(caught: list) -> list[str]:
    return list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, PoolwiseWarning)))


@contextmanager
def _sampling(progress: bool, what: str) -> Iterator[None]:
    """The sampler's progress bar and log with ``--progress``, otherwise only a spinner on stderr."""
    if progress:
        yield
        return
    quiet = [logging.getLogger(name) for name in ("pymc", "bambi")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        with stderr.status(what, spinner="dots"):
            yield
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def _priors(pairs: list[str] | None, preset: str | None):
    """``--prior TERM=DIST`` pairs and ``--priors PRESET`` as the library's ``priors`` argument."""
    if not pairs:
        return preset
    priors = {"preset": preset} if preset else {}
    for pair in pairs:
        term, sep, dist = pair.partition("=")
        if not sep or not term.strip() or not dist.strip():
            raise PoolwiseError(f"--prior {pair!r} is not TERM=DISTRIBUTION; write e.g. --prior 'yogaStretch=Normal(mu=0, sigma=1)'")
        priors[term.strip()] = dist.strip()
    return priors


def _table(title: str, *, gap: int = 2) -> Table:
    """A compact, R-like table: a rule under the header, ``gap`` spaces between columns."""
    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                 padding=(0, gap - 1, 0, 0), show_edge=False)


def _num(value: float, digits: int = 2) -> str:
    return "nan" if value != value else f"{value:.{digits}f}"


def _effects_table(title: str, frame, prob: float) -> Table:
    """brms's columns: Estimate, Est.Error, l-89%, u-89% (interval bounds), Rhat, Bulk_ESS, Tail_ESS."""
    pct = f"{prob:.0%}"
    table = _table(title, gap=1)
    table.add_column("", no_wrap=True)
    for column in ("Estimate", "Est.Error", f"l-{pct}", f"u-{pct}", "Rhat", "Bulk_ESS", "Tail_ESS"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, row in frame.iterrows():
        table.add_row(escape(str(name)), _num(row["mean"]), _num(row["sd"]), _num(row["lower"]), _num(row["upper"]),
                      _num(row["r_hat"]), f"{row['ess_bulk']:.0f}", f"{row['ess_tail']:.0f}")
    return table


def _print_summary(report, *, groups: bool) -> None:
    """What ``fit`` and ``show`` print for one fit."""
    settings = report.settings
    stdout.print(f"[bold]{report.label}[/]  {escape(report.bambi_formula)}")
    grouping = f", {report.n_groups} levels of {report.group}" if report.group else ""
    stdout.print(f"Family: binomial (logit link). Data: {report.n_rows} rows{grouping}. "
                 f"Draws: {settings['chains']} chains x {settings['draws']} (tune {settings['tune']}), "
                 f"{settings['backend']}, seed {settings['seed']}.")
    stdout.print(_effects_table("Population-level effects (logit scale)", report.population, report.prob))
    if len(report.group_sds):
        stdout.print(_effects_table(f"Group-level effects: ~{report.group} ({report.n_groups} levels)", report.group_sds, report.prob))
        stdout.print(f"Group-level effects are uncorrelated in Bambi: (...|{report.group}) here is lme4's (...||{report.group}).")
    if groups:
        stdout.print(_groups_table(report))
    stdout.print(f"Divergences: {report.divergences}. Max Rhat {_num(report.max_r_hat)}, "
                 f"min bulk ESS {report.min_ess_bulk:.0f} (of {settings['chains'] * settings['draws']} draws).")


def _groups_table(report) -> Table:
    """One row per group (lme4's coef()): intercept and slope (logit scale), both rates with intervals."""
    pct = f"{report.prob:.0%}"
    table = _table(f"Per-group coefficients (lme4's coef()); rates with {pct} intervals")
    table.add_column(escape(report.group or "group"), no_wrap=True)
    logit = [("alpha", "Intercept"), ("beta", report.treatment)]
    rates = [("rate_without", "Rate without"), ("rate_with", "Rate with")]
    logit = [(q, title) for q, title in logit if q in report.groups.columns]
    rates = [(q, title) for q, title in rates if q in report.groups.columns]
    for _, title in logit + rates:
        table.add_column(escape(str(title)), justify="right", no_wrap=True)
    for group, row in report.groups.iterrows():
        cells = [f"{row[q]:.2f}" for q, _ in logit]
        cells += [f"{row[q]:.3f} [{row[f'{q}_lower']:.3f}, {row[f'{q}_upper']:.3f}]" for q, _ in rates]
        table.add_row(escape(str(group)), *cells)
    return table


def _print_study(study, table) -> None:
    """What ``compare``, ``demo`` and ``show DIR`` print: the LOO table and the verdict."""
    from poolwise.pooling import pooling

    loo = _table("LOO comparison (higher elpd_loo predicts better)")
    for column in ("Model", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "Pareto k>0.7"):
        loo.add_column(column, justify="left" if column == "Model" else "right", no_wrap=True)
    for name, row in table.iterrows():
        loo.add_row(pooling(name).label, _num(row["elpd_loo"], 1), _num(row["se"], 1), _num(row["elpd_diff"], 1),
                    _num(row["dse"], 1), _num(row["p_loo"], 1), _num(row["weight"]), f"{row['n_bad_k']:.0f} of {row['n_obs']:.0f}")
    stdout.print(loo)
    stdout.print(f"[bold]{escape(study.verdict())}[/]")
    for note in study.notes:
        stdout.print(f"Note: {escape(note)}")


def _study_json(study, caught: list, out: Path | None, files: list[Path]) -> str:
    table = json.loads(study.table.reset_index().to_json(orient="records", double_precision=15))
    return json.dumps({"formula": study.formula, "verdict": study.verdict(), "table": table, "notes": study.notes,
                       "warnings": _messages(caught), "out": None if out is None else str(out),
                       "files": [str(f) for f in files]}, indent=2)


def _compare(frame, formula: str, *, out: Path | None, force: bool, priors, backend: str | None, draws: int,
             tune: int, chains: int, seed: int | None, as_json: bool, progress: bool, allow_unidentified: bool,
             caught: list):
    """Fit, compare, write and print (shared by ``compare`` and ``demo``); returns the study."""
    from poolwise.compare import compare
    from poolwise.io import check_new, save_study

    if out is not None:
        check_new(out, force=force)
    with _sampling(progress, "Fitting complete, no and partial pooling..."):
        study = compare(formula, frame, draws=draws, tune=tune, chains=chains, seed=seed, backend=backend,
                        priors=priors, allow_unidentified=allow_unidentified, progress=progress)
    files = save_study(study, out, force=force) if out is not None else []
    if as_json:
        typer.echo(_study_json(study, caught, out, files))
        return study
    _print_study(study, study.table)
    if out is not None:
        stdout.print(f"Wrote {escape(str(out))}/: {escape(', '.join(map(str, files)))}")
    return study


@app.command()
def templates(formula: Formula) -> None:
    """Print the three pooling models a formula implies, without fitting.

    Example: poolwise templates 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)'
    """
    with _guarded():
        from poolwise.pooling import POOLINGS, templates as build

        formulas = build(formula)
        for entry in POOLINGS:
            stdout.print(f"[bold]{entry.label}[/]: {escape(formulas[entry.name])}")
            stdout.print(f"  {entry.description}")


@app.command("fit")
def fit_command(
    data: Data,
    formula: Formula,
    pooling: Annotated[str, typer.Option(help="partial, none or complete (aliases: hierarchical, unpooled, pooled).")] = "partial",
    prior: Prior = None,
    priors: Preset = None,
    backend: Backend = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Seed = None,
    out: Annotated[Path | None, typer.Option(help="Save the fit to this netCDF file.", show_default=False)] = None,
    force: Force = False,
    groups: Annotated[bool, typer.Option("--groups", help="Also print each group's coefficients and rates.")] = False,
    as_json: AsJson = False,
    progress: Progress = False,
    allow_unidentified: AllowUnidentified = False,
) -> None:
    """Fit one pooling model and print its summary: population effects, group-level sds, diagnostics.

    Example: poolwise fit gym 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)' --groups --out partial.nc
    """
    with _guarded() as caught:
        from poolwise.data import read_data
        from poolwise.fit import fit
        from poolwise.io import check_new, save_fit
        from poolwise.summary import summary

        if out is not None:
            check_new(out, force=force)
        frame = read_data(data)
        with _sampling(progress, f"Fitting the {pooling} pooling model..."):
            result = fit(formula, frame, pooling=pooling, draws=draws, tune=tune, chains=chains, seed=seed,
                         backend=backend, priors=_priors(prior, priors), allow_unidentified=allow_unidentified,
                         progress=progress)
        report = summary(result)
        if out is not None:
            save_fit(result, out, force=force)
        if as_json:
            typer.echo(json.dumps({**report.to_dict(), "warnings": _messages(caught),
                                   "out": None if out is None else str(out)}, indent=2))
            return
        _print_summary(report, groups=groups)
        if out is not None:
            stdout.print(f"Saved the fit to {escape(str(out))} (poolwise show {escape(str(out))} prints this again).")


@app.command("compare")
def compare_command(
    data: Data,
    formula: Formula,
    out: Annotated[Path | None, typer.Option(help="Write fits (.nc), tables (.csv) and study.json into this new folder.", show_default=False)] = None,
    force: Force = False,
    prior: Prior = None,
    priors: Preset = None,
    backend: Backend = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Seed = None,
    as_json: AsJson = False,
    progress: Progress = False,
    allow_unidentified: AllowUnidentified = False,
) -> None:
    """Fit complete, no and partial pooling, compare them by LOO and say which predicts best.

    Example: poolwise compare gym 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)' --out results
    """
    with _guarded() as caught:
        from poolwise.data import read_data

        _compare(read_data(data), formula, out=out, force=force, priors=_priors(prior, priors), backend=backend,
                 draws=draws, tune=tune, chains=chains, seed=seed, as_json=as_json, progress=progress,
                 allow_unidentified=allow_unidentified, caught=caught)


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(help="Folder for the results (default: a new temporary folder).", show_default=False)] = None,
    force: Force = False,
    draws: Draws = 300,
    tune: Tune = 300,
    chains: Chains = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2024,
    as_json: AsJson = False,
    progress: Progress = False,
) -> None:
    """Run the main job on the bundled simulated franchise (offline, about a minute).

    Fits and compares the three models, writes the results and checks the estimate against the
    truth the data were simulated from.

    Example: poolwise demo --out demo-results
    """
    with _guarded() as caught:
        from poolwise.coefficients import population_draws, summarise
        from poolwise.data import EXAMPLE, example_path, load_dataset

        truth = json.loads(example_path().with_name(f"{EXAMPLE}_truth.json").read_text())
        target = out if out is not None else Path(tempfile.mkdtemp(prefix="poolwise-demo-")) / "results"
        if not as_json:
            stdout.print(f"Demo: {truth['formula']} on {example_path()} ({EXAMPLE}, simulated)")
        study = _compare(load_dataset(EXAMPLE), truth["formula"], out=target, force=force, priors=None, backend=None,
                 draws=draws, tune=tune, chains=chains, seed=seed, as_json=as_json, progress=progress,
                 allow_unidentified=False, caught=caught)
        if not as_json:
            slope = summarise(population_draws(study.fits["partial"])["beta"])
            stdout.print(f"Truth: population yogaStretch slope {truth['population']['beta']:.2f}; partial pooling "
                         f"estimates {slope['mean']:.2f} (89% interval {slope['lower']:.2f} to {slope['upper']:.2f}).")


@app.command()
def show(
    path: Annotated[Path, typer.Argument(help="A fit saved by 'fit --out' (.nc) or a folder saved by 'compare --out'.", show_default=False)],
    groups: Annotated[bool, typer.Option("--groups", help="Also print each group's coefficients and rates.")] = False,
    as_json: AsJson = False,
) -> None:
    """Print the summary of a saved fit, or the LOO comparison of a saved study, without refitting.

    Example: poolwise show partial.nc --groups
    """
    with _guarded() as caught:
        from poolwise.fit import check_sampling
        from poolwise.io import load
        from poolwise.summary import summary

        saved = load(path)
        for fit in getattr(saved, "fits", {"fit": saved}).values():
            check_sampling(fit)
        if hasattr(saved, "fits"):
            if as_json:
                typer.echo(_study_json(saved, caught, None, []))
            else:
                _print_study(saved, saved.table)
            return
        report = summary(saved)
        if as_json:
            typer.echo(json.dumps({**report.to_dict(), "warnings": _messages(caught)}, indent=2))
        else:
            _print_summary(report, groups=groups)


@app.command()
def simulate(
    folder: Annotated[Path, typer.Argument(help="Folder to write franchise.csv and franchise_truth.json into.", show_default=False)],
    groups: Annotated[int, typer.Option(min=1, help="Number of gyms.")] = 12,
    periods: Annotated[int, typer.Option(min=2, help="Periods per gym (the treatment starts halfway).")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2024,
    force: Force = False,
) -> None:
    """Simulate a franchise of gyms with known truth, as the bundled example data were made.

    Example: poolwise simulate sim --groups 30 --seed 7
    """
    with _guarded():
        from poolwise.data import EXAMPLE, write_example
        from poolwise.io import check_new

        for name in (f"{EXAMPLE}.csv", f"{EXAMPLE}_truth.json"):
            check_new(folder / name, force=force)
        path = write_example(folder, groups=groups, periods=periods, seed=seed)
        stdout.print(f"Wrote {escape(str(path))} ({groups} gyms x {periods} periods) and its truth "
                     f"{escape(str(path.with_name(f'{EXAMPLE}_truth.json')))}.")
        stdout.print(f"Next: poolwise compare {escape(str(path))} '{GYM}'")
