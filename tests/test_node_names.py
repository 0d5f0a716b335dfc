"""Every node is named after the function it runs, so logs, kedro-viz and ``--from-nodes`` speak one language."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from atft_kedro.pipeline_registry import register_pipelines


def _registered() -> dict[str, Pipeline]:
    from kedro.framework.project import configure_project

    configure_project("atft_kedro")
    return register_pipelines()


def _function_name(func: object) -> str:
    """``__name__`` of a node's function (of the wrapped one for a ``functools.partial``)."""
    return getattr(func, "__name__", None) or getattr(getattr(func, "func", None), "__name__", repr(func))


def offenders(pipelines: dict[str, Pipeline]) -> list[str]:
    """``pipeline: node 'name' runs 'function'`` for every node whose name (less its namespace) is not its function's."""
    found = []
    for pipeline_name, pipeline in sorted(pipelines.items()):
        if pipeline_name == "__default__":
            continue
        for node in pipeline.nodes:
            name = node.name.rsplit(".", 1)[-1]  # walk-forward nodes carry a fold/seed namespace
            if name != _function_name(node.func):
                found.append(f"{pipeline_name}: node {name!r} runs {_function_name(node.func)!r}")
    return sorted(set(found))


def test_every_node_is_named_after_its_function() -> None:
    pipelines = _registered()
    assert sum(len(p.nodes) for p in pipelines.values()) > 30  # the registry was really read
    assert offenders(pipelines) == []
