"""Python warnings into logging, less the third-party warnings ``conf/logging.yml`` lists as ignored.

Kedro 1.7 reads ``conf/logging.yml`` before anything of the project runs, and refuses project
classes in it (only ``logging`` and ``kedro.logging`` classes, no ``()`` factories). So the file
carries the list under its own top-level key, ``ignored_warnings`` (``logging.config.dictConfig``
ignores keys it does not know), and ``settings.py`` calls :func:`capture_warnings` with Kedro's
loaded logging configuration before it imports anything that warns (kedro-mlflow warns at import).

Python's own warning filters cannot do this job: mlflow 3.17 emits its type-hint warning inside
``warnings.catch_warnings()`` with ``simplefilter("once")``, which overrides any ``ignore`` filter.
Every warning is therefore routed to the ``py.warnings`` logger (``logging.captureWarnings``) and
a logging filter drops the listed ones; any other warning, the project's own included, is logged
as ``WARNING py.warnings: <file>:<line>: <Category>: <message>`` on the console and in the log file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError, field_validator

from atft_kedro.schemas.strict import StrictModel

#: The top-level key of ``conf/logging.yml`` that lists the ignored warnings.
CONFIG_KEY = "ignored_warnings"
#: The logger Python's ``warnings`` module writes to once captured.
WARNINGS_LOGGER = "py.warnings"
#: ``warnings.formatwarning``'s text: ``<file>:<line>: <Category>: <message>``.
_FORMATTED = re.compile(r"^(?P<source>.*?):(?P<line>\d+): (?P<category>\w+): (?P<message>.*)$", re.DOTALL)


class IgnoredWarning(StrictModel):
    """One third-party warning to drop: all three must match.

    ``source`` is a regular expression searched in the path of the file that warned, ``category``
    the warning class's name, ``message`` a regular expression searched in the message.
    """

    source: str
    category: str
    message: str

    @field_validator("source", "message")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {pattern!r} ({exc})") from exc
        return pattern

    def matches(self, source: str, category: str, message: str) -> bool:
        return (category == self.category and re.search(self.source, source) is not None
                and re.search(self.message, message) is not None)


class IgnoredWarningsFilter(logging.Filter):
    """A ``py.warnings`` logging filter that drops the records of the listed warnings."""

    def __init__(self, ignored: Sequence[IgnoredWarning]) -> None:
        super().__init__()
        self.ignored = tuple(ignored)

    def filter(self, record: logging.LogRecord) -> bool:
        parsed = _FORMATTED.match(record.getMessage())
        if parsed is None:
            return True
        return not any(rule.matches(parsed["source"], parsed["category"], parsed["message"])
                       for rule in self.ignored)


def ignored_warnings(logging_config: Mapping[str, Any]) -> tuple[IgnoredWarning, ...]:
    """The ``ignored_warnings`` entries of a logging configuration, checked (none when the key is absent)."""
    entries = logging_config.get(CONFIG_KEY) or []
    if not isinstance(entries, list):
        raise ValueError(f"logging configuration: '{CONFIG_KEY}' must be a list of "
                         f"{{source, category, message}} entries, got {type(entries).__name__}: {entries!r}")
    checked = []
    for index, entry in enumerate(entries):
        try:
            checked.append(IgnoredWarning.model_validate(entry))
        except ValidationError as exc:
            raise ValueError(f"logging configuration: '{CONFIG_KEY}' entry {index} ({entry!r}) is not "
                             f"{{source, category, message}}: {exc}") from exc
    return tuple(checked)


def capture_warnings(logging_config: Mapping[str, Any]) -> IgnoredWarningsFilter:
    """Route Python warnings into logging and drop the ones ``logging_config`` lists as ignored.

    Idempotent: a second call replaces the filter a first call installed.
    """
    logging.captureWarnings(True)
    logger = logging.getLogger(WARNINGS_LOGGER)
    for old in [f for f in logger.filters if isinstance(f, IgnoredWarningsFilter)]:
        logger.removeFilter(old)
    new = IgnoredWarningsFilter(ignored_warnings(logging_config))
    logger.addFilter(new)
    return new
