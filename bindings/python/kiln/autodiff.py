"""Variable and GradientTape."""
import contextlib
import ctypes
import functools
import threading
import weakref

from . import _lib
from ._copy import Uncopyable as _Uncopyable
from .errors import InvalidArgumentError, callback_status, check, deferred_call, guard_callback
from .tensor import Tensor, _as_tensor, _new, constant

L = _lib.lib
# kiln_status *(*)(void *dst, const void *src, size_t num_bytes, kiln_dtype dtype, void *user_data)
_UPDATE_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                              ctypes.c_void_p)
_UNCONNECTED = {"none": 0, "zero": 1}


# One Python object per C variable while any is alive, as TF's (layer.weights[0] is layer.w): every
# handle C gives for a variable goes through Variable._adopt. A wrapper's handle is freed by its
# weak reference's callback, which runs once nothing can reach the wrapper any more (a __del__
# runs before the weak references die, so another thread could still take the dying object).
_WRAPPERS = {}  # the variable's _unique_id -> weakref.ref to its Python Variable
_WRAPPERS_LOCK = threading.RLock()  # reentrant: a collection inside the lock runs _release on this thread


def _release(uid, handle, ref, _free=L.kiln_variable_free, _lock=_WRAPPERS_LOCK, _wrappers=_WRAPPERS):
    """A wrapper died: forget it (unless a new wrapper took its place) and free its handle. The
    module's names are bound as defaults, so it also runs while the interpreter shuts down."""
    with _lock:
        if _wrappers.get(uid) is ref:
            del _wrappers[uid]
    _free(handle)


def _own(obj, handle, uid):
    """obj becomes the wrapper of variable uid and owns handle (call with _WRAPPERS_LOCK held)."""
    obj._h = handle
    _WRAPPERS[uid] = weakref.ref(obj, functools.partial(_release, uid, handle))


class Variable(_Uncopyable):
    """tf.Variable: a named, mutable holder of a tensor value."""

    _COPY_INSTEAD = " (kiln.Variable(v.value()) makes another variable with its value)"

    # NumPy defers to the variable's operators (np.ones(2) + v is a kiln Tensor), as for Tensor.
    __array_priority__ = 100

    def __init__(self, initial_value, trainable=True, name=None, dtype=None):
        init = constant(initial_value, dtype)
        if name is None:
            name = "Variable"  # TF's default name (kiln names carry no ":0" suffix, see Layer weights)
        elif isinstance(name, (bytes, bytearray)):
            name = bytes(name).decode("utf-8")
        h = ctypes.c_void_p()
        check(L.kiln_variable_create(ctypes.byref(h), str(name).encode("utf-8"), init, bool(trainable)))
        with _WRAPPERS_LOCK:
            _own(self, h.value, int(L.kiln_variable_get_id(h.value)))

    @classmethod
    def _adopt(cls, handle):
        """The Python object of the variable of a new handle C gave: the wrapper alive for that
        variable (then the handle is freed), else a new one owning the handle."""
        uid = int(L.kiln_variable_get_id(handle))
        with _WRAPPERS_LOCK:
            ref = _WRAPPERS.get(uid)
            obj = ref() if ref is not None else None
            if obj is None:
                obj = cls.__new__(cls)
                _own(obj, handle, uid)
                return obj
        L.kiln_variable_free(handle)
        return obj

    @property
    def name(self):
        return L.kiln_variable_get_name(self._h).decode("utf-8")

    @property
    def path(self):
        """Keras 3's variable path ("dense/kernel"): the layers' names, then the weight's. kiln's name is
        the same full path, as tf.keras names variables."""
        return self.name

    @property
    def trainable(self):
        return bool(L.kiln_variable_get_trainable(self._h))

    @property
    def _unique_id(self):
        """The variable's identity, as TF's ResourceVariable._unique_id (the key TF's optimizers use for
        slots): fixed for the variable's life, shared with no other variable or tensor."""
        return int(L.kiln_variable_get_id(self._h))

    def value(self):
        return _new(L.kiln_variable_read, self._h)

    read_value = value
    _kiln_value = value

    @property
    def shape(self):
        return self.value().shape

    @property
    def dtype(self):
        return self.value().dtype

    def numpy(self):
        return self.value().numpy()

    def __array__(self, dtype=None, copy=None):
        return self.value().__array__(dtype)

    def assign(self, value):
        check(L.kiln_variable_assign(self._h, _as_tensor(value, self.value())))
        return self

    def assign_add(self, delta):
        check(L.kiln_variable_assign_add(self._h, _as_tensor(delta, self.value())))
        return self

    def assign_sub(self, delta):
        check(L.kiln_variable_assign_sub(self._h, _as_tensor(delta, self.value())))
        return self

    def update_in_place(self, fn):
        """Updates the value with fn(dst, src): two writable / read-only memoryviews of the raw
        bytes (kiln_variable_update_in_place; in place when no earlier read is alive). fn must
        write every byte of dst."""
        errors = []

        def call(dst, src, n, _dtype, _user):
            try:
                fn(memoryview((ctypes.c_char * n).from_address(dst)).cast("B"),
                   memoryview((ctypes.c_char * n).from_address(src)).cast("B").toreadonly())
                return None
            except BaseException as e:  # noqa: BLE001 - reported after the C call
                errors.append(e)
                return callback_status(e, "update_in_place's function")

        cb = _UPDATE_FN(guard_callback("update_in_place's function")(call))
        status = deferred_call(L.kiln_variable_update_in_place, self._h, ctypes.cast(cb, ctypes.c_void_p), None)
        if errors:
            L.kiln_status_free(status)
            raise errors[0]
        check(status)
        return self

    def __repr__(self):
        return "<kiln.Variable '%s' shape=%s dtype=%s>" % (self.name, self.shape, self.dtype)

    def __eq__(self, other):
        """Elementwise, as TF2's Variable == (and Tensor ==)."""
        return self.value() == other

    def __ne__(self, other):
        return self.value() != other

    def ref(self):
        """tf.Variable.ref(): a hashable reference, equal to every reference to the same variable;
        deref() gives the variable."""
        from .ops_math import _Reference  # noqa: PLC0415 - ops_math imports this module
        return _Reference(self, self._unique_id)

    experimental_ref = ref

    # Unlike TF2's, kiln variables stay hashable (by identity, one object per variable): the
    # binding keys dicts by them.
    __hash__ = object.__hash__


def _as_value(name):
    def op(self, *other):
        return getattr(self.value(), name)(*other)
    op.__name__ = name
    return op


# Variables behave as their value in expressions, with every operator a Tensor has.
for _name in ("add", "sub", "mul", "truediv", "pow", "matmul", "and", "or", "xor"):
    for _form in ("__%s__", "__r%s__"):
        setattr(Variable, _form % _name, _as_value(_form % _name))
for _name in ("__neg__", "__abs__", "__invert__", "__lt__", "__le__", "__gt__", "__ge__", "__float__", "__int__"):
    setattr(Variable, _name, _as_value(_name))


class GradientTape(_Uncopyable):
    """tf.GradientTape: `with kiln.GradientTape() as tape:` records, then tape.gradient(...)."""

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self._persistent = bool(persistent)
        self._watch_vars = bool(watch_accessed_variables)
        self._h = None
        self._recording = False

    def __enter__(self):
        if self._h is None:
            h = ctypes.c_void_p()
            check(L.kiln_tape_create(ctypes.byref(h), self._persistent, self._watch_vars))
            self._h = h.value
            setup = getattr(self, "_kiln_on_create", None)  # given before the tape existed (DistributedGradientTape)
            if setup is not None:
                try:
                    setup(self._h)
                except BaseException:
                    L.kiln_tape_free(self._h)
                    self._h = None
                    raise
        else:
            check(L.kiln_tape_start(self._h))
        self._recording = True
        return self

    def __exit__(self, *exc):
        self._recording = False
        if self._h is not None:
            check(L.kiln_tape_stop(self._h))
        return False

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            L.kiln_tape_free(h)
            self._h = None

    def _require(self):
        if self._h is None:
            raise InvalidArgumentError("GradientTape: use it in a `with` block before watch() or gradient()")

    def watch(self, tensor):
        """Records operations on tensor (a Tensor, a Variable, or a list / tuple / dict of them)."""
        self._require()
        for t in _nest_leaves(tensor):
            if isinstance(t, Variable):
                check(L.kiln_tape_watch_variable(self._h, t._h))
            elif isinstance(t, Tensor):
                check(L.kiln_tape_watch(self._h, t))
            elif hasattr(t, "_kiln_value"):  # a variable-like object (a mixed-precision AutoCastVariable)
                check(L.kiln_tape_watch(self._h, _as_tensor(t)))
            else:
                raise ValueError("GradientTape.watch: passed an object of type %s, not a kiln Tensor or Variable "
                                 "(as TF: convert it with kiln.constant first)" % type(t).__name__)

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """Gradients of sum(target) for each source (a Tensor, a Variable, or a list/tuple of them).

        target may be a list/tuple of tensors: their gradients are summed, as in TF; output_gradients
        is then a list with one entry (or None) per target. A Variable's gradient flows through the
        values read from it while the tape recorded, as TF's."""
        self._require()
        many = isinstance(target, (list, tuple))
        targets = [_as_tensor(t) for t in (target if many else [target])]
        if output_gradients is None:
            ogs = None
        elif many:
            if not isinstance(output_gradients, (list, tuple)) or len(output_gradients) != len(targets):
                raise InvalidArgumentError("output_gradients needs one entry per target (%d); got %r"
                                           % (len(targets), output_gradients))
            ogs = [None if g is None else _as_tensor(g, t) for g, t in zip(output_gradients, targets)]
        else:
            ogs = [_as_tensor(output_gradients, targets[0])]  # NumPy floats and Python numbers take the target's dtype
        return self._run(L.kiln_tape_gradient_multi, targets, ogs, sources, unconnected_gradients)

    def jacobian(self, target, sources, unconnected_gradients="none", parallel_iterations=None,
                 experimental_use_pfor=True):
        """tf.GradientTape.jacobian: for each source, J[t..., s...] = d target[t...] / d source[s...], of
        shape target.shape + source.shape, in the sources' structure (None where unconnected, with
        "none"). One backward walk per element of target; a non-persistent tape allows it once.
        parallel_iterations and experimental_use_pfor are TF's tuning knobs and change nothing here."""
        self._require()
        return self._run(L.kiln_tape_jacobian, [_as_tensor(target)], None, sources, unconnected_gradients)

    def batch_jacobian(self, target, source, unconnected_gradients="none", parallel_iterations=None,
                       experimental_use_pfor=True):
        """tf.GradientTape.batch_jacobian: target [b, y...] and source [b, x...], where target[i]
        depends on source[i] only; J[i, y..., x...] of shape target.shape + source.shape[1:]."""
        self._require()
        out = ctypes.c_void_p()
        check(L.kiln_tape_batch_jacobian(ctypes.byref(out), self._h, _as_tensor(target), _as_tensor(source),
                                         _unconnected_mode(unconnected_gradients)))
        return Tensor._adopt(out.value) if out.value else None

    def watched_variables(self):
        """tf.GradientTape.watched_variables(): the variables the tape watches (tape.watch, or trainable
        variables read while it recorded), in the order it started watching them; those no longer
        alive anywhere else are left out (the tape does not keep them alive)."""
        if self._h is None:
            return []
        from .layers import _variables_from
        return _variables_from(L.kiln_tape_get_watched_variables, self._h)

    def reset(self):
        """tf.GradientTape.reset: forgets what the tape recorded and watched; it goes on recording
        if it was (inside the `with` block)."""
        self._require()
        check(L.kiln_tape_reset(self._h))

    @contextlib.contextmanager
    def stop_recording(self):
        """tf.GradientTape.stop_recording: `with tape.stop_recording():` runs ops unrecorded."""
        self._require()
        if not self._recording:
            raise RuntimeError("GradientTape.stop_recording: the tape is not recording (use it inside the "
                               "tape's `with` block)")
        check(L.kiln_tape_stop(self._h))
        self._recording = False
        try:
            yield
        finally:
            check(L.kiln_tape_start(self._h))
            self._recording = True

    def _run(self, fn, targets, ogs, sources, unconnected_gradients):
        """fn (kiln_tape_gradient_multi or kiln_tape_jacobian) on targets, output gradients (None or
        one per target) and sources; its results in the sources' structure."""
        srcs = _nest_leaves(sources)  # TF: the gradients come back in the sources' structure
        mode = _unconnected_mode(unconnected_gradients)
        tensors = [None if isinstance(s, Variable) else _as_tensor(s) for s in srcs]
        n = len(srcs)
        arr = ctypes.c_void_p * max(n, 1)
        opts = _lib.TapeGradientOptions()
        L.kiln_tape_gradient_options_init(ctypes.byref(opts))
        t_arr = (ctypes.c_void_p * max(len(targets), 1))(*[t._h for t in targets])
        opts.targets, opts.num_targets = ctypes.cast(t_arr, _lib._HP), len(targets)
        if ogs is not None:
            og_arr = (ctypes.c_void_p * len(ogs))(*[None if g is None else g._h for g in ogs])
            opts.output_gradients = ctypes.cast(og_arr, _lib._HP)
        s_arr = arr(*[None if t is None else t._h for t in tensors])
        v_arr = arr(*[s._h if isinstance(s, Variable) else None for s in srcs])
        opts.sources, opts.variables, opts.num_sources = ctypes.cast(s_arr, _lib._HP), ctypes.cast(v_arr, _lib._HP), n
        opts.unconnected = mode
        outs = arr()
        check(fn(outs, self._h, ctypes.byref(opts)))
        result = [Tensor._adopt(outs[i]) if outs[i] else None for i in range(n)]
        return _nest_pack(sources, iter(result))


def _unconnected_mode(unconnected_gradients):
    mode = _UNCONNECTED.get(str(getattr(unconnected_gradients, "value", unconnected_gradients)).lower())
    if mode is None:
        raise InvalidArgumentError("unconnected_gradients must be 'none' or 'zero'; got %r" % unconnected_gradients)
    return mode


def _nest_leaves(value):
    """The leaves of a nest of lists, tuples and dicts (dicts in sorted key order, as tf.nest)."""
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _nest_leaves(v)]
    if isinstance(value, dict):
        return [x for k in _sorted_keys(value) for x in _nest_leaves(value[k])]
    return [value]


def _nest_pack(structure, leaves):
    """structure with its leaves replaced, in order, from the iterator leaves."""
    if isinstance(structure, list):
        return [_nest_pack(v, leaves) for v in structure]
    if isinstance(structure, tuple):
        items = [_nest_pack(v, leaves) for v in structure]
        return type(structure)(*items) if hasattr(structure, "_fields") else tuple(items)  # namedtuples too
    if isinstance(structure, dict):
        packed = {k: _nest_pack(structure[k], leaves) for k in _sorted_keys(structure)}
        return type(structure)((k, packed[k]) for k in structure) if type(structure) is not dict else \
            {k: packed[k] for k in structure}
    return next(leaves)


def _sorted_keys(d):
    try:
        return sorted(d)
    except TypeError:  # keys of mixed types: their insertion order
        return list(d)
