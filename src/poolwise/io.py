"""Saved results: fits as netCDF files and studies as folders, written atomically.

A saved fit is the fit's ArviZ DataTree plus a ``poolwise_data`` group holding the data actually
fitted; its attributes carry the formula, priors, settings (seed included), data hash and package
versions. Loading rebuilds the Bambi model from these (no sampling), so summaries, predictions and
figures work without refitting.

Every write goes to a temporary name beside the target and is renamed into place at the end, so
an interrupted run leaves either the old output or the complete new one. Existing output is
replaced only with ``force=True`` (``--force`` on the command line).
"""

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pandas as pd

from poolwise import adapter
from poolwise.errors import PoolwiseError, PoolwiseWarning
from poolwise.fitting import build_model, versions
from poolwise.formulas import parse_formula
from poolwise.pooling import POOLINGS
from poolwise.results import Fit

DATA_GROUP = "poolwise_data"
FORMAT = 1  # bump when the layout of saved files changes
ENGINE = "h5netcdf"
REBUILT_WITH = ("poolwise", "bambi", "formulae", "pymc")
STUDY_FILES = ("loo.csv", "coefficients.csv", "study.json")


def check_new(path: str | Path, *, force: bool = False) -> Path:
    """Refuse an output path that exists unless ``force``; call it before any slow work.

    Parameters
    ----------
    path : str or Path
        Where output will be written.
    force : bool
        Allow replacing what is there.

    Returns
    -------
    Path
        ``path`` as a Path.

    Raises
    ------
    PoolwiseError
        ``path`` exists and ``force`` is False.

    Examples
    --------
    >>> check_new("results-that-do-not-exist-yet")
    PosixPath('results-that-do-not-exist-yet')
    """
    path = Path(path)
    if path.exists() and not force:
        raise PoolwiseError(f"{path} already exists; pass --force (force=True) to overwrite it, or choose another path")
    return path


@contextmanager
def atomic_path(path: str | Path, *, force: bool = False) -> Iterator[Path]:
    """A temporary file name beside ``path``, renamed to ``path`` only if the block succeeds.

    Parameters
    ----------
    path : str or Path
        The file to write.
    force : bool
        Allow replacing an existing file.

    Yields
    ------
    Path
        The temporary file to write into (deleted if the block fails).

    Raises
    ------
    PoolwiseError
        ``path`` exists and ``force`` is False.

    Examples
    --------
    >>> with atomic_path("table.csv") as tmp:  # doctest: +SKIP
    ...     frame.to_csv(tmp)
    """
    path = check_new(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_umask())
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(folder: str | Path, *, force: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``folder`` that becomes ``folder`` only if the block succeeds.

    With ``force`` an existing ``folder`` is moved aside first and deleted once the new one is in
    place (two renames: no moment leaves a half-written folder under the target name).

    Parameters
    ----------
    folder : str or Path
        The folder to write.
    force : bool
        Allow replacing an existing folder.

    Yields
    ------
    Path
        The temporary folder to write into (deleted if the block fails).

    Raises
    ------
    PoolwiseError
        ``folder`` exists and ``force`` is False.

    Examples
    --------
    >>> with atomic_folder("results") as tmp:  # doctest: +SKIP
    ...     save_fit(fit, tmp / "partial.nc")
    """
    folder = check_new(folder, force=force)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
    tmp.chmod(0o777 & ~_umask())
    old = None
    try:
        yield tmp
        if folder.exists() or folder.is_symlink():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".old"))
            folder.replace(old / folder.name)
        tmp.replace(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    """The process umask (temporary files are created private; the results should not be)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_csv(frame: pd.DataFrame, path: str | Path, *, force: bool = False, index: bool = False) -> Path:
    """Write a table as CSV atomically.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    path : str or Path
        The file to write.
    force : bool
        Allow replacing an existing file.
    index : bool
        Write the index as a column.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PoolwiseError
        ``path`` exists and ``force`` is False.

    Examples
    --------
    >>> write_csv(study.table.reset_index(), "loo.csv")  # doctest: +SKIP
    PosixPath('loo.csv')
    """
    with atomic_path(path, force=force) as tmp:
        frame.to_csv(tmp, index=index)
    return Path(path)


def save_fit(fit: Fit, path: str | Path, *, force: bool = False) -> Path:
    """Save a fit (draws, fitted data and metadata) to a netCDF file, atomically.

    ``load_fit`` reads it back with its Bambi model rebuilt, so nothing needs refitting.

    Parameters
    ----------
    fit : Fit
        A fit made by ``poolwise.fit`` or ``poolwise.compare``.
    path : str or Path
        The ``.nc`` file to write.
    force : bool
        Allow replacing an existing file.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PoolwiseError
        The fit has no poolwise metadata, ``path`` exists without ``force``, or the data cannot be
        stored (unusual column names).

    Examples
    --------
    >>> save_fit(study.fits["partial"], "partial.nc")  # doctest: +SKIP
    PosixPath('partial.nc')
    """
    if "poolwise" not in fit.idata.attrs:
        raise PoolwiseError("this fit has no poolwise metadata; make fits with poolwise.fitting or poolwise.comparison")
    import xarray as xr

    tree = fit.idata.copy(deep=False)
    tree.attrs["poolwise_format"] = FORMAT
    tree[DATA_GROUP] = xr.DataTree(xr.Dataset.from_dataframe(fit.data.reset_index(drop=True).rename_axis("row")))
    with atomic_path(path, force=force) as tmp:
        try:
            tree.to_netcdf(tmp, engine=ENGINE)
        except (ValueError, TypeError) as err:
            raise PoolwiseError(
                f"cannot save the fit to {path}: {str(err).splitlines()[0]}; rename data columns to plain names"
            ) from None
    return Path(path)


def load_fit(path: str | Path) -> Fit:
    """Load a fit saved by ``save_fit`` and rebuild its Bambi model (no sampling).

    Warns (``PoolwiseWarning``) when the fit was made with other poolwise, Bambi, formulae or PyMC
    versions: the draws load as saved, the model is rebuilt with the installed ones.

    Parameters
    ----------
    path : str or Path
        A ``.nc`` file written by ``save_fit`` (``poolwise fit --out``).

    Returns
    -------
    Fit
        The fit, with ``model`` rebuilt.

    Raises
    ------
    PoolwiseError
        The file is missing or not a poolwise fit, was saved by a newer poolwise, its data do not
        match their saved hash, or the installed versions cannot rebuild its model.

    Examples
    --------
    >>> load_fit("partial.nc").pooling  # doctest: +SKIP
    'partial'
    """
    from poolwise.data import data_hash

    path = Path(path)
    tree = _read_tree(path)
    meta = json.loads(tree.attrs.get("poolwise", "{}"))
    if not meta or DATA_GROUP not in tree.children:
        raise PoolwiseError(
            f"{path} is not a saved poolwise fit; save fits with poolwise fit --out or poolwise.save_fit"
        )
    if int(tree.attrs.get("poolwise_format", 0)) > FORMAT:
        raise PoolwiseError(
            f"{path} was saved by a newer poolwise ({meta['versions'].get('poolwise')}); upgrade poolwise to load it"
        )
    data = tree[DATA_GROUP].to_dataset().to_dataframe().reset_index(drop=True)
    if data_hash(data) != meta["data_hash"]:
        raise PoolwiseError(
            f"the data stored in {path} do not match their saved hash; the file is damaged: refit and save it again"
        )
    idata = tree.copy()
    del idata[DATA_GROUP]
    idata.attrs.pop("poolwise_format", None)
    changed = _changed_versions(meta.get("versions", {}))
    if changed:
        warnings.warn(
            PoolwiseWarning(
                f"{path} was made with {', '.join(changed)}; its draws load as saved but its model is rebuilt with "
                "the installed versions: refit if predictions or figures look wrong"
            ),
            stacklevel=2,
        )
    spec = fitted_spec(meta, data)
    model = _rebuild(path, spec, data, meta, idata, changed)
    return Fit(meta["pooling"], meta["bambi_formula"], spec, meta["priors"], idata, data, meta["settings"], model)


def fitted_spec(meta: dict, data: pd.DataFrame):
    """The model specification a saved fit was fitted with.

    Its formula read again, with the family, success level, correlated factors and the
    trials/exposure columns of the prepared data as saved (files from before families existed are
    binomial counts).

    Parameters
    ----------
    meta : dict
        The fit's saved metadata (its ``poolwise`` attribute).
    data : pandas.DataFrame
        The saved fitted data.

    Returns
    -------
    FormulaSpec
        The specification.

    Raises
    ------
    PoolwiseError
        The saved data lack a column the formula names (a damaged file).

    Examples
    --------
    >>> fitted_spec(meta, data).family  # doctest: +SKIP
    'binomial'
    """
    spec = parse_formula(meta["formula"])
    saved = dict(
        meta.get("spec")
        or {
            "family": "binomial",
            "level": None,
            "trials": spec.trials or f"{spec.outcome}_n",
            "exposure": None,
        }
    )
    # Which factors were fitted with correlated terms (files from before correlations: none).
    correlated = saved.pop("correlated", [False] * len(spec.factors))
    factors = tuple(replace(factor, correlated=bool(flag)) for factor, flag in zip(spec.factors, correlated))
    spec = replace(spec, **saved, factors=factors)
    missing = [name for name in spec.variables + (spec.trials, spec.exposure) if name and name not in data.columns]
    if missing:
        raise PoolwiseError(
            f"the saved data lack column {missing[0]!r} that the formula names; the file is damaged: refit it"
        )
    return spec


def _read_tree(path: Path):
    import xarray as xr

    if not path.is_file():
        raise PoolwiseError(
            f"file not found: {path}; pass a fit saved with poolwise fit --out or poolwise compare --out"
        )
    try:
        with xr.open_datatree(path, engine=ENGINE) as tree:
            return tree.load()
    except (OSError, ValueError, TypeError) as err:
        raise PoolwiseError(
            f"cannot read {path} as a saved fit ({str(err).splitlines()[0]}); pass a .nc file written by poolwise"
        ) from None


def _changed_versions(saved: dict[str, str]) -> list[str]:
    now = versions()
    return [
        f"{name} {saved.get(name, 'unknown')} (installed: {now[name]})"
        for name in REBUILT_WITH
        if saved.get(name) != now[name]
    ]


def _rebuild(path: Path, spec, data: pd.DataFrame, meta: dict, idata, changed: list[str]):
    """Rebuild the Bambi model and check it has the saved posterior's parameters."""
    made_with = f" (made with {', '.join(changed)})" if changed else ""
    try:
        model, formula, _ = build_model(
            spec,
            data,
            meta["pooling"],
            meta["priors"],
            required=list(meta["priors"]),
            parameterization=meta["settings"].get("parameterization"),
        )
    except Exception as err:  # a version change can break Bambi anywhere; say so in one line
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PoolwiseError(
            f"cannot rebuild the model saved in {path}{made_with}: {detail}; refit it with the installed versions"
        ) from None
    if formula != meta["bambi_formula"]:
        raise PoolwiseError(
            f"{path} holds the model {meta['bambi_formula']!r} but this poolwise builds {formula!r} from its formula{made_with}; refit it"
        )
    terms = adapter.model_terms(model)
    expected = set(terms) | {adapter.sd_of(name) for name in terms if adapter.is_group_term(name)}
    missing = sorted(expected - set(idata["posterior"].data_vars))
    if missing:
        raise PoolwiseError(
            f"the draws in {path} lack {', '.join(missing)}, which the rebuilt model has{made_with}; refit it"
        )
    return model


def save_study(
    study, folder: str | Path, *, force: bool = False, extra: Callable[[Path], list[Path]] | None = None
) -> list[Path]:
    """Write a study into ``folder``, atomically.

    One netCDF per fit, ``loo.csv`` (the LOO table), ``coefficients.csv`` (every model's per-group
    coefficients) and ``study.json`` (formula, verdict, notes, settings, versions).

    Parameters
    ----------
    study : Study
        From ``poolwise.compare``.
    folder : str or Path
        The folder to write.
    force : bool
        Replace an existing folder.
    extra : callable, optional
        ``extra(tmp_folder)`` writes more files (figures) before the folder is renamed into place.

    Returns
    -------
    list of Path
        The files written, relative to ``folder``.

    Raises
    ------
    PoolwiseError
        ``folder`` exists without ``force``, or a fit cannot be saved.

    Examples
    --------
    >>> save_study(study, "results")  # doctest: +SKIP
    [PosixPath('coefficients.csv'), PosixPath('complete.nc'), ...]
    """
    from poolwise.estimates import coefficients

    with atomic_folder(folder, force=force) as tmp:
        for name, fit in study.fits.items():
            save_fit(fit, tmp / f"{name}.nc")
        write_csv(study.table.reset_index(), tmp / "loo.csv")
        write_csv(
            pd.concat([coefficients(fit) for fit in study.fits.values()], ignore_index=True), tmp / "coefficients.csv"
        )
        first = json.loads(next(iter(study.fits.values())).idata.attrs["poolwise"])
        with atomic_path(tmp / "study.json") as part:
            part.write_text(
                json.dumps(
                    {
                        "formula": study.formula,
                        "verdict": study.verdict(),
                        "notes": study.notes,
                        "fix_loo": study.fix_loo,
                        "models": {name: f"{name}.nc" for name in study.fits},
                        "settings": first["settings"],
                        "data_hash": first["data_hash"],
                        "versions": first["versions"],
                    },
                    indent=2,
                )
                + "\n"
            )
        if extra is not None:
            extra(tmp)
        written = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
    return written


def load_study(folder: str | Path):
    """Load a study saved by ``save_study``.

    The LOO table is recomputed from the saved draws; grouped cross-validation columns, which need
    refits, are read from ``loo.csv``.

    Parameters
    ----------
    folder : str or Path
        A folder written by ``poolwise compare --out``.

    Returns
    -------
    Study
        The fits (models rebuilt), the LOO table and the notes.

    Raises
    ------
    PoolwiseError
        The folder does not exist or holds fewer than two saved fits, or a fit cannot be loaded.

    Examples
    --------
    >>> load_study("results").verdict()  # doctest: +SKIP
    """
    from poolwise.comparison import Study, loo_table
    from poolwise.refits import REFITS

    folder = Path(folder)
    if not folder.is_dir():
        raise PoolwiseError(f"folder not found: {folder}; pass a folder written by poolwise compare --out")
    saved_study = json.loads((folder / "study.json").read_text()) if (folder / "study.json").is_file() else {}
    # The models study.json names (a comparison of the analyst's own formulas: m1.nc, m2.nc, ...),
    # else the three pooling models.
    files = saved_study.get("models") or {entry.name: f"{entry.name}.nc" for entry in POOLINGS}
    fits = {name: load_fit(folder / file) for name, file in files.items() if (folder / file).is_file()}
    if len(fits) < 2:
        raise PoolwiseError(
            f"{folder} holds {len(fits)} saved fits; a study needs at least two of {', '.join(files.values())}"
        )
    notes = saved_study.get("notes", [])
    # Refitted LOO terms replay from the draws each fit keeps. Without a study.json saying how
    # LOO was fixed, fits that keep refits were fixed by refits; others (saved before LOO was
    # fixed) load as they were computed, with plain PSIS-LOO.
    refitted = any(REFITS in fit.idata.children for fit in fits.values())
    fix_loo = saved_study.get("fix_loo", "refit" if refitted else "off")
    table, loos = loo_table(fits, fix=fix_loo)
    saved = pd.read_csv(folder / "loo.csv", index_col="model") if (folder / "loo.csv").is_file() else pd.DataFrame()
    cv = [column for column in ("elpd_cv", "se_cv") if column in saved.columns]
    if cv:  # grouped CV refits cannot be recomputed from the saved draws: take them as saved
        table = table.join(saved[cv])
    formula = saved_study.get("formula") or next(iter(fits.values())).spec.formula
    return Study(formula, fits, table, loos, notes, fix_loo=fix_loo)


def load(path: str | Path):
    """A saved fit (a file) or a saved study (a folder).

    Parameters
    ----------
    path : str or Path
        A ``.nc`` file or a results folder.

    Returns
    -------
    Fit or Study
        What ``load_fit`` or ``load_study`` returns.

    Raises
    ------
    PoolwiseError
        As ``load_fit`` and ``load_study``.

    Examples
    --------
    >>> load("results").fits.keys()  # doctest: +SKIP
    dict_keys(['complete', 'none', 'partial'])
    """
    return load_study(path) if Path(path).is_dir() else load_fit(path)
