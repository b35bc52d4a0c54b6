"""Built-in convolution and pooling layers (kiln.layers.Conv2D, ...), channels last, with Keras's
signatures, defaults and aliases (Convolution2D, MaxPool2D, GlobalAvgPool2D, ...)."""
import numbers as _numbers

from .errors import InvalidArgumentError
from .layers import _BUILTINS, _builtin, _serializable


def _tuple(v, n, name):
    """An int (the C++ side expands it to every spatial axis), or a tuple / list of n ints, as Keras's
    standardize_tuple: a sequence of another length (one value for a 3-D layer) or a string is refused."""
    if v is None:
        return None
    if isinstance(v, _numbers.Integral):
        return int(v)
    if (isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) != n
            or not all(_whole(d) for d in v)):
        raise InvalidArgumentError(f"{name} must be an int or a tuple of {n} ints; got {v!r}")
    return [int(d) for d in v]


def _whole(d):
    """An int, or a float holding one (Keras's standardize_tuple takes 2.0; 2.5 or None is an error)."""
    return isinstance(d, _numbers.Integral) or (isinstance(d, _numbers.Real) and float(d).is_integer())


def _rank(default_step):
    return len(default_step) if isinstance(default_step, tuple) else 1


def _conv_common(n, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                 bias_initializer, bias_regularizer, activity_regularizer, bias_constraint):
    return {"kernel_size": _tuple(kernel_size, n, "kernel_size"), "strides": _tuple(strides, n, "strides"),
            "padding": padding, "data_format": data_format, "dilation_rate": _tuple(dilation_rate, n, "dilation_rate"),
            "activation": _serializable(activation) or "linear", "use_bias": bool(use_bias),
            "bias_initializer": _serializable(bias_initializer), "bias_regularizer": _serializable(bias_regularizer),
            "activity_regularizer": _serializable(activity_regularizer), "bias_constraint": bias_constraint}


def _conv(default_step):
    def make(filters, kernel_size, strides=default_step, padding="valid", data_format=None,
             dilation_rate=default_step, groups=1, activation=None, use_bias=True,
             kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
             bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None):
        c = {"filters": int(filters), "groups": int(groups)}
        c.update(_conv_common(_rank(default_step), kernel_size, strides, padding, data_format, dilation_rate,
                              activation, use_bias, bias_initializer, bias_regularizer, activity_regularizer,
                              bias_constraint))
        c.update({"kernel_initializer": _serializable(kernel_initializer),
                  "kernel_regularizer": _serializable(kernel_regularizer), "kernel_constraint": kernel_constraint})
        return c
    return make


def _depthwise_of(default_step):
    def make(kernel_size, strides=default_step, padding="valid", depth_multiplier=1, data_format=None,
             dilation_rate=default_step, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
             bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
             depthwise_constraint=None, bias_constraint=None):
        return _depthwise(_rank(default_step), kernel_size, strides, padding, depth_multiplier, data_format,
                          dilation_rate, activation, use_bias, depthwise_initializer, bias_initializer,
                          depthwise_regularizer, bias_regularizer, activity_regularizer, depthwise_constraint,
                          bias_constraint)
    return make


def _depthwise(n, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation, use_bias,
               depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer, activity_regularizer,
               depthwise_constraint, bias_constraint):
    c = {"depth_multiplier": int(depth_multiplier)}
    c.update(_conv_common(n, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                          bias_initializer, bias_regularizer, activity_regularizer, bias_constraint))
    c.update({"depthwise_initializer": _serializable(depthwise_initializer),
              "depthwise_regularizer": _serializable(depthwise_regularizer),
              "depthwise_constraint": depthwise_constraint})
    return c


def _separable(default_step):
    def make(filters, kernel_size, strides=default_step, padding="valid", data_format=None,
             dilation_rate=default_step, depth_multiplier=1, activation=None, use_bias=True,
             depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform", bias_initializer="zeros",
             depthwise_regularizer=None, pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
             depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None):
        c = _depthwise(_rank(default_step), kernel_size, strides, padding, depth_multiplier, data_format,
                       dilation_rate, activation, use_bias, depthwise_initializer, bias_initializer,
                       depthwise_regularizer, bias_regularizer, activity_regularizer, depthwise_constraint,
                       bias_constraint)
        c.update({"filters": int(filters), "pointwise_initializer": _serializable(pointwise_initializer),
                  "pointwise_regularizer": _serializable(pointwise_regularizer),
                  "pointwise_constraint": pointwise_constraint})
        return c
    return make


def _transpose(default_step):
    def make(filters, kernel_size, strides=default_step, padding="valid", output_padding=None, data_format=None,
             dilation_rate=default_step, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
             bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
             kernel_constraint=None, bias_constraint=None):
        c = _conv(default_step)(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                                dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                                kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                                kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                                activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                                bias_constraint=bias_constraint)
        del c["groups"]  # not a transposed convolution's key
        c["output_padding"] = _tuple(output_padding, _rank(default_step), "output_padding")
        return c
    return make


def _pooling(default_size):
    def make(pool_size=default_size, strides=None, padding="valid", data_format=None):
        n = _rank(default_size)
        return {"pool_size": _tuple(pool_size, n, "pool_size"), "strides": _tuple(strides, n, "strides"),
                "padding": padding, "data_format": data_format}
    return make


def _global_pooling(data_format=None, keepdims=False):
    return {"data_format": data_format, "keepdims": bool(keepdims)}


Conv1D = _builtin("Conv1D", "keras.layers.Conv1D(filters, kernel_size, strides=1, padding='valid', ...): "
                  "[N, W, C] -> [N, OW, filters]; kernel [kw, C, filters]. padding may be 'causal'.", _conv(1))
Conv2D = _builtin("Conv2D", "keras.layers.Conv2D(filters, kernel_size, strides=(1, 1), padding='valid', ...): "
                  "[N, H, W, C] -> [N, OH, OW, filters]; kernel [kh, kw, C, filters].", _conv((1, 1)))
DepthwiseConv1D = _builtin("DepthwiseConv1D", "keras.layers.DepthwiseConv1D(kernel_size, strides=1, "
                           "padding='valid', depth_multiplier=1, ...): [N, W, C] -> C * depth_multiplier channels; "
                           "depthwise_kernel [kw, C, depth_multiplier].", _depthwise_of(1))
DepthwiseConv2D = _builtin("DepthwiseConv2D", "keras.layers.DepthwiseConv2D(kernel_size, strides=(1, 1), "
                           "padding='valid', depth_multiplier=1, ...): C * depth_multiplier channels; "
                           "depthwise_kernel [kh, kw, C, depth_multiplier].", _depthwise_of((1, 1)))
SeparableConv1D = _builtin("SeparableConv1D", "keras.layers.SeparableConv1D(filters, kernel_size, strides=1, "
                           "padding='valid', depth_multiplier=1, ...): a depthwise convolution, then a 1x1 one to "
                           "filters channels; depthwise_kernel [kw, C, depth_multiplier], pointwise_kernel "
                           "[1, C * depth_multiplier, filters].", _separable(1))
SeparableConv2D = _builtin("SeparableConv2D", "keras.layers.SeparableConv2D(filters, kernel_size, strides=(1, 1), "
                           "padding='valid', depth_multiplier=1, ...): a depthwise convolution, then a 1x1 one to "
                           "filters channels; depthwise_kernel [kh, kw, C, depth_multiplier], pointwise_kernel "
                           "[1, 1, C * depth_multiplier, filters].", _separable((1, 1)))
Conv1DTranspose = _builtin("Conv1DTranspose", "keras.layers.Conv1DTranspose(filters, kernel_size, strides=1, "
                           "padding='valid', output_padding=None, ...): [N, W, C] -> [N, OW, filters], the adjoint of "
                           "Conv1D; kernel [kw, filters, C].", _transpose(1))
Conv2DTranspose = _builtin("Conv2DTranspose", "keras.layers.Conv2DTranspose(filters, kernel_size, strides=(1, 1), "
                           "padding='valid', output_padding=None, ...): kernel [kh, kw, filters, C].", _transpose((1, 1)))
Conv3D = _builtin("Conv3D", "keras.layers.Conv3D(filters, kernel_size, strides=(1, 1, 1), padding='valid', ...): "
                  "[N, D, H, W, C] -> [N, OD, OH, OW, filters]; kernel [kd, kh, kw, C, filters].", _conv((1, 1, 1)))
Conv3DTranspose = _builtin("Conv3DTranspose", "keras.layers.Conv3DTranspose(filters, kernel_size, strides=(1, 1, 1), "
                           "padding='valid', output_padding=None, ...): [N, D, H, W, C] -> [N, OD, OH, OW, filters], "
                           "the adjoint of Conv3D; kernel [kd, kh, kw, filters, C].", _transpose((1, 1, 1)))
MaxPooling1D = _builtin("MaxPooling1D", "keras.layers.MaxPooling1D(pool_size=2, strides=None, padding='valid')",
                        _pooling(2))
MaxPooling2D = _builtin("MaxPooling2D", "keras.layers.MaxPooling2D(pool_size=(2, 2), strides=None, padding='valid')",
                        _pooling((2, 2)))
AveragePooling1D = _builtin("AveragePooling1D",
                            "keras.layers.AveragePooling1D(pool_size=2, strides=None, padding='valid')", _pooling(2))
AveragePooling2D = _builtin("AveragePooling2D",
                            "keras.layers.AveragePooling2D(pool_size=(2, 2), strides=None, padding='valid')",
                            _pooling((2, 2)))
MaxPooling3D = _builtin("MaxPooling3D",
                        "keras.layers.MaxPooling3D(pool_size=(2, 2, 2), strides=None, padding='valid'): [N, D, H, W, C]",
                        _pooling((2, 2, 2)))
AveragePooling3D = _builtin("AveragePooling3D",
                            "keras.layers.AveragePooling3D(pool_size=(2, 2, 2), strides=None, padding='valid'): "
                            "[N, D, H, W, C]; 'same' padding counts only the cells inside the input", _pooling((2, 2, 2)))
GlobalAveragePooling1D = _builtin("GlobalAveragePooling1D", "keras.layers.GlobalAveragePooling1D(keepdims=False)",
                                  _global_pooling)
GlobalAveragePooling2D = _builtin("GlobalAveragePooling2D", "keras.layers.GlobalAveragePooling2D(keepdims=False)",
                                  _global_pooling)
GlobalMaxPooling1D = _builtin("GlobalMaxPooling1D", "keras.layers.GlobalMaxPooling1D(keepdims=False)",
                              _global_pooling)
GlobalMaxPooling2D = _builtin("GlobalMaxPooling2D", "keras.layers.GlobalMaxPooling2D(keepdims=False)",
                              _global_pooling)

GlobalAveragePooling3D = _builtin("GlobalAveragePooling3D",
                                  "keras.layers.GlobalAveragePooling3D(keepdims=False): [N, D, H, W, C] -> [N, C]",
                                  _global_pooling)
GlobalMaxPooling3D = _builtin("GlobalMaxPooling3D", "keras.layers.GlobalMaxPooling3D(keepdims=False): "
                              "[N, D, H, W, C] -> [N, C]", _global_pooling)

def _adaptive(rank):
    def make(output_size, data_format=None):
        return {"output_size": _tuple(output_size, rank, "output_size"), "data_format": data_format}
    return make


def _adaptive_class(kind, rank):
    name = "Adaptive%sPooling%dD" % (kind, rank)
    return _builtin(name, "keras.layers.%s(output_size, data_format=None): each spatial axis %s-pooled to "
                    "output_size positions, position i over the window [floor(i * in / out), ceil((i + 1) * in / "
                    "out)) (PyTorch's adaptive pooling)" % (name, "average" if kind == "Average" else "max"),
                    _adaptive(rank))


AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D = (
    _adaptive_class("Average", r) for r in (1, 2, 3))
AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D = (_adaptive_class("Max", r) for r in (1, 2, 3))

# Keras's aliases are the same classes.
Convolution1D, Convolution2D, Convolution2DTranspose = Conv1D, Conv2D, Conv2DTranspose
Convolution1DTranspose, Convolution3D, Convolution3DTranspose = Conv1DTranspose, Conv3D, Conv3DTranspose
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
MaxPool3D, AvgPool3D, GlobalAvgPool3D, GlobalMaxPool3D = MaxPooling3D, AveragePooling3D, GlobalAveragePooling3D, GlobalMaxPooling3D

_CLASSES = (Conv1D, Conv2D, DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D, Conv1DTranspose,
            Conv2DTranspose, MaxPooling1D, MaxPooling2D, AveragePooling1D,
            AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
            Conv3D, Conv3DTranspose, MaxPooling3D, AveragePooling3D, GlobalAveragePooling3D, GlobalMaxPooling3D,
            AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D, AdaptiveMaxPooling1D,
            AdaptiveMaxPooling2D, AdaptiveMaxPooling3D)
_BUILTINS.update({c._class_name: c for c in _CLASSES})

__all__ = [c._class_name for c in _CLASSES] + [
    "Convolution1D", "Convolution2D", "Convolution1DTranspose", "Convolution2DTranspose", "SeparableConvolution1D", "SeparableConvolution2D",
    "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
    "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "Convolution3D", "Convolution3DTranspose", "MaxPool3D", "AvgPool3D", "GlobalAvgPool3D", "GlobalMaxPool3D"]
