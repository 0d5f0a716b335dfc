"""``docs/data_contracts.md``: every market table's contract, written from the pandera schemas.

``python -m atft_kedro.schemas.docs`` (from the project root) rewrites the file; a test
checks that the committed file is current. Dtypes, nullability, checks, uniqueness and
strictness are read from the pandera schemas the catalog validates with
(:mod:`atft_kedro.schemas.raw` and :mod:`atft_kedro.schemas.intermediate`); the raw ->
canonical names, endpoints and descriptions from :mod:`atft_kedro.schemas.tables`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pandera.polars as pa

from atft_kedro.schemas import feature, intermediate, model_output, raw, tables
from atft_kedro.schemas.tables import TableSpec

_CHECK_SYMBOLS = {
    "greater_than": (">", "min_value"),
    "greater_than_or_equal_to": (">=", "min_value"),
    "less_than": ("<", "max_value"),
    "less_than_or_equal_to": ("<=", "max_value"),
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _codes(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _find_schema(module: ModuleType, schema_name: str) -> tuple[str, pa.DataFrameSchema]:
    """The public attribute of ``module`` holding the schema named ``schema_name``, and that schema.

    Raises:
        LookupError: when ``module`` has no schema (or more than one) with that name.
    """
    found = [
        (attribute, value)
        for attribute, value in vars(module).items()
        if isinstance(value, pa.DataFrameSchema) and value.name == schema_name and not attribute.startswith("_")
    ]
    if len(found) != 1:
        names = [attribute for attribute, _ in found]
        raise LookupError(f"{module.__name__} has {len(found)} schemas named '{schema_name}' (expected 1): {names}")
    return found[0]


def schema_path(module: ModuleType, schema_name: str) -> str:
    """Dotted path of the schema named ``schema_name`` in ``module``, as a catalog ``validator:`` names it."""
    return f"{module.__name__}.{_find_schema(module, schema_name)[0]}"


def _uniqueness(schema: pa.DataFrameSchema) -> str:
    return f"unique {_codes(schema.unique)}" if schema.unique else "no uniqueness check"


def describe_checks(column: pa.Column) -> str:
    """The column's pandera checks in words, e.g. ``> 0``; empty when it has none."""
    words = []
    for check in column.checks:
        symbol = _CHECK_SYMBOLS.get(check.name)
        if check.name == tables.FINITE_CHECK:
            words.append("finite (no NaN, no inf)")
        elif check.name == "isin" and "allowed_values" in check.statistics:
            words.append("in " + ", ".join(f"'{v}'" for v in check.statistics["allowed_values"]))
        elif symbol is not None and symbol[1] in check.statistics:
            words.append(f"{symbol[0]} {check.statistics[symbol[1]]}")
        else:
            statistics = ", ".join(f"{k}={v}" for k, v in check.statistics.items())
            words.append(f"{check.name}({statistics})")
    return ", ".join(words)


def _table_section(spec: TableSpec) -> list[str]:
    """Markdown lines of one table: heading, facts, and one row per column (raw -> canonical)."""
    raw_schema = _find_schema(raw, spec.raw_name)[1]
    canonical_schema = _find_schema(intermediate, spec.canonical_name)[1]
    lines = [
        f"## `{spec.canonical_name}` (raw: `{spec.raw_name}`)",
        "",
        _cell(spec.description),
        "",
        f"- J-Quants API v2 endpoint: `{spec.endpoint}`",
        f"- keys (unique together): raw {_codes(spec.raw_keys)} -> canonical {_codes(spec.keys)}",
        f"- date column: `{spec.date_column}`",
        "- required: "
        + ("yes: ingestion stops when it is missing or empty" if spec.required
           else "no: it may be empty or absent (written empty with these columns; one warning names it)"),
        f"- raw validator: `{schema_path(raw, spec.raw_name)}`: these columns with these dtypes, "
        f"{'no other column' if raw_schema.strict else 'extra columns allowed'}, {_uniqueness(raw_schema)}",
        f"- canonical validator: `{schema_path(intermediate, spec.canonical_name)}`: "
        + ("exactly these columns in this order" if canonical_schema.strict and canonical_schema.ordered
           else "these columns")
        + f", {_uniqueness(canonical_schema)}",
        "",
        "| # | raw | canonical | dtype | nullable | checks | key | description |",
        "|---:|---|---|---|---|---|---|---|",
    ]
    for position, column in enumerate(spec.columns, start=1):
        raw_column = raw_schema.columns[column.raw]
        canonical_column = canonical_schema.columns[column.canonical]
        if (str(raw_column.dtype), raw_column.nullable, describe_checks(raw_column)) != (
            str(canonical_column.dtype), canonical_column.nullable, describe_checks(canonical_column)
        ):
            raise ValueError(f"table '{spec.canonical_name}': raw column '{column.raw}' and canonical column "
                             f"'{column.canonical}' have different contracts")
        lines.append(
            f"| {position} | `{column.raw}` | `{column.canonical}` | {canonical_column.dtype} | "
            f"{'yes' if canonical_column.nullable else 'no'} | {describe_checks(canonical_column)} | "
            f"{'yes' if column.canonical in spec.keys else ''} | {_cell(column.description)} |"
        )
    return lines


def _schema_section(module: ModuleType, schema: pa.DataFrameSchema, title: str, description: str,
                    regex_example: str) -> list[str]:
    """Markdown lines of a schema whose columns may be regular expressions (layers after 02)."""
    lines = [
        f"## `{schema.name}`{title}",
        "",
        description,
        "",
        f"- keys (unique together): {_codes(schema.unique or [])}",
        f"- validator: `{schema_path(module, schema.name)}`: "
        + ("no other column" if schema.strict else "extra columns allowed"),
        "",
        "| column | dtype | nullable | checks |",
        "|---|---|---|---|",
    ]
    for name, column in schema.columns.items():
        shown = f"`{name}` (regex{regex_example})" if column.regex else f"`{name}`"
        lines.append(f"| {_cell(shown)} | {column.dtype} | {'yes' if column.nullable else 'no'} | "
                     f"{describe_checks(column)} |")
    return lines


#: Schemas of the later layers: (module, schema, title suffix, description, regex example).
_LATER_LAYERS = (
    (raw, raw.ORACLE_EXPECTED_RETURNS, " (synthetic source only)",
     "True expected forward returns of the simulated market; empty for the `jquants` and `files` sources.\n"
     "Only the evaluation pipeline reads it (as the `oracle` reference model).",
     f": e.g. `{raw.ORACLE_COLUMN_PREFIX}5d`"),
    (feature, feature.FEATURES, " (04_feature)",
     "One row per trading Date x listed Code; the feature columns and their order are the feature manifest's "
     "(see `docs/features.md`).", ": every feature, float32"),
    (feature, feature.TARGETS, " (04_feature)",
     "Forward returns of AdjustmentClose, null where the future is unknown; never model inputs.",
     ": e.g. `target_ret_5d`"),
    (feature, feature.STOCK_GRAPH, " (04_feature)",
     "Edges of the trailing-correlation graph, valid from Date.", ""),
    (model_output, model_output.PREDICTIONS, " (07_model_output)",
     "Every model's forecasts on the test dates, side by side.", ": e.g. `pred_5d`, `q0.1_5d`"),
    (model_output, model_output.DAILY_RANKING, " (07_model_output)",
     "The ranking of the newest date written by the inference pipeline.", ": e.g. `pred_5d`, `q0.9_5d`"),
)


def render_data_contracts() -> str:
    """The Markdown of ``docs/data_contracts.md``: an overview, then one section per table."""
    lines = [
        "# Data contracts",
        "",
        "Generated from the pandera schemas (`atft_kedro.schemas.raw`, `intermediate` (both built from",
        "`atft_kedro.schemas.tables`), `feature`, `model_output`) by `python -m atft_kedro.schemas.docs`;",
        "do not edit by hand.",
        "",
        "Every market table exists twice: in `data/01_raw` with the short field names of the J-Quants",
        "API v2 (as `jquants-api-client` `ClientV2` returns them; the `synthetic` and `files` sources",
        "deliver the same shape), and in `data/02_intermediate` with the long canonical names the rest",
        "of the project uses. The ingestion pipeline checks every raw and canonical table of a run",
        "against these schemas before it writes any of them (all or nothing); each catalog entry also",
        "names its schema in `validator:`, so Kedro validates the table on save and on load. A failure",
        "names the table, the column, the check and example rows with their keys.",
        "",
        "Number columns are finite where present (NaN and inf are refused; null is allowed where the",
        "column is nullable, e.g. the prices J-Quants sends as null on a day a stock does not trade).",
        "The trading calendar's holiday division takes '0'..'3'; trading days for equities are '1' and",
        "'2' (`atft_kedro.exchange_calendar`). Required tables must have rows; the others may be empty.",
        "",
        "| canonical table (02_intermediate) | raw table (01_raw) | J-Quants v2 endpoint | keys | required | columns |",
        "|---|---|---|---|---|---:|",
    ]
    lines += [
        f"| [`{t.canonical_name}`](#{t.canonical_name}-raw-{t.raw_name}) | `{t.raw_name}` | `{t.endpoint}` | "
        f"{_codes(t.keys)} | {'yes' if t.required else 'no'} | {len(t.columns)} |"
        for t in tables.TABLES
    ]
    for spec in tables.TABLES:
        lines += ["", *_table_section(spec)]
    for module, schema, title, description, example in _LATER_LAYERS:
        lines += ["", *_schema_section(module, schema, title, description, example)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    """Write the data-contracts doc; returns its path."""
    parser = argparse.ArgumentParser(description="Write docs/data_contracts.md from the pandera schemas.")
    parser.add_argument("--out", type=Path, default=Path("docs/data_contracts.md"))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_data_contracts(), encoding="utf-8")
    return args.out


if __name__ == "__main__":
    print(main())
