#include "layers/initializers.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

// Seeded initializers use a stateless stream keyed by the seed; unseeded ones the global one.
struct Seed {
  std::optional<int64_t> value;
  void add_to(Config &c) const { c.set("seed", value); }
};

Seed read_seed(ConfigReader &r) { return Seed{r.has("seed") ? std::optional<int64_t>(r.get_int("seed", 0)) : std::nullopt}; }

void require_float_dtype(DType dtype, const std::string &who) {
  if (!is_floating(dtype))
    fail(Code::kInvalidArgument, who, ": cannot initialize a ", dtype_name(dtype), " weight; expected a float dtype");
}

Tensor as_dtype(const Tensor &t, DType dtype) { return t.dtype() == dtype ? t : ops::cast(t, dtype); }

Tensor uniform(const Shape &s, double lo, double hi, const Seed &seed) {
  return seed.value ? ops::stateless_random_uniform(s, {*seed.value, 0}, float(lo), float(hi))
                    : ops::random_uniform(s, float(lo), float(hi));
}
Tensor normal(const Shape &s, double mean, double stddev, const Seed &seed) {
  return seed.value ? ops::stateless_random_normal(s, {*seed.value, 0}, float(mean), float(stddev))
                    : ops::random_normal(s, float(mean), float(stddev));
}
Tensor truncated(const Shape &s, double mean, double stddev, const Seed &seed) {
  return seed.value ? ops::stateless_truncated_normal(s, {*seed.value, 0}, float(mean), float(stddev))
                    : ops::truncated_normal(s, float(mean), float(stddev));
}

class Constant final : public Initializer {
 public:
  Constant(std::string cls, double value) : cls_(std::move(cls)), value_(value) {}
  Tensor operator()(const Shape &shape, DType dtype) const override { return ops::fill(shape, value_, dtype); }
  std::string class_name() const override { return cls_; }
  Config get_config() const override {
    Config c;
    if (cls_ == "Constant") c.set("value", value_);
    return c;
  }

 private:
  std::string cls_;
  double value_;
};

// RandomUniform, RandomNormal, TruncatedNormal.
class Random final : public Initializer {
 public:
  enum Kind { kUniform, kNormal, kTruncated };
  Random(Kind kind, double a, double b, Seed seed) : kind_(kind), a_(a), b_(b), seed_(seed) {}
  Tensor operator()(const Shape &shape, DType dtype) const override {
    require_float_dtype(dtype, class_name());
    const Tensor t = kind_ == kUniform  ? uniform(shape, a_, b_, seed_)
                     : kind_ == kNormal ? normal(shape, a_, b_, seed_)
                                        : truncated(shape, a_, b_, seed_);
    return as_dtype(t, dtype);
  }
  std::string class_name() const override {
    return kind_ == kUniform ? "RandomUniform" : kind_ == kNormal ? "RandomNormal" : "TruncatedNormal";
  }
  Config get_config() const override {
    Config c;
    if (kind_ == kUniform)
      c.set("minval", a_).set("maxval", b_);
    else
      c.set("mean", a_).set("stddev", b_);
    seed_.add_to(c);
    return c;
  }

 private:
  Kind kind_;
  double a_, b_;
  Seed seed_;
};

// VarianceScaling's input_axes / output_axes (Keras 3.15): the kernel axes whose sizes multiply
// into fan_in and fan_out; unset (null), the fans are compute_fans's of the shape alone.
struct FanAxes {
  std::optional<std::vector<int64_t>> in, out;

  static FanAxes read(ConfigReader &r) {
    FanAxes a;
    a.in = r.get_optional_int_list("input_axes");
    a.out = r.get_optional_int_list("output_axes");
    return a;
  }
  // Written only when set, so the configs of initializers without them stay Keras 3's older form.
  void add_to(Config &c) const {
    if (in || out) c.set("input_axes", in).set("output_axes", out);
  }
};

// The product of shape's sizes along axes (Python indexing: negative counts from the end).
double fan_along(const Shape &s, const std::vector<int64_t> &axes, const std::string &who, const char *key) {
  double n = 1;
  for (int64_t a : axes) {
    if (a < -s.rank() || a >= s.rank())
      fail(Code::kInvalidArgument, who, ": ", key, " has axis ", a, ", out of range for the weight shape ",
           s.to_string());
    n *= double(s[a < 0 ? a + s.rank() : a]);
  }
  return n;
}

// Keras's compute_fans.
void fans(const Shape &s, double *fan_in, double *fan_out) {
  const int r = s.rank();
  if (r < 1) {
    *fan_in = *fan_out = 1;
  } else if (r == 1) {
    *fan_in = *fan_out = double(s[0]);
  } else if (r == 2) {
    *fan_in = double(s[0]);
    *fan_out = double(s[1]);
  } else {
    double receptive = 1;
    for (int i = 0; i < r - 2; ++i) receptive *= double(s[i]);
    *fan_in = double(s[r - 2]) * receptive;
    *fan_out = double(s[r - 1]) * receptive;
  }
}

class VarianceScaling final : public Initializer {
 public:
  VarianceScaling(std::string cls, double scale, std::string mode, std::string distribution, Seed seed,
                  FanAxes axes = {})
      : cls_(std::move(cls)),
        scale_(scale),
        mode_(std::move(mode)),
        dist_(std::move(distribution)),
        seed_(seed),
        axes_(std::move(axes)) {
    if (!(scale_ > 0)) fail(Code::kInvalidArgument, cls_, ": scale must be positive; got ", scale_);
    if (mode_ != "fan_in" && mode_ != "fan_out" && mode_ != "fan_avg")
      fail(Code::kInvalidArgument, cls_, ": mode '", mode_, "' is not one of fan_in, fan_out, fan_avg");
    std::transform(dist_.begin(), dist_.end(), dist_.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    if (dist_ == "normal") dist_ = "truncated_normal";  // Keras's legacy alias
    if (dist_ != "truncated_normal" && dist_ != "untruncated_normal" && dist_ != "uniform")
      fail(Code::kInvalidArgument, cls_, ": distribution '", dist_,
           "' is not one of truncated_normal, untruncated_normal, uniform");
  }
  Tensor operator()(const Shape &shape, DType dtype) const override {
    require_float_dtype(dtype, cls_);
    double fan_in, fan_out;
    if (axes_.in && axes_.out) {
      fan_in = fan_along(shape, *axes_.in, cls_, "input_axes");
      fan_out = fan_along(shape, *axes_.out, cls_, "output_axes");
    } else {
      fans(shape, &fan_in, &fan_out);
    }
    const double n = mode_ == "fan_in" ? fan_in : mode_ == "fan_out" ? fan_out : (fan_in + fan_out) / 2;
    const double s = scale_ / std::max(1.0, n);
    Tensor t;
    if (dist_ == "truncated_normal")
      t = truncated(shape, 0, std::sqrt(s) / 0.87962566103423978, seed_);  // std of N(0,1) cut at +-2
    else if (dist_ == "untruncated_normal")
      t = normal(shape, 0, std::sqrt(s), seed_);
    else
      t = uniform(shape, -std::sqrt(3 * s), std::sqrt(3 * s), seed_);
    return as_dtype(t, dtype);
  }
  std::string class_name() const override { return cls_; }
  Config get_config() const override {
    Config c;
    if (cls_ == "VarianceScaling") c.set("scale", scale_).set("mode", mode_).set("distribution", dist_);
    seed_.add_to(c);
    axes_.add_to(c);
    return c;
  }
  // EinsumDense's kernel initializer (Keras's _update_kernel_initializer): this one with the
  // kernel's input and output axes, when it has not both already.
  InitializerPtr with_axes(const std::vector<int64_t> &in, const std::vector<int64_t> &out) const {
    return std::make_shared<VarianceScaling>(cls_, scale_, mode_, dist_, seed_, FanAxes{in, out});
  }
  bool has_axes() const { return axes_.in && axes_.out; }

 private:
  std::string cls_;
  double scale_;
  std::string mode_, dist_;
  Seed seed_;
  FanAxes axes_;
};

// Orthogonal: Q of the QR decomposition of a normal matrix (signs fixed by R's diagonal), as
// Keras; computed in double by modified Gram-Schmidt.
class Orthogonal final : public Initializer {
 public:
  Orthogonal(double gain, Seed seed) : gain_(gain), seed_(seed) {}
  Tensor operator()(const Shape &shape, DType dtype) const override {
    require_float_dtype(dtype, "Orthogonal");
    if (shape.rank() < 2)
      fail(Code::kInvalidArgument, "Orthogonal: shape ", shape.to_string(), " has rank ", shape.rank(),
           "; expected rank 2 or more");
    int64_t rows = 1;
    for (int i = 0; i < shape.rank() - 1; ++i) rows *= shape[i];
    const int64_t cols = shape[shape.rank() - 1];
    const bool flip = rows < cols;
    const int64_t m = flip ? cols : rows, n = flip ? rows : cols;  // m >= n: factor an m x n matrix
    const Tensor a = normal(Shape({m, n}), 0, 1, seed_);
    std::vector<double> q(a.data<float>(), a.data<float>() + m * n);  // row-major m x n
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < j; ++k) {
        double dot = 0;
        for (int64_t i = 0; i < m; ++i) dot += q[i * n + k] * q[i * n + j];
        for (int64_t i = 0; i < m; ++i) q[i * n + j] -= dot * q[i * n + k];
      }
      double norm = 0;
      for (int64_t i = 0; i < m; ++i) norm += q[i * n + j] * q[i * n + j];
      norm = std::sqrt(norm);
      // R's diagonal is positive here (norm > 0), so no sign fix is needed; a zero column
      // (probability 0) is left as is.
      if (norm > 0)
        for (int64_t i = 0; i < m; ++i) q[i * n + j] /= norm;
    }
    std::vector<float> out(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        out[size_t(r * cols + c)] = float(gain_ * (flip ? q[c * n + r] : q[r * n + c]));
    return as_dtype(Tensor::from_data(DType::kFloat32, shape, out.data(), out.size() * sizeof(float)), dtype);
  }
  std::string class_name() const override { return "Orthogonal"; }
  Config get_config() const override {
    Config c;
    c.set("gain", gain_);
    seed_.add_to(c);
    return c;
  }

 private:
  double gain_;
  Seed seed_;
};

using Maker = std::function<InitializerPtr(ConfigReader &)>;

InitializerPtr variance_scaling(const std::string &cls, double scale, const char *mode, const char *dist,
                                ConfigReader &r) {
  const Seed seed = read_seed(r);
  return std::make_shared<VarianceScaling>(cls, scale, mode, dist, seed, FanAxes::read(r));
}

const std::map<std::string, Maker> &makers() {
  static const std::map<std::string, Maker> m = {
      {"Zeros", [](ConfigReader &) { return std::make_shared<Constant>("Zeros", 0.0); }},
      {"Ones", [](ConfigReader &) { return std::make_shared<Constant>("Ones", 1.0); }},
      {"Constant",
       [](ConfigReader &r) { return std::make_shared<Constant>("Constant", r.get_float("value", 0.0)); }},
      {"RandomUniform",
       [](ConfigReader &r) {
         const double lo = r.get_float("minval", -0.05), hi = r.get_float("maxval", 0.05);
         return std::make_shared<Random>(Random::kUniform, lo, hi, read_seed(r));
       }},
      {"RandomNormal",
       [](ConfigReader &r) {
         const double mean = r.get_float("mean", 0.0), sd = r.get_float("stddev", 0.05);
         return std::make_shared<Random>(Random::kNormal, mean, sd, read_seed(r));
       }},
      {"TruncatedNormal",
       [](ConfigReader &r) {
         const double mean = r.get_float("mean", 0.0), sd = r.get_float("stddev", 0.05);
         return std::make_shared<Random>(Random::kTruncated, mean, sd, read_seed(r));
       }},
      {"VarianceScaling",
       [](ConfigReader &r) {
         const double scale = r.get_float("scale", 1.0);
         const std::string mode = r.get_string("mode", "fan_in");
         const std::string dist = r.get_string("distribution", "truncated_normal");
         const Seed seed = read_seed(r);
         return std::make_shared<VarianceScaling>("VarianceScaling", scale, mode, dist, seed,
                                                  FanAxes::read(r));
       }},
      {"GlorotUniform",
       [](ConfigReader &r) { return variance_scaling("GlorotUniform", 1, "fan_avg", "uniform", r); }},
      {"GlorotNormal",
       [](ConfigReader &r) { return variance_scaling("GlorotNormal", 1, "fan_avg", "truncated_normal", r); }},
      {"HeNormal",
       [](ConfigReader &r) { return variance_scaling("HeNormal", 2, "fan_in", "truncated_normal", r); }},
      {"HeUniform", [](ConfigReader &r) { return variance_scaling("HeUniform", 2, "fan_in", "uniform", r); }},
      {"LecunNormal",
       [](ConfigReader &r) { return variance_scaling("LecunNormal", 1, "fan_in", "truncated_normal", r); }},
      {"LecunUniform",
       [](ConfigReader &r) { return variance_scaling("LecunUniform", 1, "fan_in", "uniform", r); }},
      {"Orthogonal",
       [](ConfigReader &r) { return std::make_shared<Orthogonal>(r.get_float("gain", 1.0), read_seed(r)); }},
  };
  return m;
}

// Keras's snake-case aliases.
const std::map<std::string, std::string> &aliases() {
  static const std::map<std::string, std::string> a = {
      {"zeros", "Zeros"},
      {"ones", "Ones"},
      {"constant", "Constant"},
      {"random_uniform", "RandomUniform"},
      {"random_normal", "RandomNormal"},
      {"truncated_normal", "TruncatedNormal"},
      {"variance_scaling", "VarianceScaling"},
      {"glorot_uniform", "GlorotUniform"},
      {"glorot_normal", "GlorotNormal"},
      {"he_normal", "HeNormal"},
      {"he_uniform", "HeUniform"},
      {"lecun_normal", "LecunNormal"},
      {"lecun_uniform", "LecunUniform"},
      {"orthogonal", "Orthogonal"},
  };
  return a;
}

InitializerPtr make(const std::string &name, const Config &config) {
  auto alias = aliases().find(name);
  const std::string cls = alias != aliases().end() ? alias->second : name;
  auto it = makers().find(cls);
  if (it == makers().end()) {
    std::string known;
    for (const auto &[k, v] : aliases()) known += (known.empty() ? "" : ", ") + k;
    fail(Code::kNotFound, "unknown initializer '", name, "'; known: ", known);
  }
  ConfigReader r(config, cls);
  InitializerPtr init = it->second(r);
  r.finish();
  return init;
}

}  // namespace

InitializerPtr get_initializer(const std::string &name) { return make(name, Config()); }

InitializerPtr deserialize_initializer(const Config &serialized) {
  ConfigReader r(serialized, "initializer");
  const std::string cls = r.get_string("class_name", "");
  if (cls.empty()) fail(Code::kInvalidArgument, "initializer: a serialized initializer needs a 'class_name'");
  const std::optional<Config> config = r.get_optional_config("config");
  r.accept({"module", "registered_name"});  // written by Keras 3, not needed here
  r.finish();
  return make(cls, config.value_or(Config()));
}

InitializerPtr with_fan_axes(const InitializerPtr &init, const std::vector<int64_t> &input_axes,
                             const std::vector<int64_t> &output_axes) {
  const auto *vs = dynamic_cast<const VarianceScaling *>(init.get());
  return vs && !vs->has_axes() ? vs->with_axes(input_axes, output_axes) : init;
}

Config serialize_initializer(const Initializer &init) {
  Config c;
  c.set("class_name", init.class_name()).set("config", init.get_config());
  return c;
}

InitializerPtr initializer_from_value(const Config &config, const std::string &key) {
  switch (config.type(key)) {
    case Config::Type::kString: return get_initializer(config.get_string(key));
    case Config::Type::kConfig: return deserialize_initializer(config.get_config(key));
    default: break;
  }
  fail(Code::kInvalidArgument, "config: key '", key, "' is ", config_type_name(config.type(key)),
       "; expected an initializer name or a serialized initializer");
}

}  // namespace kiln::layers
