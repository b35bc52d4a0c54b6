"""Losses, extra reductions, scans, floor division and einsum over the C API (names as TensorFlow's)."""
import collections as _collections
import ctypes
import numbers as _numbers

from . import _lib
from .errors import InvalidArgumentError, check
from .ops import (_axes, _index_type, _int, _pair, cast, equal, gather, maximum, mul, not_equal, reshape, rsqrt,
                  slice as _slice, square, stop_gradient, sub)
from .tensor import Tensor, _as_tensor, _new, bfloat16, constant, dtype_code, float32, float64, int32, int64

L = _lib.lib


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    """tf.nn.sparse_softmax_cross_entropy_with_logits: per-example losses; labels are class indices."""
    return _new(L.kiln_sparse_softmax_cross_entropy_with_logits, _as_tensor(labels), _as_tensor(logits))


def softmax_cross_entropy_with_logits(labels, logits, axis=-1):
    """tf.nn.softmax_cross_entropy_with_logits: per-example losses; labels are distributions along axis."""
    logits = _as_tensor(logits)
    return _new(L.kiln_softmax_cross_entropy_with_logits, _as_tensor(labels, logits), logits,
                _int(axis, "axis", "softmax_cross_entropy_with_logits"))


def ctc_loss(labels, logits, label_length, logit_length, logits_time_major=True, unique=None, blank_index=None,
             name=None):
    """tf.nn.ctc_loss with dense labels [batch, max_label_length]: per-sample -log p(labels | logits).

    logits are unnormalized, [frames, batch, classes] (logits_time_major) or [batch, frames, classes];
    sample b uses its first label_length[b] labels and logit_length[b] frames. blank_index (None: 0;
    negative counts from the end) names the blank class. A sample no alignment fits gives +inf (and a
    NaN gradient). `unique` is TF's speed hint and changes nothing here; `name` is accepted for TF's
    signature."""
    del unique, name
    for arg, value in (("labels", labels), ("logits", logits), ("label_length", label_length),
                       ("logit_length", logit_length)):
        if value is None:
            raise InvalidArgumentError("ctc_loss: %s is None; dense labels need labels, logits, label_length and "
                                       "logit_length" % arg)
    blank = 0 if blank_index is None else _int(blank_index, "blank_index", "ctc_loss")
    return _new(L.kiln_ctc_loss, _as_tensor(labels), _as_tensor(logits), _as_tensor(label_length),
                _as_tensor(logit_length), bool(logits_time_major), blank)


def keras_ctc_loss(target, output, target_length, output_length, mask_index=0):
    """keras.ops.ctc_loss: ctc_loss of batch-major logits [batch, frames, classes], float targets
    truncated to int32 as Keras casts them."""
    target = _as_tensor(target)
    if target.dtype in (float32, float64, bfloat16):
        target = cast(target, int32)
    return ctc_loss(target, output, target_length, output_length, logits_time_major=False, blank_index=mask_index)


def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1, merge_repeated=True,
               mask_index=0):
    """keras.ops.ctc_decode: (decoded int32 [paths, batch, frames] padded with -1, scores [batch, paths]).

    inputs are logits [batch, frames, classes]; strategy "greedy" (one path; scores are minus the sum
    of each frame's largest logit) or "beam_search" (top_paths of TF's beam search with beam_width
    beams; scores are log-probabilities). mask_index is the blank (None: the last class)."""
    if inputs is None or sequence_lengths is None:
        raise InvalidArgumentError("ctc_decode: inputs and sequence_lengths are required, got None")
    if not isinstance(strategy, str):
        raise InvalidArgumentError("ctc_decode: strategy must be 'greedy' or 'beam_search', got %r" % (strategy,))
    blank = -1 if mask_index is None else _int(mask_index, "mask_index", "ctc_decode")
    outs = [ctypes.c_void_p(), ctypes.c_void_p()]
    check(L.kiln_ctc_decode(ctypes.byref(outs[0]), ctypes.byref(outs[1]), _as_tensor(inputs),
                            _as_tensor(sequence_lengths), strategy.encode(),
                            _int(beam_width, "beam_width", "ctc_decode"), _int(top_paths, "top_paths", "ctc_decode"),
                            bool(merge_repeated), blank))
    return Tensor._adopt(outs[0].value), Tensor._adopt(outs[1].value)


def sigmoid_cross_entropy_with_logits(labels, logits):
    """tf.nn.sigmoid_cross_entropy_with_logits: elementwise, labels and logits of one shape."""
    labels, logits = _pair(labels, logits)
    return _new(L.kiln_sigmoid_cross_entropy_with_logits, labels, logits)


def _reduce(name):
    fn = getattr(L, "kiln_" + name)

    def op(input_tensor, axis=None, keepdims=False):
        x = _as_tensor(input_tensor)
        ax, n = _axes(axis, name)
        if axis is not None and n == 0:
            return reshape(x, x.shape)  # TF: an empty axis list reduces nothing
        return _new(fn, x, ax, n, bool(keepdims))
    op.__name__ = name
    op.__doc__ = "tf.math.%s over axis (None: all axes)." % name
    return op


reduce_prod, reduce_any, reduce_all = _reduce("reduce_prod"), _reduce("reduce_any"), _reduce("reduce_all")
reduce_logsumexp = _reduce("reduce_logsumexp")


def argmin(input, axis=None, output_type="int64"):  # noqa: A002
    """tf.math.argmin: index of the smallest value along axis (None: 0, as TF's); int64 (or
    output_type int32); the first index on ties."""
    code = _index_type(output_type, "argmin")
    out = _new(L.kiln_argmin, _as_tensor(input), 0 if axis is None else _int(axis, "axis", "argmin"))
    return out if code == dtype_code("int64") else cast(out, output_type)


def bias_add(value, bias, data_format=None):
    """tf.nn.bias_add: bias [C] added along the last axis (channels last only)."""
    if data_format not in (None, "NHWC", "NWC", "NDHWC", "N...C"):
        raise InvalidArgumentError("bias_add: data_format %r is not supported; kiln is channels last (NHWC)"
                                   % (data_format,))
    value = _as_tensor(value)
    return _new(L.kiln_bias_add, value, _as_tensor(bias, value))


def moments(x, axes, shift=None, keepdims=False):
    """tf.nn.moments: (mean, variance) over axes; variance is biased. shift is ignored, as in TF2."""
    del shift
    x = _as_tensor(x)
    ax, n = _axes(axes, "moments")
    if axes is not None and n == 0:
        # TF: an empty axis list reduces nothing: the mean is x, the variance (x - x)^2.
        mean = reshape(x, x.shape)
        return mean, square(sub(x, stop_gradient(mean)))
    m, v = ctypes.c_void_p(), ctypes.c_void_p()
    check(L.kiln_moments(ctypes.byref(m), ctypes.byref(v), x, ax, n, bool(keepdims)))
    return Tensor._adopt(m.value), Tensor._adopt(v.value)


def l2_normalize(x, axis=None, epsilon=1e-12):
    """tf.math.l2_normalize: x / sqrt(max(sum(x**2, axis), epsilon)); axis None: all axes."""
    x = _as_tensor(x)
    ax, n = _axes(axis, "l2_normalize")
    epsilon = float(epsilon)
    if axis is not None and n == 0 and epsilon >= 0 and x.dtype in ("float32", "float64"):
        # TF: an empty axis list sums nothing, so each element is divided by its own magnitude.
        return mul(x, rsqrt(maximum(square(x), constant(epsilon, x.dtype))))
    if axis is not None and n == 0 and x.dtype == "bfloat16":
        return cast(l2_normalize(cast(x, "float32"), axis, epsilon), "bfloat16")
    return _new(L.kiln_l2_normalize, x, ax, n, epsilon)


def cumsum(x, axis=0, exclusive=False, reverse=False):
    """tf.math.cumsum."""
    return _new(L.kiln_cumsum, _as_tensor(x), _int(axis, "axis", "cumsum"), bool(exclusive), bool(reverse))


def cumprod(x, axis=0, exclusive=False, reverse=False):
    """tf.math.cumprod."""
    return _new(L.kiln_cumprod, _as_tensor(x), _int(axis, "axis", "cumprod"), bool(exclusive), bool(reverse))


TopKV2 = _collections.namedtuple("TopKV2", ["values", "indices"])


def top_k(input, k=1, sorted=True):  # noqa: A002
    """tf.math.top_k: (values, indices) of the k largest entries along the last axis; ties to the lower index."""
    v, i = ctypes.c_void_p(), ctypes.c_void_p()
    check(L.kiln_top_k(ctypes.byref(v), ctypes.byref(i), _as_tensor(input), _int(k, "k", "top_k"), bool(sorted)))
    return TopKV2(Tensor._adopt(v.value), Tensor._adopt(i.value))


def floordiv(x, y):
    """tf.math.floordiv (Python's //): floor(x / y); integers round toward -inf; an integer zero divisor raises."""
    x, y = _pair(x, y)
    return _new(L.kiln_floordiv, x, y)


def floormod(x, y):
    """tf.math.floormod (Python's %): x - floor(x / y) * y, with the sign of y."""
    x, y = _pair(x, y)
    return _new(L.kiln_floormod, x, y)


def truediv(x, y):
    """tf.math.truediv (Python's /): int32 and int64 divide as float64, uint8 as float32, floats as div."""
    x, y = _pair(x, y)
    return _new(L.kiln_truediv, x, y)


def einsum(equation, *inputs):
    """tf.einsum for one or two operands (e.g. 'bqhd,bkhd->bhqk', '...ij,...jk->...ik', 'ij->ji')."""
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = tuple(inputs[0])
    ts = [_as_tensor(v) for v in inputs]
    hs = (ctypes.c_void_p * max(len(ts), 1))(*[t._h for t in ts])
    return _new(L.kiln_einsum, str(equation).encode("utf-8"), hs, len(ts))


# ---- Tensor operators that follow TF2 (set on the class here, where their ops live) ----

def _broadcastable(a, b):
    for da, db in zip(reversed(a), reversed(b)):
        if da != db and da != 1 and db != 1:
            return False
    return True


def _compare(op, incompatible):
    def method(self, other):
        if other is None:
            return incompatible  # TF: t == None is False, t != None is True
        try:
            a, b = _pair(self, other)
        except (InvalidArgumentError, TypeError, ValueError):
            return NotImplemented  # not a tensor value: Python falls back to identity
        if not _broadcastable(a.shape, b.shape):
            return constant(incompatible)  # TF (incompatible_shape_error=False): a bool scalar
        return op(a, b)
    return method


class _IndexError(InvalidArgumentError, IndexError):
    """An index out of range: InvalidArgumentError as TF, and IndexError for Python's protocols."""


def _index_value(v):
    """An int index from a Python/NumPy integer or a scalar integer Tensor; None for anything else."""
    if isinstance(v, bool):
        return None
    if isinstance(v, _numbers.Integral):
        return int(v)
    if isinstance(v, Tensor) and v.ndim == 0 and v.dtype in ("int32", "int64"):
        return int(v.item())
    return None


def _getitem(self, key):
    """x[key] as TF: ints, slices (any step, negative too), Ellipsis, None (newaxis); differentiable, built
    from slice, gather and reshape."""
    items = list(key) if isinstance(key, tuple) else [key]
    if sum(1 for k in items if k is Ellipsis) > 1:
        raise InvalidArgumentError("Tensor.__getitem__: more than one Ellipsis (...) in %r" % (key,))
    consumed = sum(1 for k in items if k is not None and k is not Ellipsis)
    shape = self.shape
    if consumed > len(shape):
        raise _IndexError("Tensor.__getitem__: %d indices for a tensor of shape %s; expected at most %d"
                          % (consumed, list(shape), len(shape)))
    if Ellipsis not in items:
        items.append(Ellipsis)
    at = items.index(Ellipsis)
    items[at:at + 1] = [_slice_all] * (len(shape) - consumed)
    begin, size, steps, out_shape = [], [], [], []
    d = 0
    for k in items:
        if k is None:
            out_shape.append(1)
            continue
        n = shape[d]
        i = _index_value(k)
        if i is not None:
            if not -n <= i < n:
                raise _IndexError("Tensor.__getitem__: index %d is out of range for dim %d of size %d; expected "
                                  "an index in [%d, %d)" % (i, d, n, -n, n))
            begin.append(i % n)
            size.append(1)
        elif isinstance(k, type(_slice_all)):
            start, stop, step = k.indices(n)
            count = len(range(start, stop, step))
            if step == 1:
                begin.append(start)
                size.append(count)
            else:  # a strided or reversed range: gathered after the slice
                begin.append(0)
                size.append(n)
                steps.append((d, start, stop, step))
            out_shape.append(count)
        else:
            raise TypeError("Tensor.__getitem__: only integers, slices (`:`), ellipsis (`...`), None and scalar "
                            "integer tensors are valid indices; got %r" % (k,))
        d += 1
    x = self
    if begin != [0] * len(shape) or list(size) != list(shape):
        x = _slice(x, begin, size)
    for dim, start, stop, step in steps:
        x = gather(x, constant(list(range(start, stop, step)), int64, [len(range(start, stop, step))]), dim)
    return reshape(x, out_shape) if tuple(out_shape) != x.shape else x


_slice_all = slice(None)


def _unhashable(self):
    raise TypeError("Tensor is unhashable: == is elementwise (as in TF2). Use tensor.ref() as the key.")


class _Reference:
    """A hashable reference (tf.Tensor.ref(), tf.Variable.ref()): equal only to a reference with the
    same key, the Tensor object's id or the variable's _unique_id."""

    __slots__ = ("_t", "_key")

    def __init__(self, t, key=None):
        self._t = t
        self._key = ("object", id(t)) if key is None else ("variable", key)

    def deref(self):
        return self._t

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _Reference) and other._key == self._key


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a scalar tensor")
    for i in range(self.shape[0]):
        yield self[i]


Tensor.__eq__ = _compare(equal, False)
Tensor.__ne__ = _compare(not_equal, True)
# TF2 tensors are unhashable once == is elementwise (a dict or set would compare keys with ==).
Tensor.__hash__ = _unhashable
Tensor.ref = lambda self: _Reference(self)
Tensor.experimental_ref = Tensor.ref
Tensor.__getitem__ = _getitem
Tensor.__iter__ = _iter
Tensor.__truediv__ = lambda self, other: truediv(self, other)
Tensor.__rtruediv__ = lambda self, other: truediv(other, self)
Tensor.__floordiv__ = lambda self, other: floordiv(self, other)
Tensor.__rfloordiv__ = lambda self, other: floordiv(other, self)
Tensor.__mod__ = lambda self, other: floormod(self, other)
Tensor.__rmod__ = lambda self, other: floormod(other, self)


def _scalar_of(v, dtype):
    return constant(float(v), dtype)


def clip_by_norm(t, clip_norm, axes=None):
    """tf.clip_by_norm: t * clip_norm / max(||t||, clip_norm), the L2 norm over axes (all by default),
    as TF computes it."""
    from .ops import greater, sqrt, sum as _sum, where  # noqa: PLC0415 - names ops also exports
    t = _as_tensor(t)
    l2sum = _sum(t * t, axes, keepdims=True)
    positive = greater(l2sum, _scalar_of(0, t.dtype))
    l2norm = where(positive, sqrt(where(positive, l2sum, _scalar_of(1, t.dtype))), l2sum)
    c = _scalar_of(clip_norm, t.dtype)
    return t * c / maximum(l2norm, c)


def global_norm(t_list):
    """tf.linalg.global_norm: sqrt of the sum of every tensor's squares (None entries skipped), as TF
    sums them (each tensor's half sum of squares, then those)."""
    from .ops import sqrt, stack, sum as _sum  # noqa: PLC0415
    halves = [_sum(t * t) * _scalar_of(0.5, t.dtype) for t in (_as_tensor(v) for v in t_list if v is not None)]
    if not halves:
        raise InvalidArgumentError("global_norm: no tensors in the list")
    total = _sum(stack(halves))
    return sqrt(total * _scalar_of(2.0, total.dtype))


def clip_by_global_norm(t_list, clip_norm, use_norm=None):
    """tf.clip_by_global_norm: (the tensors scaled by clip_norm / max(global norm, clip_norm), the
    global norm); None entries stay None, a non-finite norm makes every value NaN, as TF's."""
    from .ops import minimum  # noqa: PLC0415
    t_list = list(t_list)
    norm = global_norm(t_list) if use_norm is None else _as_tensor(use_norm)
    one, c = _scalar_of(1, norm.dtype), _scalar_of(clip_norm, norm.dtype)
    scale = c * minimum(one / norm, one / c) + (norm - norm)
    return [None if t is None else _as_tensor(t) * cast(scale, _as_tensor(t).dtype) for t in t_list], norm


__all__ = ["sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
           "sigmoid_cross_entropy_with_logits", "ctc_loss", "reduce_prod", "reduce_any", "reduce_all", "reduce_logsumexp",
           "argmin", "bias_add", "moments", "l2_normalize", "cumsum", "cumprod", "top_k", "floordiv", "floormod", "truediv", "einsum",
           "clip_by_norm", "global_norm", "clip_by_global_norm"]
