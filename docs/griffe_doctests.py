"""A griffe extension for the API reference: doctest lines in the opening text of a docstring
become a ``pycon`` code block.

numpydoc examples live in an Examples section, which griffe already renders as code. Several
module docstrings here also show a short session in their opening text; Markdown would read its
``>>>`` as nested block quotes and ``[...][:3]`` as a reference link (a warning that fails the
strict build). Only the text before the first numpydoc section is touched.
"""

import re

import griffe

PROMPT = re.compile(r"^(\s*)>>> ")
UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def fence_doctests(text: str) -> str:
    """Wrap each run of ``>>>`` lines (with their ``...`` continuations and output) in a pycon fence."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and UNDERLINE.match(lines[i + 1]):  # a numpydoc section starts: keep the rest
            out += lines[i:]
            break
        prompt = PROMPT.match(lines[i])
        if not prompt:
            out.append(lines[i])
            i += 1
            continue
        indent = prompt.group(1)
        start = i
        while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
            i += 1
        out += [f"{indent}```pycon", *lines[start:i], f"{indent}```"]
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Fence the doctest sessions of every docstring's opening text."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
