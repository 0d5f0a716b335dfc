"""The project's pipelines, registered by name; ``__default__`` runs them all end to end."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


#: Pipelines that ``kedro run`` leaves out: the walk-forward retrains every model once per fold
#: (``kedro run --pipelines walk_forward``).
NOT_IN_DEFAULT = ("walk_forward",)


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline under ``atft_kedro.pipelines`` by its folder name, plus ``__default__``: the single
    chain ingestion -> ... -> evaluation, inference (every pipeline but the walk-forward)."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in NOT_IN_DEFAULT), Pipeline([]))
    return pipelines
