"""The project's config loader and context: credentials in every env, one-key ``--params``, checked parameters.

``ProjectConfigLoader`` is Kedro's ``OmegaConfigLoader`` with three changes:

* **Parameters merge key by key.** Its ``merge_strategy`` is :data:`MERGE_STRATEGY` unless one
  is given: an environment's parameter files are laid over ``conf/base`` with Kedro's ``soft``
  strategy (nested keys merge, lists and scalars replace), so ``conf/<env>/parameters_*.yml``
  carries only what the environment changes (``tests/test_conf_differences.py`` fails on a
  value repeated unchanged). The catalog keeps Kedro's default: an environment entry replaces
  the whole base entry.
* **Credentials.** Kedro reads ``conf/base`` and ONE run environment: ``local`` by default, or
  the one named by ``--env``. Secrets live in ``conf/local/credentials.yml`` (git-ignored), so
  without help ``kedro run --env jquants`` would never see the API key. This loader reads
  credentials as usual and then lays ``conf/local/credentials*`` over them whatever the run
  environment is, so the key has one home and every environment finds it.
* **Runtime parameters change one key.** Kedro 1.7 merges ``--params`` into the base files and,
  separately, into the environment's files, then lets the environment replace whole top-level
  blocks of base (its ``destructive`` merge). ``--params "ingestion.files.format=csv"`` thus
  became an environment block ``{"ingestion": {"files": {"format": "csv"}}}`` that replaced the
  whole ``ingestion`` block of base. This loader resolves base + environment without the runtime
  parameters and then merges them, key by key, into the result (:func:`merge_overrides`): the
  named key changes, every sibling stays, values keep the YAML types Kedro's CLI gave them.

``ProjectContext`` (``CONTEXT_CLASS`` in ``settings.py``) checks the merged parameters before
Kedro's typed validation turns them into pydantic models (:func:`check_parameters`): a top-level
block that no registered pipeline reads as ``params:<block>`` (e.g. a misspelt ``trainng:``), an
unknown key at any depth or a value of the wrong type is an error that names the key, the file it
came from (or ``--params``) and the value.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.framework.context import KedroContext
from kedro.validation import ParameterValidationError
from kedro.validation.type_extractor import TypeExtractor
from kedro.validation.utils import _MISSING, _unwrap_optional, resolve_nested_dict_path
from omegaconf import OmegaConf
from pydantic import TypeAdapter, ValidationError

#: Kedro ``merge_strategy`` of the project's loader (``CONFIG_LOADER_ARGS`` in ``settings.py``):
#: an environment's parameters are merged into base key by key.
MERGE_STRATEGY = {"parameters": "soft"}
#: The environment that holds personal, git-ignored configuration.
PERSONAL_ENV = "local"
#: How a value given on the command line is named in error messages.
RUNTIME_SOURCE = "--params"
#: Parameter blocks read by a runner, not by nodes (``atft_kedro.runner.DaskRunner`` reads ``params:dask``).
RUNNER_BLOCKS = frozenset({"dask"})
#: Most problems listed in one error message (the rest are counted).
_MAX_LISTED_PROBLEMS = 20
_MAX_VALUE_CHARS = 80


class UnknownParameterError(ParameterValidationError):
    """A parameter block or key that nothing in the project reads, or a value of the wrong type."""


def merge_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with each leaf of ``overrides`` set at its path; every other key as it was.

    ``overrides`` is nested as Kedro's CLI builds it from ``--params "a.b.c=3,d=x"``
    (``{"a": {"b": {"c": 3}}, "d": "x"}``). A mapping in ``overrides`` descends into the mapping
    at the same key of ``params``; anything else (a scalar, a list, null) replaces the value.
    Neither argument is modified.

    Raises:
        UnknownParameterError: an override descends into a value that is not a mapping
            (e.g. ``horizons.x=1`` when ``horizons`` is a list).
    """
    merged = copy.deepcopy(dict(params))
    _merge_into(merged, overrides, prefix="")
    return merged


def _merge_into(target: dict[str, Any], overrides: Mapping[str, Any], prefix: str) -> None:
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            current = target.get(key)
            if current is None or key not in target:
                target[key] = copy.deepcopy(dict(value))
                continue
            if not isinstance(current, dict):
                raise UnknownParameterError(
                    f"--params sets '{path}.{next(iter(value))}' but parameter '{path}' is "
                    f"{type(current).__name__} {_short(current)}, not a block of keys"
                )
            _merge_into(current, value, prefix=f"{path}.")
        else:
            target[key] = copy.deepcopy(value)


def _leaves(value: Any, prefix: str) -> list[tuple[str, Any]]:
    """``(dotted path, value)`` of every leaf under ``value`` (an empty mapping is a leaf)."""
    if isinstance(value, Mapping) and value:
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{prefix}.{key}")]
    return [(prefix, value)]


def _as_typed(value: Any) -> str:
    """``value`` as it is typed on the command line: strings bare, the rest as JSON (``3``, ``null``)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


class ProjectConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` with soft-merged parameters, ``conf/local/credentials*`` in every env and
    key-by-key ``--params``."""

    def __init__(self, conf_source: str, *args: Any, merge_strategy: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        strategy = dict(MERGE_STRATEGY if merge_strategy is None else merge_strategy)
        super().__init__(conf_source, *args, merge_strategy=strategy, **kwargs)

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        if key == "parameters" and key not in self and self.runtime_params:
            return merge_overrides(config, self.runtime_params)
        run_env = self.env or self.default_run_env
        if key != "credentials" or run_env == PERSONAL_ENV:
            return config
        personal = sorted(Path(self.conf_source, PERSONAL_ENV).glob("credentials*.y*ml"))
        merged = OmegaConf.merge(
            OmegaConf.create(dict(config)),
            *(OmegaConf.load(path) for path in personal),
        )
        return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]

    def _merge_and_resolve(self, key: str, config_per_file: dict[Path, Any]) -> dict[str, Any]:
        """Kedro's merge of one folder's files, but ``parameters`` without the runtime parameters.

        (They are merged once, into the resolved base + environment, by ``__getitem__``.)
        """
        if key != "parameters" or not config_per_file:
            return super()._merge_and_resolve(key, config_per_file)
        merged = OmegaConf.unsafe_merge(*config_per_file.values())
        return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]

    def parameter_sources(self) -> dict[str, str]:
        """Where each parameter comes from: dotted leaf path -> ``conf/<env>/<file>`` or ``--params``.

        Follows the merge: a top-level block of the run environment replaces the block of base
        (Kedro's ``destructive`` strategy; per key under ``soft``), and a leaf given in
        ``--params`` wins over both.
        """
        base_configs, env_configs, *_ = self._read_raw_config("parameters")
        soft = self.merge_strategy.get("parameters", "destructive") == "soft"
        sources: dict[str, str] = {}
        for configs in (base_configs, env_configs):
            for path, config in sorted(configs.items()):
                shown = self._shown_path(path)
                raw = OmegaConf.to_container(config, resolve=False)
                for block, value in raw.items():
                    if not soft:
                        for leaf in [p for p in sources if p == block or p.startswith(f"{block}.")]:
                            del sources[leaf]
                    for leaf, _ in _leaves(value, str(block)):
                        sources[leaf] = shown
        for key, value in (self.runtime_params or {}).items():
            for leaf, item in _leaves(value, str(key)):
                sources[leaf] = f'{RUNTIME_SOURCE} "{leaf}={_as_typed(item)}"'
        return sources

    def _shown_path(self, path: Path) -> str:
        root = Path(self.conf_source).resolve().parent
        try:
            return Path(path).resolve().relative_to(root).as_posix()
        except ValueError:
            return Path(path).as_posix()


def source_of(path: str, sources: Mapping[str, str]) -> str:
    """The file (or ``--params``) that set ``path`` or the nearest block above it; ``?`` when none did."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in sources:
            return sources[prefix]
        below = {source for leaf, source in sources.items() if leaf.startswith(f"{prefix}.")}
        if len(below) == 1:
            return below.pop()
        if below:
            return " or ".join(sorted(below))
    return "?"


def read_blocks(pipelines: Mapping[str, Any]) -> set[str]:
    """Top-level parameter blocks the ``pipelines`` read: ``params:training.lr`` -> ``training``."""
    return {name.removeprefix("params:").split(".")[0]
            for pipeline in pipelines.values()
            for node in pipeline.nodes
            for name in node.inputs if name.startswith("params:")}


def reads_all_parameters(pipelines: Mapping[str, Any]) -> bool:
    """Whether some node reads the whole ``parameters`` dataset (then every block is used)."""
    return any("parameters" in node.inputs for pipeline in pipelines.values() for node in pipeline.nodes)


def check_parameters(params: Mapping[str, Any], registered: Mapping[str, Any], validated: Mapping[str, Any],
                     sources: Mapping[str, str], env: str | None) -> None:
    """Fail on any parameter the project cannot use, naming key, source and value.

    Args:
        params: the merged parameters (base + ``env`` + ``--params``), plain data.
        registered: every registered pipeline; a top-level block is known when one of their
            nodes reads it as ``params:<block>`` (or ``params:<block>.<key>``).
        validated: the pipelines whose typed inputs are checked (those being run).
        sources: dotted path -> file or ``--params`` (``ProjectConfigLoader.parameter_sources``).
        env: the run environment, for the message.

    Raises:
        UnknownParameterError: listing every unknown block, unknown key and wrong type.
    """
    problems: list[str] = []
    if not reads_all_parameters(registered):
        known = read_blocks(registered) | RUNNER_BLOCKS
        for block in sorted(set(params) - known):
            close = difflib.get_close_matches(block, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"'{block}' (from {source_of(block, sources)}): unknown parameter block, no registered "
                            f"pipeline reads params:{block}{hint} Known blocks: {sorted(known)}")
    requirements = TypeExtractor(dict(validated)).extract_types_from_pipelines()
    for key, expected in sorted(requirements.items()):
        raw = resolve_nested_dict_path(dict(params), key)
        if raw is _MISSING or raw is None:
            continue
        try:
            TypeAdapter(_unwrap_optional(expected)).validate_python(raw)
        except ValidationError as exc:
            for error in exc.errors():
                path = ".".join([key, *(str(part) for part in error["loc"])])
                what = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(f"'{path}' (from {source_of(path, sources)}): {what}, got {_short(error['input'])}")
    if problems:
        listed = problems[:_MAX_LISTED_PROBLEMS]
        more = len(problems) - len(listed)
        raise UnknownParameterError(
            f"Invalid parameters for environment '{env}':\n"
            + "\n".join(f"- {problem}" for problem in listed)
            + (f"\n- ... and {more} more" if more else "")
        )


def all_registered_pipelines() -> dict[str, Any]:
    """Every pipeline of the registry, also when ``kedro run --pipelines`` asked Kedro to load only some.

    (Kedro 1.7 loads only the requested pipelines; the request is put back afterwards.)
    """
    from kedro.framework.project import pipelines

    requested = pipelines._requested_pipelines  # noqa: SLF001 - Kedro has no public getter for it
    if requested is None:
        return dict(pipelines)
    pipelines.set_requested(None)
    try:
        return dict(pipelines)
    finally:
        pipelines.set_requested(requested)


class ProjectContext(KedroContext):
    """Kedro's context whose parameters are checked by :func:`check_parameters` before Kedro validates them."""

    def _get_validated_params(self) -> dict[str, Any]:
        if (self._validated_params_cache is not None
                and self._cached_validation_scope == self._pipelines_to_validate):
            return self._validated_params_cache
        loader = self.config_loader
        if isinstance(loader, ProjectConfigLoader):
            registered = all_registered_pipelines()
            validated = (registered if self._pipelines_to_validate is None
                         else {name: registered[name] for name in self._pipelines_to_validate})
            check_parameters(loader["parameters"], registered, validated, loader.parameter_sources(), self.env)
        return super()._get_validated_params()
