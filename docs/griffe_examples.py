"""A griffe extension: fences the `>>>` examples of docstrings as code.

keras_regkit writes its examples the way Keras does, unindented after an
`Example:` line:

    Example:

    >>> layer = DropConnect(keras.layers.Dense(4), rate=0.5)

A Google-style parser keeps such lines as plain text, and Markdown would
read `>>>` as nested quotes. This extension wraps each run of example
lines (a `>>>` line, its `...` continuations and its expected output, up
to a blank line not followed by another `>>>`) in a `pycon` fence before
the docstring is parsed. Lines already inside a fence are left alone.
tests/test_doctests.py runs the same examples.
"""

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


class FenceDoctestExamples(griffe.Extension):
    """Fences the `>>>` examples of every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        docstring = obj.docstring
        if docstring is not None and ">>>" in docstring.value:
            docstring.value = fence_examples(docstring.value)
