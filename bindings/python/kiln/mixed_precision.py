"""keras.mixed_precision over the C ABI: dtype policies (kiln.mixed_precision, kiln.keras.mixed_precision).

    kiln.mixed_precision.set_global_policy("mixed_bfloat16")
    model = kiln.Sequential([kiln.layers.Dense(64, activation="relu"),
                             kiln.layers.Dense(10, dtype="float32")])   # Keras: the last layer in float32

A policy names a layer's compute dtype and variable dtype. "mixed_bfloat16" computes in bfloat16
and keeps weights (so gradients and optimizer state) in float32; "float32", "float64" and
"bfloat16" use one dtype. A layer made without dtype= takes the global policy in force then.
bfloat16 runs natively where the CPU has it and is emulated (same values, slower) elsewhere;
"float16" and "mixed_float16" raise UnimplementedError (kiln has no float16).
"""
import ctypes

from . import _lib
from .errors import check
from .tensor import _CODE_DTYPE

L = _lib.lib

__all__ = ["DTypePolicy", "Policy", "set_global_policy", "global_policy", "set_dtype_policy", "dtype_policy"]


class DTypePolicy:
    """keras.DTypePolicy(name): name, compute_dtype and variable_dtype (dtype names, as Keras 3).
    name=None takes the global policy's name."""

    def __init__(self, name=None):
        if name is None:
            name = global_policy().name
        if not isinstance(name, str):
            raise TypeError("'name' must be a string, such as 'mixed_bfloat16'. Received: name=%r (of type %s)"
                            % (name, type(name)))
        compute, variable = ctypes.c_int(), ctypes.c_int()
        check(L.kiln_dtype_policy_get_dtypes(ctypes.byref(compute), ctypes.byref(variable), name.encode()))
        self._name = name
        self._compute_dtype = _CODE_DTYPE[compute.value]
        self._variable_dtype = _CODE_DTYPE[variable.value]

    @property
    def name(self):
        return self._name

    @property
    def compute_dtype(self):
        return self._compute_dtype

    @property
    def variable_dtype(self):
        return self._variable_dtype

    def get_config(self):
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other._name == self._name

    def __hash__(self):
        return hash(self._name)

    def __repr__(self):
        return '<DTypePolicy "%s">' % self._name


Policy = DTypePolicy  # Keras 2's keras.mixed_precision.Policy


def set_global_policy(policy):
    """keras.mixed_precision.set_global_policy: a name or a DTypePolicy (None restores "float32").
    Layers made afterwards without dtype= take it; layers already made keep theirs."""
    if policy is None:
        policy = "float32"
    name = policy.name if isinstance(policy, DTypePolicy) else policy
    if not isinstance(name, str):
        raise TypeError("set_global_policy: expected a policy name or a DTypePolicy; got %r" % (policy,))
    check(L.kiln_set_global_dtype_policy(name.encode()))


def global_policy():
    """keras.mixed_precision.global_policy(): the DTypePolicy layers take by default."""
    out = ctypes.c_void_p()
    check(L.kiln_get_global_dtype_policy(ctypes.byref(out)))
    try:
        name = ctypes.string_at(out.value).decode()
    finally:
        L.kiln_string_free(out.value)
    return DTypePolicy(name)


# Keras 3's keras.config names.
set_dtype_policy = set_global_policy
dtype_policy = global_policy


def _layer_dtype_value(dtype, op):
    """A layer's dtype= as its config's "dtype": a policy name (a DTypePolicy, a policy name, or a
    dtype given any way kiln takes dtypes)."""
    if isinstance(dtype, DTypePolicy):
        return dtype.name
    if isinstance(dtype, dict):  # a serialized DTypePolicy: C checks it
        return dtype
    if isinstance(dtype, str):
        return dtype
    from .tensor import dtype_code
    return _CODE_DTYPE[dtype_code(dtype, op)]
