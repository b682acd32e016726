"""One compiled JAX program per model: its fit and every refit run NumPyro's NUTS on it.

PyMC turns a Bambi model's graph into JAX functions (``get_jaxified_graph``); here the log density
takes a weight per observation as a runtime argument, ``sum(w * log_lik) + log prior``. A weight
of 0 leaves a row out exactly (the masked posterior is the posterior of the model refitted without
it), so the fit (all weights 1), an exact LOO refit and a grouped-CV fold are the same function
with other inputs. The chains of one call, and of many refits in one call, run side by side
(``jax.vmap``) in one XLA program, split over the machine's cores (one JAX CPU device per core,
``jax.pmap``), kept in JAX's persistent compilation cache, so a second process loads what the
first compiled. A run calls it segment by segment (NumPyro's kernel counts its iterations in its
state, so the draws are those of one long loop), which lets the CLI show progress and bounds the
memory XLA's loop holds on large data.

Everything that reaches into PyMC's JAX conversion or NumPyro's kernel is in this module.
"""

import time
import warnings
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

import numpy as np

from poolwise import progress
from poolwise.seeds import of_chains

SEGMENTS = 20  # calls a run is split into, so that its progress can be told between them
SEGMENT_BYTES = 2**29  # what one call's loop may hold: iterations x rows x chains x _BYTES_PER_CELL
_BYTES_PER_CELL = 4096  # measured: about 3.8 kB per row, chain and iteration (InstEval, gaussian)
_LOG_LIK_BYTES = 2**28  # pointwise log-likelihood computed per block of draws of this size (256 MB)
_MAX_CALL_BYTES = 2**29  # draws held at once by one batch of refits (512 MB): larger batches are split
STATS = ("diverging", "n_steps", "lp", "energy", "acceptance_rate", "step_size", "tree_depth")

_programs: "WeakKeyDictionary[object, Program]" = WeakKeyDictionary()


def use_cores() -> None:
    """Give JAX one CPU device per core, so the chains of one call run on all of them.

    XLA runs one small program on one core; NumPyro's answer is one host device per core
    (``numpyro.set_host_device_count``), which only takes effect before JAX's first computation.
    A process that has already computed with JAX, or set the device count itself, keeps what it
    has.

    Examples
    --------
    >>> use_cores()  # doctest: +SKIP
    """
    import os

    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores > 1:
        os.environ["XLA_FLAGS"] = (
            f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={cores}".strip()
        )


def _devices(batch: int) -> int:
    """How many devices share a batch of chains: the most that divide it evenly."""
    import jax

    return max(d for d in range(1, min(batch, jax.local_device_count()) + 1) if batch % d == 0)


@dataclass
class Draws:
    """What one call of ``Program.run`` returns, per chain (chain = batch entry).

    Parameters
    ----------
    z : numpy.ndarray
        Unconstrained draws, (chain, draw, parameter).
    stats : dict of str to numpy.ndarray
        Sampler statistics (``STATS``), each (chain, draw).
    step_size : numpy.ndarray
        Each chain's adapted step size, (chain,).
    inverse_mass : numpy.ndarray
        Each chain's adapted diagonal inverse mass matrix, (chain, parameter).
    seconds : float
        Wall time of the call.

    Examples
    --------
    >>> draws = program(model).run(weights, seeds, tune=1000, draws=1000, target_accept=None)  # doctest: +SKIP
    >>> draws.z.shape  # doctest: +SKIP
    (4, 1000, 31)
    """

    z: np.ndarray
    stats: dict
    step_size: np.ndarray
    inverse_mass: np.ndarray
    seconds: float


@dataclass
class Program:
    """A PyMC model's log density, pointwise log-likelihood and draws-to-variables map, in JAX.

    Made by ``program``, one per model. Parameters are one flat vector, in the order of the
    model's value variables; the sampler's state is one array per chain, which keeps NumPyro's
    tree building cheap.

    Parameters
    ----------
    graph : pymc.Model
        The model's PyMC graph.
    names : list of str
        The value variables, in the flat vector's order.
    shapes : list of tuple
        Their shapes.
    logp : callable
        ``logp(z, w)``: log prior + sum of w * log-likelihood (JAX).
    pointwise : callable
        ``pointwise(z)``: the log-likelihood of every row, (rows,) (JAX).
    rows : int
        Observations the model was built on.
    start : numpy.ndarray
        The model's initial point, flat.
    warm : Draws or None
        The last unweighted fit's sampler state, from which refits start.

    Examples
    --------
    >>> found = program(model)  # doctest: +SKIP
    >>> found.logp(found.start, np.ones(found.rows))  # doctest: +SKIP
    """

    graph: object
    names: list
    shapes: list
    logp: object
    pointwise: object
    rows: int
    start: np.ndarray
    warm: Draws | None = None
    _runners: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        """Number of unconstrained parameters.

        Examples
        --------
        >>> program(model).size  # doctest: +SKIP
        31
        """
        return int(sum(int(np.prod(shape)) for shape in self.shapes))

    def unravel(self, z):
        """The flat vector (or batch of them, last axis) split into the value variables' arrays.

        Parameters
        ----------
        z : array
            (..., parameters).

        Returns
        -------
        list of arrays
            One per value variable, in ``names`` order.

        Examples
        --------
        >>> found.unravel(found.start)  # doctest: +SKIP
        """
        out, start = [], 0
        for shape in self.shapes:
            stop = start + int(np.prod(shape))
            out.append(z[..., start:stop].reshape((*z.shape[:-1], *shape)))
            start = stop
        return out

    def initial_points(self, chains: int, seed: int) -> np.ndarray:
        """Jittered starting points, one flat vector per chain: PyMC's ``jitter+adapt_diag``
        (the model's initial point plus uniform(-1, 1) noise on the unconstrained scale, drawn
        again, up to 10 times, where the log density or its gradient is not finite).

        Parameters
        ----------
        chains : int
            Number of starting points.
        seed : int
            Seed of the jitter.

        Returns
        -------
        numpy.ndarray
            (chains, parameters).

        Examples
        --------
        >>> program(model).initial_points(4, seed=1).shape  # doctest: +SKIP
        (4, 31)
        """
        import jax

        if "logp" not in self._runners:
            self._runners["logp"] = jax.jit(jax.vmap(jax.value_and_grad(self.logp), in_axes=(0, None)))
        rng = np.random.default_rng(seed)
        points = self.start + rng.uniform(-1, 1, (chains, self.size))
        for _ in range(10):
            # A finite density can still have a NaN gradient (PyMC's Poisson log CDF, which hurdle
            # counts use, at means above ~700), and NUTS never leaves such a start.
            logp, grad = self._runners["logp"](points, np.ones(self.rows))
            bad = ~np.isfinite(np.asarray(logp)) | ~np.isfinite(np.asarray(grad)).all(axis=1)
            if not bad.any():
                break
            points[bad] = self.start + rng.uniform(-1, 1, (int(bad.sum()), self.size))
        return points

    def run(
        self,
        weights: np.ndarray,
        seeds: np.ndarray,
        *,
        tune: int,
        draws: int,
        target_accept: float | None,
        start: Draws | None = None,
    ) -> Draws:
        """Run NUTS once per row of ``weights``, all chains side by side in one compiled program,
        called once per segment of the iterations (``_segment_length``); each segment's end is
        told to ``poolwise.progress``.

        Parameters
        ----------
        weights : numpy.ndarray
            (chain, rows): each chain's observation weights (0 leaves a row out).
        seeds : numpy.ndarray
            One seed per chain.
        tune, draws : int
            Warm-up and kept draws per chain.
        target_accept : float or None
            NUTS's step-size target; None is NumPyro's 0.8.
        start : Draws, optional
            Start each chain from this state (its last draw, step size and mass matrix, one chain
            of ``start`` per chain here), adapting both again over the warm-up. None starts from
            jittered initial points.

        Returns
        -------
        Draws

        Examples
        --------
        >>> found.run(np.ones((4, found.rows)), of_chains(1, 4), tune=1000, draws=1000, target_accept=None)  # doctest: +SKIP
        """
        import jax

        weights = np.asarray(weights, dtype=float)
        chains = weights.shape[0]
        warm = start is not None
        if warm:
            init, step, mass = start.z[:, -1, :], start.step_size, start.inverse_mass
        else:
            init = self.initial_points(chains, int(seeds[0]))
            step, mass = np.ones(chains), np.ones((chains, self.size))
        keys = np.asarray(jax.vmap(jax.random.PRNGKey)(np.asarray(seeds, dtype=np.uint32)))
        args = (
            keys,
            weights,
            np.asarray(init, dtype=float),
            np.asarray(step, dtype=float),
            np.asarray(mass, dtype=float),
        )
        devices = _devices(chains)
        args = tuple(a.reshape((devices, chains // devices, *a.shape[1:])) for a in args)
        total = tune + draws
        progress.update(0, total)  # so the time to trace or load the program counts as elapsed
        begin, advance, length = self._runner((tune, draws, target_accept or 0.8, warm), args)
        kept_z, kept_stats = [], []
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = begin(*args)
            for done in range(0, total, length):
                state, (z, stats), step_size, inverse_mass = advance(state, args[1])
                # Iterations below tune are warm-up; a last segment may run past total (discarded).
                keep = slice(max(tune - done, 0), min(total - done, length))
                if keep.start < keep.stop:
                    kept_z.append(np.asarray(z)[:, :, keep])
                    kept_stats.append({name: np.asarray(value)[:, :, keep] for name, value in stats.items()})
                # JAX dispatches asynchronously: without waiting, every warm-up segment would be
                # queued at once, the bar would jump and Ctrl-C would wait for the whole warm-up.
                jax.block_until_ready(state)
                progress.update(min(done + length, total), total)

        def joined(value):  # (device, chain, ...) -> (chain, ...)
            return np.asarray(value).reshape((chains, *value.shape[2:]))

        stats = {name: joined(np.concatenate([s[name] for s in kept_stats], axis=2)) for name in kept_stats[0]}
        stats["tree_depth"] = (np.log2(stats["n_steps"]) + 1).astype(int)
        z = joined(np.concatenate(kept_z, axis=2))
        return Draws(z, stats, joined(step_size), joined(inverse_mass), time.perf_counter() - began)

    def _runner(self, settings: tuple, args: tuple):
        """The compiled sampler for ``settings`` and the arguments' shapes (device, chain, ...):
        ``begin(*args)`` makes each chain's NUTS state, ``advance(state, weights)`` runs it for
        ``length`` iterations, traced once per machine.

        A run is a loop of segments so that progress can be told between them (NumPyro's kernel
        counts its iterations in the state, so warm-up ends at the same iteration whatever the
        segments). Tracing the kernel under ``vmap`` takes seconds, so both traced programs of one
        device's chains are kept on disk (``jax.export``), keyed by the log density's own trace,
        the settings, the shapes and the versions of JAX and NumPyro; XLA's compilation of them is
        in JAX's persistent cache. Several devices run them side by side with ``jax.pmap``.
        """
        import jax

        key = (settings, tuple(a.shape for a in args))
        if key in self._runners:
            return self._runners[key]
        tune, draws, target_accept, warm = settings
        length = _segment_length(tune, draws, self.rows * args[1].shape[0] * args[1].shape[1])
        one = tuple(a[0] for a in args)
        begin, advance = _chain(self.logp, tune, target_accept, warm, length)
        # Tracing the kernel's start also sets its warm-up schedule, which advance reads.
        state = jax.eval_shape(jax.vmap(begin), *one)
        structure = jax.tree.structure(state)

        def begin_flat(*a):
            return jax.tree.leaves(jax.vmap(begin)(*a))

        def advance_flat(leaves, w):
            state, out, step_size, inverse_mass = jax.vmap(advance)(jax.tree.unflatten(structure, leaves), w)
            return jax.tree.leaves(state), out, step_size, inverse_mass

        shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in one]
        leaves = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in jax.tree.leaves(state)]
        calls = [
            self._exported(("begin", key), begin_flat, shapes),
            self._exported(("advance", length, key), advance_flat, [leaves, shapes[1]]),
        ]
        if key[1][0][0] > 1:
            calls = [jax.pmap(call) for call in calls]
        else:
            calls = [_first(jax.jit(call)) for call in calls]
        self._runners[key] = (*calls, length)
        return self._runners[key]

    def _exported(self, key: tuple, function, shapes: list):
        """``function`` traced for ``shapes``, read from the disk cache or traced and written there."""
        import jax

        path = _exported_path(self, key)
        if path is not None and path.exists():
            try:
                return jax.export.deserialize(bytearray(path.read_bytes())).call
            except Exception:  # an unreadable or foreign entry: trace again and overwrite it
                pass
        exported = jax.export.export(jax.jit(function))(*shapes)
        if path is not None:
            _write_atomic(path, exported.serialize())
        return exported.call

    def log_lik(self, z: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The pointwise log-likelihood of ``rows`` (default all) at each draw of ``z``.

        Parameters
        ----------
        z : numpy.ndarray
            (chain, draw, parameter).
        rows : numpy.ndarray, optional
            Row numbers to keep.

        Returns
        -------
        numpy.ndarray
            (chain, draw, row).

        Examples
        --------
        >>> found.log_lik(draws.z, np.array([3])).shape  # doctest: +SKIP
        (4, 1000, 1)
        """
        import jax

        key = "pointwise"
        if key not in self._runners:
            self._runners[key] = jax.jit(jax.vmap(jax.vmap(self.pointwise)))
        kept = np.arange(self.rows) if rows is None else np.asarray(rows)
        chains, draws = z.shape[:2]
        # A block of draws at a time, so that XLA's temporaries (the mean of every row at every
        # draw, 2.3 GB each at InstEval's 73,421 rows x 4,000 draws) stay the size of one block; the
        # last block is padded with copies of the last draw, so one compiled shape serves them all.
        block = int(np.clip(_LOG_LIK_BYTES // max(1, 8 * chains * self.rows), 1, draws))
        values = np.empty((chains, draws, len(kept)))
        for first in range(0, draws, block):
            part = z[:, first : first + block]
            short = block - part.shape[1]
            if short:
                part = np.concatenate([part, np.repeat(part[:, -1:], short, axis=1)], axis=1)
            values[:, first : first + block] = np.asarray(self._runners[key](part))[:, : block - short][..., kept]
        return values


def program(model) -> Program:
    """The JAX program of a built Bambi model (made once per model object).

    Parameters
    ----------
    model : bambi.Model
        A built model with one observed variable.

    Returns
    -------
    Program

    Examples
    --------
    >>> program(model).names  # doctest: +SKIP
    """
    graph = model.backend.model
    if graph not in _programs:
        _programs[graph] = _make(graph)
    return _programs[graph]


def _make(graph) -> Program:
    import pytensor.tensor as pt
    from pymc.sampling.jax import get_jaxified_graph

    (observed,) = graph.observed_RVs
    weight = pt.vector("poolwise_weight")
    log_lik = graph.logp(vars=[observed], sum=False)[0]
    prior = graph.logp(vars=graph.free_RVs + graph.potentials)
    total = prior + pt.sum(weight * log_lik)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logp_fn = get_jaxified_graph(inputs=[*graph.value_vars, weight], outputs=[total])
        pointwise_fn = get_jaxified_graph(inputs=graph.value_vars, outputs=[log_lik])
    point = graph.initial_point()
    names = [var.name for var in graph.value_vars]
    shapes = [tuple(np.shape(point[name])) for name in names]
    rows = int(np.shape(graph.rvs_to_values[observed].data)[0])
    found = Program(graph, names, shapes, None, None, rows, _flat([point[name] for name in names]))

    def logp(z, w):
        return logp_fn(*found.unravel(z), w)[0]

    def pointwise(z):
        return pointwise_fn(*found.unravel(z))[0]

    found.logp, found.pointwise = logp, pointwise
    return found


def _first(call):
    """``call`` on the one device's arguments (each array of each argument, a list of the state's
    arrays included), its outputs with the device axis back."""

    def run(*args):
        import jax

        return jax.tree.map(lambda a: a[None], call(*jax.tree.map(lambda a: a[0], args)))

    return run


def _exported_path(found: Program, key: tuple):
    """Where the traced sampler of ``key`` is kept, or None without a cache folder."""
    import hashlib
    from importlib.metadata import version
    from inspect import getsource

    import jax

    from poolwise.data import cache_dir

    try:
        folder = cache_dir() / "programs"
    except RuntimeError:
        return None
    # The trace prints the data and priors as named constants, not their values: hash those too,
    # or two data sets of one shape would share a program.
    density = jax.make_jaxpr(found.logp)(np.zeros(found.size), np.ones(found.rows))
    digest = hashlib.sha256()
    # The kernel's own source too: a change to what a segment returns must not load old programs.
    digest.update(
        "\n".join(
            [str(density.jaxpr), repr(key), version("jax"), version("numpyro"), version("pymc"), getsource(_chain)]
        ).encode()
    )
    for constant in density.consts:
        value = np.asarray(constant)
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return folder / f"{digest.hexdigest()[:32]}.jaxexport"


def _write_atomic(path, content: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(content)
    os.replace(temporary, path)


def _flat(values: list) -> np.ndarray:
    return np.concatenate([np.reshape(v, -1) for v in values])


def _segment_length(tune: int, draws: int, cells: int = 1) -> int:
    """Iterations per segment of a run: about a twentieth of it and at most what ``SEGMENT_BYTES``
    allows for ``cells`` (rows x chains); a divisor of the run down to half that where there is
    one (so no iteration is wasted), else the run's last segment overshoots and is cut.

    XLA's compiled loop holds memory in proportion to its iterations times the rows (measured on
    InstEval, 73,421 rows x 4 chains: 3.8 GB at 2 iterations per call, 6.0 GB at 4, 23 GB at 20, in
    the same wall time), so large data run short segments.
    """
    total = tune + draws
    wanted = max(1, -(-total // SEGMENTS))
    wanted = max(1, min(wanted, SEGMENT_BYTES // max(1, cells * _BYTES_PER_CELL)))
    return next((d for d in range(wanted, (wanted - 1) // 2, -1) if total % d == 0), wanted)


def _chain(logp, tune: int, target_accept: float, warm: bool, length: int):
    """One NUTS chain as two functions: ``begin(key, weights, start, step size, inverse mass)``
    makes its state and ``advance(state, weights)`` runs NumPyro's kernel ``length`` iterations
    (warm-up while the state's count is below ``tune``) as one ``lax.scan``."""
    import jax
    from numpyro.infer.hmc import hmc

    init_kernel, sample_kernel = hmc(potential_fn_gen=lambda w: lambda z: -logp(z, w), algo="NUTS")

    def begin(key, w, start, step_size, inverse_mass):
        options = {"step_size": step_size, "inverse_mass_matrix": inverse_mass} if warm else {}
        return init_kernel(
            start, num_warmup=tune, target_accept_prob=target_accept, model_args=(w,), rng_key=key, **options
        )

    def advance(state, w):
        def step(state, _):
            state = sample_kernel(state, model_args=(w,))
            stats = {
                "diverging": state.diverging,
                "n_steps": state.num_steps,
                "lp": -state.potential_energy,
                "energy": state.energy,
                "acceptance_rate": state.accept_prob,
                "step_size": state.adapt_state.step_size,
            }
            return state, (state.z, stats)

        state, out = jax.lax.scan(step, state, None, length=length)
        return state, out, state.adapt_state.step_size, state.adapt_state.inverse_mass_matrix

    return begin, advance


def refit(
    found: Program,
    held_out: list[np.ndarray],
    seeds: list[int],
    *,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float | None,
) -> list[tuple[np.ndarray, int]]:
    """Exact refits, one per entry of ``held_out``: those rows weighted 0, the rest 1.

    All refits run in one call, ``chains`` chains each side by side (split into several calls
    where their draws would pass ``_MAX_CALL_BYTES``). Where the program's own fit has run in this
    process (``Program.warm``), each refit starts from the fit's last draws, step size and mass
    matrix, otherwise from PyMC's jittered initial points; either way with the fit's full
    warm-up, which adapts step size and mass matrix again. (Keeping the fit's mass matrix and
    tuning only the step size was measured wrong: a row whose removal leaves a coefficient to its
    wide prior is then explored with the fit's narrow scale, and its LOO term was 0.7 off.)

    Parameters
    ----------
    found : Program
        The model's program (``program``).
    held_out : list of numpy.ndarray
        The row numbers each refit leaves out.
    seeds : list of int
        One seed per refit.
    draws, tune, chains : int
        Sampler settings of each refit (``tune``: the fit's warm-up).
    target_accept : float or None
        NUTS's step-size target.

    Returns
    -------
    list of (numpy.ndarray, int)
        Per refit: the held-out rows' log-likelihood (chain, draw, row) and its divergences.

    Examples
    --------
    >>> [(log_lik, divergences)] = refit(program(model), [np.array([3])], [7], draws=1000, tune=1000, chains=4, target_accept=None)  # doctest: +SKIP
    """
    warm = found.warm is not None and found.warm.z.shape[0] == chains
    per_call = max(1, _MAX_CALL_BYTES // max(1, chains * draws * found.size * 8))
    results = []
    for first in range(0, len(held_out), per_call):
        rows, batch = held_out[first : first + per_call], seeds[first : first + per_call]
        count = len(rows)
        weights = np.ones((count * chains, found.rows))
        chain_seeds = np.concatenate([of_chains(seed, chains) for seed in batch])
        for number, left_out in enumerate(rows):
            weights[number * chains : (number + 1) * chains, left_out] = 0.0
        start = None
        if warm:
            w = found.warm
            start = Draws(
                np.tile(w.z[:, -1:, :], (count, 1, 1)),
                {},
                np.tile(w.step_size, count),
                np.tile(w.inverse_mass, (count, 1)),
                0.0,
            )
        result = found.run(
            weights,
            chain_seeds,
            tune=tune,
            draws=draws,
            target_accept=target_accept,
            start=start,
        )
        for number, left_out in enumerate(rows):
            chunk = slice(number * chains, (number + 1) * chains)
            log_lik = found.log_lik(result.z[chunk], np.asarray(left_out))
            results.append((log_lik, int(result.stats["diverging"][chunk].sum())))
    return results


def sample(model, *, draws: int, tune: int, chains: int, seed: int, target_accept: float | None):
    """Fit a built Bambi model with NUTS on its JAX program and return the DataTree Bambi would.

    The groups and names are those of Bambi's own NumPyro fit (posterior without offsets and with
    the intercept on the data's scale, sample_stats, log_likelihood, observed_data); the final
    sampler state is kept on the program, for refits to start from.

    Parameters
    ----------
    model : bambi.Model
        A built model.
    draws, tune, chains, seed : int
        Sampler settings.
    target_accept : float or None
        NUTS's step-size target; None is NumPyro's 0.8.

    Returns
    -------
    xarray.DataTree

    Examples
    --------
    >>> idata = sample(model, draws=1000, tune=1000, chains=4, seed=1, target_accept=None)  # doctest: +SKIP
    """
    found = program(model)
    result = found.run(
        np.ones((chains, found.rows)),
        of_chains(seed, chains),
        tune=tune,
        draws=draws,
        target_accept=target_accept,
    )
    found.warm = result
    return tree(model, result, tune=tune)


def tree(model, result: Draws, *, tune: int):
    """The DataTree of draws from ``program(model).run``, in the layout of Bambi's own fits.

    Parameters
    ----------
    model : bambi.Model
        The model drawn from.
    result : Draws
        The draws.
    tune : int
        Warm-up draws per chain (recorded).

    Returns
    -------
    xarray.DataTree

    Examples
    --------
    >>> tree(model, draws, tune=1000)["posterior"]  # doctest: +SKIP
    """
    from arviz_base import from_dict
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants, find_observations

    found = program(model)
    graph = found.graph
    (observed,) = graph.observed_RVs
    groups = {
        "posterior": posterior(model, result.z),
        "sample_stats": result.stats,
        "log_likelihood": {observed.name: found.log_lik(result.z)},
    }
    observations = find_observations(graph)
    if observations:
        groups["observed_data"] = observations
    constants = find_constants(graph)
    if constants:
        groups["constant_data"] = constants
    coords, dims = coords_and_dims_for_inferencedata(graph)
    attrs = {"posterior": {"inference_library": "numpyro", "sampling_time": result.seconds, "tuning_steps": tune}}
    idata = from_dict(data=groups, coords=coords, dims=dims, sample_dims=["chain", "draw"], attrs=attrs)
    idata = model.backend._clean_results(idata, omit_offsets=True, include_response_params=False)
    model.backend.fit = True
    return idata


def posterior(model, z: np.ndarray) -> dict[str, np.ndarray]:
    """The model's variables at unconstrained draws ``z`` (chain, draw, parameter), as Bambi keeps
    them before its own clean-up: no transformed values, offsets or per-observation likelihood
    parameters.

    Parameters
    ----------
    model : bambi.Model
        The model ``z`` was drawn from (``program(model).run``).
    z : numpy.ndarray
        (chain, draw, parameter).

    Returns
    -------
    dict of str to numpy.ndarray
        Variable name -> draws (chain, draw, ...).

    Examples
    --------
    >>> posterior(model, draws.z)["Intercept"].shape  # doctest: +SKIP
    (4, 1000)
    """
    import jax
    from pymc.sampling.jax import get_jaxified_graph
    from pymc.util import get_default_varnames

    found = program(model)
    graph = found.graph
    # Per-observation likelihood parameters are deterministics (mu, or the ordinal's p); names,
    # because unobserved_value_vars holds copies of the graph's variables.
    dropped = set(model.family.likelihood.params) & {var.name for var in graph.deterministics}
    keep = [
        var
        for var in get_default_varnames(graph.unobserved_value_vars, include_transformed=False)
        if not var.name.endswith("_offset") and var.name not in dropped
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expand = get_jaxified_graph(inputs=graph.value_vars, outputs=keep)
    values = jax.jit(jax.vmap(jax.vmap(lambda draw: expand(*found.unravel(draw)))))(z)
    return {var.name: np.asarray(value) for var, value in zip(keep, values)}
