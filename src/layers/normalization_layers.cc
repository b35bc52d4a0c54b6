// LayerNormalization and BatchNormalization (channels last).
#include <algorithm>

#include "core/error.h"
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

class LayerNormalization final : public Layer {
 public:
  explicit LayerNormalization(const Config &config)
      : LayerNormalization(config, ConfigReader(config, "LayerNormalization")) {}

 private:
  LayerNormalization(const Config &config, ConfigReader &&r) : Layer("LayerNormalization", r) {
    axes_ = r.get_int_list("axis", {-1});  // Keras's axis: an int or a list of ints
    if (axes_.empty()) fail(Code::kInvalidArgument, "LayerNormalization: axis must not be empty");
    epsilon_ = r.get_float("epsilon", 1e-3);
    if (!(epsilon_ > 0)) fail(Code::kInvalidArgument, "LayerNormalization: epsilon must be positive; got ", epsilon_);
    center_ = r.get_bool("center", true);
    scale_ = r.get_bool("scale", true);
    beta_init_ = initializer_or(config, r, "beta_initializer", "zeros");
    gamma_init_ = initializer_or(config, r, "gamma_initializer", "ones");
    beta_reg_ = regularizer_from_value(config, "beta_regularizer");
    gamma_reg_ = regularizer_from_value(config, "gamma_regularizer");
    r.accept({"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint", "rms_scaling"});
    r.finish();
    set_supports_masking(true);
    set_autocast(false);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    if (shapes.size() != 1) fail(Code::kInvalidArgument, "layer '", name(), "' (LayerNormalization): expected 1 input");
    const PartialShape &s = shapes[0];
    const int64_t rank = static_cast<int64_t>(s.size());
    std::vector<int64_t> axes;
    for (int64_t a : axes_) {
      const int64_t k = a < 0 ? a + rank : a;
      if (k < 0 || k >= rank)
        fail(Code::kInvalidArgument, "layer '", name(), "' (LayerNormalization): axis ", a, " is out of range for input shape ",
             partial_shape_string(s));
      if (s[size_t(k)] < 0)
        fail(Code::kInvalidArgument, "layer '", name(), "' (LayerNormalization): axis ", a, " of input shape ",
             partial_shape_string(s), " must be known");
      axes.push_back(k);
    }
    std::sort(axes.begin(), axes.end());
    for (size_t i = 0; i < axes.size(); ++i)
      if (axes[i] != rank - int64_t(axes.size()) + int64_t(i))
        fail(Code::kUnimplemented, "layer '", name(), "' (LayerNormalization): axes must be the trailing axes of the input");
    std::vector<int64_t> param;
    for (int64_t k : axes) param.push_back(s[size_t(k)]);
    norm_axes_ = axes;
    const Shape ps(param);
    gamma_ = scale_ ? add_weight("gamma", ps, dtype(), *gamma_init_, true, gamma_reg_) : nullptr;
    beta_ = center_ ? add_weight("beta", ps, dtype(), *beta_init_, true, beta_reg_) : nullptr;
    param_shape_ = ps;
    input_spec_.ndim = rank;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const DType cdt = stats_dtype(inputs.at(0));
    const Tensor x = ops::cast(inputs.at(0), cdt);
    const Tensor g = gamma_ ? ops::cast(gamma_->value(), cdt) : ops::ones(param_shape_, cdt);
    const Tensor b = beta_ ? ops::cast(beta_->value(), cdt) : ops::zeros(param_shape_, cdt);
    return {ops::cast(ops::layer_norm(x, g, b, static_cast<float>(epsilon_), norm_axes_), compute_dtype())};
  }

  void add_config(Config &c) const override {
    if (axes_.size() == 1)
      c.set("axis", axes_[0]);
    else
      c.set("axis", axes_);
    c.set("epsilon", epsilon_).set("center", center_).set("scale", scale_);
    c.set("beta_initializer", serialize_initializer(*beta_init_));
    c.set("gamma_initializer", serialize_initializer(*gamma_init_));
    set_regularizer(c, "beta_regularizer", beta_reg_);
    set_regularizer(c, "gamma_regularizer", gamma_reg_);
    c.set_null("beta_constraint").set_null("gamma_constraint");
  }

  std::vector<int64_t> axes_, norm_axes_;
  double epsilon_;
  bool center_, scale_;
  InitializerPtr beta_init_, gamma_init_;
  RegularizerPtr beta_reg_, gamma_reg_;
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
    r.accept({"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint", "synchronized"});
    r.finish();
    set_supports_masking(true);
    set_autocast(false);
    input_spec_.min_ndim = 2;
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    if (shapes.size() != 1) fail(Code::kInvalidArgument, "layer '", name(), "' (BatchNormalization): expected 1 input");
    const PartialShape &s = shapes[0];
    const int64_t rank = static_cast<int64_t>(s.size());
    const int64_t k = axis_ < 0 ? axis_ + rank : axis_;
    if (k != rank - 1)
      fail(Code::kUnimplemented, "layer '", name(), "' (BatchNormalization): axis ", axis_,
           " is not the last axis; kiln normalises channels last");
    const int64_t c = s.back();
    if (c < 0) fail(Code::kInvalidArgument, "layer '", name(), "' (BatchNormalization): the channel axis must be known");
    const Shape ps({c});
    gamma_ = scale_ ? add_weight("gamma", ps, dtype(), *gamma_init_, true, gamma_reg_) : nullptr;
    beta_ = center_ ? add_weight("beta", ps, dtype(), *beta_init_, true, beta_reg_) : nullptr;
    moving_mean_ = add_weight("moving_mean", ps, dtype(), *mean_init_, false);
    moving_variance_ = add_weight("moving_variance", ps, dtype(), *var_init_, false);
    channels_ = c;
    input_spec_.last_dim = c;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const DType cdt = stats_dtype(inputs.at(0));
    const Tensor x = ops::cast(inputs.at(0), cdt);
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
  // weighted by the mask (sum(w * x) / (sum(w) + 1e-7), Keras's epsilon), so padding steps do
  // not move them; every step is then normalised with them.
  ops::BatchNormResult masked_batch_norm(const Tensor &x, const Tensor &mask, const Tensor &g, const Tensor &b) const {
    if (mask.rank() != x.rank() - 1)
      fail(Code::kInvalidArgument, "layer '", name(), "' (BatchNormalization): mask has shape ",
           mask.shape().to_string(), "; expected the input's shape ", x.shape().to_string(),
           " without its channel axis");
    std::vector<int64_t> axes;
    for (int64_t a = 0; a + 1 < x.rank(); ++a) axes.push_back(a);
    const Tensor w = ops::expand_dims(ops::cast(mask, x.dtype()), -1);
    const Tensor n = ops::add(ops::sum(w, axes, true), ops::fill(Shape({}), 1e-7, x.dtype()));
    const Tensor wx = ops::mul(w, x);
    const Tensor mean = ops::truediv(ops::sum(wx, axes, true), n);
    const Tensor var = ops::truediv(ops::sum(ops::mul(w, ops::square(ops::sub(wx, mean))), axes, true), n);
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
  }

  int64_t axis_;
  double momentum_, epsilon_;
  bool center_, scale_;
  InitializerPtr beta_init_, gamma_init_, mean_init_, var_init_;
  RegularizerPtr beta_reg_, gamma_reg_;
  VariablePtr gamma_, beta_, moving_mean_, moving_variance_;
  int64_t channels_ = 0;
};

}  // namespace

void register_normalization_layers() {
  register_class<LayerNormalization>("LayerNormalization");
  register_class<BatchNormalization>("BatchNormalization");
}

}  // namespace kiln::layers
