"""The load-time tables' SQL (queries/_build, DuckDB) as Spark SQL: sqlglot's duckdb->spark transpiler plus the
rewrites below for what it does not carry, and a refusal for anything else.

sqlglot passes functions it does not know straight through and quietly changes some it does (it turns
`list(x order by y)` into an unordered `collect_list(x)`), so every function must be on ALLOWED, a list of
those whose Spark output was checked on Spark (tests/test_spark_build.py). The rewrites:

- macros and enum types are DuckDB-only definitions: not run on Spark, run as written where the tables are
  published; a cast to an enum type is dropped on Spark (the text is cast back when published);
- `date - date` is a number of days in DuckDB and an interval in Spark: becomes `datediff(a, b)`, which needs
  the operand types, so the query is qualified and typed against the tables' schemas first;
- `list(x)` / `list(x order by y)`: Spark's collect_list drops nulls and keeps no order; becomes a sorted
  array of structs, mapped back to x;
- `list_reduce(l, lambda a, b: ...)` becomes `aggregate()` over the tail with the head as the start;
- `bit_count(bitstring_agg(x))`, the DuckDB idiom for a fast distinct count, becomes `count(distinct x)`;
- `quantile_cont(x, p)` becomes `percentile(x, p)` (both interpolate linearly);
- `order by a.x` after `select distinct a.x` sorts by the output name, the only one Spark resolves there.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from outcomes.ingest import contract, prebuilt

# sqlglot function classes (and lower-case names of functions it keeps as they are) whose Spark SQL was run on
# Spark and gave DuckDB's answer. Anything else is refused, so a new construct in queries/_build fails a test
# here rather than giving other numbers on a cluster.
ALLOWED = frozenset(
    {
        # in queries/_build (tests/test_spark_build.py compares every table)
        "Case",
        "Cast",
        "Coalesce",
        "Count",
        "FirstValue",
        "If",
        "Lag",
        "Lead",
        "LogicalOr",
        "Max",
        "Min",
        "RowNumber",
        "Sum",
        "TimestampTrunc",
        "Year",
        # made by the rewrites below, or kept by them (tests/test_spark_build.py runs each on Spark)
        "Transform",
        "Struct",
        "Anonymous:datediff",
        "Anonymous:aggregate",
        "Anonymous:element_at",
        "Anonymous:slice",
        "Anonymous:size",
        "Anonymous:sort_array",
        "Anonymous:collect_list",
        "Anonymous:isnotnull",
        "Anonymous:percentile",
    }
)


class Untranslatable(ValueError):
    """A construct of queries/_build that this module cannot carry to Spark; the message names it."""


@dataclass(frozen=True)
class SparkStep:
    """One statement of queries/_build: a table with the Spark SQL that builds it, or a DuckDB-only definition."""

    statement: prebuilt.Statement
    spark: str | None


def _func_key(node: exp.Func) -> str:
    return f"Anonymous:{node.name.lower()}" if isinstance(node, exp.Anonymous) else type(node).__name__


def _name(node: exp.Func) -> str:
    return node.name.lower() if isinstance(node, exp.Anonymous) else node.sql_name().lower()


def _fn(name: str, *args) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _is(node: exp.Expression, *kinds) -> bool:
    return node.type is not None and node.type.this in kinds


def _lambda(body: exp.Expression, *names: str) -> exp.Lambda:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(n) for n in names])


def _enum_casts(tree: exp.Expression, enums: set[str]) -> None:
    for cast in list(tree.find_all(exp.Cast)):
        to = cast.to
        if to.this == exp.DataType.Type.USERDEFINED and to.sql("duckdb").lower() in enums:
            cast.replace(cast.this)


def _date_arithmetic(tree: exp.Expression) -> None:
    """`a - b` of two dates is a day count; `date ± n` is the same in both. Unknown operand types are refused."""
    dates = (exp.DataType.Type.DATE, exp.DataType.Type.DATE32)
    for node in list(tree.find_all(exp.Sub, exp.Add)):
        left, right = node.this, node.expression
        if node.find_ancestor(exp.Lambda):  # a lambda's arguments have no declared type; Spark takes them as they are
            continue
        for side in (left, right):
            if side.type is None or side.type.this == exp.DataType.Type.UNKNOWN:
                raise Untranslatable(f"cannot tell the type of {side.sql('duckdb')!r} in {node.sql('duckdb')!r}")
        if isinstance(node, exp.Sub) and _is(left, *dates) and _is(right, *dates):
            node.replace(exp.Paren(this=_fn("datediff", left.copy(), right.copy())))
        elif _is(left, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.INTERVAL) or _is(
            right, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.INTERVAL
        ):
            raise Untranslatable(f"timestamp or interval arithmetic {node.sql('duckdb')!r}")


def _lists(tree: exp.Expression) -> None:
    """list(x [order by k, ...]): keep nulls and the order, as DuckDB does."""
    for agg in list(tree.find_all(exp.ArrayAgg)):
        arg, keys = agg.this, []
        if isinstance(arg, exp.Order):
            keys, arg = arg.expressions, arg.this
        descending = {bool(k.args.get("desc")) for k in keys}
        if len(descending) > 1:
            raise Untranslatable(f"list() ordered in mixed directions: {agg.sql('duckdb')!r}")
        desc = descending == {True}
        fields = []
        for i, key in enumerate(keys):
            nulls_first = bool(key.args.get("nulls_first"))
            # sort_array orders structs field by field; this flag puts each key's nulls where DuckDB puts them
            flag = (
                _fn("isnotnull", key.this.copy())
                if nulls_first != desc
                else exp.Is(this=key.this.copy(), expression=exp.Null())
            )
            fields += [
                exp.PropertyEQ(this=exp.to_identifier(f"n{i}"), expression=flag),
                exp.PropertyEQ(this=exp.to_identifier(f"k{i}"), expression=key.this.copy()),
            ]
        fields.append(exp.PropertyEQ(this=exp.to_identifier("v"), expression=arg.copy()))
        collected = _fn("collect_list", exp.Struct(expressions=fields))
        if keys:
            collected = _fn("sort_array", collected, exp.Boolean(this=not desc))
        body = exp.Dot(this=exp.column("s"), expression=exp.to_identifier("v"))
        agg.replace(exp.Transform(this=collected, expression=_lambda(body, "s")))


def _anonymous(tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.Anonymous)):
        name = node.name.lower()
        args = node.expressions
        if name == "list_reduce" and len(args) == 2 and isinstance(args[1], exp.Lambda):
            lst, fn = args
            tail = _fn("slice", lst.copy(), exp.Literal.number(2), _fn("size", lst.copy()))
            node.replace(_fn("aggregate", tail, _fn("element_at", lst.copy(), exp.Literal.number(1)), fn.copy()))
        elif (
            name == "bit_count"
            and len(args) == 1
            and isinstance(args[0], exp.Anonymous)
            and args[0].name.lower() == "bitstring_agg"
        ):
            node.replace(exp.Count(this=exp.Distinct(expressions=[args[0].expressions[0].copy()])))


def _quantiles(tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.PercentileCont)):
        if isinstance(node.parent, exp.WithinGroup) or not isinstance(node.expression, exp.Literal):
            raise Untranslatable(f"quantile form not carried: {node.sql('duckdb')!r}")
        node.replace(_fn("percentile", node.this.copy(), node.expression.copy()))


def _order_by_outputs(tree: exp.Expression) -> None:
    """ORDER BY a.x after SELECT DISTINCT a.x: Spark resolves only the output name there, so sort by that."""
    for select in list(tree.find_all(exp.Select)):
        order = select.args.get("order")
        if not order:
            continue
        outputs = {p.unalias().sql("duckdb"): p.alias_or_name for p in select.expressions}
        for key in order.expressions:
            name = outputs.get(key.this.sql("duckdb"))
            if isinstance(key.this, exp.Column) and name:
                key.set("this", exp.column(name))


def _refuse(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Pivot):
            raise Untranslatable("PIVOT")
        if isinstance(node, exp.Join) and str(node.args.get("method") or "").upper() == "ASOF":
            raise Untranslatable("ASOF JOIN")
    for node in tree.find_all(exp.Func):
        if isinstance(node, (exp.Binary, exp.Connector, exp.Unary)):  # operators: sqlglot spells them for Spark
            continue
        if _func_key(node) not in ALLOWED:
            raise Untranslatable(
                f"{_name(node)}() is not known to give the same answer on Spark "
                "(see ALLOWED in outcomes/scale/spark_sql.py)"
            )


def to_spark(query: str, schema: dict[str, dict[str, str]], enums: set[str] = frozenset()) -> str:
    """A DuckDB SELECT as Spark SQL. `schema` maps each table the query reads to {column: DuckDB type};
    `enums` names the enum types (a cast to one is dropped). Raises Untranslatable."""
    try:
        tree = sqlglot.parse_one(query, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise Untranslatable(f"sqlglot cannot parse it: {str(exc).splitlines()[0]}") from None
    tree = qualify(tree, schema=schema, dialect="duckdb", validate_qualify_columns=True)
    tree = annotate_types(tree, schema=schema, dialect="duckdb")
    _enum_casts(tree, {e.lower() for e in enums})
    _date_arithmetic(tree)
    _lists(tree)
    _anonymous(tree)
    _quantiles(tree)
    _order_by_outputs(tree)
    _refuse(tree)
    return tree.sql(dialect="spark")


def steps() -> list[SparkStep]:
    """Every statement of queries/_build with its Spark SQL. The schema each query is typed against comes from
    running the build in DuckDB on empty base tables, so no data and no Spark is needed."""
    import duckdb

    con = duckdb.connect()
    schema = {t.name: {c.name: c.type for c in t.columns} for t in contract.TABLES.values()}
    for t in contract.TABLES.values():
        con.execute(f"create table {t.name} ({', '.join(f'{c.name} {c.type}' for c in t.columns)})")
    enums: set[str] = set()
    out = []
    for stmt in prebuilt.statements():
        con.execute(stmt.sql)
        if stmt.definition:
            if stmt.definition == "type":
                enums.add(stmt.name)
            out.append(SparkStep(stmt, None))
            continue
        try:
            spark = to_spark(stmt.query, schema, enums)
        except Untranslatable as exc:
            raise Untranslatable(f"{stmt.file}, table {stmt.table}: {exc}") from None
        out.append(SparkStep(stmt, spark))
        schema[stmt.table] = {r[0]: r[1] for r in con.execute(f"describe {stmt.table}").fetchall()}
    con.close()
    return out
