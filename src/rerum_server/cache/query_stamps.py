"""The stamps of a query: selective (equality conditions) when the filter has them, pure.

A filter "covers" itself with equality stamps when every document it can match must have one of
them: a scalar equality or ``$in`` of scalars on a path (in any conjunct), or covers of every branch
of an ``$or``. A write changes the equality stamps of every (path, scalar) leaf of its documents' old
and new states, so a write that changes the result of a covered query shares a stamp with it.
"""

from __future__ import annotations

from collections.abc import Iterable

from rerum_server.cache.stamps import ALL, ALL_QUERIES, UNSELECTIVE_QUERIES, equality_stamp
from rerum_server.query.parse import AllOf, And, Cond, Eq, Field, Filter, In, Or, is_array_index


def _cond_cover(path: tuple[str, ...], cond: Cond) -> set[str] | None:
    if isinstance(cond, Eq):
        values: tuple[object, ...] = (cond.value,)
    elif isinstance(cond, In):
        values = cond.values
    elif isinstance(cond, AllOf):
        return _smallest(_cond_cover(path, part) for part in cond.conds)
    else:
        return None
    stamps = set()
    for value in values:
        # null also matches a missing field, which no leaf names
        stamp = None if value is None else equality_stamp(path, value)
        if stamp is None:
            return None
        stamps.add(stamp)
    return stamps


def _smallest(covers: Iterable[set[str] | None]) -> set[str] | None:
    """The smallest cover, the same whatever the order of the conjuncts (a filter's keys may come in any
    order, and one cache entry must always be read with the same stamps)."""
    found = [c for c in covers if c is not None]
    return min(found, key=lambda c: (len(c), sorted(c))) if found else None


def cover(f: Filter) -> set[str] | None:
    """Equality stamps that every document matching ``f`` has, or None."""
    if isinstance(f, Field):
        # Leaves never name array positions, so a path through one has no cover; the first segment
        # is always a key (a document is an object), even when it is made of digits.
        if any(is_array_index(segment) for segment in f.path[1:]):
            return None
        return _cond_cover(f.path, f.cond)
    if isinstance(f, And):
        return _smallest(cover(part) for part in f.filters)
    if isinstance(f, Or):
        union: set[str] = set()
        for part in f.filters:
            part_cover = cover(part)
            if part_cover is None:
                return None
            union |= part_cover
        return union
    return None


def query_stamps(f: Filter, *, selective: bool = True) -> list[str]:
    """What a query's cached result depends on."""
    covered = cover(f) if selective else None
    return [ALL, ALL_QUERIES, *(sorted(covered) if covered else [UNSELECTIVE_QUERIES])]
