"""A quiet run: no warning on a kedro command's console, third-party ones dropped by conf/logging.yml.

``conf/logging.yml`` lists the third-party warnings it drops under ``ignored_warnings``;
``settings.py`` routes Python warnings into logging (``atft_kedro.warnings_logging``). Any other
warning, the project's own included, is logged as ``WARNING py.warnings: ...``.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import pytest
import yaml

from atft_kedro.warnings_logging import (
    WARNINGS_LOGGER,
    IgnoredWarningsFilter,
    capture_warnings,
    ignored_warnings,
)
from kedro_project import PROJECT_ROOT, copy_project, kedro_run_test_env

#: A warning on the console: a WARNING log line or a Python warning class (UserWarning, ...).
WARNING_LINE = re.compile(r"\bWARNING\b|\b[A-Z]\w*Warning\b")


def _project_logging_config() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "conf" / "logging.yml").read_text())


def _record(filename: str, category: type[Warning], message: str) -> logging.LogRecord:
    """The record ``logging.captureWarnings`` makes for a warning (text of ``warnings.formatwarning``)."""
    text = warnings.formatwarning(message, category, filename, 12, line="    call()")
    return logging.LogRecord(WARNINGS_LOGGER, logging.WARNING, filename, 12, "%s", (text,), None)


def test_kedro_run_prints_no_warning(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    output = kedro_run_test_env(project, "--pipelines", "ingestion")
    assert "Pipeline execution completed successfully" in output
    warning_lines = [line for line in output.splitlines() if WARNING_LINE.search(line)]
    assert warning_lines == [], "\n".join(warning_lines)


def test_listed_third_party_warnings_are_dropped_and_others_kept() -> None:
    drop = IgnoredWarningsFilter(ignored_warnings(_project_logging_config())).filter
    site = "/venv/lib/python3.11/site-packages"
    # The two third-party warnings conf/logging.yml lists, as their libraries emit them.
    assert not drop(_record(f"{site}/kedro/config/omegaconf_config.py", UserWarning,
                            "register_new_resolver() is deprecated and will be removed in a future release."))
    assert not drop(_record(f"{site}/kedro_mlflow/framework/hooks/mlflow_hook.py", UserWarning,
                            "register_new_resolver() is deprecated and will be removed in a future release."))
    assert not drop(_record(f"{site}/mlflow/pyfunc/utils/data_validation.py", UserWarning,
                            "\x1b[33mAdd type hints to the `predict` method to enable data validation\x1b[0m"))
    # The same message from the project's own code, another category or another message stays.
    assert drop(_record("/work/src/atft_kedro/model/data.py", UserWarning,
                        "register_new_resolver() is deprecated and will be removed in a future release."))
    assert drop(_record(f"{site}/kedro/config/omegaconf_config.py", DeprecationWarning,
                        "register_new_resolver() is deprecated and will be removed in a future release."))
    assert drop(_record(f"{site}/mlflow/tracking/fluent.py", UserWarning, "Something new went wrong"))
    assert drop(_record(f"{site}/torch/utils/data.py", UserWarning,
                        "The given NumPy array is not writable, and PyTorch does not support non-writable tensors."))


def test_capture_warnings_logs_a_warning_through_py_warnings(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger(WARNINGS_LOGGER)
    before = list(logger.filters)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            # pytest records warnings itself; start from Python's own showwarning (settings.py may
            # already have turned capturing on in this process, which would then be a no-op)
            logging.captureWarnings(False)
            warnings.showwarning = warnings._showwarning_orig  # noqa: SLF001 - the stdlib default
            capture_warnings(_project_logging_config())
            capture_warnings(_project_logging_config())  # a second call replaces, does not stack
            assert sum(isinstance(f, IgnoredWarningsFilter) for f in logger.filters) == 1
            with caplog.at_level(logging.WARNING, logger=WARNINGS_LOGGER):
                warnings.warn_explicit("register_new_resolver() is deprecated", UserWarning,
                                       "/venv/lib/python3.11/site-packages/kedro/config/omegaconf_config.py", 637)
                warnings.warn_explicit("a warning of the project's own", UserWarning,
                                       "/work/src/atft_kedro/model/data.py", 33)
    finally:
        logging.captureWarnings(False)
        for added in [f for f in logger.filters if f not in before]:
            logger.removeFilter(added)
    messages = [record.getMessage() for record in caplog.records if record.name == WARNINGS_LOGGER]
    assert len(messages) == 1, messages
    assert "a warning of the project's own" in messages[0]


def test_a_malformed_ignored_warnings_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="entry 0 .*'messge'"):
        ignored_warnings({"ignored_warnings": [{"source": "x", "category": "UserWarning", "messge": "y"}]})
    with pytest.raises(ValueError, match="not a regular expression: '\\('"):
        ignored_warnings({"ignored_warnings": [{"source": "(", "category": "UserWarning", "message": "y"}]})
    with pytest.raises(ValueError, match="must be a list"):
        ignored_warnings({"ignored_warnings": {"source": "x"}})


def test_to_device_takes_a_polars_array_without_warning() -> None:
    """``model.data.to_device`` on Polars' read-only zero-copy array: no non-writable NumPy warning.

    In a fresh interpreter: torch emits that warning once per process, so an earlier test could hide it.
    """
    import subprocess
    import sys

    code = ("import numpy as np, polars as pl, torch\n"
            "from atft_kedro.model.data import to_device\n"
            "array = pl.Series([1.0, 2.0]).to_numpy()\n"
            "assert not array.flags.writeable\n"
            "tensor = to_device(array, torch.device('cpu'))\n"
            "assert tensor.tolist() == [1.0, 2.0]\n"
            "writable = np.arange(3.0)\n"
            "shared = to_device(writable, torch.device('cpu'))\n"
            "writable[0] = 9.0\n"
            "assert shared[0].item() == 9.0, 'a writable array is shared, not copied'\n")
    result = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True,
                            text=True, timeout=300, env={"PYTHONPATH": str(PROJECT_ROOT / "src"), "PATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
