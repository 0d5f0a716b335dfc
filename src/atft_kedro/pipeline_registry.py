"""The project's pipelines, registered by name; ``__default__`` runs them all end to end."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline under ``atft_kedro.pipelines`` by its folder name, plus ``__default__`` (all of them)."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
