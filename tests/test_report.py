"""The HTML report: its content against the saved study, refusals of bad input, and a real browser.

The report of tests/data/tiny_study is rendered once per module (about 7 s: it loads the study and
draws every figure); tests that only need the plumbing pass saved figures so nothing is drawn.
"""

import base64
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import replace
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import poolwise as pw
from poolwise import report
from poolwise.io import load_study
from poolwise.plots import FIGURES
from poolwise.report import change_text, estimate_text, mean_text, render_report, significant, write_report

from helpers import TINY

SECTIONS = [
    "Question and verdict",
    "Model comparison",
    "Decision numbers",
    "Per-group estimates",
    "Figures",
    "Diagnostics",
    "Reproducibility",
]
# Every figure of the registry but the model graph (Graphviz's, not embedded).
FIGURE_FILES = [kind.file for kind in FIGURES.values() if kind.draw is not None]


class Page(HTMLParser):
    """What a test reads from a page: headings, text, tables (caption, then rows of cell texts), every tag's attributes."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[tuple[str, str]] = []
        self.tables: list[list[list[str]]] = []
        self.captions: list[str] = []
        self.styles: list[str] = []
        self.text_parts: list[str] = []
        self._heading: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_style = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "table":
            self.tables.append([])
            self.captions.append("")
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th", "caption"):
            self._cell = []
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append((tag, " ".join("".join(self._heading).split())))
            self._heading = None
        elif tag in ("td", "th", "caption") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            if tag == "caption":
                self.captions[-1] = text
            else:
                self.tables[-1][-1].append(text)
            self._cell = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)
            return
        self.text_parts.append(data)
        for buffer in (self._heading, self._cell):
            if buffer is not None:
                buffer.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def table(self, caption: str) -> dict[str, list[str]]:
        """The rows of the table whose caption starts with ``caption``, by their first cell (the header row too)."""
        rows = next(rows for text, rows in zip(self.captions, self.tables) if text.startswith(caption))
        return {row[0]: row for row in rows}


@pytest.fixture(scope="module")
def tiny():
    return load_study(TINY)


@pytest.fixture(scope="module")
def html(tiny) -> str:
    """The report with every figure drawn from the study (the folder has no figures/)."""
    return render_report(tiny, trials=50, groups=100, seed=0)


@pytest.fixture(scope="module")
def page(html) -> Page:
    return Page(html)


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> Path:
    """A figures/ folder as compare --plots writes it, with small distinct PNGs."""
    from matplotlib.figure import Figure

    folder = tmp_path_factory.mktemp("figures")
    for number, name in enumerate(FIGURE_FILES):
        figure = Figure(figsize=(2, 1))
        figure.text(0.5, 0.5, name, ha="center")
        figure.patch.set_facecolor(f"C{number}")
        figure.savefig(folder / name, dpi=40)
    return folder


def one_line(call) -> str:
    with pytest.raises(pw.PoolwiseError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- content


def test_every_section_has_its_heading_in_order(page):
    assert [text for tag, text in page.headings if tag == "h2"] == SECTIONS


def test_the_verdict_is_the_decision_and_the_comparison(tiny, page):
    decision = pw.decide(tiny.fits["partial"], trials=50, groups=100, seed=0)
    first = page.text.split("Question and verdict", 1)[1].split("Model comparison", 1)[0]
    assert decision.verdict() in first and tiny.verdict() in first
    assert "Does yogaStretch help a gymID (higher nSigned is better)" in first


def test_loo_table_shows_the_saved_elpd(page):
    saved = pd.read_csv(TINY / "loo.csv", index_col="model")
    rows = page.table("LOO comparison")
    labels = {"partial": "Partial pooling", "none": "No pooling", "complete": "Complete pooling"}
    for model, label in labels.items():
        assert rows[label][1] == f"{saved.loc[model, 'elpd']:.1f}"
        assert rows[label][-1] == f"{saved.loc[model, 'n_bad_k']} of {saved.loc[model, 'n_obs']}"
    assert "within 2 se" in page.text and "Grouped cross-validation was not run" in page.text


def test_decision_numbers_are_percentages_of_the_decision(tiny, page):
    decision = pw.decide(tiny.fits["partial"], trials=50, groups=100, seed=0)
    typical = decision.typical.set_index("quantity")
    rows = page.table("Typical and new gymID: rate, mean (89% interval)")
    assert rows[""] == ["", "Without yogaStretch", "With yogaStretch", "Difference", "Ratio", "P(helps)"]
    assert rows["Typical gymID"][1].startswith(f"{100 * typical.loc['rate_without', 'mean']:.1f}% (")
    assert rows["Typical gymID"][3].startswith(f"{100 * typical.loc['difference', 'mean']:+.1f} pts (")
    assert rows["Typical gymID"][5] == f"{typical.loc['difference', 'p_helps']:.2f}"
    expected = decision.expected.set_index("quantity")
    rows = page.table("100 new gymIDs × 50 trials each")
    assert rows["Total nSigned with yogaStretch"][1] == f"{expected.loc['outcome_with', 'mean']:,.0f}"


def test_per_group_table_has_a_row_per_group(tiny, page):
    rows = page.table("Partial pooling: each gymID's rate")
    groups = [row for label, row in rows.items() if label != "gymID"]
    assert [row[0] for row in groups] == [str(g) for g in sorted(tiny.fits["partial"].data["gymID"].unique())]
    assert {row[-1] for row in groups} == {"data", "population"}


def test_diagnostics_in_plain_words(tiny, page):
    rows = page.table("Sampling and LOO diagnostics")
    partial = pw.summary(tiny.fits["partial"])
    assert rows["Partial pooling"][1] == str(partial.divergences)
    assert rows["Partial pooling"][2] == f"{partial.max_r_hat:.3f}"
    assert "the chains disagree" in page.text and "Pareto k > 0.7" in page.text
    assert "gymID 1, 7, 9, 12 never had yogaStretch != 0" in page.text


def test_reproducibility_block(page, tiny):
    assert (
        "poolwise compare DATA 'p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch|gymID)' --family binomial "
        "--draws 40 --tune 60 --chains 2 --backend nutpie --seed 5" in page.text
    )
    meta = json.loads(tiny.fits["partial"].idata.attrs["poolwise"])
    assert meta["data_hash"] in page.text and f"bambi {meta['versions']['bambi']}" in page.text
    assert "Bambi's defaults" in page.text


def test_page_is_self_contained(page):
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == len(FIGURE_FILES)
    assert all(attrs["src"].startswith("data:image/png;base64,") for attrs in images)
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "poster", "data", "action"):
            value = attrs.get(name) or ""
            if value.startswith(("http:", "https:", "//")):
                assert tag == "a" and name == "href", f"<{tag} {name}={value}> loads from the network"
    assert not {"script", "link", "iframe", "object", "embed"} & {tag for tag, _ in page.tags}
    assert not any("url(" in style or "@import" in style for style in page.styles)


# ---------------------------------------------------------------- figures and sections that do not apply


def test_saved_figures_are_embedded_as_saved(tiny, figures):
    page = Page(render_report(tiny, figures_dir=figures))
    sources = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    for name in FIGURE_FILES:
        assert "data:image/png;base64," + base64.b64encode((figures / name).read_bytes()).decode() in sources
    assert "Figures saved with the results are shown as saved" in page.text


@pytest.mark.parametrize(
    "make, problem",
    [
        (
            lambda path: path.symlink_to(path.with_name("gone.png")),
            "cannot read figure {path} (No such file or directory)",
        ),
        (lambda path: path.write_text("not an image"), "figure {path} is not a PNG image"),
    ],
)
def test_a_bad_saved_figure_is_refused(tiny, figures, tmp_path, make, problem):
    folder = tmp_path / "figures"
    shutil.copytree(figures, folder)
    (folder / "forest.png").unlink()
    make(folder / "forest.png")
    message = one_line(lambda: render_report(tiny, figures_dir=folder))
    assert message == (
        problem.format(path=folder / "forest.png") + "; redraw the figures (poolwise compare --plots) "
        "or delete the file so that the report draws it"
    )


def test_without_partial_pooling_sections_become_sentences(tiny, figures, tmp_path):
    fits = {name: tiny.fits[name] for name in ("complete", "none")}
    study = replace(tiny, fits=fits, table=tiny.table.drop(index="partial"))
    folder = tmp_path / "figures"
    shutil.copytree(figures, folder)
    (folder / "densities.png").unlink()
    page = Page(render_report(study, figures_dir=folder))
    assert [text for tag, text in page.headings if tag == "h2"] == SECTIONS
    assert "No pooling estimates each gymID on its own" in page.text
    assert "No pooling has no population, so it says nothing about a typical or a new gymID" in page.text
    assert "no population to draw new gymIDs from" in page.text
    assert (
        "Decision densities: not drawn (no pooling has no population, so it has no typical or new group; "
        "use the partial pooling fit)." in page.text
    )


def test_grouped_cv_columns_get_their_table(tiny, figures):
    cv = pd.DataFrame(
        {"elpd_cv": [-130.25, -140.5, -290.0], "se_cv": [5.0, 6.0, 30.0]}, index=["partial", "none", "complete"]
    )
    page = Page(render_report(replace(tiny, table=tiny.table.join(cv)), figures_dir=figures))
    rows = page.table("Grouped cross-validation")
    assert rows["Model"] == ["Model", "elpd_cv", "se_cv"] and rows["No pooling"] == ["No pooling", "-140.5", "6.0"]
    assert "Grouped cross-validation refits each model without whole groups" in page.text


@pytest.mark.parametrize(
    "family, value, shown",
    [
        ("binomial", 0.3204, "32.0%"),
        ("bernoulli", 0.05, "5.0%"),
        ("poisson", 4.0623, "4.06"),
        ("negativebinomial", 0.012345, "0.0123"),
        ("gaussian", 1749.175, "1,749"),
        ("gaussian", -2.5, "-2.50"),
    ],
)
def test_numbers_follow_the_family(family, value, shown):
    assert mean_text(value, family) == shown


def test_differences_and_intervals_say_their_unit_once():
    row = pd.Series({"mean": 0.0629, "lower": -0.0514, "upper": 0.1508})
    assert estimate_text(row, "binomial", "difference") == "+6.3 pts (-5.1 to +15.1)"
    assert estimate_text(row * 10, "poisson", "difference") == "+0.629 (-0.514 to +1.51)"
    assert estimate_text(row + 1, "binomial", "ratio") == "1.06 (0.949 to 1.15)"
    assert change_text(float("nan"), "gaussian") == significant(float("nan")) == "–"
    assert significant(0.0) == "0" and significant(123456.7) == "123,457"


# ---------------------------------------------------------------- writing, and refusing bad input


def test_write_report_writes_one_file_and_its_command(tmp_path, monkeypatch, tiny):
    monkeypatch.setattr(report, "load_study", lambda folder: tiny)
    monkeypatch.setattr(report, "render_report", lambda study, **kwargs: json.dumps(kwargs, default=str))
    out = write_report(TINY, tmp_path / "out" / "report.html", trials=50.0, groups=10, seed=3)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html"]
    written = json.loads(out.read_text())
    assert written["command"] == f"poolwise report {TINY} --out {out} --trials 50 --new-groups 10 --seed 3"
    assert written["trials"] == 50 and written["figures_dir"] is None
    assert written["study_json"] == (TINY / "study.json").read_text()


def test_not_a_study_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert one_line(lambda: write_report(tmp_path / "empty", tmp_path / "r.html")) == (
        f"{tmp_path / 'empty'} holds 0 saved fits; a study needs at least two of complete.nc, none.nc, partial.nc"
    )
    assert one_line(lambda: write_report(tmp_path / "nowhere", tmp_path / "r.html")) == (
        f"folder not found: {tmp_path / 'nowhere'}; pass a folder written by poolwise compare --out"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_an_existing_report_needs_force(tmp_path, monkeypatch, tiny):
    out = tmp_path / "report.html"
    out.write_text("old")
    assert one_line(lambda: write_report(TINY, out)) == (
        f"{out} already exists; pass --force (force=True) to overwrite it, or choose another path"
    )
    assert out.read_text() == "old"
    monkeypatch.setattr(report, "load_study", lambda folder: tiny)
    monkeypatch.setattr(report, "render_report", lambda study, **kwargs: "<p>new</p>")
    write_report(TINY, out, force=True)
    assert out.read_text() == "<p>new</p>" and sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_an_unwritable_path_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "load_study", lambda folder: pytest.fail("the output is checked before loading"))
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    out = tmp_path / "notes.txt" / "sub" / "report.html"
    assert one_line(lambda: write_report(TINY, out)) == (
        f"cannot write the report to {out}: {tmp_path / 'notes.txt'} is a file, not a folder; "
        "pass --out a path in a folder you can write to"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, tiny):
    monkeypatch.setattr(report, "load_study", lambda folder: tiny)
    monkeypatch.setattr(report, "render_report", lambda study, **kwargs: "<p>report</p>")

    def full_disk(self, *args, **kwargs):
        self.write_bytes(b"<p>rep")  # half written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    out = tmp_path / "report.html"
    assert one_line(lambda: write_report(TINY, out)) == (
        f"cannot write the report to {out}: No space left on device; pass --out a path in a folder you can write to"
    )
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- a real browser


def chromium() -> str:
    """Debian's chromium (or another Chrome) on PATH; skip without one, but fail on CI."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("no chromium on PATH on CI; .ci/run must apt-get install -y chromium")
    pytest.skip("no chromium binary on PATH: apt-get install -y chromium to run the browser test")


class DevTools:
    """A headless Chromium driven over the DevTools protocol on a pipe (JSON messages ending in NUL,
    written to its fd 3 and read from its fd 4): no Python dependency, no open port."""

    def __init__(self, binary: str, profile: Path):
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        # The shell gives chromium our stdin pipe as its fd 3 and our stdout pipe as its fd 4.
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null', binary, *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.events: list[dict] = []
        self.buffer = b""
        self.last = 0
        self.session = None

    def send(self, method: str, timeout: float = 30, **params) -> dict:
        self.last += 1
        message = {"id": self.last, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        self.process.stdin.write(json.dumps(message).encode() + b"\0")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            reply = self.receive(deadline)
            if reply.get("id") == self.last:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self.receive(deadline))
        return next(event for event in self.events if event.get("method") == method)

    def receive(self, deadline: float) -> dict:
        fd = self.process.stdout.fileno()
        while b"\0" not in self.buffer:
            if not select.select([fd], [], [], max(deadline - time.monotonic(), 0))[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(fd, 1 << 20)
            assert chunk, "chromium closed the DevTools pipe"
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str, width: int, height: int, *, mobile: bool = False) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", expression=expression, returnByValue=True)["result"]["value"]

    def errors(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"]["text"])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(str(params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
        return found

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (AssertionError, TimeoutError, BrokenPipeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def browser(tmp_path):
    driver = DevTools(chromium(), tmp_path / "profile")
    yield driver
    driver.close()


def test_the_report_in_a_real_browser(html, browser, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    browser.open(path.as_uri(), 1280, 2000)
    assert browser.errors() == []
    images = browser.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(images) == len(FIGURE_FILES)
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)
    shot = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "screenshot.png").write_bytes(shot)
    import matplotlib.image

    pixels = matplotlib.image.imread(BytesIO(shot), format="png")
    assert pixels.shape[:2] == (2000, 1280)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20, "the screenshot is blank"
    pdf = base64.b64decode(browser.send("Page.printToPDF", printBackground=True, timeout=60)["data"])
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") > 3


def test_on_a_phone_only_tables_scroll_sideways(html, browser, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    browser.open(path.as_uri(), 390, 844, mobile=True)
    assert browser.errors() == []
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    widths = browser.evaluate("[...document.images].map(i => i.getBoundingClientRect().right)")
    assert max(widths) <= 390
