"""One package per Kedro pipeline: ``nodes.py`` holds pure functions, ``pipeline.py`` wires them.

Every node is named after the function it runs (``tests/test_node_names.py``), so logs, kedro-viz
and ``kedro run --from-nodes <function>`` use one name; :func:`named_node` gives a node that name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.pipeline import Node, node


def named_node(func: Callable, inputs: str | list[str] | dict[str, str] | None,
               outputs: str | list[str] | dict[str, str] | None, **kwargs: Any) -> Node:
    """Kedro's ``node(func, inputs, outputs, name=func.__name__, **kwargs)``."""
    return node(func, inputs, outputs, name=func.__name__, **kwargs)
