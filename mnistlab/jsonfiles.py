"""JSON from files anyone may put in a shared folder (a model's metadata, the config.json inside a .keras archive).

Python's parser follows nesting by recursion: `'[' * 200000 + ']' * 200000` raises
RecursionError, not ValueError, and code walking a parsed value recursively can do the same
at a few hundred levels. `parse` turns both into a ValueError that says what is wrong, so one
such file makes its own model unusable and nothing else: no page of the class breaks.
"""

from __future__ import annotations

import json

# A model's metadata is flat, and Keras' config.json of a model of this app is about ten levels deep.
MAX_DEPTH = 100


def depth(value) -> int:
    """How deeply lists and objects nest in a parsed JSON value (0 for a number or a text), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
        else:
            continue
        deepest = max(deepest, level + 1)
    return deepest


def parse(data: str | bytes, max_depth: int = MAX_DEPTH):
    """The JSON value of `data`; a ValueError when it is not JSON or nests deeper than `max_depth`."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"it nests lists or objects far more deeply than {max_depth} levels") from None
    if depth(value) > max_depth:
        raise ValueError(f"it nests lists or objects more deeply than {max_depth} levels")
    return value
