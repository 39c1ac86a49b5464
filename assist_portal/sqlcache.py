"""Querysets of a fixed shape compiled to SQL once per process (issue 13); also the writes of the hottest rows
(`CompiledWrites`) and model instances from hand-written SQL (`ModelRows`), ADR 0020; the writes of a block sent
as one statement (`writes_at_once`), ADR 0023.

Some queries run on every page (the navigation's work-state counts, the session) and cost far more to compile
than to run: Django builds the SQL of a queryset anew on every evaluation (a `Case`/`When` tree over a filtered
join is ~2 ms of CPU; PostgreSQL answers in ~0.3 ms). `CompiledQuery` compiles the queryset its `build` function
returns once per database alias, finds which SQL parameters each argument of `build` fills, and afterwards only
binds the arguments. The queryset stays the one definition of the query (no hand-written SQL beside it).

Arguments may be `int`, `str`, `uuid.UUID` or aware `datetime` values, of the same types on every call (checked on
every call; `None` is refused: `= NULL` would never match where the ORM writes `IS NULL`). The shape of the query
must not depend on their values (a different SQL text for other values raises at the first call), nor on settings
(a query shaped by a setting is built by the caller per setting value). Result values go through the same converters as the ORM's (`from_db_value`: decryption, JSON,
SQLite's dates), so rows are what `values_list` would give.
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.transaction import TransactionManagementError

_lock = threading.Lock()


def _probe(value: Any, n: int) -> Any:
    """A value of the same type as `value`, different from it for every n ≥ 1 (for finding its parameter slots)."""
    if isinstance(value, bool):
        raise TypeError("CompiledQuery: a bool changes the shape of a query; make it part of the builder")
    if isinstance(value, int):
        return value + 7919 * n if value < (1 << 62) else value - 7919 * n
    if isinstance(value, str):
        return f"{value}\x01probe{n}"
    if isinstance(value, datetime):
        return value - timedelta(days=3 * n, seconds=n)
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=(value.int + 7919 * n) % (1 << 128))
    raise TypeError(f"CompiledQuery: unsupported argument type {type(value).__name__}")


def _adapt(connection, value: Any) -> Any:
    """What the ORM would bind for `value` (as `DateTimeField.get_db_prep_value` does)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, uuid.UUID) and not connection.features.has_native_uuid_field:
        return value.hex
    return value


class CompiledQuery:
    """`CompiledQuery(build).rows(*args)` ≡ evaluating `build(*args)` as tuples, compiled once.

    `build(*args)` returns a queryset (typically `.values(...)` / `.values_list(...)`); `rows` returns its result
    rows as tuples in the queryset's column order."""

    def __init__(self, build: Callable[..., Any]):
        self.build = build
        self._compiled: dict[str, tuple] = {}

    def _compile(self, alias: str, args: tuple) -> tuple:
        connection = connections[alias]
        compiler = self.build(*args).query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        params = list(params)
        # the converters of the selected columns, as the ORM's iterables apply them
        converters = compiler.get_converters([col for col, _, _ in compiler.select])
        slots: list[tuple[int, int]] = []
        for j, value in enumerate(args):
            probed = list(args)
            probed[j] = _probe(value, 1)
            sql_j, params_j = self.build(*probed).query.get_compiler(using=alias).as_sql()
            if sql_j != sql or len(params_j) != len(params):
                raise ValueError("CompiledQuery: the SQL of the query depends on the values of its arguments")
            found = [i for i, (a, b) in enumerate(zip(params, params_j, strict=True)) if a != b]
            if not found:
                continue  # an argument the query does not use
            for i in found:
                if params[i] != _adapt(connection, value) or params_j[i] != _adapt(connection, probed[j]):
                    raise ValueError(f"CompiledQuery: argument {j} is not bound as it is (parameter {i})")
                slots.append((i, j))
        if len({i for i, _ in slots}) != len(slots):
            raise ValueError("CompiledQuery: two arguments fill the same parameter")
        locks = bool(compiler.query.select_for_update) and connection.features.has_select_for_update
        return sql, params, slots, compiler, converters, locks, tuple(type(a) for a in args)

    def _sql(self, alias: str, args: tuple) -> tuple[str, list, Any, dict]:
        key = alias
        entry = self._compiled.get(key)
        if entry is None:
            with _lock:
                entry = self._compiled.get(key) or self._compile(alias, args)
                self._compiled[key] = entry
        sql, params, slots, compiler, converters, locks, types = entry
        if tuple(type(a) for a in args) != types:  # checked on every call, not only when compiling
            raise TypeError("CompiledQuery: arguments of other types than those it was compiled with "
                            f"({', '.join(t.__name__ for t in types)})")
        if locks and connections[alias].get_autocommit():  # as the ORM refuses it
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        if slots:
            connection = connections[alias]
            params = list(params)
            for i, j in slots:
                params[i] = _adapt(connection, args[j])
        return sql, params, compiler, converters

    def rows(self, *args: Any, using: str = "default") -> list[tuple]:
        if any(isinstance(a, int) and not isinstance(a, bool) and not -(1 << 63) <= a < (1 << 63) for a in args):
            return []  # as the ORM answers a lookup with an integer no column can hold
        sql, params, compiler, converters = self._sql(using, args)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            rows = [tuple(row) for row in compiler.apply_converters(rows, converters)]
        return rows


class CompiledModelQuery:
    """`build(*args)` (a queryset of `model`) as model instances, compiled once: with `related` (foreign keys)
    loaded as `select_related` would (a null key: None) and `annotations` set as attributes. `select_for_update`
    in `build` locks as it would (the joined rows too, as with `select_related`). `defer` names columns of a related
    model left out ("definition__definition"): deferred on the instance as `.defer()` leaves them (read on first
    access, through the model's `refresh_from_db`)."""

    def __init__(self, model, build: Callable[..., Any], *, related: tuple[str, ...] = (),
                 annotations: tuple[str, ...] = (), defer: tuple[str, ...] = ()):
        self.model = model
        self.annotations = annotations
        self.parts = []  # (foreign key or None, model, attnames of its selected columns)
        columns = []
        for name in (None, *related):
            target = model if name is None else model._meta.get_field(name).related_model
            prefix = "" if name is None else f"{name}__"
            fields = [f for f in target._meta.concrete_fields if f"{prefix}{f.name}" not in defer]
            if target._meta.pk not in fields:
                raise ValueError("CompiledModelQuery: a primary key cannot be deferred")
            self.parts.append((None if name is None else model._meta.get_field(name), target,
                               [f.attname for f in fields]))
            columns += [f"{prefix}{f.name}" for f in fields]
        unknown = set(defer) - {f"{r}__{f.name}" for r in related
                                for f in model._meta.get_field(r).related_model._meta.concrete_fields}
        if unknown:
            raise ValueError(f"CompiledModelQuery: cannot defer {sorted(unknown)}")
        columns += list(annotations)
        self.query = CompiledQuery(lambda *args: build(*args).values_list(*columns))

    def all(self, *args: Any, using: str = "default") -> list:
        out = []
        for row in self.query.rows(*args, using=using):
            at, instance = 0, None
            for field, model, attnames in self.parts:
                values = list(row[at:at + len(attnames)])
                at += len(attnames)
                if field is None:
                    instance = model.from_db(using, attnames, values)
                    continue
                pk = values[attnames.index(model._meta.pk.attname)]
                field.set_cached_value(instance, model.from_db(using, attnames, values) if pk is not None else None)
            for name in self.annotations:
                setattr(instance, name, row[at])
                at += 1
            out.append(instance)
        return out

    def first(self, *args: Any, using: str = "default"):
        rows = self.all(*args, using=using)
        return rows[0] if rows else None


_BY_FIELD: dict[tuple, CompiledModelQuery] = {}


def model_first(model, field: str, value: Any, *, related: tuple[str, ...] = (), using: str = "default"):
    """`model._default_manager.select_related(*related).filter(<field>=value).first()` for a unique field, compiled
    once: the instance with its related instances (or None) already set."""
    key = (model, field, related)
    query = _BY_FIELD.get(key)
    if query is None:
        query = _BY_FIELD.setdefault(key, CompiledModelQuery(
            model, lambda v: model._default_manager.filter(**{field: v}).order_by()[:1], related=related))
    return query.first(value, using=using)


_INSERT_SQL: dict[tuple, tuple[str, list, bool]] = {}


def _insert_sql(model, alias: str) -> tuple[str, list, bool]:
    key = (model, alias)
    entry = _INSERT_SQL.get(key)
    if entry is None:
        connection = connections[alias]
        qn = connection.ops.quote_name
        meta = model._meta
        fields = [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]
        returning = connection.features.can_return_columns_from_insert and meta.auto_field is not None
        sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        if returning:
            sql += f" RETURNING {qn(meta.db_table)}.{qn(meta.auto_field.column)}"
        entry = _INSERT_SQL.setdefault(key, (sql, fields, returning))
    return entry


def insert_from(instance, source: str, computed: dict[str, str] | None = None, using: str = "default"
                ) -> tuple[str, list]:
    """`INSERT INTO <table> (<columns>) SELECT <values> FROM <source>`: the row `save()` would insert for this new
    `instance`, bound as `CompiledWrites` binds it, written once for each row `source` yields — the part of one
    data-modifying WITH statement that writes only if another part matched. `computed` maps a field's attname to
    an SQL expression (over `source`) that gives its value instead. Each value is cast to its column's type (a
    parameter in a select list has no type of its own), text to text of any length: too long is refused, not cut."""
    connection = connections[using]
    qn = connection.ops.quote_name
    meta = instance._meta
    computed = computed or {}
    _, fields, _ = _insert_sql(type(instance), using)  # the columns the compiled INSERT writes
    columns, values, params = [], [], []
    for field in fields:
        columns.append(qn(field.column))
        if field.attname in computed:
            values.append(computed[field.attname])
        else:
            values.append(f"%s::{_select_list_cast(field, connection)}")
            params.append(field.get_db_prep_save(field.pre_save(instance, True), connection=connection))
    return (f"INSERT INTO {qn(meta.db_table)} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source}",
            params)


def _select_list_cast(field, connection) -> str:
    """The type a select-list parameter is cast to: the column's, except that text is cast to text of any length
    (`varchar(n)` would cut a value that is too long where the ORM's INSERT refuses it; the column refuses it)."""
    from django.db import models

    if isinstance(field, models.CharField):
        return connection.ops.cast_char_field_without_max_length
    return field.cast_db_type(connection)


_UPDATE_SQL: dict[tuple, tuple[str, list, frozenset]] = {}


def _update_sql(model, names: tuple, alias: str) -> tuple[str, list, frozenset] | None:
    key = (model, names, alias)
    entry = _UPDATE_SQL.get(key)
    if entry is None:
        meta = model._meta
        fields = []
        for name in names:
            try:
                field = meta.get_field(name)
            except Exception:
                return None  # Django's save names the problem
            if not field.concrete or field.many_to_many or field.primary_key or field.generated:
                return None
            if field not in fields:  # "hospital" and "hospital_id" name one column
                fields.append(field)
        qn = connections[alias].ops.quote_name
        sql = (f"UPDATE {qn(meta.db_table)} SET {', '.join(f'{qn(f.column)} = %s' for f in fields)} "
               f"WHERE {qn(meta.pk.column)} = %s")
        # the foreign keys among them: what Django's check of related objects saved meanwhile looks at
        entry = _UPDATE_SQL.setdefault(key, (sql, fields, frozenset(f for f in fields if f.is_relation)))
    return entry


class CompiledWrites:
    """A model whose writes go through statements compiled once per process (issue 13) instead of being compiled
    anew by every save (~0.2–0.4 ms of CPU per row; more for a wide row):

    - `save()` of a new instance with an auto primary key: one INSERT of every column;
    - `save(update_fields=[...])` of a stored instance: one UPDATE of those columns by primary key.

    Each value is bound as the ORM binds it (`pre_save`, then `get_db_prep_save`: encryption, JSON); a failed
    statement spoils the transaction as the ORM's would. Anything else — a full `save()` of a stored row, a preset
    primary key, a value that is an expression, multi-table inheritance — goes through Django's own `save`.
    `pre_save`/`post_save` signals are not sent for compiled writes (none of these models has receivers;
    `tests/portal/test_sqlcache.py` checks that every using model still has none)."""

    def save(self, *args, force_insert=False, force_update=False, using=None, update_fields=None, **kwargs):
        meta = self._meta
        if self.pk is None and not self._state.adding:  # saved again while its INSERT waits in a batch: write that
            batch = _batch_of(connections[using or "default"])  # first (then this save is the update it would be)
            if batch is not None and id(self) in batch.rows:
                batch.flush()
        if not (args or kwargs or force_update or meta.parents or meta.proxy):
            if (update_fields is not None and not force_insert and not self._state.adding and self.pk is not None
                    and update_fields):
                if self._compiled_update(using, tuple(dict.fromkeys(update_fields))):
                    return
            elif update_fields is None and self._state.adding and meta.auto_field is not None and self.pk is None:
                self._compiled_insert(using)
                return
        super().save(*args, force_insert=force_insert, force_update=force_update, using=using,
                     update_fields=update_fields, **kwargs)

    def _compiled_insert(self, using) -> None:
        from django.db import router, transaction

        meta = self._meta
        using = using or router.db_for_write(self.__class__, instance=self)
        connection = connections[using]
        batch = _batch_of(connection)
        waiting = batch.waiting_for(self) if batch is not None else {}
        # a row of the same batch that this one refers to gives its key when the batch is written
        if not waiting:
            self._prepare_related_fields_for_save(operation_name="save")
        else:
            others = frozenset(f for f in meta.concrete_fields if f.is_relation and f not in waiting)
            if others:
                self._prepare_related_fields_for_save(operation_name="save", fields=others)
        sql, fields, returning = _insert_sql(type(self), using)

        def bound() -> list:
            return [f.get_db_prep_save(f.pre_save(self, True), connection=connection) for f in fields]

        params = bound()
        if waiting and any(id(target) not in batch.rows for target in waiting.values()):
            # preparing a value ran a statement, which wrote the batch: the rows referred to have their keys now
            for field, target in waiting.items():
                setattr(self, field.name, target)
            waiting, params = {}, bound()
        if batch is not None and returning:
            batch.insert(self, fields, params, waiting)
            return
        with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
            cursor.execute(sql, params)
            pk = cursor.fetchone()[0] if returning else connection.ops.last_insert_id(
                cursor, meta.db_table, meta.auto_field.column)
        setattr(self, meta.auto_field.attname, pk)
        self._state.adding = False
        self._state.db = using

    def _compiled_update(self, using, names: tuple) -> bool:
        """False when Django's save must do it (an unknown name, an expression as a value)."""
        from django.db import DatabaseError, router, transaction

        using = using or router.db_for_write(self.__class__, instance=self)
        entry = _update_sql(type(self), names, using)
        if entry is None:
            return False
        sql, fields, related = entry
        # as Django's save: a related object saved after it was assigned gives its key first (then the values);
        # only foreign keys are looked at, so only they are named (a set: it is searched for every column)
        if related:
            self._prepare_related_fields_for_save(operation_name="save", fields=related)
        values = [f.pre_save(self, False) for f in fields]
        if any(hasattr(v, "resolve_expression") for v in values):
            return False
        connection = connections[using]
        params = [f.get_db_prep_save(v, connection=connection) for f, v in zip(fields, values, strict=True)]
        params.append(self._meta.pk.get_db_prep_value(self.pk, connection))
        batch = _batch_of(connection)
        if batch is not None:
            batch.update(self, sql, params)
            return True
        with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.rowcount == 0:  # as Django's save(update_fields=…) of a row that is gone
                raise DatabaseError("Save with update_fields did not affect any rows.")
        self._state.db = using
        return True


def _batch_of(connection) -> _WriteBatch | None:
    return getattr(connection, "hersys_write_batch", None)


class _WriteBatch:
    """The compiled writes made inside `writes_at_once`, sent as one statement (see there)."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.parts: list[tuple[str, list, Any, dict]] = []  # (statement, params, instance, {fk field: row})
        self.rows: dict[int, int] = {}  # id() of an instance to be inserted → its part
        self.updated: set[tuple[str, Any]] = set()  # (table, key) of the rows this batch updates

    def waiting_for(self, instance) -> dict:
        """The foreign keys of `instance` to a row this batch has yet to insert (field → that row)."""
        waiting = {}
        for field in instance._meta.concrete_fields:
            if field.is_relation and field.is_cached(instance):
                target = field.get_cached_value(instance)
                if target is not None and target.pk is None and id(target) in self.rows:
                    waiting[field] = target
        return waiting

    def insert(self, instance, fields: list, params: list, waiting: dict) -> None:
        self.connection.validate_no_broken_transaction()  # as a statement of its own would, at once
        qn = self.connection.ops.quote_name
        meta = instance._meta
        values, bound = [], []
        for field, param in zip(fields, params, strict=True):
            if field in waiting:
                target = waiting[field]
                values.append(f"(SELECT {qn(target._meta.pk.column)} FROM w{self.rows[id(target)]})")
            else:
                values.append("%s")
                bound.append(param)
        sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
               f"VALUES ({', '.join(values)}) RETURNING {qn(meta.auto_field.column)}")
        self.rows[id(instance)] = len(self.parts)
        self.parts.append((sql, bound, instance, waiting))
        # being written: saved again, it is the update of a stored row (a model that refuses updates refuses it)
        instance._state.adding = False

    def update(self, instance, sql: str, params: list) -> None:
        self.connection.validate_no_broken_transaction()
        # PostgreSQL applies only one of two changes of the same row in one statement: the first is written first
        row = (instance._meta.db_table, instance.pk)
        if row in self.updated:
            self.flush()
        self.updated.add(row)
        self.parts.append((f"{sql} RETURNING 1", params, instance, None))

    def before_statement(self, execute, sql, params, many, context):
        """Any other statement on the connection meanwhile (a read, a savepoint): the batch is written first —
        except a rollback to a savepoint, which would undo it: every waiting write was made after the newest
        savepoint (creating one writes the batch), so they are dropped, as the rollback would drop them."""
        if self.parts:
            if isinstance(sql, str) and sql.startswith("ROLLBACK TO SAVEPOINT"):
                self.parts, self.rows, self.updated = [], {}, set()
            else:
                self.flush()
        return execute(sql, params, many, context)

    def flush(self) -> None:
        from django.db import DatabaseError, transaction

        parts, self.parts, self.rows, self.updated = self.parts, [], {}, set()
        if not parts:
            return
        if len(parts) == 1:
            sql, params = parts[0][0], parts[0][1]
        else:
            sql = "WITH " + ", ".join(f"w{k} AS ({part[0]})" for k, part in enumerate(parts)) + " SELECT " + ", ".join(
                f"(SELECT count(*) FROM w{k})" if part[3] is None else f"(SELECT * FROM w{k})"
                for k, part in enumerate(parts))
            params = [p for part in parts for p in part[1]]
        using = self.connection.alias
        with transaction.mark_for_rollback_on_error(using):
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone() if len(parts) > 1 else (cursor.fetchone()[0] if parts[0][3] is not None
                                                                  else cursor.rowcount,)
            gone = False
            for (_, _, instance, waiting), value in zip(parts, row, strict=True):
                instance._state.db = using
                if waiting is None:  # an update: the count of rows it changed
                    gone = gone or value == 0
                    continue
                setattr(instance, instance._meta.auto_field.attname, value)
                for field, target in waiting.items():
                    setattr(instance, field.name, target)  # its key, the related instance kept
            if gone:  # as Django's save(update_fields=…) of a row that is gone (the transaction spoiled, as there)
                raise DatabaseError("Save with update_fields did not affect any rows.")


def _psycopg_converts_batches_once() -> None:
    """psycopg turns a query's `%s` placeholders into `$n` once per query text (an LRU of 128 texts), but only
    for queries of at most 50 parameters; a confirmation's one statement has 57 and was converted anew on every
    call (~0.1 ms of CPU, a thirtieth of a confirmation). Its text is fixed, so the limit is raised to 100 (a
    private constant of psycopg: if it goes away, this does nothing)."""
    try:
        from psycopg import _queries
    except ImportError:  # another driver
        return
    if isinstance(getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", None), int):
        _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, 100)


_psycopg_converts_batches_once()


@contextmanager
def writes_at_once(using: str = "default"):
    """Inside a transaction on PostgreSQL: the `CompiledWrites` inserts and updates made in this block are sent
    as one data-modifying WITH statement when it ends (one round trip and one statement's overhead instead of
    one per row; issue 13, ADR 0023), in the order they were made. A new row may refer to another new row of the
    block (a revision to its payload): the key is taken from that row's INSERT … RETURNING in the same statement.
    Any other statement on the connection meanwhile (a query, a savepoint, Django's own save) writes the batch
    first, so every statement still sees what was written before it; a rollback to a savepoint drops it. Keys of
    the new rows are set when the batch is written (until then their `pk` is None: code inside the block must not
    need them; a row waiting in the batch saved again writes the batch first); a failed write raises there (and
    spoils the transaction as the ORM's would). On SQLite and in autocommit each write runs at once, as without the
    block; a block inside a batching block adds to the outer batch."""
    connection = connections[using]
    if (connection.vendor != "postgresql" or connection.get_autocommit() or not connection.in_atomic_block
            or _batch_of(connection) is not None):
        yield
        return
    batch = _WriteBatch(connection)
    connection.hersys_write_batch = batch
    try:
        with connection.execute_wrapper(batch.before_statement):
            try:
                yield
            except BaseException:
                if not connection.needs_rollback:  # what was written before the error stays written
                    batch.flush()
                raise
            batch.flush()
    finally:
        connection.hersys_write_batch = None


class ModelRows:
    """`Model.objects.raw(sql, params)` for hand-written SQL whose select list is the model's concrete columns
    (`columns()`, in that order) followed by named extra columns, without RawQuerySet's work on every call
    (resolving the columns against the model, its converters, the init order: ~0.2 ms of CPU per query, issue 13).
    Values go through the same converters as RawQuerySet's (SQLite's dates, `from_db_value`); extras are set as
    attributes unconverted, as RawQuerySet sets its annotations."""

    def __init__(self, model):
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in self.fields]
        self._converters: dict[str, list] = {}

    def columns(self, table_alias: str, using: str = "default") -> str:
        qn = connections[using].ops.quote_name
        return ", ".join(f"{table_alias}.{qn(f.column)}" for f in self.fields)

    def _converters_for(self, using: str) -> list:
        found = self._converters.get(using)
        if found is None:
            connection = connections[using]
            found = []
            for i, field in enumerate(self.fields):
                col = field.get_col(self.model._meta.db_table)
                convs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if convs:
                    found.append((i, convs, col))
            self._converters[using] = found
        return found

    def first(self, sql: str, params, extras: tuple[str, ...] = (), using: str = "default"):
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for i, convs, col in self._converters_for(using):
            value = values[i]
            for converter in convs:
                value = converter(value, col, connection)
            values[i] = value
        n = len(self.fields)
        instance = self.model.from_db(using, self.attnames, values[:n])
        for name, value in zip(extras, values[n:], strict=True):
            setattr(instance, name, value)
        return instance
