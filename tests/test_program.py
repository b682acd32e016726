"""The model's JAX program: a second process traces and compiles nothing; the program's fit is
the fit Bambi's own NumPyro path gives, within Monte Carlo error."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Fits the gym's complete-pooling model and LOO-refits two rows, then reports how many samplers
# it traced (jax.export) and how many XLA compilations missed JAX's persistent cache.
SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import jax
    import numpy as np
    from jax._src import compilation_cache
    import poolwise as pw
    from poolwise import program, refits

    traced, missed = [], []
    export = jax.export.export
    jax.export.export = lambda *a, **k: traced.append(1) or export(*a, **k)
    read = compilation_cache.get_executable_and_time
    def counted(*a, **k):
        found = read(*a, **k)
        if found[0] is None:
            missed.append(1)
        return found
    compilation_cache.get_executable_and_time = counted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pw.fit("p(nSigned, nTrialCustomers) ~ yogaStretch", pw.load_dataset("franchise"),
                     pooling="complete", draws=50, tune=50, chains=2, seed=3)
        logs = refits.of_fit(fit).refit([np.array([0]), np.array([5])], [1, 2], draws=20, tune=50, chains=2)
    print(json.dumps({"traced": len(traced), "missed": len(missed),
                      "intercept": float(fit.posterior["Intercept"].mean()), "refit": float(logs[1][0].mean())}))
    """
)


def run_fresh(cache) -> dict:
    env = {**os.environ, "POOLWISE_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_traces_and_compiles_nothing(tmp_path):
    first, second = run_fresh(tmp_path), run_fresh(tmp_path)
    # The fit's sampler and the refits' (warm-started), each a start and a segment program.
    assert first["traced"] == 4 and first["missed"] > 0
    assert (second["traced"], second["missed"]) == (0, 0)
    assert (second["intercept"], second["refit"]) == (first["intercept"], first["refit"])


def test_two_data_sets_of_one_shape_get_their_own_program():
    """The traced sampler on disk is keyed by the data's values, not only the trace's shapes:
    leaving out row 3 or row 8 of the gym data are two programs."""
    import warnings

    import poolwise as pw
    from poolwise import fitting, program
    from poolwise.priors import resolve_priors

    from helpers import GYM_FORMULA

    gym = pw.load_dataset("franchise")
    paths = []
    for row in (3, 8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec, prepared, _, _ = fitting.checked_inputs(
                GYM_FORMULA,
                gym.drop(index=row),
                family=None,
                draws=10,
                tune=10,
                chains=1,
                backend=None,
                allow_unidentified=True,
            )
            model = fitting.build_model(spec, prepared, "complete", resolve_priors(None, spec, prepared, "complete"))[0]
        paths.append(program._exported_path(program.program(model), ("settings",)))
    assert paths[0] is not None and paths[0] != paths[1]


def test_segments_cover_the_run_and_divide_it_where_they_can():
    from poolwise.program import SEGMENTS, _segment_length

    assert SEGMENTS == 20
    assert _segment_length(1000, 1000) == 100
    assert _segment_length(1000, 333) == 43  # 1,333 = 31 x 43: 31 segments rather than one cut
    assert _segment_length(1000, 990) == 100  # 1,990 = 2 x 5 x 199: the last of 20 segments is cut
    assert _segment_length(1000, 1000, cells=2000) == 50  # at most the memory cap (65), a divisor below it
    assert _segment_length(500, 200) == 35
    assert _segment_length(3, 2) == 1
    # Large data run short segments: XLA's loop holds memory per iteration and row.
    assert _segment_length(1000, 1000, cells=73_421 * 4) == 1
    assert _segment_length(1000, 1000, cells=12_000 * 4) == 2


@pytest.mark.slow
def test_a_run_tells_its_progress_and_its_segments_do_not_change_the_draws(monkeypatch):
    """Each segment's end reaches the listener under the stage's task name; one segment or twenty,
    the draws are the same (the kernel counts warm-up in its state)."""
    import warnings

    import numpy as np

    import poolwise as pw
    from poolwise import program, progress
    from poolwise.seeds import of_chains

    seen = []
    with warnings.catch_warnings(), progress.listening(lambda *update: seen.append(update)):
        warnings.simplefilter("ignore")
        fit = pw.fit(
            "p(nSigned, nTrialCustomers) ~ yogaStretch",
            pw.load_dataset("franchise"),
            pooling="complete",
            draws=30,
            tune=30,
            chains=2,
            seed=3,
        )
    assert seen[0] == ("Complete pooling", 0, 60) and seen[-1] == ("Complete pooling", 60, 60)
    assert [done for _, done, _ in seen] == list(range(0, 61, 3))  # 20 segments of 3 iterations

    found = program.program(fit.model)
    found._runners.clear()
    monkeypatch.setattr(program, "SEGMENTS", 1)
    whole = found.run(np.ones((2, found.rows)), of_chains(3, 2), tune=30, draws=30, target_accept=None)
    intercept = fit.posterior["Intercept"].to_numpy()
    assert whole.z.shape == (2, 30, found.size)
    assert np.allclose(program.posterior(fit.model, whole.z)["Intercept"], intercept, rtol=0, atol=1e-12)
