"""Benchmark the three-model comparison end to end and print a table.

Every run is a fresh process (imports and compilation included). "cold" points PyTensor's
and poolwise's (JAX's) compile caches at an empty folder; "warm" runs again with that same folder (``--repeats`` times;
the row shown is the run with the median wall time, since a 2-core machine's timings vary by ±20 %).
Kinds: poolwise (pw.compare), partial (pw.fit of partial pooling only), plain (three Bambi
fits and arviz.compare, as an analyst writes them), numpyro-ref (the three models written
directly in NumPyro; its backend column is ignored), poolwise-nofix / poolwise-mm (plain PSIS-LOO /
moment matching first), logo and kfold10 (grouped CV alone: elpd_cv in the last column). Columns: wall time,
sampling time (summed over models, as the samplers report it), the rest (import, graph building,
compilation, LOO), the smallest bulk ESS over all parameters and models, ESS per wall second,
and peak resident memory of the process.

    python benchmarks/bench.py                 # gym data: poolwise and plain Bambi with each sampler, NumPyro reference
    python benchmarks/bench.py --groups 100 --kinds poolwise --backends nutpie
    python benchmarks/bench.py --groups 1000 --kinds partial --backends nutpie --no-gym
    python benchmarks/bench.py --kinds poolwise poolwise-nofix logo --backends numpyro   # refits (issue 17)
    python benchmarks/bench.py --groups 1000 --kinds kfold10 --backends numpyro --no-gym --repeats 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(kind: str, backend: str, dataset: str, groups: int, compiledir: str) -> dict:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={compiledir}", POOLWISE_CACHE_DIR=f"{compiledir}/poolwise")
    command = [sys.executable, str(HERE / "compare_once.py"), kind, backend, dataset, str(groups)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, env=env, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    models = result["models"].values()
    sampling = sum(m["sampling_s"] or 0 for m in models)
    ess = min(m["min_ess"] for m in models)
    return {
        "wall_s": wall,
        "import_s": result["import_s"],
        "sampling_s": sampling,
        "rest_s": wall - sampling,
        "min_ess": ess,
        "max_rhat": max(m.get("max_rhat", float("nan")) for m in models),
        "ess_per_s": ess / wall,
        "peak_mb": result["peak_mb"],
        "elpd": {name: round(m["elpd_loo"], 1) for name, m in result["models"].items()},
        "bad_k": sum(m.get("bad_k", 0) for m in models),
    }


def median_row(rows: list[dict]) -> dict:
    """The run with the median wall time (the first error, if any run failed)."""
    errors = [row for row in rows if "error" in row]
    if errors:
        return errors[0]
    middle = statistics.median_low(row["wall_s"] for row in rows)
    return next(row for row in rows if row["wall_s"] == middle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["numpyro", "nutpie", "pymc"])
    parser.add_argument("--kinds", nargs="+", default=["poolwise", "plain", "numpyro-ref"])
    parser.add_argument("--groups", nargs="*", type=int, default=[], help="simulated franchise sizes to add")
    parser.add_argument("--no-gym", action="store_true", help="skip the gym data")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per row (median shown)")
    args = parser.parse_args()
    cases = ([] if args.no_gym else [("gym", 0)]) + [("franchise", g) for g in args.groups]
    header = f"{'data':<15}{'tool':<12}{'backend':<9}{'cache':<6}{'wall s':>8}{'import s':>9}{'sample s':>9}{'rest s':>8}{'min ESS':>9}{'r_hat':>7}{'ESS/s':>7}{'peak MB':>9}  elpd_loo"
    print(header)
    print("-" * len(header))
    for dataset, groups in cases:
        for kind in args.kinds:
            for backend in ["numpyro"] if kind == "numpyro-ref" else args.backends:
                with tempfile.TemporaryDirectory() as compiledir:
                    for cache in ("cold", "warm"):
                        rows = [
                            run(kind, backend, dataset, groups, compiledir)
                            for _ in range(1 if cache == "cold" else args.repeats)
                        ]
                        row = median_row(rows)
                        label = dataset if not groups else f"{dataset}-{groups}"
                        if "error" in row:
                            print(f"{label:<15}{kind:<12}{backend:<9}{cache:<6}  {row['error']}")
                            continue
                        print(
                            f"{label:<15}{kind:<12}{backend:<9}{cache:<6}{row['wall_s']:>8.1f}{row['import_s']:>9.1f}"
                            f"{row['sampling_s']:>9.1f}{row['rest_s']:>8.1f}{row['min_ess']:>9.0f}{row['max_rhat']:>7.3f}{row['ess_per_s']:>7.0f}"
                            f"{row['peak_mb']:>9.0f}  {row['elpd']}"
                            + (f"  k>0.7: {row['bad_k']}" if row["bad_k"] else ""),
                            flush=True,
                        )


if __name__ == "__main__":
    main()
