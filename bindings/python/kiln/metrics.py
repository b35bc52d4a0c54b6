"""Keras metrics over the C ABI (kiln/metrics.h): kiln.metrics / kiln.keras.metrics.

    acc = kiln.metrics.SparseCategoricalAccuracy()
    acc.update_state(labels, probabilities)          # once per batch
    acc.result().numpy()                             # the running value
    acc(labels, probabilities)                       # update_state, then result (as Keras)
    acc.reset_state()                                # reset_states() too, TF 2.x's name

State lives in kiln Variables (metric.variables): total and count, true_positives ... so it can be
checkpointed. One metric may be updated from several threads at once.
"""
import ctypes

from . import _lib
from . import config as _config
from ._handles import Owned, as_tensor, bind_arguments, new_handle
from . import losses as _losses
from .errors import InvalidArgumentError, call_c, check
from .tensor import Tensor, int64_array

L = _lib.lib


class Metric(Owned):
    """A built-in metric: the base of the classes below (a C metric made from the class name and config)."""

    _KIND = "metric"
    _INSTEAD = ("use a built-in metric (kiln.metrics.MeanMetricWrapper of a built-in loss, ...), or compute your "
                "values in Python in a Model subclass's train_step / test_step override and update a "
                "kiln.metrics.Mean with them")

    def __init__(self, *args, name=None, dtype=None, **kwargs):
        self._init_builtin(args, kwargs, {"name": name, "dtype": dtype}, ("name", "dtype"))

    def update_state(self, *args, sample_weight=None):
        """update_state(y_true, y_pred, sample_weight=None); Mean and Sum: update_state(values, sample_weight=None)."""
        if L.kiln_metric_takes_values(self._h):
            if len(args) == 2 and sample_weight is None:
                args, sample_weight = args[:1], args[1]
            if len(args) != 1:
                raise TypeError("%s.update_state(values, sample_weight=None)" % self.class_name)
            check(L.kiln_metric_update_state_values(self._h, as_tensor(args[0]), as_tensor(sample_weight)))
            return
        if len(args) == 3 and sample_weight is None:
            args, sample_weight = args[:2], args[2]
        if len(args) != 2:
            raise TypeError("%s.update_state(y_true, y_pred, sample_weight=None)" % self.class_name)
        # A MeanMetricWrapper of a Python function: its exception comes out as it was raised.
        call_c(L.kiln_metric_update_state, self._h, as_tensor(args[0]), as_tensor(args[1]), as_tensor(sample_weight))

    def result(self):
        return Tensor._adopt(new_handle(L.kiln_metric_result, self._h))

    def reset_state(self):
        check(L.kiln_metric_reset_state(self._h))

    reset_states = reset_state  # TF 2.x

    def __call__(self, *args, **kwargs):
        """Keras's metric(...): update_state, then the result."""
        self.update_state(*args, **kwargs)
        return self.result()

    @property
    def variables(self):
        from .layers import _variables_from
        return _variables_from(L.kiln_metric_get_variables, self._h)

    # Keras 2 spelling.
    @property
    def weights(self):
        return self.variables


def _metric_class(class_name, args, doc, default_dtype="float32"):
    return type(class_name, (Metric,), {"_CLASS": class_name, "_ARGS": tuple(args), "__doc__": doc,
                                        "_DEFAULT_DTYPE": default_dtype})


_ND = [("name", None), ("dtype", None)]  # Keras's positions of name and dtype, as listed with each class
Mean = _metric_class("Mean", _ND, "keras.metrics.Mean: the (weighted) mean of the values given.")
Sum = _metric_class("Sum", _ND, "keras.metrics.Sum.")
Accuracy = _metric_class("Accuracy", _ND, "keras.metrics.Accuracy: how often y_pred equals y_true.")
BinaryAccuracy = _metric_class("BinaryAccuracy", _ND + [("threshold", 0.5)], "keras.metrics.BinaryAccuracy.")
CategoricalAccuracy = _metric_class("CategoricalAccuracy", _ND, "keras.metrics.CategoricalAccuracy.")
SparseCategoricalAccuracy = _metric_class("SparseCategoricalAccuracy", _ND, "keras.metrics.SparseCategoricalAccuracy.")
TopKCategoricalAccuracy = _metric_class("TopKCategoricalAccuracy", [("k", 5)] + _ND,
                                        "keras.metrics.TopKCategoricalAccuracy.")
SparseTopKCategoricalAccuracy = _metric_class(
    "SparseTopKCategoricalAccuracy", [("k", 5)] + _ND + [("from_sorted_ids", False)],
    "keras.metrics.SparseTopKCategoricalAccuracy (from_sorted_ids: y_pred holds category ids, best first).")
MeanSquaredError = _metric_class("MeanSquaredError", _ND, "keras.metrics.MeanSquaredError.")
RootMeanSquaredError = _metric_class("RootMeanSquaredError", _ND, "keras.metrics.RootMeanSquaredError.")
MeanAbsoluteError = _metric_class("MeanAbsoluteError", _ND, "keras.metrics.MeanAbsoluteError.")
MeanAbsolutePercentageError = _metric_class("MeanAbsolutePercentageError", _ND,
                                            "keras.metrics.MeanAbsolutePercentageError.")
MeanSquaredLogarithmicError = _metric_class("MeanSquaredLogarithmicError", _ND,
                                            "keras.metrics.MeanSquaredLogarithmicError.")
LogCoshError = _metric_class("LogCoshError", _ND, "keras.metrics.LogCoshError.")
Poisson = _metric_class("Poisson", _ND, "keras.metrics.Poisson.")
KLDivergence = _metric_class("KLDivergence", _ND, "keras.metrics.KLDivergence.")
Hinge = _metric_class("Hinge", _ND, "keras.metrics.Hinge.")
SquaredHinge = _metric_class("SquaredHinge", _ND, "keras.metrics.SquaredHinge.")
CategoricalHinge = _metric_class("CategoricalHinge", _ND, "keras.metrics.CategoricalHinge.")
CosineSimilarity = _metric_class("CosineSimilarity", _ND + [("axis", -1)],
                                 "keras.metrics.CosineSimilarity: the similarity (the loss is its negative).")
BinaryCrossentropy = _metric_class("BinaryCrossentropy", _ND + [("from_logits", False), ("label_smoothing", 0)],
                                   "keras.metrics.BinaryCrossentropy.")
CategoricalCrossentropy = _metric_class("CategoricalCrossentropy", _ND + [
    ("from_logits", False), ("label_smoothing", 0), ("axis", -1)], "keras.metrics.CategoricalCrossentropy.")
SparseCategoricalCrossentropy = _metric_class("SparseCategoricalCrossentropy", _ND + [
    ("from_logits", False), ("ignore_class", None), ("axis", -1)], "keras.metrics.SparseCategoricalCrossentropy.")
Precision = _metric_class("Precision", [("thresholds", None), ("top_k", None), ("class_id", None)] + _ND,
                          "keras.metrics.Precision.")
Recall = _metric_class("Recall", [("thresholds", None), ("top_k", None), ("class_id", None)] + _ND,
                       "keras.metrics.Recall.")
AUC = _metric_class("AUC", [("num_thresholds", 200), ("curve", "ROC"), ("summation_method", "interpolation")] + _ND + [
    ("thresholds", None), ("multi_label", False), ("num_labels", None), ("label_weights", None),
    ("from_logits", False)], "keras.metrics.AUC. multi_label=True: y_pred (samples, labels), one AUC per label, "
    "their mean (or label_weights-weighted mean) as the result.")
FBetaScore = _metric_class("FBetaScore", [("average", None), ("beta", 1.0), ("threshold", None)] + _ND,
                           "keras.metrics.FBetaScore: per class (average None) or averaged ('micro', 'macro', "
                           "'weighted'); fit logs one number per metric, so compile it with an average.")
F1Score = _metric_class("F1Score", [("average", None), ("threshold", None)] + _ND,
                        "keras.metrics.F1Score: FBetaScore with beta 1.")


def _count_class(class_name):
    return _metric_class(class_name, [("thresholds", None)] + _ND,
                         "keras.metrics.%s: the (weighted) count at each threshold (a prediction above it is "
                         "positive); one threshold (0.5 by default) gives a scalar." % class_name)


TruePositives = _count_class("TruePositives")
FalsePositives = _count_class("FalsePositives")
TrueNegatives = _count_class("TrueNegatives")
FalseNegatives = _count_class("FalseNegatives")


def _at_class(class_name, key, doc):
    return _metric_class(class_name, [(key, None), ("num_thresholds", 200), ("class_id", None)] + _ND,
                         "keras.metrics.%s: %s, over num_thresholds thresholds evenly spaced in [0, 1]."
                         % (class_name, doc))


SensitivityAtSpecificity = _at_class("SensitivityAtSpecificity", "specificity",
                                     "the best sensitivity where specificity >= specificity")
SpecificityAtSensitivity = _at_class("SpecificityAtSensitivity", "sensitivity",
                                     "the best specificity where sensitivity >= sensitivity")
PrecisionAtRecall = _at_class("PrecisionAtRecall", "recall", "the best precision where recall >= recall")
RecallAtPrecision = _at_class("RecallAtPrecision", "precision", "the best recall where precision >= precision")
R2Score = _metric_class("R2Score", [("class_aggregation", "uniform_average"), ("num_regressors", 0)] + _ND,
                        "keras.metrics.R2Score: the coefficient of determination of (batch, outputs) targets; "
                        "class_aggregation None gives one score per output.")
PearsonCorrelation = _metric_class("PearsonCorrelation", _ND + [("axis", -1)],
                                   "keras.metrics.PearsonCorrelation: the mean of each sample's Pearson "
                                   "coefficient along axis (an int or a list of ints).")
ConcordanceCorrelation = _metric_class("ConcordanceCorrelation", _ND + [("axis", -1)],
                                       "keras.metrics.ConcordanceCorrelation: the mean of each sample's "
                                       "concordance coefficient along axis.")

_IOU_DOC = ("keras.metrics.%s: intersection over union from a num_classes x num_classes confusion matrix "
            "(dtype 'int' by default, as Keras).")


def _iou_class(class_name, args):
    return _metric_class(class_name, args, _IOU_DOC % class_name, "int64")


IoU = _iou_class("IoU", [("num_classes", None), ("target_class_ids", None)] + _ND + [
    ("ignore_class", None), ("sparse_y_true", True), ("sparse_y_pred", True), ("axis", -1)])
MeanIoU = _iou_class("MeanIoU", [("num_classes", None)] + _ND + [
    ("ignore_class", None), ("sparse_y_true", True), ("sparse_y_pred", True), ("axis", -1)])
OneHotIoU = _iou_class("OneHotIoU", [("num_classes", None), ("target_class_ids", None)] + _ND + [
    ("ignore_class", None), ("sparse_y_pred", False), ("axis", -1)])
OneHotMeanIoU = _iou_class("OneHotMeanIoU", [("num_classes", None)] + _ND + [
    ("ignore_class", None), ("sparse_y_pred", False), ("axis", -1)])
BinaryIoU = _iou_class("BinaryIoU", [("target_class_ids", (0, 1)), ("threshold", 0.5)] + _ND)


class MeanMetricWrapper(Metric):
    """keras.metrics.MeanMetricWrapper(fn, name=None, **kwargs): the mean of fn(y_true, y_pred,
    **kwargs), per-sample values. fn: a function (written in Python, or one of kiln.losses'), a
    kiln loss object or class, or a loss name ("categorical_crossentropy",
    "mae", ...). A function written in Python is named after it unless name says otherwise."""

    _CLASS = "MeanMetricWrapper"

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if isinstance(fn, type) and issubclass(fn, _losses.Loss):
            fn = fn(**kwargs)
            kwargs = {}
        # kiln's metric function: the C metric class its name (a metric alias) makes.
        if _METRIC_FUNCTIONS.get(getattr(fn, "__name__", None)) is fn:
            config = dict(kwargs, name=name if name is not None else fn.__name__)
            if dtype is not None:
                config["dtype"] = dtype
            self._h = self._create_handle(fn.__name__, config)
            return
        if callable(fn) and not isinstance(fn, (_losses.Loss, type)) and not _is_kiln_function(fn):
            fn = _losses.LossFunctionWrapper(fn, **kwargs)  # a function written in Python
            kwargs = {}
        if isinstance(fn, _losses.Loss):
            if kwargs:
                raise InvalidArgumentError("MeanMetricWrapper: options go to the loss object")
            self._wrapped_loss = fn  # a loss written in Python runs through this object
            self._h = new_handle(L.kiln_metric_create_mean_wrapper, fn._h, (name or "").encode("utf-8"))
            return
        if callable(fn):
            fn = getattr(fn, "__name__", "")
        config = {"fn": str(fn), "fn_config": kwargs}
        if name is not None:
            config["name"] = name
        self._h = self._create_handle("MeanMetricWrapper", config)

    @classmethod
    def from_config(cls, config):
        obj = object.__new__(cls)
        obj._h = cls._create_handle("MeanMetricWrapper", config)
        return obj


def _function(fname, doc, **defaults):
    """Keras 3's metric function fname(y_true, y_pred, **defaults): the values its metric averages,
    computed by kiln_metric_function_call."""
    order = list(defaults)

    def fn(y_true, y_pred, *args, **kwargs):
        unknown = set(kwargs) - set(order)
        if unknown:
            raise TypeError("%s() got unexpected keyword argument(s) %s" % (fname, ", ".join(sorted(unknown))))
        with _config.to_c(bind_arguments(fname + "()", order, args, kwargs)) as c:
            return Tensor._adopt(new_handle(L.kiln_metric_function_call, fname.encode(), as_tensor(y_true),
                                            as_tensor(y_pred), c))
    fn.__name__ = fn.__qualname__ = fname
    fn.__doc__ = "keras.metrics.%s(y_true, y_pred%s): %s" % (
        fname, "".join(", %s=%r" % kv for kv in defaults.items()), doc)
    return fn


accuracy = _function("accuracy", "1 per element where y_true equals y_pred, else 0.")
binary_accuracy = _function("binary_accuracy", "1 per element where y_true equals (y_pred > threshold), else 0.",
                            threshold=0.5)
categorical_accuracy = _function("categorical_accuracy", "1 per sample whose one-hot label is y_pred's argmax.")
sparse_categorical_accuracy = _function("sparse_categorical_accuracy",
                                        "1 per sample whose integer label is y_pred's argmax.")
top_k_categorical_accuracy = _function("top_k_categorical_accuracy",
                                       "1 per sample whose one-hot label is among y_pred's top k.", k=5)
sparse_top_k_categorical_accuracy = _function(
    "sparse_top_k_categorical_accuracy",
    "1 per sample whose integer label is among y_pred's top k (from_sorted_ids: y_pred holds ids, best first).",
    k=5, from_sorted_ids=False)
pearson_correlation = _function("pearson_correlation", "the Pearson correlation per sample along axis.", axis=-1)
concordance_correlation = _function("concordance_correlation", "the concordance correlation per sample along axis.",
                                    axis=-1)
_METRIC_FUNCTIONS = {f.__name__: f for f in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy,
    sparse_top_k_categorical_accuracy, pearson_correlation, concordance_correlation)}
# keras.metrics re-exports these loss functions (the per-sample losses).
binary_crossentropy = _losses.binary_crossentropy
binary_focal_crossentropy = _losses.binary_focal_crossentropy
categorical_crossentropy = _losses.categorical_crossentropy
categorical_focal_crossentropy = _losses.categorical_focal_crossentropy
sparse_categorical_crossentropy = _losses.sparse_categorical_crossentropy
categorical_hinge = _losses.categorical_hinge
hinge = _losses.hinge
squared_hinge = _losses.squared_hinge
huber = _losses.huber
kl_divergence = _losses.kl_divergence
log_cosh = _losses.log_cosh
mean_absolute_error = _losses.mean_absolute_error
mean_absolute_percentage_error = _losses.mean_absolute_percentage_error
mean_squared_error = _losses.mean_squared_error
mean_squared_logarithmic_error = _losses.mean_squared_logarithmic_error
poisson = _losses.poisson
_FUNCTIONS = dict(_METRIC_FUNCTIONS, **{f.__name__: f for f in (
    binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy, categorical_focal_crossentropy,
    sparse_categorical_crossentropy, categorical_hinge, hinge, squared_hinge, huber, kl_divergence, log_cosh,
    mean_absolute_error, mean_absolute_percentage_error, mean_squared_error, mean_squared_logarithmic_error,
    poisson)})


def _is_kiln_function(fn):
    """Whether fn is one of kiln.losses' own functions (kiln makes them in C)."""
    return _losses._FUNCTIONS.get(getattr(fn, "__name__", None)) is fn


_CLASSES = {c._CLASS: c for c in (Mean, Sum, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                  TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
                                  RootMeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
                                  MeanSquaredLogarithmicError, LogCoshError, Poisson, KLDivergence, Hinge,
                                  SquaredHinge, CategoricalHinge, CosineSimilarity, BinaryCrossentropy,
                                  CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                  Precision, Recall, AUC, IoU, MeanIoU, OneHotIoU,
                                  OneHotMeanIoU, BinaryIoU, FBetaScore, F1Score, MeanMetricWrapper,
                                  TruePositives, FalsePositives, TrueNegatives, FalseNegatives,
                                  SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall,
                                  RecallAtPrecision, R2Score, PearsonCorrelation, ConcordanceCorrelation)}
Metric._BY_CLASS = _CLASSES


def get(identifier):
    """keras.metrics.get: None or a metric (as it is), a serialized dict, or a name: a class
    ("AUC"), a Keras function name or alias ("accuracy", "acc", "mse"), or a loss name (a
    MeanMetricWrapper of it); a new metric object in every case. Unknown names raise NotFoundError
    listing the known ones."""
    if identifier is None or isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return Metric._adopt(Metric._create_handle(identifier, {}))
    if isinstance(identifier, _losses.Loss) or callable(identifier):
        return MeanMetricWrapper(identifier)
    raise InvalidArgumentError("metrics.get: cannot interpret %r as a metric" % (identifier,))


def resolve(identifier, loss=None, y_true_shape=(), y_pred_shape=()):
    """What compile does with a metric identifier (Keras's get_metric): "accuracy"/"acc" and
    "crossentropy"/"ce" become the binary, sparse or categorical variant picked from the loss and
    the shapes (None: unknown); other identifiers as get."""
    if not isinstance(identifier, str):
        return get(identifier)
    if isinstance(loss, str):
        loss = _losses.Loss._adopt(_losses.Loss._create_handle(loss, {}))
    loss_h = loss._h if isinstance(loss, _losses.Loss) else None

    def dims(shape):
        shape = [-1 if d is None else int(d) for d in shape]
        return int64_array(shape, "a dimension of a shape", "metric"), len(shape)

    (td, tr), (pd, pr) = dims(y_true_shape), dims(y_pred_shape)
    return Metric._adopt(new_handle(L.kiln_metric_resolve, identifier.encode("utf-8"), loss_h, td, tr, pd, pr))


def serialize(metric):
    return metric._serialize()


def deserialize(config):
    return Metric._adopt(Metric._deserialize_handle(config))


__all__ = ["Metric", "get", "resolve", "serialize", "deserialize"] + sorted(_CLASSES) + sorted(_FUNCTIONS)
