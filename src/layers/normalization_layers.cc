// LayerNormalization, BatchNormalization (channels last) and the Normalization preprocessing
// layer with its adapt().
#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/error.h"
#include "layers/adapt.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

// Keras computes normalization in float32 under mixed precision (bfloat16 statistics overflow
// and lose precision): these layers do not autocast; they compute in float32 (float64 for a
// float64 input) and give their output in the compute dtype.
DType stats_dtype(const Tensor &x) { return x.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32; }

// The center / scale, beta / gamma initializer and regularizer keys LayerNormalization and
// GroupNormalization share, read and written in Keras's order (constraints written as null).
struct GammaBeta {
  bool center = true, scale = true;
  InitializerPtr beta_init, gamma_init;
  RegularizerPtr beta_reg, gamma_reg;

  static GammaBeta read(const Config &config, ConfigReader &r) {
    GammaBeta g;
    g.center = r.get_bool("center", true);
    g.scale = r.get_bool("scale", true);
    g.beta_init = initializer_or(config, r, "beta_initializer", "zeros");
    g.gamma_init = initializer_or(config, r, "gamma_initializer", "ones");
    g.beta_reg = regularizer_from_value(config, "beta_regularizer");
    g.gamma_reg = regularizer_from_value(config, "gamma_regularizer");
    r.accept({"beta_regularizer", "gamma_regularizer"});
    return g;
  }
  void write(Config &c) const {
    c.set("center", center).set("scale", scale);
    c.set("beta_initializer", serialize_initializer(*beta_init));
    c.set("gamma_initializer", serialize_initializer(*gamma_init));
    set_regularizer(c, "beta_regularizer", beta_reg);
    set_regularizer(c, "gamma_regularizer", gamma_reg);
    c.set_null("beta_constraint").set_null("gamma_constraint");
  }
};

// keras.layers.LayerNormalization (with Keras's deprecated rms_scaling: x * rsqrt(var + eps) *
// gamma, no beta) and keras.layers.RMSNormalization(axis=-1, epsilon=1e-6): x * rsqrt(mean(x^2) +
// eps) * scale. Both normalise over trailing axes and compute in float32 (float64 for float64).
class LayerNormalization final : public Layer {
 public:
  LayerNormalization(const char *class_name, const Config &config)
      : LayerNormalization(class_name, config, ConfigReader(config, class_name)) {}

 private:
  LayerNormalization(const char *class_name, const Config &config, ConfigReader &&r)
      : Layer(class_name, r), rms_layer_(std::string(class_name) == "RMSNormalization") {
    axes_ = r.get_int_list("axis", {-1});  // Keras's axis: an int or a list of ints
    if (axes_.empty()) fail(Code::kInvalidArgument, class_name, ": axis must not be empty");
    epsilon_ = r.get_float("epsilon", rms_layer_ ? 1e-6 : 1e-3);
    if (!(epsilon_ > 0))
      fail(Code::kInvalidArgument, class_name, ": epsilon must be positive; got ", epsilon_);
    if (!rms_layer_) {
      gb_ = GammaBeta::read(config, r);
      rms_scaling_ = r.get_bool("rms_scaling", false);
      reject_constraints(r, {"beta_constraint", "gamma_constraint"});
    }
    r.finish();
    set_supports_masking(true);
    // Keras's LayerNormalization reads its input as given; its RMSNormalization autocasts it (and its
    // scale) to the compute dtype first, as any layer.
    set_autocast(rms_layer_);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    if (shapes.size() != 1) bad_input("expected 1 input");
    const PartialShape &s = shapes[0];
    const int64_t rank = static_cast<int64_t>(s.size());
    std::vector<int64_t> axes;
    for (int64_t a : axes_) {
      const int64_t k = a < 0 ? a + rank : a;
      if (k < 0 || k >= rank)
        bad_input("axis " + std::to_string(a) + " is out of range for input shape " +
                  partial_shape_string(s));
      if (s[size_t(k)] < 0)
        bad_input("axis " + std::to_string(a) + " of input shape " + partial_shape_string(s) +
                  " must be known");
      axes.push_back(k);
    }
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
      bad_input("duplicate axes are not allowed for input shape " + partial_shape_string(s));
    for (size_t i = 0; i < axes.size(); ++i)
      if (axes[i] != rank - int64_t(axes.size()) + int64_t(i))
        fail_layer(Code::kUnimplemented, "axes must be the trailing axes of the input");
    std::vector<int64_t> param;
    for (int64_t k : axes) param.push_back(s[size_t(k)]);
    norm_axes_ = axes;
    const Shape ps(param);
    if (rms_layer_) {
      gamma_ = add_weight("scale", ps, dtype(), *get_initializer("ones"), true, nullptr);
    } else {
      // Keras: gamma with scale or rms_scaling; beta with center unless rms_scaling.
      gamma_ = gb_.scale || rms_scaling_
                   ? add_weight("gamma", ps, dtype(), *gb_.gamma_init, true, gb_.gamma_reg)
                   : nullptr;
      beta_ = gb_.center && !rms_scaling_
                  ? add_weight("beta", ps, dtype(), *gb_.beta_init, true, gb_.beta_reg)
                  : nullptr;
    }
    param_shape_ = ps;
    input_spec_.ndim = rank;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &in = single_input(*this, inputs);
    const DType cdt = stats_dtype(in);
    const Tensor x = ops::cast(in, cdt);
    if (rms_layer_ || rms_scaling_) {
      // RMSNormalization: the mean square; rms_scaling (as Keras's): the variance.
      const Tensor centered = rms_layer_ ? x : ops::sub(x, ops::mean(x, norm_axes_, true));
      const Tensor ms = ops::mean(ops::square(centered), norm_axes_, true);
      Tensor y = ops::mul(x, ops::rsqrt(ops::add(ms, ops::fill(Shape({}), epsilon_, cdt))));
      if (gamma_) {
        Tensor g = gamma_->value();
        if (rms_layer_) g = ops::cast(g, compute_dtype());  // Keras's autocast read of the scale
        y = ops::mul(y, ops::cast(g, cdt));
      }
      return {ops::cast(y, compute_dtype())};
    }
    const Tensor g = gamma_ ? ops::cast(gamma_->value(), cdt) : ops::ones(param_shape_, cdt);
    const Tensor b = beta_ ? ops::cast(beta_->value(), cdt) : ops::zeros(param_shape_, cdt);
    return {ops::cast(ops::layer_norm(x, g, b, static_cast<float>(epsilon_), norm_axes_), compute_dtype())};
  }

  void add_config(Config &c) const override {
    if (axes_.size() == 1)
      c.set("axis", axes_[0]);
    else
      c.set("axis", axes_);
    c.set("epsilon", epsilon_);
    if (rms_layer_) return;
    gb_.write(c);
    c.set("rms_scaling", rms_scaling_);
  }

  const bool rms_layer_;
  bool rms_scaling_ = false;
  std::vector<int64_t> axes_, norm_axes_;
  double epsilon_;
  GammaBeta gb_;
  VariablePtr gamma_, beta_;
  Shape param_shape_;
};

class BatchNormalization final : public Layer {
 public:
  explicit BatchNormalization(const Config &config)
      : BatchNormalization(config, ConfigReader(config, "BatchNormalization")) {}

 private:
  BatchNormalization(const Config &config, ConfigReader &&r) : Layer("BatchNormalization", r) {
    axis_ = r.get_int("axis", -1);
    momentum_ = r.get_float("momentum", 0.99);
    epsilon_ = r.get_float("epsilon", 1e-3);
    if (!(momentum_ >= 0 && momentum_ <= 1))
      fail(Code::kInvalidArgument, "BatchNormalization: momentum must be in [0, 1]; got ", momentum_);
    if (!(epsilon_ > 0)) fail(Code::kInvalidArgument, "BatchNormalization: epsilon must be positive; got ", epsilon_);
    center_ = r.get_bool("center", true);
    scale_ = r.get_bool("scale", true);
    beta_init_ = initializer_or(config, r, "beta_initializer", "zeros");
    gamma_init_ = initializer_or(config, r, "gamma_initializer", "ones");
    mean_init_ = initializer_or(config, r, "moving_mean_initializer", "zeros");
    var_init_ = initializer_or(config, r, "moving_variance_initializer", "ones");
    beta_reg_ = regularizer_from_value(config, "beta_regularizer");
    gamma_reg_ = regularizer_from_value(config, "gamma_regularizer");
    r.accept({"beta_regularizer", "gamma_regularizer"});
    reject_constraints(r, {"beta_constraint", "gamma_constraint"});
    // synchronized only changes a multi-device step (one replica here); it is kept in the config.
    synchronized_ = r.get_bool("synchronized", false);
    if (r.get_bool("renorm", false))
      fail(Code::kUnimplemented,
           "BatchNormalization: renorm=True (batch renormalization) is not supported yet");
    r.accept({"renorm_clipping", "renorm_momentum"});
    r.finish();
    set_supports_masking(true);
    set_autocast(false);
    input_spec_.min_ndim = 2;
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    if (shapes.size() != 1) bad_input("expected 1 input");
    const PartialShape &s = shapes[0];
    const int64_t rank = static_cast<int64_t>(s.size());
    const int64_t k = axis_ < 0 ? axis_ + rank : axis_;
    if (k != rank - 1)
      fail_layer(Code::kUnimplemented, "axis ", axis_,
                 " is not the last axis; kiln normalises channels last");
    const int64_t c = s.back();
    if (c < 0) bad_input("the channel axis must be known");
    const Shape ps({c});
    gamma_ = scale_ ? add_weight("gamma", ps, dtype(), *gamma_init_, true, gamma_reg_) : nullptr;
    beta_ = center_ ? add_weight("beta", ps, dtype(), *beta_init_, true, beta_reg_) : nullptr;
    moving_mean_ = add_weight("moving_mean", ps, dtype(), *mean_init_, false);
    moving_variance_ = add_weight("moving_variance", ps, dtype(), *var_init_, false);
    channels_ = c;
    input_spec_.last_dim = c;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor &in = single_input(*this, inputs);
    const DType cdt = stats_dtype(in);
    const Tensor x = ops::cast(in, cdt);
    const Shape ps({channels_});
    const Tensor g = gamma_ ? ops::cast(gamma_->value(), cdt) : ops::ones(ps, cdt);
    const Tensor b = beta_ ? ops::cast(beta_->value(), cdt) : ops::zeros(ps, cdt);
    // A frozen BatchNormalization runs in inference mode (Keras 2.x/3 behaviour).
    const bool training = ctx.training && trainable();
    const Tensor *mask = input_mask(ctx, 0);
    ops::BatchNormResult r = training && mask ? masked_batch_norm(x, *mask, g, b)
                                              : ops::batch_norm(x, g, b, ops::cast(moving_mean_->peek(), cdt),
                                                                ops::cast(moving_variance_->peek(), cdt), training,
                                                                static_cast<float>(epsilon_));
    if (training) {
      // moving = moving * momentum + batch * (1 - momentum), as Keras; the batch variance is
      // the biased one, as Keras uses. Updates are outside any tape.
      const Tensor m = ops::fill(Shape({}), 1.0 - momentum_, dtype());
      auto update = [&](const VariablePtr &v, const Tensor &batch) {
        v->assign_sub(ops::mul(ops::sub(v->peek(), ops::cast(ops::stop_gradient(batch), dtype())), m));
      };
      update(moving_mean_, r.mean);
      update(moving_variance_, r.variance);
    }
    return {ops::cast(r.y, compute_dtype())};
  }

  // Keras's masked moments: in training with a mask [batch, steps...], the batch statistics are
  // taken over the valid steps (sum(where(m, x, 0)) / (sum(m) + 1e-7), Keras's epsilon), so padding
  // steps, even NaN or inf ones, do not move them; every step is then normalised with them.
  ops::BatchNormResult masked_batch_norm(const Tensor &x, const Tensor &mask, const Tensor &g, const Tensor &b) const {
    if (mask.rank() != x.rank() - 1)
      bad_input("mask has shape ", mask.shape().to_string(), "; expected the input's shape ",
                x.shape().to_string(), " without its channel axis");
    std::vector<int64_t> axes;
    for (int64_t a = 0; a + 1 < x.rank(); ++a) axes.push_back(a);
    const Tensor m = ops::broadcast_to(ops::expand_dims(ops::cast(mask, DType::kBool), -1), x.shape());
    const Tensor zero = ops::zeros_like(x);
    const Tensor n =
        ops::add(ops::sum(ops::cast(m, x.dtype()), axes, true), ops::fill(Shape({}), 1e-7, x.dtype()));
    const Tensor mean = ops::truediv(ops::sum(ops::where(m, x, zero), axes, true), n);
    const Tensor var =
        ops::truediv(ops::sum(ops::square(ops::where(m, ops::sub(x, mean), zero)), axes, true), n);
    const Tensor inv = ops::rsqrt(ops::add(var, ops::fill(Shape({}), epsilon_, x.dtype())));
    ops::BatchNormResult r;
    r.y = ops::add(ops::mul(ops::mul(ops::sub(x, mean), inv), g), b);
    r.mean = ops::reshape(mean, {channels_});
    r.variance = ops::reshape(var, {channels_});
    return r;
  }

  void add_config(Config &c) const override {
    c.set("axis", axis_).set("momentum", momentum_).set("epsilon", epsilon_).set("center", center_);
    c.set("scale", scale_);
    c.set("beta_initializer", serialize_initializer(*beta_init_));
    c.set("gamma_initializer", serialize_initializer(*gamma_init_));
    c.set("moving_mean_initializer", serialize_initializer(*mean_init_));
    c.set("moving_variance_initializer", serialize_initializer(*var_init_));
    set_regularizer(c, "beta_regularizer", beta_reg_);
    set_regularizer(c, "gamma_regularizer", gamma_reg_);
    c.set_null("beta_constraint").set_null("gamma_constraint");
    c.set("synchronized", synchronized_);
  }

  int64_t axis_;
  double momentum_, epsilon_;
  bool center_, scale_, synchronized_;
  InitializerPtr beta_init_, gamma_init_, mean_init_, var_init_;
  RegularizerPtr beta_reg_, gamma_reg_;
  VariablePtr gamma_, beta_, moving_mean_, moving_variance_;
  int64_t channels_ = 0;
};

// Keras's mean= and variance= of Normalization: a number or a nested list of numbers, its shape
// and its values in row-major order.
struct HostArray {
  std::vector<int64_t> shape;
  std::vector<double> values;
};

void read_nested(const Config::Json &v, size_t depth, HostArray &out, const std::string &what) {
  if (v.is_number()) {
    if (depth != out.shape.size())
      fail(Code::kInvalidArgument, what, " is a ragged nested list; expected a rectangular one");
    out.values.push_back(v.get<double>());
    return;
  }
  if (!v.is_array())
    fail(Code::kInvalidArgument, what, " holds ", v.dump(),
         "; expected a number or a nested list of numbers");
  if (depth == out.shape.size() && out.values.empty()) out.shape.push_back(static_cast<int64_t>(v.size()));
  if (depth >= out.shape.size() || out.shape[depth] != static_cast<int64_t>(v.size()))
    fail(Code::kInvalidArgument, what, " is a ragged nested list; expected a rectangular one");
  for (const Config::Json &e : v) read_nested(e, depth + 1, out, what);
}

std::optional<HostArray> read_array(const ConfigReader &r, const char *key) {
  const Config &c = r.config();
  if (!c.has(key) || c.is_null(key)) return std::nullopt;
  HostArray a;
  read_nested(c.json().at(key), 0, a, r.owner() + ": " + key);
  // An empty list at some level: shape known, no values; consistent only when a dim is 0.
  int64_t n = 1;
  for (int64_t d : a.shape) n *= d;
  if (n != static_cast<int64_t>(a.values.size()))
    fail(Code::kInvalidArgument, r.owner(), ": ", key,
         " is a ragged nested list; expected a rectangular one");
  return a;
}

Config::Json nested_json(const HostArray &a, size_t depth, size_t &pos) {
  if (depth == a.shape.size()) return a.values[pos++];
  Config::Json list = Config::Json::array();
  for (int64_t i = 0; i < a.shape[depth]; ++i) list.push_back(nested_json(a, depth + 1, pos));
  return list;
}

// Config has no setter for a nested list of numbers: the key is set on a copy of its JSON.
void set_nested(Config &c, const char *key, const std::optional<HostArray> &a) {
  if (!a) {
    c.set_null(key);
    return;
  }
  Config::Json j = c.json();
  size_t pos = 0;
  j[key] = nested_json(*a, 0, pos);
  c = Config::from_value(std::move(j), "Normalization config");
}

// keras.layers.Normalization(axis=-1, mean=None, variance=None, invert=False): (x - mean) /
// max(sqrt(variance), 1e-7), or x * max(sqrt(variance), 1e-7) + mean inverted, with one mean and
// variance per index of the kept axes (axis; none for axis=None: one over every element). Either
// given (broadcast to the kept axes' shape, right-aligned) or computed by adapt() and kept in the
// non-trainable weights "mean", "variance" and "count" (int64: the number of values each mean
// was computed over, as tf.keras records it).
class Normalization final : public Layer, public Adaptable {
 public:
  explicit Normalization(const Config &config) : Normalization(ConfigReader(config, "Normalization")) {}

 private:
  explicit Normalization(ConfigReader &&r) : Layer("Normalization", r) {
    const Config &c = r.config();
    if (c.has("axis") && !c.is_null("axis"))
      axes_ = r.get_int_list("axis", {-1});
    else if (!c.has("axis"))
      axes_ = {-1};
    r.accept({"axis", "mean", "variance"});
    mean_arg_ = read_array(r, "mean");
    variance_arg_ = read_array(r, "variance");
    invert_ = r.get_bool("invert", false);
    r.finish();
    if (mean_arg_.has_value() != variance_arg_.has_value())
      fail(Code::kInvalidArgument,
           "Normalization: when setting values directly, both mean and variance must be set; got ",
           mean_arg_ ? "mean without variance" : "variance without mean");
    if (mean_arg_ && mean_arg_->shape != variance_arg_->shape)
      fail(Code::kInvalidArgument,
           "Normalization: mean and variance must have the same shape; got mean of shape ",
           tuple_string(mean_arg_->shape), " and variance of shape ", tuple_string(variance_arg_->shape));
    if (mean_arg_) {
      for (double m : mean_arg_->values)
        if (!std::isfinite(m))
          fail(Code::kInvalidArgument, "Normalization: mean holds ", m, "; expected finite values");
      for (double v : variance_arg_->values)
        if (!(v >= 0 && std::isfinite(v)))
          fail(Code::kInvalidArgument, "Normalization: variance holds ", v, "; expected finite values >= 0");
    }
    if (mean_arg_ && mean_arg_->shape.size() > axes_.size())
      fail(Code::kInvalidArgument, "Normalization: the rank of mean must be at most the number of axes (",
           axes_.size(), "); got mean of shape ", tuple_string(mean_arg_->shape), " for axis ",
           tuple_string(axes_));
    set_supports_masking(true);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    const int64_t rank = static_cast<int64_t>(s.size());
    std::vector<int64_t> keep;
    for (int64_t a : axes_) {
      if (a < -rank || a >= rank)
        bad_input("axis ", a, " is out of range for input shape ", partial_shape_string(s),
                  "; expected every axis in [", -rank, ", ", rank, ")");
      const int64_t k = a < 0 ? a + rank : a;
      if (std::find(keep.begin(), keep.end(), k) != keep.end())
        bad_input("axis ", tuple_string(axes_), " names axis ", k, " twice");
      if (s[size_t(k)] < 0)
        bad_input("the kept axis ", a, " of input shape ", partial_shape_string(s), " must be known");
      keep.push_back(k);
    }
    std::sort(keep.begin(), keep.end());
    std::vector<int64_t> kept_dims, bshape(size_t(rank), 1);
    for (int64_t k : keep) {
      kept_dims.push_back(s[size_t(k)]);
      bshape[size_t(k)] = s[size_t(k)];
    }
    for (int64_t d = 0; d < rank; ++d)
      if (std::find(keep.begin(), keep.end(), d) == keep.end()) reduce_axes_.push_back(d);
    keep_axes_ = keep;
    kept_shape_ = Shape(kept_dims);
    broadcast_shape_ = Shape(bshape);
    build_rank_ = rank;
    if (mean_arg_) {
      given_mean_ = given_value(*mean_arg_, "mean");
      given_variance_ = given_value(*variance_arg_, "variance");
      return;
    }
    mean_ = add_weight("mean", kept_shape_, dtype(), *get_initializer("zeros"), false);
    variance_ = add_weight("variance", kept_shape_, dtype(), *get_initializer("ones"), false);
    count_ = add_weight("count", Shape({}), DType::kInt64, *get_initializer("zeros"), false);
  }

  // A given mean or variance as a float64 tensor of the broadcast shape: its dims align with the
  // kept axes from the right (Keras), each 1 or the kept axis's size.
  Tensor given_value(const HostArray &a, const char *key) const {
    std::vector<int64_t> expanded(broadcast_shape_.rank(), 1);
    const size_t n = a.shape.size();
    for (size_t i = 1; i <= n; ++i) {
      const int64_t axis = keep_axes_[keep_axes_.size() - i];
      const int64_t d = a.shape[n - i];
      if (d != 1 && d != broadcast_shape_[int(axis)])
        bad_input(key, " of shape ", tuple_string(a.shape), " does not broadcast to the kept axes' shape ",
                  tuple_string(kept_shape_.to_vector()));
      expanded[size_t(axis)] = d;
    }
    const Tensor t = Tensor::from_data(DType::kFloat64, Shape(expanded), a.values.data(),
                                       a.values.size() * sizeof(double));
    return ops::broadcast_to(t, broadcast_shape_);
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const DType cdt = compute_dtype();
    const Tensor x = ops::cast(single_input(*this, inputs), cdt);
    Tensor mean = given_mean_, var = given_variance_;
    if (mean_) {
      // Both read under the lock adapt() sets them under: never a new mean with an old variance.
      std::lock_guard<std::mutex> lock(state_mu_);
      mean = mean_->value();
      var = variance_->value();
    }
    mean = ops::cast(ops::reshape(mean, broadcast_shape_.to_vector()), cdt);
    var = ops::cast(ops::reshape(var, broadcast_shape_.to_vector()), cdt);
    // Keras's backend.epsilon() keeps a zero variance from dividing by zero.
    const Tensor scale = ops::maximum(ops::sqrt(var), ops::fill(Shape({}), 1e-7, cdt));
    return {invert_ ? ops::add(mean, ops::mul(x, scale)) : ops::truediv(ops::sub(x, mean), scale)};
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    return {single_input(*this, shapes)};
  }

  // Keras's adapt: the mean and (biased) variance of the data over the reduced axes, merged
  // batch by batch as Keras merges them (weighted by each batch's count), in float64.
  void adapt(const NextBatchFn &next) override {
    std::lock_guard<std::mutex> lock(adapt_mu_);
    if (mean_arg_)
      fail(Code::kFailedPrecondition, describe(),
           " was given mean and variance; adapt() computes them: make the layer without mean and variance to "
           "adapt it");
    Tensor batch;
    if (!next(&batch))
      fail(Code::kInvalidArgument, describe(),
           ": adapt() got no batches; expected at least one (a batch of the data)");
    if (!built()) {
      PartialShape s = partial_shape_of(batch.shape());
      // The batch dim is unknown, as in a model's build, unless it is kept (a 1-D feature vector).
      if (!s.empty() && !keeps_axis(0, static_cast<int64_t>(s.size()))) s[0] = kUnknownDim;
      build({s});
    }
    const size_t n = static_cast<size_t>(kept_shape_.num_elements());
    std::vector<double> mean(n, 0.0), var(n, 0.0);
    int64_t total = 0;
    do {
      check_batch(batch);
      int64_t count = 1;
      for (int64_t a : reduce_axes_) count *= batch.shape()[int(a)];
      if (count == 0) continue;
      const Tensor x = ops::cast(batch, DType::kFloat64);
      Tensor bm = x, bv = ops::zeros(x.shape(), DType::kFloat64);
      if (!reduce_axes_.empty()) {
        const Tensor m = ops::mean(x, reduce_axes_, true);
        bv = ops::mean(ops::square(ops::sub(x, m)), reduce_axes_, false);
        bm = ops::reshape(m, kept_shape_.to_vector());
      }
      const double *pm = bm.data<double>(), *pv = bv.data<double>();
      total += count;
      const double wb = static_cast<double>(count) / static_cast<double>(total), wa = 1.0 - wb;
      for (size_t i = 0; i < n; ++i) {
        const double m = mean[i] * wa + pm[i] * wb;
        const double da = mean[i] - m, db = pm[i] - m;
        var[i] = (var[i] + da * da) * wa + (pv[i] + db * db) * wb;
        mean[i] = m;
      }
    } while (next(&batch));
    if (total == 0)
      fail(Code::kInvalidArgument, describe(),
           ": adapt() data has no values (every batch is empty); expected at least one");
    auto host = [&](const std::vector<double> &v) {
      return ops::cast(Tensor::from_data(DType::kFloat64, kept_shape_, v.data(), v.size() * sizeof(double)),
                       dtype());
    };
    const Tensor m = host(mean), v = host(var), c = Tensor::scalar<int64_t>(total);
    std::lock_guard<std::mutex> state(state_mu_);
    mean_->assign(m);
    variance_->assign(v);
    count_->assign(c);
  }

  bool keeps_axis(int64_t axis, int64_t rank) const {
    for (int64_t a : axes_)
      if ((a < 0 ? a + rank : a) == axis) return true;
    return false;
  }

  void check_batch(const Tensor &batch) const {
    const auto bad = [&](const std::string &why) {
      PartialShape built_shape = build_input_shapes().empty() ? PartialShape{} : build_input_shapes()[0];
      bad_input("adapt() got a batch of shape ", partial_shape_string(partial_shape_of(batch.shape())), " (",
                why, "); expected the shape the layer was built for, ", partial_shape_string(built_shape));
    };
    if (batch.rank() != build_rank_) bad("rank " + std::to_string(batch.rank()));
    for (int64_t k : keep_axes_)
      if (batch.shape()[int(k)] != broadcast_shape_[int(k)]) bad("axis " + std::to_string(k) + " differs");
    if (!is_floating(batch.dtype()) && !is_integer(batch.dtype()) && batch.dtype() != DType::kBool)
      bad_input("adapt() got a batch of dtype ", dtype_name(batch.dtype()), "; expected numbers");
  }

  void add_config(Config &c) const override {
    c.set("axis", axes_).set("invert", invert_);
    set_nested(c, "mean", mean_arg_);
    set_nested(c, "variance", variance_arg_);
  }

  std::vector<int64_t> axes_;
  std::optional<HostArray> mean_arg_, variance_arg_;
  bool invert_ = false;
  // Set by the build.
  std::vector<int64_t> keep_axes_, reduce_axes_;
  Shape kept_shape_, broadcast_shape_;
  int64_t build_rank_ = 0;
  Tensor given_mean_, given_variance_;
  VariablePtr mean_, variance_, count_;
  std::mutex adapt_mu_;  // one adapt at a time
  std::mutex state_mu_;  // the adapted mean and variance, read and set together
};

Adaptable &adaptable(Layer &layer) {
  auto *a = dynamic_cast<Adaptable *>(&layer);
  if (!a)
    fail(Code::kInvalidArgument, "layer '", layer.name(), "' (", layer.class_name(),
         ") has no adapt(); the layers that adapt to data are: Normalization, Discretization, "
         "IntegerLookup");
  return *a;
}

}  // namespace

void adapt(Layer &layer, const NextBatchFn &next) { adaptable(layer).adapt(next); }

void Adaptable::adapt_array(const Tensor &data) {
  bool given = false;
  adapt([&](Tensor *out) {
    if (given) return false;
    *out = data;
    given = true;
    return true;
  });
}

void adapt(Layer &layer, const Tensor &data) { adaptable(layer).adapt_array(data); }

// keras.layers.GroupNormalization(groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, ...): the
// channels of `axis` split into `groups` groups, each normalized over its channels and every other
// non-batch axis (groups=-1: a group per channel, instance normalization; the config then says how
// many), then scaled by gamma and shifted by beta [channels]. As Keras 3 computes it: in float32 at
// least, moments over the group, inv = rsqrt(variance + epsilon) * gamma, x * inv + (beta - mean *
// inv), cast back to the input's dtype, then to the compute dtype. The mask passes through.
class GroupNormalization final : public Layer {
 public:
  explicit GroupNormalization(const Config &config)
      : GroupNormalization(config, ConfigReader(config, "GroupNormalization")) {}

 private:
  GroupNormalization(const Config &config, ConfigReader &&r) : Layer("GroupNormalization", r) {
    groups_ = r.get_int("groups", 32);
    if (groups_ <= 0 && groups_ != -1)
      fail(Code::kInvalidArgument, "GroupNormalization: groups is ", groups_,
           "; expected a positive number of groups (or -1 for instance normalization)");
    axis_ = r.get_int("axis", -1);
    epsilon_ = r.get_float("epsilon", 1e-3);
    if (!(epsilon_ >= 0))
      fail(Code::kInvalidArgument, "GroupNormalization: epsilon must be >= 0; got ", epsilon_);
    gb_ = GammaBeta::read(config, r);
    reject_constraints(r, {"beta_constraint", "gamma_constraint"});
    r.finish();
    set_supports_masking(true);
    set_autocast(false);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const std::string who = describe() + ": ";
    if (shapes.size() != 1) fail(Code::kInvalidArgument, who, "expected 1 input");
    const PartialShape &s = shapes[0];
    const int64_t rank = static_cast<int64_t>(s.size());
    const int64_t k = axis_ < 0 ? axis_ + rank : axis_;
    if (k < 1 || k >= rank)
      fail(Code::kInvalidArgument, who, "axis ", axis_, " is out of range for input shape ",
           partial_shape_string(s), "; expected a non-batch axis");
    const int64_t dim = s[size_t(k)];
    if (dim < 0)
      fail(Code::kInvalidArgument, who, "axis ", axis_, " of input shape ", partial_shape_string(s),
           " must be known");
    if (groups_ == -1) groups_ = dim;
    if (dim < groups_ || dim % groups_ != 0)
      fail(Code::kInvalidArgument, who, groups_, " groups do not divide the ", dim, " channels of axis ",
           axis_, " (input shape ", partial_shape_string(s),
           "); expected a number of groups that divides them");
    gamma_ = gb_.scale ? add_weight("gamma", Shape({dim}), dtype(), *gb_.gamma_init, true, gb_.gamma_reg)
                       : nullptr;
    beta_ =
        gb_.center ? add_weight("beta", Shape({dim}), dtype(), *gb_.beta_init, true, gb_.beta_reg) : nullptr;
    channel_axis_ = k;
    input_spec_.ndim = rank;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &in = single_input(*this, inputs);
    const DType cdt = stats_dtype(in);
    const int64_t k = channel_axis_, rank = in.rank(), dim = in.shape()[int(k)];
    // [..., groups, channels / groups, ...] at the channel axis.
    std::vector<int64_t> grouped = in.shape().to_vector(), bshape(size_t(rank + 1), 1);
    grouped[size_t(k)] = dim / groups_;
    grouped.insert(grouped.begin() + k, groups_);
    bshape[size_t(k)] = groups_;
    bshape[size_t(k + 1)] = dim / groups_;
    std::vector<int64_t> over;  // every non-batch axis but the groups'
    for (int64_t i = 1; i <= rank; ++i)
      if (i != k) over.push_back(i);
    const Tensor x = ops::reshape(ops::cast(in, cdt), grouped);
    const ops::MomentsResult m = ops::moments(x, over, true);
    Tensor inv = ops::rsqrt(ops::add(m.variance, ops::fill(Shape({}), epsilon_, cdt)));
    if (gamma_) inv = ops::mul(inv, ops::reshape(ops::cast(gamma_->value(), cdt), bshape));
    Tensor shift = ops::neg(ops::mul(m.mean, inv));
    if (beta_) shift = ops::add(shift, ops::reshape(ops::cast(beta_->value(), cdt), bshape));
    const Tensor y = ops::reshape(ops::add(ops::mul(x, inv), shift), in.shape().to_vector());
    return {ops::cast(ops::cast(y, in.dtype()), compute_dtype())};
  }

  void add_config(Config &c) const override {
    c.set("groups", groups_).set("axis", axis_).set("epsilon", epsilon_);
    gb_.write(c);
  }

  int64_t groups_, axis_, channel_axis_ = -1;
  double epsilon_;
  GammaBeta gb_;
  VariablePtr gamma_, beta_;
};

// keras.layers.UnitNormalization(axis=-1): x scaled to unit L2 norm over the axes, as Keras 3's
// ops.normalize computes it, x * rsqrt(max(sum(x^2), 1e-12^2)) (a zero vector stays 0). The mask
// passes through.
class UnitNormalization final : public Layer {
 public:
  explicit UnitNormalization(const Config &config)
      : UnitNormalization(ConfigReader(config, "UnitNormalization")) {}

 private:
  explicit UnitNormalization(ConfigReader &&r) : Layer("UnitNormalization", r) {
    axis_ = IntOrList::read(r, "axis", {-1});
    if (axis_.values.empty())
      fail(Code::kInvalidArgument, "UnitNormalization: axis must name at least one axis");
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor x = single_input(*this, inputs);
    for (int64_t a : axis_.values)
      if (a < -x.rank() || a >= x.rank())
        bad_input("axis ", a, " is out of range for input ", x.description());
    return {ops::l2_normalize(x, axis_.values, 1e-24f)};
  }
  void add_config(Config &c) const override { axis_.write(c, "axis"); }
  IntOrList axis_;
};

void register_normalization_layers() {
  add_layer_factory("LayerNormalization", [](const Config &c) -> LayerPtr {
    return std::make_shared<LayerNormalization>("LayerNormalization", c);
  });
  add_layer_factory("RMSNormalization", [](const Config &c) -> LayerPtr {
    return std::make_shared<LayerNormalization>("RMSNormalization", c);
  });
  register_class<BatchNormalization>("BatchNormalization");
  register_class<Normalization>("Normalization");
  register_class<UnitNormalization>("UnitNormalization");
  register_class<GroupNormalization>("GroupNormalization");
}

}  // namespace kiln::layers
