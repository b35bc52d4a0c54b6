// Activation layers with settings, as Keras's keras.layers.activations: ReLU, LeakyReLU,
// Softmax, ELU and PReLU (the one with a weight). Each passes its input's mask on.
#include <algorithm>
#include <optional>
#include <set>

#include "core/error.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "layers/regularizers.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

Tensor scalar_like(const Tensor &x, double v) { return ops::fill(Shape({}), v, x.dtype()); }

// A non-negative setting (Keras: "cannot be None or a negative value").
double non_negative(ConfigReader &r, const char *key, double def) {
  const double v = r.get_float(key, def);
  if (!(v >= 0)) fail(Code::kInvalidArgument, r.owner(), ": ", key, " cannot be negative; got ", v);
  return v;
}

// ------------------------------------------------------------------ ReLU

// keras.layers.ReLU(max_value=None, negative_slope=0.0, threshold=0.0):
// max_value for x >= max_value, x for threshold <= x < max_value, negative_slope * (x - threshold)
// below, computed as keras.activations.relu does (the same ops in the same order).
class ReLU final : public Layer {
 public:
  explicit ReLU(const Config &config) : ReLU(ConfigReader(config, "ReLU")) {}

 private:
  explicit ReLU(ConfigReader &&r) : Layer("ReLU", r) {
    if (r.has("max_value")) max_value_ = non_negative(r, "max_value", 0);
    negative_slope_ = non_negative(r, "negative_slope", 0);
    threshold_ = non_negative(r, "threshold", 0);
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    Tensor x = single_input(*this, inputs);
    const float slope = static_cast<float>(negative_slope_);
    if (slope != 0 && !max_value_ && threshold_ == 0) return {ops::leaky_relu(x, slope)};
    Tensor negative_part;
    if (slope != 0)
      negative_part =
          ops::relu(threshold_ != 0 ? ops::add(ops::neg(x), scalar_like(x, threshold_)) : ops::neg(x));
    bool clip = max_value_.has_value();
    if (threshold_ != 0) {
      x = ops::where(ops::greater(x, scalar_like(x, threshold_)), x, scalar_like(x, 0));
    } else if (max_value_ && *max_value_ == 6) {
      x = ops::relu6(x);
      clip = false;
    } else {
      x = ops::relu(x);
    }
    if (clip) x = ops::clip_by_value(x, scalar_like(x, 0), scalar_like(x, *max_value_));
    if (slope != 0) x = ops::sub(x, ops::mul(scalar_like(x, negative_slope_), negative_part));
    return {x};
  }
  void add_config(Config &c) const override {
    c.set("max_value", max_value_).set("negative_slope", negative_slope_).set("threshold", threshold_);
  }
  std::optional<double> max_value_;
  double negative_slope_, threshold_;
};

// ------------------------------------------------------------------ LeakyReLU

// keras.layers.LeakyReLU(negative_slope=0.3); tf.keras 2's key "alpha" is read as well.
class LeakyReLU final : public Layer {
 public:
  explicit LeakyReLU(const Config &config) : LeakyReLU(ConfigReader(config, "LeakyReLU")) {}

 private:
  explicit LeakyReLU(ConfigReader &&r) : Layer("LeakyReLU", r) {
    const bool alpha = r.has("alpha");
    if (alpha && r.has("negative_slope"))
      fail(Code::kInvalidArgument, "LeakyReLU: give negative_slope or its old name alpha, not both");
    slope_ = non_negative(r, alpha ? "alpha" : "negative_slope", 0.3);
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    return {ops::leaky_relu(single_input(*this, inputs), static_cast<float>(slope_))};
  }
  void add_config(Config &c) const override { c.set("negative_slope", slope_); }
  double slope_;
};

// ------------------------------------------------------------------ ELU

class ELU final : public Layer {
 public:
  explicit ELU(const Config &config) : ELU(ConfigReader(config, "ELU")) {}

 private:
  explicit ELU(ConfigReader &&r) : Layer("ELU", r) {
    alpha_ = r.get_float("alpha", 1.0);
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    return {ops::elu(single_input(*this, inputs), static_cast<float>(alpha_))};
  }
  void add_config(Config &c) const override { c.set("alpha", alpha_); }
  double alpha_;
};

// ------------------------------------------------------------------ Softmax

// keras.layers.Softmax(axis=-1): an int, or a list of axes (exp(x - logsumexp over them)).
// With a mask (the call's, or the one its input carries), masked entries take -1e9 before the
// softmax and 0 after, as Keras 3.
class Softmax final : public Layer {
 public:
  explicit Softmax(const Config &config) : Softmax(ConfigReader(config, "Softmax")) {}

 private:
  explicit Softmax(ConfigReader &&r) : Layer("Softmax", r) {
    axis_ = IntOrList::read(r, "axis", {-1});
    if (axis_.values.empty()) fail(Code::kInvalidArgument, "Softmax: axis must name at least one axis");
    r.finish();
    set_supports_masking(true);
    set_takes_raw_masks(true);  // checked_mask: broadcastable, non-bool read as > 0.5
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    Tensor x = single_input(*this, inputs);
    std::vector<int64_t> axes;
    for (int64_t a : axis_.values) {
      if (a < -x.rank() || a >= x.rank())
        bad_input("axis ", a, " is out of range for input ", x.description());
      axes.push_back(a < 0 ? a + x.rank() : a);
    }
    if (std::set<int64_t>(axes.begin(), axes.end()).size() != axes.size())
      bad_input("axis names an axis twice");
    Tensor mask;
    if (const Tensor *m = input_mask(ctx, 0)) mask = checked_mask(*m, x);
    if (mask.defined()) x = ops::where(mask, x, scalar_like(x, -1e9));
    Tensor y;
    if (axes.size() == 1) {
      y = ops::softmax(x, axes[0]);
      if (!mask.defined()) y = y.with_keras_logits(x);
    } else {
      y = ops::exp(ops::sub(x, ops::reduce_logsumexp(x, axes, true)));
    }
    if (mask.defined()) y = ops::where(mask, y, scalar_like(y, 0));
    return {y};
  }
  // The output's mask: the input's, as Keras passes it on, as a bool mask when it has the input's
  // leading dims (what the layers after it read); a mask that only broadcasts (an attention mask)
  // is not passed on, since the layers after it would refuse it.
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs,
                                   const std::vector<Tensor> &masks) override {
    if (masks.empty() || !masks[0].defined() || inputs.empty() ||
        !inputs[0].shape().starts_with(masks[0].shape()))
      return {};
    return {checked_mask(masks[0], inputs[0])};
  }
  // Keras: a mask broadcastable to the input and of no higher rank; not bool means > 0.5.
  Tensor checked_mask(const Tensor &m, const Tensor &x) const {
    bool ok = m.rank() <= x.rank();
    for (int64_t i = 1; ok && i <= m.rank(); ++i) {
      const int64_t md = m.shape()[m.rank() - i], xd = x.shape()[x.rank() - i];
      ok = md == 1 || md == xd;
    }
    if (!ok)
      bad_input("the mask ", m.description(), " must be broadcastable to the input ", x.description(),
                " and of no higher rank");
    if (m.dtype() == DType::kBool) return m;
    const Tensor mf = is_floating(m.dtype()) ? m : ops::cast(m, DType::kFloat32);
    return ops::greater(mf, scalar_like(mf, 0.5));
  }
  void add_config(Config &c) const override { axis_.write(c, "axis"); }
  IntOrList axis_;
};

// ------------------------------------------------------------------ PReLU

// keras.layers.PReLU(alpha_initializer="zeros", alpha_regularizer=None, shared_axes=None):
// relu(x) - alpha * relu(-x), alpha a weight of the input's shape without the batch axis, of
// size 1 along shared_axes (1-based, as Keras).
class PReLU final : public Layer {
 public:
  explicit PReLU(const Config &config) : PReLU(config, ConfigReader(config, "PReLU")) {}

 private:
  PReLU(const Config &config, ConfigReader &&r) : Layer("PReLU", r) {
    init_ = initializer_or(config, r, "alpha_initializer", "zeros");
    reg_ = regularizer_from_value(config, "alpha_regularizer");
    r.accept({"alpha_regularizer"});
    reject_constraints(r, {"alpha_constraint"});
    has_shared_ = r.has("shared_axes");
    if (has_shared_) shared_ = r.get_int_list("shared_axes", {});
    for (int64_t a : shared_)
      if (a < 1) fail(Code::kInvalidArgument, "PReLU: shared_axes are 1-based non-batch axes; got ", a);
    r.finish();
    set_supports_masking(true);
  }
  void build_impl(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    std::vector<int64_t> shape;
    for (size_t i = 1; i < s.size(); ++i) {
      const bool shared = std::find(shared_.begin(), shared_.end(), static_cast<int64_t>(i)) != shared_.end();
      shape.push_back(shared ? 1 : known_dim(*this, s, i, "size on every axis not in shared_axes"));
    }
    for (int64_t a : shared_)
      if (a >= static_cast<int64_t>(s.size()))
        bad_input("shared axis ", a, " is out of range for input ", partial_shape_string(s));
    alpha_ = add_weight("alpha", Shape(shape), dtype(), *init_, true, reg_);
    input_spec_.ndim = static_cast<int64_t>(s.size());
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = single_input(*this, inputs);
    // Keras's input spec: the axes not shared keep the sizes the layer was built for.
    const Shape &a = alpha_->shape();
    for (int i = 0; i < a.rank(); ++i)
      if (std::find(shared_.begin(), shared_.end(), i + 1) == shared_.end() && x.shape()[i + 1] != a[i])
        bad_input("input is ", x.description(), "; axis ", i + 1, " must be ", a[i],
                  ", as the layer was built (alpha ", a.to_string(), ")");
    return {ops::sub(ops::relu(x), ops::mul(alpha_->read_for_op(), ops::relu(ops::neg(x))))};
  }
  void add_config(Config &c) const override {
    c.set("alpha_initializer", serialize_initializer(*init_));
    set_regularizer(c, "alpha_regularizer", reg_);
    c.set_null("alpha_constraint");
    if (has_shared_)
      c.set("shared_axes", shared_);
    else
      c.set_null("shared_axes");
  }
  InitializerPtr init_;
  RegularizerPtr reg_;
  std::vector<int64_t> shared_;
  bool has_shared_ = false;
  VariablePtr alpha_;
};

}  // namespace

void register_activation_layers() {
  register_class<ReLU>("ReLU");
  register_class<LeakyReLU>("LeakyReLU");
  register_class<ELU>("ELU");
  register_class<Softmax>("Softmax");
  register_class<PReLU>("PReLU");
}

}  // namespace kiln::layers
