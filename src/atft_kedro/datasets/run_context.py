"""``run_context``: the identity of the run the reports describe.

``atft_kedro.hooks.RunContextHook`` saves it at the start of every ``kedro run`` (environment,
session id, MLflow run id, git commit, pipelines). A pipeline run without the project's hooks
(a test driving nodes with a bare Kedro runner) has none: the dataset then loads the same
keys with ``None`` values, which the reports show as "n/a", rather than stopping the run.
"""

from __future__ import annotations

from typing import Any

from kedro.io import MemoryDataset
from kedro.io.core import DatasetError

#: The keys of a run context, all unknown.
UNKNOWN_RUN: dict[str, Any] = {"env": None, "session_id": None, "mlflow_run_id": None, "git_commit": None,
                               "pipeline": None}


class RunContextDataset(MemoryDataset):
    """A ``MemoryDataset`` that loads :data:`UNKNOWN_RUN` until a run context is saved into it."""

    def load(self) -> dict[str, Any]:
        try:
            return super().load()
        except DatasetError:
            return dict(UNKNOWN_RUN)
