"""Type checks read from annotations: a field of `helpers.config.ExperimentConfig` or a key
of `helpers.results.ResultRecord` is checked without another list to keep in step; its
annotation ('int', 'float | None', ...) says what a value may be.
"""
from __future__ import annotations

import dataclasses
import functools
import math

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
          "dict": (dict,), "list": (list,)}
_KIND = {int: "an integer", float: "a number", str: "a string", bool: "True or False",
         dict: "a mapping", list: "a list"}


@functools.lru_cache(maxsize=None)
def field_types(cls) -> dict:
    """field -> (allowed Python types, None allowed), for a dataclass or a TypedDict whose
    annotations are plain names, optionally '| None'."""
    hints = ({f.name: f.type for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls)
             else dict(cls.__annotations__))
    out = {}
    for name, hint in hints.items():
        parts = [p.strip() for p in str(getattr(hint, "__forward_arg__", hint)).split("|")]
        base = [p for p in parts if p != "None"]
        out[name] = (_TYPES[base[0]], "None" in parts)
    return out


def value_problem(name: str, v, types: tuple, can_be_none: bool) -> str | None:
    """'name=value: must be ...' when `v` is not one of `types` (or None where allowed);
    bool is not an int, a string is not a number, and NaN and inf are not numbers."""
    if v is None and can_be_none:
        return None
    ok = isinstance(v, types) and (bool in types or not isinstance(v, bool))
    if ok and isinstance(v, float) and not math.isfinite(v):
        return f"{name}={v!r}: must be a finite number"
    if not ok:
        want = _KIND[types[-1]] + (" or None" if can_be_none else "")
        return f"{name}={v!r}: must be {want}, not {type(v).__name__}"
    return None


def type_problem(obj) -> str | None:
    """The value_problem of the first field of the dataclass instance `obj` whose value does
    not fit its annotation; None when all fit."""
    for name, (types, can_be_none) in field_types(type(obj)).items():
        problem = value_problem(name, getattr(obj, name), types, can_be_none)
        if problem:
            return problem
    return None
