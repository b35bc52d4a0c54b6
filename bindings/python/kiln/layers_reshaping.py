"""Built-in spatial reshaping layers (kiln.layers.ZeroPadding1D/2D/3D, Cropping1D/2D/3D,
UpSampling1D/2D/3D), Resizing, CenterCrop, Identity, Rescaling and Lambda, with Keras's signatures
and defaults. The image layers are channels last unless data_format="channels_first"."""
import functools as _functools
import importlib as _importlib
import inspect as _inspect
import numbers as _numbers

from .errors import InvalidArgumentError
from .layers import _BUILTINS, _PY_BUILTINS, _builtin, _register_class, Layer


def _sides(v):
    """A padding, cropping or size as Keras takes it (ints, tuples of ints, tuples of pairs), as
    config lists."""
    if isinstance(v, _numbers.Integral):
        return int(v)
    return [_sides(e) for e in v]


def _padding(default):
    def make(padding=default, data_format=None):
        return {"padding": _sides(padding), "data_format": data_format}
    return make


def _cropping(default):
    def make(cropping=default, data_format=None):
        return {"cropping": _sides(cropping), "data_format": data_format}
    return make


def _up_sampling2d(size=(2, 2), data_format=None, interpolation="nearest"):
    return {"size": _sides(size), "data_format": data_format, "interpolation": str(interpolation)}


def _up_sampling3d(size=(2, 2, 2), data_format=None):
    return {"size": _sides(size), "data_format": data_format}


def _number_or_list(v):
    """Rescaling's scale or offset: a number, or a 1-D list of them (per channel)."""
    v = v.tolist() if hasattr(v, "tolist") else v  # NumPy arrays and scalars, 0-d too
    if isinstance(v, _numbers.Real):
        return float(v)
    values = list(v)
    if not all(isinstance(e, _numbers.Real) for e in values):
        raise InvalidArgumentError("Rescaling: scale and offset must be numbers or 1-D lists of numbers (one per "
                                   "channel); got %r" % (v,))
    return [float(e) for e in values]


ZeroPadding1D = _builtin("ZeroPadding1D", "keras.layers.ZeroPadding1D(padding=1): zeros before and after the steps "
                         "(an int, or (before, after)).", _padding(1))
ZeroPadding2D = _builtin("ZeroPadding2D", "keras.layers.ZeroPadding2D(padding=(1, 1), data_format=None): an int, "
                         "(rows, cols) or ((top, bottom), (left, right)).", _padding((1, 1)))
ZeroPadding3D = _builtin("ZeroPadding3D", "keras.layers.ZeroPadding3D(padding=(1, 1, 1), data_format=None)",
                         _padding((1, 1, 1)))
Cropping1D = _builtin("Cropping1D", "keras.layers.Cropping1D(cropping=(1, 1)): steps cut from the start and the end.",
                      lambda cropping=(1, 1): {"cropping": _sides(cropping)})
Cropping2D = _builtin("Cropping2D", "keras.layers.Cropping2D(cropping=((0, 0), (0, 0)), data_format=None): an int, "
                      "(rows, cols) or ((top, bottom), (left, right)).", _cropping(((0, 0), (0, 0))))
Cropping3D = _builtin("Cropping3D", "keras.layers.Cropping3D(cropping=((1, 1), (1, 1), (1, 1)), data_format=None)",
                      _cropping(((1, 1), (1, 1), (1, 1))))
UpSampling1D = _builtin("UpSampling1D", "keras.layers.UpSampling1D(size=2): each step repeated size times.",
                        lambda size=2: {"size": int(size)})
UpSampling2D = _builtin("UpSampling2D", "keras.layers.UpSampling2D(size=(2, 2), data_format=None, "
                        "interpolation='nearest'): rows and columns repeated ('nearest'), or the image resized to "
                        "size times its height and width ('bilinear').", _up_sampling2d)
UpSampling3D = _builtin("UpSampling3D", "keras.layers.UpSampling3D(size=(2, 2, 2), data_format=None)", _up_sampling3d)
Resizing = _builtin(
    "Resizing", "keras.layers.Resizing(height, width, interpolation='bilinear', crop_to_aspect_ratio=False, "
    "pad_to_aspect_ratio=False, fill_mode='constant', fill_value=0.0, antialias=False, data_format=None): images "
    "[N, H, W, C] or [H, W, C] resized as tf.image.resize ('bilinear' or 'nearest', half-pixel centres); the "
    "output keeps the input's dtype.",
    lambda height, width, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
    fill_mode="constant", fill_value=0.0, antialias=False, data_format=None: {
        "height": int(height), "width": int(width), "interpolation": interpolation,
        "crop_to_aspect_ratio": bool(crop_to_aspect_ratio), "pad_to_aspect_ratio": bool(pad_to_aspect_ratio),
        "fill_mode": fill_mode, "fill_value": float(fill_value), "antialias": bool(antialias),
        "data_format": data_format})
CenterCrop = _builtin(
    "CenterCrop", "keras.layers.CenterCrop(height, width, data_format=None): the centred height x width window of "
    "images [N, H, W, C] or [H, W, C], as float32; an image smaller than that on either side is cropped to the "
    "target's aspect ratio and resized to it (bilinear), as Keras's smart_resize.",
    lambda height, width, data_format=None: {"height": height, "width": width, "data_format": data_format})
def _factor(v, name):
    """A regularization factor as Keras's validate_float_arg takes it: a number (None: 0)."""
    if v is None:
        return 0.0
    if isinstance(v, (str, bytes)) or not isinstance(v, _numbers.Real):
        raise InvalidArgumentError("ActivityRegularization: %s must be a number; got %r" % (name, v))
    return float(v)


Identity = _builtin("Identity", "keras.layers.Identity(): its input, mask and all.", lambda: {})
ActivityRegularization = _builtin(
    "ActivityRegularization", "keras.layers.ActivityRegularization(l1=0.0, l2=0.0): its input (and mask), adding "
    "the loss l1 * sum(|x|) + l2 * sum(x ** 2) over the batch size.",
    lambda l1=0.0, l2=0.0: {"l1": _factor(l1, "l1"), "l2": _factor(l2, "l2")})
Rescaling = _builtin("Rescaling", "keras.layers.Rescaling(scale, offset=0.0): inputs * scale + offset in the "
                     "layer's dtype (Rescaling(1 / 255) for uint8 images); numbers or per-channel lists.",
                     lambda scale, offset=0.0: {"scale": _number_or_list(scale), "offset": _number_or_list(offset)})



def _function_config(fn):
    """Keras 3's serialization of a function: its module and name, and the name it is registered
    under (register_keras_serializable). A lambda, or another callable without a name (a partial,
    an object), cannot be found again: kiln writes that it was one and holds no code."""
    if fn is None:
        return None
    from . import saving  # noqa: PLC0415 - saving imports layers
    name = getattr(fn, "__name__", None)
    if not name or name == "<lambda>" or isinstance(fn, _functools.partial):
        return {"class_name": "__lambda__", "config": None}
    return {"module": getattr(fn, "__module__", None), "class_name": "function", "config": name,
            "registered_name": saving.get_registered_name(fn)}


def _function_from_config(config, what):
    """The function a _function_config names, as Keras finds it: custom_objects (the load's scope),
    register_keras_serializable, or a function of kiln's own modules."""
    if config is None or callable(config):
        return config
    from . import saving  # noqa: PLC0415 - saving imports layers
    if not isinstance(config, dict) or config.get("class_name") != "function":
        raise InvalidArgumentError("%s: the saved function was a lambda or another callable without a name (or "
                                   "this is not a function config: %r); kiln saves no code: define it with def "
                                   "and pass custom_objects={name: function} to load_model" % (what, config))
    name, module = config.get("config"), config.get("module") or ""
    fn = saving.get_registered_object(config.get("registered_name") or name, saving._ACTIVE) or \
        saving.get_registered_object(name, saving._ACTIVE)
    if fn is None and module.split(".")[0] == "kiln":
        fn = getattr(_importlib.import_module(module), name, None)
    if fn is None:
        raise InvalidArgumentError("%s: function %r (module %r) is not known; pass custom_objects={%r: %s} to "
                                   "load_model" % (what, name, module, name, name))
    return fn


class Lambda(Layer):
    """keras.layers.Lambda(function, output_shape=None, mask=None, arguments=None): a layer whose call
    is function(inputs, **arguments), with mask= and training= when the function takes them (a
    weightless computation in a Sequential). mask: a mask for the output, or a function
    (inputs, mask) -> mask. A saved model names a def'd function by module and name; load_model
    finds it in custom_objects (or register_keras_serializable); a lambda's cannot be loaded, as in
    Keras's safe mode. kiln.hpp: kiln::layers::Lambda(std::function); C: kiln_layer_create_custom."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        if not callable(function):
            raise TypeError("Lambda: function must be callable; got %r" % (function,))
        super().__init__(**kwargs)
        try:
            params = _inspect.signature(function).parameters
        except (TypeError, ValueError):  # a builtin without a readable signature
            params = {}
        for key, value in (("function", function), ("_output_shape", output_shape), ("mask", mask),
                           ("arguments", dict(arguments or {})), ("_fn_mask", "mask" in params),
                           ("_fn_training", "training" in params)):
            object.__setattr__(self, key, value)  # plain attributes, not tracked
        if mask is not None:
            self.supports_masking = True

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_mask:
            kwargs["mask"] = mask
        if self._fn_training:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def get_config(self):
        config = super().get_config()
        shape = self._output_shape
        config.update({"function": _function_config(self.function),
                       "output_shape": _function_config(shape) if callable(shape) else shape,
                       "arguments": self.arguments})
        if callable(self.mask):
            config["mask"] = _function_config(self.mask)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        what = "Lambda '%s'" % config.get("name", "lambda")
        config["function"] = _function_from_config(config.get("function"), what)
        for key in ("mask", "output_shape"):
            if isinstance(config.get(key), dict):
                config[key] = _function_from_config(config[key], "%s %s" % (what, key))
        return cls(**config)


_register_class("Lambda", Lambda)  # a saved Sequential holding one makes it again
_PY_BUILTINS["Lambda"] = Lambda

_CLASSES = (ZeroPadding1D, ZeroPadding2D, ZeroPadding3D, Cropping1D, Cropping2D, Cropping3D, UpSampling1D, UpSampling2D,
            UpSampling3D, Resizing, CenterCrop, Identity, Rescaling, ActivityRegularization)
_BUILTINS.update({c._class_name: c for c in _CLASSES})

__all__ = [c._class_name for c in _CLASSES] + ["Lambda"]
