"""A saved comparison as one self-contained HTML report that an analyst can send.

The last stage of the pipeline: a saved study in, one HTML file out. Python computes every number
and formats it the way its family reads (probabilities as percentages, other scales to three
significant digits); the Jinja2 template ``templates/report.html.j2`` (its CSS included) only lays
them out, so a designer can restyle the report without touching a number. Figures are embedded as
base64 PNGs and the page loads nothing from the network (its Content-Security-Policy forbids it):
it opens offline, reads on a laptop or a phone, and prints to PDF.

>>> write_report("results", "report.html")  # doctest: +SKIP
"""

import base64
import io
import json
import os
import shlex
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from poolwise.comparison import Study
from poolwise.decisions import Decision, decide, measure
from poolwise.decisions import unit as size_unit
from poolwise.errors import PoolwiseError
from poolwise.families import family as find_family
from poolwise.fitting import ESS_MIN, RHAT_MAX
from poolwise.identify import prior_only_messages
from poolwise.io import atomic_path, check_new, load_study
from poolwise.plots.decisions import decision_fit
from poolwise.plots.figures import FIGURES
from poolwise.plots.style import model_label
from poolwise.pooling import POOLINGS
from poolwise.seeds import of_comparison
from poolwise.summaries import summary

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 120  # figures drawn for the report: sharp on a laptop, small enough to e-mail
MISSING = "–"  # a number that does not exist (no pooling has no typical group)


@dataclass
class Table:
    """A table as the report's template shows it: every cell already formatted.

    Parameters
    ----------
    caption : str
        The table's caption.
    columns : list of str
        Column headers.
    rows : list of list of str
        Formatted cells; the first column names the row.
    numeric : list of bool
        Which columns hold numbers (right-aligned).

    Examples
    --------
    >>> Table("Expected signups", ["", "Mean"], [["Total", "1,749"]], [False, True]).rows
    [['Total', '1,749']]
    """

    caption: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)


# ---------------------------------------------------------------- numbers as the family reads them


def significant(value: float, digits: int = 3) -> str:
    """A number to ``digits`` significant digits, without exponents.

    Parameters
    ----------
    value : float
        The number (None or non-finite shows as a dash).
    digits : int
        Significant digits.

    Returns
    -------
    str
        E.g. 0.0123, 4.06, 1,749.

    Examples
    --------
    >>> significant(0.012345), significant(4.0567), significant(1749.2)
    ('0.0123', '4.06', '1,749')
    """
    if value is None or not np.isfinite(value):
        return MISSING
    if value == 0:
        return "0"
    decimals = max(digits - 1 - int(np.floor(np.log10(abs(value)))), 0)
    return f"{value:,.{decimals}f}"


def is_probability(family: str) -> bool:
    """Whether ``family``'s mean response is a probability (shown as a percentage).

    Parameters
    ----------
    family : str
        The outcome family.

    Returns
    -------
    bool
        True for bernoulli and binomial.

    Examples
    --------
    >>> is_probability("binomial"), is_probability("poisson")
    (True, False)
    """
    return find_family(family).scale == "probability"


def mean_text(value: float, family: str, *, unit: bool = True) -> str:
    """A mean response as the report shows it.

    Parameters
    ----------
    value : float
        The mean response.
    family : str
        The outcome family.
    unit : bool
        Show the percent sign of a probability.

    Returns
    -------
    str
        '32.0%' for a probability (``unit=False``: '32.0'), else three significant digits.

    Examples
    --------
    >>> mean_text(0.32, "binomial"), mean_text(4.0567, "poisson")
    ('32.0%', '4.06')
    """
    if not np.isfinite(value):
        return MISSING
    if is_probability(family):
        return f"{100 * value:.1f}" + ("%" if unit else "")
    return significant(value)


def change_text(value: float, family: str, *, unit: bool = True) -> str:
    """A difference of two mean responses as the report shows it.

    Parameters
    ----------
    value : float
        The difference.
    family : str
        The outcome family.
    unit : bool
        Show " pts" after a difference of probabilities.

    Returns
    -------
    str
        '+6.3 pts' for probabilities (percentage points), else signed significant digits.

    Examples
    --------
    >>> change_text(0.063, "binomial"), change_text(-1.23, "gaussian")
    ('+6.3 pts', '-1.23')
    """
    if not np.isfinite(value):
        return MISSING
    if is_probability(family):
        return f"{100 * value:+.1f}" + (" pts" if unit else "")
    return ("+" if value >= 0 else "-") + significant(abs(value))


def estimate_text(row: pd.Series, family: str, quantity: str) -> str:
    """A mean and its interval, the unit said once.

    Parameters
    ----------
    row : pandas.Series
        With mean, lower and upper.
    family : str
        The outcome family.
    quantity : str
        ``"difference"``, ``"ratio"`` or a mean response (rate_without, rate_with).

    Returns
    -------
    str
        E.g. '32.0% (23.5 to 42.0)', '+6.3 pts (-5.1 to +15.1)'.

    Examples
    --------
    >>> import pandas as pd
    >>> estimate_text(pd.Series({"mean": 0.32, "lower": 0.235, "upper": 0.42}), "binomial", "rate_with")
    '32.0% (23.5 to 42.0)'
    """
    if not np.isfinite(row["mean"]):
        return MISSING
    if quantity == "ratio":
        return f"{significant(row['mean'])} ({significant(row['lower'])} to {significant(row['upper'])})"
    show = change_text if quantity == "difference" else mean_text
    return f"{show(row['mean'], family)} ({show(row['lower'], family, unit=False)} to {show(row['upper'], family, unit=False)})"


def _number(value: float, digits: int) -> str:
    return MISSING if not np.isfinite(value) else f"{value:.{digits}f}"


# ---------------------------------------------------------------- the sections


def _decision(study: Study, trials: float, groups: int, seed: int) -> tuple[Decision | None, str]:
    """The decision of partial pooling (else of the best model there is), or why there is none."""
    fit = decision_fit(study)
    if fit.spec.treatment is None:
        return None, (
            f"The formula {fit.spec.formula} has no treatment term, so there is no with/without decision; "
            "add a term such as x + (x|group) to ask one."
        )
    return decide(fit, trials=trials, groups=groups, seed=seed), ""


def _own_models(study: Study) -> bool:
    """Whether the study compares the analyst's own formulas (m1, m2, ...), not pooling models."""
    return any(name not in {entry.name for entry in POOLINGS} for name in study.fits)


def _decided(study: Study) -> tuple[str, str]:
    """The decided model's name as a heading and within a sentence: "Partial pooling" and "partial
    pooling", or "m2 (y ~ x + (1|g))" for one of the analyst's own models."""
    fit = decision_fit(study)
    name = next(name for name, fitted in study.fits.items() if fitted is fit)
    if _own_models(study):
        label = f"{name} ({fit.spec.formula})"
        return label, label
    return model_label(name), model_label(name).lower()


def _legend(study: Study) -> list[str]:
    """Which formula (and family) each of the analyst's own models is; empty for pooling models."""
    if not _own_models(study):
        return []
    return [f"{name}: {fit.spec.formula} (family {fit.spec.family})" for name, fit in study.fits.items()]


def _question(study: Study, decision: Decision | None) -> str:
    models = " and ".join(", ".join(model_label(name).lower() for name in study.fits).rsplit(", ", 1))
    which = f"which of {models} predicts best?"
    if decision is None:
        return which[:1].upper() + which[1:]
    better = "higher" if decision.higher_is_better else "lower"
    return f"Does {decision.treatment} help a {decision.factor} ({better} {decision.outcome} is better), and {which}"


def _loo_tables(table: pd.DataFrame) -> tuple[Table, Table | None]:
    loo = Table(
        "LOO comparison (higher elpd_loo predicts better)",
        ["Model", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "Pareto k > 0.7"],
        [
            [
                model_label(name),
                _number(row["elpd"], 1),
                _number(row["se"], 1),
                _number(row["elpd_diff"], 1),
                _number(row["dse"], 1),
                _number(row["p"], 1),
                _number(row["weight"], 2),
                f"{row['n_bad_k']:.0f} of {row['n_obs']:.0f}",
            ]
            for name, row in table.iterrows()
        ],
        [False] + [True] * 7,
    )
    if "elpd_cv" not in table.columns:
        return loo, None
    ranked = table.sort_values("elpd_cv", ascending=False)
    cv = Table(
        "Grouped cross-validation (predicting groups left out; higher predicts better)",
        ["Model", "elpd_cv", "se_cv"],
        [[model_label(name), _number(row["elpd_cv"], 1), _number(row["se_cv"], 1)] for name, row in ranked.iterrows()],
        [False, True, True],
    )
    return loo, cv


def _rate_table(decision: Decision) -> Table | None:
    """The typical and the new group, one row each; None when the model has no population."""
    family, pct, who = decision.family, f"{decision.prob:.0%}", decision.factor
    frames = {f"Typical {who}": decision.typical, f"New {who}": decision.new_group}
    if all(frame["mean"].isna().all() for frame in frames.values()):
        return None
    titles = _titles(decision)
    quantities = [q for q in titles if q in set(decision.typical["quantity"])]
    rows = []
    for label, frame in frames.items():
        for arm, part in frame.groupby("arm", sort=False):
            by = part.set_index("quantity")
            rows.append(
                [
                    label + _arm_label(decision, arm),
                    *(estimate_text(by.loc[q], family, q) for q in quantities),
                    _number(by.loc["difference", "p_helps"], 2),
                ]
            )
    levels = f", each level of {decision.treatment} against {decision.reference}" if _categorical(decision) else ""
    return Table(
        f"Typical and new {who}: {_measure(decision)}, mean ({pct} interval){levels}",
        ["", *(titles[q] for q in quantities), "P(helps)"],
        rows,
        [False] + [True] * (len(quantities) + 1),
    )


def _categorical(decision: Decision) -> bool:
    return not decision.best.empty or decision.arms != ["1"]


def _arm_label(decision: Decision, arm: str) -> str:
    """ ", level B against A" for a categorical treatment's rows; nothing for a numeric one."""
    return f": {arm}" if _categorical(decision) else ""


def _titles(decision: Decision) -> dict[str, str]:
    if _categorical(decision):
        return {
            "rate_without": f"At {decision.reference}",
            "rate_with": "At the level",
            "difference": "Difference",
            "ratio": "Ratio",
        }
    return {
        "rate_without": f"Without {decision.treatment}",
        "rate_with": f"With {decision.treatment}",
        "difference": "Difference",
        "ratio": "Ratio",
    }


def _measure(decision: Decision) -> str:
    return measure(decision.family, decision.outcome, decision.unit)


def _shares_table(decision: Decision) -> Table | None:
    """P(each rating), or P(zero) of counts, without and with the treatment, and the change in points."""
    if decision is None or decision.shares.empty:
        return None
    pct = f"{decision.prob:.0%}"
    who = {"typical": f"typical {decision.factor}", "new": f"new {decision.factor}"}
    body = [
        [
            f"{who[row.scope]}: {decision.outcome} {row.value:g}" + (f" ({row.arm})" if _categorical(decision) else ""),
            f"{row.share_without:.1%}",
            f"{row.share_with:.1%}",
            f"{100 * row.change:+.1f} points ({100 * row.lower:+.1f} to {100 * row.upper:+.1f})",
        ]
        for row in decision.shares_rows().itertuples(index=False)
    ]
    titles = _titles(decision)
    return Table(
        f"P({decision.shares_subject()}): mean, and the change with its {pct} interval",
        ["", titles["rate_without"], titles["rate_with"], "Change"],
        body,
        [False, True, True, True],
    )


def _expected_table(decision: Decision) -> Table | None:
    if decision.expected["mean"].isna().all():
        return None
    total = "Total" if find_family(decision.family).counts else "Mean"
    body = []
    for arm, part in decision.expected.groupby("arm", sort=False):
        rows = part.set_index("quantity")
        if _categorical(decision):
            labels = {
                "outcome_without": f"{total} {decision.outcome} at {decision.reference}",
                "outcome_with": f"{total} {decision.outcome} at {arm}",
                "difference": f"Difference, {arm} against {decision.reference}",
            }
        else:
            labels = {
                "outcome_without": f"{total} {decision.outcome} without {decision.treatment}",
                "outcome_with": f"{total} {decision.outcome} with {decision.treatment}",
                "difference": "Difference",
            }
        for q, label in labels.items():
            sign = "+" if q == "difference" else ""
            show = _outcome_text(decision.family, sign)
            body.append(
                [
                    label,
                    show(rows.loc[q, "mean"]),
                    f"{show(rows.loc[q, 'lower'])} to {show(rows.loc[q, 'upper'])}",
                    _number(rows.loc[q, "p_helps"], 2) if q == "difference" else "",
                ]
            )
    per = "in total" if find_family(decision.family).counts else "per observation"
    return Table(
        f"{decision.groups} new {decision.factor}s × {decision.trials:,g} {decision.unit} each: {decision.outcome} {per}",
        ["", "Mean", f"{decision.prob:.0%} interval", "P(helps)"],
        body,
        [False, True, True, True],
    )


def _outcome_text(family: str, sign: str) -> Callable[[float], str]:
    """Expected outcomes: whole counts with thousands separators, a gaussian mean to three digits;
    ``sign="+"`` signs a difference."""

    def show(value: float) -> str:
        if not np.isfinite(value):
            return MISSING
        if not find_family(family).counts:
            return change_text(value, family) if sign else significant(value)
        return f"{value:{sign},.0f}"

    return show


def _per_group_table(study: Study, decision: Decision | None) -> Table:
    if decision is None:
        fit = decision_fit(study)
        report = summary(fit)
        family, what = fit.spec.family, measure(fit.spec.family, fit.spec.outcome, size_unit(fit))
        return Table(
            f"{_decided(study)[0]}: each {report.group or 'group'}'s {what} ({report.prob:.0%} interval)",
            [report.group or "group", what[:1].upper() + what[1:]],
            [
                [
                    str(group),
                    estimate_text(
                        pd.Series(
                            {
                                "mean": row["rate_without"],
                                "lower": row["rate_without_lower"],
                                "upper": row["rate_without_upper"],
                            }
                        ),
                        family,
                        "rate_without",
                    ),
                ]
                for group, row in report.groups.iterrows()
            ],
            [False, True],
        )
    rows = []
    for (group, arm), frame in decision.per_group.groupby(["group", "arm"], sort=False):
        by = frame.set_index("quantity")
        rows.append(
            [
                str(group) + (f" ({arm})" if _categorical(decision) else ""),
                *(estimate_text(by.loc[q], decision.family, q) for q in ("rate_without", "rate_with", "difference")),
                _number(by.loc["difference", "p_helps"], 2),
                by.loc["difference", "source"],
            ]
        )
    titles = _titles(decision)
    return Table(
        f"{_decided(study)[0]}: each {decision.factor}'s {_measure(decision)} ({decision.prob:.0%} interval)",
        [decision.factor, titles["rate_without"], titles["rate_with"], "Difference", "P(helps)", "Informed by"],
        rows,
        [False, True, True, True, True, False],
    )


def _png(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG from its header; None when ``data`` is not a PNG."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _embedded(data: bytes, title: str, caption: str) -> dict:
    width, height = _png(data)
    return {
        "title": title,
        "caption": caption,
        "width": width,
        "height": height,
        "src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
    }


def _read_png(path: Path) -> bytes:
    fix = "redraw the figures (poolwise compare --plots) or delete the file so that the report draws it"
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PoolwiseError(f"cannot read figure {path} ({err.strerror or err}); {fix}") from None
    if _png(data) is None:
        raise PoolwiseError(f"figure {path} is not a PNG image; {fix}")
    return data


def _drawn(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _figure_section(study: Study, figures_dir: Path | None, seed: int) -> tuple[list[dict], list[str]]:
    """The embedded figures of ``FIGURES`` (saved PNGs where the folder has them, drawn otherwise)
    and a sentence for each figure that does not apply. Saved files are all read first, so a bad
    one fails fast. The model graph (Graphviz's, not a PNG of ours) is not embedded."""
    kinds = [kind for kind in FIGURES.values() if kind.draw is not None]
    saved = {}
    if figures_dir is not None:
        saved = {
            kind.file: _read_png(figures_dir / kind.file)
            for kind in kinds
            if (figures_dir / kind.file).exists() or (figures_dir / kind.file).is_symlink()
        }
    shown, skipped = [], []
    for kind in kinds:
        if kind.file in saved:
            shown.append(_embedded(saved[kind.file], kind.title, kind.description))
            continue
        try:
            shown.append(_embedded(_drawn(kind.draw(study, seed=seed)), kind.title, kind.description))
        except PoolwiseError as err:
            skipped.append(f"{kind.title}: not drawn ({err}).")
    return shown, skipped


def _diagnostics(study: Study) -> tuple[Table, list[str]]:
    rows, sentences = [], []
    for name, fit in study.fits.items():
        report = summary(fit)
        draws = fit.settings.get("draws", 0) * fit.settings.get("chains", 0)
        label = model_label(name)
        bad_k, n_obs = int(study.table.loc[name, "n_bad_k"]), int(study.table.loc[name, "n_obs"])
        rows.append(
            [
                label,
                str(report.divergences),
                _number(report.max_r_hat, 3),
                f"{report.min_ess_bulk:.0f} of {draws}",
                f"{bad_k} of {n_obs}",
            ]
        )
        trouble = []
        if report.divergences:
            trouble.append(
                f"{report.divergences} divergent transitions: the sampler could not explore part of the "
                "posterior, so its numbers may be biased (raise --tune, or use priors that keep group sds away from 0)"
            )
        if report.max_r_hat > RHAT_MAX:
            trouble.append(
                f"Rhat up to {report.max_r_hat:.2f} (above {RHAT_MAX}): the chains disagree, so they have not "
                "converged (run more --tune and --draws)"
            )
        if report.min_ess_bulk < min(ESS_MIN, 0.1 * draws):
            trouble.append(
                f"as few as {report.min_ess_bulk:.0f} effective draws: intervals are rough (run more --draws)"
            )
        if bad_k:
            trouble.append(
                f"{bad_k} of {n_obs} observations have Pareto k > 0.7: their LOO terms are unreliable, so the "
                "LOO comparison is approximate there (grouped cross-validation, --cv group, is the sturdier check)"
            )
        sentences.append(
            f"{label}: "
            + (
                "; ".join(trouble)
                if trouble
                else f"no divergences, Rhat at most {RHAT_MAX}, enough effective draws and reliable LOO terms"
            )
            + "."
        )
    table = Table(
        "Sampling and LOO diagnostics per model",
        ["Model", "Divergences", "Max Rhat", "Min bulk ESS", "Pareto k > 0.7"],
        rows,
        [False] + [True] * 4,
    )
    return table, sentences


def _compare_command(study: Study) -> str:
    """The ``poolwise compare`` call that refits these models, from their saved settings (the data
    file's name is not saved: DATA stands for it); for saved fits made one by one, a ``poolwise
    fit`` call per model and the ``compare`` of the files."""
    if _own_models(study) and not _one_run(study):
        files = [f"m{k}.nc" for k in range(1, len(study.fits) + 1)]
        fits = [_fit_command(file, fit) for file, fit in zip(files, study.fits.values())]
        cv = ["--cv", "group"] if "elpd_cv" in study.table.columns else []
        return "; ".join([*fits, shlex.join(["poolwise", "compare", *files, *cv])])
    name, fit = next(iter(study.fits.items()))
    settings = fit.settings
    poolings = [entry.name for entry in POOLINGS]
    # The analyst's own models (compare DATA F1 F2 ...) are named m1, m2, ... in their order.
    own = any(model not in poolings for model in study.fits)
    # The analyst's k-th model (0-based) was fitted with seeds.of_model(seed, k).
    seed = of_comparison(settings.get("seed", 0), 0 if own else poolings.index(name))
    formulas = [fitted.spec.formula for fitted in study.fits.values()] if own else [study.formula]
    families = [find_family(fitted.spec.family) for fitted in study.fits.values()]
    if len({family.key for family in families}) == 1:
        families = families[:1]
    words = ["poolwise", "compare", "DATA", *formulas]
    for family in families:
        words += ["--family", family.name]
    for family in families if any(family.key != family.name for family in families) else []:
        words += ["--link", family.link]
    for option in ("draws", "tune", "chains", "backend"):
        if settings.get(option) is not None:
            words += [f"--{option}", str(settings[option])]
    words += ["--seed", str(seed)]
    if settings.get("allow_unidentified"):
        words.append("--allow-unidentified")
    if "elpd_cv" in study.table.columns:
        words += ["--cv", "group"]
    return shlex.join(words)


def _one_run(study: Study) -> bool:
    """Whether the analyst's models are one ``compare DATA F1 F2`` run: the k-th model's seed is
    ``seeds.of_model(seed, k)`` and they share the sampler settings."""
    settings = [fit.settings for fit in study.fits.values()]
    base = settings[0].get("seed", 0)
    keys = ("draws", "tune", "chains", "backend", "allow_unidentified")
    return all(
        of_comparison(one.get("seed", 0), index) == base
        and all(one.get(key) == settings[0].get(key) for key in keys)
        and fit.pooling == ("partial" if fit.spec.factors else "complete")
        for index, (one, fit) in enumerate(zip(settings, study.fits.values()))
    )


def _fit_command(file: str, fit) -> str:
    """The ``poolwise fit`` call that remakes one saved fit as ``file``."""
    family = find_family(fit.spec.family)
    words = ["poolwise", "fit", "DATA", fit.spec.formula, "--model", fit.pooling, "--family", family.name]
    if family.key != family.name:
        words += ["--link", family.link]
    for option in ("draws", "tune", "chains", "backend", "seed"):
        if fit.settings.get(option) is not None:
            words += [f"--{option}", str(fit.settings[option])]
    if fit.settings.get("allow_unidentified"):
        words.append("--allow-unidentified")
    return shlex.join([*words, "--out", file])


def _reproducibility(study: Study, command: str | None, study_json: str | None) -> dict:
    meta = {name: json.loads(fit.idata.attrs.get("poolwise", "{}")) for name, fit in study.fits.items()}
    fit = next(iter(study.fits.values()))
    family = find_family(fit.spec.family)
    models = Table(
        "What each model is and how it was sampled",
        ["Model", "Bambi formula", "Priors", "Draws", "Tune", "Chains", "Seed", "Backend"],
        [
            [
                model_label(name),
                f.formula,
                "; ".join(f"{term}: {prior}" for term, prior in f.priors.items()) or "Bambi's defaults",
                *(str(f.settings.get(key, MISSING)) for key in ("draws", "tune", "chains", "seed", "backend")),
            ]
            for name, f in study.fits.items()
        ],
        [False, False, False, True, True, True, True, False],
    )
    versions = next((m["versions"] for m in meta.values() if m.get("versions")), {})
    hashes = {m.get("data_hash", MISSING) for m in meta.values()}
    return {
        "command": command,
        "compare": _compare_command(study),
        "has_priors": any(f.priors for f in study.fits.values()),
        "family": f"{family.name} ({family.link} link; the mean response is a {family.scale})",
        "models": models,
        "data_hash": ", ".join(sorted(hashes)),
        "versions": ", ".join(f"{package} {version}" for package, version in versions.items()),
        "study_json": study_json,
    }


# ---------------------------------------------------------------- public API


def render_report(
    study: Study,
    *,
    trials: float = 50,
    groups: int = 100,
    seed: int = 0,
    figures_dir: str | Path | None = None,
    study_json: str | None = None,
    command: str | None = None,
) -> str:
    """The report of ``study`` as one self-contained HTML page.

    Sections: the question and the verdict, the LOO comparison (and grouped CV), decision numbers
    for a typical group, a new group and ``groups`` new groups, a per-group table, figures,
    diagnostics, and a reproducibility block. Sections that do not apply become a sentence.

    Parameters
    ----------
    study : Study
        Fits and their LOO comparison, e.g. from ``poolwise.io.load_study``.
    trials, groups, seed
        The decision's new-group size, number of new groups and random seed, as in
        ``poolwise.decide``.
    figures_dir : path, optional
        A results folder's ``figures/``: its PNGs are embedded as saved; figures it lacks (all of
        them without it) are drawn from ``study``.
    study_json : str, optional
        The saved ``study.json`` text, shown in the reproducibility block.
    command : str, optional
        The command that made the report, shown in the reproducibility block.

    Returns
    -------
    str
        The HTML text: figures embedded as base64 PNGs, no scripts, nothing fetched.

    Raises
    ------
    PoolwiseError
        A saved figure cannot be read or is not a PNG; ``trials`` or ``groups`` are invalid.

    Examples
    --------
    >>> html = render_report(load_study("results"), figures_dir="results/figures")  # doctest: +SKIP
    """
    from jinja2 import Environment, PackageLoader, StrictUndefined

    decision, why_not = _decision(study, trials, groups, seed)
    loo, cv = _loo_tables(study.table)
    figures, skipped = _figure_section(study, Path(figures_dir) if figures_dir is not None else None, seed)
    diagnostics, sentences = _diagnostics(study)
    identification = list(
        dict.fromkeys(m for fit in study.fits.values() for m in prior_only_messages(fit.spec, fit.data))
    )
    environment = Environment(
        loader=PackageLoader("poolwise", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html.j2").render(
        formula=study.formula,
        question=_question(study, decision),
        verdict=decision.verdict() if decision is not None else why_not,
        comparison_verdict=study.verdict(),
        model=_decided(study)[0] if decision is not None else None,
        model_phrase=_decided(study)[1] if decision is not None else None,
        legend=_legend(study),
        loo=loo,
        cv=cv,
        decision=decision,
        rates=_rate_table(decision) if decision is not None else None,
        expected=_expected_table(decision) if decision is not None else None,
        shares=_shares_table(decision),
        why_not=why_not,
        per_group=_per_group_table(study, decision),
        figures=figures,
        skipped=skipped,
        saved_figures=figures_dir is not None,
        diagnostics=diagnostics,
        diagnostic_sentences=sentences,
        notes=[_sentence(note) for note in [*study.notes, *(decision.notes if decision is not None else [])]],
        identification=[_sentence(message) for message in identification],
        reproducibility=_reproducibility(study, command, study_json),
    )


def _sentence(text: str) -> str:
    """A note as a sentence: ends with a full stop (its first word may be a column name: kept as is)."""
    return text if text.endswith((".", "!", "?")) else text + "."


def check_output(out: str | Path, *, force: bool = False) -> Path:
    """Refuse, before any slow work, a report path that exists (unless ``force``) or that cannot
    be written (its folder is a file, or is read-only). Creates nothing.

    Parameters
    ----------
    out : path
        Where the report will be written.
    force : bool
        Allow replacing an existing file.

    Returns
    -------
    Path
        ``out`` as a Path.

    Raises
    ------
    PoolwiseError
        ``out`` exists without ``force``, or it cannot be written.

    Examples
    --------
    >>> check_output("report.html")  # doctest: +SKIP
    PosixPath('report.html')
    """
    out = check_new(out, force=force)
    folder = out.parent.absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise _unwritable(out, f"{folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _unwritable(out, f"{folder} is not writable")
    return out


def _unwritable(out: Path, reason: str) -> PoolwiseError:
    return PoolwiseError(f"cannot write the report to {out}: {reason}; pass --out a path in a folder you can write to")


def write_report(
    source: str | Path, out: str | Path, *, force: bool = False, trials: float = 50, groups: int = 100, seed: int = 0
) -> Path:
    """Write the HTML report of the results folder ``source`` to ``out``, atomically.

    The file is written under a temporary name beside ``out`` and renamed into place only once
    complete, so a failure leaves no partial report.

    Parameters
    ----------
    source : path
        A folder written by ``poolwise compare --out`` (its ``figures/``, when present, are embedded).
    out : path
        The HTML file to write.
    force : bool
        Replace ``out`` if it exists.
    trials, groups, seed
        The decision's new-group size, number of new groups and random seed (``poolwise.decide``).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    PoolwiseError
        ``source`` is not a saved study, one of its figures cannot be read, ``out`` exists
        without ``force``, or ``out`` cannot be written.

    Examples
    --------
    >>> write_report("results", "report.html", trials=50, groups=100)  # doctest: +SKIP
    PosixPath('report.html')
    """
    out = check_output(out, force=force)
    source = Path(source)
    study = load_study(source)
    trials = int(trials) if float(trials).is_integer() else float(trials)
    command = shlex.join(
        [
            "poolwise",
            "report",
            str(source),
            "--out",
            str(out),
            "--trials",
            f"{trials:g}",
            "--new-groups",
            str(groups),
            "--seed",
            str(seed),
        ]
    )
    saved = source / "study.json"
    html = render_report(
        study,
        trials=trials,
        groups=groups,
        seed=seed,
        figures_dir=source / "figures" if (source / "figures").is_dir() else None,
        study_json=saved.read_text(encoding="utf-8") if saved.is_file() else None,
        command=command,
    )
    try:
        with atomic_path(out, force=force) as tmp:
            tmp.write_text(html, encoding="utf-8")
    except OSError as err:
        raise _unwritable(out, err.strerror or str(err)) from None
    return out
