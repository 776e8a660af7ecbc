"""griffe extensions for the API reference (mkdocs.yml loads both).

`FlatPublicNames`: keras_regkit loads its public names on first use (a
module `__getattr__` over the `_PUBLIC` table in `keras_regkit/__init__.py`),
which static analysis cannot follow. This extension reads that table and
adds each name to the package as an alias of the object it names, so
`::: keras_regkit.DropConnect` documents the class under the path users
import it from, and `[DropConnect][keras_regkit.DropConnect]` links to it.

`FenceDoctestExamples`: keras_regkit writes its examples the way Keras
does, unindented after an `Example:` line:

    Example:

    >>> layer = DropConnect(keras.layers.Dense(4), rate=0.5)

A Google-style parser keeps such lines as plain text, and Markdown would
read `>>>` as nested quotes. The extension wraps each run of example lines
(a `>>>` line, its `...` continuations and its expected output, up to a
blank line not followed by another `>>>`) in a `pycon` fence before the
docstring is parsed. Lines already inside a fence are left alone.
tests/test_doctests.py runs the same examples. It also turns the items of
a layer's `Call arguments:` into a list, one argument a line.
"""

import ast
import re

import griffe

FENCE = "```"


def fence_examples(text):
    """`text` with every run of `>>>` example lines fenced as `pycon`."""
    lines = text.split("\n")
    out = []
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(FENCE):
            in_fence = not in_fence
            out.append(line)
            i += 1
            continue
        if in_fence or not stripped.startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[:len(line) - len(stripped)]
        block = []
        while i < len(lines):
            current = lines[i]
            if current.strip():
                block.append(current)
                i += 1
                continue
            # A blank line ends the example unless another one follows.
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and lines[j].lstrip().startswith(">>>"):
                block.extend(lines[i:j])
                i = j
                continue
            break
        out.append(f"{indent}{FENCE}pycon")
        out.extend(block)
        out.append(f"{indent}{FENCE}")
    return "\n".join(out)


CALL_ARGUMENTS = re.compile(r"^(\s*)Call arguments:\s*$")
ITEM = re.compile(r"^(\s*)(\w+): (.*)$")


def list_call_arguments(text):
    """`text` with the items of a layer's `Call arguments:` as a list.

    Google-style parsers know no such section and keep it as an admonition
    whose lines run together; a Markdown list keeps one argument a line.
    """
    out = []
    block_indent = None  # the header's indentation, inside the section
    item_indent = None
    for line in text.split("\n"):
        header = CALL_ARGUMENTS.match(line)
        indent = len(line) - len(line.lstrip())
        if header:
            block_indent, item_indent = len(header.group(1)), None
        elif block_indent is not None and line.strip():
            if indent <= block_indent:
                block_indent = None  # the section ended
            else:
                item_indent = indent if item_indent is None else item_indent
                item = ITEM.match(line)
                if item and indent == item_indent:
                    line = (f"{item.group(1)}- `{item.group(2)}`: "
                            f"{item.group(3)}")
        out.append(line)
    return "\n".join(out)


class FenceDoctestExamples(griffe.Extension):
    """Fences the `>>>` examples of every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        docstring = obj.docstring
        if docstring is None:
            return
        value = docstring.value
        if ">>>" in value:
            value = fence_examples(value)
        if "Call arguments:" in value:
            value = list_call_arguments(value)
        docstring.value = value


class FlatPublicNames(griffe.Extension):
    """Adds `keras_regkit.<name>` aliases for the names of `_PUBLIC`."""

    def on_package(self, *, pkg, **kwargs):
        if pkg.path != "keras_regkit" or "_PUBLIC" not in pkg.members:
            return
        table = ast.literal_eval(str(pkg.members["_PUBLIC"].value))
        for name, module in table.items():
            if module == f"keras_regkit.{name}" or name in pkg.members:
                continue  # a submodule: already a member
            pkg.set_member(name, griffe.Alias(name, f"{module}.{name}",
                                              parent=pkg))
