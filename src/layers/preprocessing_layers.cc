// Keras's Discretization preprocessing layer: values bucketed by bin boundaries, given or computed
// by adapt() as Keras computes them (its approximate-quantile summaries, in float32 and float64 as
// Keras's NumPy code does, so an adapted layer gets Keras's boundaries).
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>

#include "core/error.h"
#include "layers/adapt.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

// ------------------------------------------------------------------ quantile summaries

// Keras's summary of data: sorted values, each with a weight (the count of values it stands for),
// both float32 as Keras's arrays.
struct Summary {
  std::vector<float> values, weights;
};

// numpy.interp(x, xp, fp) for ascending xp: fp[0] left of xp, fp[last] right of it, fp[j] on a
// point, else the line through the neighbours (from the right one when that gives NaN).
double interp(double x, const std::vector<double> &xp, const std::vector<double> &fp) {
  const auto m = static_cast<int64_t>(xp.size());
  const int64_t j = std::upper_bound(xp.begin(), xp.end(), x) - xp.begin() - 1;
  if (j < 0) return fp[0];
  if (j >= m - 1) return fp[size_t(m - 1)];
  const auto u = size_t(j);
  if (xp[u] == x) return fp[u];
  const double slope = (fp[u + 1] - fp[u]) / (xp[u + 1] - xp[u]);
  double y = slope * (x - xp[u]) + fp[u];
  if (std::isnan(y)) {
    y = slope * (x - xp[u + 1]) + fp[u + 1];
    if (std::isnan(y) && fp[u] == fp[u + 1]) y = fp[u];
  }
  return y;
}

// Keras's compress_summary: at most about 1 / epsilon points, placed at the cumulative-weight
// fractions epsilon, 2 epsilon, ..., 1 (numpy.arange's points), values and cumulative weights
// interpolated in float64 and stored back in float32. A summary of fewer points is kept.
Summary compress(const Summary &s, double epsilon) {
  const size_t m = s.values.size();
  if (static_cast<double>(m) * epsilon < 1.0) return s;
  std::vector<double> cum(m), fractions(m), values(m);
  float total = 0.0f;  // NumPy's float32 cumsum: one float32 sum after another
  for (size_t i = 0; i < m; ++i) {
    total += s.weights[i];
    cum[i] = total;
    values[i] = s.values[i];
  }
  for (size_t i = 0; i < m; ++i) fractions[i] = static_cast<float>(cum[i]) / total;
  const auto points = static_cast<size_t>(std::ceil(1.0 / epsilon));
  Summary out;
  double before = 0.0;
  for (size_t i = 0; i < points; ++i) {
    const double p = epsilon + static_cast<double>(i) * epsilon;
    const double c = interp(p, fractions, cum);
    out.values.push_back(static_cast<float>(interp(p, fractions, values)));
    out.weights.push_back(static_cast<float>(c - before));
    before = c;
  }
  return out;
}

// NumPy's sort order: ascending, NaN last (a summary of -inf and +inf interpolates NaN).
bool numpy_less(float a, float b) { return a < b || (!std::isnan(a) && std::isnan(b)); }

// Keras's summarize of one batch: its sorted values, every step-th from the (step - 1)-th, where
// step = max(count * epsilon, 1) (not rounded) is each one's weight.
Summary summarize(std::vector<float> v, double epsilon) {
  std::sort(v.begin(), v.end(), numpy_less);
  const double step = std::max(static_cast<double>(v.size()) / (1.0 / epsilon), 1.0);
  const auto first = static_cast<size_t>(step - 1.0), stride = static_cast<size_t>(step);
  Summary s;
  for (size_t i = first; i < v.size(); i += stride) {
    s.values.push_back(v[i]);
    s.weights.push_back(static_cast<float>(step));
  }
  return s;
}

// Keras's merge_summaries(a, b): both summaries' points, sorted by value, then compressed. Equal
// values keep their order, a's first, as tf.keras's tf.argsort orders them; Keras 3's NumPy
// argsort leaves their order to the NumPy version and CPU, and the weights' order moves the
// interpolated points.
Summary merge(const Summary &a, const Summary &b, double epsilon) {
  Summary all = a;
  all.values.insert(all.values.end(), b.values.begin(), b.values.end());
  all.weights.insert(all.weights.end(), b.weights.begin(), b.weights.end());
  std::vector<size_t> order(all.values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t i, size_t j) { return numpy_less(all.values[i], all.values[j]); });
  Summary sorted;
  for (size_t i : order) {
    sorted.values.push_back(all.values[i]);
    sorted.weights.push_back(all.weights[i]);
  }
  return compress(sorted, epsilon);
}

// ------------------------------------------------------------------ Discretization

// keras.layers.Discretization(bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
// sparse=False): each value's bin, i for boundaries[i - 1] <= x < boundaries[i] (0 below the first,
// len(boundaries) from the last; NaN in the last, as TF's Bucketize), as int32 ("int") or encoded
// over len(boundaries) + 1 bins as CategoryEncoding encodes ("one_hot", "multi_hot", "count").
// Values are compared in float32, as Keras converts its inputs. With num_bins, adapt() computes the
// boundaries from data; the config then holds both, as Keras's does after adapt.
class Discretization final : public Layer, public Adaptable {
 public:
  explicit Discretization(const Config &config) : Discretization(ConfigReader(config, "Discretization")) {}

 private:
  using Bounds = std::vector<double>;

  explicit Discretization(ConfigReader &&r) : Layer("Discretization", r) {
    if (r.has("bin_boundaries"))
      set_bounds(std::make_shared<const Bounds>(r.config().get_float_list("bin_boundaries")));
    if (r.has("num_bins")) {
      num_bins_ = r.get_int("num_bins");
      if (*num_bins_ < 0)
        fail(Code::kInvalidArgument, "Discretization: num_bins must be >= 0; got ", *num_bins_);
    }
    if (!num_bins_ && !bounds_)
      fail(Code::kInvalidArgument,
           "Discretization: set either num_bins (and adapt() the layer) or bin_boundaries");
    epsilon_ = r.get_float("epsilon", 0.01);
    if (!(epsilon_ > 0.0) || !std::isfinite(epsilon_))
      fail(Code::kInvalidArgument, "Discretization: epsilon must be a finite number > 0; got ", epsilon_);
    mode_ = r.get_string("output_mode", "int");
    if (mode_ != "int" && mode_ != "one_hot" && mode_ != "multi_hot" && mode_ != "count")
      fail(Code::kInvalidArgument, "Discretization: output_mode '", mode_,
           "' is not one of 'int', 'one_hot', 'multi_hot', 'count'");
    if (r.get_bool("sparse", false)) {
      if (mode_ == "int")
        fail(Code::kInvalidArgument,
             "Discretization: sparse=True may only be used with output_mode 'one_hot', 'multi_hot' or "
             "'count'; "
             "got output_mode 'int'");
      fail(Code::kUnimplemented, "Discretization: sparse=True (sparse outputs) is not supported");
    }
    r.finish();
    set_autocast(false);  // compared in float32 whatever the policy, as Keras's input_dtype
  }

  // TF's Bucketize needs ascending boundaries; NaN has no place among them.
  void set_bounds(std::shared_ptr<const Bounds> b) {
    for (size_t i = 0; i < b->size(); ++i) {
      if (std::isnan((*b)[i]))
        fail(Code::kInvalidArgument, "Discretization: bin_boundaries[", i, "] is NaN; expected numbers");
      if (i > 0 && static_cast<float>((*b)[i]) < static_cast<float>((*b)[i - 1]))
        fail(Code::kInvalidArgument, "Discretization: bin_boundaries must be sorted ascending; got ",
             (*b)[i - 1], " before ", (*b)[i]);
    }
    std::lock_guard<std::mutex> lock(state_mu_);
    bounds_ = std::move(b);
  }
  std::shared_ptr<const Bounds> bounds() const {
    std::lock_guard<std::mutex> lock(state_mu_);
    return bounds_;
  }

  static void check_numbers(const Layer &l, const Tensor &x, const char *what) {
    if (!is_floating(x.dtype()) && !is_integer(x.dtype()) && x.dtype() != DType::kBool)
      l.bad_input(what, " is ", x.description(), "; expected numbers");
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = single_input(*this, inputs);
    check_numbers(*this, x, "the input");
    const std::shared_ptr<const Bounds> b = bounds();
    if (!b)
      fail_layer(Code::kFailedPrecondition,
                 "no bin boundaries yet: pass bin_boundaries when making the layer, or call adapt() before "
                 "calling it");
    std::vector<float> edges(b->begin(), b->end());
    const Tensor xf = ops::cast(x, DType::kFloat32);
    const float *v = xf.data<float>();
    const bool ints = mode_ == "int";
    Tensor bins = Tensor::empty(ints ? DType::kInt32 : DType::kInt64, x.shape());
    int32_t *bins32 = ints ? bins.mutable_data<int32_t>() : nullptr;
    int64_t *bins64 = ints ? nullptr : bins.mutable_data<int64_t>();
    const int64_t n = x.num_elements();
    for (int64_t i = 0; i < n; ++i) {
      const auto k = std::upper_bound(edges.begin(), edges.end(), v[i]) - edges.begin();
      if (ints)
        bins32[i] = static_cast<int32_t>(k);
      else
        bins64[i] = k;
    }
    if (ints) return {bins};
    return {encode_categorical(bins, mode_, depth(b.get()), compute_dtype())};
  }

  int64_t depth(const Bounds *b) const {
    return b ? static_cast<int64_t>(b->size()) + 1 : num_bins_.value_or(0);
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    if (mode_ == "int") return {s};
    return {encoded_shape(s, mode_, depth(bounds().get()))};
  }

  // Keras's adapt: one summary of every batch's values (as float32), merged batch by batch, then
  // num_bins - 1 boundaries at the quantiles (fewer when the summary has fewer than num_bins points).
  void adapt(const NextBatchFn &next) override {
    std::lock_guard<std::mutex> lock(adapt_mu_);
    if (!num_bins_)
      fail_layer(
          Code::kFailedPrecondition,
          "cannot adapt a Discretization layer made with bin_boundaries; make it with num_bins instead");
    if (*num_bins_ == 0) bad_input("adapt() needs num_bins >= 1; got num_bins=0");
    Summary summary;
    Tensor batch;
    bool any = false;
    while (next(&batch)) {
      any = true;
      check_numbers(*this, batch, "an adapt() batch");
      const Tensor f = ops::cast(batch, DType::kFloat32);
      std::vector<float> values(f.data<float>(), f.data<float>() + f.num_elements());
      for (size_t i = 0; i < values.size(); ++i)
        if (std::isnan(values[i]))
          bad_input("adapt() data holds NaN at flat index ", i, " of a batch of shape ",
                    batch.shape().to_string(), "; expected numbers");
      summary = merge(summarize(std::move(values), epsilon_), summary, epsilon_);
    }
    if (!any) bad_input("adapt() got no batches; expected at least one (a batch of the data)");
    const Summary final_summary = compress(summary, 1.0 / static_cast<double>(*num_bins_));
    auto b = std::make_shared<Bounds>(final_summary.values.begin(), final_summary.values.end());
    if (!b->empty()) b->pop_back();
    for (double v : *b)
      if (std::isnan(v))
        bad_input(
            "adapt() found no boundaries: the data's quantiles fall between -inf and +inf, which gives NaN "
            "(Keras keeps NaN boundaries); expected data without both infinities at the quantiles");
    set_bounds(std::move(b));
  }

  void add_config(Config &c) const override {
    const std::shared_ptr<const Bounds> b = bounds();
    if (b)
      c.set_any_float("bin_boundaries", *b);
    else
      c.set_null("bin_boundaries");
    if (num_bins_)
      c.set("num_bins", *num_bins_);
    else
      c.set_null("num_bins");
    c.set("epsilon", epsilon_).set("output_mode", mode_).set("sparse", false);
  }

  std::optional<int64_t> num_bins_;
  double epsilon_ = 0.01;
  std::string mode_;
  std::shared_ptr<const Bounds> bounds_;  // null until given or adapted
  mutable std::mutex state_mu_;           // bounds_: a call sees the old boundaries or the new
  std::mutex adapt_mu_;                   // one adapt at a time
};

}  // namespace

void register_preprocessing_layers() { register_class<Discretization>("Discretization"); }

}  // namespace kiln::layers
