"""Keras callbacks over the C ABI (kiln/callbacks.h): kiln.callbacks / kiln.keras.callbacks.

    class StopAtLoss(kiln.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs["loss"] < 0.1:
                self.model.stop_training = True

    model.fit(x, y, callbacks=[StopAtLoss(), kiln.callbacks.EarlyStopping(patience=2)])

Built-in classes are made by class name with Keras's arguments and defaults. A Callback subclass
overrides the hooks it needs (Keras's names and signatures); kiln calls them from fit, evaluate
and predict with self.model set to the model (the user's own Python object when it is alive). An
exception raised in a hook stops fit, and fit raises that exception. As in Keras the hooks share
one logs dict: a value a hook sets or deletes (``logs["lr"] = ...``) reaches the callbacks after
it, History and the progress bar; log values are numbers.
"""
import ctypes
import itertools
import json
import numbers
import os
import sys
import threading
import weakref

from . import _lib
from . import config as _config
from ._handles import Owned, config_dict, new_handle
from .errors import _SPARE, InvalidArgumentError, callback_status, check, guard_callback, take_interrupt

L = _lib.lib

_HOOKS = [name for name, _ in _lib.CALLBACK_HOOKS]
# Keras's on_batch_begin/on_batch_end are the training batch hooks under their TF1 names.
_ALIASES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


class Callback(Owned):
    """keras.callbacks.Callback: the base of the built-in callbacks below and of your own.

    Subclass it and override any of on_train_begin/end, on_epoch_begin/end(epoch, logs),
    on_train_batch_begin/end(batch, logs) (or on_batch_begin/end), on_test_*, on_predict_*.
    self.model is the model being trained and self.params fit's {"verbose", "epochs", "steps"}.
    Logs are dicts of numbers ({} where there is nothing to log, as Keras's CallbackList passes);
    what a hook sets or deletes in them reaches the callbacks after it and History.
    """

    _KIND = "callback"
    model = None  # Keras's self.model (set by fit, or set_model)

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.model = None
        if cls._CLASS is None:  # your own callback: its C object exists even without super().__init__()
            obj._make_custom()
        return obj

    def __init__(self, *args, **kwargs):
        if self._CLASS is not None:
            self._init_builtin(args, kwargs, {}, ())
        elif args or kwargs:
            raise TypeError("Callback.__init__ takes no arguments")

    def __repr__(self):  # callbacks have no name, unlike Owned's other kinds
        return "<kiln.callbacks.%s>" % self.class_name

    # ---- Keras's API ----

    def set_model(self, model):
        """Keras's set_model: the model the hooks act on (fit sets it itself)."""
        check(L.kiln_callback_set_model(self._h, model._handle() if model is not None else None))
        self.model = model

    def set_params(self, params):
        """Accepted for Keras compatibility: fit sets the params kiln reads."""
        self._params_override = dict(params)

    @property
    def params(self):
        override = self.__dict__.get("_params_override")
        return dict(override) if override is not None else config_dict(L.kiln_callback_get_params, self._h)

    # The hooks. On a built-in callback they run it (as calling a Keras callback's hook does; a
    # changed log, such as ReduceLROnPlateau's learning_rate, is written back to logs); on your
    # own they do nothing until overridden.
    def on_train_begin(self, logs=None):
        self._builtin_hook("on_train_begin", 0, logs)

    def on_train_end(self, logs=None):
        self._builtin_hook("on_train_end", 0, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._builtin_hook("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._builtin_hook("on_epoch_end", epoch, logs)

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        if self._CLASS is None:
            self.on_batch_begin(batch, logs=logs)  # as Keras: the TF1 name of this hook
        self._builtin_hook("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self._CLASS is None:
            self.on_batch_end(batch, logs=logs)
        self._builtin_hook("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs=None):
        self._builtin_hook("on_test_begin", 0, logs)

    def on_test_end(self, logs=None):
        self._builtin_hook("on_test_end", 0, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._builtin_hook("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._builtin_hook("on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs=None):
        self._builtin_hook("on_predict_begin", 0, logs)

    def on_predict_end(self, logs=None):
        self._builtin_hook("on_predict_end", 0, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._builtin_hook("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._builtin_hook("on_predict_batch_end", batch, logs)

    # ---- plumbing ----

    def _handle(self):
        return self._h

    def _builtin_hook(self, hook, index, logs):
        if self._CLASS is None:
            return
        with _logs_to_c(logs) as c:
            check(L.kiln_callback_call_hook(self._h, hook.encode(), int(index), c))
            if logs is not None:
                logs.update(_config.from_c(c))

    def _make_custom(self):
        cls = type(self)
        key = next(_keys)
        _LIVE[key] = weakref.ref(self)
        try:
            self._h = new_handle(L.kiln_callback_create_custom, cls.__name__.encode("utf-8"),
                                 ctypes.byref(_table_for(cls)), ctypes.c_void_p(key))
        except BaseException:
            _LIVE.pop(key, None)
            raise
        self._kiln_key = key


class History(Callback):
    """keras.callbacks.History: what fit returns. ``history.history`` maps each log name to its
    per-epoch values (names in the order first seen); ``history.epoch`` lists the epochs."""

    _CLASS = "History"
    _ARGS = ()

    def _record(self):
        return config_dict(L.kiln_callback_get_history, self._h)

    @property
    def history(self):
        r = self._record()
        return {k: [float(v) for v in r["history"][k]] for k in r["keys"]}

    @property
    def epoch(self):
        return list(self._record()["epoch"])


# ---------------------------------------------------------------- the hooks' trampolines
#
# One C callback per Python object: its user_data is a key to a weak reference, and its table
# holds only the hooks the class overrides (so fit skips the others).

_LIVE = {}                 # user_data key -> weakref to the Python callback
_FUNCS = {}                # user_data key -> a schedule function (LearningRateScheduler)
_TABLES = {}               # class -> its CallbackTable (kept alive with the class)
_keys = itertools.count(1)
_tls = threading.local()


def _logs_to_c(logs, where="logs"):
    """A config handle (context manager) for a logs dict; NaN and infinities are kept (a log may
    hold them, unlike a setting). A value that is not a number raises, naming its key."""
    if logs is None:
        return _NoConfig()
    values = {}
    for k, v in logs.items():
        try:
            if isinstance(v, (str, bytes)):
                raise TypeError
            values[str(k)] = float(v)
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgumentError("%s: logs[%r] is %r (%s); expected a number" % (
                where, k, v, type(v).__name__)) from None
    text = json.dumps(values, allow_nan=True)
    return _config._Handle(new_handle(L.kiln_config_from_json, text.encode("utf-8")))


class _NoConfig:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _status_from_exception(exc, where):
    """A status for an exception raised in a hook; the exception waits on this thread for the
    Python call that entered C (fit) to raise it (the same slot as layer callbacks use)."""
    from . import layers  # noqa: PLC0415 - layers imports much; only needed on errors
    return callback_status(exc, where, tls=layers._tls)


def _model_for(obj, model_h):
    """Sets obj.model to the Python object of the model fit runs (the user's own when alive)."""
    if not model_h:
        return
    mid = L.kiln_layer_get_id(model_h)
    if obj.__dict__.get("_model_id") == mid and obj.model is not None:
        return
    from . import layers  # noqa: PLC0415
    obj.model = layers._wrap(layers._new_handle(L.kiln_layer_clone, model_h))
    obj._model_id = mid


def _run(user_data, hook, model_h, logs_h, index):
    obj = None
    try:
        ref = _LIVE.get(user_data or 0)
        obj = ref() if ref is not None else None
        if obj is None:
            return L.kiln_status_create(4, ("the Python object of this callback was garbage-collected before its %s"
                                            % hook).encode())
        _model_for(obj, model_h)
        logs = _config.from_c(logs_h) if logs_h else {}
        before = dict(logs)
        fn = getattr(obj, hook)
        if index is None:
            fn(logs)
        else:
            fn(int(index), logs)
        if logs_h and logs != before:
            _write_back(logs_h, before, logs, "%s.%s" % (type(obj).__name__, hook))
        return None
    except BaseException as e:  # noqa: B902 - every exception crosses back as a status
        return _hook_status(e, obj, hook)


def _write_back(logs_h, before, logs, where):
    """Keras's one logs dict: what a hook set or deleted in it goes back to C, so the callbacks
    after it, History and the progress bar see it."""
    with _logs_to_c(logs, where) as c:  # checks every value is a number before anything changes
        for k in before:
            if k not in logs:
                check(L.kiln_config_remove(logs_h, str(k).encode("utf-8")))
        check(L.kiln_config_update(logs_h, c))


def _hook_status(exc, obj, hook):
    """Never raises (see errors.callback_status); near the recursion limit, a status made in advance."""
    from . import layers  # noqa: PLC0415
    try:
        return _status_from_exception(exc, "%s.%s" % (type(obj).__name__, hook))
    except BaseException:  # noqa: B902 - no frame could be made: no call here
        layers._tls.pending = exc
        return _SPARE.pop() if _SPARE else None


def _make_hook(name, indexed):
    # The lambdas add a frame around _run that cannot fail once entered (C enters fit through
    # training._call, which keeps room for it under the recursion limit).
    if indexed:
        return _lib.CB_INDEX_HOOK(lambda m, i, logs, ud: _run(ud, name, m, logs, i))
    return _lib.CB_HOOK(lambda m, logs, ud: _run(ud, name, m, logs, None))


_HOOK_FNS = {name: _make_hook(name, indexed) for name, indexed in _lib.CALLBACK_HOOKS}


@_lib.CB_DESTROY
def _on_destroy(user_data):
    _LIVE.pop(user_data or 0, None)
    _FUNCS.pop(user_data or 0, None)


def _overrides(cls, hook):
    for name in (hook, _ALIASES.get(hook)):
        if name and getattr(cls, name) is not getattr(Callback, name):
            return True
    return False


class _ResetMetrics(Callback):
    """Resets the metrics a model keeps in Python (an overridden `metrics` property, Metric
    attributes) where Keras's fit and evaluate call reset_metrics: at each epoch and each
    evaluation; kiln resets the compiled ones itself."""

    def __init__(self, metrics):
        super().__init__()
        self._metrics = metrics

    def _reset(self):
        for m in self._metrics:
            m.reset_state()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_test_begin(self, logs=None):
        self._reset()


class _Interruptible(Callback):
    """Ends fit / evaluate / predict at the batch after Ctrl-C with KeyboardInterrupt, as Keras's
    Python loop ends (errors.DeferredInterrupt holds the signal until this hook raises it)."""

    def on_train_batch_end(self, batch, logs=None):
        if take_interrupt():
            raise KeyboardInterrupt

    on_test_batch_end = on_predict_batch_end = on_train_batch_end


def _table_for(cls):
    table = _TABLES.get(cls)
    if table is None:
        table = _lib.CallbackTable()
        table.struct_size = ctypes.sizeof(_lib.CallbackTable)
        for hook in _HOOKS:
            if _overrides(cls, hook):
                setattr(table, hook, _HOOK_FNS[hook])
        table.destroy = _on_destroy
        _TABLES[cls] = table
    return table


# ---------------------------------------------------------------- the built-in callbacks

class _Attributes:
    """Keras's attributes of a built-in (EarlyStopping.stopped_epoch, best, ...) read from kiln,
    and its arguments as attributes (EarlyStopping.patience)."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        h = self._h
        if h:
            state = config_dict(L.kiln_callback_get_attributes, h)
            if name in state:
                return state[name]
        args = self.__dict__.get("_args", {})
        if name in args:
            return args[name]
        raise AttributeError("%s has no attribute %r" % (type(self).__name__, name))

    def _keep_args(self, args, kwargs):
        names = [k for k, _ in self._ARGS]
        values = dict(self._ARGS)
        values.update(zip(names, args))
        values.update(kwargs)
        self._args = values


class EarlyStopping(_Attributes, Callback):
    """keras.callbacks.EarlyStopping: stops training when `monitor` has stopped improving (by more
    than min_delta for `patience` epochs, counted from start_from_epoch). mode "auto" minimizes
    losses and errors and maximizes accuracies, AUC, precision and recall. With
    restore_best_weights the model gets the best epoch's weights back at the end of training.
    After fit: stopped_epoch, best_epoch, best, wait."""

    _CLASS = "EarlyStopping"
    _ARGS = (("monitor", "val_loss"), ("min_delta", 0), ("patience", 0), ("verbose", 0), ("mode", "auto"),
             ("baseline", None), ("restore_best_weights", False), ("start_from_epoch", 0))

    def __init__(self, *args, **kwargs):
        self._init_builtin(args, kwargs, {}, ())
        self._keep_args(args, kwargs)


class ReduceLROnPlateau(_Attributes, Callback):
    """keras.callbacks.ReduceLROnPlateau: multiplies the learning rate by `factor` when `monitor`
    has not improved for `patience` epochs (not below min_lr; then `cooldown` epochs of rest).
    Adds "learning_rate" to each epoch's logs."""

    _CLASS = "ReduceLROnPlateau"
    _ARGS = (("monitor", "val_loss"), ("factor", 0.1), ("patience", 10), ("verbose", 0), ("mode", "auto"),
             ("min_delta", 1e-4), ("cooldown", 0), ("min_lr", 0.0))

    def __init__(self, *args, **kwargs):
        self._init_builtin(args, kwargs, {}, ())
        self._keep_args(args, kwargs)


class CSVLogger(_Attributes, Callback):
    """keras.callbacks.CSVLogger: writes each epoch's logs to a CSV file, as Keras does."""

    _CLASS = "CSVLogger"
    _ARGS = (("filename", None), ("separator", ","), ("append", False))

    def __init__(self, filename, separator=",", append=False):
        filename = os.fspath(filename)
        self._init_builtin((filename, separator, append), {}, {}, ())
        self._keep_args((filename, separator, append), {})


class TerminateOnNaN(_Attributes, Callback):
    """keras.callbacks.TerminateOnNaN: stops training when a batch's loss is NaN or infinite
    (with raise_error=True, fit raises instead)."""

    _CLASS = "TerminateOnNaN"
    _ARGS = (("raise_error", False),)

    def __init__(self, *args, **kwargs):
        self._init_builtin(args, kwargs, {}, ())
        self._keep_args(args, kwargs)


class SwapEMAWeights(_Attributes, Callback):
    """keras.callbacks.SwapEMAWeights(swap_on_epoch=False): with an optimizer made with use_ema=True,
    evaluation and prediction run on the weights' moving averages (swapped in at their begin, back at
    their end); with swap_on_epoch=True also from each epoch's end to the next epoch's begin, so that
    callbacks after it (ModelCheckpoint) see the averages."""

    _CLASS = "SwapEMAWeights"
    _ARGS = (("swap_on_epoch", False),)

    def __init__(self, *args, **kwargs):
        self._init_builtin(args, kwargs, {}, ())
        self._keep_args(args, kwargs)


def _save_freq(save_freq, owner, allow_false=False):
    """Keras's save_freq for the config: "epoch", a positive int of batches (or False: never)."""
    if save_freq is False and allow_false:
        return False
    if isinstance(save_freq, str) and save_freq == "epoch":
        return save_freq
    if isinstance(save_freq, bool) or not isinstance(save_freq, numbers.Integral):
        raise InvalidArgumentError("%s: unrecognized save_freq %r; expected 'epoch' or an integer number of batches%s"
                                   % (owner, save_freq, " (or False)" if allow_false else ""))
    return int(save_freq)


class ModelCheckpoint(_Attributes, Callback):
    """keras.callbacks.ModelCheckpoint (tf.keras 2): saves the model at the end of each epoch, or
    every `save_freq` training batches (counted across epochs), to `filepath` formatted with
    str.format's rules from epoch (counted from 1), batch (per-batch saves) and the logs:
    "ckpt/weights.{epoch:02d}-{val_loss:.2f}". A name the logs lack fails fit (Keras's KeyError).
    With save_best_only, saves only when `monitor` improves on `best` (initial_value_threshold, or
    +-inf); verbose=1 prints Keras's "Epoch 1: val_loss improved from inf to ..." lines.

    What is written is model.save(path)'s SavedModel directory, or with save_weights_only=True a
    TensorFlow-format checkpoint of the model and its optimizer, as model.save_weights(path) writes
    (path.index, path.data-00000-of-00001 and the `checkpoint` file). After fit: best,
    epochs_since_last_save, last_saved_filepath."""

    _CLASS = "ModelCheckpoint"
    _ARGS = (("filepath", None), ("monitor", "val_loss"), ("verbose", 0), ("save_best_only", False),
             ("save_weights_only", False), ("mode", "auto"), ("save_freq", "epoch"), ("options", None),
             ("initial_value_threshold", None))

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", options=None, initial_value_threshold=None):
        if options is not None:
            raise InvalidArgumentError("ModelCheckpoint: options (tf.train.CheckpointOptions) are not supported; "
                                       "leave them None")
        filepath = os.fspath(filepath)
        config = {"filepath": filepath, "monitor": monitor, "verbose": int(verbose),
                  "save_best_only": bool(save_best_only), "save_weights_only": bool(save_weights_only),
                  "mode": mode, "save_freq": _save_freq(save_freq, "ModelCheckpoint")}
        if initial_value_threshold is not None:
            config["initial_value_threshold"] = float(initial_value_threshold)
        self._h = self._create_handle(self._CLASS, config)
        self._keep_args((), dict(config, options=None, initial_value_threshold=initial_value_threshold))


class BackupAndRestore(_Attributes, Callback):
    """keras.callbacks.BackupAndRestore (tf.keras 2's layout: a checkpoint in backup_dir/chief): backs up
    the model, its optimizer and the epoch at the end of each epoch (or every `save_freq` batches;
    False: never); a later fit with a backup in backup_dir (after a crash, in a new process, with a
    fresh model and optimizer) restores them and continues after the saved epoch. When fit
    completes, the backup is deleted unless delete_checkpoint=False. Build the model before fit.
    After fit: resumed_epoch (-1 when fit did not resume)."""

    _CLASS = "BackupAndRestore"
    _ARGS = (("backup_dir", None), ("save_freq", "epoch"), ("delete_checkpoint", True),
             ("save_before_preemption", False))

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, save_before_preemption=False):
        if save_before_preemption:
            raise InvalidArgumentError("BackupAndRestore: save_before_preemption=True is not supported (kiln has "
                                       "no preemption notice)")
        config = {"backup_dir": os.fspath(backup_dir), "save_freq": _save_freq(save_freq, "BackupAndRestore", True),
                  "delete_checkpoint": bool(delete_checkpoint)}
        self._h = self._create_handle(self._CLASS, config)
        self._keep_args((), dict(config, save_before_preemption=False))


def _update_freq(update_freq):
    """Keras's update_freq for the config: "epoch", "batch" or a positive int of batches."""
    if isinstance(update_freq, str) and update_freq in ("epoch", "batch"):
        return update_freq
    if isinstance(update_freq, bool) or not isinstance(update_freq, numbers.Integral):
        raise InvalidArgumentError("TensorBoard: unrecognized update_freq %r; expected 'epoch', 'batch' or an "
                                   "integer number of batches" % (update_freq,))
    return int(update_freq)


def _profile_batch(profile_batch):
    """Keras's profile_batch for the config: an int, "start,stop", or a pair (start, stop)."""
    if isinstance(profile_batch, (tuple, list)):
        return [int(b) for b in profile_batch]
    if isinstance(profile_batch, str):
        return profile_batch
    if isinstance(profile_batch, bool) or not isinstance(profile_batch, numbers.Integral):
        raise InvalidArgumentError("TensorBoard: profile_batch must be a non-negative integer or 2-tuple of positive "
                                   "integers. Found: %r" % (profile_batch,))
    return int(profile_batch)


class TensorBoard(_Attributes, Callback):
    """keras.callbacks.TensorBoard: logs for `tensorboard --logdir log_dir`, as tf.keras writes them
    (TensorFlow 2's event files, in log_dir/train and log_dir/validation; new files for each fit).

    Per epoch (step = epoch): epoch_<name> of each log (val_<name> in the validation run), the
    optimizer's learning rate (epoch_learning_rate) and, with write_steps_per_second, the training
    speed. write_graph: the model's Keras JSON ("keras", step 0; TensorBoard's conceptual graph).
    histogram_freq=k: every k epochs a histogram of each weight ("dense/kernel_0/histogram"), and
    with write_images the weight as an image. update_freq="batch" or N: batch_<name> every N
    training batches (at the batch number counted from 1 across epochs); the run is then also the
    default summary writer during the batches, so kiln.summary calls in your own code land there.
    At the end of each validation, evaluation_<name>_vs_iterations at the optimizer's iterations.
    profile_batch=N or (start, stop): the op timings of those batches (kiln.summary.trace_export).
    embeddings_freq must be 0 (no embedding projector). After fit: log_dir, train_dir,
    validation_dir, train_event_file, validation_event_file."""

    _CLASS = "TensorBoard"
    _ARGS = (("log_dir", "logs"), ("histogram_freq", 0), ("write_graph", True), ("write_images", False),
             ("write_steps_per_second", False), ("update_freq", "epoch"), ("profile_batch", 0),
             ("embeddings_freq", 0), ("embeddings_metadata", None))
    # Keras 2's _validate_kwargs: TF1's arguments, accepted and ignored.
    _TF1_KWARGS = ("write_grads", "embeddings_layer_names", "embeddings_data", "batch_size")

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None, **kwargs):
        unknown = set(kwargs) - set(self._TF1_KWARGS)
        if unknown:
            raise InvalidArgumentError("Unrecognized arguments in `TensorBoard` Callback: %s. Supported kwargs are: %s"
                                       % (sorted(unknown), list(self._TF1_KWARGS)))
        config = {"log_dir": os.fspath(log_dir), "histogram_freq": int(histogram_freq),
                  "write_graph": bool(write_graph), "write_images": bool(write_images),
                  "write_steps_per_second": bool(write_steps_per_second), "update_freq": _update_freq(update_freq),
                  "profile_batch": _profile_batch(profile_batch), "embeddings_freq": int(embeddings_freq)}
        self._h = self._create_handle(self._CLASS, config)
        self._keep_args((), dict(config, update_freq=update_freq, profile_batch=profile_batch,
                                 embeddings_metadata=embeddings_metadata))


class HParams(_Attributes, Callback):
    """TensorBoard's hp.KerasCallback(writer, hparams, trial_id=None): logs this run's
    hyperparameters for TensorBoard's HParams dashboard. At the start of fit, the session-start
    summary of `hparams` ({name or hp.HParam: bool, int, float or str}) in an event file in the
    run directory `writer` (a path, or a kiln.summary writer whose logdir is used); at the end, the
    session end: "success", or "failure" when the last loss is not finite (and when fit raised,
    once the callback is freed). trial_id: the session group's name (default: a digest of the
    values). Bad values raise here."""

    _CLASS = "HParams"
    _ARGS = (("writer", None), ("hparams", None), ("trial_id", None))

    def __init__(self, writer, hparams, trial_id=None):
        if writer is None:
            raise InvalidArgumentError("HParams: writer must be a log directory or a kiln.summary writer, not None")
        log_dir = writer.logdir if hasattr(writer, "logdir") and not isinstance(writer, (str, bytes)) else writer
        if not isinstance(hparams, dict):
            raise InvalidArgumentError("HParams: hparams must be a dict of name -> value; got %s"
                                       % type(hparams).__name__)
        values = {}
        for k, v in hparams.items():
            name = str(getattr(k, "name", k))  # hp.HParam objects are keyed by their name
            if name in values:
                raise InvalidArgumentError("HParams: multiple values specified for hparam %r" % name)
            values[name] = v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v
        config = {"log_dir": os.fspath(log_dir), "hparams": values}
        if trial_id is not None:
            config["trial_id"] = str(trial_id)
        self._h = self._create_handle(self._CLASS, config)
        self._keep_args((), {"writer": writer, "hparams": hparams, "trial_id": trial_id})


class ProgbarLogger(Callback):
    """keras.callbacks.ProgbarLogger: prints the progress bar (fit adds one when verbose != 0)."""

    _CLASS = "ProgbarLogger"
    _ARGS = (("count_mode", "steps"), ("stateful_metrics", None))


class LearningRateScheduler(Callback):
    """keras.callbacks.LearningRateScheduler(schedule, verbose=0): at the start of each epoch the
    optimizer's learning rate becomes schedule(epoch, lr) (or schedule(epoch), Keras's old form);
    each epoch's logs get "learning_rate"."""

    _CLASS = "LearningRateScheduler"

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: schedule must be callable; got %s" % type(schedule).__name__)
        self.schedule = schedule
        self.verbose = verbose
        key = next(_keys)
        _FUNCS[key] = schedule
        try:
            self._h = new_handle(L.kiln_callback_create_lr_scheduler, int(verbose), _on_schedule, _on_destroy,
                                 ctypes.c_void_p(key))
        except BaseException:
            _FUNCS.pop(key, None)
            raise


@_lib.LR_SCHEDULE
@guard_callback("LearningRateScheduler's schedule")
def _on_schedule(out_lr, epoch, lr, user_data):
    try:
        schedule = _FUNCS[user_data]
        try:
            value = schedule(int(epoch), float(lr))
        except TypeError:  # Keras's old API: schedule(epoch)
            value = schedule(int(epoch))
        if isinstance(value, bool) or not isinstance(value, (float, int)) and not hasattr(value, "__float__"):
            raise ValueError("The output of the `schedule` function should be a float. Got: %r" % (value,))
        out_lr[0] = float(value)
        return None
    except BaseException as e:  # noqa: B902
        return _status_from_exception(e, "LearningRateScheduler's schedule")


class LambdaCallback(Callback):
    """keras.callbacks.LambdaCallback: a callback made of functions, each optional:
    on_epoch_begin/on_epoch_end(epoch, logs), on_train_begin/on_train_end(logs),
    on_train_batch_begin/on_train_batch_end(batch, logs) (also as on_batch_begin/on_batch_end)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        batch_begin = kwargs.pop("on_batch_begin", None)
        batch_end = kwargs.pop("on_batch_end", None)
        self.__dict__.update(kwargs)  # as Keras: other keyword arguments become attributes
        self._fns = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                     "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                     "on_train_batch_begin": on_train_batch_begin or batch_begin,
                     "on_train_batch_end": on_train_batch_end or batch_end}

    def _call(self, name, *args):
        fn = self._fns.get(name)
        if fn is not None:
            fn(*args)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)


Callback._BY_CLASS = {c._CLASS: c for c in (History, EarlyStopping, ReduceLROnPlateau, CSVLogger, TerminateOnNaN,
                                            SwapEMAWeights,
                                            ProgbarLogger, LearningRateScheduler, ModelCheckpoint,
                                            BackupAndRestore, TensorBoard, HParams)}


# ---------------------------------------------------------------- progress text and warnings
#
# The progress bar and callbacks' messages go to sys.stdout (whatever it is when they print: a
# notebook, a captured stream), and callbacks' warnings through Python's warnings module.

@_lib.TEXT_FN
def _on_progress(text, user_data):
    try:
        out = sys.stdout
        if out is not None:
            out.write(text.decode("utf-8", "replace"))
            out.flush()
    except Exception:  # noqa: BLE001 - printing must never stop training
        pass


@_lib.IS_TERMINAL_FN
def _on_is_terminal(user_data):
    try:
        out = sys.stdout
        return bool((hasattr(out, "isatty") and out.isatty()) or "ipykernel" in sys.modules)
    except Exception:  # noqa: BLE001
        return False


@_lib.TEXT_FN
def _on_warning(text, user_data):
    try:
        import warnings  # noqa: PLC0415
        warnings.warn(text.decode("utf-8", "replace"), UserWarning, stacklevel=2)
    except Exception:  # noqa: BLE001 - a warning turned into an error by a filter is not raised from C
        pass


def route_output_to_python():
    """Sends kiln's progress text to sys.stdout and callbacks' warnings to warnings.warn (done on
    import; call again after restore_default_output)."""
    check(L.kiln_set_progress_callback(_on_progress, _on_is_terminal, None))
    check(L.kiln_set_warning_callback(_on_warning, None))


def restore_default_output():
    """Progress text back to the process's stdout, warnings to stderr (as a C program sees them)."""
    check(L.kiln_set_progress_callback(_lib.TEXT_FN(), _lib.IS_TERMINAL_FN(), None))
    check(L.kiln_set_warning_callback(_lib.TEXT_FN(), None))


route_output_to_python()
