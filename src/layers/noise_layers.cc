// Keras's regularization layers beside Dropout, active only in training: GaussianNoise,
// GaussianDropout and SpatialDropout1D/2D/3D (whole feature maps dropped). Each passes its
// input's mask on; outside training each returns its input.
#include <cmath>
#include <string>

#include "core/error.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

// Normal noise of x's shape and dtype (the random ops draw float32).
Tensor normal_like(const Tensor &x, double mean, double stddev, int64_t seed) {
  const Tensor n = ops::random_normal(x.shape(), static_cast<float>(mean), static_cast<float>(stddev), seed);
  return n.dtype() == x.dtype() ? n : ops::cast(n, x.dtype());
}

// ------------------------------------------------------------------ GaussianNoise

// keras.layers.GaussianNoise(stddev, seed=None): x + N(0, stddev^2) in training.
class GaussianNoise final : public Layer {
 public:
  explicit GaussianNoise(const Config &config) : GaussianNoise(ConfigReader(config, "GaussianNoise")) {}

 private:
  explicit GaussianNoise(ConfigReader &&r) : Layer("GaussianNoise", r) {
    stddev_ = r.get_float("stddev", -1);
    if (!(stddev_ >= 0))
      fail(Code::kInvalidArgument, "GaussianNoise: stddev must be >= 0; got ", stddev_,
           r.has("stddev") ? "" : " (stddev is required)");
    seed_ = read_seed(r);
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor &x = single_input(*this, inputs);
    if (!ctx.training || stddev_ == 0) return {x};
    return {ops::add(x, normal_like(x, 0.0, stddev_, seed_))};
  }
  void add_config(Config &c) const override {
    c.set("stddev", stddev_);
    write_seed(c, seed_);
  }
  double stddev_;
  int64_t seed_;
};

// ------------------------------------------------------------------ GaussianDropout

// keras.layers.GaussianDropout(rate, seed=None): x * N(1, rate / (1 - rate)) in training.
class GaussianDropout final : public Layer {
 public:
  explicit GaussianDropout(const Config &config) : GaussianDropout(ConfigReader(config, "GaussianDropout")) {}

 private:
  explicit GaussianDropout(ConfigReader &&r) : Layer("GaussianDropout", r) {
    rate_ = read_rate(r);
    seed_ = read_seed(r);
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor &x = single_input(*this, inputs);
    if (!ctx.training || rate_ == 0) return {x};
    return {ops::mul(x, normal_like(x, 1.0, std::sqrt(rate_ / (1.0 - rate_)), seed_))};
  }
  void add_config(Config &c) const override {
    c.set("rate", rate_);
    write_seed(c, seed_);
  }
  double rate_;
  int64_t seed_;
};

// ------------------------------------------------------------------ SpatialDropout

// keras.layers.SpatialDropout1D(rate, seed=None), SpatialDropout2D/3D(rate, data_format=None,
// seed=None): dropout whose mask is drawn once per sample and channel and shared by every
// spatial position, on an input of rank N + 2.
template <size_t N>
class SpatialDropout final : public Layer {
 public:
  explicit SpatialDropout(const Config &config) : SpatialDropout(ConfigReader(config, class_of())) {}

 private:
  static std::string class_of() { return "SpatialDropout" + std::to_string(N) + "D"; }
  explicit SpatialDropout(ConfigReader &&r) : Layer(class_of(), r) {
    rate_ = read_rate(r);
    if (N > 1) channels_first_ = read_channels_first(r);
    seed_ = read_seed(r);
    r.finish();
    input_spec_.ndim = static_cast<int64_t>(N + 2);
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor &x = single_input(*this, inputs);
    if (!ctx.training || rate_ == 0) return {x};
    std::vector<int64_t> noise_shape(N + 2, 1);  // -1: the input's dim (batch and channels)
    noise_shape[0] = -1;
    noise_shape[channels_first_ ? 1 : N + 1] = -1;
    return {ops::dropout(x, static_cast<float>(rate_), true, seed_, noise_shape)};
  }
  void add_config(Config &c) const override {
    c.set("rate", rate_);
    if (N > 1) c.set("data_format", data_format_name(channels_first_));
    write_seed(c, seed_);
  }
  double rate_;
  bool channels_first_ = false;
  int64_t seed_;
};

}  // namespace

void register_noise_layers() {
  register_class<GaussianNoise>("GaussianNoise");
  register_class<GaussianDropout>("GaussianDropout");
  register_class<SpatialDropout<1>>("SpatialDropout1D");
  register_class<SpatialDropout<2>>("SpatialDropout2D");
  register_class<SpatialDropout<3>>("SpatialDropout3D");
}

}  // namespace kiln::layers
