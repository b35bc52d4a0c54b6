"""keras.initializers: objects and names. Layers take either (Dense(kernel_initializer=HeNormal(seed=1)))."""
import ctypes

from . import _lib
from . import config as _config
from .errors import check
from .tensor import Tensor, dtype_code, float32, int64_array

L = _lib.lib


class Initializer:
    """Base class: a Keras class name and a config; calling it makes a tensor."""
    _class_name = None

    def __init__(self, **config):
        self._config = config

    def get_config(self):
        return dict(self._config)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _kiln_serialize(self):
        return {"class_name": self._class_name, "config": self.get_config()}

    def __call__(self, shape, dtype=None):
        shape = [int(d) for d in shape]
        dims = int64_array(shape, "a dimension of the shape", "initializer")
        out = ctypes.c_void_p()
        with _config.to_c(self._kiln_serialize()) as c:
            check(L.kiln_initializer_call(ctypes.byref(out), c, dims, len(shape),
                                          dtype_code(dtype or float32, "initializer")))
        return Tensor._adopt(out.value)

    def __repr__(self):
        return "%s(%s)" % (self._class_name, ", ".join("%s=%r" % kv for kv in self._config.items()))


# Keras 3.15's VarianceScaling family: the axes whose sizes make fan_in and fan_out (EinsumDense
# kernels). Kept in the config only when given, so other configs stay Keras's older form.
_FAN_AXES = {"input_axes": None, "output_axes": None}


def _make(class_name, fan_axes=False, **defaults):
    """An initializer class; its arguments, positional too, in Keras's constructor order (the order of
    defaults): Constant(1.0), RandomNormal(0.0, 0.1), GlorotUniform(42)."""
    if fan_axes:
        defaults.update(_FAN_AXES)
    order = list(defaults)

    def __init__(self, *args, **kwargs):
        if len(args) > len(order):
            raise TypeError("%s takes at most %d positional arguments (%s); got %d"
                            % (class_name, len(order), ", ".join(order) or "none", len(args)))
        for name, value in zip(order, args):
            if name in kwargs:
                raise TypeError("%s: got multiple values for argument %r" % (class_name, name))
            kwargs[name] = value
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError("%s: unexpected arguments %s; expected %s"
                            % (class_name, sorted(unknown), ", ".join(order) or "none"))
        config = dict(defaults)
        config.update(kwargs)
        if fan_axes and config["input_axes"] is None and config["output_axes"] is None:
            del config["input_axes"], config["output_axes"]
        if isinstance(config.get("distribution"), str):  # Keras's lower-casing and legacy "normal"
            config["distribution"] = config["distribution"].lower()
            if config["distribution"] == "normal":
                config["distribution"] = "truncated_normal"
        Initializer.__init__(self, **config)
    __init__.__doc__ = "%s(%s), as keras.initializers.%s." % (
        class_name, ", ".join("%s=%r" % kv for kv in defaults.items()), class_name)
    return type(class_name, (Initializer,), {"__init__": __init__, "_class_name": class_name})


Zeros = _make("Zeros")
Ones = _make("Ones")
Constant = _make("Constant", value=0.0)
RandomNormal = _make("RandomNormal", mean=0.0, stddev=0.05, seed=None)
RandomUniform = _make("RandomUniform", minval=-0.05, maxval=0.05, seed=None)
TruncatedNormal = _make("TruncatedNormal", mean=0.0, stddev=0.05, seed=None)
VarianceScaling = _make("VarianceScaling", True, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None)
GlorotUniform = _make("GlorotUniform", True, seed=None)
GlorotNormal = _make("GlorotNormal", True, seed=None)
HeNormal = _make("HeNormal", True, seed=None)
HeUniform = _make("HeUniform", True, seed=None)
LecunNormal = _make("LecunNormal", True, seed=None)
LecunUniform = _make("LecunUniform", True, seed=None)
Orthogonal = _make("Orthogonal", gain=1.0, seed=None)

# Keras's snake-case aliases.
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal = VarianceScaling, Orthogonal
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform

_ALL = {c._class_name: c for c in (Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal,
                                   VarianceScaling, GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal,
                                   LecunUniform, Orthogonal)}


def get(identifier):
    """keras.initializers.get: a name, a serialized dict or an initializer."""
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    name = str(identifier)
    cls = _ALL.get(name) or globals().get(name)
    if not (isinstance(cls, type) and issubclass(cls, Initializer)):
        raise ValueError("unknown initializer %r" % identifier)
    return cls()


def serialize(initializer):
    return initializer._kiln_serialize()


def deserialize(config):
    return _ALL[config["class_name"]].from_config(config.get("config", {}))
