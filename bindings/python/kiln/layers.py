"""Keras layers over the C ABI: kiln.layers.Layer (subclass it as in Keras), built-in layers, and
kiln.Model / kiln.Sequential.

A Python layer object owns one C handle (kiln_layer). Built-in layers are C objects created from
their config. A subclass of Layer or Model becomes a C custom layer whose callbacks come back here
(build, call, get_config); C holds only a weak link to the Python object, so there is no
reference cycle, and an exception raised in a callback is re-raised, unchanged, by the Python
call that led to it.
"""
import ctypes
import inspect
import numbers as _numbers
import threading
import warnings
import weakref

from . import _lib
from ._copy import Uncopyable as _Uncopyable
from . import _tracking
from . import config as _config
from . import mixed_precision as _mp
from .autodiff import Variable
from .errors import CALLBACK_TLS, FailedPreconditionError, InvalidArgumentError, UnimplementedError, check
from .errors import call_c as _c, guard_callback
from .tensor import Tensor, _CODE_DTYPE, constant, dtype_code, int64_array

try:  # NumPy is optional: get_weights gives NumPy arrays when it imports
    import numpy as _np
except ImportError:  # pragma: no cover - exercised on machines without numpy
    _np = None

L = _lib.lib

# ---------------------------------------------------------------- plumbing

_tls = CALLBACK_TLS           # pending exception of a callback (errors.py); build re-entry flag
_LIVE = {}                    # C user_data key -> weakref to the Python layer
_WRAPPERS = weakref.WeakValueDictionary()  # C layer id -> the Python object for it
_next_key = [0]
_key_lock = threading.Lock()


def _guarded(fn):
    """A layer callback: an exception becomes a status and waits in _tls.pending (errors.py)."""
    return guard_callback("a layer callback", tls=_tls)(fn)


def _new_handle(fn, *args):
    out = ctypes.c_void_p()
    _c(fn, ctypes.byref(out), *args)
    return out.value


def _tensors_from_list(lst):
    """The list's tensors; None for an empty slot (a mask list's "no mask")."""
    out = []
    for i in range(L.kiln_tensor_list_get_size(lst)):
        h = _new_handle(L.kiln_tensor_list_get, lst, i)
        out.append(Tensor._adopt(h) if h else None)
    return out


def _mask_arg(masks):
    """Masks as Keras passes a layer's call its mask: None when there are none, the one mask of a
    single input, else the list (None where an input has none)."""
    if all(m is None for m in masks):
        return None
    return masks[0] if len(masks) == 1 else masks


def _append_masks(lst, masks):
    """compute_mask's result into a C list: None -> no masks; a tensor -> one; a list -> each
    (None -> an empty slot)."""
    if masks is None:
        return
    for m in (list(masks) if isinstance(masks, (list, tuple)) else [masks]):
        check(L.kiln_tensor_list_append(lst, None if m is None else _as_input(m)))


def _to_list(tensors):
    lst = ctypes.c_void_p()
    check(L.kiln_tensor_list_create(ctypes.byref(lst)))
    try:
        for t in tensors:
            check(L.kiln_tensor_list_append(lst.value, t))  # None: an empty slot
    except BaseException:
        L.kiln_tensor_list_free(lst.value)
        raise
    return lst.value


_NO_FUNCTIONAL = ("kiln has no functional API (no symbolic Keras tensors): stack the layers in a "
                  "keras.Sequential, or subclass keras.Model and write call()")


def _as_input(x):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, InputLayer):
        raise UnimplementedError("a layer was called on keras.Input(...): " + _NO_FUNCTIONAL)
    if hasattr(x, "_kiln_value"):
        return x._kiln_value()
    return constant(x)


def _shape_tuple(dims):
    return tuple(None if d < 0 else int(d) for d in dims)


def _dims(shape):
    return [-1 if d is None else int(d) for d in shape]


def _shapes_to_c(input_shape, what):
    """One shape, or a list of them (its first entry a list or tuple), as the C layout: every dim
    one after the other, and each shape's rank. Returns (dims, ranks, count)."""
    several = (isinstance(input_shape, (list, tuple)) and input_shape
               and isinstance(input_shape[0], (list, tuple)))
    dims, ranks = [], []
    for s in (input_shape if several else [input_shape]):
        d = _dims(s)
        dims += d
        ranks.append(len(d))
    return (int64_array(dims, "a dimension of the input shape", what),
            (ctypes.c_size_t * max(len(ranks), 1))(*ranks), len(ranks))


def _variables_from(fn, *args, call=None, adopt=None):
    """A C getter of handles called twice, fn(out, capacity, out_count, *args): the count, then the
    new handles, each taken by adopt (default: Variable._adopt). call(fn, *args) makes each call
    (default: check its status)."""
    call = call or (lambda f, *a: check(f(*a)))
    adopt = adopt or Variable._adopt
    n = ctypes.c_size_t()
    call(fn, None, 0, ctypes.byref(n), *args)
    arr = (ctypes.c_void_p * max(n.value, 1))()
    m = ctypes.c_size_t()
    call(fn, arr, n.value, ctypes.byref(m), *args)
    return [adopt(arr[i]) for i in range(min(n.value, m.value))]


def _sublayer_ids(handle):
    """The ids of the sub-layers the C layer tracks."""
    ids = set()
    for i in range(L.kiln_layer_get_num_layers(handle)):
        h = _new_handle(L.kiln_layer_get_layer, handle, i)
        ids.add(L.kiln_layer_get_id(h))
        L.kiln_layer_free(h)
    return ids


def _wrap(handle):
    """The Python object for a C layer handle (the one the user made, when it is alive)."""
    lid = L.kiln_layer_get_id(handle)
    obj = _WRAPPERS.get(lid)
    if obj is not None:
        L.kiln_layer_free(handle)
        return obj
    cls_name = L.kiln_layer_get_class_name(handle).decode()
    cls = _BUILTINS.get(cls_name, Layer)
    obj = cls.__new__(cls)
    obj._adopt_handle(handle)
    return obj


# ---------------------------------------------------------------- several positional inputs
#
# Keras 3 passes the tensors given to layer(a, b) after the first on to call(self, a, b). C takes
# them as one input list; while such a call runs, its layer is marked on the thread, so that the
# callbacks C makes for it (build, call) spread the list again.

def _is_tensor_like(x):
    return isinstance(x, Tensor) or hasattr(x, "_kiln_value") or (_np is not None and isinstance(x, _np.ndarray))


def _positional_count(fn):
    """How many positional arguments fn (a bound call or build) takes besides training and mask;
    a large number for *args."""
    n = 0
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind == p.VAR_POSITIONAL:
            return 1 << 30
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in ("training", "mask"):
            n += 1
    return n


def _spread(obj):
    return id(obj) in getattr(_tls, "spread", ())


def _cell_sizes(layer):
    """The layer's state sizes in C (Keras's state_size as a list; [] for a layer that is no cell)."""
    count = ctypes.c_size_t()
    out = (ctypes.c_int64 * 16)()
    _c(L.kiln_layer_get_state_size, out, len(out), ctypes.byref(count), layer._handle())
    if count.value > len(out):
        out = (ctypes.c_int64 * count.value)()
        _c(L.kiln_layer_get_state_size, out, len(out), ctypes.byref(count), layer._handle())
    return list(out[:count.value])


def _sizes_of(state_size):
    """Keras's state_size (a positive int or a list of them) as a list; [] for anything else (no cell:
    a layer may well have a state_size of another meaning)."""
    values = state_size if isinstance(state_size, (list, tuple)) else [state_size]
    if values and all(isinstance(v, _numbers.Integral) and not isinstance(v, bool) and v > 0 for v in values):
        return [int(v) for v in values]
    return []


def _sync_cell(layer):
    """The layer's state sizes in C, given first from a custom layer's Python state_size (an attribute, a
    class attribute or a property) where C holds others. Every use of a custom cell (RNN and
    StackedRNNCells made in Python, a cell call, a cell C makes from a config) syncs it here."""
    if getattr(layer, "_custom", False):
        try:
            sizes = _sizes_of(getattr(layer, "state_size", None))
        except Exception:  # noqa: BLE001 - a property that fails: not a cell
            sizes = []
        if sizes != _cell_sizes(layer):
            _c(L.kiln_layer_set_state_size, layer._handle(), (ctypes.c_int64 * max(1, len(sizes)))(*sizes),
               len(sizes))
    return _cell_sizes(layer)


class _Direct:
    """While open, a Python call of obj on this thread is a cell call ("cell") or not ("plain"); a call
    that reaches obj from C without one (an RNN stepping its cell) is told by its inputs."""

    def __init__(self, obj, kind=None):
        """kind None: what an enclosing _Direct of obj said, else "plain"; nothing for a built-in layer."""
        self.key = id(obj) if getattr(obj, "_custom", False) else None
        self.kind = kind

    def __enter__(self):
        if self.key is not None:
            calls = _tls.__dict__.setdefault("direct", {})
            self.before = calls.get(self.key)
            calls[self.key] = self.kind or self.before or "plain"
        return self

    def __exit__(self, *exc):
        if self.key is None:
            return
        if self.before is None:
            _tls.direct.pop(self.key, None)
        else:
            _tls.direct[self.key] = self.before


def _is_cell_call(obj, shapes):
    """Whether a call of the custom layer obj with inputs of these shapes is a cell's: marked so by a
    Python call, or (a call from an RNN) the layer has a state_size, its call takes the states after
    its input, and the inputs after the first are its states ([batch, size] each)."""
    kind = getattr(_tls, "direct", {}).get(id(obj))
    if kind is not None:
        return kind == "cell"
    if len(shapes) < 2 or _positional_count(obj.call) < 2:  # call(inputs, states)
        return False
    sizes = _cell_sizes(obj)
    return len(sizes) == len(shapes) - 1 and all(len(sh) == 2 and sh[1] in (n, None)
                                                  for sh, n in zip(shapes[1:], sizes))


def _flat_states(states):
    """A cell's states as a flat list (a tensor alone, a list, or per-cell lists of a stack)."""
    if not isinstance(states, (list, tuple)):
        return [states]
    out = []
    for s in states:
        out.extend(_flat_states(s) if isinstance(s, (list, tuple)) else [s])
    return out


def _call_cell(layer, inputs, states, training=None):
    """Keras's cell call: cell(inputs, states) -> (output, new_states), new_states a list when states
    is one (a tensor alone for a tensor alone); kiln's cell takes and gives them after the input."""
    nested = isinstance(states, (list, tuple))
    with _Direct(layer, "cell"):
        ys = Layer.__call__(layer, [inputs] + _flat_states(states), training=training)
    ys = ys if isinstance(ys, list) else [ys]
    new = ys[1:]
    return ys[0], (new if nested or len(new) != 1 else new[0])


class _Spreading:
    """While open, obj's callbacks on this thread take several positional inputs."""

    def __init__(self, obj, on):
        self.key = id(obj) if on else None

    def __enter__(self):
        if self.key is not None:
            spread = _tls.__dict__.setdefault("spread", {})
            spread[self.key] = spread.get(self.key, 0) + 1
        return self

    def __exit__(self, *exc):
        if self.key is not None:
            spread = _tls.spread
            spread[self.key] -= 1
            if not spread[self.key]:
                del spread[self.key]
        return False


def _layer_paths(value, prefix, seen):
    """(path, layer) for the layers in a list, tuple or dict value (string keys without '/'), nested
    ones too, by the paths Keras's ListWrapper / _DictWrapper give them: prefix/<index or key>/...;
    other elements keep their indices and get no path."""
    if id(value) in seen:
        return
    if isinstance(value, (list, tuple)):
        items = enumerate(value)
    elif isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if isinstance(k, str) and k and "/" not in k]
    else:
        return
    seen.add(id(value))
    for key, v in items:
        path = "%s/%s" % (prefix, key)
        if isinstance(v, Layer):
            yield path, v
        else:
            yield from _layer_paths(v, path, seen)


def _same_paths(a, b):
    """Whether two (path, layer) lists name the same layers by the same paths, in any order."""
    return sorted((p, id(l)) for p, l in a) == sorted((p, id(l)) for p, l in b)


def _call_arguments(layer, inputs, args, training, mask):
    """Layer.__call__'s arguments: (inputs as a list, whether call takes them spread, training,
    mask). Tensors right after inputs are more inputs (Keras 3's layer(a, b) for call(self, a, b));
    training, then mask, may follow positionally, as before."""
    owner = type(layer).__name__
    args = list(args)
    extra = []
    # As many as call takes after its first (none for a built-in layer): a tensor beyond those is
    # training (a scalar bool tensor, as before), checked below.
    room = _positional_count(layer.call) - 1 if getattr(layer, "_custom", False) else 0
    while args and len(extra) < room and _is_tensor_like(args[0]):
        extra.append(args.pop(0))
    if len(args) > 2:
        raise TypeError("%s.__call__ takes inputs, then training and mask; got %d more positional arguments"
                        % (owner, len(args) - 2))
    for i, (key, given) in enumerate((("training", training), ("mask", mask))):
        if i < len(args):
            if given is not None:
                raise TypeError("%s.__call__ got multiple values for argument '%s'" % (owner, key))
            if key == "training":
                training = args[i]
            else:
                mask = args[i]
    if _is_tensor_like(training) and tuple(getattr(training, "shape", ())) not in ((), (1,)):
        raise TypeError("%s.__call__: training got a tensor of shape %s; expected a bool. Give several inputs as one "
                        "list, layer([a, b]), or positionally to a call(self, a, b): layer(a, b)"
                        % (owner, tuple(training.shape)))
    multi = isinstance(inputs, (list, tuple))
    if not extra:
        return (list(inputs) if multi else [inputs]), False, training, mask
    if multi:
        raise TypeError("%s.__call__: got a list of inputs and %d more positional tensors; give the inputs either as "
                        "one list, layer([a, b]), or as tensors, layer(a, b)" % (owner, len(extra)))
    return [inputs] + extra, True, training, mask


# ---------------------------------------------------------------- callbacks

def _target(user_data):
    ref = _LIVE.get(user_data or 0)
    return ref() if ref is not None else None


def _gone(hook):
    return L.kiln_status_create(4, ("the Python object of this layer was garbage-collected before its %s"
                                    % hook).encode())


@_lib.LAYER_BUILD
@_guarded
def _on_build(self_h, dims, ranks, n, user_data):
    obj = _target(user_data)
    if obj is None:
        return _gone("build")
    shapes, at = [], 0
    for i in range(n):
        shapes.append(_shape_tuple(dims[at:at + ranks[i]]))
        at += ranks[i]
    _tls.in_build = getattr(_tls, "in_build", 0) + 1
    try:
        if _is_cell_call(obj, shapes):  # a cell called with its states: build(input_shape)
            obj.build(shapes[0])
        elif _spread(obj) and n > 1:  # several positional inputs: Keras 3's build(a_shape, b_shape) or build(a_shape)
            obj.build(*(shapes if _positional_count(obj.build) >= n else shapes[:1]))
        else:
            obj.build(shapes[0] if n == 1 else shapes)
        obj._retrack_containers()
    finally:
        _tls.in_build -= 1
    return None


def _run_call(outputs, inputs, masks, training, user_data):
    """call and call_with_mask: the Python call(inputs[, training][, mask]), outputs appended."""
    obj = _target(user_data)
    if obj is None:
        return _gone("call")
    xs = _tensors_from_list(inputs)
    ms = _tensors_from_list(masks) if masks is not None else [None] * len(xs)
    for t, m in zip(xs, ms):
        if m is not None:
            t._keras_mask = m  # inside call, the inputs carry their masks (as in Keras)
    x = xs[0] if len(xs) == 1 else xs
    cls = type(obj)
    kwargs = {"training": bool(training)} if cls._call_takes_training() else {}
    if masks is not None and cls._call_takes_mask():
        kwargs["mask"] = _mask_arg(ms)
    if _is_cell_call(obj, [tuple(t.shape) for t in xs]):  # a cell: call(inputs, states) -> (output, states)
        y = obj.call(xs[0], xs[1:], **kwargs)
        if not (isinstance(y, (list, tuple)) and len(y) == 2):
            raise TypeError("%s.call is a recurrent cell's (it has a state_size): it must return (output, new_states); "
                            "got %s" % (cls.__name__, type(y).__name__))
        ys = [y[0]] + _flat_states(y[1])
    else:
        y = obj.call(*xs, **kwargs) if _spread(obj) else obj.call(x, **kwargs)
        ys = _flat_states(y) if isinstance(y, (list, tuple)) else [y]  # a cell's (output, [states]) too
    for t in ys:
        check(L.kiln_tensor_list_append(outputs, _as_input(t)))
    # Masks the outputs already carry (a model's inner layers made them) are its output
    # masks, as in Keras; compute_mask, which kiln calls next on this thread, picks them up.
    _tls.call_masks = (id(obj), [getattr(t, "_keras_mask", None) for t in ys])
    return None


@_lib.LAYER_CALL
@_guarded
def _on_call(outputs, self_h, inputs, training, user_data):
    return _run_call(outputs, inputs, None, training, user_data)


@_lib.LAYER_CALL_WITH_MASK
@_guarded
def _on_call_with_mask(outputs, self_h, inputs, masks, training, user_data):
    return _run_call(outputs, inputs, masks, training, user_data)


@_lib.LAYER_COMPUTE_MASK
@_guarded
def _on_compute_mask(out, self_h, inputs, masks, user_data):
    obj = _target(user_data)
    if obj is None:
        return _gone("compute_mask")
    pending = getattr(_tls, "call_masks", None)
    _tls.call_masks = None
    carried = pending[1] if pending is not None and pending[0] == id(obj) else []
    if carried and all(m is not None for m in carried):
        _append_masks(out, carried)  # Keras: masks already computed are kept
        return None
    xs = _tensors_from_list(inputs)
    computed = obj.compute_mask(xs[0] if len(xs) == 1 else xs, _mask_arg(_tensors_from_list(masks)))
    if any(m is not None for m in carried):
        computed = list(computed) if isinstance(computed, (list, tuple)) else [computed]
        computed += [None] * (len(carried) - len(computed))
        computed = [c if c is not None else m for c, m in zip(carried, computed)]
    _append_masks(out, computed)
    return None


@_lib.LAYER_GET_CONFIG
@_guarded
def _on_get_config(config_h, self_h, user_data):
    obj = _target(user_data)
    if obj is None:
        return _gone("get_config")
    with _config.to_c(obj.get_config()) as c:
        check(L.kiln_config_update(config_h, c))
    return None


@_lib.LAYER_DESTROY
def _on_destroy(user_data):
    _LIVE.pop(user_data or 0, None)
    _OWNED.pop(user_data or 0, None)  # a layer kiln owned (made by a class factory) goes with it


_CALLBACKS = _lib.LayerCallbacks(ctypes.sizeof(_lib.LayerCallbacks), _on_build, _on_call, _on_get_config,
                                 _on_destroy, False, _on_call_with_mask, _on_compute_mask)


# ---------------------------------------------------------------- Layer

# ---------------------------------------------------------------- registered classes
#
# A class registered by name (kiln.saving.register_keras_serializable, custom_objects) gets a C
# factory, so C's deserialization (a Sequential holding it, a SavedModel) makes it. The object
# the factory makes belongs to its C layer (held in _OWNED until the layer dies) and keeps only a
# weak handle to it, so neither keeps the other alive forever.

_PY_BUILTINS = {}  # name -> a built-in layer class written in Python (Lambda), registered at import
_OWNED = {}      # user_data key -> a Python layer owned by its C layer
_CLASSES = {}    # registration key -> the class


def _hand_over(obj):
    """A strong handle for C to take; a custom object becomes its C layer's (weak handle back)."""
    key = obj.__dict__.get("_kiln_key")
    if key is None:  # a built-in layer: C holds its own reference, the wrapper may go
        return _new_handle(L.kiln_layer_clone, obj._handle())
    strong = obj._h
    weak = _new_handle(L.kiln_layer_clone_weak, strong)
    object.__setattr__(obj, "_h", weak)
    _OWNED[key] = obj
    return strong


def _take_back(handle):
    """The Python object for a root layer handle from C: a factory-made object becomes the
    caller's again (it owns the strong handle; C no longer keeps it)."""
    obj = _WRAPPERS.get(L.kiln_layer_get_id(handle))
    key = obj.__dict__.get("_kiln_key") if obj is not None else None
    if key is not None and _OWNED.get(key) is obj:
        weak = obj._h
        object.__setattr__(obj, "_h", handle)
        L.kiln_layer_free(weak)
        del _OWNED[key]
        return obj
    return _wrap(handle)


_BASE_KEYS = ("name", "trainable", "dtype")  # C's config of every layer starts with them (Layer.get_config)


def _constructor_config(cls, config):
    """config without the base keys (name, trainable, dtype) that cls's __init__ cannot take: C puts
    them in every layer's config, but Keras passes from_config what the class's get_config returned,
    and the guide's classes (__init__(self, factor), no **kwargs) take none of them. Keras 3 drops
    them too for a constructor without **kwargs. An __init__ taking **kwargs keeps them all (it
    passes them on to Layer.__init__: the layer keeps its name)."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # a signature Python cannot read (a C-implemented __init__)
        return config
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return config
    named = {k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in config.items() if k not in _BASE_KEYS or k in named}


@_lib.LAYER_FROM_CONFIG
@_guarded
def _on_from_config(out, config_h, user_data):
    cls = _CLASSES.get(user_data or 0)
    if cls is None:
        return L.kiln_status_create(4, b"the Python class of this registration is gone")
    obj = cls.from_config(_constructor_config(cls, _config.from_c(config_h)))
    if not isinstance(obj, Layer):
        raise TypeError("%s.from_config returned %s; expected a kiln Layer" % (cls.__name__, type(obj).__name__))
    _sync_cell(obj)  # a cell's state_size, for the RNN C is making around it
    out[0] = _hand_over(obj)
    return None


@_lib.LAYER_DESTROY
def _on_class_destroy(user_data):
    _CLASSES.pop(user_data or 0, None)


_CLASS_CALLBACKS = _lib.LayerClassCallbacks(ctypes.sizeof(_lib.LayerClassCallbacks), _on_from_config,
                                            _on_class_destroy)


def _register_class(name, cls):
    """Registers cls in C under name (replacing an earlier registration of the name)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError("%r is not a kiln Layer class" % (cls,))
    with _key_lock:
        _next_key[0] += 1
        key = _next_key[0]
    _CLASSES[key] = cls
    try:
        _c(L.kiln_layer_register_class, name.encode(), ctypes.byref(_CLASS_CALLBACKS), ctypes.c_void_p(key))
    except BaseException:
        _CLASSES.pop(key, None)
        raise


def _unregister_class(name):
    _c(L.kiln_layer_unregister_class, name.encode())


def _class_registered(name):
    return bool(L.kiln_layer_class_is_registered(name.encode()))


class Layer(_Uncopyable):
    """keras.layers.Layer. Subclass it: create weights with add_weight (in __init__ or build),
    assign sub-layers to attributes (they are tracked), and write call(inputs, training=None)."""

    _COPY_INSTEAD = (" (use kiln.models.clone_model, or from_config(get_config()) then "
                     "set_weights(get_weights()))")

    _is_model = False
    _builtin = False

    def __init__(self, trainable=True, name=None, dtype=None, **kwargs):
        shape_args = _input_shape_config(type(self).__name__, kwargs)
        if self._is_model and ("inputs" in kwargs or "outputs" in kwargs):
            raise UnimplementedError("Model(inputs=..., outputs=...): " + _NO_FUNCTIONAL)
        if kwargs:
            raise TypeError("%s: unexpected keyword arguments %s" % (type(self).__name__, sorted(kwargs)))
        if getattr(self, "_h", None):
            return  # a built-in layer made its handle already
        base = {"trainable": bool(trainable)}
        base.update(shape_args)
        if name is not None:
            base["name"] = name
        if dtype is not None:
            base["dtype"] = _mp._layer_dtype_value(dtype, "Layer")
        with _key_lock:
            _next_key[0] += 1
            key = _next_key[0]
        create = L.kiln_model_create_custom if self._is_model else L.kiln_layer_create_custom
        _LIVE[key] = weakref.ref(self)
        # A registered class's layers carry its registered name ("Custom>MyDense").
        class_name = type(self).__dict__.get("_kiln_registered_name") or type(self).__name__
        try:
            with _config.to_c(base) as c:
                h = _new_handle(create, class_name.encode(), c, ctypes.byref(_CALLBACKS), ctypes.c_void_p(key))
        except BaseException:
            _LIVE.pop(key, None)
            raise
        object.__setattr__(self, "_kiln_key", key)
        self._adopt_handle(h)
        self._weight_count = 0
        object.__setattr__(self, "_custom", True)  # kiln calls back into this object

    def _adopt_handle(self, h):
        object.__setattr__(self, "_h", h)
        object.__setattr__(self, "_children", [])
        _WRAPPERS[L.kiln_layer_get_id(h)] = self

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            L.kiln_layer_free(h)
            self._h = None

    def _handle(self):
        h = getattr(self, "_h", None)
        if not h:
            raise FailedPreconditionError("%s: Layer.__init__ was not called; call super().__init__() first in "
                                          "__init__" % type(self).__name__, 4)
        return h

    # Sub-layers and variables assigned to attributes are tracked, in assignment order, as Keras
    # does, and checkpoints key them by the attribute: `self.d1` as `d1/...`, the elements of a list
    # or tuple as `blocks/0/...`, of a dict with string keys as `heads/<key>/...`. A list or dict is
    # kept as a TrackedList / TrackedDict (_tracking.py), so that layers put in it later are tracked
    # too (`self.blocks = []`, then `self.blocks.append(Dense(4))`).
    def __setattr__(self, name, value):
        if isinstance(value, Layer) and name not in ("_h",):
            self._track_as(value, name)
            self.__dict__.get("_kiln_containers", {}).pop(name, None)  # the paths under name are gone
        elif isinstance(value, Variable) and value._h:
            # Keras's `self.w = tf.Variable(...)`: one of this layer's weights, named by the
            # attribute (add_weight's own variables are not added again). After the build kiln's
            # weights are fixed: the variable stays a plain attribute (a step counter, say).
            if L.kiln_layer_get_built(self._handle()):
                if not any(v is value for v in self.weights):
                    warnings.warn("%s.%s: a variable assigned after the layer was built is not one of its weights "
                                  "(fit does not train it, checkpoints do not save it); create it in __init__ or "
                                  "build" % (type(self).__name__, name), stacklevel=2)
            else:
                _c(L.kiln_layer_track_variable, self._handle(), value._h, name.encode())
        elif isinstance(value, (list, tuple, dict)):
            value = _tracking.track(value, self, name)
            self._track_container(name, value)
        object.__setattr__(self, name, value)

    def _track_container(self, name, value, stacklevel=3):
        """Tracks the layers of value, the list, tuple or dict attribute `name` holds (assigned, or
        changed in place), by their paths (_layer_paths), as an assignment of the whole container
        does; a container that only grew since tracks just its new layers. kiln cannot drop an
        attribute, only name it anew: a container holding layers first names its first one `name`
        (which drops the paths of what the attribute held), then each by its path; one holding none
        leaves what the attribute held tracked (a warning says so; stacklevel: the user's frame). After
        the build the layers are fixed: a change to their paths raises, naming the attribute."""
        tracked = self.__dict__.setdefault("_kiln_containers", {})  # name -> its tracked paths; None: unknown
        old = tracked.setdefault(name, [])
        paths = list(_layer_paths(value, name, set()))
        if paths == (old or []):
            return
        if self.built and old is not None and _same_paths(paths, old):  # a dict's layers in another order
            tracked[name] = paths
            return
        if self.built:
            raise FailedPreconditionError("%s.%s: the layers in it cannot change once the layer is built (kiln fixes a "
                                          "layer's sub-layers when it builds: create them in __init__ or build); it "
                                          "keeps what it held" % (type(self).__name__, name), 4)
        if not paths:
            warnings.warn("%s.%s holds no layers now, but kiln keeps tracking the %d it held (it cannot forget an "
                          "attribute) until layers go in again" % (type(self).__name__, name, len(old)),
                          stacklevel=stacklevel)
            tracked[name] = None
            return
        grown = old is not None and paths[:len(old)] == old
        tracked[name] = None  # until all of paths are tracked
        if not grown:
            self._track_as(paths[0][1], name)
        for path, layer in paths[len(old):] if grown else paths:
            self._track_as(layer, path)
        tracked[name] = paths

    def _container_holds_layers(self, name):
        """Whether kiln tracks layers under the container attribute name (an unknown state counts)."""
        paths = self.__dict__.get("_kiln_containers", {}).get(name, [])
        return paths is None or bool(paths)

    def _retrack_containers(self):
        """Looks through the list, tuple and dict attributes again (at the build: lists appended to
        them, or held in a tuple, and filled afterwards are kiln's to track)."""
        for name in list(self.__dict__.get("_kiln_containers", {})):  # every container assigned
            value = self.__dict__.get(name)
            if isinstance(value, (list, tuple, dict)):
                self._track_container(name, value)

    def _track_as(self, child, attribute):
        _c(L.kiln_layer_track_as, self._handle(), child._handle(), attribute.encode())
        if not any(c is child for c in self._children):
            self._children.append(child)
        # What kiln no longer tracks (an attribute's old value) is no longer kept alive here.
        tracked = _sublayer_ids(self._handle())
        object.__setattr__(self, "_children", [c for c in self._children
                                               if L.kiln_layer_get_id(c._handle()) in tracked])

    @classmethod
    def _call_takes_training(cls):
        cached = cls.__dict__.get("_takes_training_cache")
        if cached is None:
            params = inspect.signature(cls.call).parameters
            cached = "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
            cls._takes_training_cache = cached
        return cached

    @classmethod
    def _call_takes_mask(cls):
        cached = cls.__dict__.get("_takes_mask_cache")
        if cached is None:
            cached = "mask" in inspect.signature(cls.call).parameters
            cls._takes_mask_cache = cached
        return cached

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A user's build, called directly (layer.build(shape)), goes through C so that the layer
        # is marked built; called by kiln (from the first __call__), it runs as written.
        user_build = cls.__dict__.get("build")
        if user_build is not None and not getattr(user_build, "_kiln_routed", False):
            def build(self, input_shape, *more_shapes, _user=user_build):
                if getattr(_tls, "in_build", 0):
                    return _user(self, input_shape, *more_shapes)
                with _Spreading(self, bool(more_shapes)):  # build(a_shape, b_shape) of a call(self, a, b)
                    return Layer._build_through_c(self, [input_shape, *more_shapes] if more_shapes else input_shape)
            build._kiln_routed = True
            build.__doc__ = user_build.__doc__
            build.__wrapped__ = user_build  # its signature is the user's (_positional_count)
            cls.build = build

    # ---- properties
    @property
    def name(self):
        return L.kiln_layer_get_name(self._handle()).decode()

    @property
    def dtype_policy(self):
        """Keras's layer.dtype_policy: the config's dtype, or the global policy when it was made."""
        return _mp.DTypePolicy(L.kiln_layer_get_dtype_policy(self._handle()).decode())

    @property
    def compute_dtype(self):
        """The dtype the layer computes in and outputs ("bfloat16" under mixed_bfloat16)."""
        return _CODE_DTYPE[L.kiln_layer_get_compute_dtype(self._handle())]

    @property
    def variable_dtype(self):
        """The dtype of the layer's weights ("float32" under mixed_bfloat16)."""
        return _CODE_DTYPE[L.kiln_layer_get_variable_dtype(self._handle())]

    @property
    def dtype(self):
        """Keras: layer.dtype is the variable dtype."""
        return self.variable_dtype

    @property
    def supports_masking(self):
        """Keras's supports_masking: the layer passes its input's mask on to its output."""
        return bool(L.kiln_layer_get_supports_masking(self._handle()))

    @supports_masking.setter
    def supports_masking(self, value):
        _c(L.kiln_layer_set_supports_masking, self._handle(), bool(value))

    def compute_mask(self, inputs, mask=None):
        """Keras compute_mask: the output's mask (a list for several outputs, None for none).
        Override it in a subclass to make a mask; the default passes mask on when the layer
        supports masking."""
        if getattr(self, "_custom", False):
            return mask if self.supports_masking else None
        multi = isinstance(inputs, (list, tuple))
        xs = [_as_input(x) for x in inputs] if multi else [_as_input(inputs)]
        in_lst = _to_list(xs)
        mask_lst = None
        try:
            if mask is not None:
                mask_lst = _to_list(self._mask_list(mask, len(xs), multi))
            out = _new_handle(L.kiln_layer_compute_mask, self._handle(), in_lst, mask_lst)
        finally:
            L.kiln_tensor_list_free(in_lst)
            L.kiln_tensor_list_free(mask_lst)
        try:
            ms = _tensors_from_list(out)
        finally:
            L.kiln_tensor_list_free(out)
        if not ms or all(m is None for m in ms):
            return None
        return ms[0] if len(ms) == 1 else ms

    @staticmethod
    def _mask_list(mask, n, multi):
        """mask= as one entry per input: a list for a list of inputs; for a single input, one mask
        (a list of masks, or of None, is taken as such, so a wrong count is reported)."""
        is_list = isinstance(mask, (list, tuple))
        if is_list and not multi:
            is_list = any(m is None or hasattr(m, "shape") for m in mask)
        ms = list(mask) if is_list else [mask]
        return [None if m is None else _as_input(m) for m in ms]

    @property
    def built(self):
        return bool(L.kiln_layer_get_built(self._handle()))

    @property
    def trainable(self):
        return bool(L.kiln_layer_get_trainable(self._handle()))

    @trainable.setter
    def trainable(self, value):
        _c(L.kiln_layer_set_trainable, self._handle(), bool(value))

    def _variables(self, kind):
        return _variables_from(L.kiln_layer_get_variables, self._handle(), kind, call=_c)

    @property
    def variables(self):
        return self._variables(0)

    weights = variables

    @property
    def trainable_variables(self):
        return self._variables(1)

    trainable_weights = trainable_variables

    @property
    def non_trainable_variables(self):
        return self._variables(2)

    non_trainable_weights = non_trainable_variables

    def get_weights(self):
        """Keras's get_weights: the values of self.weights, as NumPy arrays (kiln Tensors when NumPy
        is not importable)."""
        values = [v.value() for v in self.weights]
        return [t.numpy() for t in values] if _np is not None else values

    def set_weights(self, weights):
        """Keras's set_weights: one array (NumPy array, kiln Tensor or nested list) per entry of
        self.weights, in that order, each of the weight's shape. Nothing is assigned unless all fit."""
        params = self.weights
        weights = list(weights)
        if len(weights) != len(params):
            raise ValueError("set_weights: layer %r has %d weights (%s); got a list of %d arrays"
                             % (self.name, len(params), ", ".join(v.name for v in params) or "none, is it built?",
                                len(weights)))
        values = []
        for v, w in zip(params, weights):
            dtype = v.dtype
            try:
                t = constant(w, dtype)
            except (TypeError, ValueError) as e:
                raise ValueError("set_weights: layer %r, weight %r (%s%s): cannot use %r: %s"
                                 % (self.name, v.name, dtype, list(v.shape), type(w).__name__, e)) from e
            if tuple(t.shape) != tuple(v.shape):
                raise ValueError("set_weights: layer %r, weight %r has shape %s; the value given for it has shape %s"
                                 % (self.name, v.name, list(v.shape), list(t.shape)))
            values.append(t)
        for v, t in zip(params, values):
            v.assign(t)

    @property
    def losses(self):
        lst = _new_handle(L.kiln_layer_get_losses, self._handle())
        try:
            return _tensors_from_list(lst)
        finally:
            L.kiln_tensor_list_free(lst)

    def count_params(self):
        n = ctypes.c_int64()
        _c(L.kiln_layer_count_params, ctypes.byref(n), self._handle())
        return n.value

    # ---- the Keras hooks (defaults)
    def build(self, input_shape):
        """Creates the layer's weights. Calling it directly builds the layer for input_shape."""
        if not getattr(_tls, "in_build", 0):
            Layer._build_through_c(self, input_shape)

    def call(self, inputs, training=None):
        raise NotImplementedError("%s must implement call(inputs)" % type(self).__name__)

    def get_config(self):
        """Keras get_config. For a subclass: name, trainable and dtype; extend it with your keys."""
        if self._builtin or type(self) in _BUILTINS.values():
            c = _new_handle(L.kiln_layer_get_config, self._handle())
            try:
                return _config.from_c(c)
            finally:
                L.kiln_config_free(c)
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype_policy.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _build_through_c(self, input_shape):
        dims_arr, ranks_arr, n = _shapes_to_c(input_shape, "build")
        _c(L.kiln_layer_build, self._handle(), dims_arr, ranks_arr, n)

    # ---- state helpers for subclasses
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True, regularizer=None, name=None,
                   **kwargs):
        """Keras add_weight. Keras 2's order (name first) also works: add_weight("kernel", shape=...)."""
        if isinstance(shape, str) and name is None:  # Keras 2: add_weight(name, shape, ...)
            name, shape = shape, kwargs.pop("shape", initializer if isinstance(initializer, (list, tuple)) else None)
        for k in ("constraint", "aggregation", "autocast", "synchronization", "use_resource"):
            kwargs.pop(k, None)
        if kwargs:
            raise TypeError("add_weight: unexpected keyword arguments %s" % sorted(kwargs))
        if name is None:
            n = getattr(self, "_weight_count", 0)
            name = "variable" if n == 0 else "variable_%d" % n
            object.__setattr__(self, "_weight_count", n + 1)
        shape = () if shape is None else tuple(int(d) for d in shape)
        opts = _lib.AddWeightOptions()
        check(L.kiln_add_weight_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
        if dtype is not None:
            opts.dtype = dtype_code(dtype, "add_weight")
        opts.trainable = bool(trainable)
        init_cfg = reg_cfg = None
        try:
            if isinstance(initializer, dict):
                init_cfg = _config.to_c(initializer)
                opts.initializer_config = init_cfg.ptr
            elif initializer is not None:
                opts.initializer = str(getattr(initializer, "_kiln_name", initializer)).encode()
            if isinstance(regularizer, dict):
                reg_cfg = _config.to_c(regularizer)
                opts.regularizer_config = reg_cfg.ptr
            elif regularizer is not None:
                opts.regularizer = str(regularizer).encode()
            dims = int64_array(shape, "a dimension of the shape", "add_weight")
            h = _new_handle(L.kiln_layer_add_weight, self._handle(), str(name).encode(), dims, len(shape),
                            ctypes.byref(opts))
        finally:
            for c in (init_cfg, reg_cfg):
                if c is not None:
                    c.__exit__(None, None, None)
        return Variable._adopt(h)

    def add_loss(self, loss):
        _c(L.kiln_layer_add_loss, self._handle(), _as_input(loss))

    # ---- running
    def __call__(self, inputs, *args, training=None, mask=None, **kwargs):
        """Keras __call__: mask (one per input for a list) defaults to the inputs' _keras_mask;
        the outputs carry their masks as _keras_mask. Tensors given after inputs go on to call as
        its next positional arguments, as in Keras 3 (layer(a, b) for call(self, a, b))."""
        if (getattr(self, "_custom", False) and ("states" in kwargs or (args and isinstance(args[0], (list, tuple))))
                and _sync_cell(self)):
            # a cell: cell(inputs, [states]) -> (output, new_states), as Keras's RNN calls it (a tensor
            # alone after the inputs is the next positional input, as for any layer)
            if "states" in kwargs:
                states, extra = kwargs.pop("states"), args
            else:
                states, extra = args[0], args[1:]
            if kwargs or extra or mask is not None:
                raise TypeError("%s.__call__: a cell takes (inputs, states, training=None)" % type(self).__name__)
            return _call_cell(self, inputs, states, training)
        if kwargs:
            raise TypeError("%s.__call__: unexpected keyword arguments %s" % (type(self).__name__, sorted(kwargs)))
        raw, spread, training, mask = _call_arguments(self, inputs, args, training, mask)
        multi = len(raw) > 1 or isinstance(inputs, (list, tuple))
        xs = [_as_input(x) for x in raw]
        masks = ([getattr(x, "_keras_mask", None) for x in raw] if mask is None
                 else self._mask_list(mask, len(xs), multi))
        opts = _lib.LayerCallOptions()
        check(L.kiln_layer_call_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
        # training=None: the enclosing layer call's training (Keras's call context), else False
        opts.training = bool(training) if training is not None else False
        opts.training_from_context = training is None
        in_lst = _to_list(xs)
        mask_lst = None
        out, out_masks = ctypes.c_void_p(), ctypes.c_void_p()
        try:
            # An explicit mask= is used as given (Keras): all None masks this layer's inputs
            # nothing, whatever they carry (a Sequential still carries masks between its layers);
            # without one, the inputs' own masks.
            if mask is not None and all(m is None for m in masks):
                masks = [None] * len(xs)
            if mask is not None or any(m is not None for m in masks):
                mask_lst = _to_list(masks)
                opts.masks = mask_lst
            with _Spreading(self, spread), _Direct(self):
                _c(L.kiln_layer_call_with_options, ctypes.byref(out), ctypes.byref(out_masks), self._handle(),
                   in_lst, ctypes.byref(opts))
        finally:
            L.kiln_tensor_list_free(in_lst)
            L.kiln_tensor_list_free(mask_lst)
        try:
            ys = _tensors_from_list(out.value)  # each carries its mask (Keras's _keras_mask)
        finally:
            L.kiln_tensor_list_free(out.value)
            L.kiln_tensor_list_free(out_masks.value)
        return ys[0] if len(ys) == 1 else ys

    def compute_output_shape(self, input_shape):
        """Keras's compute_output_shape: one shape (a tuple, None for unknown dims), or for several
        inputs a list of them; the output's shape, or a list of shapes for several outputs."""
        dims_arr, ranks_arr, n = _shapes_to_c(input_shape, "compute_output_shape")
        count, total = ctypes.c_size_t(), ctypes.c_size_t()
        out, ranks = (ctypes.c_int64 * (8 * 8))(), (ctypes.c_size_t * 8)()
        for _ in range(2):  # again with room for every output when 8 are not enough
            _c(L.kiln_layer_compute_output_shapes, out, len(out), ranks, len(ranks), ctypes.byref(count),
               ctypes.byref(total), self._handle(), dims_arr, ranks_arr, n)
            if count.value <= len(ranks):
                break
            out, ranks = (ctypes.c_int64 * total.value)(), (ctypes.c_size_t * count.value)()
        shapes, at = [], 0
        for r in ranks[:count.value]:
            shapes.append(_shape_tuple(out[at:at + r]))
            at += r
        return shapes[0] if len(shapes) == 1 else shapes

    def __repr__(self):
        return "<%s name=%s, built=%s>" % (type(self).__name__, self.name, self.built)


# ---------------------------------------------------------------- models

from .training import Trainer as _Trainer  # noqa: E402 - keras.Model's compile/fit/evaluate/predict


class Model(Layer, _Trainer):
    """keras.Model for subclassing: create layers in __init__, write call; train with compile / fit
    (kiln.training.Trainer), or override train_step."""
    _is_model = True

    @property
    def layers(self):
        out = []
        for i in range(L.kiln_layer_get_num_layers(self._handle())):
            out.append(_wrap(_new_handle(L.kiln_layer_get_layer, self._handle(), i)))
        return out

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        return _wrap(_new_handle(L.kiln_layer_get_layer_by_name, self._handle(), str(name).encode()))

    def summary(self, line_length=None, print_fn=None):
        """Prints Keras's summary table (or passes it to print_fn line by line). As in Keras, a model
        that is not built raises (an InvalidArgumentError, a ValueError)."""
        s = ctypes.c_void_p()
        _c(L.kiln_layer_summary, ctypes.byref(s), self._handle(), int(line_length or 0))
        try:
            text = ctypes.string_at(s.value).decode()
        finally:
            L.kiln_string_free(s.value)
        for line in text.rstrip("\n").split("\n"):
            (print_fn or print)(line)


class _Builtin(Layer):
    _builtin = True
    _class_name = None

    def _create(self, config):
        with _config.to_c(config) as c:
            self._adopt_handle(_new_handle(L.kiln_layer_create, self._class_name.encode(), c))

    @classmethod
    def from_config(cls, config):
        obj = cls.__new__(cls)
        obj._create(config)
        return obj

    def __getattr__(self, name):
        """Keras's weight attributes of the built-in layers (Dense.kernel and .bias,
        Embedding.embeddings, BatchNormalization.gamma ... .moving_variance, DepthwiseConv2D
        .depthwise_kernel, PReLU.alpha): the layer's own weight of that name, once it is built
        (before, as in Keras, there is no such attribute)."""
        if name.startswith("_"):  # Python's and kiln's own lookups: no weight is named so
            raise AttributeError(name)
        own = "%s/%s" % (self.name, name)
        for v in self.weights:
            if v.name == own or v.name.endswith("/" + own):
                return v
        if name == "bias" and self.built and any(v.name.endswith("kernel") for v in self.weights):
            return None  # Keras's self.bias = None of a layer built without one (use_bias=False, no bias_axes)
        raise AttributeError("'%s' object has no attribute '%s'%s" % (
            type(self).__name__, name, "" if self.built else " (a weight exists once the layer is built)"))


def _base_config(name, trainable, dtype):
    c = {"trainable": bool(trainable)}
    if name is not None:
        c["name"] = name
    if dtype is not None:
        c["dtype"] = _mp._layer_dtype_value(dtype, "layer")
    return c


def _serializable(x):
    """Initializer / regularizer / activation arguments: names, dicts, kiln.initializers /
    kiln.regularizers objects, or None."""
    if x is None or isinstance(x, (str, dict)):
        return x
    if hasattr(x, "_kiln_serialize"):
        return x._kiln_serialize()
    name = getattr(x, "_kiln_name", None) or getattr(x, "__name__", None)
    if name:
        return name
    raise InvalidArgumentError("expected a name or a config dict; got %r" % (x,))


class Sequential(Model):
    """keras.Sequential([layers], name=None)."""

    _builtin = True

    def __init__(self, layers=None, name=None, trainable=True):
        with _config.to_c(_base_config(name, trainable, None)) as c:
            self._adopt_handle(_new_handle(L.kiln_layer_create, b"Sequential", c))
        for l in layers or []:
            self.add(l)

    def add(self, layer):
        if not isinstance(layer, Layer):
            raise InvalidArgumentError("Sequential.add: expected a layer; got %r" % (layer,))
        _c(L.kiln_sequential_add, self._handle(), layer._handle())
        self._children.append(layer)

    def pop(self):
        _c(L.kiln_sequential_pop, self._handle())
        if self._children:
            self._children.pop()

    def build(self, input_shape=None):
        Layer._build_through_c(self, input_shape)

    @classmethod
    def from_config(cls, config):
        obj = cls.__new__(cls)
        with _config.to_c(config) as c:
            obj._adopt_handle(_new_handle(L.kiln_layer_create, b"Sequential", c))
        return obj


_INPUT_SHAPE_ARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_size")


def _shape_list(shape, owner, arg):
    """A shape argument as a config list: ints and None (Keras's shape tuples)."""
    if isinstance(shape, int):
        shape = (shape,)
    try:
        return [None if d is None else int(d) for d in shape]
    except (TypeError, ValueError):
        raise InvalidArgumentError("%s: %s must be a tuple of ints and None; got %r" % (owner, arg, shape)) from None


def _input_shape_config(owner, kwargs):
    """Keras's legacy input-shape arguments of any layer (input_shape, input_dim, batch_size,
    batch_input_shape), taken out of kwargs as config keys: a Sequential whose first layer has
    them starts with an InputLayer of that shape."""
    shape, dim = kwargs.pop("input_shape", None), kwargs.pop("input_dim", None)
    batch_shape, batch_size = kwargs.pop("batch_input_shape", None), kwargs.pop("batch_size", None)
    if dim is not None:
        if shape is not None:
            raise InvalidArgumentError("%s: give input_shape or input_dim, not both" % owner)
        shape = (dim,)
    c = {}
    if shape is not None:
        c["input_shape"] = _shape_list(shape, owner, "input_shape")
    if batch_shape is not None:
        c["batch_input_shape"] = _shape_list(batch_shape, owner, "batch_input_shape")
    if batch_size is not None:
        c["batch_size"] = int(batch_size)
    return c


def _builtin(class_name, doc, make_config, base=None):
    """A built-in layer class (base: _Builtin, or a subclass of it for the call) whose config
    make_config(*args, **kwargs) gives, Keras's positional order kept."""
    params = inspect.signature(make_config).parameters

    def __init__(self, *args, name=None, trainable=True, dtype=None, **kwargs):
        # The legacy shape arguments, unless the layer has one of that name (Embedding's input_dim).
        legacy = {k: kwargs.pop(k) for k in _INPUT_SHAPE_ARGS if k in kwargs and k not in params}
        try:
            inspect.signature(make_config).bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError("%s: %s" % (class_name, e)) from None
        config = _base_config(name, trainable, dtype)
        config.update(make_config(*args, **kwargs))
        config.update(_input_shape_config(class_name, legacy))
        self._create(config)
    cls = type(class_name, (base or _Builtin,), {"__init__": __init__, "__doc__": doc, "_class_name": class_name})
    return cls


class InputLayer(_Builtin):
    """keras.layers.InputLayer(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None):
    the input shape and dtype of a Sequential model, as its first layer. Usually made by
    keras.Input. sparse, ragged, optional and input_tensor are not supported."""

    _class_name = "InputLayer"

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, ragged=None, batch_shape=None,
                 input_tensor=None, optional=False, name=None, **kwargs):
        if "input_shape" in kwargs:  # Keras's deprecated alias
            shape = kwargs.pop("input_shape")
        if "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        if kwargs:
            raise TypeError("InputLayer: unexpected keyword arguments %s" % sorted(kwargs))
        if input_tensor is not None:
            raise UnimplementedError("InputLayer: input_tensor is not supported; kiln has no symbolic tensors")
        config = {"trainable": True, "sparse": bool(sparse), "ragged": bool(ragged), "optional": bool(optional)}
        if name is not None:
            config["name"] = name
        if shape is not None:
            config["shape"] = _shape_list(shape, "InputLayer", "shape")
        if batch_shape is not None:
            config["batch_shape"] = _shape_list(batch_shape, "InputLayer", "batch_shape")
        if batch_size is not None:
            config["batch_size"] = int(batch_size)
        config["dtype"] = _CODE_DTYPE[dtype_code(dtype if dtype is not None else "float32", "InputLayer")]
        self._create(config)

    @property
    def batch_shape(self):
        return tuple(self.get_config()["batch_shape"])

    @property
    def dtype(self):
        return self.get_config()["dtype"]


def Input(shape=None, batch_size=None, dtype=None, sparse=None, ragged=None, batch_shape=None, name=None,
          tensor=None, optional=False):
    """keras.Input(shape, batch_size=None, dtype=None, batch_shape=None, name=None). kiln has no
    functional API: this returns the InputLayer, for the first place of a Sequential model
    (keras.Sequential([keras.Input(shape=(784,)), ...]), which is then built at once)."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse, ragged=ragged,
                      batch_shape=batch_shape, input_tensor=tensor, optional=optional, name=name)


def _dense(units, activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
           kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
           bias_constraint=None):
    return {"units": int(units), "activation": _serializable(activation) or "linear", "use_bias": bool(use_bias),
            "kernel_initializer": _serializable(kernel_initializer), "bias_initializer": _serializable(bias_initializer),
            "kernel_regularizer": _serializable(kernel_regularizer), "bias_regularizer": _serializable(bias_regularizer),
            "activity_regularizer": _serializable(activity_regularizer), "kernel_constraint": kernel_constraint,
            "bias_constraint": bias_constraint}


def _einsum_dense(equation, output_shape, activation=None, bias_axes=None, kernel_initializer="glorot_uniform",
                  bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                  kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
                  gptq_unpacked_column_size=None, quantization_config=None):
    if isinstance(output_shape, _numbers.Integral) and not isinstance(output_shape, bool):
        shape = int(output_shape)  # the library writes it back as a list, as Keras's (output_shape,)
    else:
        shape = [None if d is None else int(d) for d in output_shape]
    c = {"output_shape": shape, "equation": str(equation), "activation": _serializable(activation) or "linear",
         "bias_axes": None if bias_axes is None else str(bias_axes),
         "kernel_initializer": _serializable(kernel_initializer), "bias_initializer": _serializable(bias_initializer),
         "kernel_regularizer": _serializable(kernel_regularizer), "bias_regularizer": _serializable(bias_regularizer),
         "activity_regularizer": _serializable(activity_regularizer), "kernel_constraint": kernel_constraint,
         "bias_constraint": bias_constraint}
    for key, value in (("lora_rank", lora_rank), ("gptq_unpacked_column_size", gptq_unpacked_column_size),
                       ("quantization_config", quantization_config)):
        if value is not None:
            c[key] = value  # refused by the library, which names it
    return c


def _dropout(rate, noise_shape=None, seed=None):
    c = {"rate": float(rate),
         "noise_shape": None if noise_shape is None else [None if d is None else int(d) for d in noise_shape]}
    c["seed"] = int(seed) if seed is not None else None
    return c


def _axis_arg(axis):
    return list(axis) if isinstance(axis, (list, tuple)) else int(axis)


def _layer_norm(axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros", gamma_initializer="ones",
                beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                rms_scaling=False):
    return {"axis": _axis_arg(axis), "epsilon": float(epsilon),
            "center": bool(center), "scale": bool(scale), "beta_initializer": _serializable(beta_initializer),
            "gamma_initializer": _serializable(gamma_initializer),
            "beta_regularizer": _serializable(beta_regularizer), "gamma_regularizer": _serializable(gamma_regularizer),
            "beta_constraint": beta_constraint, "gamma_constraint": gamma_constraint, "rms_scaling": bool(rms_scaling)}


def _group_norm(groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                gamma_constraint=None):
    if isinstance(groups, bool) or not isinstance(groups, _numbers.Integral):
        raise InvalidArgumentError("GroupNormalization: groups must be an int (-1 for instance normalization); got %r"
                                   % (groups,))
    return {"groups": int(groups), "axis": int(axis), "epsilon": float(epsilon), "center": bool(center),
            "scale": bool(scale), "beta_initializer": _serializable(beta_initializer),
            "gamma_initializer": _serializable(gamma_initializer),
            "beta_regularizer": _serializable(beta_regularizer), "gamma_regularizer": _serializable(gamma_regularizer),
            "beta_constraint": beta_constraint, "gamma_constraint": gamma_constraint}


def _batch_norm(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                synchronized=False, renorm=False, renorm_clipping=None, renorm_momentum=0.99):
    c = {"axis": int(axis), "momentum": float(momentum), "epsilon": float(epsilon), "center": bool(center),
         "scale": bool(scale), "beta_initializer": _serializable(beta_initializer),
         "gamma_initializer": _serializable(gamma_initializer),
         "moving_mean_initializer": _serializable(moving_mean_initializer),
         "moving_variance_initializer": _serializable(moving_variance_initializer),
         "beta_regularizer": _serializable(beta_regularizer), "gamma_regularizer": _serializable(gamma_regularizer),
         "beta_constraint": beta_constraint, "gamma_constraint": gamma_constraint, "synchronized": bool(synchronized)}
    if renorm:
        c["renorm"] = True  # refused by the library (batch renormalization is not supported yet)
    return c


def _embedding(input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
               embeddings_constraint=None, mask_zero=False, input_length=None, activity_regularizer=None):
    init = "random_uniform" if embeddings_initializer == "uniform" else _serializable(embeddings_initializer)
    return {"input_dim": int(input_dim), "output_dim": int(output_dim), "embeddings_initializer": init,
            "embeddings_regularizer": _serializable(embeddings_regularizer),
            "embeddings_constraint": embeddings_constraint, "mask_zero": bool(mask_zero),
            "activity_regularizer": _serializable(activity_regularizer)}


Dense = _builtin("Dense", "keras.layers.Dense(units, activation=None, use_bias=True, ...)", _dense)
EinsumDense = _builtin(
    "EinsumDense", "keras.layers.EinsumDense(equation, output_shape, activation=None, bias_axes=None, ...): "
    "einsum(equation, inputs, kernel) + bias; output_shape is the output's shape without the batch axis (None for "
    "an axis the input gives).", _einsum_dense)
Activation = _builtin("Activation", "keras.layers.Activation(activation)",
                      lambda activation: {"activation": _serializable(activation) or "linear"})
Dropout = _builtin("Dropout", "keras.layers.Dropout(rate, noise_shape=None, seed=None)", _dropout)
Flatten = _builtin("Flatten", "keras.layers.Flatten(data_format=None): channels_first moves the channel axis last first.",
                   lambda data_format=None: {} if data_format is None else {"data_format": str(data_format)})
Reshape = _builtin("Reshape", "keras.layers.Reshape(target_shape)",
                   lambda target_shape: {"target_shape": [int(d) for d in target_shape]})
Embedding = _builtin("Embedding", "keras.layers.Embedding(input_dim, output_dim, ...)", _embedding)
Masking = _builtin("Masking", "keras.layers.Masking(mask_value=0.0): steps whose features all equal mask_value are "
                   "zeroed and masked.", lambda mask_value=0.0: {"mask_value": float(mask_value)})
LayerNormalization = _builtin("LayerNormalization", "keras.layers.LayerNormalization(axis=-1, epsilon=1e-3, ...)",
                              _layer_norm)
BatchNormalization = _builtin("BatchNormalization", "keras.layers.BatchNormalization(momentum=0.99, ...)",
                              _batch_norm)
GroupNormalization = _builtin(
    "GroupNormalization", "keras.layers.GroupNormalization(groups=32, axis=-1, epsilon=1e-3, center=True, "
    "scale=True, ...): each group of channels normalized over its channels and the other non-batch axes "
    "(groups=-1: instance normalization).", _group_norm)
RMSNormalization = _builtin(
    "RMSNormalization", "keras.layers.RMSNormalization(axis=-1, epsilon=1e-6): x * rsqrt(mean(x^2) + epsilon) * "
    "scale over the trailing axis (or axes).",
    lambda axis=-1, epsilon=1e-6: {"axis": _axis_arg(axis), "epsilon": float(epsilon)})
UnitNormalization = _builtin(
    "UnitNormalization", "keras.layers.UnitNormalization(axis=-1): x scaled to unit L2 norm over axis (an int or a "
    "list of axes), x * rsqrt(max(sum(x^2), 1e-24)) as Keras 3 computes it.",
    lambda axis=-1: {"axis": int(axis) if isinstance(axis, _numbers.Integral) else [int(a) for a in axis]})

_BUILTINS = {c._class_name: c for c in (Dense, EinsumDense, Activation, Dropout, Flatten, Reshape, Embedding, Masking,
                                        LayerNormalization, BatchNormalization, GroupNormalization, UnitNormalization,
                                        RMSNormalization, InputLayer)}
_BUILTINS["Sequential"] = Sequential


def deserialize(config, custom_objects=None):
    """keras.layers.deserialize({"class_name": ..., "config": {...}}, custom_objects=None).

    Custom classes come from custom_objects ({"MyDense": MyDense}) or from
    kiln.saving.register_keras_serializable."""
    from .saving import custom_object_scope
    with custom_object_scope(custom_objects or {}):
        with _config.to_c(config) as c:
            return _take_back(_new_handle(L.kiln_layer_deserialize, c))


def serialize(layer):
    c = _new_handle(L.kiln_layer_serialize, layer._handle())
    try:
        return _config.from_c(c)
    finally:
        L.kiln_config_free(c)


def clear_session():
    """keras.backend.clear_session(): layer names start again from "dense", "dense_1", ..."""
    L.kiln_clear_session()


__all__ = ["Layer", "Model", "Sequential", "InputLayer", "Input", "Dense", "EinsumDense", "Activation", "Dropout", "Flatten", "Reshape", "Embedding", "Masking",
           "LayerNormalization", "BatchNormalization", "GroupNormalization", "UnitNormalization", "RMSNormalization",
           "deserialize",
           "serialize", "clear_session"]

# The other families of built-in layers live in their own modules, registered in _BUILTINS.
from .layers_conv import *  # noqa: E402,F401,F403
from .layers_conv import __all__ as _conv_all  # noqa: E402
from .layers_attention import *  # noqa: E402,F401,F403
from .layers_attention import __all__ as _attention_all  # noqa: E402
from .layers_activation import *  # noqa: E402,F401,F403
from .layers_activation import __all__ as _activation_all  # noqa: E402
from .layers_reshaping import *  # noqa: E402,F401,F403
from .layers_reshaping import __all__ as _reshaping_all  # noqa: E402
from .layers_preprocessing import *  # noqa: E402,F401,F403
from .layers_preprocessing import __all__ as _preprocessing_all  # noqa: E402
from .layers_recurrent import *  # noqa: E402,F401,F403
from .layers_recurrent import __all__ as _recurrent_all  # noqa: E402

__all__ += _conv_all + _attention_all + _activation_all + _reshaping_all + _preprocessing_all + _recurrent_all
