// The thresholded confusion-matrix metrics: Precision, Recall and AUC, as Keras 3's
// metrics_utils.update_confusion_matrix_variables counts them (a prediction is positive when it
// is strictly above a threshold; a label is positive when nonzero) and as its AUC sums them.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "ops/ops.h"
#include "train/metrics_internal.h"

namespace kiln::train::detail {

namespace {

constexpr float kNegInf = -1e10f;  // Keras's metrics_utils.NEG_INF

struct Counts {
  std::vector<double> tp, fp, tn, fn;
};

// Keras's is_evenly_distributed_thresholds: at least 3, and np.allclose to i / (n - 1).
bool evenly_distributed(const std::vector<float> &t) {
  const size_t n = t.size();
  if (n < 3) return false;
  for (size_t i = 0; i < n; ++i) {
    const double want = static_cast<double>(static_cast<float>(i) / static_cast<float>(n - 1));
    if (!(std::fabs(t[i] - want) <= kEpsilon + 1e-5 * std::fabs(want))) return false;
  }
  return true;
}

// How one batch is counted (Keras's update_confusion_matrix_variables' arguments).
struct ConfusionSpec {
  const std::vector<float> &thresholds;
  std::optional<int64_t> top_k, class_id;  // top_k: the k largest of each row stay, the others
                                           // become NEG_INF; class_id: that column only
  bool bucketed = false;      // evenly distributed thresholds: Keras's bucketed path (see confusion)
  bool multi_label = false;   // y_pred [N, L]: counts per threshold and label, [T, L] row-major
  // Without multi_label only: a weight per column of the last axis (broadcast as [1, L]), in
  // float32 as Keras casts it.
  const std::vector<double> *label_weights = nullptr;
};

// Counts one batch for every threshold (and with multi_label, every label).
Counts confusion(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight,
                 const ConfusionSpec &spec, const std::string &owner) {
  const std::vector<float> &thresholds = spec.thresholds;
  const std::optional<int64_t> top_k = spec.top_k, class_id = spec.class_id;
  require_pair(y_true, y_pred, owner);
  Tensor p = f32(y_pred);
  Tensor t = f32(y_true);
  squeeze_or_expand_to_same_rank(p, t);
  Tensor w;
  if (sample_weight.defined()) {
    w = f32(sample_weight);
    // As Keras's update_confusion_matrix_variables: the weight gets a trailing axis, kept only
    // when y_true has it too, so one weight per sample weighs every column of [N, C] labels
    // (a weight of higher rank than that, which Keras refuses, is matched to y_pred as before).
    Tensor e = ops::expand_dims(w, -1);
    if (e.rank() == t.rank() + 1 && e.shape()[e.rank() - 1] == 1) e = ops::squeeze(e, {-1});
    if (e.rank() <= p.rank())
      w = e;
    else
      squeeze_or_expand_to_same_rank(p, w);
  }
  if (p.shape() != t.shape())
    fail(Code::kInvalidArgument, owner, ": y_true ", y_true.description(), " and y_pred ",
         y_pred.description(), " have different shapes");
  const int rank = p.shape().rank();
  if (top_k) {
    if (rank < 1) fail(Code::kInvalidArgument, owner, ": top_k needs y_pred with a class axis");
    const int64_t classes = p.shape()[rank - 1];
    if (*top_k < 1 || *top_k > classes)
      fail(Code::kInvalidArgument, owner, ": top_k is ", *top_k, "; expected 1 to ", classes,
           " (y_pred's classes)");
    Tensor idx = ops::cast(ops::top_k(p, *top_k).indices, DType::kInt64);
    std::vector<float> pv = host_values<float>(p);
    std::vector<char> keep(pv.size(), 0);
    const int64_t *iv = idx.data<int64_t>();
    const int64_t rows = p.num_elements() / classes;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < *top_k; ++j) keep[static_cast<size_t>(r * classes + iv[r * *top_k + j])] = 1;
    for (size_t i = 0; i < pv.size(); ++i)
      if (!keep[i]) pv[i] = kNegInf;
    p = Tensor::from_data(DType::kFloat32, p.shape(), pv.data(), pv.size() * sizeof(float));
  }
  if (w.defined()) {
    try {
      w = ops::broadcast_to(w, p.shape());
    } catch (const Error &) {
      fail(Code::kInvalidArgument, owner, ": sample_weight ", sample_weight.description(),
           " does not broadcast to y_pred ", y_pred.description());
    }
  }
  if (class_id) {
    if (rank < 2)
      fail(Code::kInvalidArgument, owner, ": class_id is given, so y_pred ", y_pred.description(),
           " must have rank 2 or more, (samples, classes)");
    const int64_t classes = p.shape()[rank - 1];
    if (*class_id < -classes || *class_id >= classes)
      fail(Code::kInvalidArgument, owner, ": class_id ", *class_id, " is out of range for ", classes,
           " classes");
    const int64_t id = *class_id < 0 ? *class_id + classes : *class_id;  // Python's index from the end
    auto column = [&](const Tensor &x) {
      std::vector<int64_t> begin(static_cast<size_t>(rank), 0), size(static_cast<size_t>(rank), -1);
      begin.back() = id;
      size.back() = 1;
      return ops::slice(x, begin, size);
    };
    p = column(p);
    t = column(t);
    if (w.defined()) w = column(w);
  }
  // Columns of the last axis: the labels counted apart (multi_label) or weighed by label_weights.
  const size_t columns = p.rank() >= 2 ? static_cast<size_t>(p.shape()[p.rank() - 1]) : 1;
  if (spec.multi_label && p.rank() != 2)
    fail(Code::kInvalidArgument, owner, ": y_pred ", y_pred.description(),
         " must have rank 2 (samples, labels) when multi_label is true");
  const std::vector<double> *lw = spec.label_weights;
  if (lw && !(p.rank() >= 2 && (lw->size() == columns || lw->size() == 1)))
    fail(Code::kInvalidArgument, owner, ": label_weights has ", lw->size(), " values; y_pred ",
         y_pred.description(), " needs one per column of its last axis");
  const std::vector<float> pv = host_values<float>(p);
  const std::vector<float> tv = host_values<float>(t);
  const std::vector<float> wv = w.defined() ? host_values<float>(w) : std::vector<float>();
  const size_t n = thresholds.size(), labels = spec.multi_label ? columns : 1;
  Counts c{std::vector<double>(n * labels), std::vector<double>(n * labels), std::vector<double>(n * labels),
           std::vector<double>(n * labels)};
  // Keras's bucketed path for evenly spaced thresholds: a prediction, clipped to [0, 1], counts as
  // above the thresholds up to its bucket int32(ceil(p * (n - 1)) - 1) in float32 (at least 0 when
  // the end thresholds carry an epsilon), whatever the thresholds' own values; a NaN's bucket is
  // INT_MIN, which TF's segment sum drops. The negatives are the label totals less the positives,
  // from y * w and (1 - y) * w (so an infinite weight makes NaN where Keras's does).
  const bool with_epsilon = spec.bucketed && (thresholds.front() < 0.0f || thresholds.back() > 1.0f);
  std::vector<double> total_true(labels), total_false(labels);
  for (size_t i = 0; i < pv.size(); ++i) {
    const bool label = tv[i] != 0.0f;
    float weight = wv.empty() ? 1.0f : wv[i];
    if (lw) weight *= static_cast<float>((*lw)[lw->size() == 1 ? 0 : i % columns]);
    const size_t column = spec.multi_label ? i % columns : 0;
    if (!spec.bucketed) {
      for (size_t k = 0; k < n; ++k) {
        const bool pred = pv[i] > thresholds[k];
        (label ? (pred ? c.tp : c.fn) : (pred ? c.fp : c.tn))[k * labels + column] += weight;
      }
      continue;
    }
    const float y = label ? 1.0f : 0.0f, true_part = y * weight, false_part = (1.0f - y) * weight;
    total_true[column] += true_part;
    total_false[column] += false_part;
    const float q = pv[i] > 1.0f ? 1.0f : (pv[i] < 0.0f ? 0.0f : pv[i]);  // NaN stays NaN
    float bucket = std::ceil(q * static_cast<float>(n - 1)) - 1.0f;
    if (with_epsilon && bucket < 0.0f) bucket = 0.0f;
    if (!(bucket >= 0.0f)) continue;                                // below every threshold, or NaN
    const size_t b = std::min(static_cast<size_t>(bucket), n - 1);  // float32 rounding past 2^24 thresholds
    c.tp[b * labels + column] += true_part;                         // bucket sums here; the suffix sums below
    c.fp[b * labels + column] += false_part;
  }
  if (spec.bucketed) {
    for (size_t l = 0; l < labels; ++l) {
      for (size_t k = n - 1; k-- > 0;) {
        c.tp[k * labels + l] += c.tp[(k + 1) * labels + l];
        c.fp[k * labels + l] += c.fp[(k + 1) * labels + l];
      }
      for (size_t k = 0; k < n; ++k) {
        c.fn[k * labels + l] = total_true[l] - c.tp[k * labels + l];
        c.tn[k * labels + l] = total_false[l] - c.fp[k * labels + l];
      }
    }
  }
  return c;
}

void add_to(const VariablePtr &v, const std::vector<double> &d) {
  std::vector<float> f(d.begin(), d.end());
  v->assign_add(Tensor::from_data(DType::kFloat32, v->shape(), f.data(), f.size() * sizeof(float)));
}

double divide_no_nan(double a, double b) { return b == 0 ? 0.0 : a / b; }

// One threshold's result as a scalar, several as a vector (Keras's metrics with `thresholds`).
Tensor scalar_or_vector(const std::vector<float> &v) {
  return v.size() == 1 ? Tensor::scalar(v[0]) : vector_tensor(v);
}

// Keras's n evenly spaced thresholds: first, (i + 1) / (n - 1) for i < n - 2, then last (n >= 2).
std::vector<float> evenly_spaced(int64_t n, float first, float last) {
  std::vector<float> t{first};
  for (int64_t i = 0; i < n - 2; ++i) t.push_back(static_cast<float>((i + 1) * 1.0 / double(n - 1)));
  t.push_back(last);
  return t;
}

// The four confusion counts kept as state (AUC and the ...At... metrics), under Keras's names
// and in its order: made by add_counts, added to by accumulate, read by read_counts.
class ConfusionState : public Metric {
 protected:
  using Metric::Metric;
  struct Values {
    std::vector<float> tp, fp, tn, fn;
  };
  void add_counts(const Shape &s) {
    tp_ = add_variable("true_positives", s);
    fp_ = add_variable("false_positives", s);
    tn_ = add_variable("true_negatives", s);
    fn_ = add_variable("false_negatives", s);
  }
  bool has_counts() const { return tp_ != nullptr; }
  void accumulate(const Counts &c) {
    add_to(tp_, c.tp);
    add_to(fp_, c.fp);
    add_to(tn_, c.tn);
    add_to(fn_, c.fn);
  }
  Values read_counts() const {
    return {host_values<float>(tp_->peek()), host_values<float>(fp_->peek()), host_values<float>(tn_->peek()),
            host_values<float>(fn_->peek())};
  }

 private:
  VariablePtr tp_, fp_, tn_, fn_;
};

std::vector<float> parse_thresholds(ConfigReader &r, float default_threshold, Config &raw) {
  std::vector<float> t;
  if (!r.has("thresholds")) {
    raw.set_null("thresholds");
    t.push_back(default_threshold);
    return t;
  }
  const Config &c = r.config();
  std::vector<double> d;
  if (c.type("thresholds") == Config::Type::kList) {
    d = c.get_float_list("thresholds");
    raw.set("thresholds", d);
  } else {
    d.push_back(c.get_float("thresholds"));
    raw.set("thresholds", d[0]);
  }
  if (d.empty()) fail(Code::kInvalidArgument, r.owner(), ": thresholds is empty");
  for (double x : d) {
    if (!(x >= 0 && x <= 1)) fail(Code::kInvalidArgument, r.owner(), ": threshold ", x, " is not in [0, 1]");
    t.push_back(static_cast<float>(x));
  }
  return t;
}

std::optional<int64_t> optional_int(ConfigReader &r, const char *key, Config &raw) {
  std::optional<int64_t> v;
  if (r.has(key)) v = r.get_int(key);
  raw.set(key, v);
  return v;
}

// Precision (true_positives, false_positives) and Recall (true_positives, false_negatives).
class PrecisionRecall final : public Metric {
 public:
  PrecisionRecall(ConfigReader &r, bool precision)
      : Metric(precision ? "Precision" : "Recall", r, precision ? "precision" : "recall"),
        precision_(precision) {
    top_k_ = optional_int(r, "top_k", raw_);
    thresholds_ = parse_thresholds(r, top_k_ ? kNegInf : 0.5f, raw_);
    class_id_ = optional_int(r, "class_id", raw_);
    evenly_ = evenly_distributed(thresholds_);
    r.finish();
    tp_ = add_variable("true_positives", Shape{static_cast<int64_t>(thresholds_.size())});
    other_ = add_variable(precision ? "false_positives" : "false_negatives",
                          Shape{static_cast<int64_t>(thresholds_.size())});
  }

 protected:
  void update_impl(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight) override {
    Counts c = confusion(y_true, y_pred, sample_weight, {thresholds_, top_k_, class_id_, evenly_}, name());
    add_to(tp_, c.tp);
    add_to(other_, precision_ ? c.fp : c.fn);
  }
  Tensor result_impl() const override {
    const std::vector<float> tp = host_values<float>(tp_->peek()), o = host_values<float>(other_->peek());
    std::vector<float> r(tp.size());
    for (size_t i = 0; i < tp.size(); ++i)
      r[i] = static_cast<float>(divide_no_nan(tp[i], double(tp[i]) + o[i]));
    return scalar_or_vector(r);
  }
  void add_config(Config &c) const override { c.update(raw_); }

 private:
  bool precision_, evenly_ = false;
  Config raw_;
  std::vector<float> thresholds_;
  std::optional<int64_t> top_k_, class_id_;
  VariablePtr tp_, other_;
};

// Keras's TruePositives, FalsePositives, TrueNegatives and FalseNegatives: one (weighted) count per
// threshold in `accumulator`; the result is that count, or the vector of them for several thresholds.
enum class Cell { kTruePositives, kFalsePositives, kTrueNegatives, kFalseNegatives };

class ConditionCount final : public Metric {
 public:
  ConditionCount(ConfigReader &r, Cell cell, const char *class_name, const char *default_name)
      : Metric(class_name, r, default_name), cell_(cell) {
    thresholds_ = parse_thresholds(r, 0.5f, raw_);
    evenly_ = evenly_distributed(thresholds_);
    r.finish();
    accumulator_ = add_variable("accumulator", Shape{static_cast<int64_t>(thresholds_.size())});
  }

 protected:
  void update_impl(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight) override {
    const Counts c =
        confusion(y_true, y_pred, sample_weight, {thresholds_, std::nullopt, std::nullopt, evenly_}, name());
    switch (cell_) {
      case Cell::kTruePositives:
        return add_to(accumulator_, c.tp);
      case Cell::kFalsePositives:
        return add_to(accumulator_, c.fp);
      case Cell::kTrueNegatives:
        return add_to(accumulator_, c.tn);
      case Cell::kFalseNegatives:
        return add_to(accumulator_, c.fn);
    }
  }
  Tensor result_impl() const override { return scalar_or_vector(host_values<float>(accumulator_->peek())); }
  void add_config(Config &c) const override { c.update(raw_); }

 private:
  Cell cell_;
  bool evenly_ = false;
  Config raw_;
  std::vector<float> thresholds_;
  VariablePtr accumulator_;
};

// Keras's SensitivitySpecificityBase and its four classes: confusion counts at num_thresholds
// thresholds evenly spaced over [0, 1] (one, 0.5, when num_thresholds is 1), and as the result the
// largest `dependent` rate among the thresholds whose `constrained` rate is at least the given
// value (0 when none is). The rates are float32 divide_no_nan of the counts, as Keras's.
enum class Rate { kSensitivity, kSpecificity, kPrecision, kRecall };

struct AtConstraintKind {
  const char *class_name, *default_name, *key;  // key: the constraint's config key
  Rate constrained, dependent;
};

constexpr AtConstraintKind kSensitivityAtSpecificity{"SensitivityAtSpecificity", "sensitivity_at_specificity",
                                                     "specificity", Rate::kSpecificity, Rate::kSensitivity};
constexpr AtConstraintKind kSpecificityAtSensitivity{"SpecificityAtSensitivity", "specificity_at_sensitivity",
                                                     "sensitivity", Rate::kSensitivity, Rate::kSpecificity};
constexpr AtConstraintKind kPrecisionAtRecall{"PrecisionAtRecall", "precision_at_recall", "recall",
                                              Rate::kRecall, Rate::kPrecision};
constexpr AtConstraintKind kRecallAtPrecision{"RecallAtPrecision", "recall_at_precision", "precision",
                                              Rate::kPrecision, Rate::kRecall};

// Each confusion variable holds at most this many counts (256 MiB of float32; four of them).
constexpr int64_t kMaxConfusionCounts = int64_t{1} << 26;

class AtConstraint final : public ConfusionState {
 public:
  AtConstraint(ConfigReader &r, const AtConstraintKind &kind)
      : ConfusionState(kind.class_name, r, kind.default_name), kind_(kind) {
    if (!r.has(kind.key))
      fail(Code::kInvalidArgument, kind.class_name, ": config needs '", kind.key, "', a number in [0, 1]");
    value_ = r.get_float(kind.key, 0.0);
    if (!(value_ >= 0 && value_ <= 1))
      fail(Code::kInvalidArgument, kind.class_name, ": ", kind.key, " is ", value_,
           "; expected a number in [0, 1]");
    num_thresholds_ = r.get_int("num_thresholds", 200);
    if (num_thresholds_ <= 0 || num_thresholds_ > kMaxConfusionCounts)
      fail(Code::kInvalidArgument, kind.class_name, ": num_thresholds is ", num_thresholds_,
           "; expected 1 to ", kMaxConfusionCounts);
    if (r.has("class_id")) class_id_ = r.get_int("class_id");
    r.finish();
    if (num_thresholds_ == 1) {
      thresholds_ = {0.5f};
    } else {  // as Keras: 0, ..., 1, counted by its bucketed path
      thresholds_ = evenly_spaced(num_thresholds_, 0.0f, 1.0f);
      evenly_ = true;
    }
    add_counts(Shape{static_cast<int64_t>(thresholds_.size())});
  }

 protected:
  void update_impl(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight) override {
    accumulate(
        confusion(y_true, y_pred, sample_weight, {thresholds_, std::nullopt, class_id_, evenly_}, name()));
  }
  Tensor result_impl() const override {
    const Values counts = read_counts();
    const std::vector<float> &tp = counts.tp, &fp = counts.fp, &tn = counts.tn, &fn = counts.fn;
    auto ratio = [](float a, float b) { return b == 0.0f ? 0.0f : a / b; };  // float32, as Keras
    auto rate = [&](Rate which, size_t i) {
      switch (which) {
        case Rate::kSensitivity:
        case Rate::kRecall:
          return ratio(tp[i], tp[i] + fn[i]);
        case Rate::kSpecificity:
          return ratio(tn[i], tn[i] + fp[i]);
        case Rate::kPrecision:
          return ratio(tp[i], tp[i] + fp[i]);
      }
      return 0.0f;
    };
    const float value = static_cast<float>(value_);
    float best = 0.0f;  // Keras's max(where(feasible, dependent, 0), initial=0); a NaN propagates
    for (size_t i = 0; i < tp.size(); ++i) {
      const float d = rate(kind_.constrained, i) >= value ? rate(kind_.dependent, i) : 0.0f;
      if (std::isnan(d)) return Tensor::scalar(d);
      best = std::max(best, d);
    }
    return Tensor::scalar(best);
  }
  void add_config(Config &c) const override {
    c.set("class_id", class_id_).set("num_thresholds", num_thresholds_).set(kind_.key, value_);
  }

 private:
  const AtConstraintKind &kind_;
  double value_ = 0;
  int64_t num_thresholds_ = 200;
  std::optional<int64_t> class_id_;
  bool evenly_ = false;
  std::vector<float> thresholds_;
};

// Keras's AUC: confusion counts at num_thresholds thresholds, then a Riemann sum of the ROC, PR or PR-gain
// curve, or for PR with interpolation, Davis & Goadrich's interpolation. With multi_label the
// counts are kept per label ([thresholds, labels]) and the result is the mean of the labels' AUCs,
// or their label_weights-weighted mean; without it, label_weights weigh the columns of y_pred's
// last axis in the counts.
class AUC final : public ConfusionState {
 public:
  explicit AUC(ConfigReader &r) : ConfusionState("AUC", r, "auc") {
    int64_t n = r.get_int("num_thresholds", 200);
    curve_ = r.get_string("curve", "ROC");
    for (char &ch : curve_) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (curve_ != "ROC" && curve_ != "PR" && curve_ != "PRGAIN")
      fail(Code::kInvalidArgument, "AUC: curve '", curve_, "' is not valid; expected ROC, PR or PRGAIN");
    summation_ = r.get_string("summation_method", "interpolation");
    for (char &ch : summation_) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (summation_ != "interpolation" && summation_ != "minoring" && summation_ != "majoring")
      fail(Code::kInvalidArgument, "AUC: summation_method '", summation_,
           "' is not valid; expected interpolation, minoring or majoring");
    from_logits_ = r.get_bool("from_logits", false);
    multi_label_ = r.get_bool("multi_label", false);
    if (r.has("num_labels")) {
      num_labels_ = r.get_int("num_labels");
      if (!multi_label_)
        fail(Code::kInvalidArgument, "AUC: num_labels is needed only when multi_label is true");
      if (*num_labels_ < 1)
        fail(Code::kInvalidArgument, "AUC: num_labels is ", *num_labels_, "; expected >= 1 or null");
    }
    if (r.has("label_weights")) {
      label_weights_ = r.config().get_float_list("label_weights");
      if (label_weights_->empty()) fail(Code::kInvalidArgument, "AUC: label_weights is empty");
      for (double x : *label_weights_)
        if (!(x >= 0) || !std::isfinite(x))
          fail(Code::kInvalidArgument, "AUC: label weight ", x, " is not a finite number >= 0");
      if (num_labels_) check_label_weights(*num_labels_);
    }
    const float eps = kEpsilon;
    if (r.has("thresholds")) {
      std::vector<double> given = r.config().get_float_list("thresholds");
      for (double t : given)
        if (!(t >= 0 && t <= 1)) fail(Code::kInvalidArgument, "AUC: threshold ", t, " is not in [0, 1]");
      std::sort(given.begin(), given.end());  // as Keras, which also writes them sorted
      explicit_thresholds_ = given;
      std::vector<float> with_ends{0.0f};
      thresholds_.push_back(0.0f - eps);
      for (double t : given) {
        thresholds_.push_back(static_cast<float>(t));
        with_ends.push_back(static_cast<float>(t));
      }
      thresholds_.push_back(1.0f + eps);
      with_ends.push_back(1.0f);
      evenly_ = evenly_distributed(with_ends);
    } else {
      if (n <= 1) fail(Code::kInvalidArgument, "AUC: num_thresholds is ", n, "; expected > 1");
      if (n > kMaxConfusionCounts)
        fail(Code::kInvalidArgument, "AUC: num_thresholds is ", n, "; expected at most ", kMaxConfusionCounts,
             " (each of the four confusion counts holds one float32 per threshold)");
      thresholds_ = evenly_spaced(n, 0.0f - eps, 1.0f + eps);
    }
    r.finish();
    if (!multi_label_)
      build(0);
    else if (num_labels_)
      build(*num_labels_);  // otherwise at the first update, from y_pred's labels (as Keras)
  }

 protected:
  void update_impl(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight) override {
    require_pair(y_true, y_pred, name());
    if (multi_label_) {
      if (y_pred.rank() != 2)
        fail(Code::kInvalidArgument, name(), ": y_pred ", y_pred.description(),
             " must have rank 2 (samples, labels) when multi_label is true");
      const int64_t labels = y_pred.shape()[1];
      if (labels < 1)
        fail(Code::kInvalidArgument, name(), ": y_pred ", y_pred.description(), " has no labels");
      if (!has_counts()) {
        check_label_weights(labels);
        build(labels);
      } else if (labels != labels_) {
        fail(Code::kInvalidArgument, name(), ": y_pred ", y_pred.description(), " has ", labels,
             " labels; the metric counts ", labels_,
             num_labels_ ? " (num_labels)" : " (from its first update)");
      }
    }
    Tensor p = f32(y_pred);
    if (from_logits_) p = ops::sigmoid(p);
    ConfusionSpec spec{thresholds_, std::nullopt, std::nullopt, evenly_};
    spec.multi_label = multi_label_;
    if (label_weights_ && !multi_label_) spec.label_weights = &*label_weights_;
    accumulate(confusion(y_true, p, sample_weight, spec, name()));
  }
  Tensor result_impl() const override {
    if (!has_counts()) return Tensor::scalar(0.0f);  // multi_label before its first update
    const Values counts = read_counts();
    const std::vector<float> &tp = counts.tp, &fp = counts.fp, &tn = counts.tn, &fn = counts.fn;
    const size_t labels = multi_label_ ? static_cast<size_t>(labels_) : 1, n = tp.size() / labels;
    std::vector<double> by_label(labels);
    for (size_t l = 0; l < labels; ++l) {
      auto at = [&](const std::vector<float> &v, size_t k) { return static_cast<double>(v[k * labels + l]); };
      double auc = 0;
      if (curve_ == "PR" && summation_ == "interpolation") {
        for (size_t i = 0; i + 1 < n; ++i) {
          const double dtp = at(tp, i) - at(tp, i + 1);
          const double p0 = at(tp, i) + at(fp, i), p1 = at(tp, i + 1) + at(fp, i + 1);
          const double slope = divide_no_nan(dtp, std::max(p0 - p1, 0.0));
          const double intercept = at(tp, i + 1) - slope * p1;
          const double ratio = p0 > 0 && p1 > 0 ? divide_no_nan(p0, std::max(p1, 0.0)) : 1.0;
          auc += divide_no_nan(slope * (dtp + intercept * std::log(ratio)),
                               std::max(at(tp, i + 1) + at(fn, i + 1), 0.0));
        }
      } else {
        std::vector<double> x(n), y(n);
        for (size_t i = 0; i < n; ++i) {
          const double recall = divide_no_nan(at(tp, i), at(tp, i) + at(fn, i));
          if (curve_ == "ROC") {
            x[i] = divide_no_nan(at(fp, i), at(fp, i) + at(tn, i));
            y[i] = recall;
          } else if (curve_ == "PR") {
            x[i] = recall;
            y[i] = divide_no_nan(at(tp, i), at(tp, i) + at(fp, i));
          } else {
            // Keras's PRGAIN (Flach & Kull): gains scaled by P / N; no true positives gives recall
            // gain 0 and precision gain 1, and a negative recall gain counts as 0.
            const double scale = divide_no_nan(at(tp, i) + at(fn, i), at(tn, i) + at(fp, i));
            const bool none = at(tp, i) == 0;
            x[i] = none ? 0.0 : std::max(1.0 - scale * divide_no_nan(at(fn, i), at(tp, i)), 0.0);
            y[i] = none ? 1.0 : 1.0 - scale * divide_no_nan(at(fp, i), at(tp, i));
          }
        }
        for (size_t i = 0; i + 1 < n; ++i) {
          double h;
          if (summation_ == "interpolation")
            h = (y[i] + y[i + 1]) / 2.0;
          else if (summation_ == "minoring")
            h = std::min(y[i], y[i + 1]);
          else
            h = std::max(y[i], y[i + 1]);
          auc += (x[i] - x[i + 1]) * h;
        }
      }
      by_label[l] = auc;
    }
    if (!multi_label_) return Tensor::scalar(static_cast<float>(by_label[0]));
    double total = 0, weights = 0;
    for (size_t l = 0; l < labels; ++l) {
      const double w = !label_weights_ ? 1.0 : (*label_weights_)[label_weights_->size() == 1 ? 0 : l];
      total += by_label[l] * w;
      weights += w;
    }
    // Keras: the labels' mean, or divide_no_nan of the weighted sum by the weights' sum.
    return Tensor::scalar(
        static_cast<float>(label_weights_ ? divide_no_nan(total, weights) : total / weights));
  }
  void add_config(Config &c) const override {
    c.set("num_thresholds", static_cast<int64_t>(thresholds_.size()));
    c.set("curve", curve_).set("summation_method", summation_);
    c.set("thresholds", explicit_thresholds_).set("multi_label", multi_label_).set("num_labels", num_labels_);
    c.set("label_weights", label_weights_).set("from_logits", from_logits_);
  }

 private:
  // The state: [thresholds], or [thresholds, labels] with multi_label.
  void build(int64_t labels) {
    const int64_t t = static_cast<int64_t>(thresholds_.size());
    if (t > kMaxConfusionCounts / std::max<int64_t>(labels, 1))  // explicit thresholds too
      fail(Code::kInvalidArgument, name(), ": ", t, " thresholds",
           labels > 0 ? " x " + std::to_string(labels) + " labels" : std::string(), " is more than ",
           kMaxConfusionCounts,
           " float32 counts in each of the four confusion variables; expected fewer thresholds or labels");
    labels_ = labels;
    add_counts(multi_label_ ? Shape{t, labels} : Shape{t});
  }
  // With multi_label, label_weights weigh the labels' AUCs: one per label (or one for all).
  void check_label_weights(int64_t labels) const {
    if (multi_label_ && label_weights_ && label_weights_->size() != 1 &&
        static_cast<int64_t>(label_weights_->size()) != labels)
      fail(Code::kInvalidArgument, name(), ": label_weights has ", label_weights_->size(),
           " values; expected one per label (", labels, ")");
  }

  std::string curve_, summation_;
  bool from_logits_ = false, evenly_ = true, multi_label_ = false;
  std::optional<int64_t> num_labels_;
  int64_t labels_ = 0;
  std::optional<std::vector<double>> explicit_thresholds_, label_weights_;
  std::vector<float> thresholds_;
};

}  // namespace

MetricPtr make_precision(ConfigReader &r) { return std::make_shared<PrecisionRecall>(r, true); }
MetricPtr make_recall(ConfigReader &r) { return std::make_shared<PrecisionRecall>(r, false); }
MetricPtr make_auc(ConfigReader &r) { return std::make_shared<AUC>(r); }
MetricPtr make_true_positives(ConfigReader &r) {
  return std::make_shared<ConditionCount>(r, Cell::kTruePositives, "TruePositives", "true_positives");
}
MetricPtr make_false_positives(ConfigReader &r) {
  return std::make_shared<ConditionCount>(r, Cell::kFalsePositives, "FalsePositives", "false_positives");
}
MetricPtr make_true_negatives(ConfigReader &r) {
  return std::make_shared<ConditionCount>(r, Cell::kTrueNegatives, "TrueNegatives", "true_negatives");
}
MetricPtr make_false_negatives(ConfigReader &r) {
  return std::make_shared<ConditionCount>(r, Cell::kFalseNegatives, "FalseNegatives", "false_negatives");
}
MetricPtr make_sensitivity_at_specificity(ConfigReader &r) {
  return std::make_shared<AtConstraint>(r, kSensitivityAtSpecificity);
}
MetricPtr make_specificity_at_sensitivity(ConfigReader &r) {
  return std::make_shared<AtConstraint>(r, kSpecificityAtSensitivity);
}
MetricPtr make_precision_at_recall(ConfigReader &r) {
  return std::make_shared<AtConstraint>(r, kPrecisionAtRecall);
}
MetricPtr make_recall_at_precision(ConfigReader &r) {
  return std::make_shared<AtConstraint>(r, kRecallAtPrecision);
}

}  // namespace kiln::train::detail
