"""Type checks for a dataclass's fields, read from its annotations.

A new field of `helpers.config.ExperimentConfig` is type-checked without another list to
keep in step: the annotation ('int', 'float | None', ...) says what a value may be.
"""
from __future__ import annotations

import dataclasses
import functools
import math

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
_KIND = {int: "an integer", float: "a number", str: "a string", bool: "True or False"}


@functools.lru_cache(maxsize=None)
def field_types(cls) -> dict:
    """field -> (allowed Python types, None allowed), for the dataclass `cls`."""
    out = {}
    for f in dataclasses.fields(cls):
        parts = [p.strip() for p in str(f.type).split("|")]
        base = [p for p in parts if p != "None"]
        out[f.name] = (_TYPES[base[0]], "None" in parts)
    return out


def nullable(cls, name: str) -> bool:
    """Whether the field `name` of `cls` may be None."""
    return field_types(cls)[name][1]


def type_problem(obj) -> str | None:
    """'name=value: must be ...' for the first field of the dataclass instance `obj` whose
    value does not fit its annotation; None when all fit. bool is not an int, a number
    given as a string is not a number, NaN and inf are not numbers, and None is allowed
    only where the annotation allows it."""
    for name, (types, can_be_none) in field_types(type(obj)).items():
        v = getattr(obj, name)
        if v is None and can_be_none:
            continue
        ok = isinstance(v, types) and (bool in types or not isinstance(v, bool))
        if ok and isinstance(v, float) and not math.isfinite(v):
            return f"{name}={v!r}: must be a finite number"
        if not ok:
            want = _KIND[types[-1]] + (" or None" if can_be_none else "")
            return f"{name}={v!r}: must be {want}, not {type(v).__name__}"
    return None
