// Metric: the base (state variables, the mutex), the reducing metrics (Mean, Sum, the
// MeanMetricWrapper family, RootMeanSquaredError), Keras's accuracy functions and the registry.
#include "train/metrics.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>

#include "core/error.h"
#include "ops/ops.h"
#include "train/metrics_internal.h"
#include "train/serialized.h"

namespace kiln::train {

namespace {

std::atomic<uint64_t> next_metric_id{1};

using detail::f32;

std::vector<int64_t> axes_from(int from, int rank) {
  std::vector<int64_t> a;
  for (int i = from; i < rank; ++i) a.push_back(i);
  return a;
}

// Keras's in_top_k (TF's InTopK kernel): whether each row's target scores among the k highest;
// ties at the boundary count as in. A row with a non-finite score anywhere, or a target outside
// [0, classes), cannot say, and counts as out.
Tensor in_top_k(const Tensor &targets, const Tensor &predictions, int64_t k, const std::string &owner) {
  const Tensor p = f32(predictions);
  const Tensor t = ops::cast(targets, DType::kInt64);
  const int64_t classes = p.shape()[p.shape().rank() - 1];
  const int64_t rows = t.num_elements();
  if (rows * classes != p.num_elements())
    fail(Code::kInvalidArgument, owner, ": ", rows, " labels for predictions ", predictions.description());
  const float *pv = p.data<float>();
  const int64_t *tv = t.data<int64_t>();
  std::vector<float> out(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t target = tv[i];
    if (target < 0 || target >= classes) continue;
    const float *row = pv + i * classes;
    const float score = row[target];
    int64_t higher = 0;
    bool finite = true;
    for (int64_t j = 0; j < classes; ++j) {
      finite = finite && std::isfinite(row[j]);
      higher += row[j] > score;
    }
    out[static_cast<size_t>(i)] = finite && higher < k ? 1.0f : 0.0f;
  }
  return Tensor::from_data(DType::kFloat32, t.shape(), out.data(), out.size() * sizeof(float));
}

// Keras's argmax over the last axis (its TensorFlow backend): in floating scores -0.0 ranks just
// below +0.0 (Keras replaces it by -tiny), so [-0.0, 0.0] picks index 1.
Tensor keras_argmax(const Tensor &x) {
  if (!is_floating(x.dtype())) return ops::argmax(x, -1);
  auto lifted = [](const Tensor &v, auto zero) {
    using T = decltype(zero);
    std::vector<T> d(v.data<T>(), v.data<T>() + v.num_elements());
    for (T &e : d)
      if (e == 0 && std::signbit(e)) e = -std::numeric_limits<T>::min();
    return ops::argmax(Tensor::from_data(v.dtype(), v.shape(), d.data(), d.size() * sizeof(T)), -1);
  };
  if (x.dtype() == DType::kFloat64) return lifted(x, 0.0);
  return lifted(ops::cast(x, DType::kFloat32), 0.0f);
}

// ------------------------------------------------------------------ Reduce

// Keras's Reduce: Mean (total, count) and Sum (total).
class Reduce : public Metric {
 public:
  Reduce(const std::string &class_name, ConfigReader &r, const std::string &default_name, bool mean)
      : Metric(class_name, r, default_name), mean_(mean) {
    total_ = add_variable("total");
    if (mean_) count_ = add_variable("count");
  }

 protected:
  // Keras's reduce_to_samplewise_values, then the sums.
  void update_values_impl(const Tensor &values, const Tensor &sample_weight) override {
    if (!values.defined()) fail(Code::kInvalidArgument, name(), ": values are undefined");
    if (values.dtype() == DType::kBool || !(is_floating(values.dtype()) || is_integer(values.dtype())))
      fail(Code::kInvalidArgument, name(), ": values are ", values.description(), "; expected numbers");
    auto reduce = [this](const Tensor &x, const std::vector<int64_t> &axes) {
      return mean_ ? ops::mean(x, axes) : ops::sum(x, axes);
    };
    Tensor v = f32(values);
    Tensor w;
    if (sample_weight.defined()) {
      w = f32(sample_weight);
      squeeze_or_expand_to_same_rank(v, w);
      const int wr = w.shape().rank(), vr = v.shape().rank();
      if (vr > wr) v = reduce(v, axes_from(wr, vr));
      try {
        w = ops::broadcast_to(w, v.shape());
      } catch (const Error &) {
        fail(Code::kInvalidArgument, name(), ": sample_weight ", sample_weight.description(),
             " does not broadcast to the values ", values.description());
      }
      v = ops::mul(v, w);
      if (wr > 1) w = reduce(w, axes_from(1, wr));
    }
    if (v.shape().rank() > 1) v = reduce(v, axes_from(1, v.shape().rank()));
    total_->assign_add(ops::sum(v));
    if (!mean_) return;
    Tensor n;
    if (w.defined())
      n = ops::sum(w);
    else
      n = Tensor::scalar(static_cast<float>(v.shape().rank() >= 1 ? v.shape()[0] : 1));
    count_->assign_add(n);
  }
  Tensor result_impl() const override {
    if (!mean_) return total_->peek();
    const float total = total_->peek().data<float>()[0], count = count_->peek().data<float>()[0];
    return Tensor::scalar(count == 0.0f ? 0.0f : total / count);  // divide_no_nan
  }

 private:
  bool mean_;
  VariablePtr total_, count_;
};

class ValuesMetric final : public Reduce {
 public:
  ValuesMetric(const std::string &class_name, ConfigReader &r, bool mean)
      : Reduce(class_name, r, mean ? "mean" : "sum", mean) {
    r.finish();
  }
  bool takes_values() const override { return true; }
};

// ------------------------------------------------------ MeanMetricWrapper

using MetricFn = std::function<Tensor(const Tensor &, const Tensor &)>;

// Keras's MeanMetricWrapper: a Mean of fn(y_true, y_pred). fn is a metric function (with its
// options in the config) or a loss's per-sample values (config "fn": the loss class,
// "fn_config": its config).
class MeanMetricWrapper : public Reduce {
 public:
  MeanMetricWrapper(const std::string &class_name, ConfigReader &r, const std::string &default_name,
                    MetricFn fn)
      : Reduce(class_name, r, default_name, true), fn_(std::move(fn)) {}
  MeanMetricWrapper(ConfigReader &r, LossPtr loss, const std::string &default_name)
      : Reduce("MeanMetricWrapper", r, default_name, true), loss_(std::move(loss)) {}

  // The values this metric averages, without its state: fn's, or the loss's per-sample values.
  Tensor values(const Tensor &y_true, const Tensor &y_pred) const {
    detail::require_pair(y_true, y_pred, name());
    return loss_ ? loss_->values(y_true, y_pred) : fn_(y_true, y_pred);
  }

 protected:
  void update_impl(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight) override {
    detail::require_pair(y_true, y_pred, name());
    Tensor values_mask;
    Tensor values = loss_ ? loss_->values(y_true, y_pred, &values_mask) : fn_(y_true, y_pred);
    // Keras: y_pred's own mask (a masking layer's output carries it) weighs the values
    // (apply_mask, reduction "sum"); the values' own mask (ignore_class) weighs them only when
    // there are weights by then (reduce_to_samplewise_values), so without any, ignored entries
    // count as zeros in the mean.
    Tensor w = sample_weight;
    const auto weigh = [&w](const Tensor &mask) {
      Tensor m = f32(mask);
      if (!w.defined()) {
        w = m;
        return;
      }
      w = f32(w);
      squeeze_or_expand_to_same_rank(m, w);
      w = ops::mul(w, m);
    };
    if (y_pred.keras_mask().defined()) weigh(y_pred.keras_mask());
    if (values_mask.defined() && w.defined()) weigh(values_mask);
    update_values_impl(values, w);
  }
  void add_config(Config &c) const override {
    if (!loss_) return;
    Config lc = loss_->get_config();
    // A function's wrapper: the function's name, as Keras's MeanMetricWrapper(fn) config.
    if (loss_->class_name() == kLossFunctionWrapper && lc.has("fn")) {
      c.set("fn", lc.get_string("fn"));
      return;
    }
    c.set("fn", loss_->class_name());
    lc.erase("reduction");
    lc.erase("name");
    c.set("fn_config", lc);
  }
  MetricFn fn_;
  LossPtr loss_;
};

// A MeanMetricWrapper class with options written to its config: the mean of fn's values, or of
// a loss's per-sample values (the Keras metric classes that wrap a loss function).
class FnMetric final : public MeanMetricWrapper {
 public:
  FnMetric(const std::string &class_name, ConfigReader &r, const std::string &default_name, MetricFn fn,
           Config extra, LossPtr loss = nullptr)
      : MeanMetricWrapper(class_name, r, default_name, std::move(fn)), extra_(std::move(extra)) {
    loss_ = std::move(loss);
    r.finish();
  }

 protected:
  void add_config(Config &c) const override { c.update(extra_); }

 private:
  Config extra_;
};

class RootMeanSquaredError final : public Reduce {
 public:
  explicit RootMeanSquaredError(ConfigReader &r)
      : Reduce("RootMeanSquaredError", r, "root_mean_squared_error", true) {
    r.finish();
  }

 protected:
  void update_impl(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight) override {
    detail::require_pair(y_true, y_pred, name());
    Tensor t = f32(y_true), p = f32(y_pred);
    squeeze_or_expand_to_same_rank(t, p);
    if (t.shape() != p.shape())
      fail(Code::kInvalidArgument, name(), ": y_true ", y_true.description(), " and y_pred ",
           y_pred.description(), " have different shapes");
    update_values_impl(ops::square(ops::sub(p, t)), sample_weight);
  }
  Tensor result_impl() const override { return ops::sqrt(Reduce::result_impl()); }
};

// Keras 3's correlation metric functions (metrics/correlation_metrics.py): one coefficient per
// sample along `axes`, in Keras's formulas (population variances, as TF's reduce_variance), in
// y_pred's dtype when it is float64 and in float32 otherwise.
Tensor centered(const Tensor &x, const std::vector<int64_t> &axes) {
  return ops::sub(x, ops::mean(x, axes, true));
}
Tensor variance(const Tensor &x, const std::vector<int64_t> &axes) {
  return ops::mean(ops::square(centered(x, axes)), axes, true);
}

enum class Correlation { kPearson, kConcordance };

MetricFn correlation(Correlation kind, std::vector<int64_t> axes, std::string owner) {
  return [kind, axes, owner](const Tensor &y_true, const Tensor &y_pred) {
    const DType dtype = y_pred.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
    Tensor t = ops::cast(y_true, dtype), p = ops::cast(y_pred, dtype);
    squeeze_or_expand_to_same_rank(t, p);
    if (t.shape() != p.shape())
      fail(Code::kInvalidArgument, owner, ": y_true ", y_true.description(), " and y_pred ",
           y_pred.description(), " have different shapes");
    const int rank = p.rank();
    for (int64_t a : axes)
      if (a < -rank || a >= rank)
        fail(Code::kInvalidArgument, owner, ": axis ", a, " is out of range for y_pred ",
             y_pred.description());
    if (kind == Correlation::kPearson) {
      Tensor tn = centered(t, axes), pn = centered(p, axes);
      tn = ops::div(tn, ops::sqrt(variance(tn, axes)));
      pn = ops::div(pn, ops::sqrt(variance(pn, axes)));
      return ops::mean(ops::mul(tn, pn), axes);
    }
    // Keras's expression as written: its covariance centres y_true on y_pred's mean, which has
    // the same mean along the axis as centring it on its own.
    const Tensor tm = ops::mean(t, axes, true), pm = ops::mean(p, axes, true);
    const Tensor tv = variance(ops::sub(t, tm), axes), pv = variance(ops::sub(p, pm), axes);
    const Tensor covar = ops::mul(ops::sub(t, pm), ops::sub(p, pm));
    const Tensor norm = ops::add(ops::add(tv, pv), ops::square(ops::sub(tm, pm)));
    // Keras's backend.epsilon(), the Python float 1e-7, in the computing dtype.
    const Tensor two = ops::fill(Shape{}, 2.0, dtype), eps = ops::fill(Shape{}, 1e-7, dtype);
    return ops::mean(ops::div(ops::mul(two, covar), ops::add(norm, eps)), axes);
  };
}

// axis: an int (Keras's default -1), a list of them, or null (every axis: one coefficient for the
// whole batch), written back as given.
std::vector<int64_t> axis_option(ConfigReader &r, Config &extra) {
  if (r.config().has("axis") && r.config().is_null("axis")) {
    r.accept({"axis"});
    extra.set_null("axis");
    return {};  // ops::mean over no axes given: all of them
  }
  if (r.has("axis") && r.config().type("axis") == Config::Type::kList) {
    std::vector<int64_t> axes = r.get_int_list("axis", {});
    if (axes.empty())
      fail(Code::kInvalidArgument, r.owner(), ": axis is an empty list; expected an int or ints");
    extra.set("axis", axes);
    return axes;
  }
  const int64_t axis = r.get_int("axis", -1);
  extra.set("axis", axis);
  return {axis};
}

// ------------------------------------------------------------------ registry

using Factory = std::function<MetricPtr(ConfigReader &)>;

template <typename F>
Factory fn_metric(const char *cls, const char *default_name, F make_fn) {
  return [cls, default_name, make_fn](ConfigReader &r) -> MetricPtr {
    Config extra;
    MetricFn fn = make_fn(r, extra);
    return std::make_shared<FnMetric>(cls, r, default_name, std::move(fn), std::move(extra));
  };
}

MetricFn plain(Tensor (*f)(const Tensor &, const Tensor &)) { return f; }

// c's value under key alone: a config of that one key (empty when c has none).
Config only_key(const Config &c, const std::string &key) {
  Config one = c;
  for (const std::string &other : c.keys())
    if (other != key) one.erase(other);
  return one;
}

// A Keras metric class that is the mean of a loss function's values: the options named in keys
// go to the loss (reduction "none"), and the metric's config holds them as the loss read them.
Factory loss_metric(const char *cls, const char *loss_class, const char *default_name,
                    std::vector<std::string> keys = {}) {
  return [=](ConfigReader &r) -> MetricPtr {
    Config lc, extra;
    for (const std::string &key : keys)
      if (r.has(key)) lc.update(only_key(r.config(), key));
    lc.set("reduction", "none");
    LossPtr loss = create_loss(loss_class, lc);
    const Config read = loss->get_config();
    for (const std::string &key : keys) extra.update(only_key(read, key));
    return std::make_shared<FnMetric>(cls, r, default_name, nullptr, std::move(extra), std::move(loss));
  };
}

// The loss-backed wrapper from a config {"fn": loss name, "fn_config": {...}}.
MetricPtr make_loss_wrapper(ConfigReader &r, const std::string &fn, const std::string &default_name) {
  Config lc = r.get_optional_config("fn_config").value_or(Config());
  lc.set("reduction", "none");
  LossPtr loss = create_loss(fn, lc);
  auto m = std::make_shared<MeanMetricWrapper>(r, loss, default_name.empty() ? loss->name() : default_name);
  r.finish();
  return m;
}

const std::map<std::string, Factory> &factories() {
  static const std::map<std::string, Factory> f = {
      {"Mean", [](ConfigReader &r) { return std::make_shared<ValuesMetric>("Mean", r, true); }},
      {"Sum", [](ConfigReader &r) { return std::make_shared<ValuesMetric>("Sum", r, false); }},
      {"Accuracy",
       fn_metric("Accuracy", "accuracy", [](ConfigReader &, Config &) { return plain(accuracy); })},
      {"BinaryAccuracy", fn_metric("BinaryAccuracy", "binary_accuracy",
                                   [](ConfigReader &r, Config &c) -> MetricFn {
                                     const double t = r.get_float("threshold", 0.5);
                                     c.set("threshold", t);
                                     return [t](const Tensor &a, const Tensor &b) {
                                       return binary_accuracy(a, b, t);
                                     };
                                   })},
      {"CategoricalAccuracy",
       fn_metric("CategoricalAccuracy", "categorical_accuracy",
                 [](ConfigReader &, Config &) { return plain(categorical_accuracy); })},
      {"SparseCategoricalAccuracy",
       fn_metric("SparseCategoricalAccuracy", "sparse_categorical_accuracy",
                 [](ConfigReader &, Config &) { return plain(sparse_categorical_accuracy); })},
      {"TopKCategoricalAccuracy", fn_metric("TopKCategoricalAccuracy", "top_k_categorical_accuracy",
                                            [](ConfigReader &r, Config &c) -> MetricFn {
                                              const int64_t k = r.get_int("k", 5);
                                              c.set("k", k);
                                              return [k](const Tensor &a, const Tensor &b) {
                                                return top_k_categorical_accuracy(a, b, k);
                                              };
                                            })},
      {"SparseTopKCategoricalAccuracy",
       fn_metric("SparseTopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy",
                 [](ConfigReader &r, Config &c) -> MetricFn {
                   const int64_t k = r.get_int("k", 5);
                   const bool sorted_ids = r.get_bool("from_sorted_ids", false);
                   c.set("k", k);
                   if (sorted_ids) c.set("from_sorted_ids", true);  // Keras writes it only when set
                   return [k, sorted_ids](const Tensor &a, const Tensor &b) {
                     return sparse_top_k_categorical_accuracy(a, b, k, sorted_ids);
                   };
                 })},
      {"MeanSquaredError", loss_metric("MeanSquaredError", "MeanSquaredError", "mean_squared_error")},
      {"RootMeanSquaredError", [](ConfigReader &r) { return std::make_shared<RootMeanSquaredError>(r); }},
      {"MeanAbsoluteError", loss_metric("MeanAbsoluteError", "MeanAbsoluteError", "mean_absolute_error")},
      {"MeanAbsolutePercentageError",
       loss_metric("MeanAbsolutePercentageError", "MeanAbsolutePercentageError",
                   "mean_absolute_percentage_error")},
      {"MeanSquaredLogarithmicError",
       loss_metric("MeanSquaredLogarithmicError", "MeanSquaredLogarithmicError",
                   "mean_squared_logarithmic_error")},
      {"LogCoshError", loss_metric("LogCoshError", "LogCosh", "logcosh")},
      {"Poisson", loss_metric("Poisson", "Poisson", "poisson")},
      {"KLDivergence", loss_metric("KLDivergence", "KLDivergence", "kl_divergence")},
      {"Hinge", loss_metric("Hinge", "Hinge", "hinge")},
      {"SquaredHinge", loss_metric("SquaredHinge", "SquaredHinge", "squared_hinge")},
      {"CategoricalHinge", loss_metric("CategoricalHinge", "CategoricalHinge", "categorical_hinge")},
      {"BinaryCrossentropy", loss_metric("BinaryCrossentropy", "BinaryCrossentropy", "binary_crossentropy",
                                         {"from_logits", "label_smoothing"})},
      {"CategoricalCrossentropy",
       loss_metric("CategoricalCrossentropy", "CategoricalCrossentropy", "categorical_crossentropy",
                   {"from_logits", "label_smoothing", "axis"})},
      {"SparseCategoricalCrossentropy",
       loss_metric("SparseCategoricalCrossentropy", "SparseCategoricalCrossentropy",
                   "sparse_categorical_crossentropy", {"from_logits", "ignore_class", "axis"})},
      {"CosineSimilarity", fn_metric("CosineSimilarity", "cosine_similarity",
                                     [](ConfigReader &r, Config &c) -> MetricFn {
                                       // Keras's metric is the similarity; the loss is its negative.
                                       const int64_t axis = r.get_int("axis", -1);
                                       c.set("axis", axis);
                                       Config lc;
                                       lc.set("axis", axis).set("reduction", "none");
                                       LossPtr l = create_loss("CosineSimilarity", lc);
                                       return [l](const Tensor &a, const Tensor &b) {
                                         return ops::neg(l->call(a, b));
                                       };
                                     })},
      {"MeanMetricWrapper",
       [](ConfigReader &r) {
         const std::string fn = r.get_string("fn", "");
         if (fn.empty()) fail(Code::kInvalidArgument, "MeanMetricWrapper: config needs 'fn' (a loss name)");
         return make_loss_wrapper(r, fn, "");
       }},
      {"Precision", detail::make_precision},
      {"Recall", detail::make_recall},
      {"AUC", detail::make_auc},
      {"IoU", detail::make_iou},
      {"MeanIoU", detail::make_mean_iou},
      {"BinaryIoU", detail::make_binary_iou},
      {"OneHotIoU", detail::make_one_hot_iou},
      {"OneHotMeanIoU", detail::make_one_hot_mean_iou},
      {"FBetaScore", detail::make_fbeta_score},
      {"F1Score", detail::make_f1_score},
      {"TruePositives", detail::make_true_positives},
      {"FalsePositives", detail::make_false_positives},
      {"TrueNegatives", detail::make_true_negatives},
      {"FalseNegatives", detail::make_false_negatives},
      {"SensitivityAtSpecificity", detail::make_sensitivity_at_specificity},
      {"SpecificityAtSensitivity", detail::make_specificity_at_sensitivity},
      {"PrecisionAtRecall", detail::make_precision_at_recall},
      {"RecallAtPrecision", detail::make_recall_at_precision},
      {"R2Score", detail::make_r2_score},
      {"PearsonCorrelation", fn_metric("PearsonCorrelation", "pearson_correlation",
                                       [](ConfigReader &r, Config &c) {
                                         return correlation(Correlation::kPearson, axis_option(r, c),
                                                            "PearsonCorrelation");
                                       })},
      {"ConcordanceCorrelation", fn_metric("ConcordanceCorrelation", "concordance_correlation",
                                           [](ConfigReader &r, Config &c) {
                                             return correlation(Correlation::kConcordance, axis_option(r, c),
                                                                "ConcordanceCorrelation");
                                           })},
  };
  return f;
}

// Keras's metric function names and aliases: a metric class named as the alias.
const std::map<std::string, std::string> &aliases() {
  static const std::map<std::string, std::string> a = {
      {"accuracy", "Accuracy"},
      {"acc", "Accuracy"},
      {"binary_accuracy", "BinaryAccuracy"},
      {"categorical_accuracy", "CategoricalAccuracy"},
      {"sparse_categorical_accuracy", "SparseCategoricalAccuracy"},
      {"top_k_categorical_accuracy", "TopKCategoricalAccuracy"},
      {"sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy"},
      {"mean_squared_error", "MeanSquaredError"},
      {"mse", "MeanSquaredError"},
      {"MSE", "MeanSquaredError"},
      {"root_mean_squared_error", "RootMeanSquaredError"},
      {"precision", "Precision"},
      {"recall", "Recall"},
      {"auc", "AUC"},
      {"f1_score", "F1Score"},  // Keras registers each class's snake_case name too
      {"f_beta_score", "FBetaScore"},
      {"mean_absolute_error", "MeanAbsoluteError"},
      {"mean_absolute_percentage_error", "MeanAbsolutePercentageError"},
      {"mean_squared_logarithmic_error", "MeanSquaredLogarithmicError"},
      {"log_cosh_error", "LogCoshError"},
      {"poisson", "Poisson"},
      {"kl_divergence", "KLDivergence"},
      {"hinge", "Hinge"},
      {"squared_hinge", "SquaredHinge"},
      {"categorical_hinge", "CategoricalHinge"},
      {"cosine_similarity", "CosineSimilarity"},
      {"binary_crossentropy", "BinaryCrossentropy"},
      {"bce", "BinaryCrossentropy"},
      {"BCE", "BinaryCrossentropy"},
      {"categorical_crossentropy", "CategoricalCrossentropy"},
      {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"},
      {"true_positives", "TruePositives"},
      {"false_positives", "FalsePositives"},
      {"true_negatives", "TrueNegatives"},
      {"false_negatives", "FalseNegatives"},
      {"sensitivity_at_specificity", "SensitivityAtSpecificity"},
      {"specificity_at_sensitivity", "SpecificityAtSensitivity"},
      {"precision_at_recall", "PrecisionAtRecall"},
      {"recall_at_precision", "RecallAtPrecision"},
      {"r2_score", "R2Score"},
      {"pearson_correlation", "PearsonCorrelation"},
      {"concordance_correlation", "ConcordanceCorrelation"},
  };
  return a;
}

MetricPtr make_named(const std::string &cls, const std::string &name, const Config &config) {
  Config c = config;
  if (!name.empty() && (!c.has("name") || c.is_null("name"))) c.set("name", name);
  ConfigReader r(c, cls);
  return factories().at(cls)(r);
}

}  // namespace

// ------------------------------------------------------------------ Metric

namespace detail {
void require_pair(const Tensor &y_true, const Tensor &y_pred, const std::string &owner) {
  if (!y_true.defined()) fail(Code::kInvalidArgument, owner, ": y_true is undefined");
  if (!y_pred.defined()) fail(Code::kInvalidArgument, owner, ": y_pred is undefined");
  if (y_pred.dtype() == DType::kBool)
    fail(Code::kInvalidArgument, owner, ": y_pred is ", y_pred.description(), "; expected numbers");
}
}  // namespace detail

Metric::Metric(std::string class_name, ConfigReader &r, const std::string &default_name)
    : Metric(std::move(class_name), r, default_name, false) {}

Metric::Metric(std::string class_name, ConfigReader &r, const std::string &default_name, bool integer_state)
    : class_name_(std::move(class_name)),
      name_(r.get_string("name", default_name)),
      id_(next_metric_id.fetch_add(1)) {
  const std::string dtype = r.get_string("dtype", integer_state ? "int64" : "float32");
  if (dtype == "float32") return;
  if (integer_state && (dtype == "int" || dtype == "int64" || dtype == "int32")) {
    state_dtype_ = dtype == "int32" ? DType::kInt32 : DType::kInt64;
    return;
  }
  fail(Code::kInvalidArgument, class_name_, ": dtype '", dtype, "' is not supported; ",
       integer_state ? "expected int (int64), int32 or float32" : "metrics keep float32 state");
}

VariablePtr Metric::add_variable(const std::string &name, const Shape &shape, DType dtype) {
  auto v = std::make_shared<autodiff::Variable>(name_ + "/" + name, ops::zeros(shape, dtype), false);
  variables_.push_back(v);
  return v;
}

void Metric::update_state(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight) {
  if (takes_values())
    fail(Code::kInvalidArgument, class_name_, " '", name_,
         "' takes values (update_state(values, sample_weight)), not y_true and y_pred");
  std::lock_guard<std::mutex> lock(mu_);
  update_impl(y_true, y_pred, sample_weight);
}

void Metric::update_state_values(const Tensor &values, const Tensor &sample_weight) {
  if (!takes_values())
    fail(Code::kInvalidArgument, class_name_, " '", name_,
         "' takes y_true and y_pred (update_state(y_true, y_pred, sample_weight)), not values");
  std::lock_guard<std::mutex> lock(mu_);
  update_values_impl(values, sample_weight);
}

void Metric::update_impl(const Tensor &, const Tensor &, const Tensor &) {}

void Metric::update_values_impl(const Tensor &, const Tensor &) {}

Tensor Metric::result() const {
  std::lock_guard<std::mutex> lock(mu_);
  return result_impl();
}

std::vector<VariablePtr> Metric::variables() const {
  std::lock_guard<std::mutex> lock(mu_);
  return variables_;
}

void Metric::reset_state() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const VariablePtr &v : variables_) v->assign(ops::zeros(v->shape(), v->dtype()));
}

Config Metric::get_config() const {
  Config c;
  c.set("name", name_).set("dtype", dtype_name(state_dtype_));
  add_config(c);
  return c;
}

// ------------------------------------------------------------------ functions

Tensor accuracy(const Tensor &y_true, const Tensor &y_pred) {
  detail::require_pair(y_true, y_pred, "accuracy");
  Tensor t = y_true.dtype() == y_pred.dtype() ? y_true : ops::cast(y_true, y_pred.dtype()), p = y_pred;
  squeeze_or_expand_to_same_rank(t, p);
  if (t.shape() != p.shape())
    fail(Code::kInvalidArgument, "accuracy: y_true ", y_true.description(), " and y_pred ",
         y_pred.description(), " have different shapes");
  return f32(ops::equal(t, p));  // elementwise, as Keras 3's (the Mean weighs and averages)
}

Tensor binary_accuracy(const Tensor &y_true, const Tensor &y_pred, double threshold) {
  detail::require_pair(y_true, y_pred, "binary_accuracy");
  Tensor p = f32(y_pred), t = f32(y_true);
  squeeze_or_expand_to_same_rank(t, p);
  if (t.shape() != p.shape())
    fail(Code::kInvalidArgument, "binary_accuracy: y_true ", y_true.description(), " and y_pred ",
         y_pred.description(), " have different shapes");
  return f32(ops::equal(t, f32(ops::greater(p, Tensor::scalar(static_cast<float>(threshold))))));
}

namespace {
// The rest of categorical_accuracy / sparse_categorical_accuracy once y_true holds class ids.
Tensor class_matches(Tensor labels, const Tensor &y_pred, bool squeeze_any, const char *owner) {
  detail::require_pair(labels, y_pred, owner);
  if (y_pred.shape().rank() == 0)
    fail(Code::kInvalidArgument, owner, ": y_pred is a scalar; expected [..., classes]");
  const Shape original = labels.shape();
  bool reshape = false;
  if (labels.shape().rank() == y_pred.shape().rank() &&
      (squeeze_any || labels.shape()[labels.shape().rank() - 1] == 1)) {
    labels = ops::squeeze(labels, {-1});
    reshape = true;
  }
  std::vector<int64_t> want = y_pred.shape().to_vector();
  want.pop_back();
  if (labels.shape().to_vector() != want)
    fail(Code::kInvalidArgument, owner, ": y_true of shape ", original.to_string(), " does not match y_pred ",
         y_pred.description());
  Tensor pred = keras_argmax(y_pred);
  if (pred.dtype() != labels.dtype()) pred = ops::cast(pred, labels.dtype());
  Tensor m = f32(ops::equal(labels, pred));
  if (reshape) m = ops::reshape(m, original.to_vector());
  return m;
}
}  // namespace

Tensor categorical_accuracy(const Tensor &y_true, const Tensor &y_pred) {
  detail::require_pair(y_true, y_pred, "categorical_accuracy");
  if (y_true.shape() != y_pred.shape())
    fail(Code::kInvalidArgument, "categorical_accuracy: y_true ", y_true.description(), " and y_pred ",
         y_pred.description(), " have different shapes");
  if (y_true.shape().rank() == 0) fail(Code::kInvalidArgument, "categorical_accuracy: y_true is a scalar");
  return class_matches(keras_argmax(y_true), y_pred, false, "categorical_accuracy");
}

Tensor sparse_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred) {
  Tensor m = class_matches(y_true, y_pred, false, "sparse_categorical_accuracy");
  if (m.shape().rank() > 1 && m.shape()[m.shape().rank() - 1] == 1) m = ops::squeeze(m, {-1});
  return m;
}

namespace {
// The top-k accuracies' k and y_pred: k >= 0 and y_pred [..., last] (last: what its last axis holds).
void require_top_k(int64_t k, const Tensor &y_pred, const char *owner, const char *last) {
  if (k < 0) fail(Code::kInvalidArgument, owner, ": k is ", k, "; expected >= 0 (0: every row misses)");
  if (y_pred.shape().rank() < 1)
    fail(Code::kInvalidArgument, owner, ": y_pred is a scalar; expected [..., ", last, "]");
}

Tensor top_k_matches(const Tensor &labels, const Tensor &y_pred, int64_t k, const char *owner) {
  require_top_k(k, y_pred, owner, "classes");
  Tensor l = labels;
  if (is_floating(l.dtype())) l = ops::cast(l, DType::kInt64);
  return in_top_k(l, y_pred, k, owner);
}
}  // namespace

Tensor top_k_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred, int64_t k) {
  detail::require_pair(y_true, y_pred, "top_k_categorical_accuracy");
  if (y_true.shape() != y_pred.shape() || y_true.shape().rank() == 0)
    fail(Code::kInvalidArgument, "top_k_categorical_accuracy: y_true ", y_true.description(), " and y_pred ",
         y_pred.description(), " must have one shape [..., classes]");
  return top_k_matches(keras_argmax(y_true), y_pred, k, "top_k_categorical_accuracy");
}

Tensor sparse_top_k_categorical_accuracy(const Tensor &y_true, const Tensor &y_pred, int64_t k,
                                         bool from_sorted_ids) {
  const char *owner = "sparse_top_k_categorical_accuracy";
  detail::require_pair(y_true, y_pred, owner);
  if (!from_sorted_ids) return top_k_matches(y_true, y_pred, k, owner);
  // Keras's from_sorted_ids: y_pred holds each row's category ids, best first; a label matches
  // when it equals one of the first k (compared in y_pred's dtype).
  require_top_k(k, y_pred, owner, "ids");
  const int64_t n = y_pred.shape()[y_pred.shape().rank() - 1];
  const int64_t rows = y_true.num_elements();
  if (rows * n != y_pred.num_elements())
    fail(Code::kInvalidArgument, owner, ": y_true ", y_true.description(),
         " does not match the rows of y_pred ", y_pred.description());
  const Tensor ids = ops::reshape(y_pred, {rows, n});
  const Tensor first = ops::slice(ids, {0, 0}, {rows, std::min(k, n)});
  const Tensor labels = ops::reshape(ops::cast(y_true, y_pred.dtype()), {rows, 1});
  const Tensor hit = ops::reduce_any(ops::equal(first, labels), {1});
  return ops::reshape(f32(hit), y_true.shape().to_vector());
}

// ------------------------------------------------------------------ registry

std::vector<std::string> registered_metrics() {
  std::vector<std::string> names;
  for (const auto &[n, f] : factories()) names.push_back(n);
  for (const auto &[n, c] : aliases()) names.push_back(n);
  return names;
}

MetricPtr create_metric(const std::string &name, const Config &config) {
  if (factories().count(name)) return make_named(name, "", config);
  auto it = aliases().find(name);
  if (it != aliases().end()) return make_named(it->second, name, config);
  // A loss function name: a Mean of the loss's per-sample values, named as given.
  if (loss_registered(name)) {
    Config c = config;
    if (!c.has("name") || c.is_null("name")) c.set("name", name);
    ConfigReader r(c, "MeanMetricWrapper");
    return make_loss_wrapper(r, name, name);
  }
  std::vector<std::string> known = registered_metrics();
  for (const std::string &n : registered_losses())
    if (!factories().count(n) && !aliases().count(n)) known.push_back(n);
  fail(Code::kNotFound, "unknown metric '", name, "'; known: ", join_names(known));
}

Tensor metric_function(const std::string &name, const Tensor &y_true, const Tensor &y_pred,
                       const Config &config) {
  // The functions of Keras's own metric classes, whose aliases() name them (the classes' other
  // keys, name and dtype, are not the functions' arguments).
  static const std::vector<std::string> own = {// alphabetical, as the error lists them
                                               "accuracy",
                                               "binary_accuracy",
                                               "categorical_accuracy",
                                               "concordance_correlation",
                                               "pearson_correlation",
                                               "sparse_categorical_accuracy",
                                               "sparse_top_k_categorical_accuracy",
                                               "top_k_categorical_accuracy"};
  for (const char *key : {"name", "dtype", "reduction"})
    if (config.has(key))
      fail(Code::kInvalidArgument, "metric function '", name, "': '", key,
           "' is not an argument of a function; pass the function's own keyword arguments");
  if (std::find(own.begin(), own.end(), name) != own.end()) {
    const MetricPtr m = make_named(aliases().at(name), name, config);
    return static_cast<const MeanMetricWrapper &>(*m).values(y_true, y_pred);
  }
  if (loss_registered(name)) {
    Config c = config;
    c.set("reduction", "none");
    const LossPtr loss = create_loss(name, c);
    detail::require_pair(y_true, y_pred, name);
    return loss->values(y_true, y_pred);
  }
  fail(Code::kNotFound, "unknown metric function '", name, "'; known: ", join_names(own),
       ", or a loss function's name (mean_squared_error, binary_crossentropy, huber, ...)");
}

MetricPtr mean_metric_wrapper(const LossPtr &loss, const std::string &name) {
  if (!loss) fail(Code::kInvalidArgument, "MeanMetricWrapper: the loss is null");
  Config c;
  if (!name.empty()) c.set("name", name);
  ConfigReader r(c, "MeanMetricWrapper");
  // The loss's own object computes the per-sample values (its reduction is not used).
  auto m = std::make_shared<MeanMetricWrapper>(r, loss, loss->name());
  r.finish();
  return m;
}

MetricPtr resolve_metric(const std::string &identifier, const Loss *loss,
                         const std::vector<int64_t> &y_true_shape, const std::vector<int64_t> &y_pred_shape) {
  const bool acc = identifier == "accuracy" || identifier == "acc";
  const bool ce = identifier == "crossentropy" || identifier == "ce";
  if (!acc && !ce) return create_metric(identifier);
  enum { kBinary, kSparse, kCategorical, kUnknown } kind = kUnknown;
  if (loss) {
    const std::string &cls = loss->class_name();
    if (cls == "BinaryCrossentropy") kind = kBinary;
    if (cls == "SparseCategoricalCrossentropy") kind = kSparse;
    if (cls == "CategoricalCrossentropy") kind = kCategorical;
  }
  if (kind == kUnknown) {
    const size_t rt = y_true_shape.size(), rp = y_pred_shape.size();
    const int64_t last_t = rt ? y_true_shape[rt - 1] : -1, last_p = rp ? y_pred_shape[rp - 1] : -1;
    if (last_p == 1)
      kind = kBinary;
    else if (rt < rp || (rt == rp && last_t == 1))
      kind = kSparse;
    else
      kind = kCategorical;
  }
  static const char *const acc_classes[] = {"BinaryAccuracy", "SparseCategoricalAccuracy",
                                            "CategoricalAccuracy"};
  // Keras: a MeanMetricWrapper of the crossentropy function.
  static const char *const ce_losses[] = {"BinaryCrossentropy", "SparseCategoricalCrossentropy",
                                          "CategoricalCrossentropy"};
  Config c;
  c.set("name", identifier);
  if (acc) return create_metric(acc_classes[kind], c);
  c.set("fn", ce_losses[kind]);
  return create_metric("MeanMetricWrapper", c);
}

Config serialize_metric(const Metric &metric) { return serialized(metric.class_name(), metric.get_config()); }

MetricPtr deserialize_metric(const Config &serialized) {
  const ClassAndConfig c = read_serialized(serialized, "metric");
  return create_metric(c.class_name, c.config);
}

}  // namespace kiln::train
