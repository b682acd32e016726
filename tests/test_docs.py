"""The documentation: the site builds offline with warnings as errors, and every example it shows runs.

The convention for examples in ``docs/*.md`` and ``README.md`` (docs/contributing.md, "Examples are
tests"): fenced ``console`` blocks hold ``$ poolwise ...`` lines, each followed by its output;
``python`` blocks run as they are and ``pycon`` blocks have the code of their ``>>>`` lines run;
``bash`` and ``text`` blocks never run; ``<!-- docs-test: skip REASON -->`` right above a block
skips it. Each page runs in its own temporary folder, blocks in order, sharing one namespace.

Sampling is replaced by the tiny saved study (tests/data), so no example runs MCMC. The fast
test runs the commands that need no fit (templates, check, simulate, --help) and every error
message; the slow one runs every example of a page in order, fits on the tiny study. Output not
drawn from a posterior must match what the page shows.
"""

import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from importlib import import_module
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import TINY, shared_csv

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\S*)\s*$")
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\b\s*(.*?)\s*-->$")
SHELL = {"|", ">", ">>", "2>/dev/null", "&&", ";"}
FROM_POSTERIOR = {"fit", "compare", "demo", "show", "decide"}  # their output is a real run's numbers
NO_FIT = {"templates", "check", "simulate", "--help"}  # need neither a fit nor saved results
runner = CliRunner()


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    text: str
    skip: str | None = None  # the reason given in a skip marker

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass
class Command:
    """One ``$ poolwise ...`` line: its arguments, the output the page shows and whether a shell
    pipe or redirection was cut off (then the output shown is only the start of the real one)."""

    args: list[str]
    piped: bool
    shown: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 2 if self.shown and self.shown[0].startswith("error:") else 0

    @property
    def compared(self) -> bool:
        return bool(self.shown) and (self.exit_code == 2 or self.args[0] not in FROM_POSTERIOR)


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` with the skip reason written on the line above it, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = SKIP.match(above)
        text = "\n".join(lines[i + 1 : end])
        found.append(Block(page, i + 1, opening.group(1), text, marker.group(1) if marker else None))
        i = end + 1
    return found


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            tokens = shlex.split(line[2:])
            assert tokens[0] == "poolwise", (
                f"{block.where}: a console block runs poolwise commands; use bash for {line}"
            )
            cut = next((i for i, token in enumerate(tokens) if token in SHELL), len(tokens))
            found.append(Command(tokens[1:cut], piped=cut < len(tokens)))
        else:
            assert found, f"{block.where}: output before the first '$ poolwise' line"
            found[-1].shown.append(line.rstrip())
    return found


def pycon_source(text: str) -> str:
    return "\n".join(line[4:] for line in text.splitlines() if line.startswith((">>> ", "... ")))


def run_command(command: Command, where: str) -> None:
    from poolwise.cli import app

    args = command.args
    result = runner.invoke(app, args, catch_exceptions=False)
    said = f"{where}: poolwise {shlex.join(args)}"
    assert result.exit_code == command.exit_code, f"{said} exited {result.exit_code}:\n{result.output}"
    if command.compared:
        real = [line.rstrip() for line in result.output.rstrip("\n").splitlines()]
        shown = command.shown
        assert (real[: len(shown)] if command.piped else real) == shown, f"{said} printed:\n{result.output}"


def run_page(page: Path, *, fast: bool = False) -> int:
    """Run the examples of ``page`` in order in the current folder; return how many ran. ``fast``
    runs only the console commands that need no fit: NO_FIT commands and every error message."""
    import matplotlib.pyplot as plt

    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(page):
        if block.skip is not None:
            assert block.skip, f"{block.where}: a docs-test skip marker must say why"
            continue
        if block.lang == "console":
            for command in commands(block):
                if not fast or command.args[0] in NO_FIT or command.exit_code == 2:
                    run_command(command, block.where)
                    ran += 1
        elif block.lang in ("python", "pycon") and not fast:
            source = pycon_source(block.text) if block.lang == "pycon" else block.text
            exec(compile(source, block.where, "exec"), namespace)  # noqa: S102 - the docs' own examples
            plt.close("all")
            ran += 1
        elif block.lang in ("bash", "sh", "shell"):
            for line in block.text.splitlines():
                assert not re.match(r"^(\S*/)?poolwise\b", line.strip()), (
                    f"{block.where}: write poolwise commands in a console block so a test runs them: {line}"
                )
    return ran


def uses_gym(page: Path) -> bool:
    return bool(re.search(r"""load_dataset\(["']gym["']\)|^\$ poolwise \w+ gym\b""", page.read_text(), re.MULTILINE))


@pytest.fixture
def tiny_sampler(monkeypatch):
    """Replace NUTS with the tiny saved study's fits (and their real sampling warnings)."""
    from poolwise.fitting import check_sampling
    from poolwise.io import load_fit

    def fake_sample(spec, data, pooling, built, **settings):
        fit = load_fit(TINY / f"{pooling}.nc")
        check_sampling(fit)
        return fit

    # By module object: the package's lazy exports make the attribute poolwise.fitting the function.
    for module in ("poolwise.fitting", "poolwise.comparison"):
        monkeypatch.setattr(import_module(module), "sample", fake_sample)


@pytest.fixture
def page_folder(tmp_path, monkeypatch):
    """Run a page where it writes only into a fresh folder (the demo's temporary folder too)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


# ---------------------------------------------------------------- the convention itself


def test_blocks_commands_and_skip_markers_are_read_as_the_contributing_page_says(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n```console\n$ poolwise templates 'y ~ x + (1|g)' | head -n 2\nComplete pooling: y ~ x\n"
        "$ poolwise fit data.csv 'y ~ x'\nerror: file not found\n```\n\n"
        "<!-- docs-test: skip needs a cluster -->\n```python\nimport dask\n```\n\n"
        "```pycon\n>>> x = 1\n>>> x + 1\n2\n```\n"
    )
    found = blocks(page)
    assert [(b.lang, b.line, b.skip) for b in found] == [
        ("console", 3, None),
        ("python", 11, "needs a cluster"),
        ("pycon", 15, None),
    ]
    first, second = commands(found[0])
    assert first.args == ["templates", "y ~ x + (1|g)"] and first.piped and first.compared
    assert first.exit_code == 0 and first.shown == ["Complete pooling: y ~ x"]
    assert second.args == ["fit", "data.csv", "y ~ x"] and second.exit_code == 2 and second.compared
    assert pycon_source(found[2].text) == "x = 1\nx + 1"


def test_every_page_with_examples_is_in_the_docs_or_the_readme():
    assert {page.name for page in PAGES} >= {"index.md", "cli.md", "README.md", "contributing.md"}
    assert sum(block.lang == "console" for page in PAGES for block in blocks(page)) >= 10


# ---------------------------------------------------------------- the examples


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_the_examples_that_need_no_sampling_run(page, tiny_sampler, page_folder):
    """templates, check, simulate, --help and every error message, in page order."""
    if uses_gym(page):
        shared_csv("gym.csv")
    run_page(page, fast=True)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_example_of_a_page_runs(page, tiny_sampler, page_folder):
    """Every example in order, the sampling ones on the tiny saved study."""
    if uses_gym(page):
        shared_csv("gym.csv")
    run_page(page)


# ---------------------------------------------------------------- the site


class Links(HTMLParser):
    """The script and stylesheet addresses of one HTML page."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.loaded.append(found["src"])
        if tag == "link" and found.get("rel") in ("stylesheet", "preload") and found.get("href"):
            self.loaded.append(found["href"])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once with ``mkdocs build --strict`` (warnings are errors), as CI builds it."""
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    command = [str(mkdocs)] if mkdocs.exists() else [sys.executable, "-m", "mkdocs"]
    result = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_site_builds_offline_with_warnings_as_errors(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        links = Links()
        links.feed(page.read_text(encoding="utf-8"))
        outside = [link for link in links.loaded if re.match(r"^(https?:)?//", link)]
        assert not outside, (page, outside)


def test_the_cli_reference_is_generated_from_the_app(site):
    from poolwise.cli import app

    html = (site / "cli-reference" / "index.html").read_text(encoding="utf-8")
    for command in app.registered_commands:
        assert f"poolwise {command.name or command.callback.__name__}" in html


def test_every_notebook_has_its_page(site):
    for notebook in (ROOT / "notebooks").glob("*.py"):
        assert (site / "notebooks" / notebook.stem / "index.html").is_file(), notebook


def test_the_api_reference_documents_the_public_functions(site):
    html = "".join(page.read_text(encoding="utf-8") for page in (site / "api").rglob("*.html"))
    for name in ("poolwise.comparison.compare", "poolwise.fitting.fit", "poolwise.decisions.decide"):
        assert f'id="{name}"' in html, name


def test_the_readme_is_the_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move the detail into docs/"


def test_the_readme_links_into_pages_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((?!https?://|#)([^)#\s]+)", readme)
    assert targets, "the README links into the docs"
    for target in targets:
        assert (ROOT / target).exists(), target
