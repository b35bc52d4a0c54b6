"""kiln: a TensorFlow-2/Keras-style deep-learning library (Python binding over the C ABI, ctypes only).

    import kiln
    x = kiln.constant([1.0, 2.0, 3.0])
    with kiln.GradientTape() as tape:
        tape.watch(x)
        y = kiln.reduce_sum(x * x)
    print(tape.gradient(y, x).numpy())   # [2. 4. 6.]
"""
from types import SimpleNamespace as _NS

from . import _lib
from . import ops as _ops
from .autodiff import GradientTape, Variable
from .errors import (DataLossError, FailedPreconditionError, InternalError, InvalidArgumentError, KilnError,
                     NotFoundError, OutOfRangeError, ResourceExhaustedError, UnimplementedError)
from .ops import *  # noqa: F401,F403
from .ops import (abs, add, argmax, avg_pool2d, batch_norm, conv2d, div, dropout, elu, equal, exp, gelu, greater,
                  greater_equal, layer_norm, leaky_relu, less, less_equal, log, log_softmax, logical_and,
                  logical_not, logical_or, logical_xor, matmul, max, max_pool2d, maximum, mean, min, minimum, mul,
                  neg, not_equal, pow, relu, rsqrt, sigmoid, softmax, softplus, sqrt, square, sub, sum, swish, tanh)
from .tensor import (Tensor, TensorShape, bfloat16, bool_, constant, convert_to_tensor, float32, float64, int32,
                     int64, uint8)

__version__ = _lib.lib.kiln_version().decode()


def abi_version():
    return _lib.lib.kiln_abi_version()


def set_seed(seed):
    """tf.random.set_seed: sets the global seed and restarts the op-seed sequence. A negative seed
    is taken as its 64-bit two's complement, as the C call's uint64 has always received it."""
    seed = int(seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        from .errors import InvalidArgumentError
        raise InvalidArgumentError("set_seed: seed %d does not fit 64 bits; expected -2**63 to 2**64 - 1" % seed)
    _lib.lib.kiln_set_seed(seed & (2 ** 64 - 1))


def set_num_threads(n):
    from .errors import check
    check(_lib.lib.kiln_set_num_threads(int(n)))


def get_num_threads():
    """The kernel thread count for the calling thread: its override if set, else the global count
    (1 on the thread that forked, in a forked child: libgomp's threads do not survive fork)."""
    return _lib.lib.kiln_get_num_threads()


def set_num_threads_for_this_thread(n):
    """Overrides the kernel thread count for the calling thread only; 0 removes the override.

    OpenMP teams belong to the thread that starts them, so input-pipeline worker threads can run
    kernels at 1 thread beside a training thread using every core. Results do not depend on the
    count. Raises InvalidArgumentError outside 0..max(64, 4 x processors)."""
    from .errors import check
    check(_lib.lib.kiln_set_num_threads_for_this_thread(int(n)))


def get_num_threads_for_this_thread():
    """The calling thread's override; 0 when it has none."""
    return _lib.lib.kiln_get_num_threads_for_this_thread()


class thread_count:
    """Context manager: `with kiln.thread_count(1): ...` runs the block's kernels on the calling
    thread at n threads and restores the previous override (or none) on exit."""

    def __init__(self, n):
        self._n = int(n)
        self._previous = None

    def __enter__(self):
        previous = get_num_threads_for_this_thread()
        set_num_threads_for_this_thread(self._n)
        self._previous = previous
        return self

    def __exit__(self, *exc):
        set_num_threads_for_this_thread(self._previous)
        return False


def primitive_cache_stats():
    """oneDNN primitive cache counters: dict(hits, misses, size)."""
    import ctypes
    v = [ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()]
    _lib.lib.kiln_primitive_cache_stats(*[ctypes.byref(x) for x in v])
    return {"hits": v[0].value, "misses": v[1].value, "size": v[2].value}


def allocator_stats():
    """Tensor buffer allocator counters: dict(system_allocs, cache_hits)."""
    import ctypes
    v = [ctypes.c_int64(), ctypes.c_int64()]
    _lib.lib.kiln_allocator_stats(*[ctypes.byref(x) for x in v])
    return {"system_allocs": v[0].value, "cache_hits": v[1].value}


def empty_cache():
    """Returns every cached free tensor buffer to the system, as torch.cuda.empty_cache() does.

    Returns the number of bytes released. Tensors still referenced keep their memory.
    """
    return _lib.lib.kiln_allocator_release_cached()


# TensorFlow-style namespaces.
nn = _NS(relu=relu, gelu=gelu, sigmoid=sigmoid, tanh=tanh, softplus=softplus, elu=elu, leaky_relu=leaky_relu,
         swish=swish, silu=swish, softmax=softmax, log_softmax=log_softmax, dropout=dropout, conv2d=conv2d,
         max_pool2d=max_pool2d, avg_pool2d=avg_pool2d, layer_norm=layer_norm, batch_norm=batch_norm)
# Convolutions beside conv2d, kept in their own statement for merging.
nn.conv2d_transpose, nn.depthwise_conv2d, nn.conv1d = conv2d_transpose, depthwise_conv2d, conv1d  # noqa: F405
nn.conv3d, nn.conv3d_transpose, nn.max_pool3d, nn.avg_pool3d = conv3d, conv3d_transpose, max_pool3d, avg_pool3d  # noqa: F405
image = _NS(resize=image_resize, affine_transform=affine_transform, rgb_to_hsv=rgb_to_hsv,  # noqa: F405
            hsv_to_rgb=hsv_to_rgb, rgb_to_grayscale=rgb_to_grayscale,  # noqa: F405
            perspective_transform=perspective_transform)  # noqa: F405
math = _NS(add=add, subtract=sub, multiply=mul, divide=div, maximum=maximum, minimum=minimum, pow=pow, negative=neg,
           abs=abs, exp=exp, log=log, sqrt=sqrt, rsqrt=rsqrt, square=square, tanh=tanh, sigmoid=sigmoid,
           equal=equal, not_equal=not_equal, greater=greater, greater_equal=greater_equal, less=less,
           less_equal=less_equal, logical_and=logical_and, logical_or=logical_or, logical_xor=logical_xor,
           logical_not=logical_not, reduce_sum=sum, reduce_mean=mean, reduce_max=max, reduce_min=min,
           argmax=argmax, softplus=softplus)
random = _NS(uniform=lambda shape, minval=0, maxval=None, dtype="float32", seed=None: random_uniform(
    shape, minval, maxval, seed, dtype),
             normal=lambda shape, mean=0.0, stddev=1.0, seed=None: random_normal(shape, mean, stddev, seed),
             truncated_normal=lambda shape, mean=0.0, stddev=1.0, seed=None: truncated_normal(shape, mean, stddev,
                                                                                           seed),
             set_seed=set_seed, gamma=_ops.random_gamma,
             shuffle=lambda value, seed=None, name=None: _ops.random_shuffle(value, 0, seed),
             stateless_uniform=_ops.stateless_random_uniform, stateless_normal=_ops.stateless_random_normal,
             stateless_truncated_normal=_ops.stateless_truncated_normal)
nn.experimental = _NS(stateless_dropout=_ops.stateless_dropout)
linalg = _NS(matmul=matmul)

# Losses, extra reductions, scans, floor division and einsum (issue 5, section 6), under TF's names.
from . import ops_math as _om  # noqa: E402
from .ops_math import *  # noqa: E402,F401,F403

for _ns, _names in ((nn, ("sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
                            "sigmoid_cross_entropy_with_logits", "ctc_loss", "bias_add", "moments", "l2_normalize",
                            "top_k")),
                    (math, ("reduce_prod", "reduce_any", "reduce_all", "reduce_logsumexp", "argmin", "l2_normalize",
                            "cumsum", "cumprod", "top_k", "floordiv", "floormod", "truediv")),
                    (linalg, ("einsum", "global_norm"))):
    for _n in _names:
        setattr(_ns, _n, getattr(_om, _n))
math.mod = _om.floormod
# tf.divide / tf.math.divide are Python's / (truediv): int32 / int32 gives float64.
divide = math.divide = _om.truediv


def _variable_operators():
    """Variables take the operators above too (their value's)."""
    from .autodiff import Variable as _V, _as_value
    for _name in ("floordiv", "mod", "truediv"):
        for _form in ("__%s__", "__r%s__"):
            setattr(_V, _form % _name, _as_value(_form % _name))
    _V.__getitem__ = _as_value("__getitem__")


_variable_operators()
# tf.math / tf.nn names of the ops that came with kiln's SIMD kernels.
from .ops import cos, expm1, floor, log1p, relu6, round, selu, sign, sin  # noqa: E402,F811,A004
math.__dict__.update(log1p=log1p, expm1=expm1, floor=floor, round=round, sign=sign, sin=sin, cos=cos)
nn.__dict__.update(relu6=relu6, selu=selu)

# Keras: kiln.layers, kiln.Model, kiln.Sequential, and the same under kiln.keras.
from . import initializers, layers, regularizers, saving  # noqa: E402
from . import losses, metrics  # noqa: E402
from .layers import Model, Sequential  # noqa: E402
from . import optimizers  # noqa: E402
from . import callbacks  # noqa: E402
from .communicator import Communicator  # noqa: E402

def _only(name, current):
    """keras.backend.set_*: kiln's value is fixed; the current one is accepted, others refused."""
    def setter(value):
        if value != current:
            raise UnimplementedError("keras.backend.%s(%r): kiln's %s is %r (give layers a dtype, or a mixed "
                                     "precision policy, instead)" % (name, value, name[4:], current))
    setter.__name__ = name
    return setter


def _get_value(x):
    """keras.backend.get_value (Keras 2): a tensor or variable as NumPy, a number as it is."""
    return x.numpy() if hasattr(x, "numpy") else x


def _set_value(x, value):
    """keras.backend.set_value (Keras 2): x.assign(value), e.g. set_value(optimizer.learning_rate, 1e-4)."""
    if not hasattr(x, "assign"):
        raise InvalidArgumentError("keras.backend.set_value: %r has no assign(); expected a variable or "
                                   "optimizer.learning_rate" % (x,))
    x.assign(value)


_backend = _NS(clear_session=layers.clear_session, get_value=_get_value, set_value=_set_value, floatx=lambda: "float32", set_floatx=_only("set_floatx", "float32"),
               epsilon=lambda: 1e-7, set_epsilon=_only("set_epsilon", 1e-7),
               image_data_format=lambda: "channels_last",
               set_image_data_format=_only("set_image_data_format", "channels_last"))
keras = _NS(layers=layers, Model=Model, Sequential=Sequential, Input=layers.Input, initializers=initializers, regularizers=regularizers,
            saving=saving, losses=losses, metrics=metrics, optimizers=optimizers, callbacks=callbacks, backend=_backend,
            utils=_NS(register_keras_serializable=saving.register_keras_serializable,
                      custom_object_scope=saving.custom_object_scope,
                      get_registered_name=saving.get_registered_name,
                      get_registered_object=saving.get_registered_object),
            # keras.ops holds only the CTC pair and some of ops.image so far; kiln's other ops are under
            # TF's names.
            random=_NS(uniform=lambda shape, minval=0.0, maxval=1.0, dtype=None, seed=None: random_uniform(
                shape, minval, maxval, seed, dtype or "float32"),
                normal=lambda shape, mean=0.0, stddev=1.0, dtype=None, seed=None: _ops._floating_out(
                    random_normal(shape, mean, stddev, seed), dtype, "random.normal"),
                gamma=lambda shape, alpha, dtype=None, seed=None: _ops.random_gamma(shape, alpha, None, dtype, seed),
                beta=_ops.random_beta, shuffle=_ops.random_shuffle),
            ops=_NS(ctc_loss=_om.keras_ctc_loss, ctc_decode=_om.ctc_decode,
                    image=_NS(affine_transform=affine_transform, rgb_to_hsv=_ops._keras_rgb_to_hsv,  # noqa: F405
                              hsv_to_rgb=_ops._keras_hsv_to_rgb, rgb_to_grayscale=_ops._keras_rgb_to_grayscale,
                              perspective_transform=perspective_transform)))  # noqa: F405


def _set_random_seed(seed):
    """keras.utils.set_random_seed: kiln's global seed (and Python's and NumPy's, as Keras seeds them)."""
    import random as _random
    _random.seed(seed)
    try:
        import numpy as _np
        _np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass
    set_seed(seed)


def _to_categorical(x, num_classes=None):
    """keras.utils.to_categorical: class ids (a trailing axis of 1 dropped) as one-hot float32 rows of
    num_classes (the largest id + 1 by default); a NumPy array when NumPy is importable."""
    try:
        import numpy as _np
    except ImportError:  # pragma: no cover
        ids = x if isinstance(x, Tensor) else constant(x)
        depth = int(num_classes) if num_classes is not None else int(math.reduce_max(ids).numpy()) + 1
        return one_hot(ids, depth, dtype="float32")
    y = _np.asarray(x.numpy() if isinstance(x, Tensor) else x)
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and _np.all(_np.floor(y) == y)):
        raise InvalidArgumentError("to_categorical: class ids must be integers; got %s values" % y.dtype)
    y = y.astype(_np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    depth = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and (y.min() < 0 or y.max() >= depth):
        raise InvalidArgumentError("to_categorical: class ids must be in [0, %d); got ids from %d to %d"
                                   % (depth, int(y.min()), int(y.max())))
    out = _np.zeros(y.shape + (depth,), _np.float32)
    _np.put_along_axis(out, y[..., None], 1.0, axis=-1)
    return out


keras.utils.set_random_seed, keras.utils.to_categorical = _set_random_seed, _to_categorical


def function(func=None, input_signature=None, autograph=True, jit_compile=None, reduce_retracing=False, **kwargs):
    """tf.function: kiln runs eagerly (no graphs to trace), so the function is returned as it is and
    runs as written; the decorator (@kiln.function or @kiln.function(...)) may stay in code ported
    from TensorFlow."""
    del input_signature, autograph, jit_compile, reduce_retracing, kwargs
    if func is None:
        return lambda f: f
    if not callable(func):
        raise TypeError("function: expected a callable; got %r" % (func,))
    return func


def shape(input, out_type="int32", name=None):  # noqa: A002 - TF's argument name
    """tf.shape: the dims of input as a 1-D int32 (or out_type) tensor."""
    del name
    x = input if isinstance(input, Tensor) else convert_to_tensor(input)
    return constant(list(x.shape), out_type)


def rank(input, name=None):  # noqa: A002 - TF's argument name
    """tf.rank: the number of dims of input as a scalar int32 tensor."""
    del name
    x = input if isinstance(input, Tensor) else convert_to_tensor(input)
    return constant(len(x.shape), "int32")
from . import activations  # noqa: E402
keras.activations = activations

# keras.mixed_precision: dtype policies (kiln.mixed_precision, kiln.keras.mixed_precision).
from . import mixed_precision  # noqa: E402
keras.mixed_precision = mixed_precision

# tf.data: kiln.data.Dataset and the readers; keras.datasets.fashion_mnist.load_data().
from . import data  # noqa: E402
from .data import TensorSpec  # noqa: E402  (tf.TensorSpec)


def _fashion_mnist_load_data(path=None):
    """keras.datasets.fashion_mnist.load_data(): ((x_train, y_train), (x_test, y_test)) as uint8 NumPy
    arrays (kiln Tensors when NumPy is absent), from Debian's dataset-fashion-mnist or path."""
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(path)
    try:
        import numpy  # noqa: F401
    except ImportError:  # pragma: no cover
        return (x_train, y_train), (x_test, y_test)
    return (x_train.numpy(), y_train.numpy()), (x_test.numpy(), y_test.numpy())


keras.datasets = _NS(fashion_mnist=_NS(load_data=_fashion_mnist_load_data))

# tf.train's checkpoint reading: kiln.train.load_checkpoint, list_variables, CheckpointReader.
from . import train  # noqa: E402
# tf.random.get_global_generator(): the global random state, which a Checkpoint can carry.
random.get_global_generator, random.GlobalGenerator = train.get_global_generator, train.GlobalGenerator

# tf.saved_model.save / load, model.save, keras.models.load_model (kiln.models).
from . import saved_model, models  # noqa: E402
from . import summary  # noqa: E402  (tf.summary)
keras.models = models
saving.load_model = saved_model.load_model  # keras.saving.load_model
