"""Saved results: round trips give identical summaries, writes are atomic, old files say so.

Fast tests use the tiny saved study in tests/data (made by tests/data/make_tiny_study.py); only
the last test samples.
"""

import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

import poolwise as pw
from poolwise.io import ENGINE, atomic_folder, load_fit, load_study, save_fit, save_study, write_csv
from poolwise.summaries import summary

from helpers import TINY


@pytest.fixture(scope="module")
def tiny() -> dict:
    """The tiny study's three fits, loaded once."""
    return {name: load_fit(TINY / f"{name}.nc") for name in ("complete", "none", "partial")}


def assert_same_summary(a, b) -> None:
    for name in ("population", "group_sds", "groups"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.to_dict() == b.to_dict()


def leftovers(folder: Path) -> list[str]:
    """Temporary names atomic writes use: none may survive."""
    return sorted(p.name for p in folder.rglob(".*") if p.name.endswith((".part", ".old")))


def rewrite(source: Path, target: Path, change) -> Path:
    """Copy a saved fit with ``change(tree)`` applied, as an older or damaged file would look."""
    with xr.open_datatree(source, engine=ENGINE) as tree:
        tree = tree.load()
    change(tree)
    tree.to_netcdf(target, engine=ENGINE)
    return target


@pytest.mark.parametrize("name", ["complete", "none", "partial"])
def test_round_trip_gives_identical_summary(tiny, tmp_path, name):
    fit = tiny[name]
    path = save_fit(fit, tmp_path / f"{name}.nc")
    again = load_fit(path)
    assert_same_summary(summary(fit), summary(again))
    xr.testing.assert_identical(fit.idata["posterior"].to_dataset(), again.idata["posterior"].to_dataset())
    pd.testing.assert_frame_equal(fit.data, again.data)
    assert (again.pooling, again.formula, again.priors, again.settings) == (
        fit.pooling,
        fit.formula,
        fit.priors,
        fit.settings,
    )
    assert again.model is not None and again.model.formula.main == fit.model.formula.main
    assert "poolwise_data" not in again.idata.children and "poolwise_format" not in again.idata.attrs
    assert leftovers(tmp_path) == []


def test_saved_fit_records_what_reproduces_it(tiny):
    meta = json.loads(tiny["partial"].idata.attrs["poolwise"])
    assert meta["settings"]["seed"] == 7 and meta["settings"]["backend"] == "nutpie"
    assert set(meta["versions"]) >= {"poolwise", "bambi", "pymc", "arviz", "formulae", "nutpie"}
    assert meta["data_hash"] == pw.data.data_hash(tiny["partial"].data)
    assert meta["formula"] == "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)"


def test_summary_tables(tiny):
    partial = summary(tiny["partial"])
    assert partial.population.index.tolist() == ["Intercept", "yogaStretch"]
    assert partial.group_sds.index.tolist() == ["sd(Intercept)", "sd(yogaStretch)"]
    assert partial.groups.index.tolist() == [str(g) for g in range(1, 13)]
    assert (partial.groups["rate_with_lower"] <= partial.groups["rate_with"]).all()
    assert partial.settings == {
        "draws": 40,
        "tune": 60,
        "chains": 2,
        "seed": 7,
        "backend": "nutpie",
        "target_accept": None,
        "rescue": None,  # saved before poolwise sampled fits again by itself: never rescued
    }
    none = summary(tiny["none"])
    assert len(none.population) == 24 and none.group_sds.empty
    assert summary(tiny["complete"]).population.index.tolist() == ["Intercept", "yogaStretch"]


def test_existing_file_is_kept_without_force(tiny, tmp_path):
    target = tmp_path / "fit.nc"
    target.write_text("keep me")
    with pytest.raises(
        pw.PoolwiseError,
        match=f"^{re.escape(str(target))} already exists; pass --force \\(force=True\\) to overwrite it, or choose another path$",
    ):
        save_fit(tiny["partial"], target)
    assert target.read_text() == "keep me"
    save_fit(tiny["partial"], target, force=True)
    assert load_fit(target).pooling == "partial"


def test_failed_write_leaves_nothing(tiny, tmp_path, monkeypatch):
    def half_write(self, path, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_fit(tiny["partial"], tmp_path / "fit.nc")
    assert list(tmp_path.iterdir()) == []


def test_study_folder_round_trip(tiny, tmp_path):
    study = load_study(TINY)
    saved = pd.read_csv(TINY / "loo.csv").set_index("model")
    pd.testing.assert_frame_equal(study.table, saved, check_exact=False, rtol=1e-12)
    written = save_study(study, tmp_path / "out")
    assert [str(p) for p in written] == [
        "coefficients.csv",
        "complete.nc",
        "loo.csv",
        "none.nc",
        "partial.nc",
        "study.json",
    ]
    meta = json.loads((tmp_path / "out" / "study.json").read_text())
    assert meta["verdict"] == study.verdict() and meta["models"]["partial"] == "partial.nc"
    assert len(pd.read_csv(tmp_path / "out" / "coefficients.csv")) == 3 * 12 * 4
    assert leftovers(tmp_path) == []


def test_study_folder_is_replaced_whole_or_not_at_all(tiny, tmp_path):
    study = load_study(TINY)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous run")

    def broken_figures(folder: Path) -> list[Path]:
        (folder / "figure.png").write_bytes(b"half")
        raise RuntimeError("figure failed")

    with pytest.raises(RuntimeError):
        save_study(study, out, force=True, extra=broken_figures)
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    save_study(study, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == [
        "coefficients.csv",
        "complete.nc",
        "loo.csv",
        "none.nc",
        "partial.nc",
        "study.json",
    ]
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_folder_refuses_existing(tmp_path):
    with pytest.raises(pw.PoolwiseError, match="already exists; pass --force"):
        with atomic_folder(tmp_path):
            pass
    assert write_csv(pd.DataFrame({"a": [1]}), tmp_path / "t.csv").read_text() == "a\n1\n"


def test_load_errors(tmp_path):
    with pytest.raises(
        pw.PoolwiseError,
        match=r"^file not found: .*nope\.nc; pass a fit saved with poolwise fit --out or poolwise compare --out$",
    ):
        load_fit(tmp_path / "nope.nc")
    (tmp_path / "text.nc").write_text("not netcdf")
    with pytest.raises(
        pw.PoolwiseError, match=r"^cannot read .*text\.nc as a saved fit \(.*\); pass a \.nc file written by poolwise$"
    ):
        load_fit(tmp_path / "text.nc")
    xr.DataTree(xr.Dataset({"a": ("x", [1.0])})).to_netcdf(tmp_path / "other.nc", engine=ENGINE)
    with pytest.raises(
        pw.PoolwiseError,
        match=r"^.*other\.nc is not a saved poolwise fit; save fits with poolwise fit --out or poolwise\.save_fit$",
    ):
        load_fit(tmp_path / "other.nc")
    with pytest.raises(
        pw.PoolwiseError, match=r"^folder not found: .*; pass a folder written by poolwise compare --out$"
    ):
        load_study(tmp_path / "missing")


def test_damaged_data_are_refused(tmp_path):
    def damage(tree):
        tree["poolwise_data"]["nSigned"][0] = 0

    path = rewrite(TINY / "partial.nc", tmp_path / "damaged.nc", damage)
    with pytest.raises(
        pw.PoolwiseError, match=r"do not match their saved hash; the file is damaged: refit and save it again$"
    ):
        load_fit(path)


def _meta(tree, **changes):
    meta = json.loads(tree.attrs["poolwise"])
    for key, value in changes.items():
        if key == "bambi":
            meta["versions"]["bambi"] = value
        else:
            meta[key] = value
    tree.attrs["poolwise"] = json.dumps(meta)


def test_other_bambi_version_warns(tmp_path):
    path = rewrite(TINY / "partial.nc", tmp_path / "old.nc", lambda tree: _meta(tree, bambi="0.17.2"))
    with pytest.warns(pw.PoolwiseWarning) as record:
        fit = load_fit(path)
    assert str(record[0].message) == (
        f"{path} was made with bambi 0.17.2 (installed: 0.21.0); its draws load as saved but its model is rebuilt "
        "with the installed versions: refit if predictions or figures look wrong"
    )
    assert_same_summary(summary(fit), summary(load_fit(TINY / "partial.nc")))


def test_model_that_no_longer_matches_is_an_error(tmp_path):
    def older(tree):
        _meta(tree, bambi="0.17.2", bambi_formula="p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)")

    path = rewrite(TINY / "partial.nc", tmp_path / "old.nc", older)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pw.PoolwiseWarning)
        with pytest.raises(
            pw.PoolwiseError,
            match=re.escape(
                "holds the model 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)' but this poolwise builds "
                "'p(nSigned, nTrialCustomers) ~ yogaStretch + (1 + yogaStretch|gymID)' from its formula (made with bambi 0.17.2 "
                "(installed: 0.21.0)); refit it"
            ),
        ):
            load_fit(path)

    def renamed(tree):
        tree["posterior"] = tree["posterior"].to_dataset().rename({"1|gymID_sigma": "1|gymID_sd"})

    path = rewrite(TINY / "partial.nc", tmp_path / "renamed.nc", renamed)
    with pytest.raises(pw.PoolwiseError, match=r"lack 1\|gymID_sigma, which the rebuilt model has; refit it$"):
        load_fit(path)


@pytest.mark.slow
def test_fresh_fit_round_trip(gym_study, tmp_path):
    for name, fit in gym_study.fits.items():
        again = load_fit(save_fit(fit, tmp_path / f"{name}.nc"))
        assert_same_summary(summary(fit), summary(again))
    study = load_study(tmp_path)
    pd.testing.assert_frame_equal(study.table, gym_study.table)
    assert study.verdict() == gym_study.verdict()
