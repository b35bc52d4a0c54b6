"""Keras's training API on kiln models, over the C ABI (kiln/training.h): kiln.Model inherits Trainer.

    model = kiln.Sequential([kiln.layers.Dense(64, activation="relu"), kiln.layers.Dense(10)])
    model.compile(optimizer="adam",
                  loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=5, validation_split=0.2)
    history.history["val_loss"]
    model.evaluate(x_test, y_test)          # [loss, accuracy]
    model.predict(x_test)                   # a NumPy array (kiln Tensors without NumPy)

x and y may be kiln Tensors, NumPy arrays (used without a copy where their layout allows), lists of
them (one per model input / output), or a kiln.data.Dataset of (x, y[, sample_weight]) batches.

A Model subclass may override train_step(self, data) / test_step(self, data) as in Keras; fit and
evaluate then call them (kiln_model_set_step_callbacks), with self.compute_loss and
self.compute_metrics at hand. An exception raised there comes out of fit unchanged.
"""
import ctypes
import sys
import threading
import weakref

from . import _lib
from . import communicator as _communicator
from . import config as _config
from . import errors as _errors
from . import data as _data
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from .autodiff import GradientTape
from .errors import FailedPreconditionError, InvalidArgumentError, UnimplementedError, check
from .tensor import Tensor, int64_array

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

L = _lib.lib

# ---------------------------------------------------------------- errors from callbacks

_tls = threading.local()  # the batch layouts of the running fit / evaluate / *_on_batch call


def _step_status(exc, hook):
    """A status for an exception raised in a Python train_step / test_step: the exception waits
    under a token (the one lookup _call makes finds dataset-function errors too) to be re-raised."""
    return _errors.callback_status(exc, hook, token=True)


def _reject_iterator(x, what):
    """A Python generator / iterator (or a dataset's iterator) is not data kiln can batch: say how
    to give it (Keras takes generators; kiln takes them through Dataset.from_generator)."""
    if isinstance(x, _data.Iterator) or (hasattr(x, "__next__") and not isinstance(x, (Tensor, list, tuple, dict))
                                         and not (_np is not None and isinstance(x, _np.ndarray))):
        raise TypeError("%s is a %s; kiln's fit / evaluate / predict take tensors, NumPy arrays or a "
                        "kiln.data.Dataset. Wrap a generator as kiln.data.Dataset.from_generator(make_generator, "
                        "output_signature=(kiln.data.TensorSpec(...), ...)) and pass the dataset (batch it first)"
                        % (what, type(x).__name__))


def _call(fn, *args):
    """Calls a C training function; a failure caused by Python code (a train_step, a layer's call,
    a dataset function) re-raises that code's exception, unchanged."""
    from . import layers as _layers
    _errors.ensure_headroom()  # a callback C makes must be able to start and report its errors
    _layers._tls.pending = None
    status = _errors.deferred_call(fn, *args)
    if not status:
        return
    pending = getattr(_layers._tls, "pending", None)
    _layers._tls.pending = None
    exc = _errors.take_pending(status)
    if exc is not None:
        pending = exc
    if pending is not None:
        L.kiln_status_free(status)
        try:
            raise pending
        finally:
            pending = exc = None  # no cycle through this frame (it is in the traceback)
    check(status)


def _new(fn, *args):
    out = ctypes.c_void_p()
    _call(fn, ctypes.byref(out), *args)
    return out.value


def _logs(handle):
    """A C logs config as a dict (and frees it)."""
    try:
        return {k: float(v) for k, v in _config.from_c(handle).items()}
    finally:
        L.kiln_config_free(handle)


# ---------------------------------------------------------------- data in and out

def _is_data(v):
    return isinstance(v, Tensor) or hasattr(v, "_kiln_value") or (_np is not None and isinstance(v, _np.ndarray))


def _tensor(v):
    if hasattr(v, "_kiln_value"):
        return v._kiln_value()
    return _data._to_tensor(v)


def _tensors(value, what):
    """(structure, tensors) of x / y: a tensor or array, or a list / tuple of them (one per model
    input or output). A nested list of numbers is one tensor, as tf.convert_to_tensor reads it."""
    if value is None:
        return None, []
    if isinstance(value, dict):
        raise InvalidArgumentError("%s: a dict needs named model inputs/outputs, which kiln models do not have; "
                                   "pass a list in the model's order" % what)
    if isinstance(value, (list, tuple)) and value and all(_is_data(v) for v in value):
        return tuple(_data._LEAF for _ in value), [_tensor(v) for v in value]
    return _data._LEAF, [_tensor(value)]


def _c_list(tensors):
    """An owned C tensor list (None for no tensors); free with kiln_tensor_list_free."""
    if not tensors:
        return None
    return _data._to_list(tensors)


class _Lists:
    """C tensor lists freed when the block ends, and the objects C options point at, kept alive
    until then."""

    def __init__(self):
        self._lists = []
        self._kept = []

    def keep(self, obj):
        self._kept.append(obj)
        return obj

    def add(self, tensors):
        lst = _c_list(tensors)
        if lst is not None:
            self._lists.append(lst)
        return lst

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for lst in self._lists:
            L.kiln_tensor_list_free(lst)
        return False


def _outputs(tensors, single_if_one=True):
    """What predict gives back: NumPy arrays when NumPy is importable (as load_data), else kiln
    Tensors; one output unwrapped."""
    out = [t.numpy() if _np is not None else t for t in tensors]
    return out[0] if single_if_one and len(out) == 1 else out


def _verbose(v):
    """Keras's verbose: "auto" (-1: a progress bar on a terminal, else a line per epoch), 0, 1, 2."""
    if isinstance(v, str) and v == "auto" or v is None:
        return -1
    if isinstance(v, str) or v not in (0, 1, 2):
        raise InvalidArgumentError("verbose must be 'auto', 0, 1 or 2; got %r" % (v,))
    return int(v)


def _optional_int(v, what, default=-1):
    if v is None:
        return default
    if isinstance(v, bool) or int(v) != v:
        raise InvalidArgumentError("%s must be an int or None; got %r" % (what, v))
    return int(v)


def _callback_handles(callbacks, what, model=None):
    cbs = list(callbacks or [])
    for c in cbs:
        if not getattr(c, "_h", None):
            raise InvalidArgumentError("%s: callbacks must be kiln.callbacks.Callback objects; got %r" % (what, c))
    own = model._python_metrics() if model is not None else []
    if own:
        from .callbacks import _ResetMetrics  # noqa: PLC0415 - callbacks imports this module
        cbs.insert(0, _ResetMetrics(own))
    if threading.current_thread() is threading.main_thread():
        # Python runs a signal's handler (Ctrl-C's KeyboardInterrupt) only between bytecodes of
        # the main thread: a hook at every batch lets it stop fit / evaluate / predict there.
        from .callbacks import _Interruptible  # noqa: PLC0415 - callbacks imports this module
        cbs.append(_Interruptible())
    arr = (ctypes.c_void_p * max(len(cbs), 1))(*[c._h for c in cbs])
    return cbs, arr


def _class_weight(class_weight):
    if class_weight is None:
        return None, 0
    if not isinstance(class_weight, dict):
        raise InvalidArgumentError("class_weight must be a dict {class index: weight}; got %r" % (class_weight,))
    weights = []
    for k, w in class_weight.items():
        k = int(k)
        if k < 0:
            raise InvalidArgumentError("class_weight: class %d is negative; expected class indices >= 0" % k)
        weights += [1.0] * (k + 1 - len(weights))
        weights[k] = float(w)
    return (ctypes.c_double * max(len(weights), 1))(*weights), len(weights)


def _dataset_layout(ds):
    """(num_inputs, element structure) of a Dataset of (x, y[, sample_weight]) elements."""
    spec = _data._resolve(ds._spec)
    if isinstance(spec, tuple) and len(spec) >= 1:
        return _leaves(spec[0]), spec  # (x, y[, sample_weight]), or (x,) without targets
    return (1 if spec is None else _leaves(spec)), spec  # x alone (a dict of inputs is one x)


def _leaves(spec):
    spec = _data._resolve(spec)
    if spec is None or spec == _data._LEAF:
        return 1
    if spec == _data._NONE:
        return 0
    if isinstance(spec, tuple):
        return sum(_leaves(s) for s in spec)
    return sum(_leaves(s) for s in spec.values())


class _Layouts:
    """Makes the structures of this call's batches known to the Python steps (per thread)."""

    def __init__(self, *specs):
        self._specs = [s for s in specs if s is not None]

    def __enter__(self):
        self._previous = getattr(_tls, "layouts", None)
        _tls.layouts = self._specs
        return self

    def __exit__(self, *exc):
        _tls.layouts = self._previous
        return False


def _pack(tensors, hook="train_step"):
    """A step's flat batch as Keras's data: the element structure of the call that runs the step
    ((x, y) or (x, y, sample_weight); x a tuple for several inputs). fit's layouts are the
    training data's, then the validation data's: test_step tries the validation layout first."""
    n = len(tensors)
    layouts = getattr(_tls, "layouts", None) or []
    for spec in (layouts if hook == "train_step" else list(reversed(layouts))):
        count = _leaves(spec)
        if count == n:
            return _data._unflatten(spec, iter(tensors))
        if count + 1 == n and isinstance(spec, tuple) and len(spec) == 2:  # class_weight added a sample weight
            return _data._unflatten(spec + (_data._LEAF,), iter(tensors))
    return tuple(tensors)


def _unpack(data):
    """keras.utils.unpack_x_y_sample_weight."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise InvalidArgumentError("data must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of %d" % len(data))


def _data_spec(xspec, yspec, has_sample_weight):
    """The structure of Keras's data from x, y and sample_weight (pack_x_y_sample_weight): (x, y),
    (x, y, sample_weight), or without y x itself ((x,) for several inputs; the callers drop a
    sample weight given without y, as Keras does)."""
    if yspec is None:
        return xspec if xspec == _data._LEAF else (xspec,)
    return (xspec, yspec, _data._LEAF) if has_sample_weight else (xspec, yspec)


def _as_list(v):
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


# ---------------------------------------------------------------- step callbacks

_STEPS = {}        # user_data key -> weakref to the Python model
_step_keys = iter(range(1, 1 << 62))
_step_lock = threading.Lock()


def _float(v):
    if isinstance(v, Tensor) or hasattr(v, "_kiln_value"):
        return float(_tensor(v))
    return float(v)


def _flat_logs(logs):
    """A step's logs with nested dicts ({"compile_metrics": {"mae": ...}}) flattened, as Keras's
    _pythonify_logs does."""
    out = {}
    for name, value in logs.items():
        if isinstance(value, dict):
            out.update(_flat_logs(value))
        else:
            out[name] = value
    return out


class _CompileMetrics:
    """Keras 3's CompileMetrics in model.metrics: the compiled metrics as one object named
    "compile_metrics". update_state(y, y_pred, sample_weight) updates them all (built from the
    first batch, as compute_metrics builds them), result() gives {name: value}, reset_state resets
    them. A custom train_step's `{m.name: m.result() for m in self.metrics}` logs them flat."""

    name = "compile_metrics"

    def __init__(self, model):
        self._model = model

    def _named(self):
        m = self._model
        pairs = list(zip(m.metrics_names, m._compiled_metrics()))
        return [(n, metric) for n, metric in pairs[1:]]  # after the loss tracker

    def update_state(self, y_true, y_pred, sample_weight=None):
        m = self._model
        with _Lists() as lists:
            args = m._step_lists(lists, None, y_true, y_pred)
            sw = _tensor(sample_weight) if sample_weight is not None else None
            L.kiln_config_free(_new(L.kiln_model_compute_metrics, m._handle(), *args, sw))

    def result(self):
        return {n: float(metric.result()) for n, metric in self._named()}

    def reset_state(self):
        for _, metric in self._named():
            metric.reset_state()


def _run_step(hook, logs, data, user_data):
    ref = _STEPS.get(user_data or 0)
    model = ref() if ref is not None else None
    if model is None:
        return L.kiln_status_create(4, ("the Python object of this model was garbage-collected before its %s"
                                        % hook).encode())
    try:
        from .layers import _tensors_from_list
        result = getattr(model, hook)(_pack(_tensors_from_list(data), hook))
        if not isinstance(result, dict):
            raise InvalidArgumentError("%s.%s must return a dict of logs {name: value}; got %r"
                                       % (type(model).__name__, hook, type(result).__name__))
        for name, value in _flat_logs(result).items():
            check(L.kiln_config_set_float(logs, str(name).encode(), _float(value)))
        return None
    except BaseException as e:  # noqa: B902 - every exception crosses back as a status
        return _step_status(e, "%s.%s" % (type(model).__name__, hook))


@_lib.MODEL_STEP
@_errors.guard_callback("a model's train_step", token=True)
def _on_train_step(logs, model_h, data, user_data):
    return _run_step("train_step", logs, data, user_data)


@_lib.MODEL_STEP
@_errors.guard_callback("a model's test_step", token=True)
def _on_test_step(logs, model_h, data, user_data):
    return _run_step("test_step", logs, data, user_data)


@_lib.MODEL_STEP_DESTROY
def _on_step_destroy(user_data):
    _STEPS.pop(user_data or 0, None)


def _install_steps(model):
    """Routes fit / evaluate through the Python train_step / test_step a subclass overrides."""
    cls = type(model)
    train = cls.train_step is not Trainer.train_step
    test = cls.test_step is not Trainer.test_step
    if not (train or test) or model.__dict__.get("_kiln_steps_installed"):
        return
    with _step_lock:
        key = next(_step_keys)
    _STEPS[key] = weakref.ref(model)
    table = _lib.ModelStepCallbacks(ctypes.sizeof(_lib.ModelStepCallbacks),
                                    _on_train_step if train else _lib.MODEL_STEP(),
                                    _on_test_step if test else _lib.MODEL_STEP(), _on_step_destroy)
    try:
        _call(L.kiln_model_set_step_callbacks, model._handle(), ctypes.byref(table), ctypes.c_void_p(key))
    except BaseException:
        _STEPS.pop(key, None)
        raise
    object.__setattr__(model, "_kiln_steps_installed", True)


# ---------------------------------------------------------------- compile arguments

def _loss_handle(loss, what):
    """A kiln loss object for a compile loss: a Loss, a kiln.losses function, or a name."""
    if isinstance(loss, _losses.Loss):
        return loss
    if isinstance(loss, str):
        return _losses.Loss._adopt(_losses.Loss._create_handle(loss, {}))
    if isinstance(loss, dict):
        return _losses.deserialize(loss)
    name = getattr(loss, "__name__", None)
    if callable(loss) and name in _losses._FUNCTIONS and _losses._FUNCTIONS[name] is loss:
        return _losses.Loss._adopt(_losses.Loss._create_handle(name, {}))
    if callable(loss) and not isinstance(loss, type):  # Keras wraps a function: LossFunctionWrapper(fn)
        return _losses.LossFunctionWrapper(loss)
    raise InvalidArgumentError("%s: %r is not a loss; compile takes kiln.losses objects, loss functions and names"
                               % (what, loss))


def _metric_arg(metric, what):
    """A metric name (resolved by compile from the loss and shapes) or a kiln metric object."""
    if isinstance(metric, str) or isinstance(metric, _metrics.Metric):
        return metric
    if isinstance(metric, (_losses.Loss, dict)) or callable(metric):
        name = getattr(metric, "__name__", None)
        if callable(metric) and name in _losses._FUNCTIONS and _losses._FUNCTIONS[name] is metric:
            return name
        if isinstance(metric, dict):
            return _metrics.deserialize(metric)
        if isinstance(metric, _losses.Loss) or callable(metric) and not isinstance(metric, type):
            return _metrics.MeanMetricWrapper(metric)  # Keras: a function's mean, named after it
        raise InvalidArgumentError("%s: %r is not a metric; compile takes kiln.metrics objects, metric functions "
                                   "and names" % (what, metric))
    raise InvalidArgumentError("%s: cannot interpret %r as a metric" % (what, metric))


def _strings(names):
    return _lib.c_strings(names, "compile: loss and metric names"), len(names)


def _handles(objs):
    return (ctypes.c_void_p * max(len(objs), 1))(*[o._h for o in objs]), len(objs)


# ---------------------------------------------------------------- the mixin

class Trainer:
    """Keras's training API (keras.Model's compile / fit / evaluate / predict ...): mixed into
    kiln.Model, so Sequential and every Model subclass have it."""

    # ---- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, run_eagerly=False,
                weighted_metrics=None, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """keras.Model.compile. optimizer: a name ("adam") or kiln.optimizers object; loss: a name,
        kiln.losses object or function, or a list of them (one per output); metrics: names
        ("accuracy") or kiln.metrics objects; weighted_metrics: the same, updated with the sample
        weight (sample_weight and class_weight, as the loss; `metrics` are not); loss_weights: one
        float per output. Unknown names raise NotFoundError listing the known ones."""
        if steps_per_execution not in (1, None):
            raise UnimplementedError("compile: kiln runs one step per execution (steps_per_execution=1)")
        dist = sys.modules.get("kiln.distributed")
        strategy = dist._current_strategy() if dist is not None else None
        if strategy is not None:
            object.__setattr__(self, "_kiln_strategy", strategy)  # tf.distribute: fit runs under it
        opts = _lib.CompileOptions()
        check(L.kiln_compile_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
        keep = []  # Python objects whose handles the options point at, alive until the call ends

        if optimizer is None:
            optimizer = "rmsprop"
        if isinstance(optimizer, dict):
            optimizer = _optimizers.deserialize(optimizer)
        if isinstance(optimizer, _optimizers.Optimizer):
            opts.optimizer = optimizer._h
        elif isinstance(optimizer, str):
            opts.optimizer_name = optimizer.encode()
        else:
            raise InvalidArgumentError("compile: optimizer must be a name or a kiln.optimizers object; got %r"
                                       % (optimizer,))

        if isinstance(loss, dict):
            raise InvalidArgumentError("compile: a dict of losses needs named model outputs, which kiln models do "
                                       "not have; pass a list in output order")
        losses = _as_list(loss)
        if losses and all(isinstance(x, str) for x in losses):
            names, n = _strings(losses)
            opts.loss_names, opts.num_loss_names = ctypes.cast(names, ctypes.POINTER(ctypes.c_char_p)), n
            keep.append(names)
        elif losses:
            objs = [_loss_handle(x, "compile") for x in losses]
            arr, n = _handles(objs)
            opts.losses, opts.num_losses = ctypes.cast(arr, _lib._HP), n
            keep += [objs, arr]

        if loss_weights is not None:
            if isinstance(loss_weights, dict):
                raise InvalidArgumentError("compile: a dict of loss_weights needs named model outputs; pass a list")
            w = [float(x) for x in _as_list(loss_weights)]
            arr = (ctypes.c_double * max(len(w), 1))(*w)
            opts.loss_weights = ctypes.cast(arr, ctypes.POINTER(ctypes.c_double))
            opts.num_loss_weights = len(w)
            keep.append(arr)

        for arg, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if isinstance(value, dict):
                raise InvalidArgumentError("compile: a dict of %s needs named model outputs; pass a list" % arg)
        # C takes one list: the metrics, then the weighted metrics, each flagged in metric_is_weighted.
        margs = [_metric_arg(m, "compile") for m in _as_list(metrics)]
        num_weighted = len(_as_list(weighted_metrics))
        margs += [_metric_arg(m, "compile") for m in _as_list(weighted_metrics)]
        names = [m for m in margs if isinstance(m, str)]
        objs = [m for m in margs if not isinstance(m, str)]
        if names:
            arr, n = _strings(names)
            opts.metric_names, opts.num_metric_names = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p)), n
            keep.append(arr)
        if objs:
            arr, n = _handles(objs)
            opts.metrics, opts.num_metrics = ctypes.cast(arr, _lib._HP), n
            keep += [objs, arr]
        if names and objs:  # Keras's order: logs, metrics_names and evaluate's list follow the list
            order = (ctypes.c_bool * len(margs))(*[not isinstance(m, str) for m in margs])
            opts.metric_is_object, opts.num_metric_is_object = ctypes.cast(order, ctypes.POINTER(ctypes.c_bool)), \
                len(margs)
            keep.append(order)
        if num_weighted:
            flags = (ctypes.c_bool * len(margs))(*([False] * (len(margs) - num_weighted) + [True] * num_weighted))
            opts.metric_is_weighted, opts.num_metric_is_weighted = \
                ctypes.cast(flags, ctypes.POINTER(ctypes.c_bool)), len(margs)
            keep.append(flags)
        opts.run_eagerly = bool(run_eagerly)

        _install_steps(self)
        _call(L.kiln_model_compile, self._handle(), ctypes.byref(opts))
        object.__setattr__(self, "_kiln_optimizer", optimizer if isinstance(optimizer, _optimizers.Optimizer)
                           else None)
        # The loss and metric objects: a loss written in Python runs through the object (kiln holds
        # it weakly), so the model keeps them while it is compiled with them.
        object.__setattr__(self, "_kiln_compiled_objects", [o for o in keep if isinstance(o, list)])
        object.__setattr__(self, "_kiln_compiled_metrics", bool(margs))

    @property
    def compiled(self):
        return bool(L.kiln_model_is_compiled(self._handle()))

    @property
    def metrics(self):
        """keras.Model.metrics, as Keras 3's: the loss tracker (a Mean named "loss") and the compiled
        metrics as one object named "compile_metrics" (update_state(y, y_pred), result() a dict),
        then the Metric objects the model keeps in its attributes; [] before compile without any. A
        custom train_step updates them itself (`for m in self.metrics: ...`). A subclass may
        override it with its own list (Keras's custom-fit guide): fit and evaluate reset those as
        they reset the compiled ones."""
        out = []
        if L.kiln_model_is_compiled(self._handle()):
            out = self._compiled_metrics()[:1]  # the loss tracker
            if self.__dict__.get("_kiln_compiled_metrics"):
                out.append(_CompileMetrics(self))
        return out + self._attribute_metrics()

    def _compiled_metrics(self):
        """The compiled metric objects, in metrics_names' order (kiln_model_get_metrics)."""
        from .layers import _variables_from  # noqa: PLC0415 - layers imports this module
        return _variables_from(L.kiln_model_get_metrics, self._handle(), call=_call, adopt=_metrics.Metric._adopt)

    def _attribute_metrics(self):
        return [v for v in self.__dict__.values() if isinstance(v, _metrics.Metric)]

    def _python_metrics(self):
        """The metrics fit and evaluate reset from Python: an overridden `metrics` property's, else
        the Metric attributes (kiln resets the compiled ones)."""
        if type(self).metrics is not Trainer.metrics:
            return [m for m in self.metrics if isinstance(m, (_metrics.Metric, _CompileMetrics))]
        return self._attribute_metrics()

    def reset_metrics(self):
        """keras.Model.reset_metrics: every metric of `metrics` back to its initial state."""
        for m in self.metrics:
            m.reset_state()

    @property
    def optimizer(self):
        """The compiled optimizer (the object given to compile, or one made from its name); None
        before compile."""
        if not L.kiln_model_is_compiled(self._handle()):
            return None
        h = _new(L.kiln_model_get_optimizer, self._handle())
        given = self.__dict__.get("_kiln_optimizer")
        if given is not None and L.kiln_optimizer_get_id(given._h) == L.kiln_optimizer_get_id(h):
            L.kiln_optimizer_free(h)
            return given
        name = L.kiln_optimizer_get_class_name(h).decode()
        return _optimizers._ALL.get(name, _optimizers.Optimizer)._adopt(h)

    @property
    def stop_training(self):
        return bool(L.kiln_model_get_stop_training(self._handle()))

    @stop_training.setter
    def stop_training(self, value):
        _call(L.kiln_model_set_stop_training, self._handle(), bool(value))

    @property
    def metrics_names(self):
        """"loss", then the compiled metrics (once the first batch has built them); [] before compile."""
        if not L.kiln_model_is_compiled(self._handle()):
            return []
        h = _new(L.kiln_model_get_metrics_names, self._handle())
        try:
            return list(_config.from_c(h).get("names", []))
        finally:
            L.kiln_config_free(h)

    # ---- fit / evaluate / predict
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1,
            distribution=None):
        """keras.Model.fit; returns the History (history.history["val_loss"]). distribution: a
        kiln.distributed.MirroredStrategy (or Communicator) to train data-parallel over MPI, or a
        kiln.Communicator.create over another transport; by default the strategy the model was
        compiled under, or whose scope() fit runs in."""
        opts = _lib.FitOptions()
        check(L.kiln_fit_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
        comm = distribution if isinstance(distribution, _communicator.Communicator) else None
        dist = sys.modules.get("kiln.distributed")
        if comm is not None:
            opts.distribution = comm._h  # a caller's transport: no MPI needed
        elif distribution is not None or dist is not None:
            from . import distributed as dist
            comm = dist._strategy_for(self, distribution)
            if comm is not None:
                opts.distribution = comm._h
        with _Lists() as lists:
            train_spec = self._set_data(opts, lists, x, y, sample_weight, "fit")
            opts.batch_size = _optional_int(batch_size, "batch_size", -1)  # None: 32, or samples / steps
            opts.epochs = _optional_int(epochs, "epochs", 1)
            opts.verbose = _verbose(verbose)
            cbs, cb_arr = _callback_handles(callbacks, "fit", self)
            opts.callbacks, opts.num_callbacks = ctypes.cast(cb_arr, _lib._HP), len(cbs)
            opts.validation_split = float(validation_split or 0.0)
            val_spec = None
            if validation_data is not None:
                _reject_iterator(validation_data, "fit: validation_data")
                if isinstance(validation_data, _data.Dataset):
                    opts.validation_dataset = validation_data._h
                    val_spec = _data._resolve(validation_data._spec)
                else:
                    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (1, 2, 3):
                        raise InvalidArgumentError("fit: validation_data must be (x,), (x, y), (x, y, sample_weight) "
                                                   "or a Dataset; got %r" % (type(validation_data).__name__,))
                    vxs, vx = _tensors(validation_data[0], "fit: validation_data x")
                    vys, vy = _tensors(validation_data[1] if len(validation_data) > 1 else None,
                                       "fit: validation_data y")
                    if not vx:
                        raise InvalidArgumentError("fit: validation_data holds no x")
                    opts.validation_x, opts.validation_y = lists.add(vx), lists.add(vy)
                    vsw = validation_data[2] if len(validation_data) == 3 and vy else None  # Keras: no y, no weight
                    if vsw is not None:
                        opts.validation_sample_weight = lists.keep(_tensor(vsw))._h
                    val_spec = _data_spec(vxs, vys, vsw is not None)
            freq = list(validation_freq) if isinstance(validation_freq, (list, tuple)) else [int(validation_freq)]
            if isinstance(validation_freq, (list, tuple)) and len(freq) == 1:
                freq = freq * 2  # Keras: a list names epochs, even with one entry (C: one value is an interval)
            freq_arr = lists.keep(int64_array(freq, "validation_freq", "fit"))
            opts.validation_freq = ctypes.cast(freq_arr, ctypes.POINTER(ctypes.c_int64))
            opts.num_validation_freq = len(freq)
            opts.shuffle = bool(shuffle)
            cw, ncw = _class_weight(class_weight)
            if cw is not None:
                opts.class_weight = ctypes.cast(lists.keep(cw), ctypes.POINTER(ctypes.c_double))
            opts.num_class_weight = ncw
            opts.initial_epoch = _optional_int(initial_epoch, "initial_epoch", 0)
            opts.steps_per_epoch = _optional_int(steps_per_epoch, "steps_per_epoch")
            opts.validation_steps = _optional_int(validation_steps, "validation_steps")
            opts.validation_batch_size = _optional_int(validation_batch_size, "validation_batch_size")
            with _Layouts(train_spec, val_spec):
                h = _new(L.kiln_model_fit, self._handle(), ctypes.byref(opts))
            del comm  # kept alive until here
        from . import callbacks as _callbacks  # here: callbacks may import layers, which imports this
        history = _callbacks.Callback._adopt(h)
        history.model = self  # Keras's History.model
        object.__setattr__(self, "history", history)
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """keras.Model.evaluate: [loss, metrics...] (a float when there is only the loss), or the
        dict with return_dict=True."""
        opts = _lib.EvaluateOptions()
        check(L.kiln_evaluate_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
        with _Lists() as lists:
            spec = self._set_data(opts, lists, x, y, sample_weight, "evaluate")
            opts.batch_size = _optional_int(batch_size, "batch_size", -1)  # None: 32, or samples / steps
            opts.verbose = _verbose(verbose)
            opts.steps = _optional_int(steps, "steps")
            cbs, cb_arr = _callback_handles(callbacks, "evaluate", self)
            opts.callbacks, opts.num_callbacks = ctypes.cast(cb_arr, _lib._HP), len(cbs)
            with _Layouts(spec):
                logs = _logs(_new(L.kiln_model_evaluate, self._handle(), ctypes.byref(opts)))
        return self._logs_result(logs, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """keras.Model.predict: the outputs of every batch stacked; a NumPy array (a list for
        several outputs) when NumPy is importable, else kiln Tensors."""
        opts = _lib.PredictOptions()
        check(L.kiln_predict_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
        with _Lists() as lists:
            _reject_iterator(x, "predict: x")
            if isinstance(x, _data.Dataset):
                opts.dataset = x._h
                opts.num_inputs = _dataset_layout(x)[0]
            else:
                _, xs = _tensors(x, "predict: x")
                if not xs:
                    raise InvalidArgumentError("predict: x is required")
                opts.x = lists.add(xs)
            opts.batch_size = _optional_int(batch_size, "batch_size", -1)  # None: 32, or samples / steps
            opts.verbose = _verbose(verbose)
            opts.steps = _optional_int(steps, "steps")
            cbs, cb_arr = _callback_handles(callbacks, "predict")
            opts.callbacks, opts.num_callbacks = ctypes.cast(cb_arr, _lib._HP), len(cbs)
            out = _new(L.kiln_model_predict, self._handle(), ctypes.byref(opts))
        return _outputs(self._take_list(out))

    # ---- one batch
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """keras.Model.train_on_batch: one step; [loss, metrics...] (or a float, or the dict)."""
        xspec, xs = _tensors(x, "train_on_batch: x")
        yspec, ys = _tensors(y, "train_on_batch: y")
        sw = _tensor(sample_weight) if sample_weight is not None and ys else None  # no y: dropped, as Keras
        cw, ncw = _class_weight(class_weight)
        with _Lists() as lists, _Layouts(_data_spec(xspec, yspec, sw is not None)):
            logs = _logs(_new(L.kiln_model_train_on_batch, self._handle(), lists.add(xs), lists.add(ys), sw, cw, ncw))
        return self._logs_result(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """keras.Model.test_on_batch: loss and metrics of one batch."""
        xspec, xs = _tensors(x, "test_on_batch: x")
        yspec, ys = _tensors(y, "test_on_batch: y")
        sw = _tensor(sample_weight) if sample_weight is not None and ys else None  # no y: dropped, as Keras
        with _Lists() as lists, _Layouts(_data_spec(xspec, yspec, sw is not None)):
            logs = _logs(_new(L.kiln_model_test_on_batch, self._handle(), lists.add(xs), lists.add(ys), sw))
        return self._logs_result(logs, return_dict)

    def predict_on_batch(self, x):
        """keras.Model.predict_on_batch: the outputs on x (NumPy arrays when NumPy is importable)."""
        _, xs = _tensors(x, "predict_on_batch: x")
        with _Lists() as lists:
            out = _new(L.kiln_model_predict_on_batch, self._handle(), lists.add(xs))
        return _outputs(self._take_list(out))

    # ---- weights in TensorFlow's checkpoint format (kiln.train)
    def save_weights(self, filepath, overwrite=True, save_format=None, options=None):
        """keras.Model.save_weights in TF format: the model's weights (and a compiled model's
        optimizer state) written to the checkpoint prefix filepath, which the directory's
        `checkpoint` state file then names. HDF5 (.h5) is not supported."""
        import os  # noqa: PLC0415
        from .train import _path_bytes  # noqa: PLC0415 - kiln.train imports this module's classes
        if save_format not in (None, "tf"):
            raise UnimplementedError("save_weights: save_format %r is not supported; kiln writes TensorFlow "
                                     "checkpoints (save_format='tf')" % (save_format,))
        if options is not None:
            raise UnimplementedError("save_weights: options (tf.train.CheckpointOptions) are not supported")
        if not overwrite and os.path.exists(os.fspath(filepath) + ".index"):
            raise FailedPreconditionError("save_weights: '%s' exists and overwrite is False" % os.fspath(filepath), 4)
        _call(L.kiln_model_save_weights, self._handle(), _path_bytes(filepath))

    def load_weights(self, filepath, skip_mismatch=False, by_name=False, options=None):
        """keras.Model.load_weights of a TF-format checkpoint (a prefix, or a directory's latest
        checkpoint): the weights, and a compiled model's optimizer state (its slots when it makes
        them). An unbuilt model takes the values when it builds (Keras's deferred restoration).
        Returns the CheckpointLoadStatus."""
        from .train import CheckpointLoadStatus, _path_bytes  # noqa: PLC0415
        if skip_mismatch or by_name:
            raise UnimplementedError("load_weights: skip_mismatch and by_name apply to HDF5 files, which kiln does "
                                     "not read")
        if options is not None:
            raise UnimplementedError("load_weights: options (tf.train.CheckpointOptions) are not supported")
        return CheckpointLoadStatus(_new(L.kiln_model_load_weights, self._handle(), _path_bytes(filepath)))

    def save(self, filepath, overwrite=True, save_format=None, signatures=None, options=None, **kwargs):
        """keras.Model.save(filepath): the SavedModel directory (kiln.saved_model.save), which
        kiln.models.load_model brings back without this model's source. ".keras" and HDF5 files are
        not supported. include_optimizer=True is the only choice (the optimizer state is saved)."""
        import os  # noqa: PLC0415
        from . import saved_model  # noqa: PLC0415
        if not kwargs.pop("include_optimizer", True):
            raise UnimplementedError("save: include_optimizer=False is not supported; the optimizer state is saved")
        kwargs.pop("save_traces", None)  # kiln saves configs, never traces
        if kwargs:
            raise InvalidArgumentError("save: unexpected arguments %s" % sorted(kwargs))
        path = os.fspath(filepath)
        if save_format not in (None, "tf") or path.endswith((".h5", ".hdf5", ".keras")):
            raise UnimplementedError("save('%s', save_format=%r): kiln writes SavedModel directories only; give a "
                                     "directory path (save_format='tf')" % (path, save_format))
        if not overwrite and os.path.exists(path):
            raise FailedPreconditionError("save: '%s' exists and overwrite is False" % path, 4)
        saved_model.save(self, path, signatures=signatures, options=options)

    # ---- the overridable steps and their helpers
    def train_step(self, data):
        """Keras's train_step(data): forward under a GradientTape, compute_loss, the gradients of
        optimizer.scale_loss(loss), the optimizer's apply_gradients, compute_metrics. Override it in
        a subclass; super().train_step(data) runs this one."""
        x, y, sample_weight = _unpack(data)
        with GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
            loss = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def test_step(self, data):
        """Keras's test_step(data): forward (training False), compute_loss, compute_metrics."""
        x, y, sample_weight = _unpack(data)
        y_pred = self(x, training=False)
        self.compute_loss(x, y, y_pred, sample_weight)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        """Keras's compute_loss: the compiled losses (times loss_weights) plus the regularization
        losses, as a float32 scalar Tensor recorded on the active tapes."""
        with _Lists() as lists:
            args = self._step_lists(lists, x, y, y_pred)
            return Tensor._adopt(_new(L.kiln_model_compute_loss, self._handle(), *args,
                                      _tensor(sample_weight) if sample_weight is not None else None))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Keras's compute_metrics: updates the compiled metrics and gives {name: value} (the loss
        tracker holds the last compute_loss value)."""
        with _Lists() as lists:
            args = self._step_lists(lists, x, y, y_pred)
            return _logs(_new(L.kiln_model_compute_metrics, self._handle(), *args,
                              _tensor(sample_weight) if sample_weight is not None else None))

    # ---- plumbing
    @staticmethod
    def _step_lists(lists, x, y, y_pred):
        return [lists.add(_tensors(v, what)[1]) for v, what in ((x, "x"), (y, "y"), (y_pred, "y_pred"))]

    @staticmethod
    def _take_list(handle):
        from .layers import _tensors_from_list
        try:
            return _tensors_from_list(handle)
        finally:
            L.kiln_tensor_list_free(handle)

    def _set_data(self, opts, lists, x, y, sample_weight, what):
        """Puts x / y / sample_weight (or a Dataset) into fit / evaluate options; returns the
        element structure the steps see."""
        _reject_iterator(x, what + ": x")
        if isinstance(x, _data.Dataset):
            if y is not None:
                raise InvalidArgumentError("%s: y must be None when x is a Dataset (its elements hold (x, y))" % what)
            if sample_weight is not None:
                raise InvalidArgumentError("%s: sample_weight must be None when x is a Dataset (its elements hold "
                                           "(x, y, sample_weight))" % what)
            opts.dataset = x._h
            opts.num_inputs, spec = _dataset_layout(x)
            return spec
        if x is None:
            raise InvalidArgumentError("%s: x is required (tensors, arrays or a Dataset)" % what)
        xspec, xs = _tensors(x, "%s: x" % what)
        yspec, ys = _tensors(y, "%s: y" % what)
        opts.x, opts.y = lists.add(xs), lists.add(ys)
        if sample_weight is not None and ys:  # Keras packs x alone when y is None, dropping the weight
            opts.sample_weight = lists.keep(_tensor(sample_weight))._h
        return _data_spec(xspec, yspec, sample_weight is not None and bool(ys))

    def _logs_result(self, logs, return_dict):
        if return_dict:
            return logs
        names = [n for n in self.metrics_names if n in logs]
        names += [n for n in logs if n not in names]
        values = [logs[n] for n in names]
        return values[0] if len(values) == 1 else values


__all__ = ["Trainer"]
