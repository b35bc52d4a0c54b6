"""keras.activations (kiln.keras.activations): Keras 3's activation functions over kiln ops, with
its names, arguments and defaults, and get / serialize / deserialize. Each name is also one that
Dense(activation=...) and Activation take (the core's table, src/layers/activations.cc): passing a
function of this module to a layer names it, and the layer computes the same ops.

    y = kiln.keras.activations.relu(x, max_value=6.0)
    layer = kiln.layers.Dense(4, activation=kiln.keras.activations.gelu)
"""
from . import ops as _ops
from .errors import InvalidArgumentError


def _scalar(x, v):
    return _ops.constant(float(v), x.dtype)


def _tensor(x):
    return x if isinstance(x, _ops.Tensor) else _ops.constant(x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """max_value above max_value, x from threshold up, negative_slope * (x - threshold) below (the ops
    of keras.activations.relu, as the ReLU layer computes them)."""
    x = _tensor(x)
    if negative_slope != 0 and max_value is None and threshold == 0:
        return _ops.leaky_relu(x, negative_slope)
    negative_part = None
    if negative_slope != 0:
        negative_part = _ops.relu(-x + _scalar(x, threshold) if threshold != 0 else -x)
    clip = max_value is not None
    if threshold != 0:
        x = _ops.where(_ops.greater(x, _scalar(x, threshold)), x, _scalar(x, 0.0))
    elif max_value == 6:
        x, clip = _ops.relu6(x), False
    else:
        x = _ops.relu(x)
    if clip:
        x = _ops.clip_by_value(x, _scalar(x, 0.0), _scalar(x, max_value))
    if negative_slope != 0:
        x = x - _scalar(x, negative_slope) * negative_part
    return x


def leaky_relu(x, negative_slope=0.2):
    return _ops.leaky_relu(_tensor(x), negative_slope)


def relu6(x):
    return _ops.relu6(_tensor(x))


def elu(x, alpha=1.0):
    return _ops.elu(_tensor(x), alpha)


def selu(x):
    return _ops.selu(_tensor(x))


def gelu(x, approximate=False):
    """Keras's default is the exact (erf) form."""
    return _ops.gelu(_tensor(x), approximate)


def sigmoid(x):
    return _ops.sigmoid(_tensor(x))


def tanh(x):
    return _ops.tanh(_tensor(x))


def softmax(x, axis=-1):
    return _ops.softmax(_tensor(x), axis)


def log_softmax(x, axis=-1):
    return _ops.log_softmax(_tensor(x), axis)


def softplus(x):
    return _ops.softplus(_tensor(x))


def softsign(x):
    x = _tensor(x)
    return x / (_ops.abs(x) + _scalar(x, 1.0))


def silu(x):
    return _ops.swish(_tensor(x))


swish = silu


def exponential(x):
    return _ops.exp(_tensor(x))


def hard_sigmoid(x):
    """Keras 3's relu6(x + 3) / 6."""
    x = _tensor(x)
    return _ops.relu6(x + _scalar(x, 3.0)) / _scalar(x, 6.0)


def mish(x):
    x = _tensor(x)
    return x * _ops.tanh(_ops.softplus(x))


def linear(x):
    return _tensor(x)


def celu(x, alpha=1.0):
    """max(x, 0) + alpha * expm1(min(x, 0) / alpha)."""
    x = _tensor(x)
    a = _scalar(x, alpha)
    zero = _scalar(x, 0.0)
    return _ops.maximum(x, zero) + a * _ops.expm1(_ops.minimum(x, zero) / a)


def glu(x, axis=-1):
    """The first half of x along axis times the sigmoid of the second (an even size)."""
    x = _tensor(x)
    n = x.shape[int(axis)] if -len(x.shape) <= int(axis) < len(x.shape) else None
    if n is None or n % 2 != 0:
        raise InvalidArgumentError("glu: axis %r of a tensor of shape %s must exist and have an even size"
                                   % (axis, tuple(x.shape)))
    a, b = _ops.split(x, 2, axis)
    return a * _ops.sigmoid(b)


def hard_shrink(x, threshold=0.5):
    """x where |x| > threshold, else 0."""
    x = _tensor(x)
    return _ops.where(_ops.greater(_ops.abs(x), _scalar(x, threshold)), x, _ops.zeros_like(x))


def soft_shrink(x, threshold=0.5):
    """x - threshold above threshold, x + threshold below -threshold, else 0."""
    x = _tensor(x)
    t = _scalar(x, threshold)
    return _ops.where(_ops.greater(x, t), x - t, _ops.where(_ops.less(x, -t), x + t, _ops.zeros_like(x)))


def hard_silu(x):
    """x * hard_sigmoid(x)."""
    x = _tensor(x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def hard_tanh(x):
    """x clipped to [-1, 1]."""
    x = _tensor(x)
    return _ops.clip_by_value(x, _scalar(x, -1.0), _scalar(x, 1.0))


def log_sigmoid(x):
    """-softplus(-x)."""
    return -_ops.softplus(-_tensor(x))


def sparse_plus(x):
    """0 up to -1, (x + 1)^2 / 4 up to 1, then x."""
    x = _tensor(x)
    one = _scalar(x, 1.0)
    quarter = _scalar(x, 0.25) * _ops.square(x + one)
    return _ops.where(_ops.less_equal(x, -one), _ops.zeros_like(x), _ops.where(_ops.less(x, one), quarter, x))


def sparse_sigmoid(x):
    """0 up to -1, (x + 1) / 2 up to 1, then 1."""
    x = _tensor(x)
    one = _scalar(x, 1.0)
    return _ops.where(_ops.less_equal(x, -one), _ops.zeros_like(x),
                      _ops.where(_ops.greater_equal(x, one), _ops.ones_like(x), _scalar(x, 0.5) * (x + one)))


def squareplus(x, b=4):
    """(x + sqrt(x^2 + b)) / 2."""
    x = _tensor(x)
    return (x + _ops.sqrt(_ops.square(x) + _scalar(x, b))) / _scalar(x, 2.0)


def tanh_shrink(x):
    """x - tanh(x)."""
    x = _tensor(x)
    return x - _ops.tanh(x)


def threshold(x, threshold, default_value):
    """x where x > threshold, else default_value."""
    x = _tensor(x)
    return _ops.where(_ops.greater(x, _scalar(x, threshold)), x, _ops.zeros_like(x) + _scalar(x, default_value))


_ALL = {f.__name__: f for f in (relu, leaky_relu, relu6, elu, selu, gelu, sigmoid, tanh, softmax, log_softmax, softplus,
                                softsign, silu, exponential, hard_sigmoid, mish, linear, celu, glu, hard_shrink,
                                soft_shrink, hard_silu, hard_tanh, log_sigmoid, sparse_plus, sparse_sigmoid, squareplus,
                                tanh_shrink, threshold)}
_ALL["swish"] = swish
_ALL["hard_swish"] = hard_swish


def serialize(activation):
    """The name of an activation of this module (Keras's serialize of a built-in one)."""
    name = getattr(activation, "__name__", None)
    if _ALL.get(name) is not activation:
        raise InvalidArgumentError("activations.serialize: %r is not one of keras.activations (%s)"
                                   % (activation, ", ".join(sorted(_ALL))))
    return name


def deserialize(name, custom_objects=None):
    """The activation function of a name (custom_objects first)."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name not in _ALL:
        raise InvalidArgumentError("activations: unknown activation %r; known: %s" % (name, ", ".join(sorted(_ALL))))
    return _ALL[name]


def get(identifier):
    """keras.activations.get: None is linear, a name its function, a callable itself."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise InvalidArgumentError("activations.get: expected a name or a function; got %r" % (identifier,))


__all__ = sorted(_ALL) + ["get", "serialize", "deserialize"]
