"""Loads libkiln.so and declares the C signatures (the binding uses the C API only)."""
import ctypes
import ctypes.util
import numbers
import os

c_int64_p = ctypes.POINTER(ctypes.c_int64)

# ctypes wraps an integer its C parameter cannot hold (2**64 + 3 passes as 3, 2**32 + 2 as an int
# of 2), and ends a bytes string at its first NUL ("w\0evil" passes as "w"). Functions with such
# parameters, and the option structs' fields, are checked first: InvalidArgumentError naming the
# function (or field), the argument and the value instead.
_INT_RANGES = {}
for _t in (ctypes.c_int, ctypes.c_int32, ctypes.c_int64, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_uint64):
    _bits = 8 * ctypes.sizeof(_t)
    _signed = _t(-1).value < 0
    _INT_RANGES[_t] = (-(1 << (_bits - 1)), (1 << (_bits - 1)) - 1) if _signed else (0, (1 << _bits) - 1)


def _out_of_range(v, lo, hi):
    """v, an integer argument, when it is outside [lo, hi]; None when it fits or is no integer."""
    if type(v) is not int:  # NumPy's integers too (ctypes passes their low bits as well)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            return None
        v = int(v)
    return None if lo <= v <= hi else v


def _nul_in(v):
    return isinstance(v, (bytes, bytearray)) and b"\0" in v


def _invalid(message):
    from .errors import InvalidArgumentError
    return InvalidArgumentError(message)


def c_strings(strings, what):
    """A ctypes array of C strings (at least one slot) from str or bytes items, each refused with
    a NUL, as the checked functions refuse one."""
    items = [s.encode("utf-8") if isinstance(s, str) else s for s in strings]
    for s in items:
        if _nul_in(s):
            raise _invalid("%s: %r contains a NUL byte; expected a string without one (a NUL would end it early)"
                           % (what, bytes(s)[:80]))
    return (ctypes.c_char_p * max(len(items), 1))(*items)


class _Struct(ctypes.Structure):
    """An options struct whose integer fields refuse what they cannot hold and whose string
    fields refuse a NUL, as the checked functions do."""

    def __setattr__(self, name, value):
        kind = self._field_types().get(name)
        if kind in _INT_RANGES:
            bad = _out_of_range(value, *_INT_RANGES[kind])
            if bad is not None:
                lo, hi = _INT_RANGES[kind]
                raise _invalid("%s.%s is %d, which its C field cannot hold; expected %d to %d"
                               % (type(self).__name__, name, bad, lo, hi))
        elif kind is ctypes.c_char_p and _nul_in(value):
            raise _invalid("%s.%s contains a NUL byte (%r); expected a string without one"
                           % (type(self).__name__, name, bytes(value)[:80]))
        super().__setattr__(name, value)

    @classmethod
    def _field_types(cls):
        types = cls.__dict__.get("_kiln_field_types")
        if types is None:
            types = {}
            for klass in reversed(cls.__mro__):
                for f in klass.__dict__.get("_fields_", ()):
                    types[f[0]] = f[1]
            cls._kiln_field_types = types
        return types
_H = ctypes.c_void_p          # any kiln handle
_HP = ctypes.POINTER(ctypes.c_void_p)  # kiln_x **
_ST = ctypes.c_void_p         # kiln_status *

DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
USER_DATA_DESTROY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # kiln_user_data_destroy_fn
LEARNING_RATE_FN = ctypes.CFUNCTYPE(_ST, ctypes.POINTER(ctypes.c_double), ctypes.c_int64, ctypes.c_void_p)
LEARNING_RATE_CONFIG_FN = ctypes.CFUNCTYPE(_ST, _H, ctypes.c_void_p)
LOSS_FN = ctypes.CFUNCTYPE(_ST, _HP, _H, _H, ctypes.c_void_p)  # kiln_loss_callbacks.call


class LossCallbacks(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("call", LOSS_FN), ("destroy", USER_DATA_DESTROY)]


LOSS_FROM_CONFIG = ctypes.CFUNCTYPE(_ST, _HP, _H, ctypes.c_void_p)  # kiln_loss_class_callbacks.from_config


class LossClassCallbacks(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("from_config", LOSS_FROM_CONFIG), ("destroy", USER_DATA_DESTROY)]


def _candidates():
    env = os.environ.get("KILN_LIBRARY")
    if env:
        yield env
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libkiln.so")
    root = os.path.abspath(os.path.join(here, "..", "..", ".."))
    for build in ("build", "build-release"):
        yield os.path.join(root, build, "capi", "libkiln.so")
    found = ctypes.util.find_library("kiln")
    if found:
        yield found


def _load():
    tried = []
    for path in _candidates():
        if path and (os.path.exists(path) or not os.path.isabs(path)):
            try:
                return ctypes.CDLL(path)
            except OSError as e:  # keep looking, report all at the end
                tried.append("%s (%s)" % (path, e))
        else:
            tried.append(path)
    raise ImportError("kiln: cannot find libkiln.so; set KILN_LIBRARY to its path. Tried: " + "; ".join(tried))


lib = _load()

_T = ctypes.c_void_p
_SIGS = {
    "kiln_version": (ctypes.c_char_p, []),
    "kiln_abi_version": (ctypes.c_int, []),
    "kiln_status_get_code": (ctypes.c_int, [_ST]),
    "kiln_status_get_message": (ctypes.c_char_p, [_ST]),
    "kiln_status_create": (_ST, [ctypes.c_int, ctypes.c_char_p]),
    "kiln_status_free": (None, [_ST]),
    "kiln_set_seed": (None, [ctypes.c_uint64]),
    "kiln_set_num_threads": (_ST, [ctypes.c_int]),
    "kiln_get_num_threads": (ctypes.c_int, []),
    "kiln_set_num_threads_for_this_thread": (_ST, [ctypes.c_int]),
    "kiln_get_num_threads_for_this_thread": (ctypes.c_int, []),
    "kiln_primitive_cache_stats": (None, [c_int64_p, c_int64_p, c_int64_p]),
    "kiln_allocator_stats": (None, [c_int64_p, c_int64_p]),
    "kiln_allocator_release_cached": (ctypes.c_size_t, []),
    "kiln_tensor_create": (_ST, [_HP, ctypes.c_int, c_int64_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]),
    "kiln_tensor_create_from_buffer": (_ST, [_HP, ctypes.c_int, c_int64_p, ctypes.c_size_t, ctypes.c_void_p,
                                             ctypes.c_size_t, DELETER, ctypes.c_void_p]),
    "kiln_tensor_clone": (_ST, [_HP, _T]),
    "kiln_tensor_get_keras_mask": (_ST, [_HP, _T]),
    "kiln_tensor_with_keras_mask": (_ST, [_HP, _T, _T]),
    "kiln_tensor_free": (None, [_T]),
    "kiln_tensor_get_dtype": (ctypes.c_int, [_T]),
    "kiln_tensor_get_rank": (ctypes.c_int, [_T]),
    "kiln_tensor_get_dims": (c_int64_p, [_T]),
    "kiln_tensor_get_num_elements": (ctypes.c_int64, [_T]),
    "kiln_tensor_get_byte_size": (ctypes.c_size_t, [_T]),
    "kiln_tensor_get_data": (ctypes.c_void_p, [_T]),
    "kiln_tensor_copy_to": (_ST, [_T, ctypes.c_void_p, ctypes.c_size_t]),
    "kiln_variable_create": (_ST, [_HP, ctypes.c_char_p, _T, ctypes.c_bool]),
    "kiln_variable_clone": (_ST, [_HP, _H]),
    "kiln_variable_free": (None, [_H]),
    "kiln_variable_get_name": (ctypes.c_char_p, [_H]),
    "kiln_variable_get_trainable": (ctypes.c_bool, [_H]),
    "kiln_variable_read": (_ST, [_HP, _H]),
    "kiln_variable_assign": (_ST, [_H, _T]),
    "kiln_variable_assign_add": (_ST, [_H, _T]),
    "kiln_variable_assign_sub": (_ST, [_H, _T]),
    "kiln_variable_update_in_place": (_ST, [_H, ctypes.c_void_p, ctypes.c_void_p]),
    "kiln_tape_create": (_ST, [_HP, ctypes.c_bool, ctypes.c_bool]),
    "kiln_tape_free": (None, [_H]),
    "kiln_tape_stop": (_ST, [_H]),
    "kiln_tape_start": (_ST, [_H]),
    "kiln_tape_watch": (_ST, [_H, _T]),
    "kiln_tape_watch_variable": (_ST, [_H, _H]),
    "kiln_tape_gradient": (_ST, [_HP, _H, _T, _HP, ctypes.c_size_t, ctypes.c_int]),
    "kiln_tape_gradient_with_output": (_ST, [_HP, _H, _T, _T, _HP, ctypes.c_size_t, ctypes.c_int]),
    "kiln_tape_gradient_variables": (_ST, [_HP, _H, _T, _HP, ctypes.c_size_t, ctypes.c_int]),
    "kiln_variable_get_id": (ctypes.c_uint64, [_H]),
    "kiln_tape_gradient_options_init": (None, [ctypes.c_void_p]),
    "kiln_tape_gradient_multi": (_ST, [_HP, _H, ctypes.c_void_p]),
    "kiln_tape_jacobian": (_ST, [_HP, _H, ctypes.c_void_p]),
    "kiln_tape_batch_jacobian": (_ST, [_HP, _H, _T, _T, ctypes.c_int]),
    "kiln_tape_reset": (_ST, [_H]),
    "kiln_stateless_random_uniform": (_ST, [_HP, c_int64_p, ctypes.c_size_t, ctypes.c_float, ctypes.c_float,
                                            ctypes.c_int64, ctypes.c_int64]),
    "kiln_stateless_random_normal": (_ST, [_HP, c_int64_p, ctypes.c_size_t, ctypes.c_float, ctypes.c_float,
                                           ctypes.c_int64, ctypes.c_int64]),
    "kiln_stateless_truncated_normal": (_ST, [_HP, c_int64_p, ctypes.c_size_t, ctypes.c_float, ctypes.c_float,
                                              ctypes.c_int64, ctypes.c_int64]),
    "kiln_dropout_options_init": (None, [ctypes.c_void_p]),
    "kiln_dropout_with_options": (_ST, [_HP, _T, ctypes.c_void_p]),
}


class DropoutOptions(_Struct):
    """kiln_dropout_options (include/kiln/ops.h), field for field."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("rate", ctypes.c_float), ("training", ctypes.c_bool),
                ("seed", ctypes.c_int64), ("noise_shape", c_int64_p), ("noise_rank", ctypes.c_size_t),
                ("stateless", ctypes.c_bool), ("stateless_seed", ctypes.c_int64 * 2)]


class TapeGradientOptions(_Struct):
    """kiln_tape_gradient_options (include/kiln/autodiff.h), field for field."""
    _fields_ = [("struct_size", ctypes.c_size_t),
                ("targets", _HP), ("num_targets", ctypes.c_size_t),
                ("output_gradients", _HP),
                ("sources", _HP), ("variables", _HP), ("num_sources", ctypes.c_size_t),
                ("unconnected", ctypes.c_int32)]

_BINARY = ["add", "sub", "mul", "div", "truediv", "maximum", "minimum", "pow", "equal", "not_equal", "greater",
           "greater_equal", "less", "less_equal", "logical_and", "logical_or", "logical_xor"]
_UNARY = ["neg", "abs", "exp", "log", "sqrt", "rsqrt", "square", "tanh", "sigmoid", "relu", "softplus",
          "swish", "logical_not", "stop_gradient", "log1p", "expm1", "floor", "round", "sign", "sin", "cos",
          "relu6", "selu"]
_REDUCE = ["sum", "mean", "max", "min"]
for _n in _BINARY:
    _SIGS["kiln_" + _n] = (_ST, [_HP, _T, _T])
for _n in _UNARY:
    _SIGS["kiln_" + _n] = (_ST, [_HP, _T])
for _n in _REDUCE:
    _SIGS["kiln_" + _n] = (_ST, [_HP, _T, c_int64_p, ctypes.c_size_t, ctypes.c_bool])

_f, _i64, _b, _i, _d, _z = ctypes.c_float, ctypes.c_int64, ctypes.c_bool, ctypes.c_int, ctypes.c_double, ctypes.c_size_t
_SIGS.update({
    "kiln_gelu": (_ST, [_HP, _T, _b]),
    "kiln_elu": (_ST, [_HP, _T, _f]),
    "kiln_leaky_relu": (_ST, [_HP, _T, _f]),
    "kiln_where": (_ST, [_HP, _T, _T, _T]),
    "kiln_cast": (_ST, [_HP, _T, _i]),
    "kiln_clip_by_value": (_ST, [_HP, _T, _f, _f]),
    "kiln_clip_by_value_tensor": (_ST, [_HP, _T, _T, _T]),
    "kiln_matmul": (_ST, [_HP, _T, _T, _b, _b]),
    "kiln_argmax": (_ST, [_HP, _T, _i64]),
    "kiln_softmax": (_ST, [_HP, _T, _i64]),
    "kiln_log_softmax": (_ST, [_HP, _T, _i64]),
    "kiln_layer_norm": (_ST, [_HP, _T, _T, _T, c_int64_p, _z, _f]),
    "kiln_batch_norm": (_ST, [_HP, _HP, _HP, _T, _T, _T, _T, _T, _b, _f]),
    # Options structs travel as pointers (ctypes.byref of the Structures in ops.py).
    "kiln_conv2d_options_init": (_ST, [ctypes.c_void_p, _z]),
    "kiln_pool2d_options_init": (_ST, [ctypes.c_void_p, _z]),
    "kiln_conv2d": (_ST, [_HP, _T, _T, ctypes.c_void_p]),
    "kiln_conv2d_transpose": (_ST, [_HP, _T, _T, c_int64_p, _z, ctypes.c_void_p]),
    "kiln_depthwise_conv2d": (_ST, [_HP, _T, _T, ctypes.c_void_p]),
    "kiln_conv1d": (_ST, [_HP, _T, _T, ctypes.c_void_p]),
    "kiln_max_pool2d": (_ST, [_HP, _T, ctypes.c_void_p]),
    "kiln_avg_pool2d": (_ST, [_HP, _T, ctypes.c_void_p]),
    "kiln_conv3d_options_init": (_ST, [ctypes.c_void_p, _z]),
    "kiln_pool3d_options_init": (_ST, [ctypes.c_void_p, _z]),
    "kiln_conv3d": (_ST, [_HP, _T, _T, ctypes.c_void_p]),
    "kiln_conv3d_transpose": (_ST, [_HP, _T, _T, c_int64_p, _z, ctypes.c_void_p]),
    "kiln_max_pool3d": (_ST, [_HP, _T, ctypes.c_void_p]),
    "kiln_image_resize": (_ST, [_HP, _T, ctypes.c_int64, ctypes.c_int64, ctypes.c_int]),
    "kiln_image_affine_transform": (_ST, [_HP, _T, _T, ctypes.c_int, ctypes.c_int, ctypes.c_double]),
    "kiln_image_perspective_transform": (_ST, [_HP, _T, _T, _T, ctypes.c_int, ctypes.c_double]),
    "kiln_image_rgb_to_hsv": (_ST, [_HP, _T]),
    "kiln_image_hsv_to_rgb": (_ST, [_HP, _T]),
    "kiln_image_rgb_to_grayscale": (_ST, [_HP, _T]),
    "kiln_avg_pool3d": (_ST, [_HP, _T, ctypes.c_void_p]),
    "kiln_reshape": (_ST, [_HP, _T, c_int64_p, _z]),
    "kiln_transpose": (_ST, [_HP, _T, c_int64_p, ctypes.c_size_t]),
    "kiln_concat": (_ST, [_HP, _HP, ctypes.c_size_t, _i64]),
    "kiln_stack": (_ST, [_HP, _HP, ctypes.c_size_t, _i64]),
    "kiln_split": (_ST, [_HP, ctypes.c_size_t, _T, c_int64_p, _i64]),
    "kiln_slice": (_ST, [_HP, _T, c_int64_p, c_int64_p, ctypes.c_size_t]),
    "kiln_expand_dims": (_ST, [_HP, _T, _i64]),
    "kiln_squeeze": (_ST, [_HP, _T, c_int64_p, ctypes.c_size_t]),
    "kiln_broadcast_to": (_ST, [_HP, _T, c_int64_p, _z]),
    "kiln_tile": (_ST, [_HP, _T, c_int64_p, ctypes.c_size_t]),
    "kiln_gather": (_ST, [_HP, _T, _T, _i64, _i64]),
    "kiln_gather_nd": (_ST, [_HP, _T, _T, _i64]),
    "kiln_scatter_nd": (_ST, [_HP, _T, _T, c_int64_p, _z]),
    "kiln_tensor_scatter_nd_add": (_ST, [_HP, _T, _T, _T]),
    "kiln_boolean_mask": (_ST, [_HP, _T, _T, _i64]),
    "kiln_one_hot": (_ST, [_HP, _T, _i64, _d, _d, _i64, _i]),
    "kiln_pad": (_ST, [_HP, _T, c_int64_p, _z, _i, _d]),
    "kiln_dropout": (_ST, [_HP, _T, _f, _b, _i64]),
    "kiln_zeros": (_ST, [_HP, c_int64_p, _z, _i]),
    "kiln_ones": (_ST, [_HP, c_int64_p, _z, _i]),
    "kiln_fill": (_ST, [_HP, c_int64_p, _z, _d, _i]),
    "kiln_range": (_ST, [_HP, _d, _d, _d, _i]),
    "kiln_fill_int64": (_ST, [_HP, c_int64_p, _z, _i64, _i]),
    "kiln_range_int64": (_ST, [_HP, _i64, _i64, _i64, _i]),
    "kiln_random_uniform": (_ST, [_HP, c_int64_p, _z, _f, _f, _i64]),
    "kiln_random_uniform_float": (_ST, [_HP, c_int64_p, _z, _d, _d, _i, _i64]),
    "kiln_random_uniform_int": (_ST, [_HP, c_int64_p, _z, _i64, _i64, _i, _i64]),
    "kiln_stateless_random_uniform_float": (_ST, [_HP, c_int64_p, _z, _d, _d, _i, _i64, _i64]),
    "kiln_stateless_random_uniform_int": (_ST, [_HP, c_int64_p, _z, _i64, _i64, _i, _i64, _i64]),
    "kiln_random_normal": (_ST, [_HP, c_int64_p, _z, _f, _f, _i64]),
    "kiln_random_gamma": (_ST, [_HP, c_int64_p, _z, _d, _d, _i64]),
    "kiln_random_beta": (_ST, [_HP, c_int64_p, _z, _d, _d, _i64]),
    "kiln_random_shuffle": (_ST, [_HP, _T, _i64, _i64]),
    "kiln_truncated_normal": (_ST, [_HP, c_int64_p, _z, _f, _f, _i64]),
})

# Losses, extra reductions, scans, floor division and einsum (issue 5, section 6).
_SIGS.update({
    "kiln_sparse_softmax_cross_entropy_with_logits": (_ST, [_HP, _T, _T]),
    "kiln_softmax_cross_entropy_with_logits": (_ST, [_HP, _T, _T, _i64]),
    "kiln_sigmoid_cross_entropy_with_logits": (_ST, [_HP, _T, _T]),
    "kiln_ctc_loss": (_ST, [_HP, _T, _T, _T, _T, ctypes.c_bool, _i64]),
    "kiln_ctc_decode": (_ST, [_HP, _HP, _T, _T, ctypes.c_char_p, _i64, _i64, ctypes.c_bool, _i64]),
    "kiln_reduce_prod": (_ST, [_HP, _T, c_int64_p, _z, _b]),
    "kiln_reduce_any": (_ST, [_HP, _T, c_int64_p, _z, _b]),
    "kiln_reduce_all": (_ST, [_HP, _T, c_int64_p, _z, _b]),
    "kiln_reduce_logsumexp": (_ST, [_HP, _T, c_int64_p, _z, _b]),
    "kiln_argmin": (_ST, [_HP, _T, _i64]),
    "kiln_bias_add": (_ST, [_HP, _T, _T]),
    "kiln_moments": (_ST, [_HP, _HP, _T, c_int64_p, _z, _b]),
    "kiln_l2_normalize": (_ST, [_HP, _T, c_int64_p, _z, _f]),
    "kiln_cumsum": (_ST, [_HP, _T, _i64, _b, _b]),
    "kiln_cumprod": (_ST, [_HP, _T, _i64, _b, _b]),
    "kiln_top_k": (_ST, [_HP, _HP, _T, _i64, _b]),
    "kiln_floordiv": (_ST, [_HP, _T, _T]),
    "kiln_floormod": (_ST, [_HP, _T, _T]),
    "kiln_einsum": (_ST, [_HP, ctypes.c_char_p, _HP, _z]),
})

# kiln_config: Python passes dicts through JSON; the typed calls serve C and kiln.hpp.
_C, _cp, _ccp = ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)
_SIGS.update({
    "kiln_string_free": (None, [ctypes.c_void_p]),
    "kiln_config_create": (_ST, [_HP]),
    "kiln_config_clone": (_ST, [_HP, _C]),
    "kiln_config_free": (None, [_C]),
    "kiln_config_from_json": (_ST, [_HP, _cp]),
    "kiln_config_to_json": (_ST, [_HP, _C, _i]),
    "kiln_config_equal": (_b, [_C, _C]),
    "kiln_config_get_size": (_z, [_C]),
    "kiln_config_get_key": (_ST, [_ccp, _C, _z]),
    "kiln_config_has": (_b, [_C, _cp]),
    "kiln_config_get_type": (_ST, [ctypes.POINTER(_i), _C, _cp]),
    "kiln_config_remove": (_ST, [_C, _cp]),
    "kiln_config_update": (_ST, [_C, _C]),
    "kiln_config_set_null": (_ST, [_C, _cp]),
    "kiln_config_set_bool": (_ST, [_C, _cp, _b]),
    "kiln_config_set_int": (_ST, [_C, _cp, _i64]),
    "kiln_config_set_float": (_ST, [_C, _cp, _d]),
    "kiln_config_set_string": (_ST, [_C, _cp, _cp]),
    "kiln_config_set_int_list": (_ST, [_C, _cp, c_int64_p, _z]),
    "kiln_config_set_float_list": (_ST, [_C, _cp, ctypes.POINTER(_d), _z]),
    "kiln_config_set_string_list": (_ST, [_C, _cp, _ccp, _z]),
    "kiln_config_set_config": (_ST, [_C, _cp, _C]),
    "kiln_config_set_config_list": (_ST, [_C, _cp, _HP, _z]),
    "kiln_config_get_bool": (_ST, [ctypes.POINTER(_b), _C, _cp]),
    "kiln_config_get_int": (_ST, [c_int64_p, _C, _cp]),
    "kiln_config_get_float": (_ST, [ctypes.POINTER(_d), _C, _cp]),
    "kiln_config_get_string": (_ST, [_ccp, _C, _cp]),
    "kiln_config_get_list_size": (_ST, [ctypes.POINTER(_z), _C, _cp]),
    "kiln_config_get_int_list": (_ST, [ctypes.POINTER(_z), c_int64_p, _z, _C, _cp]),
    "kiln_config_get_float_list": (_ST, [ctypes.POINTER(_z), ctypes.POINTER(_d), _z, _C, _cp]),
    "kiln_config_get_string_at": (_ST, [_ccp, _C, _cp, _z]),
    "kiln_config_get_config": (_ST, [_HP, _C, _cp]),
    "kiln_config_get_config_at": (_ST, [_HP, _C, _cp, _z]),
})

# Layers: handles, tensor lists, custom layers through a callback table.
_L = ctypes.c_void_p
_z_p = ctypes.POINTER(_z)
LAYER_BUILD = ctypes.CFUNCTYPE(_ST, _L, c_int64_p, _z_p, _z, ctypes.c_void_p)
LAYER_CALL = ctypes.CFUNCTYPE(_ST, ctypes.c_void_p, _L, ctypes.c_void_p, _b, ctypes.c_void_p)
LAYER_GET_CONFIG = ctypes.CFUNCTYPE(_ST, _C, _L, ctypes.c_void_p)
LAYER_DESTROY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
LAYER_CALL_WITH_MASK = ctypes.CFUNCTYPE(_ST, ctypes.c_void_p, _L, ctypes.c_void_p, ctypes.c_void_p, _b,
                                        ctypes.c_void_p)
LAYER_COMPUTE_MASK = ctypes.CFUNCTYPE(_ST, ctypes.c_void_p, _L, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class LayerCallbacks(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("build", LAYER_BUILD), ("call", LAYER_CALL),
                ("get_config", LAYER_GET_CONFIG), ("destroy", LAYER_DESTROY), ("supports_masking", ctypes.c_bool),
                ("call_with_mask", LAYER_CALL_WITH_MASK), ("compute_mask", LAYER_COMPUTE_MASK)]


class LayerCallOptions(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("training", ctypes.c_bool), ("masks", ctypes.c_void_p),
                ("training_from_context", ctypes.c_bool)]


class AddWeightOptions(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("dtype", ctypes.c_int), ("initializer", ctypes.c_char_p),
                ("initializer_config", ctypes.c_void_p), ("trainable", ctypes.c_bool),
                ("regularizer", ctypes.c_char_p), ("regularizer_config", ctypes.c_void_p)]


_SIGS.update({
    "kiln_tensor_list_create": (_ST, [_HP]),
    "kiln_tensor_list_free": (None, [_H]),
    "kiln_tensor_list_append": (_ST, [_H, _T]),
    "kiln_tensor_list_get_size": (_z, [_H]),
    "kiln_tensor_list_get": (_ST, [_HP, _H, _z]),
    "kiln_layer_create": (_ST, [_HP, _cp, _C]),
    "kiln_layer_deserialize": (_ST, [_HP, _C]),
    "kiln_layer_create_around": (_ST, [_HP, _cp, _C, ctypes.POINTER(ctypes.c_void_p), _z]),
    "kiln_layer_get_state_size": (_ST, [c_int64_p, _z, _z_p, _L]),
    "kiln_layer_set_state_size": (_ST, [_L, c_int64_p, _z]),
    "kiln_layer_serialize": (_ST, [_HP, _L]),
    "kiln_layer_get_config": (_ST, [_HP, _L]),
    "kiln_layer_clone": (_ST, [_HP, _L]),
    "kiln_layer_free": (None, [_L]),
    "kiln_layer_get_id": (ctypes.c_uint64, [_L]),
    "kiln_layer_get_name": (_cp, [_L]),
    "kiln_layer_get_class_name": (_cp, [_L]),
    "kiln_layer_get_built": (_b, [_L]),
    "kiln_layer_is_model": (_b, [_L]),
    "kiln_layer_get_trainable": (_b, [_L]),
    "kiln_layer_set_trainable": (_ST, [_L, _b]),
    "kiln_layer_build": (_ST, [_L, c_int64_p, _z_p, _z]),
    "kiln_layer_call": (_ST, [_HP, _L, _H, _b]),
    "kiln_layer_call_tensor": (_ST, [_HP, _L, _T, _b]),
    "kiln_layer_call_options_init": (_ST, [ctypes.POINTER(LayerCallOptions), _z]),
    "kiln_layer_call_with_options": (_ST, [_HP, _HP, _L, _H, ctypes.POINTER(LayerCallOptions)]),
    "kiln_layer_compute_mask": (_ST, [_HP, _L, _H, _H]),
    "kiln_layer_get_supports_masking": (_b, [_L]),
    "kiln_layer_set_supports_masking": (_ST, [_L, _b]),
    "kiln_layer_compute_output_shape": (_ST, [c_int64_p, _z, _z_p, _L, c_int64_p, _z]),
    "kiln_layer_compute_output_shapes": (_ST, [c_int64_p, _z, _z_p, _z, _z_p, _z_p, _L, c_int64_p, _z_p, _z]),
    "kiln_layer_get_variables": (_ST, [_HP, _z, _z_p, _L, _i]),
    "kiln_tape_get_watched_variables": (_ST, [_HP, _z, _z_p, _H]),
    "kiln_layer_count_params": (_ST, [c_int64_p, _L]),
    "kiln_layer_get_losses": (_ST, [_HP, _L]),
    "kiln_layer_get_num_layers": (_z, [_L]),
    "kiln_layer_get_layer": (_ST, [_HP, _L, _z]),
    "kiln_layer_get_layer_by_name": (_ST, [_HP, _L, _cp]),
    "kiln_layer_summary": (_ST, [_HP, _L, _i]),
    "kiln_sequential_add": (_ST, [_L, _L]),
    "kiln_sequential_pop": (_ST, [_L]),
    "kiln_clear_session": (None, []),
    "kiln_initializer_call": (_ST, [_HP, _C, c_int64_p, _z, _i]),
    "kiln_add_weight_options_init": (_ST, [ctypes.POINTER(AddWeightOptions), _z]),
    "kiln_layer_add_weight": (_ST, [_HP, _L, _cp, c_int64_p, _z, ctypes.POINTER(AddWeightOptions)]),
    "kiln_layer_track": (_ST, [_L, _L]),
    "kiln_layer_track_as": (_ST, [_L, _L, ctypes.c_char_p]),
    "kiln_layer_track_variable": (_ST, [_L, _H, ctypes.c_char_p]),
    "kiln_layer_add_loss": (_ST, [_L, _T]),
    "kiln_layer_adapt": (_ST, [_L, _T]),
    "kiln_layer_adapt_dataset": (_ST, [_L, ctypes.c_void_p]),
    "kiln_layer_get_vocabulary": (_ST, [_HP, _L, _b]),
    "kiln_layer_set_vocabulary": (_ST, [_L, _T, _T]),
    "kiln_layer_create_custom": (_ST, [_HP, _cp, _C, ctypes.POINTER(LayerCallbacks), ctypes.c_void_p]),
    "kiln_model_create_custom": (_ST, [_HP, _cp, _C, ctypes.POINTER(LayerCallbacks), ctypes.c_void_p]),
})

# Custom layer classes by name (from_config through a registered factory), and weak handles.
LAYER_FROM_CONFIG = ctypes.CFUNCTYPE(_ST, _HP, _C, ctypes.c_void_p)


class LayerClassCallbacks(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("from_config", LAYER_FROM_CONFIG), ("destroy", LAYER_DESTROY)]


_SIGS.update({
    "kiln_layer_clone_weak": (_ST, [_HP, _L]),
    "kiln_layer_register_class": (_ST, [_cp, ctypes.POINTER(LayerClassCallbacks), ctypes.c_void_p]),
    "kiln_layer_unregister_class": (_ST, [_cp]),
    "kiln_layer_class_is_registered": (_b, [_cp]),
})

# Losses and metrics (kiln/losses.h, kiln/metrics.h).
_SIGS.update({
    "kiln_loss_create": (_ST, [_HP, _cp, _C]),
    "kiln_loss_create_custom": (_ST, [_HP, _cp, _cp, _C, ctypes.POINTER(LossCallbacks), ctypes.c_void_p]),
    "kiln_loss_deserialize": (_ST, [_HP, _C]),
    "kiln_loss_serialize": (_ST, [_HP, _H]),
    "kiln_loss_get_config": (_ST, [_HP, _H]),
    "kiln_loss_clone": (_ST, [_HP, _H]),
    "kiln_loss_free": (None, [_H]),
    "kiln_loss_get_id": (ctypes.c_uint64, [_H]),
    "kiln_loss_get_name": (_cp, [_H]),
    "kiln_loss_get_class_name": (_cp, [_H]),
    "kiln_loss_is_registered": (_b, [_cp]),
    "kiln_loss_register_class": (_ST, [_cp, ctypes.POINTER(LossClassCallbacks), ctypes.c_void_p]),
    "kiln_loss_unregister_class": (_ST, [_cp]),
    "kiln_loss_call": (_ST, [_HP, _H, _T, _T, _T]),
    "kiln_metric_create": (_ST, [_HP, _cp, _C]),
    "kiln_metric_function_call": (_ST, [_HP, _cp, _T, _T, _C]),
    "kiln_metric_create_mean_wrapper": (_ST, [_HP, _H, _cp]),
    "kiln_metric_resolve": (_ST, [_HP, _cp, _H, c_int64_p, _z, c_int64_p, _z]),
    "kiln_metric_deserialize": (_ST, [_HP, _C]),
    "kiln_metric_serialize": (_ST, [_HP, _H]),
    "kiln_metric_get_config": (_ST, [_HP, _H]),
    "kiln_metric_clone": (_ST, [_HP, _H]),
    "kiln_metric_free": (None, [_H]),
    "kiln_metric_get_id": (ctypes.c_uint64, [_H]),
    "kiln_metric_get_name": (_cp, [_H]),
    "kiln_metric_get_class_name": (_cp, [_H]),
    "kiln_metric_takes_values": (_b, [_H]),
    "kiln_metric_update_state": (_ST, [_H, _T, _T, _T]),
    "kiln_metric_update_state_values": (_ST, [_H, _T, _T]),
    "kiln_metric_result": (_ST, [_HP, _H]),
    "kiln_metric_reset_state": (_ST, [_H]),
    "kiln_metric_get_variables": (_ST, [_HP, _z, _z_p, _H]),
    "kiln_metric_is_registered": (_b, [_cp]),
})

# Optimizers and learning-rate schedules (kiln/optimizers.h).
_SIGS.update({
    "kiln_optimizer_create": (_ST, [_HP, ctypes.c_char_p, _H]),
    "kiln_optimizer_deserialize": (_ST, [_HP, _H]),
    "kiln_optimizer_serialize": (_ST, [_HP, _H]),
    "kiln_optimizer_get_config": (_ST, [_HP, _H]),
    "kiln_optimizer_clone": (_ST, [_HP, _H]),
    "kiln_optimizer_free": (None, [_H]),
    "kiln_optimizer_get_id": (ctypes.c_uint64, [_H]),
    "kiln_optimizer_get_class_name": (ctypes.c_char_p, [_H]),
    "kiln_optimizer_get_name": (ctypes.c_char_p, [_H]),
    "kiln_optimizer_apply_gradients": (_ST, [_H, _HP, _HP, ctypes.c_size_t]),
    "kiln_optimizer_build": (_ST, [_H, _HP, ctypes.c_size_t]),
    # Python's minimize runs its own GradientTape (it also takes a tape); the C entry is for C callers.
    "kiln_optimizer_minimize": (_ST, [_HP, _H, ctypes.c_void_p, ctypes.c_void_p, _HP, ctypes.c_size_t]),
    "kiln_optimizer_get_iterations": (_ST, [c_int64_p, _H]),
    "kiln_optimizer_scale_loss": (_ST, [_HP, _H, _T]),
    "kiln_optimizer_finalize_variable_values": (_ST, [_H, _HP, ctypes.c_size_t]),
    "kiln_optimizer_get_learning_rate": (_ST, [ctypes.POINTER(ctypes.c_double), _H]),
    "kiln_optimizer_set_learning_rate": (_ST, [_H, ctypes.c_double]),
    "kiln_optimizer_set_learning_rate_schedule": (_ST, [_H, _H]),
    "kiln_optimizer_set_learning_rate_fn": (_ST, [_H, ctypes.c_char_p, LEARNING_RATE_FN, LEARNING_RATE_CONFIG_FN,
                                                 USER_DATA_DESTROY, ctypes.c_void_p]),
    "kiln_optimizer_get_variables": (_ST, [_HP, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t), _H]),
    "kiln_optimizer_get_slot": (_ST, [_HP, _H, _H, ctypes.c_char_p]),
    "kiln_optimizer_exclude_from_weight_decay": (_ST, [_H, _HP, ctypes.c_size_t, ctypes.POINTER(ctypes.c_char_p),
                                                       ctypes.c_size_t]),
    "kiln_learning_rate_schedule_call": (_ST, [ctypes.POINTER(ctypes.c_double), _H, ctypes.c_int64]),
    "kiln_learning_rate_schedule_get_config": (_ST, [_HP, _H]),
})

# The input pipeline (kiln/data.h): datasets, iterators, callback tables, readers.
GEN_START = ctypes.CFUNCTYPE(_ST, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)
GEN_NEXT = ctypes.CFUNCTYPE(_ST, ctypes.c_void_p, ctypes.POINTER(ctypes.c_bool), ctypes.c_void_p, ctypes.c_void_p)
GEN_FINISH = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
DATA_DESTROY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
MAP_FN = ctypes.CFUNCTYPE(_ST, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
PREDICATE_FN = ctypes.CFUNCTYPE(_ST, ctypes.POINTER(ctypes.c_bool), ctypes.c_void_p, ctypes.c_void_p)


class GeneratorCallbacks(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("start", GEN_START), ("next", GEN_NEXT), ("finish", GEN_FINISH),
                ("destroy", DATA_DESTROY)]


class MapCallbacks(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("map", MAP_FN), ("destroy", DATA_DESTROY)]


class PredicateCallbacks(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("predicate", PREDICATE_FN), ("destroy", DATA_DESTROY)]


class CsvOptions(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("header", ctypes.c_bool), ("delimiter", ctypes.c_char),
                ("column_types", ctypes.POINTER(ctypes.c_int)), ("num_column_types", ctypes.c_size_t),
                ("skip_text_columns", ctypes.c_bool)]


_D, _i64v = ctypes.c_void_p, ctypes.c_int64
_SIGS.update({
    "kiln_dataset_from_tensors": (_ST, [_HP, _H, ctypes.POINTER(ctypes.c_char_p)]),
    "kiln_dataset_from_tensor_slices": (_ST, [_HP, _H, ctypes.POINTER(ctypes.c_char_p)]),
    "kiln_dataset_range": (_ST, [_HP, _i64v, _i64v, _i64v]),
    "kiln_dataset_from_generator": (_ST, [_HP, ctypes.POINTER(GeneratorCallbacks), ctypes.c_void_p]),
    "kiln_dataset_shuffle": (_ST, [_HP, _D, _i64v, _i64v, ctypes.c_bool]),
    "kiln_dataset_batch": (_ST, [_HP, _D, _i64v, ctypes.c_bool]),
    "kiln_dataset_padded_batch": (_ST, [_HP, _D, _i64v, c_int64_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                                        _H, ctypes.c_bool]),
    "kiln_dataset_map": (_ST, [_HP, _D, _i64v, ctypes.POINTER(MapCallbacks), ctypes.c_void_p]),
    "kiln_dataset_filter": (_ST, [_HP, _D, ctypes.POINTER(PredicateCallbacks), ctypes.c_void_p]),
    "kiln_dataset_repeat": (_ST, [_HP, _D, _i64v]),
    "kiln_dataset_take": (_ST, [_HP, _D, _i64v]),
    "kiln_dataset_skip": (_ST, [_HP, _D, _i64v]),
    "kiln_dataset_shard": (_ST, [_HP, _D, _i64v, _i64v]),
    "kiln_dataset_zip": (_ST, [_HP, _HP, ctypes.c_size_t]),
    "kiln_dataset_concatenate": (_ST, [_HP, _D, _D]),
    "kiln_dataset_cache": (_ST, [_HP, _D]),
    "kiln_dataset_prefetch": (_ST, [_HP, _D, _i64v]),
    "kiln_dataset_unbatch": (_ST, [_HP, _D]),
    "kiln_dataset_enumerate": (_ST, [_HP, _D, _i64v]),
    "kiln_dataset_get_cardinality": (_ST, [c_int64_p, _D]),
    "kiln_dataset_get_num_names": (ctypes.c_size_t, [_D]),
    "kiln_dataset_get_name": (ctypes.c_char_p, [_D, ctypes.c_size_t]),
    "kiln_dataset_clone": (_ST, [_HP, _D]),
    "kiln_dataset_free": (None, [_D]),
    "kiln_dataset_make_iterator": (_ST, [_HP, _D]),
    "kiln_iterator_next": (_ST, [_HP, ctypes.POINTER(ctypes.c_bool), _H]),
    "kiln_iterator_free": (None, [_H]),
    "kiln_read_idx": (_ST, [_HP, ctypes.c_char_p]),
    "kiln_load_fashion_mnist": (_ST, [_HP, _HP, _HP, _HP, ctypes.c_char_p]),
    "kiln_csv_options_init": (_ST, [ctypes.POINTER(CsvOptions), ctypes.c_size_t]),
    "kiln_dataset_from_csv": (_ST, [_HP, ctypes.c_char_p, ctypes.POINTER(CsvOptions)]),
})

# Callbacks (kiln/callbacks.h).
_SIGS.update({
    "kiln_callback_create": (_ST, [_HP, _cp, _C]),
    "kiln_callback_clone": (_ST, [_HP, _H]),
    "kiln_callback_free": (None, [_H]),
    "kiln_callback_get_class_name": (_cp, [_H]),
    "kiln_callback_get_history": (_ST, [_HP, _H]),
})

# Callbacks in Python (kiln/callbacks.h: the callback table, the schedule function, routes).
CB_HOOK = ctypes.CFUNCTYPE(_ST, _L, _C, ctypes.c_void_p)
CB_INDEX_HOOK = ctypes.CFUNCTYPE(_ST, _L, ctypes.c_int64, _C, ctypes.c_void_p)
CB_DESTROY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
LR_SCHEDULE = ctypes.CFUNCTYPE(_ST, ctypes.POINTER(ctypes.c_double), ctypes.c_int64, ctypes.c_double,
                               ctypes.c_void_p)
TEXT_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
IS_TERMINAL_FN = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p)
CALLBACK_HOOKS = (("on_train_begin", False), ("on_train_end", False), ("on_epoch_begin", True),
                  ("on_epoch_end", True), ("on_train_batch_begin", True), ("on_train_batch_end", True),
                  ("on_test_begin", False), ("on_test_end", False), ("on_test_batch_begin", True),
                  ("on_test_batch_end", True), ("on_predict_begin", False), ("on_predict_end", False),
                  ("on_predict_batch_begin", True), ("on_predict_batch_end", True))


class CallbackTable(_Struct):
    _fields_ = ([("struct_size", ctypes.c_size_t)]
                + [(name, CB_INDEX_HOOK if indexed else CB_HOOK) for name, indexed in CALLBACK_HOOKS]
                + [("destroy", CB_DESTROY)])


_SIGS.update({
    "kiln_callback_create_custom": (_ST, [_HP, _cp, ctypes.POINTER(CallbackTable), ctypes.c_void_p]),
    "kiln_callback_create_lr_scheduler": (_ST, [_HP, ctypes.c_int, LR_SCHEDULE, CB_DESTROY, ctypes.c_void_p]),
    "kiln_callback_call_hook": (_ST, [_H, _cp, ctypes.c_int64, _C]),
    "kiln_callback_set_model": (_ST, [_H, _L]),
    "kiln_callback_get_params": (_ST, [_HP, _H]),
    "kiln_callback_get_attributes": (_ST, [_HP, _H]),
    "kiln_set_progress_callback": (_ST, [TEXT_FN, IS_TERMINAL_FN, ctypes.c_void_p]),
    "kiln_set_warning_callback": (_ST, [TEXT_FN, ctypes.c_void_p]),
})

# The training loop (kiln/training.h): options structs, the step-callbacks table, entry points.
_vpp, _dp = ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_double)


class CompileOptions(_Struct):
    _fields_ = [("struct_size", _z), ("optimizer", _H), ("optimizer_name", _cp), ("losses", _vpp),
                ("num_losses", _z), ("loss_names", _ccp), ("num_loss_names", _z), ("loss_weights", _dp),
                ("num_loss_weights", _z), ("metric_names", _ccp), ("num_metric_names", _z), ("metrics", _vpp),
                ("num_metrics", _z), ("run_eagerly", _b), ("metric_is_object", ctypes.POINTER(ctypes.c_bool)),
                ("num_metric_is_object", _z), ("metric_is_weighted", ctypes.POINTER(ctypes.c_bool)),
                ("num_metric_is_weighted", _z)]


class FitOptions(_Struct):
    _fields_ = [("struct_size", _z), ("x", _H), ("y", _H), ("sample_weight", _H), ("dataset", _H),
                ("num_inputs", _z), ("batch_size", _i64), ("epochs", _i64), ("verbose", _i), ("callbacks", _vpp),
                ("num_callbacks", _z), ("validation_split", _d), ("validation_x", _H), ("validation_y", _H),
                ("validation_sample_weight", _H), ("validation_dataset", _H), ("validation_freq", c_int64_p),
                ("num_validation_freq", _z), ("shuffle", _b), ("class_weight", _dp), ("num_class_weight", _z),
                ("initial_epoch", _i64), ("steps_per_epoch", _i64), ("validation_steps", _i64),
                ("validation_batch_size", _i64), ("distribution", _H)]


class EvaluateOptions(_Struct):
    _fields_ = [("struct_size", _z), ("x", _H), ("y", _H), ("sample_weight", _H), ("dataset", _H),
                ("num_inputs", _z), ("batch_size", _i64), ("verbose", _i), ("steps", _i64), ("callbacks", _vpp),
                ("num_callbacks", _z)]


class PredictOptions(_Struct):
    _fields_ = [("struct_size", _z), ("x", _H), ("dataset", _H), ("num_inputs", _z), ("batch_size", _i64),
                ("verbose", _i), ("steps", _i64), ("callbacks", _vpp), ("num_callbacks", _z)]


# kiln_status *(*)(kiln_config *logs, kiln_layer *model, const kiln_tensor_list *data, void *user_data)
MODEL_STEP = ctypes.CFUNCTYPE(_ST, _C, _L, _H, ctypes.c_void_p)
MODEL_STEP_DESTROY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class ModelStepCallbacks(_Struct):
    _fields_ = [("struct_size", _z), ("train_step", MODEL_STEP), ("test_step", MODEL_STEP),
                ("destroy", MODEL_STEP_DESTROY)]


_SIGS.update({
    "kiln_compile_options_init": (_ST, [ctypes.POINTER(CompileOptions), _z]),
    "kiln_model_compile": (_ST, [_L, ctypes.POINTER(CompileOptions)]),
    "kiln_model_is_compiled": (_b, [_L]),
    "kiln_model_get_optimizer": (_ST, [_HP, _L]),
    "kiln_model_set_stop_training": (_ST, [_L, _b]),
    "kiln_model_get_stop_training": (_b, [_L]),
    "kiln_model_get_metrics_names": (_ST, [_HP, _L]),
    "kiln_model_get_metrics": (_ST, [_HP, _z, ctypes.POINTER(_z), _L]),
    "kiln_fit_options_init": (_ST, [ctypes.POINTER(FitOptions), _z]),
    "kiln_model_fit": (_ST, [_HP, _L, ctypes.POINTER(FitOptions)]),
    "kiln_evaluate_options_init": (_ST, [ctypes.POINTER(EvaluateOptions), _z]),
    "kiln_model_evaluate": (_ST, [_HP, _L, ctypes.POINTER(EvaluateOptions)]),
    "kiln_predict_options_init": (_ST, [ctypes.POINTER(PredictOptions), _z]),
    "kiln_model_predict": (_ST, [_HP, _L, ctypes.POINTER(PredictOptions)]),
    "kiln_model_train_on_batch": (_ST, [_HP, _L, _H, _H, _T, _dp, _z]),
    "kiln_model_test_on_batch": (_ST, [_HP, _L, _H, _H, _T]),
    "kiln_model_predict_on_batch": (_ST, [_HP, _L, _H]),
    "kiln_model_set_step_callbacks": (_ST, [_L, ctypes.POINTER(ModelStepCallbacks), ctypes.c_void_p]),
    "kiln_model_compute_loss": (_ST, [_HP, _L, _H, _H, _H, _T]),
    "kiln_model_compute_metrics": (_ST, [_HP, _L, _H, _H, _H, _T]),
})

# Mixed precision (kiln/layers.h: dtype policies).
_SIGS.update({
    "kiln_dtype_policy_get_dtypes": (_ST, [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int), ctypes.c_char_p]),
    "kiln_set_global_dtype_policy": (_ST, [ctypes.c_char_p]),
    "kiln_get_global_dtype_policy": (_ST, [_HP]),
    "kiln_layer_get_dtype_policy": (ctypes.c_char_p, [_H]),
    "kiln_layer_get_compute_dtype": (ctypes.c_int, [_H]),
    "kiln_layer_get_variable_dtype": (ctypes.c_int, [_H]),
})

# Reading TensorFlow checkpoints (kiln/checkpoint.h).
_SIGS.update({
    "kiln_checkpoint_reader_open": (_ST, [_HP, _cp]),
    "kiln_checkpoint_reader_free": (None, [_H]),
    "kiln_checkpoint_reader_get_prefix": (_ST, [_ccp, _H]),
    "kiln_checkpoint_reader_get_num_variables": (_ST, [_z_p, _H]),
    "kiln_checkpoint_reader_get_name": (_ST, [_ccp, _H, _z]),
    "kiln_checkpoint_reader_find": (_ST, [_z_p, _H, _cp]),
    "kiln_checkpoint_reader_has_tensor": (_ST, [ctypes.POINTER(_b), _H, _cp]),
    "kiln_checkpoint_reader_get_dtype_name": (_ST, [_ccp, _H, _z]),
    "kiln_checkpoint_reader_get_dtype": (_ST, [ctypes.POINTER(_i), _H, _z]),
    "kiln_checkpoint_reader_get_shape": (_ST, [c_int64_p, _z, _z_p, _H, _z]),
    "kiln_checkpoint_reader_get_byte_size": (_ST, [_z_p, _H, _z]),
    "kiln_checkpoint_reader_get_tensor": (_ST, [_HP, _H, _cp]),
})

# Writing and restoring checkpoints (kiln/checkpoint.h). Paths come back as char * to free with
# kiln_string_free, so they are declared c_void_p (c_char_p would lose the pointer).
_SIGS.update({
    "kiln_checkpoint_create": (_ST, [_HP]),
    "kiln_checkpoint_free": (None, [_H]),
    "kiln_checkpoint_track_layer": (_ST, [_H, _cp, _L]),
    "kiln_checkpoint_track_optimizer": (_ST, [_H, _cp, _H]),
    "kiln_checkpoint_track_variable": (_ST, [_H, _cp, _H]),
    "kiln_checkpoint_track_checkpoint": (_ST, [_H, _cp, _H]),
    "kiln_checkpoint_track_global_rng": (_ST, [_H, _cp]),
    "kiln_checkpoint_save": (_ST, [_HP, _H, _cp]),
    "kiln_checkpoint_write": (_ST, [_HP, _H, _cp]),
    "kiln_checkpoint_restore": (_ST, [_HP, _H, _cp]),
    "kiln_checkpoint_read": (_ST, [_HP, _H, _cp]),
    "kiln_checkpoint_get_save_counter": (_ST, [c_int64_p, _H]),
    "kiln_checkpoint_load_status_free": (None, [_H]),
    "kiln_checkpoint_load_status_expect_partial": (_ST, [_H]),
    "kiln_checkpoint_load_status_assert_consumed": (_ST, [_H]),
    "kiln_checkpoint_load_status_assert_existing_objects_matched": (_ST, [_H]),
    "kiln_checkpoint_load_status_assert_nontrivial_match": (_ST, [_H]),
    "kiln_checkpoint_load_status_get_info": (_ST, [_HP, _H]),
    "kiln_checkpoint_manager_create": (_ST, [_HP, _H, _cp, _C]),
    "kiln_checkpoint_manager_free": (None, [_H]),
    "kiln_checkpoint_manager_save": (_ST, [_HP, _H, _i64]),
    "kiln_checkpoint_manager_get_latest_checkpoint": (_ST, [_HP, _H]),
    "kiln_checkpoint_manager_get_checkpoints": (_ST, [_HP, _H]),
    "kiln_checkpoint_manager_get_directory": (_ST, [_ccp, _H]),
    "kiln_checkpoint_manager_restore_or_initialize": (_ST, [_HP, _H]),
    "kiln_latest_checkpoint": (_ST, [_HP, _cp]),
    "kiln_model_save_weights": (_ST, [_L, _cp]),
    "kiln_model_load_weights": (_ST, [_HP, _L, _cp]),
})

# tf.compat.v1.train.init_from_checkpoint (kiln/init_from_checkpoint.h).
class InitFromCheckpointOptions(_Struct):
    """kiln_init_from_checkpoint_options (include/kiln/init_from_checkpoint.h), field for field."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("skip_optimizer_state", ctypes.c_bool),
                ("allow_missing", ctypes.c_bool), ("skip_mismatched", ctypes.c_bool),
                ("allow_reshape", ctypes.c_bool)]


_SIGS.update({
    "kiln_init_from_checkpoint_options_init": (_ST, [ctypes.POINTER(InitFromCheckpointOptions), ctypes.c_size_t]),
    "kiln_init_from_checkpoint": (_ST, [_HP, _H, _HP, ctypes.c_size_t, ctypes.c_char_p,
                                        ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p), _HP,
                                        ctypes.c_size_t, ctypes.POINTER(InitFromCheckpointOptions)]),
})

# The SavedModel (kiln/saved_model.h).
_SPEC_ARGS = [_ccp, ctypes.POINTER(ctypes.c_int), c_int64_p, _z, _z_p, _H, _z]
_SIGS.update({
    "kiln_saved_model_save": (_ST, [_L, _cp, _C]),
    "kiln_saved_model_load": (_ST, [_HP, _cp, _C]),
    "kiln_saved_model_load_model": (_ST, [_HP, _cp, _C]),
    "kiln_saved_model_free": (None, [_H]),
    "kiln_saved_model_get_model": (_ST, [_HP, _H]),
    "kiln_saved_model_get_kiln_version": (_ST, [_ccp, _H]),
    "kiln_saved_model_get_num_signatures": (_ST, [_z_p, _H]),
    "kiln_saved_model_get_signature_key": (_ST, [_ccp, _H, _z]),
    "kiln_saved_model_get_signature": (_ST, [_HP, _H, _cp]),
    "kiln_saved_model_signature_get_num_inputs": (_ST, [_z_p, _H]),
    "kiln_saved_model_signature_get_num_outputs": (_ST, [_z_p, _H]),
    "kiln_saved_model_signature_get_input": (_ST, _SPEC_ARGS),
    "kiln_saved_model_signature_get_output": (_ST, _SPEC_ARGS),
    "kiln_saved_model_signature_run": (_ST, [_HP, _H, _HP, _z]),
    "kiln_saved_model_signature_run_named": (_ST, [_HP, _H, _ccp, _HP, _z]),
})

# TensorBoard logging (kiln/summary.h).
class SummaryWriterOptions(_Struct):
    _fields_ = [("struct_size", ctypes.c_size_t), ("max_queue", ctypes.c_int64), ("flush_millis", ctypes.c_int64),
                ("filename_suffix", ctypes.c_char_p)]


_bp = ctypes.POINTER(_b)
_SIGS.update({
    "kiln_summary_writer_options_init": (_ST, [ctypes.POINTER(SummaryWriterOptions), ctypes.c_size_t]),
    "kiln_summary_create_file_writer": (_ST, [_HP, _cp, ctypes.POINTER(SummaryWriterOptions)]),
    "kiln_summary_writer_clone": (_ST, [_HP, _H]),
    "kiln_summary_writer_free": (None, [_H]),
    "kiln_summary_writer_flush": (_ST, [_H]),
    "kiln_summary_writer_close": (_ST, [_H]),
    "kiln_summary_writer_get_path": (_cp, [_H]),
    "kiln_summary_writer_get_logdir": (_cp, [_H]),
    "kiln_summary_writer_push_default": (_ST, [_H, c_int64_p]),
    "kiln_summary_writer_pop_default": (_ST, []),
    "kiln_summary_set_step": (_ST, [_i64]),
    "kiln_summary_set_step_variable": (_ST, [_H]),
    "kiln_summary_set_step_optimizer": (_ST, [_H]),
    "kiln_summary_clear_step": (_ST, []),
    "kiln_summary_get_step": (_ST, [c_int64_p, _bp]),
    "kiln_summary_record_if": (_ST, [_b]),
    "kiln_summary_should_record": (_ST, [_bp]),
    "kiln_summary_scalar": (_ST, [_cp, _d, c_int64_p, _cp, _bp]),
    "kiln_summary_histogram": (_ST, [_cp, _T, c_int64_p, _i64, _cp, _bp]),
    "kiln_summary_image": (_ST, [_cp, _T, c_int64_p, _i64, _cp, _bp]),
    "kiln_summary_text": (_ST, [_cp, _cp, c_int64_p, _cp, _bp]),
    "kiln_summary_hparams": (_ST, [_C, _cp, _bp]),
    "kiln_summary_hparams_end": (_ST, [_cp, _bp]),
    "kiln_summary_hparams_config": (_ST, [_C, _bp]),
    "kiln_summary_trace_on": (_ST, []),
    "kiln_summary_trace_export": (_ST, [_cp, c_int64_p, _bp]),
    "kiln_summary_trace_off": (_ST, []),
    "kiln_summary_read_events": (_ST, [_HP, _cp]),
})

# kiln_status *(*allreduce_sum)(void *data, size_t count, kiln_dtype dtype, void *user_data) and the rest
# of kiln_communicator_table (kiln/communicator.h).
COMM_ALLREDUCE = ctypes.CFUNCTYPE(_ST, ctypes.c_void_p, _z, _i, ctypes.c_void_p)
COMM_BROADCAST = ctypes.CFUNCTYPE(_ST, ctypes.c_void_p, _z, _i, ctypes.c_void_p)
COMM_DESTROY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class CommunicatorTable(_Struct):
    _fields_ = [("struct_size", _z), ("allreduce_sum", COMM_ALLREDUCE), ("broadcast", COMM_BROADCAST),
                ("destroy", COMM_DESTROY)]


_SIGS.update({
    "kiln_communicator_create": (_ST, [_HP, _i, _i, ctypes.POINTER(CommunicatorTable), ctypes.c_void_p]),
    "kiln_communicator_clone": (_ST, [_HP, _H]),
    "kiln_communicator_free": (None, [_H]),
    "kiln_communicator_get_rank": (_i, [_H]),
    "kiln_communicator_get_size": (_i, [_H]),
    "kiln_communicator_broadcast_variables": (_ST, [_H, _HP, _z, _i]),
    "kiln_optimizer_set_distributed": (_ST, [_H, _H, _C]),
    "kiln_tape_set_distributed": (_ST, [_H, _H, _C]),
    "kiln_optimizer_get_distributed": (_ST, [_HP, _H]),
})

# libkiln_mpi.so's functions (kiln/distributed.h): declared on that library by kiln.distributed.
DIST_SIGS = {
    "kiln_dist_init": (_ST, [_C]),
    "kiln_dist_finalize": (_ST, []),
    "kiln_dist_is_initialized": (_b, []),
    "kiln_dist_abort": (None, [_i]),
    "kiln_dist_rank": (_ST, [ctypes.POINTER(_i)]),
    "kiln_dist_size": (_ST, [ctypes.POINTER(_i)]),
    "kiln_dist_local_rank": (_ST, [ctypes.POINTER(_i)]),
    "kiln_dist_local_size": (_ST, [ctypes.POINTER(_i)]),
    "kiln_dist_allreduce": (_ST, [_HP, _T, _cp]),
    "kiln_dist_allreduce_variable": (_ST, [_H, _cp]),
    "kiln_dist_broadcast": (_ST, [_HP, _T, _i]),
    "kiln_dist_allgather": (_ST, [_HP, _T]),
    "kiln_dist_barrier": (_ST, []),
    "kiln_dist_communicator": (_ST, [_HP]),
}
_SIGS.update(DIST_SIGS)

def _checked(fn, name, int_checks, str_checks):
    def call(*args):
        for i, lo, hi in int_checks:
            if i >= len(args):  # too few arguments: ctypes' own TypeError says so
                break
            bad = _out_of_range(args[i], lo, hi)
            if bad is not None:
                raise _invalid("%s: argument %d is %d, which its C parameter cannot hold; expected %d to %d"
                               % (name, i + 1, bad, lo, hi))
        for i in str_checks:
            if i < len(args) and _nul_in(args[i]):
                raise _invalid("%s: argument %d contains a NUL byte (%r); expected a string without one (a NUL "
                               "would end it early)" % (name, i + 1, bytes(args[i])[:80]))
        return fn(*args)
    call.__name__ = name
    return call


def _declare(library, name, res, args):
    fn = getattr(library, name)
    fn.restype = res
    fn.argtypes = args
    checks = [(i, *_INT_RANGES[t]) for i, t in enumerate(args) if t in _INT_RANGES]
    # A status message may hold anything (a callback's exception text): C ends it at a NUL, and
    # refusing it would lose the exception the message carries.
    strings = [i for i, t in enumerate(args) if t is ctypes.c_char_p] if name != "kiln_status_create" else []
    if checks or strings:
        setattr(library, name, _checked(fn, name, checks, strings))


for _name, (_res, _args) in _SIGS.items():
    if _name not in DIST_SIGS:
        _declare(lib, _name, _res, _args)

STATUS_NAMES = {1: "InvalidArgument", 2: "NotFound", 3: "OutOfRange", 4: "FailedPrecondition", 5: "DataLoss",
                6: "Unimplemented", 7: "ResourceExhausted", 8: "Internal"}
