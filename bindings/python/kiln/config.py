"""Configs cross the C ABI as kiln_config handles; Python holds them as dicts (Keras's get_config).

The conversion goes through JSON, so a config is what `json` can write: None, bool, int, float,
str, lists/tuples and nested dicts with string keys; NumPy arrays and scalars and kiln Tensors
(anything with `tolist()`) go as their lists and numbers. Non-finite floats are refused, as in C,
but for infinities in a Discretization's bin_boundaries and any float in IntegerLookup's idf_weights.
"""
import ctypes
import json
import math

from . import _lib
from .errors import InvalidArgumentError, check

L = _lib.lib


# Keys whose lists may hold infinities: data, not settings (Discretization's adapted boundaries
# sit at -inf or +inf when the data's quantiles do; IntegerLookup's IDF weights are what they are
# given, and NaN for the special indices when adapt() learned no token, as Keras's mean of none).
# JSON writes them as Python's json module does.
_INFINITE_LISTS = frozenset(["bin_boundaries", "idf_weights"])
_NAN_LISTS = frozenset(["idf_weights"])


def _check_finite(value, path):
    """Refuses non-finite floats but for infinities in _INFINITE_LISTS; whether it met any of those."""
    if path in _INFINITE_LISTS and isinstance(value, (list, tuple)):
        for v in value:
            if isinstance(v, float) and math.isnan(v) and path not in _NAN_LISTS:
                raise InvalidArgumentError("config: key '%s' holds NaN; expected numbers" % path)
        return any(isinstance(v, float) and not math.isfinite(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError("config: key '%s' is %r; expected a finite float (configs are JSON)" % (path, value))
    infinite = False
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidArgumentError("config: key %r in '%s' is not a string" % (k, path))
            infinite = _check_finite(v, k) or infinite
    elif isinstance(value, (list, tuple)):
        for v in value:
            infinite = _check_finite(v, path) or infinite
    return infinite


def _as_json(value):
    """json.dumps's fallback: a NumPy array or scalar or a kiln Tensor as its list or number."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


class _Handle:
    """Owns a kiln_config handle for the length of one call."""

    def __init__(self, ptr):
        self.ptr = ptr

    def __enter__(self):
        return self.ptr

    def __exit__(self, *exc):
        L.kiln_config_free(self.ptr)
        self.ptr = None


def to_c(config):
    """A new kiln_config handle (a context manager that frees it) from a dict (or None: empty)."""
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise InvalidArgumentError("config: expected a dict; got %s" % type(config).__name__)
    infinite = _check_finite(config, "")
    try:
        text = json.dumps(config, allow_nan=infinite, default=_as_json)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError("config: cannot be written as JSON: %s" % e)
    out = ctypes.c_void_p()
    check(L.kiln_config_from_json(ctypes.byref(out), text.encode("utf-8")))
    return _Handle(out.value)


def from_c(handle):
    """A dict from a borrowed kiln_config handle."""
    out = ctypes.c_void_p()
    check(L.kiln_config_to_json(ctypes.byref(out), handle, -1))
    try:
        return json.loads(ctypes.string_at(out.value).decode("utf-8"))
    finally:
        L.kiln_string_free(out.value)


def round_trip(config):
    """The dict after a pass through C (what a layer built from it will see); used by tests."""
    with to_c(config) as h:
        return from_c(h)
