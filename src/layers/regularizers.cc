#include "layers/regularizers.h"

#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace kiln::layers {

Tensor Regularizer::operator()(const Tensor &w) const {
  const Tensor x = w.dtype() == DType::kFloat32 ? w : ops::cast(w, DType::kFloat32);
  Tensor total = ops::zeros(Shape({}));
  if (l1_ != 0) total = ops::add(total, ops::mul(ops::fill(Shape({}), l1_), ops::sum(ops::abs(x), {}, false)));
  if (l2_ != 0)
    total = ops::add(total, ops::mul(ops::fill(Shape({}), l2_), ops::sum(ops::square(x), {}, false)));
  return total;
}

std::string Regularizer::class_name() const {
  if (l1_ != 0 && l2_ == 0) return "L1";
  if (l2_ != 0 && l1_ == 0) return "L2";
  return "L1L2";
}

Config Regularizer::get_config() const {
  Config c;
  const std::string cls = class_name();
  if (cls != "L2") c.set("l1", l1_);
  if (cls != "L1") c.set("l2", l2_);
  return c;
}

Config serialize_regularizer(const Regularizer &r) {
  Config c;
  c.set("class_name", r.class_name()).set("config", r.get_config());
  return c;
}

namespace {

void require_factor(double v, const char *what) {
  if (!std::isfinite(v) || v < 0)
    fail(Code::kInvalidArgument, "regularizer: ", what, " is ", v, "; expected a finite value >= 0");
}

RegularizerPtr make(const std::string &cls, const Config &config) {
  ConfigReader r(config, cls);
  double l1 = 0, l2 = 0;
  if (cls == "L1" || cls == "l1") {
    l1 = r.get_float("l1", 0.01);
  } else if (cls == "L2" || cls == "l2") {
    l2 = r.get_float("l2", 0.01);
  } else if (cls == "L1L2" || cls == "l1_l2") {
    // keras.regularizers.l1_l2's defaults (TF 2.x): 0.01 each; the class L1L2 defaults to 0.
    const double def = cls == "l1_l2" ? 0.01 : 0.0;
    l1 = r.get_float("l1", def);
    l2 = r.get_float("l2", def);
  } else {
    fail(Code::kNotFound, "unknown regularizer '", cls, "'; known: l1, l2, l1_l2 (L1, L2, L1L2)");
  }
  r.finish();
  require_factor(l1, "l1");
  require_factor(l2, "l2");
  return std::make_shared<Regularizer>(l1, l2);
}

}  // namespace

RegularizerPtr regularizer_from_value(const Config &config, const std::string &key) {
  if (!config.has(key)) return nullptr;
  switch (config.type(key)) {
    case Config::Type::kNull: return nullptr;
    case Config::Type::kString: return make(config.get_string(key), Config());
    case Config::Type::kConfig: {
      const Config s = config.get_config(key);
      ConfigReader r(s, "regularizer");
      const std::string cls = r.get_string("class_name", "");
      const std::optional<Config> inner = r.get_optional_config("config");
      r.accept({"module", "registered_name"});
      r.finish();
      return make(cls, inner.value_or(Config()));
    }
    default: break;
  }
  fail(Code::kInvalidArgument, "config: key '", key, "' is ", config_type_name(config.type(key)),
       "; expected a regularizer name or a serialized regularizer");
}

}  // namespace kiln::layers
