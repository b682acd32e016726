"""Nothing lost: ``poolwise compare --out DIR`` killed (SIGKILL) or interrupted (SIGINT, as Ctrl-C
sends it to the whole process group) midway leaves DIR absent or holding the previous complete
output, never half-written files.

The CLI runs in a real subprocess through a small wrapper that only records progress (which model
started sampling, which fit was saved) in a marks file, so the test knows when to strike; with
``pause`` it also waits after each saved fit, so that a signal lands while the results folder is
being written. The sampling tests are slow (tiny draws; run them under
``flock /tmp/poolwise-mcmc.lock``).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import poolwise as pw

from helpers import GYM_FORMULA, TINY

TINY_DRAWS = ["--draws", "40", "--tune", "60", "--chains", "2", "--seed", "3"]
STUDY_FILES = ["coefficients.csv", "complete.nc", "loo.csv", "none.nc", "partial.nc", "study.json"]

WRAPPER = '''
"""The poolwise CLI, recording in MARKS when each model starts sampling and each fit is saved."""
import signal
import sys
import time
from pathlib import Path

# Start as a terminal's foreground job does, with Ctrl-C at its default. A shell starts background
# jobs with SIGINT and SIGQUIT ignored and Python keeps an inherited SIG_IGN, so when the test suite
# itself is launched in the background this run would otherwise sleep through the test's SIGINT.
signal.signal(signal.SIGINT, signal.default_int_handler)

import poolwise as pw
import poolwise.io
from poolwise.cli import app

marks, pause = Path(sys.argv.pop(1)), float(sys.argv.pop(1))
fitting, comparison = sys.modules[pw.fit.__module__], sys.modules[pw.compare.__module__]
real_sample, real_save = fitting.sample, poolwise.io.save_fit


def mark(line):
    with marks.open("a") as handle:
        handle.write(line + "\\n")


def sample(spec, data, pooling, *args, **kwargs):
    mark(f"sampling {pooling}")
    return real_sample(spec, data, pooling, *args, **kwargs)


def save_fit(fit, path, **kwargs):
    written = real_save(fit, path, **kwargs)
    mark(f"saved {Path(path).name}")
    time.sleep(pause)
    return written


fitting.sample = comparison.sample = sample
poolwise.io.save_fit = save_fit
sys.argv[0] = "poolwise"
app()
'''


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to compare before and after."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Run:
    """``poolwise compare franchise GYM_FORMULA --out OUT ...`` in its own process group."""

    def __init__(self, tmp_path: Path, out: Path, *extra: str, pause: float = 0.0):
        home = tmp_path / "run"  # the wrapper, marks and logs; OUT lives in a folder of its own
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        self.marks, self.stdout, self.stderr = home / "marks.txt", home / "stdout.txt", home / "stderr.txt"
        script = home / "wrapper.py"
        script.write_text(WRAPPER)
        command = [
            sys.executable,
            str(script),
            str(self.marks),
            str(pause),
            "compare",
            "franchise",
            GYM_FORMULA,
            *TINY_DRAWS,
            "--out",
            str(out),
            *extra,
        ]
        with self.stdout.open("w") as stdout, self.stderr.open("w") as stderr:
            self.process = subprocess.Popen(command, stdout=stdout, stderr=stderr, start_new_session=True)

    def lines(self) -> list[str]:
        return self.marks.read_text().splitlines() if self.marks.is_file() else []

    def wait_for(self, line: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.lines():
            if self.process.poll() is not None:
                raise AssertionError(f"the run ended before {line!r}: {self.stderr.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"no {line!r} within {timeout} s; marks: {self.lines()}")
            time.sleep(0.05)

    def signal(self, signum: int) -> int:
        """Send ``signum`` to the run's process group (as a terminal's Ctrl-C does); its exit code."""
        os.killpg(self.process.pid, signum)
        try:
            return self.process.wait(timeout=120)
        finally:
            self.stop()

    def finish(self, timeout: float = 600) -> subprocess.CompletedProcess:
        try:
            self.process.wait(timeout=timeout)
        finally:
            self.stop()
        return subprocess.CompletedProcess(
            self.process.args, self.process.returncode, self.stdout.read_text(), self.stderr.read_text()
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)


def leftovers(out: Path) -> list[str]:
    """Names beside OUT (in its own folder) other than OUT itself."""
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


def new_output(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path / "work" / "out"


def previous_output(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A complete earlier study in OUT (the tiny saved study) and its contents."""
    out = new_output(tmp_path)
    shutil.copytree(TINY, out)
    return out, snapshot(out)


def test_existing_output_is_untouched_without_force(tmp_path):
    out, before = previous_output(tmp_path)
    run = Run(tmp_path, out)
    result = run.finish(timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr
        == f"error: {out} already exists; pass --force (force=True) to overwrite it, or choose another path\n"
    )
    assert run.lines() == []  # refused before any sampling
    assert snapshot(out) == before and leftovers(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_while_sampling_writes_nothing(tmp_path, signum):
    out = new_output(tmp_path)
    run = Run(tmp_path, out)
    run.wait_for("sampling none")  # complete pooling done, no pooling sampling
    time.sleep(0.5)
    assert run.signal(signum) != 0
    assert "saved complete.nc" not in run.lines()
    assert not out.exists() and leftovers(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_while_sampling_keeps_previous_output(tmp_path, signum):
    out, before = previous_output(tmp_path)
    run = Run(tmp_path, out, "--force")
    run.wait_for("sampling partial")
    time.sleep(0.5)
    assert run.signal(signum) != 0
    assert snapshot(out) == before and leftovers(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_while_writing_keeps_previous_output(tmp_path, signum):
    """The signal lands after the first fit of the new study was written: the new files exist only
    in a hidden temporary folder beside OUT. SIGINT removes it; SIGKILL cannot, so it may stay,
    under a hidden .part name, never under OUT."""
    out, before = previous_output(tmp_path)
    run = Run(tmp_path, out, "--force", pause=60)
    run.wait_for("saved complete.nc")
    assert run.signal(signum) != 0
    assert snapshot(out) == before
    left = leftovers(out)
    if signum == signal.SIGINT:
        assert left == []
    else:
        assert len(left) == 1 and left[0].startswith(".out.") and left[0].endswith(".part"), left
        assert [p.name for p in (out.parent / left[0]).iterdir()] == ["complete.nc"]
    # A rerun replaces OUT whole, with a complete new study.
    result = Run(tmp_path, out, "--force").finish()
    assert result.returncode == 0, result.stderr
    after = snapshot(out)
    assert sorted(after) == STUDY_FILES and after != before
    assert sorted(pw.load_study(out).fits) == ["complete", "none", "partial"]
    assert leftovers(out) == left
