"""The ``poolwise`` command line: parse arguments, call the library, print.

Library modules are imported inside the commands, so ``poolwise --help`` never imports pandas,
Bambi, PyMC or ArviZ. Bad input (a ``PoolwiseError``) is one line on stderr and exit code 2;
sampling trouble (``PoolwiseWarning``) is printed in yellow and does not fail the command; any
other error is one line too ("internal error in <stage>: ..."), exit code 1, with the traceback
only under ``--debug`` (or ``POOLWISE_DEBUG=1``).
"""

import json
import logging
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from poolwise import choices
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.families import family as find_family
from poolwise.plots.figures import FIGURES

GYM = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"


# The choices of the options, as enums so that --help lists them, named in poolwise.choices: a
# leaf module, where importing the registries would import pandas and slow every `poolwise --help`.
def _choice(name: str, values: tuple[str, ...], doc: str) -> type[StrEnum]:
    enum = StrEnum(name, {value: value for value in values}, module=__name__)
    enum.__doc__ = doc
    return enum


Model = _choice(
    "Model",
    choices.POOLINGS,
    """The pooling model of ``--model`` (``poolwise.pooling.POOLINGS``).

    Examples
    --------
    >>> Model("partial").value
    'partial'
    """,
)
Family = _choice(
    "Family",
    choices.FAMILIES,
    """The outcome family of ``--family`` (``poolwise.families.FAMILIES``).

    Examples
    --------
    >>> [family.value for family in Family][:2]
    ['bernoulli', 'binomial']
    """,
)
Link = _choice(
    "Link",
    choices.BINARY_LINKS,
    """The link of ``--link``, for a family with several (``poolwise.families.BINARY_LINKS``).

    Examples
    --------
    >>> [link.value for link in Link]
    ['logit', 'probit', 'cloglog']
    """,
)
SimulatedFamily = _choice(
    "SimulatedFamily",
    choices.SIMULATED_FAMILIES,
    """A family ``poolwise simulate --family`` can simulate (``poolwise.data.SIMULATIONS``).

    Examples
    --------
    >>> SimulatedFamily("poisson").value
    'poisson'
    """,
)
Backend = _choice(
    "Backend",
    choices.BACKENDS,
    """The sampler of ``--backend`` (``poolwise.fitting.BACKENDS``).

    Examples
    --------
    >>> Backend("nutpie").value
    'nutpie'
    """,
)
Parameterization = _choice(
    "Parameterization",
    choices.PARAMETERIZATIONS,
    """Partial pooling's group terms, ``--parameterization`` (``poolwise.geometry.CHOICES``).

    Examples
    --------
    >>> Parameterization("auto").value
    'auto'
    """,
)
CV = _choice(
    "CV",
    choices.CROSS_VALIDATIONS,
    """The cross-validation of ``compare --cv`` (``poolwise.cv``): leave groups out.

    Examples
    --------
    >>> CV("group").value
    'group'
    """,
)
FixLoo = _choice(
    "FixLoo",
    choices.LOO_FIXES,
    """How ``compare --fix-loo`` fixes LOO terms with Pareto k > 0.7 (``poolwise.comparison.FIXES``).

    Examples
    --------
    >>> FixLoo("refit").value
    'refit'
    """,
)


# The figures `poolwise plot` draws, from the one registry of figures.
FigureName = StrEnum("FigureName", {name.replace("-", "_"): name for name in FIGURES}, module=__name__)
FigureName.__doc__ = """A figure of ``poolwise plot KIND`` (``poolwise.plots.FIGURES``).

Examples
--------
>>> FigureName("ppc-rates").value
'ppc-rates'
"""


class _Commands(TyperGroup):
    """Typer's command group, with a usage error (an unknown choice, a missing argument, a value
    that is not a number) printed as one line and exit code 2, like every other bad input."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        exceptions = _click_exceptions()
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            stderr.print("Aborted!")
            sys.exit(1)
        except exceptions.ClickException as error:
            if isinstance(error, exceptions.UsageError) and type(error).__name__ != "NoArgsIsHelpError":
                stderr.print(f"[bold red]error:[/] {escape(_usage_line(error))}")
            elif type(error).__name__ != "NoArgsIsHelpError":  # Typer has printed the help already
                error.show()
            sys.exit(error.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


def _click_exceptions():
    """Click's exceptions: Typer 0.20 and later vendor Click as ``typer._click``."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


def _usage_line(error) -> str:
    """Click's message on one line, e.g. "invalid value for '--model': 'partiall' is not one of
    'complete', 'none', 'partial'; see poolwise fit --help"."""
    message = " ".join(error.format_message().replace("Value error, ", "").split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    context = getattr(error, "ctx", None)
    return f"{message}; see {context.command_path} --help" if context is not None else message


app = typer.Typer(
    name="poolwise",
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an internal error (also POOLWISE_DEBUG=1).")
    ] = False,
) -> None:
    """Bayesian multilevel models: complete, no and partial pooling from one lme4/brms-style formula."""
    if debug:
        os.environ["POOLWISE_DEBUG"] = "1"


Data = Annotated[
    str, typer.Argument(help="CSV/Parquet file, or a dataset name: gym, franchise, visits.", show_default=False)
]
Formula = Annotated[str, typer.Argument(help=f"lme4/brms-style formula, e.g. '{GYM}'.", show_default=False)]
FamilyOption = Annotated[
    Family | None,
    typer.Option(help="Outcome family (default: read from the formula and data, as lme4 would).", show_default=False),
]
LinkOption = Annotated[
    Link | None,
    typer.Option(
        help="Link of a bernoulli, binomial or beta_binomial probability, or of a cumulative rating "
        "(logit or probit; default: logit, as lme4 and brms).",
        show_default=False,
    ),
]
LinksOption = Annotated[
    list[Link] | None,
    typer.Option(
        "--link",
        help="Link of a bernoulli, binomial or beta_binomial probability, or of a cumulative rating "
        "(default: logit); with several "
        "formulas, once for all or once per formula, in order.",
        show_default=False,
    ),
]
FamiliesOption = Annotated[
    list[Family] | None,
    typer.Option(
        "--family",
        help="Outcome family (default: read from the formula and data); with several formulas, once for all "
        "or once per formula, in order.",
        show_default=False,
    ),
]
ModelOption = Annotated[Model, typer.Option("--model", help="Which pooling model to fit.")]
PriorOption = Annotated[
    list[str] | None,
    typer.Option(
        "--prior",
        metavar="<PRESET|TERM=DIST>",
        help="A prior preset (chapter: the textbook's priors) or TERM=DISTRIBUTION, e.g. "
        "'yogaStretch=Normal(mu=0, sigma=1)'; repeatable: presets first, then each term.",
        show_default=False,
    ),
]
BackendOption = Annotated[Backend | None, typer.Option(help="Sampler (default: numpyro).", show_default=False)]
Draws = Annotated[int, typer.Option(help="Posterior draws per chain.")]
Tune = Annotated[int, typer.Option(help="Tuning (warm-up) draws per chain.")]
Chains = Annotated[int, typer.Option(help="Number of chains.")]
Seed = Annotated[int | None, typer.Option(help="Random seed, for identical numbers on a rerun.", show_default=False)]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing output.")]
Prob = Annotated[
    float | None, typer.Option(help="Interval probability, e.g. 0.95 (default 0.89, ArviZ's).", show_default=False)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
Progress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Show each sampler run's progress with elapsed and expected time (default: on a terminal).",
        show_default=False,
    ),
]
ParameterizationOption = Annotated[
    Parameterization, typer.Option(help="Partial pooling's group terms: auto chooses from the data.")
]
Group = Annotated[
    str | None,
    typer.Option(
        "--group",
        help="With several grouping factors, the one that per-group tables, figures and decisions speak about (default: the first in the formula).",
        show_default=False,
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Refuse rows with a missing value in a column the formula reads (default: drop them, as lme4 does).",
    ),
]
PerGroup = Annotated[bool, typer.Option("--per-group", help="Also print each observed group's numbers.")]
AllowUnidentified = Annotated[
    bool,
    typer.Option(
        "--allow-unidentified",
        help="Fit even when the data cannot identify some coefficients (the priors decide them).",
    ),
]


def _plot_help() -> str:
    kinds = "\n\n".join(f"{kind.name}: {kind.description}" for kind in FIGURES.values())
    return (
        "Draw one figure from saved results (no refitting) or, for 'data', from a data file.\n\n"
        f"{kinds}\n\nExample: poolwise plot shrinkage results --out shrinkage.png"
    )


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
        except (typer.Exit, typer.Abort):
            raise
        except Exception as error:  # anything else is our bug: one line, the traceback on request
            if os.environ.get("POOLWISE_DEBUG") == "1":
                raise
            stderr.print(
                f"[bold red]internal error in {_stage(error)}:[/] {escape(_first_line(error))}; "
                "rerun with --debug for the traceback"
            )
            raise typer.Exit(1) from None
        finally:
            for message in _messages(caught):
                stderr.print(f"[yellow]warning: {escape(message)}[/]")


def _stage(error: Exception) -> str:
    """The poolwise module (pipeline stage) the error was raised in, or the library under it."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if f"{os.sep}poolwise{os.sep}" in frame.filename]
    return os.path.splitext(os.path.basename((ours or frames)[-1].filename))[0] if frames else "poolwise"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _messages(caught: list) -> list[str]:
    return list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, PoolwiseWarning)))


def _shown(progress: bool | None) -> bool:
    """``--progress/--no-progress``, or by default whether stderr is a terminal."""
    return stderr.is_terminal if progress is None else progress


@contextmanager
def _sampling(progress: bool, what: str, backend: str | None = None) -> Iterator[None]:
    """While the library samples: with ``progress``, a bar per sampler run with its elapsed and
    expected time (nutpie's and PyMC's own bars for those backends); otherwise only a spinner."""
    if progress and backend not in (None, "numpyro"):
        yield
        return
    if progress:
        with _bars(what):
            yield
        return
    # Child loggers: importing pymc (which happens later, lazily) resets the level of "pymc" itself.
    quiet = [
        logging.getLogger(name) for name in ("pymc.sampling.mcmc", "pymc.sampling.forward", "pymc.stats.convergence")
    ]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        with stderr.status(what, spinner="dots"):
            yield
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


@contextmanager
def _bars(what: str) -> Iterator[None]:
    """``what`` with a spinner, and under it one bar per task the sampler reports
    (``poolwise.progress``): iterations done, elapsed and expected time."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from poolwise import progress

    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("elapsed, about"),
        TimeRemainingColumn(),
        TextColumn("to go"),
        console=stderr,
        transient=True,
    )
    tasks = {}

    def show(task: str, done: int, total: int) -> None:
        if task not in tasks:
            tasks[task] = bars.add_task(task, total=total)
        elif done < bars.tasks[tasks[task]].completed:  # the same task runs again (a refit batch)
            bars.reset(tasks[task], total=total)
        bars.update(tasks[task], completed=done, total=total)

    with bars, progress.listening(show):
        bars.add_task(what, total=None)
        yield


def _priors(values: list[str] | None):
    """``--prior`` values (each a preset name or TERM=DISTRIBUTION) as the library's ``priors``
    argument."""
    from poolwise.priors import PRESETS

    presets, priors = [], {}
    for value in values or []:
        term, sep, dist = value.partition("=")
        if not sep:
            if value.strip() not in PRESETS:
                raise PoolwiseError(
                    f"--prior {value!r} is neither a preset ({', '.join(PRESETS)}) nor TERM=DISTRIBUTION; "
                    "write e.g. --prior chapter or --prior 'yogaStretch=Normal(mu=0, sigma=1)'"
                )
            presets.append(value.strip())
        elif not term.strip() or not dist.strip():
            raise PoolwiseError(
                f"--prior {value!r} is not TERM=DISTRIBUTION; write e.g. --prior 'yogaStretch=Normal(mu=0, sigma=1)'"
            )
        else:
            priors[term.strip()] = dist.strip()
    if len(set(presets)) > 1:
        raise PoolwiseError(f"--prior takes one preset, got {', '.join(presets)}; keep one")
    if not priors:
        return presets[0] if presets else None
    return {"preset": presets[0], **priors} if presets else priors


def _value(choice: StrEnum | None) -> str | None:
    """An option's enum choice as the plain string the library takes."""
    return None if choice is None else choice.value


def _table(title: str, *, gap: int = 2) -> Table:
    """A compact, R-like table: a rule under the header, ``gap`` spaces between columns."""
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        padding=(0, gap - 1, 0, 0),
        show_edge=False,
    )


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
        table.add_row(
            escape(str(name)),
            _num(row["mean"]),
            _num(row["sd"]),
            _num(row["lower"]),
            _num(row["upper"]),
            _num(row["r_hat"]),
            f"{row['ess_bulk']:.0f}",
            f"{row['ess_tail']:.0f}",
        )
    return table


def _rows(report) -> str:
    """ "48 rows", or "19,819 rows aggregated to 116 counts" where the data stage aggregated them."""
    if report.n_source_rows == report.n_rows:
        return f"{report.n_rows:,} rows"
    return f"{report.n_source_rows:,} rows aggregated to {report.n_rows:,} counts"


def _print_summary(report, *, groups: bool) -> None:
    """What ``fit`` and ``show`` print for one fit."""
    settings = report.settings
    stdout.print(f"[bold]{report.label}[/]  {escape(report.bambi_formula)}")
    grouping = f", {report.n_groups} levels of {report.group}" if report.group else ""
    success = f", success: {escape(str(report.level))}" if report.level is not None else ""
    stdout.print(
        f"Family: {report.family} ({report.link} link{success}). Data: {_rows(report)}{grouping}. "
        f"Draws: {settings['chains']} chains x {settings['draws']} (tune {settings['tune']}), "
        f"{settings['backend']}, seed {settings['seed']}."
    )
    if settings.get("rescue"):
        stdout.print(f"Sampled twice: {escape(settings['rescue'])}.")
    stdout.print(_effects_table(f"Population-level effects ({report.link} scale)", report.population, report.prob))
    for factor, sds in report.group_sds.groupby("factor", sort=False):
        stdout.print(
            _effects_table(
                f"Group-level effects: ~{factor} ({report.factors.get(factor, '?')} levels)", sds, report.prob
            )
        )
    for factor, terms in report.parameterization.items():
        layout = ", ".join(
            f"{term} {how.replace('noncentered', 'non-centred').replace('centered', 'centred')}"
            for term, how in terms.items()
        )
        accept = f"; target acceptance {settings['target_accept']}" if settings.get("target_accept") else ""
        stdout.print(f"Group terms over {factor}: {layout} (chosen from the data, --parameterization){accept}.")
    for factor in report.independent:
        stdout.print(
            f"The terms varying over {factor} are independent (lme4's (...||{factor})): no correlations estimated."
        )
    if report.priors:
        priors = _table("Priors as fitted (the user's, else defaults resolved from the data)")
        for column in ("Term", "Prior"):
            priors.add_column(column, no_wrap=column == "Term")
        for term, prior in report.priors.items():
            priors.add_row(escape(term), escape(prior))
        stdout.print(priors)
    if groups:
        stdout.print(_groups_table(report))
    stdout.print(
        f"Divergences: {report.divergences}. Max Rhat {_num(report.max_r_hat)}, "
        f"min bulk ESS {report.min_ess_bulk:.0f} (of {settings['chains'] * settings['draws']} draws)."
    )


def _groups_table(report) -> Table:
    """One row per group (lme4's coef()): intercept and slope (link scale), both rates with intervals."""
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


def _print_study(study) -> None:
    """What ``compare``, ``demo`` and ``show DIR`` print: the LOO table and the verdict."""
    from poolwise.comparison import label

    table = study.table
    loo = _table("LOO comparison (higher elpd_loo predicts better)")
    for column in ("Model", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "Pareto k>0.7"):
        loo.add_column(column, justify="left" if column == "Model" else "right", no_wrap=True)
    for name, row in table.iterrows():
        loo.add_row(
            label(name),
            _num(row["elpd"], 1),
            _num(row["se"], 1),
            _num(row["elpd_diff"], 1),
            _num(row["dse"], 1),
            _num(row["p"], 1),
            _num(row["weight"]),
            f"{row['n_bad_k']:.0f} of {row['n_obs']:.0f}",
        )
    stdout.print(loo)
    for column, how in (("n_moment_matched", "moment matched"), ("n_refitted", "refitted without the row (exact)")):
        fixed = [f"{label(name, lower=True)} {row[column]:.0f}" for name, row in table.iterrows() if row.get(column)]
        if fixed:
            stdout.print(f"LOO terms with Pareto k > 0.7 {how}: {', '.join(fixed)}.")
    if "elpd_cv" in table.columns:
        cv = _table("Grouped cross-validation (predicting groups left out)")
        for column in ("Model", "elpd_cv", "se_cv"):
            cv.add_column(column, justify="left" if column == "Model" else "right", no_wrap=True)
        for name, row in table.sort_values("elpd_cv", ascending=False).iterrows():
            cv.add_row(label(name), _num(row["elpd_cv"], 1), _num(row["se_cv"], 1))
        stdout.print(cv)
    stdout.print(f"[bold]{escape(study.verdict())}[/]")
    _print_notes(study.notes)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        stdout.print(f"Note: {escape(note)}")


def _one(values: list[str], option: str, example: str) -> str | None:
    """The one --family or --link of a one-formula compare."""
    if len(values) > 1:
        raise PoolwiseError(
            f"{option} is given {len(values)} times for one formula; give it once, or repeat the formula "
            f"to compare {'families' if option == '--family' else 'links'} (compare DATA 'F' 'F' --{example})"
        )
    return values[0] if values else None


def _compare_models(
    frame,
    formulas: list[str],
    *,
    as_json: bool,
    caught: list,
    unsupported: dict,
    outputs: tuple[Path | None, bool, Path | None, bool],
    **settings,
) -> None:
    """``compare DATA FORMULA FORMULA ...``: the models as written, compared by LOO, printed and,
    with ``outputs`` (out, plots, report, force), written as ``compare`` writes a study."""
    from poolwise.comparison import compare_models

    for option, value in unsupported.items():
        if value:
            raise PoolwiseError(
                f"{option} is not available when comparing several formulas yet; compare them without it, or one formula's pooling with it"
            )
    _check_outputs(*outputs)
    # Short names keep the table readable; the legend says which formula each is.
    named = {f"m{number}": formula for number, formula in enumerate(formulas, start=1)}
    with _sampling(settings["progress"], f"Fitting {len(formulas)} models...", settings.get("backend")):
        study = compare_models(named, frame, **settings)
    files = _write_study(study, *outputs)
    if as_json:
        typer.echo(_study_json(study, caught, outputs[0], files))
        return
    for name, fitted in study.fits.items():
        several = isinstance(settings["family"], list) or isinstance(settings["link"], list)
        family = f" (family {fitted.spec.family})" if several else ""
        stdout.print(f"{name}: {escape(named[name])}{family}")
    _print_study(study)
    _print_written(outputs[0], files, outputs[2])


def _compare_saved(
    paths: list[str],
    *,
    as_json: bool,
    caught: list,
    unsupported: dict,
    fix_loo: str,
    outputs: tuple[Path | None, bool, Path | None, bool],
    **cv,
) -> None:
    """``compare A.nc B.nc ...``: saved fits compared by LOO (brms's loo_compare) and, with ``cv``
    (``compare_fits``' cv, folds, by, seed, workers), grouped CV; printed and, with ``outputs``
    (out, plots, report, force), written as ``compare`` writes a study."""
    from poolwise.comparison import compare_fits
    from poolwise.io import load_fit

    for option, value in unsupported.items():
        if value:
            raise PoolwiseError(
                f"{option} is not available when comparing saved fits; compare them without it, or refit with it"
            )
    _check_outputs(*outputs)
    others = [path for path in paths if not path.endswith(".nc")]
    if others:
        raise PoolwiseError(
            f"{others[0]!r} is not a saved fit; compare saved fits only (compare a.nc b.nc) or data with formulas "
            "(compare DATA FORMULA FORMULA)"
        )
    named = {f"m{number}": path for number, path in enumerate(paths, start=1)}
    fits = {name: load_fit(path) for name, path in named.items()}
    with _sampling(_shown(None), "Comparing the saved fits..."):
        study = compare_fits(fits, fix_loo=fix_loo, **cv)
    files = _write_study(study, *outputs)
    if as_json:
        typer.echo(_study_json(study, caught, outputs[0], files))
        return
    for name, fitted in fits.items():
        pooling = fitted.pooling if fitted.spec.factors else "complete"
        stdout.print(
            f"{name}: {escape(named[name])}: {escape(fitted.spec.formula)} (family {fitted.spec.family}, {pooling} pooling)"
        )
    _print_study(study)
    _print_written(outputs[0], files, outputs[2])


def _study_json(study, caught: list, out: Path | None, files: list[Path]) -> str:
    table = json.loads(study.table.reset_index().to_json(orient="records", double_precision=15))
    return json.dumps(
        {
            "formula": study.formula,
            "models": {name: {"formula": fit.formula, "family": fit.spec.family} for name, fit in study.fits.items()},
            "verdict": study.verdict(),
            "table": table,
            "notes": study.notes,
            "warnings": _messages(caught),
            "out": None if out is None else str(out),
            "files": [str(f) for f in files],
        },
        indent=2,
    )


def _compare(
    frame,
    formula: str,
    *,
    out: Path | None,
    force: bool,
    plots: bool,
    as_json: bool,
    caught: list,
    report: Path | None = None,
    **settings,
):
    """Fit, compare, write (with figures if ``plots``) and print; returns the study.

    Shared by ``compare`` and ``demo``; ``settings`` are ``poolwise.comparison``'s keyword arguments.
    """
    from poolwise.comparison import compare

    _check_outputs(out, plots, report, force)
    with _sampling(settings["progress"], "Fitting complete, no and partial pooling...", settings.get("backend")):
        study = compare(formula, frame, **settings)
    files = _write_study(study, out, plots, report, force)
    if as_json:
        typer.echo(_study_json(study, caught, out, files))
        return study
    _print_study(study)
    _print_written(out, files, report)
    return study


def _check_outputs(out: Path | None, plots: bool, report: Path | None, force: bool) -> None:
    """Refuse --plots or --report without --out, and outputs that exist, before anything is fitted."""
    from poolwise.io import check_new
    from poolwise.report import check_output

    if plots and out is None:
        raise PoolwiseError("--plots writes figures into the results folder; pass --out DIR as well")
    if report is not None and out is None:
        raise PoolwiseError("--report is made from the saved results; pass --out DIR as well")
    if out is not None:
        check_new(out, force=force)
    if report is not None:
        check_output(report, force=force)


def _write_study(study, out: Path | None, plots: bool, report: Path | None, force: bool) -> list[Path]:
    """The results folder (with figures if ``plots``) and the report; the files written into the folder."""
    from poolwise.io import save_study
    from poolwise.report import write_report

    files = []
    if out is not None:
        files = save_study(study, out, force=force, extra=_figures(study) if plots else None)
    if report is not None:
        with stderr.status("Writing the report...", spinner="dots"):
            write_report(out, report, force=force)
    return files


def _print_written(out: Path | None, files: list[Path], report: Path | None) -> None:
    if out is not None:
        stdout.print(f"Wrote {escape(str(out))}/: {escape(_listing(files))}")
    if report is not None:
        stdout.print(f"Wrote {escape(str(report))}: the report, one HTML file to open in any browser or send.")


def _listing(files: list[Path]) -> str:
    """``a.csv, b.nc, figures/ (11 files)``: top-level files by name, sub-folders by count."""
    top = [str(f) for f in files if len(f.parts) == 1]
    folders: dict[str, int] = {}
    for f in files:
        if len(f.parts) > 1:
            folders[f.parts[0]] = folders.get(f.parts[0], 0) + 1
    return ", ".join(top + [f"{name}/ ({count} files)" for name, count in folders.items()])


def _figures(study):
    """Writes every figure of ``study`` into figures/ of the results folder being written."""

    def write(folder: Path) -> list[Path]:
        from poolwise.plots import gallery

        with stderr.status("Drawing the figures...", spinner="dots"):
            return gallery(study, folder / "figures")

    return write


@app.command()
def templates(formula: Formula) -> None:
    """Print the three pooling models a formula implies, without fitting.

    Example: poolwise templates 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)'
    """
    with _guarded():
        from poolwise.formulas import parse_formula
        from poolwise.pooling import POOLINGS
        from poolwise.pooling import templates as build

        factors = parse_formula(formula).factors
        formulas = build(formula)
        for entry in POOLINGS:
            stdout.print(f"[bold]{entry.label}[/]: {escape(formulas[entry.name])}")
            stdout.print(f"  {entry.description}")
        # Bambi's (1 + x|g) draws the terms independently; lme4 readers must not take it for theirs.
        for factor in factors:
            if factor.intercept + len(factor.terms) > 1:
                stdout.print(
                    f"  {factor.name}: "
                    + (
                        "correlated terms (lme4's |): poolwise adds an LKJ(1) correlation to Bambi's formula"
                        if factor.correlated
                        else "independent terms (lme4's ||), which Bambi writes with one |"
                    )
                )


@app.command()
def check(data: Data, formula: Formula, family: FamilyOption = None, as_json: AsJson = False) -> None:
    """Check, without fitting, whether the data can identify every coefficient of the three models.

    Exit code 0 when every model can be fitted (warnings name coefficients a prior decides), 1 when
    fit and compare would refuse the design.

    Example: poolwise check gym 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)'
    """
    with _guarded():
        from poolwise.data import read_data
        from poolwise.identify import check as check_design

        report = check_design(formula, read_data(data), family=_value(family))
        if as_json:
            typer.echo(json.dumps(report.to_dict(orient="records"), indent=2))
        else:
            colours = {"ok": "green", "warning": "yellow", "error": "bold red"}
            for _, row in report.iterrows():
                stdout.print(
                    f"[{colours.get(row['status'], 'bold')}]{row['status']:>7}[/]  {escape(row['check'])} "
                    f"({escape(row['models'])}): {escape(row['message'])}"
                )
    if (report["status"] == "error").any():
        raise typer.Exit(1)


@app.command("fit")
def fit_command(
    data: Data,
    formula: Formula,
    model: ModelOption = Model.partial,
    family: FamilyOption = None,
    link: LinkOption = None,
    prior: PriorOption = None,
    backend: BackendOption = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Seed = None,
    out: Annotated[Path | None, typer.Option(help="Save the fit to this netCDF file.", show_default=False)] = None,
    force: Force = False,
    per_group: PerGroup = False,
    prob: Prob = None,
    as_json: AsJson = False,
    progress: Progress = None,
    allow_unidentified: AllowUnidentified = False,
    strict: Strict = False,
    parameterization: ParameterizationOption = Parameterization.auto,
) -> None:
    """Fit one pooling model and print its summary: population effects, group-level sds, diagnostics.

    Example: poolwise fit gym 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)' --per-group --out partial.nc
    """
    with _guarded() as caught:
        from poolwise.data import read_data
        from poolwise.dispersion import check_fits
        from poolwise.fitting import fit
        from poolwise.io import check_new, save_fit
        from poolwise.summaries import summary

        if out is not None:
            check_new(out, force=force)
        chosen = model.value
        frame = read_data(data)
        with _sampling(_shown(progress), f"Fitting the {chosen} pooling model...", _value(backend)):
            result = fit(
                formula,
                frame,
                pooling=chosen,
                family=_value(family),
                link=_value(link),
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                backend=_value(backend),
                priors=_priors(prior),
                allow_unidentified=allow_unidentified,
                parameterization=parameterization.value,
                progress=_shown(progress),
                missing="error" if strict else "drop",
            )
        report = summary(result, prob=prob)
        notes = check_fits({chosen: result}, {chosen: report.label})
        if out is not None:
            save_fit(result, out, force=force)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        **report.to_dict(),
                        "notes": notes,
                        "warnings": _messages(caught),
                        "out": None if out is None else str(out),
                    },
                    indent=2,
                )
            )
            return
        _print_summary(report, groups=per_group)
        _print_notes(notes)
        if out is not None:
            stdout.print(f"Saved the fit to {escape(str(out))} (poolwise show {escape(str(out))} prints this again).")


@app.command("compare")
def compare_command(
    data: Data,
    formulas: Annotated[
        list[str],
        typer.Argument(
            metavar="FORMULA...",
            help=f"lme4/brms-style formula, e.g. '{GYM}'; with several, those models are compared as written. "
            "'compare a.nc b.nc' compares saved fits (poolwise fit --out).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Write fits (.nc), tables (.csv) and study.json into this new folder.", show_default=False),
    ] = None,
    force: Force = False,
    plots: Annotated[
        bool, typer.Option("--plots", help="Also draw every figure into DIR/figures (needs --out).")
    ] = False,
    family: FamiliesOption = None,
    link: LinksOption = None,
    prior: PriorOption = None,
    backend: BackendOption = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Seed = None,
    as_json: AsJson = False,
    progress: Progress = None,
    allow_unidentified: AllowUnidentified = False,
    strict: Strict = False,
    parameterization: ParameterizationOption = Parameterization.auto,
    cv: Annotated[
        CV | None,
        typer.Option(help="Also cross-validate: group leaves groups out, refitting each fold.", show_default=False),
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(help="Number of group folds for --cv group (default: one group per fold).", show_default=False),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes for --cv group (1: here, every fold reusing one compiled model).")
    ] = 1,
    fix_loo: Annotated[
        FixLoo,
        typer.Option(
            help="LOO terms with Pareto k > 0.7: refit the model without each (exact), moment_match first, or off."
        ),
    ] = FixLoo.refit,
    by: Annotated[
        str | None,
        typer.Option(
            help="The grouping factor --cv group leaves out (default: the first in the formula).", show_default=False
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Also write a self-contained HTML report to this file (needs --out; see 'poolwise report').",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fit complete, no and partial pooling, compare them by LOO and say which predicts best; or,
    given several formulas, compare those models as written (brms's loo_compare).

    Example: poolwise compare gym 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)' --out results --plots
    """
    with _guarded() as caught:
        from poolwise.data import read_data

        families = [entry.value for entry in family or []]
        links = [entry.value for entry in link or []]
        if str(data).endswith(".nc"):
            _compare_saved(
                [str(data), *formulas],
                as_json=as_json,
                caught=caught,
                unsupported={"--family": family, "--link": link},
                fix_loo=fix_loo.value,
                outputs=(out, plots, report, force),
                cv=_value(cv),
                folds=folds,
                by=by,
                seed=seed,
                workers=workers,
            )
            return
        if len(formulas) > 1:
            _compare_models(
                read_data(data),
                formulas,
                as_json=as_json,
                caught=caught,
                unsupported={"--parameterization": parameterization.value != "auto"},
                outputs=(out, plots, report, force),
                cv=_value(cv),
                folds=folds,
                by=by,
                workers=workers,
                family=families[0] if len(families) == 1 else (families or None),
                link=links[0] if len(links) == 1 else (links or None),
                priors=_priors(prior),
                backend=_value(backend),
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                progress=_shown(progress),
                allow_unidentified=allow_unidentified,
                fix_loo=fix_loo.value,
                missing="error" if strict else "drop",
            )
            return
        _compare(
            read_data(data),
            formulas[0],
            out=out,
            force=force,
            plots=plots,
            as_json=as_json,
            caught=caught,
            report=report,
            family=_one(families, "--family", "family binomial --family beta_binomial"),
            link=_one(links, "--link", "link logit --link probit"),
            priors=_priors(prior),
            backend=_value(backend),
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress=_shown(progress),
            allow_unidentified=allow_unidentified,
            parameterization=parameterization.value,
            cv=_value(cv),
            folds=folds,
            workers=workers,
            by=by,
            fix_loo=fix_loo.value,
            missing="error" if strict else "drop",
        )


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option(help="Folder for the results (default: a new temporary folder).", show_default=False)
    ] = None,
    force: Force = False,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2024,
    plots: Annotated[bool, typer.Option(help="Draw every figure into the results' figures/ folder.")] = True,
    as_json: AsJson = False,
    progress: Progress = None,
) -> None:
    """Run the main job on the bundled simulated franchise (offline, about a minute).

    Fits and compares the three models, writes the results and checks the estimate against the
    truth the data were simulated from.

    Example: poolwise demo --out demo-results
    """
    with _guarded() as caught:
        from poolwise.data import EXAMPLE, example_path, load_dataset
        from poolwise.estimates import interval_prob, population_draws, summarise

        truth = json.loads(example_path().with_name(f"{EXAMPLE}_truth.json").read_text())
        target = out if out is not None else Path(tempfile.mkdtemp(prefix="poolwise-demo-")) / "results"
        if not as_json:
            stdout.print(f"Demo: {truth['formula']} on {example_path()} ({EXAMPLE}, simulated)")
        study = _compare(
            load_dataset(EXAMPLE),
            truth["formula"],
            out=target,
            force=force,
            plots=plots,
            as_json=as_json,
            caught=caught,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress=_shown(progress),
        )
        if not as_json:
            slope = summarise(population_draws(study.fits["partial"])["beta"])
            stdout.print(
                f"Truth: population yogaStretch slope {truth['population']['beta']:.2f}; partial pooling "
                f"estimates {slope['mean']:.2f} ({interval_prob():.0%} interval {slope['lower']:.2f} to {slope['upper']:.2f})."
            )


@app.command()
def show(
    path: Annotated[
        Path,
        typer.Argument(
            help="A fit saved by 'fit --out' (.nc) or a folder saved by 'compare --out'.", show_default=False
        ),
    ],
    per_group: PerGroup = False,
    prob: Prob = None,
    as_json: AsJson = False,
) -> None:
    """Print the summary of a saved fit, or the LOO comparison of a saved study, without refitting.

    Example: poolwise show partial.nc --per-group
    """
    with _guarded() as caught:
        from poolwise.dispersion import check_fits
        from poolwise.fitting import check_sampling
        from poolwise.io import load
        from poolwise.summaries import summary

        saved = load(path)
        for fit in getattr(saved, "fits", {"fit": saved}).values():
            check_sampling(fit)
        if hasattr(saved, "fits"):
            if as_json:
                typer.echo(_study_json(saved, caught, None, []))
            else:
                _print_study(saved)
            return
        report = summary(saved, prob=prob)
        notes = check_fits({saved.pooling: saved}, {saved.pooling: report.label})
        if as_json:
            typer.echo(json.dumps({**report.to_dict(), "notes": notes, "warnings": _messages(caught)}, indent=2))
        else:
            _print_summary(report, groups=per_group)
            _print_notes(notes)


@app.command("predict")
def predict_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="A fit saved by 'fit --out' (.nc) or a folder saved by 'compare --out'.", show_default=False
        ),
    ],
    newdata: Annotated[str, typer.Argument(help="CSV/Parquet file of the rows to predict.", show_default=False)],
    out: Annotated[
        Path, typer.Option(help="The CSV file to write (a summary per row), or a .nc file (every draw, netCDF).")
    ] = Path("predictions.csv"),
    model: Annotated[
        str | None,
        typer.Option(help="Which model of a study: partial (default), none or complete.", show_default=False),
    ] = None,
    kind: Annotated[
        str,
        typer.Option(help="mean (expected outcome of the row), rate (per trial or unit of exposure), outcome or link."),
    ] = "mean",
    groups: Annotated[
        str,
        typer.Option(help="fitted (seen groups their own, unseen ones drawn), population (group effects 0) or new."),
    ] = "fitted",
    prob: Prob = None,
    seed: Seed = None,
    force: Force = False,
) -> None:
    """Predict new rows from a saved fit or study: mean, sd and interval per row into a CSV, or every
    draw into a netCDF file (--out NAME.nc).

    Example: poolwise predict results new_gyms.csv --kind rate --out predictions.csv
    """
    with _guarded():
        from poolwise.data import read_data
        from poolwise.io import ENGINE, atomic_path, check_new, load
        from poolwise.prediction import draws_dataset, predict

        check_new(out, force=force)
        rows = read_data(newdata)
        every = out.suffix == ".nc"
        predicted = predict(load(path), rows, model=model, kind=kind, groups=groups, prob=prob, seed=seed, draws=every)
        with atomic_path(out, force=force) as temporary:
            if every:
                draws_dataset(predicted, rows, kind).to_netcdf(temporary, engine=ENGINE)
            else:
                predicted.to_csv(temporary, index=False)
        what = "every draw of " if every else ""
        stdout.print(f"Wrote {escape(str(out))}: {len(rows)} rows, {what}{kind} with {groups} groups.")


@app.command()
def report(
    results_dir: Annotated[
        Path,
        typer.Argument(
            help="A folder saved by 'compare --out' (its figures/ are used when present).", show_default=False
        ),
    ],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    force: Force = False,
    trials: Annotated[
        float,
        typer.Option(
            help="Size of each new group for the expected outcomes: trials (binomial), units of exposure (poisson with an offset) or observations."
        ),
    ] = 50,
    new_groups: Annotated[int, typer.Option(help="Number of new groups for the expected outcomes.")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed for simulated new groups.")] = 0,
) -> None:
    """Write one self-contained HTML report of saved results: verdict, tables, figures, diagnostics.

    It opens offline in any browser, reads on a phone and prints to PDF.

    Example: poolwise report results --out report.html
    """
    with _guarded():
        from poolwise.report import write_report

        with stderr.status("Writing the report...", spinner="dots"):
            written = write_report(results_dir, out, force=force, trials=trials, groups=new_groups, seed=seed)
        stdout.print(f"Wrote {escape(str(written))}: one HTML file to open in any browser or send.")


@app.command()
def simulate(
    folder: Annotated[
        Path,
        typer.Argument(
            help="Folder to write the data (e.g. franchise.csv) and its truth (franchise_truth.json) into.",
            show_default=False,
        ),
    ],
    family: Annotated[
        SimulatedFamily,
        typer.Option(
            help="binomial: signups of trial customers (franchise.csv); poisson: visits per member-month (visits.csv); negativebinomial: overdispersed visits (visits_overdispersed.csv); gaussian: satisfaction scores (satisfaction.csv); beta_binomial: overdispersed signups (franchise_overdispersed.csv); t: heavy-tailed satisfaction scores (satisfaction_heavy.csv); gamma: spend per customer (spend.csv); lognormal: minutes to sign up (signup_minutes.csv); beta: share of visits spent in classes (class_share.csv); cumulative: ratings 1-5 of the trial class (class_ratings.csv); zero-inflated and hurdle counts: classes booked per trial customer (bookings_*.csv)."
        ),
    ] = SimulatedFamily.binomial,
    groups: Annotated[int, typer.Option(min=1, help="Number of gyms.")] = 12,
    periods: Annotated[int, typer.Option(min=2, help="Periods per gym (the treatment starts halfway).")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2024,
    force: Force = False,
) -> None:
    """Simulate a franchise of gyms with known truth, as the bundled example data were made.

    Example: poolwise simulate sim --family poisson --groups 30 --seed 7
    """
    with _guarded():
        from poolwise.data import SIMULATIONS, write_example
        from poolwise.io import check_new

        family = family.value
        name = SIMULATIONS[family]["name"]
        for file in (f"{name}.csv", f"{name}_truth.json"):
            check_new(folder / file, force=force)
        path = write_example(folder, family=family, groups=groups, periods=periods, seed=seed)
        stdout.print(
            f"Wrote {escape(str(path))} ({groups} gyms x {periods} periods) and its truth "
            f"{escape(str(path.with_name(f'{name}_truth.json')))}."
        )
        option = "" if family in ("binomial", "poisson", "gaussian") else f" --family {family}"  # what lme4 would infer
        stdout.print(f"Next: poolwise compare {escape(str(path))} '{SIMULATIONS[family]['formula']}'{option}")


@app.command(help=_plot_help())
def plot(
    kind: Annotated[FigureName, typer.Argument(help="The figure to draw.", show_default=False)],
    source: Annotated[
        str,
        typer.Argument(
            help="A results folder (compare --out), a saved fit (.nc), or with --formula a CSV/Parquet file or dataset name.",
            show_default=False,
        ),
    ],
    formula: Annotated[
        str | None, typer.Option(help="The formula, to draw 'data' straight from a data file.", show_default=False)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Image file to write (default: KIND.png; .svg and .pdf work too).", show_default=False),
    ] = None,
    force: Force = False,
    group: Group = None,
    seed: Annotated[int, typer.Option(help="Random seed for simulated draws (predictive checks, new groups).")] = 0,
) -> None:
    with _guarded():
        from poolwise.io import check_new, load
        from poolwise.plots.figures import FIGURES

        figure = FIGURES[kind.value]
        target = check_new(out if out is not None else Path(f"{figure.name}.png"), force=force)
        with stderr.status(f"Drawing {figure.name}...", spinner="dots"):
            if formula is not None:
                if figure.name != "data":
                    raise PoolwiseError(
                        f"--formula draws the data figure only; draw {figure.name} from saved results (compare --out DIR)"
                    )
                from poolwise.data import read_data
                from poolwise.plots import data_bars, data_bars_table
                from poolwise.plots.style import save

                written = save(data_bars(data_bars_table(read_data(source), formula)), target)
            else:
                written = figure.save(load(source).focused(group), target, seed=seed)
        stdout.print(f"Wrote {escape(str(written))}: {escape(figure.description)}")


@app.command()
def decide(
    source: Annotated[
        Path, typer.Argument(help="A saved fit (.nc) or a results folder (compare --out).", show_default=False)
    ],
    model: Annotated[
        Model | None,
        typer.Option(
            help="Which model of a results folder to decide with (default: partial pooling, else the best model "
            "by LOO, said in the output; decide with one of your own formulas' models as DIR/m1.nc).",
            show_default=False,
        ),
    ] = None,
    treatment: Annotated[
        str | None,
        typer.Option(help="The treatment term (default: the formula's first varying slope).", show_default=False),
    ] = None,
    trials: Annotated[
        float,
        typer.Option(
            help="Size of each new group for the expected outcomes: trials (binomial), units of exposure (poisson with an offset) or observations."
        ),
    ] = 50,
    lower_is_better: Annotated[
        bool,
        typer.Option(
            "--lower-is-better", help="The treatment helps when it lowers the mean (e.g. defects, reaction time)."
        ),
    ] = False,
    new_groups: Annotated[int, typer.Option(help="Number of new groups for the expected outcomes.")] = 100,
    per_group: PerGroup = False,
    seed: Annotated[int, typer.Option(help="Random seed for simulated new groups.")] = 0,
    group: Group = None,
    prob: Prob = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Also give P(helps by more than this difference of rates), e.g. 0.02 for two points.",
            show_default=False,
        ),
    ] = None,
    at: Annotated[
        list[str] | None,
        typer.Option(
            "--at",
            metavar="NAME=VALUE",
            help="Hold a predictor at a value instead of averaging over the observed rows; repeatable.",
            show_default=False,
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Answer the business question on the response scale: does the treatment help?

    For a typical group, a new group and (--per-group) each observed group, and what total
    outcome new groups should expect.

    Example: poolwise decide results --trials 50 --new-groups 100
    """
    with _guarded() as caught:
        from poolwise.decisions import decide as decide_fit
        from poolwise.io import load
        from poolwise.plots.decisions import decision_fit

        saved = load(source).focused(group)
        if hasattr(saved, "fits") and model is not None and model.value not in saved.fits:
            own = any(name not in Model.__members__ for name in saved.fits)
            how = f"decide with one as {source}/{next(iter(saved.fits))}.nc" if own else "use --model with one of them"
            raise PoolwiseError(f"{source} has no {model.value} fit; its models are {', '.join(saved.fits)}: {how}")
        fit = saved.fits[model.value] if model is not None and hasattr(saved, "fits") else decision_fit(saved)
        if hasattr(saved, "fits") and model is None and "partial" not in saved.fits and not as_json:
            chosen = next(name for name, fitted in saved.fits.items() if fitted is fit)
            stdout.print(f"Deciding with {escape(chosen)} ({escape(fit.spec.formula)}), the best model by LOO.")
        decision = decide_fit(
            fit,
            treatment=treatment,
            trials=int(trials) if float(trials).is_integer() else trials,
            groups=new_groups,
            higher_is_better=not lower_is_better,
            seed=seed,
            prob=prob,
            threshold=threshold,
            at=_held(at),
        )
        if as_json:
            tables = {
                name: json.loads(getattr(decision, name).to_json(orient="records", double_precision=15))
                for name in ("typical", "new_group", "expected", "per_group", "best", "shares")
            }
            typer.echo(
                json.dumps(
                    {
                        "model": decision.pooling,
                        "treatment": decision.treatment,
                        "reference": decision.reference,
                        "arms": decision.arms,
                        "verdict": decision.verdict(),
                        **tables,
                        "notes": decision.notes,
                        "warnings": _messages(caught),
                    },
                    indent=2,
                )
            )
            return
        _print_decision(decision, per_group=per_group)


def _shares_table(decision, categorical: bool):
    """``Decision.shares_rows`` as a table: the shares in percent, the change in points."""
    pct = f"{decision.prob:.0%}"
    shares = _table(f"P({escape(decision.shares_subject())}), {pct} intervals of the change")
    columns = (
        "Scope",
        *(["Level"] if categorical else []),
        decision.outcome,
        "Without",
        "With",
        "Change",
        f"{pct} interval",
    )
    for column in columns:
        shares.add_column(escape(column), justify="left" if column in ("Scope", "Level") else "right", no_wrap=True)
    for row in decision.shares_rows().itertuples(index=False):
        shares.add_row(
            row.scope,
            *([escape(row.arm)] if categorical else []),
            f"{row.value:g}",
            f"{row.share_without:.1%}",
            f"{row.share_with:.1%}",
            f"{100 * row.change:+.1f} pts",
            f"{100 * row.lower:+.1f} to {100 * row.upper:+.1f}",
        )
    return shares


def _held(pairs: list[str] | None) -> dict | None:
    """``--at NAME=VALUE`` options as a dict, numbers where the value reads as one."""
    if not pairs:
        return None
    held = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise PoolwiseError(f"--at takes NAME=VALUE, e.g. --at age=40, not {pair!r}")
        try:
            held[name.strip()] = float(value)
        except ValueError:
            held[name.strip()] = value.strip()
    return held


def _print_decision(decision, *, per_group: bool) -> None:
    from poolwise.decisions import measure
    from poolwise.families import family

    pct = f"{decision.prob:.0%}"
    probability = family(decision.family).probability
    categorical = not decision.best.empty or decision.arms != ["1"]
    what = (
        "rates on the probability scale" if probability else measure(decision.family, decision.outcome, decision.unit)
    )
    against = f" (each level against {decision.reference})" if categorical else ""
    rates = _table(f"{escape(decision.treatment)}: {escape(what)}{escape(against)}, {pct} intervals", gap=1)
    beyond = () if decision.threshold is None else (f"P(by >{decision.threshold:g})",)
    numbers = ("Mean", f"l-{pct}", f"u-{pct}", "P(helps)", *beyond)
    columns = (decision.factor, *(["Level"] if categorical else []), "Quantity", *numbers, "Source")
    for column in columns:
        rates.add_column(escape(column), justify="right" if column in numbers else "left", no_wrap=True)
    frames = [decision.typical, decision.new_group] + ([decision.per_group] if per_group else [])
    for frame in frames:
        for _, row in frame.iterrows():
            digits = ".2f" if row["quantity"] == "ratio" else ".3f" if probability else ".3g"
            cells = [f"{row[c]:{digits}}" if row[c] == row[c] else "nan" for c in ("mean", "lower", "upper")]
            level = [escape(str(row["arm"]))] if categorical else []
            by = [] if decision.threshold is None else [_num(row["p_helps_by"])]
            rates.add_row(
                escape(str(row["group"])),
                *level,
                row["quantity"],
                *cells,
                _num(row["p_helps"]),
                *by,
                escape(row["source"]),
            )
    stdout.print(rates)
    if not decision.best.empty:
        best = _table("P(best): the probability that each level is the best of all")
        for column in ("Scope", "Level", "P(best)"):
            best.add_column(column, justify="right" if column == "P(best)" else "left", no_wrap=True)
        for _, row in decision.best.iterrows():
            best.add_row(row["scope"], escape(str(row["level"])), _num(row["p_best"]))
        stdout.print(best)
    if not decision.shares.empty:
        stdout.print(_shares_table(decision, categorical))
    expected = _table(
        f"Expected {escape(decision.outcome)}: {decision.groups} new {escape(decision.factor)}s x "
        f"{decision.trials:g} {escape(decision.unit)}"
    )
    for column in (*(["Level"] if categorical else []), "Quantity", "Mean", f"l-{pct}", f"u-{pct}", "P(helps)"):
        expected.add_column(column, justify="left" if column in ("Quantity", "Level") else "right", no_wrap=True)
    digits = 0 if find_family(decision.family).counts else 3
    for _, row in decision.expected.iterrows():
        level = [escape(str(row["arm"]))] if categorical else []
        expected.add_row(
            *level,
            row["quantity"],
            _num(row["mean"], digits),
            _num(row["lower"], digits),
            _num(row["upper"], digits),
            _num(row["p_helps"]),
        )
    stdout.print(expected)
    stdout.print(f"[bold]{escape(decision.verdict())}[/]")
