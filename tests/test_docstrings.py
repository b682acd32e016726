"""Every public function, class and method has a numpydoc docstring: Parameters (when it takes
arguments), Returns (when it returns a value), Raises (when it raises PoolwiseError itself) and an
Examples section with at least one ``>>>`` line. The API reference is built from these.

Public means: named without a leading underscore and defined in the module, plus everything
``poolwise`` exports. The command line's commands are left out: their docstrings are their
``--help`` text and their options are documented by ``help=``.
"""

import ast
import enum
import inspect
import pkgutil
import re
import textwrap
from importlib import import_module

import pytest

import poolwise
from poolwise.cli import app


def modules() -> list[str]:
    return ["poolwise", *(info.name for info in pkgutil.walk_packages(poolwise.__path__, "poolwise."))]


def commands() -> set:
    """The functions Typer runs as commands (and the app's callback)."""
    found = {command.callback for command in app.registered_commands}
    return found | {app.registered_callback.callback} if app.registered_callback else found


def public_objects(name: str) -> list[tuple[str, object]]:
    """(qualified name, object) for each public function, class and method of module ``name``."""
    module = import_module(name)
    if name == "poolwise":
        return [(f"poolwise.{export}", getattr(poolwise, export)) for export in poolwise._EXPORTS]
    skip = commands()
    found = []
    for attr, obj in vars(module).items():
        if attr.startswith("_") or getattr(obj, "__module__", None) != name or obj in skip:
            continue
        if inspect.isfunction(obj):
            found.append((f"{name}.{attr}", obj))
        elif inspect.isclass(obj):
            found.append((f"{name}.{attr}", obj))
            for method_name, method in vars(obj).items():
                if isinstance(method, (staticmethod, classmethod)):
                    method = method.__func__
                if not method_name.startswith("_") and inspect.isfunction(method):
                    found.append((f"{name}.{attr}.{method_name}", method))
    return found


def section(doc: str, title: str) -> str | None:
    """The text of numpydoc section ``title`` (a title line underlined with dashes), or None."""
    match = re.search(rf"^{title}\n-{{3,}}\n(.*?)(?=^\w[\w ]*\n-{{3,}}\n|\Z)", doc, flags=re.M | re.S)
    return match.group(1) if match else None


def own_nodes(function) -> list[ast.AST]:
    """The AST nodes of ``function``'s own body, without those of functions defined inside it."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    nodes, stack = [], list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def takes_arguments(obj) -> bool:
    if inspect.isclass(obj) and issubclass(obj, enum.Enum):
        return False
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return any(name not in ("self", "cls") for name in parameters)


def problems(obj) -> list[str]:
    doc = inspect.getdoc(obj)
    if not doc:
        return ["no docstring"]
    found = []
    if takes_arguments(obj) and section(doc, "Parameters") is None:
        found.append("no Parameters section")
    examples = section(doc, "Examples")
    if examples is None or ">>>" not in examples:
        found.append("no Examples section with a >>> line")
    if inspect.isfunction(obj):
        nodes = own_nodes(obj)
        if any(isinstance(n, ast.Return) and n.value is not None for n in nodes) and section(doc, "Returns") is None:
            found.append("no Returns section")
        raises = any(
            isinstance(n, ast.Raise)
            and isinstance(n.exc, ast.Call)
            and (getattr(n.exc.func, "id", None) or getattr(n.exc.func, "attr", None)) == "PoolwiseError"
            for n in nodes
        )
        if raises and section(doc, "Raises") is None:
            found.append("no Raises section (it raises PoolwiseError)")
    return found


CHECKED = [(label, obj) for name in modules() for label, obj in public_objects(name)]


def test_the_walk_finds_the_public_api():
    labels = {label for label, _ in CHECKED}
    assert {"poolwise.decide", "poolwise.plots.figures.FigureKind.save", "poolwise.compare"} <= labels
    assert {"poolwise.refits.Refitter.refit", "poolwise.cv.group_cv", "poolwise.program.refit"} <= labels
    assert "poolwise.cli.fit_command" not in labels  # its docstring is its --help


@pytest.mark.parametrize("label, obj", CHECKED, ids=[label for label, _ in CHECKED])
def test_public_api_has_a_numpydoc_docstring(label, obj):
    assert problems(obj) == [], label


def test_the_checker_catches_what_is_missing():
    def documented(x):
        """Double.

        Parameters
        ----------
        x : int
            A number.

        Returns
        -------
        int

        Raises
        ------
        PoolwiseError
            Never, really.

        Examples
        --------
        >>> documented(2)
        4
        """
        if x is None:
            raise poolwise.PoolwiseError("x; pass a number")
        return 2 * x

    def bare(x):
        """Double."""
        if x is None:
            raise poolwise.PoolwiseError("x; pass a number")
        return 2 * x

    assert problems(documented) == []
    assert problems(bare) == [
        "no Parameters section",
        "no Examples section with a >>> line",
        "no Returns section",
        "no Raises section (it raises PoolwiseError)",
    ]
