"""kiln.data: tf.data's Dataset over the C ABI (kiln/data.h).

    ds = kiln.data.Dataset.from_tensor_slices((x, y)).shuffle(1024, seed=7).batch(64)
    for xb, yb in ds:
        ...

An element is a kiln Tensor, a tuple or a dict of them (nested as you like); C sees the flat list
of its tensors, and this module keeps the structure. Python functions given to map, filter and
from_generator run where kiln says (a parallel map on worker threads, under the GIL); an
exception raised in one is re-raised, unchanged, by the iteration that ran it.
"""
import ctypes
import atexit
import itertools
import numbers
import threading
import weakref

from . import _lib
from ._copy import Immutable as _Immutable, Uncopyable as _Uncopyable
from . import errors as _errors
from ._handles import new_handle
from .errors import FailedPreconditionError, InvalidArgumentError, OutOfRangeError, check
from .ops import _int as _ops_int
from .tensor import Tensor, _CODE_DTYPE, _DTYPE_CODE, constant, dims_array, dtype_code, int64_array

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

L = _lib.lib

AUTOTUNE = -1
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2

# ---------------------------------------------------------------- structures

_LEAF = "leaf"  # the structure of a single tensor
_NONE = "none"  # a part of a structure that holds no tensor (fit(x, sample_weight=w)'s missing y)


class _Deferred:
    """The structure of a Python function's results, known once it has run (map, generators)."""

    __slots__ = ("spec",)

    def __init__(self, spec=None):
        self.spec = spec


def _resolve(spec):
    while isinstance(spec, _Deferred):
        if spec.spec is None:
            return None
        spec = spec.spec
    return spec


def _dict_keys(d):
    """A dict's keys in tf.nest's order: sorted (insertion order when they do not sort)."""
    try:
        return sorted(d)
    except TypeError:
        return list(d)


def _flatten(value):
    """(structure, flat list of leaves) of a tensor / tuple / list / dict nest; lists and NumPy
    arrays are leaves (tf treats a list as one tensor). Dicts flatten in sorted key order, as
    tf.nest, so two dicts with the same keys match whatever order they were written in."""
    if isinstance(value, tuple):
        specs, leaves = [], []
        for v in value:
            s, l = _flatten(v)
            specs.append(s)
            leaves.extend(l)
        return tuple(specs), leaves
    if isinstance(value, dict):
        specs, leaves = {}, []
        for k in _dict_keys(value):
            s, l = _flatten(value[k])
            specs[k] = s
            leaves.extend(l)
        return specs, leaves
    return _LEAF, [value]


def _same_structure(a, b):
    """Whether two structures of _flatten are the same nest, dict keys in the same order (the
    order their leaves come in)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_structure(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_structure(a[k], b[k]) for k in a)
    return a is _LEAF and b is _LEAF


def _sorted_spec(spec):
    """A structure with its dicts' keys in sorted order (tf.nest's), for comparing."""
    if isinstance(spec, tuple):
        return tuple(_sorted_spec(s) for s in spec)
    if isinstance(spec, dict):
        return {k: _sorted_spec(spec[k]) for k in _dict_keys(spec)}
    return spec


def _describe(spec):
    """A structure of _flatten in words: "a tensor", "a tuple of 2 (a tensor, a tensor)", "a dict {'x': ...}"."""
    if isinstance(spec, tuple):
        return "a tuple of %d (%s)" % (len(spec), ", ".join(_describe(s) for s in spec))
    if isinstance(spec, dict):
        return "a dict {%s}" % ", ".join("%r: %s" % (k, _describe(s)) for k, s in spec.items())
    return "a tensor"


def _unflatten(spec, leaves):
    """The nest of structure spec filled from the iterator leaves."""
    spec = _resolve(spec)
    if spec is None or spec == _LEAF:
        return next(leaves)
    if spec == _NONE:
        return None
    if isinstance(spec, tuple):
        return tuple(_unflatten(s, leaves) for s in spec)
    return {k: _unflatten(s, leaves) for k, s in spec.items()}


def _unflatten_all(spec, tensors):
    """A flat list as the structure; a structure not yet known gives a tuple (or the tensor)."""
    if _resolve(spec) is None:
        return tensors[0] if len(tensors) == 1 else tuple(tensors)
    return _unflatten(spec, iter(tensors))


def _names(spec):
    """The C component names of a flat dict of tensors (nested dicts stay unnamed)."""
    spec = _resolve(spec)
    if isinstance(spec, dict) and all(s == _LEAF for s in spec.values()):
        return [str(k) for k in spec]
    return None


# ---------------------------------------------------------------- tensors in and out

_ADOPTED = {}  # key -> NumPy array a tensor is built over (released by the deleter)
_adopt_keys = itertools.count(1)
_adopt_lock = threading.Lock()


@_lib.DELETER
def _release_array(data, user_data):
    with _adopt_lock:
        _ADOPTED.pop(user_data or 0, None)


def _adopt_numpy(arr):
    """A Tensor over a NumPy array's own buffer (no copy) when its layout allows, else a copy.
    Like tf.data, the dataset then reads the array's values: do not change it while in use."""
    name = {"bool": "bool"}.get(arr.dtype.name, arr.dtype.name)
    if (name not in _DTYPE_CODE or name == "bfloat16" or not arr.flags.c_contiguous or not arr.flags.aligned
            or arr.dtype.byteorder == ">"):
        return constant(arr)
    with _adopt_lock:
        key = next(_adopt_keys)
        _ADOPTED[key] = arr
    dims, rank = dims_array(arr.shape)
    out = ctypes.c_void_p()
    status = L.kiln_tensor_create_from_buffer(ctypes.byref(out), _DTYPE_CODE[name], dims, rank,
                                              ctypes.c_void_p(arr.ctypes.data if arr.nbytes else 0), arr.nbytes,
                                              _release_array, ctypes.c_void_p(key))
    if status:
        with _adopt_lock:
            _ADOPTED.pop(key, None)
        check(status)
    return Tensor._adopt(out.value)


def _to_tensor(value, dtype=None):
    if _np is not None and dtype is None and isinstance(value, _np.ndarray):
        return _adopt_numpy(value)
    if isinstance(value, Tensor) and dtype is None:
        return value
    return constant(value, dtype)


def _to_list(tensors):
    lst = ctypes.c_void_p()
    check(L.kiln_tensor_list_create(ctypes.byref(lst)))
    try:
        for t in tensors:
            check(L.kiln_tensor_list_append(lst.value, t))
    except BaseException:
        L.kiln_tensor_list_free(lst.value)
        raise
    return lst.value


def _from_list(lst):
    out = []
    for i in range(L.kiln_tensor_list_get_size(lst)):
        h = ctypes.c_void_p()
        check(L.kiln_tensor_list_get(ctypes.byref(h), lst, i))
        out.append(Tensor._adopt(h.value))
    return out


def _append(lst, tensors):
    for t in tensors:
        check(L.kiln_tensor_list_append(lst, t))


# ---------------------------------------------------------------- Python callbacks

_FUNCS = {}            # user_data key -> the Python side of a callback table
_PASSES = {}           # generator pass key -> its Python iterator
# An exception raised in a callback (possibly on a pipeline thread) waits under the token its
# status message carries for the iteration to re-raise it (errors.callback_status).
_PENDING = _errors.PENDING
_keys = _errors.KEYS
_lock = _errors.PENDING_LOCK


def _guarded(where):
    return _errors.guard_callback("a dataset " + where, token=True)


def _raise(status):
    """Raises the Python exception behind a status when there is one, else the KilnError."""
    exc = _errors.take_pending(status)
    if exc is not None:
        L.kiln_status_free(status)
        try:
            raise exc
        finally:
            # This frame is in exc's traceback: holding exc here would make a cycle that keeps
            # the iterator (a frame further up) and its pipeline threads alive until a GC.
            exc = None
    check(status)


def _register(entry):
    key = next(_keys)
    with _lock:
        _FUNCS[key] = entry
    return key


@_lib.DATA_DESTROY
def _on_destroy(user_data):
    with _lock:
        _FUNCS.pop(user_data or 0, None)


class _FnEntry:
    __slots__ = ("fn", "in_spec", "out_spec", "out_dtypes")

    def __init__(self, fn, in_spec, out_spec):
        self.fn, self.in_spec, self.out_spec = fn, in_spec, out_spec
        self.out_dtypes = None  # a map function's first results' dtypes, which every call keeps

    def call(self, element):
        value = _unflatten_all(self.in_spec, _from_list(element))
        # As tf.data: a tuple element is passed as separate arguments.
        return self.fn(*value) if isinstance(value, tuple) else self.fn(value)


@_lib.MAP_FN
@_guarded("map function")
def _on_map(out, element, user_data):
    try:
        entry = _FUNCS[user_data]
        result = entry.call(element)
        if isinstance(result, list):  # as tf.data's map: a list the function returns is a tuple
            result = tuple(result)
        spec, leaves = _flatten(result)
        if entry.out_spec.spec is None:
            entry.out_spec.spec = spec
        elif not _same_structure(spec, entry.out_spec.spec):  # tf traces map_func once: one structure
            raise InvalidArgumentError("Dataset.map: the map function returned %s; its first call returned %s, "
                                       "and every call must return that structure"
                                       % (_describe(spec), _describe(entry.out_spec.spec)))
        tensors = [_to_tensor(v) for v in leaves]
        dtypes = [t.dtype for t in tensors]
        if entry.out_dtypes is None:
            entry.out_dtypes = dtypes
        elif dtypes != entry.out_dtypes:  # as the structure: tf's one trace fixes the dtypes
            raise InvalidArgumentError("Dataset.map: the map function returned dtypes %s; its first call returned %s, "
                                       "and every call must return those" % (dtypes, entry.out_dtypes))
        _append(out, tensors)
        return None
    except BaseException as e:  # noqa: B902 - every exception crosses back as a status
        return _errors.callback_status(e, "a dataset map function", token=True)


@_lib.PREDICATE_FN
@_guarded("filter predicate")
def _on_predicate(keep, element, user_data):
    try:
        result = _FUNCS[user_data].call(element)
        if isinstance(result, Tensor):
            if result.dtype != "bool" or result.shape != ():
                raise InvalidArgumentError("Dataset.filter: the predicate returned a %s%s; expected a bool scalar"
                                           % (result.dtype, list(result.shape)))
            result = result.item()
        elif not (isinstance(result, bool) or (_np is not None and isinstance(result, (_np.bool_, _np.ndarray))
                                               and result.shape == () and result.dtype == _np.bool_)):
            raise InvalidArgumentError("Dataset.filter: the predicate returned %r (%s); expected a bool scalar"
                                       % (result, type(result).__name__))
        keep[0] = bool(result)
        return None
    except BaseException as e:  # noqa: B902
        return _errors.callback_status(e, "a dataset filter predicate", token=True)


@_lib.GEN_START
@_guarded("generator")
def _on_gen_start(state, user_data):
    try:
        entry = _FUNCS[user_data]
        key = next(_keys)
        with _lock:
            _PASSES[key] = iter(entry.fn())
        state[0] = key
        return None
    except BaseException as e:  # noqa: B902
        return _errors.callback_status(e, "a dataset generator", token=True)


@_lib.GEN_NEXT
@_guarded("generator")
def _on_gen_next(out, end, state, user_data):
    try:
        entry = _FUNCS[user_data]
        try:
            value = next(_PASSES[state])
        except StopIteration:
            end[0] = True
            return None
        _append(out, entry.out_spec.convert(value))
        return None
    except BaseException as e:  # noqa: B902
        return _errors.callback_status(e, "a dataset generator", token=True)


@_lib.GEN_FINISH
def _on_gen_finish(state, user_data):
    with _lock:
        it = _PASSES.pop(state or 0, None)
    close = getattr(it, "close", None)
    if close is not None:
        try:
            close()
        except BaseException:  # noqa: B902 - nothing can report it from here
            pass


# ---------------------------------------------------------------- signatures

class TensorSpec:
    """tf.TensorSpec: the shape (None for unknown dims) and dtype of a generator's tensor."""

    def __init__(self, shape=None, dtype="float32", name=None):
        self.shape = None if shape is None else tuple(shape)
        self.dtype = _CODE_DTYPE[dtype_code(dtype, "TensorSpec")]
        self.name = name

    def __repr__(self):
        return "TensorSpec(shape=%s, dtype=%s, name=%r)" % (self.shape, self.dtype, self.name)


class _Signature:
    """A generator's output structure and per-leaf specs; converts what it yields."""

    def __init__(self, signature):
        self.spec, self.leaves = _flatten_specs(signature)

    def convert(self, value):
        if self.spec == _LEAF:
            values = [value]
        else:
            spec, values = _flatten(value)
            if _shape_of(spec) != _shape_of(self.spec):
                raise InvalidArgumentError("from_generator: the generator yielded %r; its output_signature says "
                                           "the structure is %r" % (_shape_of(spec), _shape_of(self.spec)))
        out = []
        for v, s in zip(values, self.leaves):
            t = _to_tensor(v, s.dtype)
            if s.shape is not None and (len(t.shape) != len(s.shape) or
                                        any(w is not None and w != d for w, d in zip(s.shape, t.shape))):
                raise InvalidArgumentError("from_generator: the generator yielded a %s%s; expected shape %s"
                                           % (t.dtype, list(t.shape), list(s.shape)))
            out.append(t)
        return out


def _flatten_specs(signature):
    if isinstance(signature, TensorSpec):
        return _LEAF, [signature]
    if isinstance(signature, tuple):
        parts = [_flatten_specs(s) for s in signature]
        return tuple(p[0] for p in parts), [x for p in parts for x in p[1]]
    if isinstance(signature, dict):
        parts = {k: _flatten_specs(signature[k]) for k in _dict_keys(signature)}
        return {k: p[0] for k, p in parts.items()}, [x for p in parts.values() for x in p[1]]
    raise InvalidArgumentError("from_generator: output_signature must be TensorSpecs in tuples or dicts; got %r"
                               % (signature,))


def _shape_of(spec):
    """The structure without leaf details, for comparing."""
    if isinstance(spec, tuple):
        return tuple(_shape_of(s) for s in spec)
    if isinstance(spec, dict):
        return {k: _shape_of(s) for k, s in spec.items()}
    return _LEAF


def _signature_from_types(output_types, output_shapes):
    """TF's older output_types/output_shapes as an output_signature."""
    def build(t, s):
        if isinstance(t, tuple):
            return tuple(build(ti, None if s is None else si) for ti, si in zip(t, s or [None] * len(t)))
        if isinstance(t, dict):
            return {k: build(t[k], None if s is None else s[k]) for k in t}
        return TensorSpec(s, t)
    return build(output_types, output_shapes)


# ---------------------------------------------------------------- Dataset

def _new_dataset(fn, *args, spec):
    return Dataset._wrap(new_handle(fn, *args), spec)



def _int(v, what, op):
    """tf.data's int64 scalar argument: a Python or NumPy int, a 0-d integer array or tensor; a float,
    a string, a bool or a non-scalar is a TypeError naming the argument."""
    shape = getattr(v, "shape", None)
    if shape is not None and not isinstance(v, numbers.Integral):
        if tuple(shape) != ():
            raise TypeError("%s: %s must be a scalar integer; got shape %s" % (op, what, tuple(shape)))
        if not isinstance(v, Tensor) and hasattr(v, "item"):
            v = v.item()  # a 0-d NumPy array
    return _ops_int(v, what, op)

class Dataset(_Immutable):
    """tf.data.Dataset: an immutable description of a sequence of elements; iterate with for."""

    __slots__ = ("_h", "_spec", "__weakref__")

    def __init__(self, *_):
        raise TypeError("make datasets with Dataset.from_tensor_slices(...), Dataset.range(...) and the like")

    @classmethod
    def _wrap(cls, handle, spec):
        d = object.__new__(cls)
        d._h = handle
        d._spec = spec
        _LIVE_DATASETS.add(d)
        return d

    @property
    def _as_parameter_(self):
        return ctypes.c_void_p(self._h)

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            L.kiln_dataset_free(h)
            self._h = None

    def _derive(self, fn, *args, spec=None):
        return _new_dataset(fn, self, *args, spec=self._spec if spec is None else spec)

    # ---- sources ----
    @staticmethod
    def _components(op, value):
        spec, leaves = _flatten(value)
        tensors = [_to_tensor(v) for v in leaves]
        names = _names(spec)
        lst = _to_list(tensors)
        try:
            arr = _lib.c_strings(names, "Dataset component names") if names else None
            return _new_dataset(op, lst, arr, spec=spec)
        finally:
            L.kiln_tensor_list_free(lst)

    @staticmethod
    def from_tensor_slices(tensors):
        """One element per row of dim 0 of a tensor, NumPy array (its buffer is used without a copy
        where its layout allows), nested list, or a tuple / dict of them."""
        return Dataset._components(L.kiln_dataset_from_tensor_slices, tensors)

    @staticmethod
    def from_tensors(tensors):
        return Dataset._components(L.kiln_dataset_from_tensors, tensors)

    @staticmethod
    def range(*args):
        """range(stop), range(start, stop[, step]): int64 scalars."""
        if not 1 <= len(args) <= 3:
            raise TypeError("range() takes 1 to 3 arguments")
        start, stop, step = (0, args[0], 1) if len(args) == 1 else (args + (1,))[:3]
        return _new_dataset(L.kiln_dataset_range, _int(start, "start", "range"), _int(stop, "stop", "range"),
                            _int(step, "step", "range"), spec=_LEAF)

    @staticmethod
    def from_generator(generator, output_types=None, output_shapes=None, args=None, output_signature=None):
        """Elements from a Python generator: generator (called with args, anew for every pass)
        returns an iterator. output_signature: TensorSpecs in the structure it yields (or
        output_types and output_shapes). It runs on the thread pulling from the dataset."""
        if output_signature is None:
            if output_types is None:
                raise InvalidArgumentError("from_generator: give output_signature (or output_types)")
            output_signature = _signature_from_types(output_types, output_shapes)
        sig = _Signature(output_signature)
        call = (lambda: generator(*args)) if args is not None else generator
        key = _register(_FnEntry(call, None, sig))
        cb = _lib.GeneratorCallbacks(ctypes.sizeof(_lib.GeneratorCallbacks), _on_gen_start, _on_gen_next,
                                     _on_gen_finish, _on_destroy)
        try:
            return _new_dataset(L.kiln_dataset_from_generator, ctypes.byref(cb), ctypes.c_void_p(key), spec=sig.spec)
        except BaseException:
            _on_destroy(key)
            raise

    @staticmethod
    def zip(*datasets):
        """Dataset.zip((a, b)) or zip(a, b): elements side by side as a tuple; zip(a): a's own. As
        tf.data, any nest of tuples and dicts of datasets gives elements of that structure:
        zip((a, (b, c))), zip({"x": a, "y": b})."""
        if len(datasets) == 1 and isinstance(datasets[0], Dataset):
            return datasets[0]  # tf.data: a structure of one dataset gives that dataset's elements
        structure = datasets[0] if len(datasets) == 1 and isinstance(datasets[0], (tuple, list, dict)) else datasets
        leaves = []

        def walk(s, where):
            if isinstance(s, Dataset):
                leaves.append(s)
                return s._spec
            if isinstance(s, (tuple, list)):
                return tuple(walk(x, "%s[%d]" % (where, i) if where else str(i)) for i, x in enumerate(s))
            if isinstance(s, dict):
                return {k: walk(s[k], "%s[%r]" % (where, k) if where else repr(k)) for k in _dict_keys(s)}
            raise TypeError("Dataset.zip: element %s is a %s (%r); expected a kiln.data.Dataset (make one with "
                            "Dataset.from_tensors / from_tensor_slices)" % (where, type(s).__name__, s))
        spec = walk(tuple(structure) if isinstance(structure, list) else structure, "")
        if not leaves:
            raise InvalidArgumentError("Dataset.zip: expected a tuple of datasets; got none")
        hs = (ctypes.c_void_p * len(leaves))(*[d._h for d in leaves])
        return _new_dataset(L.kiln_dataset_zip, hs, len(leaves), spec=spec)

    # ---- transformations ----
    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True):
        return self._derive(L.kiln_dataset_shuffle, _int(buffer_size, "buffer_size", "shuffle"),
                            -1 if seed is None else _int(seed, "seed", "shuffle"),
                            bool(reshuffle_each_iteration))

    def batch(self, batch_size, drop_remainder=False):
        return self._derive(L.kiln_dataset_batch, _int(batch_size, "batch_size", "batch"), bool(drop_remainder))

    def padded_batch(self, batch_size, padded_shapes=None, padding_values=None, drop_remainder=False):
        """padded_shapes and padding_values in the element's structure (None: pad every dim to the
        batch's longest, with zeros); a None dim pads to the longest."""
        spec = _resolve(self._spec)
        shapes = [] if padded_shapes is None else _flat_like(spec, padded_shapes, _is_shape)
        dims = [(-1 if d is None else _int(d, "padded_shapes", "padded_batch")) for s in shapes for d in s]
        ranks = [len(s) for s in shapes]
        dims_arr = int64_array(dims, "a dim of padded_shapes", "padded_batch")
        ranks_arr = (ctypes.c_size_t * max(len(ranks), 1))(*ranks)
        pads = None
        if padding_values is not None:
            if not isinstance(padding_values, (tuple, dict)) and isinstance(spec, (tuple, dict)):
                padding_values = _map_nest(spec, lambda _: padding_values)  # one value for every component
            values = _flat_like(spec, padding_values, lambda v: not isinstance(v, (tuple, dict)))
            pads = _to_list([v if isinstance(v, Tensor) else constant(v) for v in values])
        try:
            return self._derive(L.kiln_dataset_padded_batch, _int(batch_size, "batch_size", "padded_batch"),
                                dims_arr, ranks_arr, len(shapes), pads, bool(drop_remainder))
        finally:
            if pads:
                L.kiln_tensor_list_free(pads)

    def map(self, map_func, num_parallel_calls=None, deterministic=None):
        """map_func takes the element's components (a tuple element as separate arguments) and
        returns a tensor, tuple or dict. num_parallel_calls > 1 or AUTOTUNE runs it on worker
        threads; the output order stays the input's either way."""
        out_spec = _Deferred()
        key = _register(_FnEntry(map_func, self._spec, out_spec))
        cb = _lib.MapCallbacks(ctypes.sizeof(_lib.MapCallbacks), _on_map, _on_destroy)
        try:
            calls = 0 if num_parallel_calls is None else _int(num_parallel_calls, "num_parallel_calls", "map")
            return self._derive(L.kiln_dataset_map, calls, ctypes.byref(cb), ctypes.c_void_p(key), spec=out_spec)
        except BaseException:
            _on_destroy(key)
            raise

    def filter(self, predicate):
        key = _register(_FnEntry(predicate, self._spec, None))
        cb = _lib.PredicateCallbacks(ctypes.sizeof(_lib.PredicateCallbacks), _on_predicate, _on_destroy)
        try:
            return self._derive(L.kiln_dataset_filter, ctypes.byref(cb), ctypes.c_void_p(key))
        except BaseException:
            _on_destroy(key)
            raise

    def repeat(self, count=None):
        return self._derive(L.kiln_dataset_repeat, -1 if count is None else _int(count, "count", "repeat"))

    def take(self, count):
        return self._derive(L.kiln_dataset_take, _int(count, "count", "take"))

    def skip(self, count):
        return self._derive(L.kiln_dataset_skip, _int(count, "count", "skip"))

    def shard(self, num_shards, index):
        """tf.data's shard: every num_shards-th element from the index-th (a data-parallel rank's
        share: shard(kiln.distributed.size(), kiln.distributed.rank()))."""
        return self._derive(L.kiln_dataset_shard, _int(num_shards, "num_shards", "shard"),
                            _int(index, "index", "shard"))

    def concatenate(self, dataset):
        """The elements of this dataset, then those of dataset, which must have the same structure
        (dicts: the same keys)."""
        if not isinstance(dataset, Dataset):
            raise TypeError("concatenate: expected a kiln.data.Dataset; got %s (%r)" % (type(dataset).__name__, dataset))
        a, b = _resolve(self._spec), _resolve(dataset._spec)
        known = a if a is not None else b
        if a is not None and b is not None:
            if not _same_structure(_sorted_spec(a), _sorted_spec(b)):
                raise TypeError("concatenate: the two datasets have different structures: %s and %s"
                                % (_describe(a), _describe(b)))
            if not _same_structure(a, b):
                raise TypeError("concatenate: the two datasets hold the same dict keys with their components in "
                                "another order (%s and %s: a CSV dataset keeps its columns' order); map the "
                                "first to a dict, e.g. ds.map(lambda row: row), to sort its keys"
                                % (_describe(a), _describe(b)))
        elif known is not None and not _same_structure(known, _sorted_spec(known)):  # a CSV dataset's columns
            raise TypeError("concatenate: the other dataset's structure is not known yet (a map that has not run), "
                            "and this one's dict keys are not sorted (a CSV dataset's columns); map it to a dict "
                            "first, e.g. ds.map(lambda row: row)")
        return self._derive(L.kiln_dataset_concatenate, dataset)

    def cache(self, filename=""):
        if filename:
            raise InvalidArgumentError("cache: kiln caches in memory only; call cache() without a filename")
        return self._derive(L.kiln_dataset_cache)

    def prefetch(self, buffer_size=AUTOTUNE):
        return self._derive(L.kiln_dataset_prefetch, _int(buffer_size, "buffer_size", "prefetch"))

    def unbatch(self):
        return self._derive(L.kiln_dataset_unbatch)

    def enumerate(self, start=0):
        return self._derive(L.kiln_dataset_enumerate, _int(start, "start", "enumerate"), spec=(_LEAF, self._spec))

    # ---- inspection and iteration ----
    def cardinality(self):
        """The number of elements, INFINITE_CARDINALITY (-1) or UNKNOWN_CARDINALITY (-2)."""
        n = ctypes.c_int64()
        check(L.kiln_dataset_get_cardinality(ctypes.byref(n), self))
        return n.value

    def __len__(self):
        n = self.cardinality()
        if n < 0:
            raise TypeError("the dataset's length is %s" % ("infinite" if n == INFINITE_CARDINALITY else "unknown"))
        return n

    def __bool__(self):
        return True  # as tf.data (which defines __len__): an empty dataset is still a dataset

    def __iter__(self):
        return Iterator(self)

    def as_numpy_iterator(self):
        """Each element with NumPy arrays for its tensors (NumPy scalars for scalars), as tf.data."""
        for element in self:
            yield _map_nest(element, _numpy_value)


def _numpy_value(t):
    a = t.numpy()
    return a[()] if getattr(a, "ndim", None) == 0 else a


def _map_nest(value, fn):
    if isinstance(value, tuple):
        return tuple(_map_nest(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_nest(v, fn) for k, v in value.items()}
    return fn(value)


def _is_dim(d):
    return d is None or isinstance(d, numbers.Integral) and not isinstance(d, bool)


def _is_array_shape(v):
    """A 1-D integer NumPy array (tf.data takes one as a shape)."""
    return (not isinstance(v, Tensor) and getattr(v, "ndim", None) == 1
            and getattr(getattr(v, "dtype", None), "kind", None) in ("i", "u"))


def _is_shape(v):
    return (isinstance(v, (list, tuple)) and all(_is_dim(d) for d in v) or isinstance(v, Tensor)
            or _is_array_shape(v))


def _flat_like(spec, value, is_leaf):
    """value's leaves in the order of structure spec (a structure not yet known: value's own, dicts
    in sorted key order as the elements' own)."""
    if spec is None:
        if is_leaf(value):
            return [_shape_list(value)]
        if isinstance(value, dict):
            return [x for k in _dict_keys(value) for x in _flat_like(None, value[k], is_leaf)]
        return [x for v in value for x in _flat_like(None, v, is_leaf)]
    if spec == _LEAF:
        return [_shape_list(value)]
    if isinstance(spec, tuple):
        return [x for s, v in zip(spec, value) for x in _flat_like(_resolve(s), v, is_leaf)]
    return [x for k, s in spec.items() for x in _flat_like(_resolve(s), value[k], is_leaf)]


def _shape_list(v):
    if isinstance(v, Tensor) and v.ndim == 1 or _is_array_shape(v):
        return [int(d) for d in v.tolist()]
    return list(v) if isinstance(v, (list, tuple)) else v


class Iterator(_Uncopyable):
    """One pass over a dataset (iter(ds)); its pipeline threads stop when it is freed (at the
    latest when the interpreter exits, see _free_at_exit)."""

    __slots__ = ("_h", "_spec", "_dataset", "__weakref__")

    def __init__(self, dataset):
        if not isinstance(dataset, Dataset):
            raise TypeError("Iterator: expected a kiln.data.Dataset; got %s" % type(dataset).__name__)
        if not dataset._h:
            raise FailedPreconditionError("Iterator: the dataset was freed (the interpreter is exiting)")
        out = ctypes.c_void_p()
        status = L.kiln_dataset_make_iterator(ctypes.byref(out), dataset)
        if status:
            _raise(status)
        self._h = out.value
        self._spec = dataset._spec
        self._dataset = dataset
        _LIVE_ITERATORS.add(self)

    @property
    def _as_parameter_(self):
        return ctypes.c_void_p(self._h)

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            self._h = None
            L.kiln_iterator_free(h)

    def __iter__(self):
        return self

    def _next(self):
        """The next element, or _END at the end of the sequence."""
        if not self._h:
            return _END  # freed at interpreter exit
        lst = ctypes.c_void_p()
        end = ctypes.c_bool()
        status = _errors.deferred_call(L.kiln_iterator_next, ctypes.byref(lst), ctypes.byref(end), self)
        if status:
            _raise(status)
        if end.value:
            return _END
        try:
            tensors = _from_list(lst.value)
        finally:
            L.kiln_tensor_list_free(lst.value)
        return _unflatten_all(self._spec, tensors)

    def __next__(self):
        element = self._next()
        if element is _END:
            raise StopIteration
        return element

    def get_next(self):
        """tf.data's Iterator.get_next(): the next element; at the end OutOfRangeError, as TF's
        (next(iterator) raises StopIteration)."""
        element = self._next()
        if element is _END:
            raise OutOfRangeError("get_next: End of sequence; the iterator has no more elements")
        return element


_END = object()  # Iterator._next: the end of the sequence


# ---------------------------------------------------------------- interpreter exit
#
# An iterator's pipeline threads (a parallel map, a prefetch) call back into Python. Left running
# into interpreter finalization they would call into a dying interpreter, so every iterator still
# alive at exit is freed (its threads stopped) while Python still works, and then the datasets
# (which own the Python functions). atexit runs this before finalization starts.

_LIVE_ITERATORS = weakref.WeakSet()
_LIVE_DATASETS = weakref.WeakSet()


@atexit.register
def _free_at_exit():
    for it in list(_LIVE_ITERATORS):
        try:
            it.__del__()
        except BaseException:  # noqa: B902 - exiting anyway; free the rest
            pass
    for d in list(_LIVE_DATASETS):
        try:
            d.__del__()
        except BaseException:  # noqa: B902
            pass


# ---------------------------------------------------------------- readers

def read_idx(path):
    """An IDX (MNIST-format) file, gzip or plain, as a Tensor (uint8, int32, float32 or float64)."""
    return Tensor._adopt(new_handle(L.kiln_read_idx, str(path).encode()))


def load_fashion_mnist(path=None):
    """((x_train, y_train), (x_test, y_test)) as uint8 Tensors from the four IDX files in path
    (default: Debian's /usr/share/datasets/fashion-mnist)."""
    hs = [ctypes.c_void_p() for _ in range(4)]
    check(L.kiln_load_fashion_mnist(*[ctypes.byref(h) for h in hs], None if path is None else str(path).encode()))
    x_train, y_train, x_test, y_test = [Tensor._adopt(h.value) for h in hs]
    return (x_train, y_train), (x_test, y_test)


_CSV_TYPES = {None: 0, "auto": 0, "int32": 1, "int64": 2, "float32": 3, "float64": 4, "skip": 5}


def _csv_dataset(path, column_types, header, field_delim, skip_text_columns):
    o = _lib.CsvOptions()
    check(L.kiln_csv_options_init(ctypes.byref(o), ctypes.sizeof(o)))
    o.header = bool(header)
    o.delimiter = field_delim.encode()
    o.skip_text_columns = bool(skip_text_columns)
    keep = None
    if column_types is not None:
        codes = []
        for t in column_types:
            key = t if t is None or t in _CSV_TYPES else _CODE_DTYPE[dtype_code(t, "read_csv")]
            if key not in _CSV_TYPES:
                raise InvalidArgumentError("read_csv: column type %r; expected int32, int64, float32, float64, "
                                           "'skip' or None (auto)" % (t,))
            codes.append(_CSV_TYPES[key])
        keep = (ctypes.c_int * max(len(codes), 1))(*codes)
        o.column_types = ctypes.cast(keep, ctypes.POINTER(ctypes.c_int))
        o.num_column_types = len(codes)
    h = new_handle(L.kiln_dataset_from_csv, str(path).encode(), ctypes.byref(o))
    names = [L.kiln_dataset_get_name(h, i).decode() for i in range(L.kiln_dataset_get_num_names(h))]
    return Dataset._wrap(h, {n: _LEAF for n in names})


def read_csv(path, column_types=None, header=True, field_delim=",", skip_text_columns=False):
    """A CSV file's numeric columns as a dict of 1-D Tensors (column name -> values).
    column_types: one per column ("int32", "int64", "float32", "float64", "skip", or None to infer)."""
    ds = _csv_dataset(path, column_types, header, field_delim, skip_text_columns)
    n = ds.cardinality()
    if n == 0:
        return {k: constant([], "float32") for k in ds._spec}
    return next(iter(ds.batch(n)))


class _Experimental:
    AUTOTUNE = AUTOTUNE
    INFINITE_CARDINALITY = INFINITE_CARDINALITY
    UNKNOWN_CARDINALITY = UNKNOWN_CARDINALITY

    @staticmethod
    def make_csv_dataset(file_pattern, batch_size, column_types=None, header=True, field_delim=",",
                         skip_text_columns=True, label_name=None, num_epochs=None, shuffle=True,
                         shuffle_buffer_size=10000, shuffle_seed=None, prefetch_buffer_size=None,
                         drop_final_batch=False):
        """tf.data.experimental.make_csv_dataset's simple form over one file: batches of dicts
        (or (features, label) pairs with label_name), shuffled and repeated as tf's."""
        ds = _csv_dataset(file_pattern, column_types, header, field_delim, skip_text_columns)
        if label_name is not None:
            if label_name not in ds._spec:
                raise InvalidArgumentError("make_csv_dataset: no column %r; the columns are %s"
                                           % (label_name, list(ds._spec)))
            ds = ds.map(lambda row: ({k: v for k, v in row.items() if k != label_name}, row[label_name]))
        if shuffle:  # tf's shuffle_and_repeat: each epoch a permutation of the rows
            ds = ds.shuffle(shuffle_buffer_size, shuffle_seed)
        if num_epochs != 1:
            ds = ds.repeat(num_epochs)
        ds = ds.batch(batch_size, drop_final_batch)
        return ds.prefetch(AUTOTUNE if prefetch_buffer_size is None else prefetch_buffer_size)

    @staticmethod
    def cardinality(dataset):
        return dataset.cardinality()


experimental = _Experimental()

__all__ = ["Dataset", "Iterator", "TensorSpec", "AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY",
           "read_idx", "load_fashion_mnist", "read_csv", "experimental"]
