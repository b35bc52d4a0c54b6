"""kiln.train: tf.train's checkpoints over the C ABI (kiln/checkpoint.h): reading them, and
writing and restoring objects.

    reader = kiln.train.load_checkpoint("ckpt_dir")        # or a prefix: "ckpt_dir/ckpt-3"
    reader.get_variable_to_shape_map()                      # {"global_step": [], ...}
    reader.get_tensor("global_step")                        # 20 (NumPy, as TensorFlow gives it)
    kiln.train.list_variables("ckpt_dir")                   # [(name, shape), ...] sorted by name

    ckpt = kiln.train.Checkpoint(model=model, optimizer=model.optimizer,
                                 rng=kiln.random.get_global_generator())   # Dropout masks, shuffles too
    manager = kiln.train.CheckpointManager(ckpt, "ckpt_dir", max_to_keep=3)
    ckpt.restore(manager.latest_checkpoint)                 # None: a fresh start
    ...train...
    manager.save()                                          # "ckpt_dir/ckpt-1"; keeps the newest 3
    ckpt.restore("ckpt_dir").assert_existing_objects_matched()

TensorFlow's own checkpoints (TF2 object-based, TF1 name-based) and kiln's are read alike, without
TensorFlow, and TensorFlow reads what kiln writes (Keras 2.13's layout). Every read checks the
bytes' size and CRC32C: a corrupt file raises kiln.DataLossError naming the file and the variable,
an unknown name kiln.NotFoundError, a value that does not fit its object kiln.InvalidArgumentError
naming both shapes. A restore changes nothing unless every value fits. Model.save_weights and
Model.load_weights (kiln.Model) use the same format.
"""
import ctypes
import os

from . import _lib
from ._copy import Uncopyable as _Uncopyable
from . import config as _config
from .errors import FailedPreconditionError, InvalidArgumentError, UnimplementedError, call_c, check
from .tensor import Tensor

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

L = _lib.lib

__all__ = ["CheckpointReader", "load_checkpoint", "list_variables", "Checkpoint", "CheckpointLoadStatus",
           "CheckpointManager", "latest_checkpoint"]


def _path_bytes(path):
    return os.fsencode(os.fspath(path))


def _name_bytes(name):
    b = str(name).encode("utf-8", "surrogateescape")
    if b"\0" in b:  # C would end the name there
        raise InvalidArgumentError("checkpoint: the name %r contains a NUL byte; expected one without" % (name,))
    return b


class CheckpointReader(_Uncopyable):
    """tf.train.CheckpointReader: an open checkpoint (a prefix, or a directory's latest
    checkpoint through its `checkpoint` state file). It never changes once open, so threads may
    share it."""

    _h = None

    def __init__(self, path):
        out = ctypes.c_void_p()
        check(L.kiln_checkpoint_reader_open(ctypes.byref(out), _path_bytes(path)))
        self._h = out.value

    def __del__(self):
        h = self._h
        if h:
            L.kiln_checkpoint_reader_free(h)
            self._h = None

    @property
    def prefix(self):
        """The prefix opened (for a directory, its latest checkpoint)."""
        s = ctypes.c_char_p()
        check(L.kiln_checkpoint_reader_get_prefix(ctypes.byref(s), self._h))
        return os.fsdecode(s.value)

    def _count(self):
        n = ctypes.c_size_t()
        check(L.kiln_checkpoint_reader_get_num_variables(ctypes.byref(n), self._h))
        return n.value

    def _name(self, i):
        s = ctypes.c_char_p()
        check(L.kiln_checkpoint_reader_get_name(ctypes.byref(s), self._h, i))
        return s.value.decode("utf-8", "surrogateescape")

    def _dtype_name(self, i):
        s = ctypes.c_char_p()
        check(L.kiln_checkpoint_reader_get_dtype_name(ctypes.byref(s), self._h, i))
        return s.value.decode()

    def _shape(self, i):
        rank = ctypes.c_size_t()
        check(L.kiln_checkpoint_reader_get_shape(None, 0, ctypes.byref(rank), self._h, i))
        dims = (ctypes.c_int64 * max(rank.value, 1))()
        check(L.kiln_checkpoint_reader_get_shape(dims, rank.value, ctypes.byref(rank), self._h, i))
        return [int(d) for d in dims[:rank.value]]

    def _byte_size(self, i):
        n = ctypes.c_size_t()
        check(L.kiln_checkpoint_reader_get_byte_size(ctypes.byref(n), self._h, i))
        return n.value

    def get_variable_to_shape_map(self):
        """{name: shape as a list of ints} for every variable (the object graph included)."""
        return {self._name(i): self._shape(i) for i in range(self._count())}

    def get_variable_to_dtype_map(self):
        """{name: TensorFlow's dtype name} ("float32", "int64", "string", ...) for every variable."""
        return {self._name(i): self._dtype_name(i) for i in range(self._count())}

    def variables(self):
        """[(name, dtype name, shape, bytes in the data file)] in name order."""
        return [(self._name(i), self._dtype_name(i), self._shape(i), self._byte_size(i))
                for i in range(self._count())]

    def has_tensor(self, name):
        b = ctypes.c_bool()
        check(L.kiln_checkpoint_reader_has_tensor(ctypes.byref(b), self._h, _name_bytes(name)))
        return b.value

    def get_tensor(self, name):
        """The variable's value as a NumPy array (a NumPy scalar for rank 0, as TensorFlow), or a
        kiln Tensor when NumPy is absent. UnimplementedError for a dtype kiln has none for (the
        string object graph, float16, ...)."""
        out = ctypes.c_void_p()
        check(L.kiln_checkpoint_reader_get_tensor(ctypes.byref(out), self._h, _name_bytes(name)))
        t = Tensor._adopt(out.value)
        if _np is None:  # pragma: no cover
            return t
        a = t.numpy()
        return a[()] if a.ndim == 0 else a

    def __repr__(self):
        return "<kiln.train.CheckpointReader %r>" % self.prefix


def load_checkpoint(ckpt_dir_or_file):
    """tf.train.load_checkpoint: a CheckpointReader of a prefix or of a directory's latest checkpoint."""
    return CheckpointReader(ckpt_dir_or_file)


def list_variables(ckpt_dir_or_file):
    """tf.train.list_variables: [(name, shape as a list of ints)] sorted by name."""
    reader = CheckpointReader(ckpt_dir_or_file)
    return sorted(reader.get_variable_to_shape_map().items())


# ---------------------------------------------------------------- writing and restoring

def _take_path(h):
    """A path C gave (char * to free), as str; None for NULL (TensorFlow's None)."""
    if not h:
        return None
    try:
        return os.fsdecode(ctypes.string_at(h))
    finally:
        L.kiln_string_free(h)


def _new(fn, *args):
    out = ctypes.c_void_p()
    check(fn(ctypes.byref(out), *args))
    return out.value


class CheckpointLoadStatus(_Uncopyable):
    """What a restore matched (tf.train.Checkpoint.restore's status). The asserts return the status,
    so they chain: ckpt.restore(path).expect_partial().assert_existing_objects_matched(). Values
    waiting for objects not made yet (an optimizer's slots before its first step) land later and
    then count as matched. A status dropped with values no object took warns (UserWarning) unless
    expect_partial() was called."""

    _h = None

    def __init__(self, handle):
        self._h = handle

    def __del__(self):
        h = self._h
        if h:
            self._h = None
            L.kiln_checkpoint_load_status_free(h)

    def expect_partial(self):
        """Values without objects are intended: no warning for them."""
        check(L.kiln_checkpoint_load_status_expect_partial(self._h))
        return self

    def assert_consumed(self):
        """FailedPreconditionError naming the checkpoint values no object took (or still waiting for
        their objects) and the objects that got no value."""
        check(L.kiln_checkpoint_load_status_assert_consumed(self._h))
        return self

    def assert_existing_objects_matched(self):
        """FailedPreconditionError naming the tracked objects that got no value."""
        check(L.kiln_checkpoint_load_status_assert_existing_objects_matched(self._h))
        return self

    def assert_nontrivial_match(self):
        """FailedPreconditionError when nothing below the root matched."""
        check(L.kiln_checkpoint_load_status_assert_nontrivial_match(self._h))
        return self

    def _info(self):
        h = _new(L.kiln_checkpoint_load_status_get_info, self._h)
        try:
            return _config.from_c(h)
        finally:
            L.kiln_config_free(h)

    @property
    def path(self):
        """The checkpoint prefix restored from."""
        return self._info()["path"]

    @property
    def restored_count(self):
        """Values restored so far (waiting ones count once they land)."""
        return self._info()["restored_count"]

    @property
    def unmatched_values(self):
        """Checkpoint paths no object took ("optimizer/_iterations", ...)."""
        return self._info()["unmatched_values"]

    @property
    def pending_values(self):
        """Checkpoint paths waiting for their objects (an optimizer's slots)."""
        return self._info()["pending_values"]

    @property
    def unmatched_objects(self):
        """Tracked objects that got no value."""
        return self._info()["unmatched_objects"]


class _InitializationOnlyStatus:
    """restore(None)'s status (TensorFlow's InitializationOnlyStatus): nothing was restored."""

    def expect_partial(self):
        return self

    def _nothing(self, *args):
        raise FailedPreconditionError("No checkpoint specified (save_path=None); nothing is being restored", 4)

    assert_consumed = assert_existing_objects_matched = assert_nontrivial_match = _nothing


def _track(checkpoint_h, name, obj):
    """Tracks obj under name in the C checkpoint: a layer or model, an optimizer, a variable or a
    Checkpoint."""
    from . import layers as _layers, optimizers as _optimizers  # noqa: PLC0415 - they import kiln.train
    from .autodiff import Variable  # noqa: PLC0415
    key = str(name).encode("utf-8", "surrogateescape")
    if isinstance(obj, _layers.Layer):
        check(L.kiln_checkpoint_track_layer(checkpoint_h, key, obj._handle()))
    elif isinstance(obj, _optimizers.Optimizer):
        check(L.kiln_checkpoint_track_optimizer(checkpoint_h, key, obj._h))
    elif isinstance(obj, Variable):
        check(L.kiln_checkpoint_track_variable(checkpoint_h, key, obj._h))
    elif isinstance(obj, Checkpoint):
        check(L.kiln_checkpoint_track_checkpoint(checkpoint_h, key, obj._h))
    elif isinstance(obj, GlobalGenerator):
        check(L.kiln_checkpoint_track_global_rng(checkpoint_h, key))
    else:
        raise InvalidArgumentError("Checkpoint: '%s' is %r; expected a trackable object (a kiln layer or model, "
                                   "optimizer, Variable, Checkpoint or kiln.random.get_global_generator())"
                                   % (name, obj))


def _is_trackable(obj):
    from . import layers as _layers, optimizers as _optimizers  # noqa: PLC0415
    from .autodiff import Variable  # noqa: PLC0415
    return isinstance(obj, (_layers.Layer, _optimizers.Optimizer, Variable, Checkpoint, GlobalGenerator))


class GlobalGenerator:
    """The global random state, as tf.random.get_global_generator() gives it: the global seed
    (kiln.random.set_seed), the draws made of the global op-seed sequence (random ops, Dropout and
    shuffles without a seed) and the calls made with each op seed. Tracked in a Checkpoint, it is
    saved as one int64 variable (`rng/_state-<k>/.ATTRIBUTES/VARIABLE_VALUE`), and a restore
    replaces the whole state, so what is drawn after the restore is what was drawn after the save,
    also in a fresh process; with the model and optimizer beside it, training resumes bit for bit:

        ckpt = kiln.train.Checkpoint(model=model, optimizer=model.optimizer,
                                     rng=kiln.random.get_global_generator())

    There is one state per library; every GlobalGenerator names it. Model and optimizer
    checkpoints (save_weights) leave it out, as Keras's keys do; BackupAndRestore keeps it."""

    def uniform(self, shape, minval=0, maxval=None, dtype="float32"):
        """Generator.uniform: the next uniform values of the global sequence (TF's dtypes)."""
        from .ops import random_uniform  # noqa: PLC0415
        return random_uniform(shape, minval, maxval, None, dtype)

    def normal(self, shape, mean=0.0, stddev=1.0):
        """Generator.normal: the next normal values of the global sequence."""
        from .ops import random_normal  # noqa: PLC0415
        return random_normal(shape, mean, stddev)

    def __eq__(self, other):
        return isinstance(other, GlobalGenerator)

    def __hash__(self):
        return hash(GlobalGenerator)

    def __repr__(self):
        return "<kiln.random.GlobalGenerator>"


def get_global_generator():
    """tf.random.get_global_generator(): the global random state, to track in a Checkpoint."""
    return GlobalGenerator()


class Checkpoint(_Uncopyable):
    """tf.train.Checkpoint(**kwargs): the objects given (models, optimizers, Variables, other
    Checkpoints, kiln.random.get_global_generator()) saved and restored together as TF2's object
    graph. Assigning a trackable attribute later (ckpt.step = kiln.Variable(0)) tracks it too, as
    in TensorFlow.

        ckpt = kiln.train.Checkpoint(model=model, optimizer=model.optimizer)
        path = ckpt.save("ckpt_dir/ckpt")        # "ckpt_dir/ckpt-1", recorded in ckpt_dir/checkpoint
        ckpt.restore(kiln.train.latest_checkpoint("ckpt_dir")).assert_consumed()
    """

    _h = None

    def __init__(self, root=None, **kwargs):
        if root is not None:
            raise UnimplementedError("Checkpoint: root= is not supported; pass the objects as keyword arguments "
                                     "(Checkpoint(model=...)), or use model.save_weights", 6)
        object.__setattr__(self, "_objects", {})
        object.__setattr__(self, "_h", _new(L.kiln_checkpoint_create))
        for name in sorted(kwargs):  # TensorFlow orders the keyword arguments by name
            self._add(name, kwargs[name])

    def __del__(self):
        h = self._h
        if h:
            object.__setattr__(self, "_h", None)
            L.kiln_checkpoint_free(h)

    def _add(self, name, obj):
        _track(self._h, name, obj)
        self._objects[name] = obj  # the Python objects stay alive with the checkpoint, as in TF

    def __setattr__(self, name, value):
        if not name.startswith("_") and _is_trackable(value):
            self._add(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        objects = self.__dict__.get("_objects", {})
        if name in objects:
            return objects[name]
        raise AttributeError("'Checkpoint' object has no attribute '%s'" % name)

    @property
    def save_counter(self):
        """The number of saves (restored by restore); 0 before the first save or restore. An int
        (TensorFlow gives a Variable; int(ckpt.save_counter) reads the same)."""
        n = ctypes.c_int64()
        check(L.kiln_checkpoint_get_save_counter(ctypes.byref(n), self._h))
        return n.value

    def save(self, file_prefix, options=None):
        """save_counter += 1, writes "<file_prefix>-<save_counter>", records it in the directory's
        `checkpoint` state file, and returns that path."""
        _no_options(options, "save")
        out = ctypes.c_void_p()
        call_c(L.kiln_checkpoint_save, ctypes.byref(out), self._h, _path_bytes(file_prefix))
        return _take_path(out.value)

    def write(self, file_prefix, options=None):
        """Writes exactly file_prefix (no counter, no state file); returns it."""
        _no_options(options, "write")
        out = ctypes.c_void_p()
        call_c(L.kiln_checkpoint_write, ctypes.byref(out), self._h, _path_bytes(file_prefix))
        return _take_path(out.value)

    def restore(self, save_path, options=None):
        """Restores from a prefix, or from a directory's latest checkpoint; None restores nothing
        (ckpt.restore(manager.latest_checkpoint) starts fresh the first time). Returns a
        CheckpointLoadStatus."""
        _no_options(options, "restore")
        if save_path is None:
            return _InitializationOnlyStatus()
        return CheckpointLoadStatus(_new(L.kiln_checkpoint_restore, self._h, _path_bytes(save_path)))

    def read(self, save_path, options=None):
        """Restores from exactly the prefix save_path (write's counterpart)."""
        _no_options(options, "read")
        return CheckpointLoadStatus(_new(L.kiln_checkpoint_read, self._h, _path_bytes(save_path)))

    def __repr__(self):
        return "<kiln.train.Checkpoint %s>" % sorted(self._objects)


def _no_options(options, what):
    if options is not None:
        raise UnimplementedError("Checkpoint.%s: options (tf.train.CheckpointOptions) are not supported" % what, 6)


class CheckpointManager(_Uncopyable):
    """tf.train.CheckpointManager: numbered saves of a Checkpoint into directory, the newest
    max_to_keep kept (None: all) and the rest deleted, listed in the directory's `checkpoint` state
    file, so a manager made later on the directory (or TensorFlow) carries on."""

    _h = None

    def __init__(self, checkpoint, directory, max_to_keep, keep_checkpoint_every_n_hours=None,
                 checkpoint_name="ckpt"):
        if not isinstance(checkpoint, Checkpoint):
            raise InvalidArgumentError("CheckpointManager: checkpoint must be a kiln.train.Checkpoint; got %r"
                                       % (checkpoint,))
        options = {"max_to_keep": None if max_to_keep is None else int(max_to_keep),
                   "keep_checkpoint_every_n_hours": (None if keep_checkpoint_every_n_hours is None
                                                     else float(keep_checkpoint_every_n_hours)),
                   "checkpoint_name": str(checkpoint_name)}
        with _config.to_c(options) as c:
            self._h = _new(L.kiln_checkpoint_manager_create, checkpoint._h, _path_bytes(directory), c)
        self._checkpoint = checkpoint

    def __del__(self):
        h = self._h
        if h:
            self._h = None
            L.kiln_checkpoint_manager_free(h)

    @property
    def checkpoint(self):
        return self._checkpoint

    @property
    def directory(self):
        s = ctypes.c_char_p()
        check(L.kiln_checkpoint_manager_get_directory(ctypes.byref(s), self._h))
        return os.fsdecode(s.value)

    @property
    def latest_checkpoint(self):
        """The newest checkpoint's prefix, or None before any."""
        return _take_path(_new(L.kiln_checkpoint_manager_get_latest_checkpoint, self._h))

    @property
    def checkpoints(self):
        """The checkpoints kept, oldest first."""
        h = _new(L.kiln_checkpoint_manager_get_checkpoints, self._h)
        try:
            return [os.fsdecode(p) for p in _config.from_c(h)["checkpoints"]]
        finally:
            L.kiln_config_free(h)

    def save(self, checkpoint_number=None, check_interval=True, options=None):
        """Saves "<directory>/<checkpoint_name>-<n>" (n: checkpoint_number, else the checkpoint's
        save_counter after it goes up by one), deletes those past max_to_keep, and returns the path."""
        _no_options(options, "save")
        n = -1 if checkpoint_number is None else int(checkpoint_number)
        if n < 0 and checkpoint_number is not None:
            raise InvalidArgumentError("CheckpointManager.save: checkpoint_number must be >= 0; got %d" % n)
        out = ctypes.c_void_p()
        call_c(L.kiln_checkpoint_manager_save, ctypes.byref(out), self._h, n)
        return _take_path(out.value)

    def restore_or_initialize(self):
        """Restores the latest checkpoint and returns its path, or returns None when there is none."""
        return _take_path(_new(L.kiln_checkpoint_manager_restore_or_initialize, self._h))


def latest_checkpoint(checkpoint_dir, latest_filename=None):
    """tf.train.latest_checkpoint: the prefix the directory's `checkpoint` state file names as
    newest, or None."""
    if latest_filename is not None:
        raise UnimplementedError("latest_checkpoint: latest_filename is not supported (the state file is "
                                 "`checkpoint`)", 6)
    return _take_path(_new(L.kiln_latest_checkpoint, _path_bytes(checkpoint_dir)))


# ---------------------------------------------------------------------------------------------
# tf.compat.v1.train.init_from_checkpoint (kiln/init_from_checkpoint.h): pretrained values by name.

__all__ += ["init_from_checkpoint", "InitFromCheckpointReport"]


class InitFromCheckpointReport:
    """What init_from_checkpoint did. Attributes: checkpoint (the prefix read); matched, a list of
    dicts {"checkpoint_name", "checkpoint_key", "variable", "checkpoint_shape", "reshaped"} in map
    order; unmatched_checkpoint_names (names no entry took, in key order); skipped_checkpoint_names
    (optimizer slots, counters, the object graph); unmatched_variables (the model's / variables'
    names that got no value); missing (allow_missing: [(checkpoint name, variable name)]);
    mismatched (skip_mismatched: dicts with both dtypes and shapes); summary (readable text, also
    str(report))."""

    def __init__(self, info):
        self.checkpoint = info["checkpoint"]
        self.matched = info["matched"]
        self.unmatched_checkpoint_names = info["unmatched_checkpoint_names"]
        self.skipped_checkpoint_names = info["skipped_checkpoint_names"]
        self.unmatched_variables = info["unmatched_variables"]
        self.missing = [(m["checkpoint_name"], m["variable"]) for m in info["missing"]]
        self.mismatched = info["mismatched"]
        self.summary = info["summary"]

    def matched_pairs(self):
        """[(checkpoint name, variable name)] in map order."""
        return [(m["checkpoint_name"], m["variable"]) for m in self.matched]

    def __str__(self):
        return self.summary

    def __repr__(self):
        return "<kiln.train.InitFromCheckpointReport %r: %d matched, %d unmatched names, %d unmatched variables>" % (
            self.checkpoint, len(self.matched), len(self.unmatched_checkpoint_names), len(self.unmatched_variables))


def _assignment_pairs(assignment_map):
    """(checkpoint name, target) pairs from a dict or an iterable of pairs; a target that is a list
    or tuple stands for each of its items (one checkpoint value into several variables)."""
    items = assignment_map.items() if isinstance(assignment_map, dict) else assignment_map
    pairs = []
    for item in items:
        try:
            name, target = item
        except (TypeError, ValueError):
            raise InvalidArgumentError("init_from_checkpoint: assignment_map entry %r is not a (checkpoint name, "
                                       "variable) pair" % (item,))
        for t in (target if isinstance(target, (list, tuple)) else [target]):
            pairs.append((name, t))
    return pairs


def init_from_checkpoint(ckpt_dir_or_file, assignment_map, model=None, variables=None, *,
                         skip_optimizer_state=True, allow_missing=False, skip_mismatched=False,
                         allow_reshape=False):
    """tf.compat.v1.train.init_from_checkpoint(ckpt_dir_or_file, assignment_map): copies checkpoint
    values into variables and returns an InitFromCheckpointReport.

    assignment_map: a dict (or a list of pairs) from checkpoint names to variable names, Variables,
    or lists of them, with TF's scope forms: {"bert/pooler/dense/kernel": "m/pooler/kernel"},
    {"bert/": "m/"} (every variable under m/ from the checkpoint name with the same rest),
    {"/": "m/"}. Names are looked up among model.variables and variables. Checkpoints may be TF1
    name-based (google-research/bert), TF2 object-based (named by their path,
    "model/layer_with_weights-0/kernel") or kiln's; optimizer slots and counters (adam_m, adam_v,
    global_step, ...) are left out unless named (skip_optimizer_state). allow_missing: a name the
    checkpoint lacks is reported instead of raising NotFoundError; skip_mismatched: a dtype or shape
    that does not fit is reported instead of raising InvalidArgumentError; allow_reshape: accept
    [H, H] into [H, heads, H / heads] and other splits or merges of dims. Nothing changes when it
    raises."""
    from .autodiff import Variable  # noqa: PLC0415 - kiln.autodiff imports the package
    from . import layers as _layers  # noqa: PLC0415
    pairs = _assignment_pairs(assignment_map)
    ckpt_names = (ctypes.c_char_p * max(len(pairs), 1))()
    var_names = (ctypes.c_char_p * max(len(pairs), 1))()
    targets = (ctypes.c_void_p * max(len(pairs), 1))()
    for i, (name, target) in enumerate(pairs):
        ckpt_names[i] = _name_bytes(name)
        if isinstance(target, Variable):
            targets[i] = target._h
        elif isinstance(target, str):
            var_names[i] = _name_bytes(target)
        else:
            raise InvalidArgumentError("init_from_checkpoint: the target of '%s' is %r; expected a variable name, "
                                       "a scope ending in '/', or a kiln Variable" % (name, target))
    model_h = None
    if model is not None:
        if not isinstance(model, _layers.Layer):
            raise InvalidArgumentError("init_from_checkpoint: model is %r; expected a kiln layer or model" % (model,))
        model_h = model._handle()
    variables = list(variables or [])
    for v in variables:
        if not isinstance(v, Variable):
            raise InvalidArgumentError("init_from_checkpoint: variables holds %r; expected kiln Variables" % (v,))
    var_handles = (ctypes.c_void_p * max(len(variables), 1))(*[v._h for v in variables])
    o = _lib.InitFromCheckpointOptions()
    check(L.kiln_init_from_checkpoint_options_init(ctypes.byref(o), ctypes.sizeof(o)))
    o.skip_optimizer_state = bool(skip_optimizer_state)
    o.allow_missing = bool(allow_missing)
    o.skip_mismatched = bool(skip_mismatched)
    o.allow_reshape = bool(allow_reshape)
    out = ctypes.c_void_p()
    check(L.kiln_init_from_checkpoint(ctypes.byref(out), model_h, var_handles, len(variables),
                                      _path_bytes(ckpt_dir_or_file), ckpt_names, var_names, targets, len(pairs),
                                      ctypes.byref(o)))
    try:
        return InitFromCheckpointReport(_config.from_c(out.value))
    finally:
        L.kiln_config_free(out.value)
