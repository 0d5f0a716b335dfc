"""notebooks/exploration.ipynb runs headless against the catalog of a real ``kedro run``.

A module fixture copies the project (conf, src, notebooks, pyproject.toml, .telemetry;
an empty data/ and logs/) into a temporary folder, runs ``kedro run --env test`` there, then
executes the notebook with ``nbclient`` in that copy's ``notebooks/`` folder, with
``env = "test"`` injected after the cell tagged ``parameters`` (as papermill would). The
notebook starts its own Kedro session because no ``catalog`` is defined, exactly as when it
is run outside ``kedro jupyter``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from kedro_project import PROJECT_ROOT
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

NOTEBOOK = PROJECT_ROOT / "notebooks" / "exploration.ipynb"
#: Longest a ``kedro run --env test`` may take (about 40-90 s on a busy 2-core machine).
RUN_TIMEOUT_S = 600
#: Longest one notebook cell may take.
CELL_TIMEOUT_S = 300
#: Section of the notebook -> a phrase in the source of the cell that draws its figure.
FIGURE_CELLS = {
    "cumulative long-short": "plot_cumulative_returns(",
    "monthly RankIC": "plot_monthly_rank_ic(",
    "feature cross-section": "cross-section over time",
    "forecast vs outcome": "mean outcome per forecast decile",
}

pytestmark = pytest.mark.slow


def _with_parameters(notebook: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with a cell of ``source`` right after the cell tagged ``parameters``."""
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    injected = new_code_cell(source)
    injected.metadata["tags"] = ["injected-parameters"]
    copy.cells.insert(tagged[0] + 1, injected)
    return copy


@pytest.fixture(scope="module")
def run_project(test_env_run) -> Path:
    """The shared copy of the project after ``kedro run --env test``."""
    return test_env_run.path


@pytest.fixture(scope="module")
def executed(run_project: Path) -> nbformat.NotebookNode:
    """The notebook executed headless in the copy, on the ``test`` environment."""
    notebook = _with_parameters(
        nbformat.read(run_project / "notebooks" / NOTEBOOK.name, as_version=4),
        # the kernel must be this interpreter's environment, not some other "python3" kernelspec
        f'env = "test"\nimport sys\nassert sys.prefix == {sys.prefix!r}, sys.prefix',
    )
    NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(run_project / "notebooks")}}).execute()
    return notebook


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _cell_with(notebook: nbformat.NotebookNode, phrase: str) -> nbformat.NotebookNode:
    cells = [c for c in notebook.cells if c.cell_type == "code" and phrase in c.source]
    assert len(cells) == 1, f"expected one code cell containing {phrase!r}, found {len(cells)}"
    return cells[0]


def test_committed_notebook_is_clean_and_parametrised() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook without outputs"
    parameters = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and "env = " in parameters[0].source


def test_notebook_bootstraps_a_session_on_the_chosen_environment(executed: nbformat.NotebookNode,
                                                                 run_project: Path) -> None:
    printed = _text(_cell_with(executed, "KedroSession.create("))
    assert f"Kedro environment: test, project: {run_project}" in printed


def test_notebook_draws_each_main_plot(executed: nbformat.NotebookNode) -> None:
    for section, phrase in FIGURE_CELLS.items():
        images = [o for o in _cell_with(executed, phrase).outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, f"{section}: expected one figure, got {len(images)}"


def test_notebook_summarises_every_evaluated_model(executed: nbformat.NotebookNode, run_project: Path) -> None:
    metrics = json.loads((run_project / "data" / "test" / "08_reporting" / "evaluation_metrics.json").read_text())
    models = metrics["by_horizon"][str(metrics["primary_horizon"])]["models"]
    summary = _text(_cell_with(executed, "summary = pl.DataFrame("))
    assert models and all(model in summary for model in models), summary
