"""The sampler plumbing around NumPyro, without sampling: cache folder, JAX arrays, diagnostics."""

import json
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

import poolwise as pw
from poolwise.adapter import _to_numpy
from poolwise.data import cache_dir
from poolwise.fitting import CACHE_BYTES, _reraise_interrupt, check_sampling
from poolwise.results import Fit


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("POOLWISE_CACHE_DIR", str(tmp_path / "pw"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "pw"
    monkeypatch.delenv("POOLWISE_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "poolwise"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "poolwise"


def _jax_cache_settings(env: dict, before: str = "") -> dict:
    """JAX's cache settings after use_compile_cache, in a fresh interpreter (they are process-wide)."""
    code = (
        "import json, jax\n" + before + "from poolwise.fitting import use_compile_cache\n"
        "use_compile_cache(); use_compile_cache()\n"
        "c = jax.config\n"
        "print(json.dumps([c.jax_compilation_cache_dir, c.jax_compilation_cache_max_size,"
        " c.jax_persistent_cache_min_compile_time_secs]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compile_cache_goes_to_the_poolwise_cache_folder(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "POOLWISE_CACHE_DIR": str(tmp_path / "pw")}
    assert _jax_cache_settings(env) == [str(tmp_path / "pw" / "jax"), CACHE_BYTES, 0]


def test_compile_cache_leaves_a_folder_the_user_chose(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "POOLWISE_CACHE_DIR": str(tmp_path / "pw")}
    mine = f"jax.config.update('jax_compilation_cache_dir', {str(tmp_path / 'mine')!r})\n"
    folder, size, _ = _jax_cache_settings(env, before=mine)
    assert folder == str(tmp_path / "mine") and size != CACHE_BYTES


def test_jax_draws_become_numpy_with_coords_and_attrs_kept():
    import jax.numpy as jnp
    import pymc.sampling.jax  # noqa: F401  (gives JAX its CPU devices first, as a real fit does)

    values = np.arange(12.0).reshape(2, 3, 2)
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {"a": (("chain", "draw", "g"), jnp.asarray(values))},
                coords={"g": ["x", "y"]},
                attrs={"sampling_time": 1.5},
            ),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), jnp.zeros((2, 3), dtype=bool))}),
        }
    )
    _to_numpy(tree)
    a = tree["posterior"]["a"]
    assert type(a.variable._data) is np.ndarray and a.values.flags.writeable
    np.testing.assert_array_equal(a.values, values)
    assert a["g"].values.tolist() == ["x", "y"] and tree["posterior"].attrs == {"sampling_time": 1.5}
    assert tree["sample_stats"]["diverging"].dtype == bool


def test_diagnostics_span_variables_with_different_group_dimensions():
    """r_hat and ESS are taken over every value of every variable, each with its own dimensions."""
    rng = np.random.default_rng(1)
    intercepts = rng.normal(size=(2, 200, 30))
    slopes = rng.normal(size=(2, 200, 40))
    slopes[1, :, 7] += 3.0  # one group's slope: the two chains disagree
    posterior = xr.Dataset(
        {"C(g)": (("chain", "draw", "C(g)_dim"), intercepts), "C(g):x": (("chain", "draw", "C(g):x_dim"), slopes)}
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 200), dtype=bool))})
    fit = Fit(
        "none",
        "y ~ 0 + C(g) + C(g):x",
        None,
        {},
        xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats}),
        None,
        {"draws": 200, "chains": 2},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pw.PoolwiseWarning)
        check_sampling(fit)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert messages[0].startswith("No pooling: r_hat up to ") and float(messages[0].split()[5]) > 1.5
    assert messages[1].startswith("No pooling: bulk ESS as low as ")


@pytest.mark.parametrize("before", [signal.default_int_handler, signal.SIG_IGN], ids=["default", "ignored"])
def test_sampling_catches_ctrl_c_unless_it_is_ignored(before):
    """During sampling poolwise holds SIGINT itself (nutpie would swallow it), except in a job that
    ignores SIGINT (started in the background), which must keep ignoring it."""
    previous = signal.signal(signal.SIGINT, before)
    try:
        with _reraise_interrupt():
            during = signal.getsignal(signal.SIGINT)
        assert (during is before) == (before is signal.SIG_IGN)
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGINT, previous)
