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


_ALL = {f.__name__: f for f in (relu, leaky_relu, relu6, elu, selu, gelu, sigmoid, tanh, softmax, log_softmax, softplus,
                                softsign, silu, exponential, hard_sigmoid, mish, linear)}
_ALL["swish"] = swish


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
