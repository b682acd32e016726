"""Regenerate the figure gallery of the docs (``docs/gallery/``) from the bundled simulated franchise.

It runs the main job as a user would, ``poolwise compare data/franchise.csv FORMULA`` (the three
models with the library's default draws, seed 2024), loads the saved study and renders every figure
with ``poolwise.plots.gallery`` at 100 dpi, replacing the folder's contents. It samples for about
30 s on two cores. From the repository root:

    .venv/bin/python docs/make_gallery.py
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "docs" / "gallery"
DATA = ROOT / "data" / "franchise.csv"
FORMULA = "p(nSigned, nTrialCustomers) ~ yogaStretch + (yogaStretch||gymID)"
SEED = 2024
DPI = 100


def poolwise_command() -> list[str]:
    """The installed ``poolwise`` script beside this Python, else the Typer app through ``-c``."""
    script = Path(sys.executable).with_name("poolwise")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from poolwise.cli import app; app()"]


def main() -> None:
    from poolwise import plots
    from poolwise.io import load_study

    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        subprocess.run(
            [*poolwise_command(), "compare", str(DATA), FORMULA, "--seed", str(SEED), "--out", str(results)], check=True
        )
        study = load_study(results)
        rendered = plots.gallery(study, Path(tmp) / "gallery", labels={"rate": "Signup rate"}, dpi=DPI)
        shutil.rmtree(GALLERY, ignore_errors=True)
        GALLERY.mkdir(parents=True)
        for path in rendered:
            shutil.copy2(path, GALLERY / path.name)
    for path in sorted(GALLERY.iterdir()):
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
