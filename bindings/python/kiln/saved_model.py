"""kiln.saved_model: tf.saved_model.save / load over the C ABI (kiln/saved_model.h).

    kiln.saved_model.save(model, "export")                   # or model.save("export")
    loaded = kiln.saved_model.load("export")
    serve = loaded.signatures["serving_default"]
    serve(dense_input=images)                                # {"dense_1": probabilities}
    model = kiln.models.load_model("export")                 # predict, evaluate, fit

The directory holds saved_model.pb (the model's layer configs, its serving signatures, its compile
config and the kiln version), variables/ (a TensorFlow checkpoint of the weights and the
optimizer's state) and fingerprint.pb. Built-in layers load without their source; custom classes
through kiln.saving.register_keras_serializable (or custom_objects) before loading. A loaded model
serves from any number of threads. Damaged files raise kiln.DataLossError naming the file.
"""
import ctypes
import os

from . import _lib
from ._copy import Uncopyable as _Uncopyable
from . import config as _config
from .errors import InvalidArgumentError, call_c, check
from .tensor import Tensor, _CODE_DTYPE, dtype_code

L = _lib.lib

__all__ = ["save", "load", "LoadedModel", "ConcreteFunction", "TensorSpec"]


def _path_bytes(path):
    return os.fsencode(os.fspath(path))


class TensorSpec:
    """tf.TensorSpec: a signature tensor's shape (None for unknown dims), dtype and name."""

    def __init__(self, shape=None, dtype="float32", name=None):
        self.shape = None if shape is None else tuple(None if d is None or d < 0 else int(d) for d in shape)
        self.dtype = _CODE_DTYPE[dtype_code(dtype, "TensorSpec")]
        self.name = name

    def __eq__(self, other):
        return (isinstance(other, TensorSpec) and (self.shape, self.dtype, self.name) ==
                (other.shape, other.dtype, other.name))

    def __hash__(self):
        return hash((self.shape, self.dtype, self.name))

    def __repr__(self):
        return "TensorSpec(shape=%s, dtype=%s, name=%r)" % (self.shape, self.dtype, self.name)


def _input_specs(signatures):
    """The serving_default input specs of save(signatures=...): None, a spec, a list of specs (one
    per model input), or {"serving_default": either}."""
    if signatures is None:
        return None
    if isinstance(signatures, dict):
        unknown = sorted(k for k in signatures if k != "serving_default")
        if unknown:
            raise InvalidArgumentError("save: kiln writes one signature, 'serving_default'; got %s" % unknown)
        signatures = signatures.get("serving_default")
        if signatures is None:
            return None
    specs = list(signatures) if isinstance(signatures, (list, tuple)) else [signatures]
    out = []
    for s in specs:
        if not hasattr(s, "dtype") or not hasattr(s, "shape"):
            raise InvalidArgumentError("save: signatures must be TensorSpecs (one per model input); got %r" % (s,))
        spec = {"dtype": _CODE_DTYPE[dtype_code(s.dtype, "save")]}
        if getattr(s, "name", None):
            spec["name"] = str(s.name)
        if s.shape is not None:
            spec["shape"] = [None if d is None else int(d) for d in s.shape]
        out.append(spec)
    return out


def save(obj, export_dir, signatures=None, options=None, output_names=None):
    """tf.saved_model.save(obj, export_dir, signatures=None): writes the SavedModel of a built
    model. signatures: the serving_default inputs as TensorSpecs (one per model input; a spec's
    name and shape are kept, None keeps the default: Keras's names and the built shape with the
    batch dim unknown). output_names (kiln's): one per output. The directory appears whole or not
    at all; an earlier SavedModel there is replaced; a directory of other files is refused."""
    if options is not None:
        raise InvalidArgumentError("save: options (tf.saved_model.SaveOptions) are not supported")
    cfg = {}
    specs = _input_specs(signatures)
    if specs:
        cfg["inputs"] = specs
    if output_names is not None:
        cfg["output_names"] = [str(n) for n in ([output_names] if isinstance(output_names, str) else output_names)]
    handle = obj._handle() if hasattr(obj, "_handle") else None
    if handle is None:
        raise InvalidArgumentError("save: %r is not a kiln model" % (obj,))
    with _config.to_c(cfg) as c:
        call_c(L.kiln_saved_model_save, handle, _path_bytes(export_dir), c)


class ConcreteFunction:
    """A signature of a loaded SavedModel (TF's .signatures["serving_default"]): called with the
    inputs by name (or positionally, in the signature's order), it returns a dict of the outputs
    by name. Thread-safe."""

    def __init__(self, owner, handle, key):
        self._owner = owner  # keeps the SavedModel (and so this handle) alive
        self._sig = handle
        self.name = key
        self.inputs = self._specs(False)
        self.outputs = self._specs(True)

    def _specs(self, outputs):
        n = ctypes.c_size_t()
        check((L.kiln_saved_model_signature_get_num_outputs if outputs else
               L.kiln_saved_model_signature_get_num_inputs)(ctypes.byref(n), self._sig))
        get = L.kiln_saved_model_signature_get_output if outputs else L.kiln_saved_model_signature_get_input
        specs = []
        for i in range(n.value):
            name = ctypes.c_char_p()
            dtype = ctypes.c_int()
            dims = (ctypes.c_int64 * 8)()
            rank = ctypes.c_size_t()
            check(get(ctypes.byref(name), ctypes.byref(dtype), dims, 8, ctypes.byref(rank), self._sig, i))
            specs.append(TensorSpec([dims[d] for d in range(min(rank.value, 8))], dtype.value, name.value.decode()))
        return specs

    @property
    def structured_input_signature(self):
        return ((), {s.name: s for s in self.inputs})

    @property
    def structured_outputs(self):
        return {s.name: s for s in self.outputs}

    def __call__(self, *args, **kwargs):
        from .layers import _tensors_from_list  # noqa: PLC0415
        from ._handles import as_tensor  # noqa: PLC0415
        if args and kwargs:
            raise InvalidArgumentError("signature '%s': give the inputs by name or by position, not both" % self.name)
        out = ctypes.c_void_p()
        if kwargs:
            names = list(kwargs)
            tensors = [as_tensor(kwargs[k]) for k in names]
            arr = (ctypes.c_void_p * max(len(names), 1))(*[t._h for t in tensors])
            cnames = _lib.c_strings(names, "signature input names")
            call_c(L.kiln_saved_model_signature_run_named, ctypes.byref(out), self._sig, cnames, arr, len(names))
        else:
            tensors = [as_tensor(a) for a in args]
            arr = (ctypes.c_void_p * max(len(tensors), 1))(*[t._h for t in tensors])
            call_c(L.kiln_saved_model_signature_run, ctypes.byref(out), self._sig, arr, len(tensors))
        try:
            values = _tensors_from_list(out.value)
        finally:
            L.kiln_tensor_list_free(out.value)
        del tensors  # kept alive through the call
        return {s.name: v for s, v in zip(self.outputs, values)}

    def __repr__(self):
        return "ConcreteFunction(%r, inputs=%s, outputs=%s)" % (self.name, self.inputs, self.outputs)


class _Handle(_Uncopyable):
    """Owns the kiln_saved_model; signatures keep it alive."""

    _COPY_INSTEAD = (" (the handle of a loaded SavedModel, which it and its functions share: "
                     "kiln.saved_model.load the directory again for another)")

    def __init__(self, h):
        self.h = h

    def __del__(self):
        if self.h:
            L.kiln_saved_model_free(self.h)
            self.h = None


class LoadedModel:
    """What load gives: .signatures (a dict of ConcreteFunctions), .model (the Keras model, as
    kiln.models.load_model gives it), the model's variables, and calling it runs the model."""

    def __init__(self, handle):
        from .layers import _take_back  # noqa: PLC0415
        self._handle_owner = _Handle(handle)
        n = ctypes.c_size_t()
        check(L.kiln_saved_model_get_num_signatures(ctypes.byref(n), handle))
        self.signatures = {}
        for i in range(n.value):
            key = ctypes.c_char_p()
            check(L.kiln_saved_model_get_signature_key(ctypes.byref(key), handle, i))
            sig = ctypes.c_void_p()
            check(L.kiln_saved_model_get_signature(ctypes.byref(sig), handle, key.value))
            self.signatures[key.value.decode()] = ConcreteFunction(self._handle_owner, sig.value, key.value.decode())
        version = ctypes.c_char_p()
        check(L.kiln_saved_model_get_kiln_version(ctypes.byref(version), handle))
        self.kiln_version = version.value.decode()
        m = ctypes.c_void_p()
        check(L.kiln_saved_model_get_model(ctypes.byref(m), handle))
        self.model = _take_back(m.value)

    @property
    def variables(self):
        return self.model.variables

    @property
    def trainable_variables(self):
        return self.model.trainable_variables

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)


def _load_options(compile, inference_weights):  # noqa: A002 - Keras's argument name
    if not isinstance(inference_weights, str):
        raise InvalidArgumentError("load: inference_weights must be \"float32\", \"bfloat16\" or \"int8\"; got %r"
                                   % (inference_weights,))
    return {"compile": bool(compile), "inference_weights": inference_weights}


def load(export_dir, tags=None, options=None, custom_objects=None, compile=True,  # noqa: A002
         inference_weights="float32"):
    """tf.saved_model.load(export_dir): a LoadedModel with .signatures and .model. custom_objects
    (kiln's): classes by registered name for the custom layers in the model. inference_weights
    (kiln's): "bfloat16" or "int8" makes the Dense layers read their kernels rounded to bfloat16
    or quantized to int8 in calls no GradientTape records with at most 8 rows (faster batch-1
    serving; bfloat16 within about 2^-9 relative of float32's, int8 TFLite-style dynamic-range
    quantization, typically 1e-3 relative, bound in kiln_saved_model_load); "float32" keeps the
    saved bits."""
    from .saving import custom_object_scope  # noqa: PLC0415
    if options is not None:
        raise InvalidArgumentError("load: options (tf.saved_model.LoadOptions) are not supported")
    if tags not in (None, "serve", ["serve"], {"serve"}, ("serve",)):
        raise InvalidArgumentError("load: kiln SavedModels have the one tag set ['serve']; got %r" % (tags,))
    with custom_object_scope(custom_objects or {}):
        with _config.to_c(_load_options(compile, inference_weights)) as c:
            out = ctypes.c_void_p()
            call_c(L.kiln_saved_model_load, ctypes.byref(out), _path_bytes(export_dir), c)
    return LoadedModel(out.value)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True,  # noqa: A002
               inference_weights="float32"):
    """keras.models.load_model(filepath) of a SavedModel directory: the model, compiled as it was
    saved (compile=False: uncompiled). inference_weights as in load."""
    from .layers import _take_back  # noqa: PLC0415
    from .saving import custom_object_scope  # noqa: PLC0415
    del safe_mode  # kiln configs hold no code
    path = os.fspath(filepath)
    if path.endswith((".h5", ".hdf5", ".keras")):
        from .errors import UnimplementedError  # noqa: PLC0415
        raise UnimplementedError("load_model('%s'): HDF5 and .keras files are not supported; kiln reads SavedModel "
                                 "directories (model.save('dir'))" % path)
    with custom_object_scope(custom_objects or {}):
        with _config.to_c(_load_options(compile, inference_weights)) as c:
            out = ctypes.c_void_p()
            call_c(L.kiln_saved_model_load_model, ctypes.byref(out), _path_bytes(path), c)
    return _take_back(out.value)
