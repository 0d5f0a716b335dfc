"""The report header's run context: filled by the hook in a kedro run, unknown without one."""

from __future__ import annotations

from kedro.io import DataCatalog

from atft_kedro.datasets.run_context import UNKNOWN_RUN, RunContextDataset
from atft_kedro.hooks import RUN_CONTEXT, RunContextHook, git_commit


def test_without_a_kedro_run_the_context_is_unknown_not_an_error() -> None:
    assert RunContextDataset().load() == UNKNOWN_RUN


def test_the_hook_fills_the_declared_entry(tmp_path) -> None:
    catalog = DataCatalog({RUN_CONTEXT: RunContextDataset()})
    RunContextHook().before_pipeline_run(
        {"env": "test", "session_id": "s1", "project_path": str(tmp_path), "pipeline_names": ["evaluation"]},
        None, catalog)
    context = catalog.load(RUN_CONTEXT)
    assert context["env"] == "test" and context["session_id"] == "s1"
    assert context["pipeline"] == ["evaluation"]
    assert context["git_commit"] is None  # tmp_path is no git checkout
    assert set(context) == set(UNKNOWN_RUN)


def test_git_commit_names_the_checkout_and_its_changes(project_root) -> None:
    commit = git_commit(project_root)
    assert commit is not None and len(commit.split("+")[0]) == 40
