"""Tensor: an immutable value owned through a C handle; conversion from/to Python and NumPy."""
import ctypes
import numbers
import struct

from . import _lib
from .errors import InvalidArgumentError, check

try:  # NumPy is optional: used for interop when it imports
    import numpy as _np
except ImportError:  # pragma: no cover - exercised on machines without numpy
    _np = None

L = _lib.lib

float32, bfloat16, int32, int64, uint8, bool_ = "float32", "bfloat16", "int32", "int64", "uint8", "bool"
_DTYPE_CODE = {float32: 1, bfloat16: 2, int32: 3, int64: 4, uint8: 5, bool_: 6}
_CODE_DTYPE = {v: k for k, v in _DTYPE_CODE.items()}
_STRUCT = {float32: "f", int32: "i", int64: "q", uint8: "B", bool_: "?", bfloat16: "H"}
_ITEMSIZE = {float32: 4, bfloat16: 2, int32: 4, int64: 8, uint8: 1, bool_: 1}


def dtype_code(dtype):
    if isinstance(dtype, int) and dtype in _CODE_DTYPE:
        return dtype
    name = getattr(dtype, "name", dtype)
    name = {"bool": bool_, "float": float32, "int": int32}.get(str(name), str(name))
    if name not in _DTYPE_CODE:
        raise InvalidArgumentError("unknown dtype %r; expected one of %s" % (dtype, ", ".join(_DTYPE_CODE)))
    return _DTYPE_CODE[name]


def dims_array(shape):
    shape = [int(d) for d in shape]
    return (ctypes.c_int64 * max(len(shape), 1))(*shape), len(shape)


def _new(fn, *args):
    out = ctypes.c_void_p()
    check(fn(ctypes.byref(out), *args))
    return Tensor._adopt(out.value)


def _flatten(value):
    """Nested lists/tuples -> (flat list, shape); raises on ragged input."""
    if isinstance(value, (list, tuple)):
        if not value:
            return [], (0,)
        parts = [_flatten(v) for v in value]
        inner = parts[0][1]
        for _, s in parts:
            if s != inner:
                raise InvalidArgumentError("constant: ragged nested list; every row must have shape %s" % (inner,))
        return [x for p, _ in parts for x in p], (len(value),) + inner
    return [value], ()


class Tensor:
    """An immutable tensor value (like tf.Tensor in eager mode)."""

    __slots__ = ("_h", "__weakref__")
    __array_priority__ = 100  # numpy defers to our operators

    def __init__(self, *_):
        raise TypeError("create tensors with kiln.constant(...), kiln.zeros(...) or an op")

    @classmethod
    def _adopt(cls, handle):
        t = object.__new__(cls)
        t._h = handle
        return t

    @property
    def _as_parameter_(self):
        # Passing the Tensor itself (not its handle) to a C call keeps it alive during the call.
        return ctypes.c_void_p(self._h)

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            L.kiln_tensor_free(h)
            self._h = None

    # ---- properties ----
    @property
    def dtype(self):
        return _CODE_DTYPE[L.kiln_tensor_get_dtype(self._h)]

    @property
    def shape(self):
        rank = L.kiln_tensor_get_rank(self._h)
        dims = L.kiln_tensor_get_dims(self._h)
        return tuple(dims[i] for i in range(rank))

    @property
    def ndim(self):
        return L.kiln_tensor_get_rank(self._h)

    @property
    def size(self):
        return L.kiln_tensor_get_num_elements(self._h)

    def __len__(self):
        s = self.shape
        if not s:
            raise TypeError("len() of a scalar tensor")
        return s[0]

    # ---- data out ----
    def _bytes(self):
        n = L.kiln_tensor_get_byte_size(self._h)
        buf = (ctypes.c_char * max(n, 1))()
        check(L.kiln_tensor_copy_to(self._h, buf, n))
        return bytes(buf)[:n]

    def numpy(self):
        """A NumPy copy (bfloat16 comes back as float32); a nested list when NumPy is absent."""
        if _np is None:
            return self.tolist()
        dt = self.dtype
        raw = self._bytes()
        if dt == bfloat16:
            bits = _np.frombuffer(raw, dtype=_np.uint16).astype(_np.uint32) << 16
            return bits.view(_np.float32).reshape(self.shape).copy()
        npdt = {bool_: _np.bool_}.get(dt, dt)
        return _np.frombuffer(raw, dtype=npdt).reshape(self.shape).copy()

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a.astype(dtype) if dtype is not None else a

    def tolist(self):
        dt = self.dtype
        raw = self._bytes()
        flat = list(struct.unpack("<%d%s" % (self.size, _STRUCT[dt]), raw))
        if dt == bfloat16:
            flat = [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in flat]
        shape = self.shape
        for d in reversed(shape[1:]):
            flat = [flat[i:i + d] for i in range(0, len(flat), d)] if d else [[] for _ in range(len(flat))]
        return flat if shape else flat[0]

    def item(self):
        if self.size != 1:
            raise InvalidArgumentError("item(): tensor has %d elements; expected 1" % self.size)
        v = self.tolist()
        while isinstance(v, list):
            v = v[0]
        return v

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def __repr__(self):
        return "<kiln.Tensor shape=%s dtype=%s numpy=%r>" % (self.shape, self.dtype, self.numpy())

    # ---- operators (defined in ops to avoid a cycle) ----
    def __add__(self, o): return _ops().add(self, o)
    def __radd__(self, o): return _ops().add(o, self)
    def __sub__(self, o): return _ops().sub(self, o)
    def __rsub__(self, o): return _ops().sub(o, self)
    def __mul__(self, o): return _ops().mul(self, o)
    def __rmul__(self, o): return _ops().mul(o, self)
    def __truediv__(self, o): return _ops().div(self, o)
    def __rtruediv__(self, o): return _ops().div(o, self)
    def __pow__(self, o): return _ops().pow(self, o)
    def __rpow__(self, o): return _ops().pow(o, self)
    def __matmul__(self, o): return _ops().matmul(self, o)
    def __rmatmul__(self, o): return _ops().matmul(o, self)
    def __neg__(self): return _ops().neg(self)
    def __abs__(self): return _ops().abs(self)
    def __lt__(self, o): return _ops().less(self, o)
    def __le__(self, o): return _ops().less_equal(self, o)
    def __gt__(self, o): return _ops().greater(self, o)
    def __ge__(self, o): return _ops().greater_equal(self, o)
    __hash__ = object.__hash__


def _ops():
    from . import ops
    return ops


def constant(value, dtype=None, shape=None):
    """A tensor from a Tensor, a NumPy array, a Python scalar or nested lists (tf.constant)."""
    if isinstance(value, Tensor):
        return value if dtype is None or dtype_code(dtype) == L.kiln_tensor_get_dtype(value._h) else \
            _ops().cast(value, dtype)
    if hasattr(value, "_kiln_value"):  # a Variable
        return constant(value._kiln_value(), dtype)
    if _np is not None and isinstance(value, (_np.ndarray, _np.generic)):
        arr = _np.asarray(value)
        if dtype is None:
            name = {"float64": float32, "bool": bool_}.get(arr.dtype.name, arr.dtype.name)
            if name not in _DTYPE_CODE:
                raise InvalidArgumentError("constant: NumPy dtype %s is not supported; expected float32, int32, "
                                           "int64, uint8 or bool" % arr.dtype)
            dtype = name
        code = dtype_code(dtype)
        name = _CODE_DTYPE[code]
        if name == bfloat16:
            return _ops().cast(constant(arr.astype(_np.float32)), bfloat16)
        arr = _np.ascontiguousarray(arr.astype({bool_: _np.bool_}.get(name, name), copy=False))
        if shape is not None:
            arr = arr.reshape(shape)
        dims, rank = dims_array(arr.shape)
        return _new(L.kiln_tensor_create, code, dims, rank, arr.ctypes.data_as(ctypes.c_void_p), arr.nbytes)
    flat, inferred = _flatten(value)
    if shape is not None:
        shape = tuple(shape)
        if len(flat) == 1 and inferred == ():
            n = 1
            for d in shape:
                n *= d
            flat = flat * n
    else:
        shape = inferred
    if dtype is None:
        if all(isinstance(v, bool) for v in flat) and flat:
            dtype = bool_
        elif all(isinstance(v, numbers.Integral) for v in flat) and flat:
            dtype = int32
        else:
            dtype = float32
    name = _CODE_DTYPE[dtype_code(dtype)]
    if name == bfloat16:
        return _ops().cast(constant(flat, float32, shape), bfloat16)
    fmt = _STRUCT[name]
    try:
        data = struct.pack("<%d%s" % (len(flat), fmt), *[bool(v) if name == bool_ else
                                                          (float(v) if name == float32 else int(v)) for v in flat])
    except (struct.error, TypeError, ValueError) as e:
        raise InvalidArgumentError("constant: cannot convert %r to %s: %s" % (value, name, e))
    dims, rank = dims_array(shape)
    buf = ctypes.create_string_buffer(data, max(len(data), 1))
    return _new(L.kiln_tensor_create, dtype_code(name), dims, rank, buf, len(data))


def convert_to_tensor(value, dtype=None):
    return constant(value, dtype)


def _as_tensor(value, like=None):
    """Operands of ops: Tensors pass through; Python numbers take the other operand's dtype."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "_kiln_value"):
        return value._kiln_value()
    if like is not None and isinstance(value, numbers.Number) and not isinstance(value, bool):
        return constant(value, like.dtype)
    return constant(value)


__all__ = ["Tensor", "constant", "convert_to_tensor", "float32", "bfloat16", "int32", "int64", "uint8", "bool_"]
