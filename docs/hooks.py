"""MkDocs hooks: the pages that are generated from the code at build time, so they cannot drift.

- ``cli-reference.md``: Typer's own docs generator (``typer poolwise.cli utils docs``) run on the app.
- ``notebooks/<name>.md``: each ``notebooks/*.py`` (jupytext percent format) as markdown, without
  running it: markdown cells as text, code cells as code blocks.
- ``api/<stage>.md``: one mkdocstrings ``::: poolwise.<module>`` block per module, by pipeline stage.
- ``contributing.md``: the ``<!-- poolwise:modules -->`` marker becomes the table of modules by
  stage, each with the first paragraph of its docstring.
- ``figures.md``: the ``<!-- poolwise:gallery -->`` marker becomes one entry per figure of
  ``poolwise.plots.FIGURES`` (title, description, command) with its image from ``docs/gallery/``.

Nothing here is written into ``docs/``: the pages exist only in the build.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "poolwise"
NOTEBOOKS = ROOT / "notebooks"
GALLERY = ROOT / "docs" / "gallery"
MODULES_MARKER = "<!-- poolwise:modules -->"
GALLERY_MARKER = "<!-- poolwise:gallery -->"

# The pipeline, bottom to top: each stage imports only the stages above it in this list.
# Modules under plots/ are figures wherever they are not listed; other unlisted modules land in
# "Other modules" until someone places them here.
STAGES = [
    (
        "records",
        "Shared records",
        "Leaf modules every stage may import: the names a user chooses from, the error type, what a formula says, "
        "what a fit is, the families, the seed rule, the sampler's progress.",
        ["errors", "spec", "results", "families", "seeds", "choices", "progress"],
    ),
    ("data", "Data", "Read, validate, simulate and aggregate data.", ["data", "rows"]),
    (
        "formulas",
        "Formulas, pooling templates and priors",
        "Read a formula, derive the three pooling models, resolve priors.",
        ["formulas", "pooling", "priors"],
    ),
    (
        "checks",
        "Checks before fitting",
        "What the data can identify, and the sampler's geometry chosen from the data.",
        ["identify", "geometry"],
    ),
    (
        "fitting",
        "Fitting",
        "The only code that talks to Bambi and PyMC, each model's JAX program, one fit, and refits on that program.",
        ["program", "adapter", "fitting", "refits"],
    ),
    (
        "comparison",
        "Estimates, comparison and cross-validation",
        "Per-group estimates, three fits compared by LOO, grouped cross-validation.",
        ["estimates", "comparison", "cv"],
    ),
    (
        "decisions",
        "Decisions and summaries",
        "The business answer on the response scale, brms/lme4-style summaries, prior sensitivity, predictions for new rows.",
        ["decisions", "summaries", "prior_sensitivity", "prediction"],
    ),
    ("io", "Saved results", "Fits and studies on disk, written atomically.", ["io"]),
    ("figures", "Figures", "A tidy table, then a drawing, for every figure.", ["plots", "decision_plots"]),
    ("report", "Report", "A saved study as one self-contained HTML page.", ["report"]),
]
CLI_STAGE = ("cli", "Command line", "Parse, call the library, print; outside the pipeline.", ["cli"])
OTHER = ("other", "Other modules", "Modules not yet placed in a stage (docs/hooks.py, STAGES).", [])


def modules() -> list[str]:
    """Every module of the package, dotted below ``poolwise`` (``plots.raw``; ``plots`` for its __init__)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            names.append(".".join(parts))
    return names


def staged() -> list[tuple[str, str, str, list[str]]]:
    """STAGES (then the CLI, then any unplaced modules) with the modules that exist today."""
    found = modules()
    placed = {name for *_, listed in STAGES + [CLI_STAGE] for name in listed}
    stages = []
    for slug, title, blurb, listed in [*STAGES, CLI_STAGE]:
        present = [name for name in listed if name in found]
        if slug == "figures":
            present += [name for name in found if name.startswith("plots.") and name not in placed]
        stages.append((slug, title, blurb, present))
    unplaced = [name for name in found if name not in placed and not name.startswith("plots.")]
    if unplaced:
        stages.append((*OTHER[:3], unplaced))
    return stages


def first_line(module: str) -> str:
    path = PACKAGE.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraph = doc.split("\n\n")[0]
    return " ".join(paragraph.split()).replace("|", "\\|")


def module_table() -> str:
    rows = ["| Stage | Module | What it does |", "| --- | --- | --- |"]
    for _, title, _, names in staged():
        for i, name in enumerate(names):
            file = name.replace(".", "/") + ("/__init__.py" if name == "plots" else ".py")
            rows.append(f"| {title if i == 0 else ''} | `{file}` | {first_line(name)} |")
    return "\n".join(rows)


def gallery_section() -> str:
    """One entry per registered figure: its title, description, command and the gallery's file(s)."""
    from poolwise.plots import FIGURES

    parts = []
    for kind in FIGURES.values():
        stem = Path(kind.file).stem
        files = [GALLERY / kind.file] if (GALLERY / kind.file).is_file() else sorted(GALLERY.glob(f"{stem}_*"))
        shown = [
            f"![{kind.title}](gallery/{file.name})"
            if file.suffix == ".png"
            else f"[`{file.name}`](gallery/{file.name})"
            for file in files
        ]
        if not shown:
            shown = [f'!!! warning "Not in the gallery yet"\n    Rerun `docs/make_gallery.py` to draw `{kind.file}`.']
        parts.append(f"### {kind.title}\n\n{kind.description} (`poolwise plot {kind.name}`)\n\n" + "\n\n".join(shown))
    return "\n\n".join(parts)


# Per-module mkdocstrings options. The exception classes document ``message``, which they take
# from ValueError/UserWarning: griffe cannot see a builtin's signature and would warn.
BLOCK_OPTIONS = {
    "errors": "    options:\n      docstring_options:\n        ignore_init_summary: true\n        warn_unknown_params: false",
}


def api_page(title: str, blurb: str, names: list[str]) -> str:
    blocks = "\n\n".join(
        f"::: poolwise.{name}" + (f"\n{BLOCK_OPTIONS[name]}" if name in BLOCK_OPTIONS else "") for name in names
    )
    return f"# {title}\n\n{blurb} Generated from the docstrings (numpydoc) by mkdocstrings.\n\n{blocks}\n"


def cli_reference() -> str:
    import typer
    from typer.cli import get_docs_for_click

    from poolwise.cli import app

    command = typer.main.get_command(app)
    text = get_docs_for_click(obj=command, ctx=typer.Context(command), name="poolwise", title="Command-line reference")
    note = (
        "Generated at build time from the Typer app (`poolwise.cli.app`) by Typer's own docs generator, "
        "so it always matches `poolwise COMMAND --help`. The [command-line guide](cli.md) shows the "
        "commands at work.\n\n"
    )
    head, _, rest = text.partition("\n\n")
    return f"{head}\n\n{note}{rest.strip()}\n"


def notebook_page(path: Path) -> str:
    """A notebook as markdown, not executed: outputs appear only when the notebook is run."""
    import jupytext

    notebook = jupytext.read(path)
    note = (
        f'!!! note "Rendered from `notebooks/{path.name}` without running it"\n'
        "    Only the code and prose are shown here; the tables and figures are produced by running the "
        "notebook (see [Notebooks](../notebooks.md)). The test suite runs it with small draws.\n"
    )
    parts = []
    for cell in notebook.cells:
        source = cell.source.strip("\n")
        if not source:
            continue
        parts.append(source if cell.cell_type == "markdown" else f"```python\n{source}\n```")
    if parts and parts[0].startswith("# "):
        title, _, rest = parts[0].partition("\n")
        parts[0] = f"{title}\n\n{note}\n{rest.strip()}".rstrip()
    else:
        parts.insert(0, f"# {path.stem}\n\n{note}")
    return "\n\n".join(parts) + "\n"


def notebook_title(path: Path) -> str:
    """The notebook's first heading (its title), else its file name."""
    import jupytext

    for cell in jupytext.read(path).cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.partition("\n")[0][2:].strip()
    return path.stem


def on_config(config):
    """Add a nav entry per notebook, and the "Other modules" API page when some module is not placed."""
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and "Notebooks" in entry:
            entry["Notebooks"] += [
                {notebook_title(path): f"notebooks/{path.stem}.md"} for path in sorted(NOTEBOOKS.glob("*.py"))
            ]
        if isinstance(entry, dict) and "API reference" in entry and staged()[-1][0] == OTHER[0]:
            entry["API reference"].append({OTHER[1]: f"api/{OTHER[0]}.md"})
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    generated = {"cli-reference.md": cli_reference()}
    for path in sorted(NOTEBOOKS.glob("*.py")):
        generated[f"notebooks/{path.stem}.md"] = notebook_page(path)
    for slug, title, blurb, names in staged():
        if slug != CLI_STAGE[0] and names:
            generated[f"api/{slug}.md"] = api_page(title, blurb, names)
    for uri, content in generated.items():
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    if MODULES_MARKER in markdown:
        markdown = markdown.replace(MODULES_MARKER, module_table())
    if GALLERY_MARKER in markdown:
        markdown = markdown.replace(GALLERY_MARKER, gallery_section())
    return markdown
