"""Tensor: an immutable value owned through a C handle; conversion from/to Python and NumPy."""
import ctypes
import numbers
import struct

from . import _lib
from ._copy import Immutable as _Immutable
from .errors import InvalidArgumentError, check

try:  # NumPy is optional: used for interop when it imports
    import numpy as _np
except ImportError:  # pragma: no cover - exercised on machines without numpy
    _np = None

L = _lib.lib

float32, bfloat16, int32, int64, uint8, bool_, float64 = (
    "float32", "bfloat16", "int32", "int64", "uint8", "bool", "float64")
_DTYPE_CODE = {float32: 1, bfloat16: 2, int32: 3, int64: 4, uint8: 5, bool_: 6, float64: 7}
_CODE_DTYPE = {v: k for k, v in _DTYPE_CODE.items()}
_STRUCT = {float32: "f", int32: "i", int64: "q", uint8: "B", bool_: "?", bfloat16: "H", float64: "d"}
_ITEMSIZE = {float32: 4, bfloat16: 2, int32: 4, int64: 8, uint8: 1, bool_: 1, float64: 8}


def dtype_code(dtype, op="dtype"):
    """The C code of a dtype given by name, C code, NumPy dtype or Python type; errors name `op`."""
    if isinstance(dtype, int) and dtype in _CODE_DTYPE:
        return dtype
    name = getattr(dtype, "name", getattr(dtype, "__name__", dtype))
    name = {"bool": bool_, "float": float32, "int": int32}.get(str(name), str(name))
    if name not in _DTYPE_CODE:
        raise InvalidArgumentError("%s: unknown dtype %r; expected one of %s" % (op, dtype, ", ".join(_DTYPE_CODE)))
    return _DTYPE_CODE[name]


def fits_int64(v):
    """Whether the int v lies in int64's range."""
    return -2 ** 63 <= v < 2 ** 63


def checked_int64(v, what, op=None):
    """An integer argument as an int when int64 holds it. ctypes would wrap a larger one silently
    (2**64 + 3 would become 3), so that is an InvalidArgumentError naming the argument."""
    v = int(v)
    if not fits_int64(v):
        raise InvalidArgumentError("%s%s is %d, which int64 cannot hold; expected -2**63 to 2**63 - 1"
                                   % (op + ": " if op else "", what, v))
    return v


def int64_array(values, what, op=None):
    """A ctypes int64 array of values (at least one slot), each checked by checked_int64."""
    values = [checked_int64(v, what, op) for v in values]
    return (ctypes.c_int64 * max(len(values), 1))(*values)


def dims_array(shape):
    """A shape (an int, a sequence of ints or a 1-D integer Tensor) as a ctypes int64 array and its rank.
    A dimension that is not an integer (2.5, "3") is a TypeError, as TF's."""
    if isinstance(shape, numbers.Integral):
        shape = [shape]
    elif isinstance(shape, Tensor):
        shape = shape.tolist()
    elif isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError("shape must be an integer or a list of integers; got %r (%s)"
                        % (shape, type(shape).__name__))
    dims = []
    for d in shape:
        if not isinstance(d, numbers.Integral):
            raise TypeError("shape must be a list of integers; got %r (%s) in %r" % (d, type(d).__name__, shape))
        dims.append(checked_int64(d, "a dimension of the shape"))
    return (ctypes.c_int64 * max(len(dims), 1))(*dims), len(dims)


def _new(fn, *args):
    out = ctypes.c_void_p()
    check(fn(ctypes.byref(out), *args))
    return Tensor._adopt(out.value)


def _from_bytes(data, dtype, shape):
    """A tensor of dtype (a name) and shape holding data (little-endian bytes): an unpickled tensor."""
    dims, rank = dims_array(list(shape))
    buf = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
    return _new(L.kiln_tensor_create, dtype_code(dtype), dims, rank, buf, len(data))


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


class TensorShape(tuple):
    """A tensor's shape: a tuple of ints (None for an unknown dim) with tf.TensorShape's as_list(),
    rank / ndims and num_elements(); equal to a tuple or list of the same dims."""

    __slots__ = ()

    def __new__(cls, dims=()):
        return tuple.__new__(cls, (None if d is None else int(d) for d in dims))

    def as_list(self):
        return list(self)

    @property
    def rank(self):
        return len(self)

    ndims = rank

    def num_elements(self):
        """The number of elements, or None when a dim is unknown."""
        n = 1
        for d in self:
            if d is None:
                return None
            n *= d
        return n

    def is_fully_defined(self):
        return all(d is not None for d in self)

    def __eq__(self, other):
        if isinstance(other, list):
            other = tuple(other)
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = tuple.__hash__


class Tensor(_Immutable):
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
    def _keras_mask(self):
        """Keras's attribute: the mask a masking layer gave this output (None when it has none),
        which the next layer called on it, losses and metrics use."""
        out = ctypes.c_void_p()
        check(L.kiln_tensor_get_keras_mask(ctypes.byref(out), self._h))
        return Tensor._adopt(out.value) if out.value else None

    @_keras_mask.setter
    def _keras_mask(self, mask):
        # The same value carrying the mask, under this object: what the C side then sees.
        m = None if mask is None else (mask if isinstance(mask, Tensor) else constant(mask))
        out = ctypes.c_void_p()
        check(L.kiln_tensor_with_keras_mask(ctypes.byref(out), self._h, m))
        old, self._h = self._h, out.value
        L.kiln_tensor_free(old)

    @property
    def dtype(self):
        return _CODE_DTYPE[L.kiln_tensor_get_dtype(self._h)]

    @property
    def shape(self):
        rank = L.kiln_tensor_get_rank(self._h)
        dims = L.kiln_tensor_get_dims(self._h)
        return TensorShape(dims[i] for i in range(rank))

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

    def __reduce_ex__(self, protocol):
        """A pickle holds the dtype, the shape and the bytes; a copy is the tensor itself."""
        return (_from_bytes, (self._bytes(), str(self.dtype), tuple(self.shape)))

    def tolist(self):
        dt = self.dtype
        raw = self._bytes()
        flat = list(struct.unpack("<%d%s" % (self.size, _STRUCT[dt]), raw))
        if dt == bfloat16:
            flat = [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in flat]
        shape = self.shape
        if not shape:
            return flat[0]

        # Built from the dims, so that a 0 dim keeps the rows before it: (3, 0) -> [[], [], []].
        def nest(offset, dims):
            if len(dims) == 1:
                return flat[offset:offset + dims[0]]
            step = 1
            for d in dims[1:]:
                step *= d
            return [nest(offset + i * step, dims[1:]) for i in range(dims[0])]
        return nest(0, shape)

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

    # The operators (+, <, &, ~, ...) are set below the class: their ops live in ops.py, which imports this module.
    __hash__ = object.__hash__


def _ops():
    from . import ops
    return ops


def _forward(op):
    return lambda self, *other: getattr(_ops(), op)(self, *other)


def _reflected(op):
    return lambda self, other: getattr(_ops(), op)(other, self)


# Python operators -> ops: these also have reflected forms (__radd__ for 2 + t) ...
for _name, _op in {"add": "add", "sub": "sub", "mul": "mul", "truediv": "div", "pow": "pow", "matmul": "matmul",
                   "and": "logical_and", "or": "logical_or", "xor": "logical_xor"}.items():
    setattr(Tensor, "__%s__" % _name, _forward(_op))
    setattr(Tensor, "__r%s__" % _name, _reflected(_op))
# ... these do not (Python reflects a comparison itself: 2 < t calls t > 2).
for _name, _op in {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal", "neg": "neg",
                   "abs": "abs", "invert": "logical_not"}.items():
    setattr(Tensor, "__%s__" % _name, _forward(_op))


_INT_NAMES = ("int32", "int64", "uint8")


def _is_array_like(v):
    return isinstance(v, Tensor) or hasattr(v, "_kiln_value") or (_np is not None and isinstance(v, _np.ndarray))


def _holds_arrays(value):
    """Whether a nested list holds Tensors, Variables or NumPy arrays (tf.constant packs them)."""
    return isinstance(value, (list, tuple)) and any(_is_array_like(v) or _holds_arrays(v) for v in value)


def _no_fraction(value, name):
    """As tf.constant: a float never converts to an integer dtype (TypeError), even 2.0."""
    raise TypeError("constant: cannot convert %r to %s: a float does not convert to an integer dtype (as "
                    "tf.constant); round or cast it first" % (value, name))


def _reshaped(t, shape):
    """tf.constant(tensor, shape=...): the same elements in shape, or one element filling it."""
    shape = [int(d) for d in shape]
    count = 1
    for d in shape:
        count *= d
    if t.size == count:
        return _ops().reshape(t, shape)
    if t.size == 1:
        return _ops().broadcast_to(_ops().reshape(t, []), shape)
    raise InvalidArgumentError("constant: a tensor of shape %s has %d elements; it does not fill shape %s (%d "
                               "elements) and is not a single value to repeat" % (list(t.shape), t.size, shape,
                                                                                   count))


def _packed(value, dtype):
    """tf.constant([t1, t2, ...]) for Tensors, Variables and NumPy arrays: stacked along a new axis 0."""
    parts = [_packed(v, dtype) if isinstance(v, (list, tuple)) and _holds_arrays(v) else v for v in value]
    like = next((p for p in parts if _is_array_like(p)), None)
    like = constant(like, dtype) if like is not None else None
    ts = [constant(p, dtype) if dtype is not None or _is_array_like(p) else _as_tensor(p, like) for p in parts]
    first = ts[0]
    for i, t in enumerate(ts):
        if t.shape != first.shape:
            raise InvalidArgumentError("constant: element %d of the list has shape %s and element 0 %s; packing "
                                       "them needs one shape" % (i, list(t.shape), list(first.shape)))
        if t.dtype != first.dtype:
            raise InvalidArgumentError("constant: element %d of the list is %s and element 0 %s; packing them needs "
                                       "one dtype (cast first, or give dtype=)" % (i, t.dtype, first.dtype))
    return _ops().stack(ts, 0)


def constant(value, dtype=None, shape=None, name=None):  # noqa: ARG001 - TF's name
    """A tensor from a Tensor, a NumPy array, a Python scalar or nested lists (tf.constant). As TF's: a
    float value does not convert to an integer dtype (TypeError); shape reshapes a value with that many
    elements or fills it with a single value; a list of tensors / arrays is stacked."""
    return _constant(value, dtype, shape, True)


def _constant(value, dtype, shape, strict):
    """constant; strict=False lets integer-valued floats convert to an integer dtype (operators
    mixing a Python number with an integer tensor: `t + 2.0`)."""
    if isinstance(value, Tensor) or hasattr(value, "_kiln_value"):  # a Tensor or a Variable
        t = value if isinstance(value, Tensor) else value._kiln_value()
        if dtype is not None and dtype_code(dtype) != L.kiln_tensor_get_dtype(t._h):
            t = _ops().cast(t, dtype)
        return t if shape is None else _reshaped(t, shape)
    if _holds_arrays(value):
        t = _packed(value, dtype)
        return t if shape is None else _reshaped(t, shape)
    if _np is not None and isinstance(value, (_np.ndarray, _np.generic)):
        arr = _np.asarray(value)
        if dtype is None:
            name = {"bool": bool_}.get(arr.dtype.name, arr.dtype.name)  # float64 stays float64, as tf.constant
            if name not in _DTYPE_CODE:
                raise InvalidArgumentError("constant: NumPy dtype %s is not supported; expected float32, float64, "
                                           "int32, int64, uint8 or bool" % arr.dtype)
            dtype = name
        code = dtype_code(dtype, "constant")
        name = _CODE_DTYPE[code]
        if name == bfloat16:
            return _ops().cast(constant(arr.astype(_np.float32), shape=shape), bfloat16)
        if name in _INT_NAMES and arr.dtype.kind in "fc":
            if strict or not _np.all(_np.mod(arr, 1) == 0):
                _no_fraction(value, name)
        arr = arr.astype({bool_: _np.bool_}.get(name, name), copy=False)
        if shape is not None:
            shape = [int(d) for d in shape]
            if arr.size == 1 and arr.size != int(_np.prod(shape, dtype=_np.int64)):
                arr = _np.full(shape, arr.reshape(()), dtype=arr.dtype)  # a single value fills the shape
            elif arr.size != int(_np.prod(shape, dtype=_np.int64)):
                raise InvalidArgumentError("constant: %d values do not fill shape %s (%d elements)"
                                           % (arr.size, shape, int(_np.prod(shape, dtype=_np.int64))))
            arr = arr.reshape(shape)
        if not arr.flags.c_contiguous:  # not ascontiguousarray: it turns a 0-d array into shape (1,)
            arr = arr.copy(order="C")
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
            dtype = int32 if all(-2 ** 31 <= v < 2 ** 31 for v in flat) else int64  # as TF: int64 when needed
        else:
            dtype = float32
    name = _CODE_DTYPE[dtype_code(dtype, "constant")]
    count = 1
    for d in shape:
        count *= int(d)
    if count != len(flat):
        raise InvalidArgumentError("constant: %d values do not fill shape %s (%d elements)"
                                   % (len(flat), list(shape), count))
    if name == bfloat16:
        return _ops().cast(constant(flat, float32, shape), bfloat16)
    if name in _INT_NAMES:
        for v in flat:
            if isinstance(v, numbers.Number) and not isinstance(v, numbers.Integral):  # Python or NumPy float
                if strict or not isinstance(v, numbers.Real) or not float(v).is_integer():
                    _no_fraction(value, name)
    fmt = _STRUCT[name]
    try:
        data = struct.pack("<%d%s" % (len(flat), fmt), *[bool(v) if name == bool_ else
                                                          (float(v) if name in (float32, float64) else int(v)) for v in flat])
    except (struct.error, TypeError, ValueError, OverflowError) as e:
        raise InvalidArgumentError("constant: cannot convert %r to %s: %s" % (value, name, e))
    dims, rank = dims_array(shape)
    buf = ctypes.create_string_buffer(data, max(len(data), 1))
    return _new(L.kiln_tensor_create, dtype_code(name), dims, rank, buf, len(data))


def convert_to_tensor(value, dtype=None):
    return constant(value, dtype)


def _as_tensor(value, like=None):
    """Operands of ops: Tensors pass through; Python numbers (and lists of them) take the other operand's dtype."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "_kiln_value"):
        return value._kiln_value()
    if (like is not None and _np is not None and isinstance(value, (_np.ndarray, _np.generic))
            and _np.asarray(value).dtype.kind == "f" and like.dtype in (float32, bfloat16, float64)):
        # As TF's operators: a NumPy float array beside a floating tensor converts to its dtype.
        return constant(value, like.dtype)
    if like is not None and isinstance(value, (numbers.Number, list, tuple)):
        flat, _ = _flatten(value)
        if flat and all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in flat):
            dt = like.dtype
            if dt not in (float32, bfloat16, float64) and not all(isinstance(v, numbers.Integral) or float(v).is_integer()
                                                         for v in flat):
                # As TF: a fraction never silently truncates to the integer tensor's dtype.
                raise InvalidArgumentError("cannot convert %r to the %s of the other operand without losing the "
                                           "fraction; cast one of them first" % (value, dt))
            return _constant(value, dt, None, False)
    return constant(value)


__all__ = ["Tensor", "TensorShape", "constant", "convert_to_tensor", "float32", "bfloat16", "int32", "int64", "uint8", "bool_",
           "float64"]
