"""The generative graph (DAG) of a fitted model, through Bambi's ``Model.graph`` and Graphviz."""

import shutil
from pathlib import Path

from poolwise.errors import PoolwiseError
from poolwise.fitting import model_of
from poolwise.results import Fit

SOURCE_SUFFIXES = (".gv", ".dot")
NO_DOT = (
    "drawing the model graph needs Graphviz's `dot` program, which is not installed; install Graphviz "
    "(apt install graphviz, brew install graphviz or conda install graphviz) or pass a path ending in .gv "
    "to save the graph's DOT source instead"
)


def model_graph(fit: Fit, path: str | Path, *, dpi: int = 150) -> Path:
    """Write the model's generative graph (DAG), through Bambi's ``Model.graph`` and Graphviz.

    An image (format from the suffix, e.g. .png, .svg), or the graph's DOT source for a .gv/.dot
    path, which needs no Graphviz install. Written atomically.

    Parameters
    ----------
    fit : Fit
        A fitted model (a loaded fit's model is rebuilt).
    path : str or Path
        The file to write.
    dpi : int
        Resolution of a raster image.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PoolwiseError
        Graphviz's ``dot`` is missing for an image (the message names the fix), or the graphviz
        Python package is.

    Examples
    --------
    >>> model_graph(study.fits["partial"], "partial.gv")  # doctest: +SKIP
    PosixPath('partial.gv')
    """
    path = Path(path)
    image = path.suffix.lower() not in SOURCE_SUFFIXES
    if image and shutil.which("dot") is None:
        raise PoolwiseError(NO_DOT)
    model = model_of(fit)
    try:
        graph = model.graph()
    except ImportError:
        raise PoolwiseError("the model graph needs the graphviz Python package: pip install graphviz") from None
    tmp = path.with_name(f".{path.name}.part")
    if image:
        graph.graph_attr["dpi"] = str(dpi)
        tmp.write_bytes(graph.pipe(format=path.suffix.lstrip(".").lower() or "png"))
    else:
        tmp.write_text(graph.source)
    tmp.replace(path)
    return path
