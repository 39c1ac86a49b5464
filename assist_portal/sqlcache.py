"""Querysets of a fixed shape compiled to SQL once per process (issue 13).

Some queries run on every page (the navigation's work-state counts, the session) and cost far more to compile
than to run: Django builds the SQL of a queryset anew on every evaluation (a `Case`/`When` tree over a filtered
join is ~2 ms of CPU; PostgreSQL answers in ~0.3 ms). `CompiledQuery` compiles the queryset its `build` function
returns once per database alias, finds which SQL parameters each argument of `build` fills, and afterwards only
binds the arguments. The queryset stays the one definition of the query (no hand-written SQL beside it).

Arguments may be `int`, `str` or aware `datetime` values. The shape of the query must not depend on their values
(a different SQL text for other values raises at the first call); settings that change the shape are part of
`key_of_settings`.
"""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, Callable

from django.db import connections

_lock = threading.Lock()


def _probe(value: Any, n: int) -> Any:
    """A value of the same type as `value`, different from it for every n ≥ 1 (for finding its parameter slots)."""
    if isinstance(value, bool):
        raise TypeError("CompiledQuery: a bool changes the shape of a query; make it part of the builder")
    if isinstance(value, int):
        return value + 7919 * n
    if isinstance(value, str):
        return f"{value}\x01probe{n}"
    if isinstance(value, datetime):
        return value - timedelta(days=3 * n, seconds=n)
    raise TypeError(f"CompiledQuery: unsupported argument type {type(value).__name__}")


def _adapt(connection, value: Any) -> Any:
    """What the ORM would bind for `value` (as `DateTimeField.get_db_prep_value` does)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


class CompiledQuery:
    """`CompiledQuery(build).rows(*args)` ≡ evaluating `build(*args)` as tuples, compiled once.

    `build(*args)` returns a queryset (typically `.values(...)` / `.values_list(...)`); `rows` returns its result
    rows as tuples in the queryset's column order, `dicts` as dicts keyed by column name."""

    def __init__(self, build: Callable[..., Any], *, key_of_settings: Callable[[], Any] = lambda: None):
        self.build = build
        self.key_of_settings = key_of_settings
        self._compiled: dict[tuple, tuple[str, list, list[tuple[int, int]]]] = {}

    def _compile(self, alias: str, args: tuple) -> tuple[str, list, list[tuple[int, int]]]:
        connection = connections[alias]
        sql, params = self.build(*args).query.sql_with_params()
        params = list(params)
        slots: list[tuple[int, int]] = []
        for j, value in enumerate(args):
            probed = list(args)
            probed[j] = _probe(value, 1)
            sql_j, params_j = self.build(*probed).query.sql_with_params()
            if sql_j != sql or len(params_j) != len(params):
                raise ValueError("CompiledQuery: the SQL of the query depends on the values of its arguments")
            found = [i for i, (a, b) in enumerate(zip(params, params_j)) if a != b]
            if not found:
                continue  # an argument the query does not use
            for i in found:
                if params[i] != _adapt(connection, value) or params_j[i] != _adapt(connection, probed[j]):
                    raise ValueError(f"CompiledQuery: argument {j} is not bound as it is (parameter {i})")
                slots.append((i, j))
        if len({i for i, _ in slots}) != len(slots):
            raise ValueError("CompiledQuery: two arguments fill the same parameter")
        return sql, params, slots

    def _sql(self, alias: str, args: tuple) -> tuple[str, list]:
        key = (alias, self.key_of_settings())
        entry = self._compiled.get(key)
        if entry is None:
            with _lock:
                entry = self._compiled.get(key) or self._compile(alias, args)
                self._compiled[key] = entry
        sql, params, slots = entry
        if slots:
            connection = connections[alias]
            params = list(params)
            for i, j in slots:
                params[i] = _adapt(connection, args[j])
        return sql, params

    def rows(self, *args: Any, using: str = "default") -> list[tuple]:
        sql, params = self._sql(using, args)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def dicts(self, *args: Any, using: str = "default") -> list[dict[str, Any]]:
        sql, params = self._sql(using, args)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
