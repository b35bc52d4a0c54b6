"""Eager ops over the C API. Names follow TensorFlow (with tf.math/tf.nn aliases in __init__)."""
import builtins as _builtins
import ctypes
import numbers as _numbers

from . import _lib
from .errors import InvalidArgumentError, UnimplementedError, check
from .tensor import (_CODE_DTYPE, Tensor, _as_tensor, _new, bool_, checked_int64, constant, dims_array, dtype_code,
                     fits_int64, float32, int32, int64_array)

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


def _int(v, what, op=None):
    """An integer argument (a Python or NumPy int, or a one-element integer Tensor) as an int; anything
    else (a string, a float, a bool) is a TypeError naming the argument, as TF's."""
    if isinstance(v, _numbers.Integral) and not isinstance(v, bool):
        return checked_int64(v, what, op)
    if _is_tensor(v):
        t = _as_tensor(v)
        if t.dtype in ("int32", "int64", "uint8") and t.size == 1:
            return int(t.item())
    raise TypeError("%s%s must be an integer; got %r (%s)"
                    % (op + ": " if op else "", what, v, type(v).__name__))


def _ints(values, what, op=None):
    if _is_tensor(values):
        values = _as_tensor(values).tolist()
        values = values if isinstance(values, list) else [values]
    elif isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError("%s%s must be a list of integers; got %r (%s)"
                        % (op + ": " if op else "", what, values, type(values).__name__))
    values = [_int(v, what, op) for v in values]
    return (ctypes.c_int64 * _builtins.max(len(values), 1))(*values), len(values)


def _axes(axis, op=None):
    """axis: None (all axes), an int, or a list of ints (a 1-D integer Tensor too)."""
    if axis is None:
        return None, 0
    if isinstance(axis, (str, bytes, float, bool)):
        raise TypeError("%saxis must be an integer or a list of integers; got %r (%s)"
                        % (op + ": " if op else "", axis, type(axis).__name__))
    if isinstance(axis, _numbers.Integral):
        axis = [axis]
    elif _is_tensor(axis) and _as_tensor(axis).ndim == 0:
        axis = [axis]
    return _ints(axis, "axis", op)


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
        ax, n = _axes(axis, "reduce_" + name)
        if axis is not None and n == 0:
            # TF: an empty axis list reduces nothing (the C API reads no axes as all of them).
            return reshape(x, x.shape)
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
log1p, expm1, floor, round = _unary("log1p"), _unary("expm1"), _unary("floor"), _unary("round")  # noqa: A001
sign, sin, cos, relu6, selu = _unary("sign"), _unary("sin"), _unary("cos"), _unary("relu6"), _unary("selu")
sum, mean, max, min = _reduce("sum"), _reduce("mean"), _reduce("max"), _reduce("min")  # noqa: A001
subtract, multiply, divide, negative = sub, mul, div, neg
reduce_sum, reduce_mean, reduce_max, reduce_min = sum, mean, max, min


def _float(v, what, op):
    """A real-number argument (a Python or NumPy number, or a one-element Tensor) as a float; anything
    else (None, a string) is a TypeError naming the op and the argument."""
    if isinstance(v, _numbers.Real) and not isinstance(v, bool):
        return float(v)
    if _is_tensor(v):
        t = _as_tensor(v)
        if t.size == 1 and t.dtype != bool_:
            return float(t.item())
    raise TypeError("%s: %s must be a number; got %r (%s)" % (op, what, v, type(v).__name__))


def _integer_bound(v, what, x):
    """A clip bound for an integer x: a whole number of x's dtype, as a scalar of that dtype."""
    n = _float(v, what, "clip_by_value")
    if _is_tensor(v) or isinstance(v, _numbers.Integral):
        n = _as_tensor(v).item() if _is_tensor(v) else int(v)
    limit = 2 ** 31 if x.dtype == "int32" else 2 ** 63
    if n != n or n in (float("inf"), float("-inf")) or int(n) != n or not -limit <= int(n) < limit:
        raise InvalidArgumentError("clip_by_value: argument '%s' is %r; expected a whole number in the range of "
                                   "x's dtype %s" % (what, v, x.dtype))
    return constant(int(n), x.dtype)


def gelu(x, approximate=False):
    return _new(L.kiln_gelu, _as_tensor(x), bool(approximate))


def elu(x, alpha=1.0):
    return _new(L.kiln_elu, _as_tensor(x), _float(alpha, "alpha", "elu"))


def leaky_relu(x, alpha=0.2):
    return _new(L.kiln_leaky_relu, _as_tensor(x), _float(alpha, "alpha", "leaky_relu"))


def where(condition, x, y):
    x, y = _pair(x, y)
    return _new(L.kiln_where, _as_tensor(condition), x, y)


def cast(x, dtype):
    """tf.cast. Floating to integer truncates toward zero; NaN, +-inf and values past int32 (int64
    for int64) give INT32_MIN (INT64_MIN), and uint8 takes the int32 result's low byte (-1.0 -> 255),
    as TensorFlow, NumPy and PyTorch give on x86-64."""
    return _new(L.kiln_cast, _as_tensor(x), dtype_code(dtype, "cast"))


def clip_by_value(x, clip_value_min, clip_value_max):
    """tf.clip_by_value: minimum(x, clip_value_max), then maximum(that, clip_value_min), so a NaN
    propagates. Each bound is a number (in x's dtype, exactly for an integer x) or a tensor or array
    of x's dtype that broadcasts to x's shape; the gradient reaches tensor bounds, as TF's."""
    x = _as_tensor(x)
    integer = x.dtype in ("int32", "int64")

    def is_number(v):
        return isinstance(v, _numbers.Real) and not isinstance(v, bool)

    if x.dtype in ("float32", "bfloat16") and is_number(clip_value_min) and is_number(clip_value_max):
        return _new(L.kiln_clip_by_value, x, float(clip_value_min), float(clip_value_max))

    def bound(v, what):
        if is_number(v):
            return _integer_bound(v, what, x) if integer else constant(float(v), x.dtype)
        if v is None or isinstance(v, (str, bytes, bool)):
            raise TypeError("clip_by_value: %s must be a number or a tensor; got %r (%s)" % (what, v, type(v).__name__))
        return _as_tensor(v, x)

    return _new(L.kiln_clip_by_value_tensor, x, bound(clip_value_min, "clip_value_min"),
                bound(clip_value_max, "clip_value_max"))


def matmul(a, b, transpose_a=False, transpose_b=False):
    a, b = _as_tensor(a), _as_tensor(b)
    return _new(L.kiln_matmul, a, b, bool(transpose_a), bool(transpose_b))


def argmax(x, axis=None, output_type="int64"):
    """tf.math.argmax: index of the largest value along axis (None: 0, as TF's); int64 (or
    output_type int32); the first index on ties."""
    code = _index_type(output_type, "argmax")
    out = _new(L.kiln_argmax, _as_tensor(x), 0 if axis is None else _int(axis, "axis", "argmax"))
    return out if code == dtype_code("int64") else cast(out, output_type)


def _index_type(output_type, op):
    """argmax/argmin's output_type: int32 or int64 (TF's int16 and uint16 are not kiln dtypes)."""
    code = dtype_code(output_type, op)
    if code not in (dtype_code("int32"), dtype_code("int64")):
        raise TypeError("%s: output_type %s is not supported; expected int32 or int64" % (op, _CODE_DTYPE[code]))
    return code


def softmax(x, axis=-1):
    return _new(L.kiln_softmax, _as_tensor(x), _int(axis, "axis", "softmax"))


def log_softmax(x, axis=-1):
    return _new(L.kiln_log_softmax, _as_tensor(x), _int(axis, "axis", "log_softmax"))


def layer_norm(x, gamma, beta, epsilon=1e-3, axis=-1):
    """Keras LayerNormalization over axis (an int or the list of trailing axes); gamma/beta have their shape.
    float32, float64, or bfloat16 x (computed in float32, rounded once; gamma/beta bfloat16 or float32)."""
    axes, n = _axes(axis, "layer_norm")
    if n == 0:  # the C API reads no axes as the last one; Keras's LayerNormalization rejects an empty list
        raise InvalidArgumentError("layer_norm: axis must name at least one axis (an int or a list of trailing "
                                   "axes); got %r" % (axis,))
    return _new(L.kiln_layer_norm, _as_tensor(x), _as_tensor(gamma), _as_tensor(beta), axes, n, float(epsilon))


def batch_norm(x, gamma, beta, mean=None, variance=None, training=False, epsilon=1e-3):
    """Returns (y, mean, variance): batch statistics when training, the given ones otherwise. Dtypes as
    layer_norm; with a bfloat16 x the batch statistics are float32, as TF's FusedBatchNormV3."""
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


def _per_axis(v, axes, what, op):
    """A window argument as one value per spatial axis (axes: their letters, "dhw"): an int for every axis,
    a value per axis, or TF's [1, ..., 1] form with the batch and channel entries."""
    n = len(axes)
    v = [v] * n if isinstance(v, _numbers.Integral) else list(v)
    if len(v) == n + 2:
        v = v[1:n + 1]
    if len(v) != n:
        raise InvalidArgumentError("%s: %s needs %d value%s (or %d in TF's [1, %s, 1] form); got %r"
                                   % (op, what, n, "" if n == 1 else "s", n + 2, ", ".join(axes), v))
    return v


def _two(v, what, op):
    return _ints(_per_axis(v, "hw", what, op), what)[0]


class Conv2dOptions(ctypes.Structure):
    """kiln_conv2d_options (include/kiln/ops.h); made by _conv_options."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("strides", ctypes.c_int64 * 2),
                ("dilations", ctypes.c_int64 * 2), ("padding", ctypes.c_int)]


class Pool2dOptions(ctypes.Structure):
    """kiln_pool2d_options (include/kiln/ops.h); made by _pool_options."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("ksize", ctypes.c_int64 * 2),
                ("strides", ctypes.c_int64 * 2), ("padding", ctypes.c_int)]


def _conv_options(op, strides, padding, dilations):
    o = Conv2dOptions()
    check(L.kiln_conv2d_options_init(ctypes.byref(o), ctypes.sizeof(o)))
    o.strides[:] = list(_two(strides, "strides", op))[:2]
    o.dilations[:] = list(_two(dilations, "dilations", op))[:2]
    o.padding = _padding(padding, op)
    return o


def conv2d(x, filters, strides=1, padding=VALID, dilations=1):
    op = "conv2d"
    o = _conv_options(op, strides, padding, dilations)
    return _new(L.kiln_conv2d, _as_tensor(x), _as_tensor(filters), ctypes.byref(o))


def conv2d_transpose(input, filters, output_shape, strides=1, padding=SAME, dilations=1):  # noqa: A002 (TF's name)
    """tf.nn.conv2d_transpose: filters [KH, KW, out_channels, in_channels]; TF's default padding SAME."""
    op = "conv2d_transpose"
    o = _conv_options(op, strides, padding, dilations)
    dims, rank = dims_array(output_shape)
    return _new(L.kiln_conv2d_transpose, _as_tensor(input), _as_tensor(filters), dims, rank, ctypes.byref(o))


def depthwise_conv2d(input, filter, strides=1, padding=VALID, dilations=1):  # noqa: A002 (TF's names)
    """tf.nn.depthwise_conv2d: filter [KH, KW, C, M] gives C * M channels."""
    op = "depthwise_conv2d"
    o = _conv_options(op, strides, padding, dilations)
    return _new(L.kiln_depthwise_conv2d, _as_tensor(input), _as_tensor(filter), ctypes.byref(o))


def _one(v, what, op):
    return int(_per_axis(v, "w", what, op)[0])


def conv1d(input, filters, stride=1, padding=VALID, dilations=1):  # noqa: A002 (TF's name)
    """tf.nn.conv1d: input [N, W, C], filters [KW, C, O]."""
    op = "conv1d"
    o = _conv_options(op, [_one(stride, "stride", op), 1], padding, [_one(dilations, "dilations", op), 1])
    return _new(L.kiln_conv1d, _as_tensor(input), _as_tensor(filters), ctypes.byref(o))


def _pool(fn, op, x, ksize, strides, padding):
    o = Pool2dOptions()
    check(L.kiln_pool2d_options_init(ctypes.byref(o), ctypes.sizeof(o)))
    o.ksize[:] = list(_two(ksize, "ksize", op))[:2]
    o.strides[:] = list(_two(strides, "strides", op))[:2]
    o.padding = _padding(padding, op)
    return _new(fn, _as_tensor(x), ctypes.byref(o))


def max_pool2d(x, ksize, strides, padding=VALID):
    return _pool(L.kiln_max_pool2d, "max_pool2d", x, ksize, strides, padding)


def avg_pool2d(x, ksize, strides, padding=VALID):
    return _pool(L.kiln_avg_pool2d, "avg_pool2d", x, ksize, strides, padding)


def _three(v, what, op):
    return _ints(_per_axis(v, "dhw", what, op), what)[0]


class Conv3dOptions(ctypes.Structure):
    """kiln_conv3d_options (include/kiln/ops.h); made by _conv3d_options."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("strides", ctypes.c_int64 * 3),
                ("dilations", ctypes.c_int64 * 3), ("padding", ctypes.c_int)]


class Pool3dOptions(ctypes.Structure):
    """kiln_pool3d_options (include/kiln/ops.h)."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("ksize", ctypes.c_int64 * 3),
                ("strides", ctypes.c_int64 * 3), ("padding", ctypes.c_int)]


def _conv3d_options(op, strides, padding, dilations):
    o = Conv3dOptions()
    check(L.kiln_conv3d_options_init(ctypes.byref(o), ctypes.sizeof(o)))
    o.strides[:] = list(_three(strides, "strides", op))
    o.dilations[:] = list(_three(dilations, "dilations", op))
    o.padding = _padding(padding, op)
    return o


def conv3d(input, filters, strides=1, padding=VALID, dilations=1):  # noqa: A002 (TF's name)
    """tf.nn.conv3d: input [N, D, H, W, C], filters [KD, KH, KW, C, O]."""
    o = _conv3d_options("conv3d", strides, padding, 1 if dilations is None else dilations)
    return _new(L.kiln_conv3d, _as_tensor(input), _as_tensor(filters), ctypes.byref(o))


def conv3d_transpose(input, filters, output_shape, strides=1, padding=SAME, dilations=1):  # noqa: A002 (TF's name)
    """tf.nn.conv3d_transpose: filters [KD, KH, KW, out_channels, in_channels]; TF's default padding SAME."""
    o = _conv3d_options("conv3d_transpose", strides, padding, 1 if dilations is None else dilations)
    dims, rank = dims_array(output_shape)
    return _new(L.kiln_conv3d_transpose, _as_tensor(input), _as_tensor(filters), dims, rank, ctypes.byref(o))


def _pool3d(fn, op, x, ksize, strides, padding):
    o = Pool3dOptions()
    check(L.kiln_pool3d_options_init(ctypes.byref(o), ctypes.sizeof(o)))
    o.ksize[:] = list(_three(ksize, "ksize", op))
    o.strides[:] = list(_three(strides, "strides", op))
    o.padding = _padding(padding, op)
    return _new(fn, _as_tensor(x), ctypes.byref(o))


def max_pool3d(input, ksize, strides, padding=VALID):  # noqa: A002 (TF's name)
    """tf.nn.max_pool3d over [N, D, H, W, C]."""
    return _pool3d(L.kiln_max_pool3d, "max_pool3d", input, ksize, strides, padding)


def avg_pool3d(input, ksize, strides, padding=VALID):  # noqa: A002 (TF's name)
    """tf.nn.avg_pool3d over [N, D, H, W, C]; padded cells are not averaged in."""
    return _pool3d(L.kiln_avg_pool3d, "avg_pool3d", input, ksize, strides, padding)


def image_resize(images, size, method="bilinear", antialias=False):
    """tf.image.resize(images, size, method) without antialiasing: 'bilinear' or 'nearest' (TF's half-pixel
    centres); images [N, H, W, C] or [H, W, C]. Also kiln.image.resize."""
    names = {"bilinear": 0, "nearest": 1}
    m = str(method).lower()
    if m not in names:
        kind = UnimplementedError if m in ("bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic") \
            else InvalidArgumentError
        raise kind("resize: method %r is not supported; kiln has 'bilinear' and 'nearest'" % (method,))
    if antialias:
        raise UnimplementedError("resize: antialias=True is not supported; kiln resizes without antialiasing")
    size = list(size)
    if len(size) != 2:
        raise InvalidArgumentError("resize: size must be (height, width); got %r" % (size,))
    arr, _ = _ints(size, "size", "resize")
    return _new(L.kiln_image_resize, _as_tensor(images), arr[0], arr[1], names[m])


def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant", fill_value=0,
                     data_format=None):
    """keras.ops.image.affine_transform (TF's ImageProjectiveTransformV3): images [N, H, W, C] or
    [H, W, C] ([N, C, H, W] with data_format="channels_first") resampled through transform [N, 8] or
    [8]: output (x, y) reads the input at ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k),
    k = c0 x + c1 y + 1; interpolation 'bilinear' or 'nearest'; fill_mode 'constant' (fill_value),
    'reflect', 'wrap' or 'nearest'. No gradient."""
    modes = {"reflect": 0, "wrap": 1, "constant": 2, "nearest": 3}
    method = _interpolation(interpolation, "affine_transform")
    if fill_mode not in modes:
        raise InvalidArgumentError("affine_transform: fill_mode %r is not one of 'constant', 'reflect', 'wrap', "
                                   "'nearest'" % (fill_mode,))
    images, first = _channels_last(images, data_format, "affine_transform")
    out = _new(L.kiln_image_affine_transform, images, _as_tensor(transform), method, modes[fill_mode],
               _fill_value(fill_value, "affine_transform"))
    return _channels_back(out, first)


def perspective_transform(images, start_points, end_points, interpolation="bilinear", fill_value=0,
                          data_format=None):
    """keras.ops.image.perspective_transform: images [N, H, W, C] or [H, W, C] ([N, C, H, W] with
    data_format="channels_first") resampled through the perspective transform taking start_points to
    end_points, each (4, 2) for every image or (N, 4, 2), as (x, y); points outside the image read
    fill_value. No gradient."""
    method = _interpolation(interpolation, "perspective_transform")
    images, first = _channels_last(images, data_format, "perspective_transform")
    out = _new(L.kiln_image_perspective_transform, images, _as_tensor(start_points), _as_tensor(end_points),
               method, _fill_value(fill_value, "perspective_transform"))
    return _channels_back(out, first)


def _fill_value(fill_value, op):
    """An image transform's fill_value as a float."""
    if isinstance(fill_value, bool) or not isinstance(fill_value, _numbers.Real):
        raise InvalidArgumentError("%s: fill_value must be a number; got %r" % (op, fill_value))
    return float(fill_value)


def _interpolation(interpolation, op):
    """The kiln_resize_method of an image transform's interpolation name."""
    methods = {"bilinear": 0, "nearest": 1}
    if interpolation not in methods:
        raise InvalidArgumentError("%s: interpolation %r is not one of 'bilinear', 'nearest'" % (op, interpolation))
    return methods[interpolation]


def _channels_last(images, data_format, op):
    """Keras's image ops: images as a tensor with channels last (moved from axis -3 with
    data_format="channels_first"), and whether they were moved."""
    if data_format not in (None, "channels_last", "channels_first"):
        raise InvalidArgumentError("%s: data_format %r is not 'channels_last' or 'channels_first'" % (op, data_format))
    images = _as_tensor(images)
    first = data_format == "channels_first"
    if first:
        n = images.ndim
        if n < 3:
            raise InvalidArgumentError("%s: images of shape %s have no height, width and channels; expected rank 3 or "
                                       "4" % (op, tuple(images.shape)))
        images = transpose(images, list(range(n - 3)) + [n - 2, n - 1, n - 3])
    return images, first


def _channels_back(out, first):
    n = out.ndim
    return transpose(out, list(range(n - 3)) + [n - 1, n - 3, n - 2]) if first else out


def rgb_to_hsv(images):
    """tf.image.rgb_to_hsv: the last axis (r, g, b) of floating images becomes (hue, saturation, value) by
    TF's formulas: value = max, saturation = (max - min) / max, hue from the channel holding the max (0
    where max == min), each in [0, 1] for images in [0, 1]. Differentiable."""
    return _new(L.kiln_image_rgb_to_hsv, _as_tensor(images))


def hsv_to_rgb(images):
    """tf.image.hsv_to_rgb: (hue, saturation, value) in the last axis back to (r, g, b). Differentiable."""
    return _new(L.kiln_image_hsv_to_rgb, _as_tensor(images))


def rgb_to_grayscale(images):
    """tf.image.rgb_to_grayscale: 0.2989 r + 0.5870 g + 0.1140 b over the last axis (3) of floating images,
    kept as an axis of 1. Differentiable."""
    return _new(L.kiln_image_rgb_to_grayscale, _as_tensor(images))


def _keras_colour(op, name, one_channel_is_gray=False):
    def keras_op(images, data_format=None):
        images, first = _channels_last(images, data_format, name)
        if one_channel_is_gray and images.ndim >= 1 and images.shape[-1] == 1:
            return _channels_back(images, first)
        return _channels_back(op(images), first)
    keras_op.__name__ = name
    keras_op.__doc__ = ("keras.ops.image.%s(images, data_format=None): kiln.image.%s over the channels axis "
                        "(last, or axis -3 with data_format='channels_first')." % (name, name))
    return keras_op


_keras_rgb_to_hsv = _keras_colour(rgb_to_hsv, "rgb_to_hsv")
_keras_hsv_to_rgb = _keras_colour(hsv_to_rgb, "hsv_to_rgb")
_keras_rgb_to_grayscale = _keras_colour(rgb_to_grayscale, "rgb_to_grayscale", one_channel_is_gray=True)


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
    return _new(L.kiln_concat, hs, len(ts), _int(axis, "axis", "concat"))


def stack(values, axis=0):
    ts, hs = _handles(values)
    return _new(L.kiln_stack, hs, len(ts), _int(axis, "axis", "stack"))


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
    check(L.kiln_split(outs, n, x, sizes, _int(axis, "axis", "split")))
    return [Tensor._adopt(outs[i]) for i in _builtins.range(n)]


def slice(x, begin, size):  # noqa: A001
    if len(begin) != len(size):
        raise InvalidArgumentError("slice: begin has %d values and size %d; expected the same"
                                   % (len(begin), len(size)))
    b, n = _ints(begin, "begin")
    s, _ = _ints(size, "size")
    return _new(L.kiln_slice, _as_tensor(x), b, s, n)


def expand_dims(x, axis):
    return _new(L.kiln_expand_dims, _as_tensor(x), _int(axis, "axis", "expand_dims"))


def squeeze(x, axis=None):
    ax, n = _axes(axis)
    return _new(L.kiln_squeeze, _as_tensor(x), ax, n)


def broadcast_to(x, shape):
    dims, rank = dims_array(shape)
    return _new(L.kiln_broadcast_to, _as_tensor(x), dims, rank)


def tile(x, multiples):
    m, n = _ints(multiples, "multiples")
    return _new(L.kiln_tile, _as_tensor(x), m, n)


def _as_dtype(value, dtype):
    """A Tensor as is; anything else converted to dtype (float32 updates, bool masks)."""
    return _as_tensor(value) if _is_tensor(value) else constant(value, dtype)


def gather(params, indices, axis=None, batch_dims=0):
    """tf.gather; axis defaults to batch_dims, as TF."""
    axis = batch_dims if axis is None else axis
    return _new(L.kiln_gather, _as_tensor(params), _as_tensor(indices), int(axis), int(batch_dims))


def gather_nd(params, indices, batch_dims=0):
    return _new(L.kiln_gather_nd, _as_tensor(params), _as_tensor(indices), int(batch_dims))


def scatter_nd(indices, updates, shape):
    """tf.scatter_nd: the result has updates' dtype (Python ints: int32, floats: float32, as TF infers).
    float32, bfloat16, float64, int32 and int64 sum in kiln's kernel (integers wrap around on
    overflow, as TF's); uint8 sums in int32 and wraps back to uint8."""
    dims, rank = dims_array(shape)
    updates = _as_tensor(updates)
    if updates.dtype == "uint8":
        return cast(_new(L.kiln_scatter_nd, _as_tensor(indices), cast(updates, "int32"), dims, rank), "uint8")
    return _new(L.kiln_scatter_nd, _as_tensor(indices), updates, dims, rank)


def tensor_scatter_nd_add(tensor, indices, updates):
    """tf.tensor_scatter_nd_add: Python numbers in updates take tensor's dtype."""
    tensor = _as_tensor(tensor)
    updates = _as_tensor(updates, tensor)
    if tensor.dtype == "uint8" and updates.dtype == "uint8":
        return cast(_new(L.kiln_tensor_scatter_nd_add, cast(tensor, "int32"), _as_tensor(indices),
                         cast(updates, "int32")), "uint8")
    return _new(L.kiln_tensor_scatter_nd_add, tensor, _as_tensor(indices), updates)


def boolean_mask(tensor, mask, axis=None):
    return _new(L.kiln_boolean_mask, _as_tensor(tensor), _as_dtype(mask, bool_), int(axis or 0))


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None):
    """tf.one_hot: dtype defaults to on_value's or off_value's type, else float32."""
    if dtype is None:
        given = [v for v in (on_value, off_value) if v is not None]
        dtype = given[0].dtype if given and _is_tensor(given[0]) else (
            "int32" if given and all(isinstance(v, _numbers.Integral) and not isinstance(v, bool) for v in given)
            else float32)
    on_value = 1 if on_value is None else on_value
    off_value = 0 if off_value is None else off_value
    on_value = on_value.numpy().item() if _is_tensor(on_value) else on_value
    off_value = off_value.numpy().item() if _is_tensor(off_value) else off_value
    return _new(L.kiln_one_hot, _as_tensor(indices), int(depth), float(on_value), float(off_value),
                -1 if axis is None else int(axis), dtype_code(dtype))


_PAD_MODES = {"CONSTANT": 0, "REFLECT": 1, "SYMMETRIC": 2}


def pad(tensor, paddings, mode="CONSTANT", constant_values=0, name=None):  # noqa: ARG001 (TF's name)
    """tf.pad: paddings is [[before, after], ...], one pair per dim."""
    m = _PAD_MODES.get(str(mode).upper())
    if m is None:
        raise InvalidArgumentError("pad: mode %r is not supported; expected 'CONSTANT', 'REFLECT' or 'SYMMETRIC'"
                                   % (mode,))
    x = _as_tensor(tensor)
    if _is_tensor(paddings):
        paddings = _as_tensor(paddings).tolist()
    elif hasattr(paddings, "tolist"):  # a NumPy array
        paddings = paddings.tolist()
    if not isinstance(paddings, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2
                                                          for p in paddings):
        raise InvalidArgumentError("pad: paddings must be [[before, after], ...], one pair per dimension of the "
                                   "rank-%d input (shape [%d, 2]); got %r" % (x.ndim, x.ndim, paddings))
    pairs = [list(p) for p in paddings]
    flat, _ = _ints([v for p in pairs for v in p], "paddings")
    return _new(L.kiln_pad, x, flat, len(pairs), m, float(constant_values))


def _dropout_options(rate, noise_shape):
    opts = _lib.DropoutOptions()
    L.kiln_dropout_options_init(ctypes.byref(opts))
    opts.rate = float(rate)
    keep = None
    if noise_shape is not None:
        # TF's noise_shape: None dims take x's (-1 for the C API).
        dims = [-1 if d is None else int(d) for d in noise_shape]
        keep = int64_array(dims, "a dim of noise_shape", "dropout")
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
    """tf.fill: without a dtype, value's type picks it (bool, int32, int64 beyond int32's range as
    tf.constant's, or float32)."""
    if dtype is None:
        dtype = (bool_ if isinstance(value, bool) else _int_dtype([value]) if isinstance(value, _numbers.Integral)
                 else float32)
    if _is_int64(value):
        # Exact: a double would round integers beyond 2**53.
        return _shaped(L.kiln_fill_int64, dims, int(value), dtype_code(dtype, "fill"))
    return _shaped(L.kiln_fill, dims, float(value), dtype_code(dtype, "fill"))


def _int_dtype(values):
    """The dtype tf.constant infers for Python ints: int32, or int64 when one lies beyond int32."""
    return int32 if all(-2 ** 31 <= int(v) < 2 ** 31 for v in values) else "int64"


def _is_int64(v):
    return isinstance(v, _numbers.Integral) and not isinstance(v, bool) and fits_int64(int(v))


def zeros_like(x):
    x = _as_tensor(x)
    return zeros(x.shape, x.dtype)


def ones_like(x):
    x = _as_tensor(x)
    return ones(x.shape, x.dtype)


_RANGE_DTYPES = ("int32", "int64", "float16", "bfloat16", "float32", "float64")  # tf.range's order of precedence


def _range_value(name, v):
    """tf.range's argument as a Python number and the dtype tf.convert_to_tensor gives it: a tensor's
    (or a NumPy scalar's) own, int32 for a Python int (int64 beyond int32), float32 for a float."""
    if isinstance(v, Tensor) or hasattr(v, "_kiln_value"):
        t = _as_tensor(v)
        if t.ndim != 0:
            raise InvalidArgumentError("range: %s has shape %s; expected a scalar" % (name, tuple(t.shape)))
        dt, v = t.dtype, t.item()
    elif hasattr(v, "dtype") and hasattr(v, "item"):  # a NumPy scalar or 0-d array
        dt, v = str(v.dtype), v.item()
    elif isinstance(v, bool):
        dt = "bool"
    elif isinstance(v, _numbers.Integral):
        dt = _int_dtype([v])
    else:
        dt = "float32"
    return v, dt


def range(start, limit=None, delta=1, dtype=None):  # noqa: A001
    """tf.range(start, limit=None, delta=1, dtype=None); without dtype, the widest of the arguments'
    dtypes (int32 for Python ints, float32 for floats, a tensor's own), as TF."""
    if limit is None:
        start, limit = 0, start
    (start, s_dt), (limit, l_dt), (delta, d_dt) = (_range_value(n, v) for n, v in
                                                   (("start", start), ("limit", limit), ("delta", delta)))
    if dtype is None:
        wrong = [dt for dt in (s_dt, l_dt, d_dt) if dt not in _RANGE_DTYPES]
        if wrong:
            raise InvalidArgumentError("range: an argument is %s; expected one of %s (or give dtype)"
                                       % (wrong[0], ", ".join(_RANGE_DTYPES)))
        dtype = _builtins.max((s_dt, l_dt, d_dt), key=_RANGE_DTYPES.index)
    if all(_is_int64(v) for v in (start, limit, delta)):
        return _new(L.kiln_range_int64, int(start), int(limit), int(delta), dtype_code(dtype, "range"))
    return _new(L.kiln_range, float(start), float(limit), float(delta), dtype_code(dtype, "range"))


def _seed(seed):
    return -1 if seed is None else int(seed)


def _uniform(shape, minval, maxval, dtype, op, fns, *tail):
    """tf.random.uniform's dtype dispatch: fns are the C calls for integer dtypes, float32 (kiln's
    own float32 values) and the other floating dtypes; tail is the seed argument(s). Integer dtypes
    need maxval (TF) and integral bounds; floating ones default maxval to 1."""
    int_fn, f32_fn, float_fn = fns
    code = dtype_code(dtype, op)
    if code in (dtype_code("int32"), dtype_code("int64")):
        if maxval is None:
            raise ValueError("%s: maxval is required for integer dtype %s" % (op, _CODE_DTYPE[code]))

        def integral(name, v):
            if isinstance(v, float) and not v.is_integer():
                raise TypeError("%s: %s is %r; expected an integer for dtype %s" % (op, name, v, _CODE_DTYPE[code]))
            return int(v)
        return _shaped(int_fn, shape, integral("minval", minval), integral("maxval", maxval), code, *tail)
    lo, hi = float(minval), 1.0 if maxval is None else float(maxval)
    if code == dtype_code("float32"):
        return _shaped(f32_fn, shape, lo, hi, *tail)
    return _shaped(float_fn, shape, lo, hi, code, *tail)


def random_uniform(shape, minval=0.0, maxval=None, seed=None, dtype="float32"):
    """tf.random.uniform: values in [minval, maxval) (maxval 1 for floating dtypes when None)."""
    return _uniform(shape, minval, maxval, dtype, "random.uniform",
                    (L.kiln_random_uniform_int, L.kiln_random_uniform, L.kiln_random_uniform_float), _seed(seed))


def random_normal(shape, mean=0.0, stddev=1.0, seed=None):
    return _shaped(L.kiln_random_normal, shape, float(mean), float(stddev), _seed(seed))


def _scalar_parameter(v, op, name):
    """A distribution parameter as a float: kiln's gamma and beta take one number, not a tensor of them."""
    if hasattr(v, "ndim") and getattr(v, "ndim") == 0:
        v = v.item() if hasattr(v, "item") else float(v.numpy())
    if isinstance(v, bool) or not isinstance(v, _numbers.Real):
        raise UnimplementedError("%s: %s must be one number (kiln takes no tensor of them); got %r" % (op, name, v))
    return float(v)


def _floating_out(out, dtype, op):
    if dtype in (None, "float32"):
        return out
    if dtype not in ("float64", "bfloat16"):
        raise InvalidArgumentError("%s: dtype %r is not a floating dtype (float32, float64, bfloat16)" % (op, dtype))
    return cast(out, dtype)


def random_gamma(shape, alpha, beta=None, dtype="float32", seed=None):
    """tf.random.gamma(shape, alpha, beta=None, dtype, seed): Gamma(alpha) values divided by the rate beta
    (one number each; Marsaglia and Tsang's method, not TF's stream)."""
    a = _scalar_parameter(alpha, "random.gamma", "alpha")
    b = 1.0 if beta is None else _scalar_parameter(beta, "random.gamma", "beta")
    return _floating_out(_shaped(L.kiln_random_gamma, shape, a, b, _seed(seed)), dtype, "random.gamma")


def random_beta(shape, alpha, beta, dtype=None, seed=None):
    """keras.random.beta(shape, alpha, beta, dtype=None, seed=None): Beta(alpha, beta) values."""
    a, b = (_scalar_parameter(v, "random.beta", n) for v, n in ((alpha, "alpha"), (beta, "beta")))
    return _floating_out(_shaped(L.kiln_random_beta, shape, a, b, _seed(seed)), dtype, "random.beta")


def random_shuffle(value, axis=0, seed=None):
    """keras.random.shuffle(x, axis=0, seed=None) (tf.random.shuffle: axis 0): the slices along axis in a
    random order."""
    return _new(L.kiln_random_shuffle, _as_tensor(value), int(axis), _seed(seed))


def truncated_normal(shape, mean=0.0, stddev=1.0, seed=None):
    return _shaped(L.kiln_truncated_normal, shape, float(mean), float(stddev), _seed(seed))


def stateless_random_uniform(shape, seed, minval=0.0, maxval=None, dtype="float32"):
    """tf.random.stateless_uniform: the same seed pair gives the same values on every call and thread."""
    return _uniform(shape, minval, maxval, dtype, "random.stateless_uniform",
                    (L.kiln_stateless_random_uniform_int, L.kiln_stateless_random_uniform,
                     L.kiln_stateless_random_uniform_float), *_seed_pair(seed, "stateless_uniform"))


def stateless_random_normal(shape, seed, mean=0.0, stddev=1.0):
    """tf.random.stateless_normal."""
    return _shaped(L.kiln_stateless_random_normal, shape, float(mean), float(stddev),
                   *_seed_pair(seed, "stateless_normal"))


def stateless_truncated_normal(shape, seed, mean=0.0, stddev=1.0):
    """tf.random.stateless_truncated_normal."""
    return _shaped(L.kiln_stateless_truncated_normal, shape, float(mean), float(stddev),
                   *_seed_pair(seed, "stateless_truncated_normal"))
