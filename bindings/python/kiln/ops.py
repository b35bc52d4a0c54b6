"""Eager ops over the C API. Names follow TensorFlow (with tf.math/tf.nn aliases in __init__)."""
import builtins as _builtins
import ctypes
import numbers as _numbers

from . import _lib
from .errors import InvalidArgumentError, check
from .tensor import Tensor, _as_tensor, _new, bool_, dims_array, dtype_code, float32, int32

L = _lib.lib
VALID, SAME = "VALID", "SAME"


def _is_tensor(v):
    return isinstance(v, Tensor) or hasattr(v, "_kiln_value")


def _pair(a, b):
    """Converts two operands; a Python number takes the dtype of the tensor beside it (of a when neither is one,
    as TF converts the first operand first)."""
    if _is_tensor(a) or not _is_tensor(b):
        a = _as_tensor(a)
        return a, _as_tensor(b, a)
    b = _as_tensor(b)
    return _as_tensor(a, b), b


def _ints(values, what):
    values = [int(v) for v in values]
    return (ctypes.c_int64 * _builtins.max(len(values), 1))(*values), len(values)


def _axes(axis):
    if axis is None:
        return None, 0
    if isinstance(axis, _numbers.Integral):
        axis = [axis]
    return _ints(axis, "axis")


def _padding(p, op):
    p = str(p).upper()
    if p not in (VALID, SAME):
        raise InvalidArgumentError("%s: padding %r is not supported; expected 'VALID' or 'SAME'" % (op, p))
    return 0 if p == VALID else 1


def _binary(name):
    fn = getattr(L, "kiln_" + name)

    def op(a, b):
        a, b = _pair(a, b)
        return _new(fn, a, b)
    op.__name__ = name
    op.__doc__ = "Elementwise %s with NumPy broadcasting." % name
    return op


def _unary(name):
    fn = getattr(L, "kiln_" + name)

    def op(x):
        return _new(fn, _as_tensor(x))
    op.__name__ = name
    op.__doc__ = "Elementwise %s." % name
    return op


def _reduce(name):
    fn = getattr(L, "kiln_" + name)

    def op(x, axis=None, keepdims=False):
        x = _as_tensor(x)
        if axis is not None and not isinstance(axis, _numbers.Integral) and len(axis) == 0:
            # TF: an empty axis list reduces nothing (the C API reads no axes as all of them).
            return reshape(x, x.shape)
        ax, n = _axes(axis)
        return _new(fn, x, ax, n, bool(keepdims))
    op.__name__ = name
    op.__doc__ = "%s over axis (None: all axes), like tf.reduce_%s." % (name, name)
    return op


add, sub, mul, div = _binary("add"), _binary("sub"), _binary("mul"), _binary("div")
maximum, minimum, pow = _binary("maximum"), _binary("minimum"), _binary("pow")  # noqa: A001
equal, not_equal = _binary("equal"), _binary("not_equal")
greater, greater_equal, less, less_equal = (_binary("greater"), _binary("greater_equal"), _binary("less"),
                                            _binary("less_equal"))
logical_and, logical_or, logical_xor = _binary("logical_and"), _binary("logical_or"), _binary("logical_xor")
neg, abs, exp, log = _unary("neg"), _unary("abs"), _unary("exp"), _unary("log")  # noqa: A001
sqrt, rsqrt, square, tanh = _unary("sqrt"), _unary("rsqrt"), _unary("square"), _unary("tanh")
sigmoid, relu, softplus, swish = _unary("sigmoid"), _unary("relu"), _unary("softplus"), _unary("swish")
logical_not, stop_gradient = _unary("logical_not"), _unary("stop_gradient")
sum, mean, max, min = _reduce("sum"), _reduce("mean"), _reduce("max"), _reduce("min")  # noqa: A001
subtract, multiply, divide, negative = sub, mul, div, neg
reduce_sum, reduce_mean, reduce_max, reduce_min = sum, mean, max, min


def gelu(x, approximate=False):
    return _new(L.kiln_gelu, _as_tensor(x), bool(approximate))


def elu(x, alpha=1.0):
    return _new(L.kiln_elu, _as_tensor(x), float(alpha))


def leaky_relu(x, alpha=0.2):
    return _new(L.kiln_leaky_relu, _as_tensor(x), float(alpha))


def where(condition, x, y):
    x, y = _pair(x, y)
    return _new(L.kiln_where, _as_tensor(condition), x, y)


def cast(x, dtype):
    return _new(L.kiln_cast, _as_tensor(x), dtype_code(dtype, "cast"))


def clip_by_value(x, clip_value_min, clip_value_max):
    return _new(L.kiln_clip_by_value, _as_tensor(x), float(clip_value_min), float(clip_value_max))


def matmul(a, b, transpose_a=False, transpose_b=False):
    a, b = _as_tensor(a), _as_tensor(b)
    return _new(L.kiln_matmul, a, b, bool(transpose_a), bool(transpose_b))


def argmax(x, axis=-1):
    return _new(L.kiln_argmax, _as_tensor(x), int(axis))


def softmax(x, axis=-1):
    return _new(L.kiln_softmax, _as_tensor(x), int(axis))


def log_softmax(x, axis=-1):
    return _new(L.kiln_log_softmax, _as_tensor(x), int(axis))


def layer_norm(x, gamma, beta, epsilon=1e-3):
    return _new(L.kiln_layer_norm, _as_tensor(x), _as_tensor(gamma), _as_tensor(beta), float(epsilon))


def batch_norm(x, gamma, beta, mean=None, variance=None, training=False, epsilon=1e-3):
    """Returns (y, mean, variance): batch statistics when training, the given ones otherwise."""
    if not training and (mean is None or variance is None):
        raise InvalidArgumentError("batch_norm: inference (training=False) needs mean and variance; got %s"
                                   % ("neither" if mean is None and variance is None else
                                      "no mean" if mean is None else "no variance"))
    outs = [ctypes.c_void_p() for _ in _builtins.range(3)]
    m = _as_tensor(mean) if mean is not None else None  # held for the call
    v = _as_tensor(variance) if variance is not None else None
    check(L.kiln_batch_norm(ctypes.byref(outs[0]), ctypes.byref(outs[1]), ctypes.byref(outs[2]), _as_tensor(x),
                            _as_tensor(gamma), _as_tensor(beta), m, v, bool(training), float(epsilon)))
    return tuple(Tensor._adopt(o.value) for o in outs)


def _two(v, what, op):
    v = [v, v] if isinstance(v, _numbers.Integral) else list(v)
    if len(v) == 4:  # TF's [1, h, w, 1] form
        v = v[1:3]
    if len(v) != 2:
        raise InvalidArgumentError("%s: %s needs 2 values (or 4 in TF's [1, h, w, 1] form); got %r" % (op, what, v))
    return _ints(v, what)[0]


def conv2d(x, filters, strides=1, padding=VALID, dilations=1):
    op = "conv2d"
    return _new(L.kiln_conv2d, _as_tensor(x), _as_tensor(filters), _two(strides, "strides", op),
                _two(dilations, "dilations", op), _padding(padding, op))


def _pool(fn, op, x, ksize, strides, padding):
    return _new(fn, _as_tensor(x), _two(ksize, "ksize", op), _two(strides, "strides", op), _padding(padding, op))


def max_pool2d(x, ksize, strides, padding=VALID):
    return _pool(L.kiln_max_pool2d, "max_pool2d", x, ksize, strides, padding)


def avg_pool2d(x, ksize, strides, padding=VALID):
    return _pool(L.kiln_avg_pool2d, "avg_pool2d", x, ksize, strides, padding)


def reshape(x, shape):
    dims, rank = dims_array(shape)
    return _new(L.kiln_reshape, _as_tensor(x), dims, rank)


def transpose(x, perm=None):
    p, n = _axes(perm) if perm is not None else (None, 0)
    return _new(L.kiln_transpose, _as_tensor(x), p, n)


def _handles(values):
    ts = [_as_tensor(v) for v in values]
    return ts, (ctypes.c_void_p * _builtins.max(len(ts), 1))(*[t._h for t in ts])


def concat(values, axis):
    ts, hs = _handles(values)
    return _new(L.kiln_concat, hs, len(ts), int(axis))


def stack(values, axis=0):
    ts, hs = _handles(values)
    return _new(L.kiln_stack, hs, len(ts), int(axis))


def split(value, num_or_size_splits, axis=0):
    """tf.split: an int gives equal parts, a list gives one part per size (one may be -1)."""
    x = _as_tensor(value)
    if isinstance(num_or_size_splits, _numbers.Integral):
        n, sizes = int(num_or_size_splits), None
    else:
        n = len(num_or_size_splits)
        sizes = _ints(num_or_size_splits, "sizes")[0]
    if n < 1:
        raise InvalidArgumentError("split: num_or_size_splits must give at least one part; got %r"
                                   % (num_or_size_splits,))
    outs = (ctypes.c_void_p * n)()
    check(L.kiln_split(outs, n, x, sizes, int(axis)))
    return [Tensor._adopt(outs[i]) for i in _builtins.range(n)]


def slice(x, begin, size):  # noqa: A001
    if len(begin) != len(size):
        raise InvalidArgumentError("slice: begin has %d values and size %d; expected the same"
                                   % (len(begin), len(size)))
    b, n = _ints(begin, "begin")
    s, _ = _ints(size, "size")
    return _new(L.kiln_slice, _as_tensor(x), b, s, n)


def expand_dims(x, axis):
    return _new(L.kiln_expand_dims, _as_tensor(x), int(axis))


def squeeze(x, axis=None):
    ax, n = _axes(axis)
    return _new(L.kiln_squeeze, _as_tensor(x), ax, n)


def broadcast_to(x, shape):
    dims, rank = dims_array(shape)
    return _new(L.kiln_broadcast_to, _as_tensor(x), dims, rank)


def tile(x, multiples):
    m, n = _ints(multiples, "multiples")
    return _new(L.kiln_tile, _as_tensor(x), m, n)


def gather(params, indices, axis=0):
    return _new(L.kiln_gather, _as_tensor(params), _as_tensor(indices), int(axis))


def one_hot(indices, depth, on_value=1.0, off_value=0.0):
    return _new(L.kiln_one_hot, _as_tensor(indices), int(depth), float(on_value), float(off_value))


def _dropout_options(rate, noise_shape):
    opts = _lib.DropoutOptions()
    L.kiln_dropout_options_init(ctypes.byref(opts))
    opts.rate = float(rate)
    keep = None
    if noise_shape is not None:
        # TF's noise_shape: None dims take x's (-1 for the C API).
        dims = [-1 if d is None else int(d) for d in noise_shape]
        keep = (ctypes.c_int64 * _builtins.max(len(dims), 1))(*dims)
        opts.noise_shape, opts.noise_rank = ctypes.cast(keep, ctypes.POINTER(ctypes.c_int64)), len(dims)
    return opts, keep


def dropout(x, rate, training=True, seed=None, noise_shape=None):
    """tf.nn.dropout (with Keras' training flag): the mask is drawn in noise_shape and broadcast over x.
    With a seed, successive calls differ and repeat after set_seed, as in TF2."""
    if noise_shape is None:
        return _new(L.kiln_dropout, _as_tensor(x), float(rate), bool(training), -1 if seed is None else int(seed))
    opts, _keep = _dropout_options(rate, noise_shape)
    opts.training, opts.seed = bool(training), -1 if seed is None else int(seed)
    return _new(L.kiln_dropout_with_options, _as_tensor(x), ctypes.byref(opts))


def _seed_pair(seed, op):
    """TF's stateless seed: a shape-[2] integer list, tuple, array or tensor."""
    values = seed.numpy() if hasattr(seed, "numpy") else seed
    try:
        values = [int(v) for v in (values.reshape(-1) if hasattr(values, "reshape") else values)]
    except TypeError:
        values = None
    if values is None or len(values) != 2:
        raise InvalidArgumentError("%s: seed must have shape [2] (two integers); got %r" % (op, seed))
    return values


def stateless_dropout(x, rate, seed, noise_shape=None):
    """tf.nn.experimental.stateless_dropout: the same seed gives the same mask on every call and thread."""
    opts, _keep = _dropout_options(rate, noise_shape)
    opts.stateless = True
    opts.stateless_seed[0], opts.stateless_seed[1] = _seed_pair(seed, "stateless_dropout")
    return _new(L.kiln_dropout_with_options, _as_tensor(x), ctypes.byref(opts))


def _shaped(fn, shape, *args):
    dims, rank = dims_array(shape)
    return _new(fn, dims, rank, *args)


def zeros(shape, dtype="float32"):
    return _shaped(L.kiln_zeros, shape, dtype_code(dtype, "zeros"))


def ones(shape, dtype="float32"):
    return _shaped(L.kiln_ones, shape, dtype_code(dtype, "ones"))


def fill(dims, value, dtype=None):
    """tf.fill: without a dtype, value's type picks it (bool, int32 or float32)."""
    if dtype is None:
        dtype = bool_ if isinstance(value, bool) else int32 if isinstance(value, _numbers.Integral) else float32
    return _shaped(L.kiln_fill, dims, float(value), dtype_code(dtype, "fill"))


def zeros_like(x):
    x = _as_tensor(x)
    return zeros(x.shape, x.dtype)


def ones_like(x):
    x = _as_tensor(x)
    return ones(x.shape, x.dtype)


def range(start, limit=None, delta=1, dtype=None):  # noqa: A001
    if limit is None:
        start, limit = 0, start
    if dtype is None:
        dtype = "int32" if all(isinstance(v, int) for v in (start, limit, delta)) else "float32"
    return _new(L.kiln_range, float(start), float(limit), float(delta), dtype_code(dtype, "range"))


def _seed(seed):
    return -1 if seed is None else int(seed)


def random_uniform(shape, minval=0.0, maxval=1.0, seed=None):
    return _shaped(L.kiln_random_uniform, shape, float(minval), float(maxval), _seed(seed))


def random_normal(shape, mean=0.0, stddev=1.0, seed=None):
    return _shaped(L.kiln_random_normal, shape, float(mean), float(stddev), _seed(seed))


def truncated_normal(shape, mean=0.0, stddev=1.0, seed=None):
    return _shaped(L.kiln_truncated_normal, shape, float(mean), float(stddev), _seed(seed))


def stateless_random_uniform(shape, seed, minval=0.0, maxval=1.0):
    """tf.random.stateless_uniform: the same seed pair gives the same values on every call and thread."""
    return _shaped(L.kiln_stateless_random_uniform, shape, float(minval), float(maxval),
                   *_seed_pair(seed, "stateless_uniform"))


def stateless_random_normal(shape, seed, mean=0.0, stddev=1.0):
    """tf.random.stateless_normal."""
    return _shaped(L.kiln_stateless_random_normal, shape, float(mean), float(stddev),
                   *_seed_pair(seed, "stateless_normal"))


def stateless_truncated_normal(shape, seed, mean=0.0, stddev=1.0):
    """tf.random.stateless_truncated_normal."""
    return _shaped(L.kiln_stateless_truncated_normal, shape, float(mean), float(stddev),
                   *_seed_pair(seed, "stateless_truncated_normal"))
