#include "layers/policy.h"

#include <mutex>

#include "core/error.h"

namespace kiln::layers {

namespace {

struct KnownPolicy {
  const char *name;
  DType compute, variable;
};
constexpr KnownPolicy kPolicies[] = {
    {"float32", DType::kFloat32, DType::kFloat32},
    {"float64", DType::kFloat64, DType::kFloat64},
    {"bfloat16", DType::kBFloat16, DType::kBFloat16},
    {"mixed_bfloat16", DType::kBFloat16, DType::kFloat32},
};

std::mutex &global_mu() {
  static std::mutex mu;
  return mu;
}
DTypePolicy &global() {
  static DTypePolicy p;
  return p;
}

}  // namespace

std::string known_dtype_policies() {
  std::string out;
  for (const KnownPolicy &k : kPolicies) out += (out.empty() ? "" : ", ") + std::string(k.name);
  return out;
}

DTypePolicy dtype_policy(const std::string &name, const std::string &owner) {
  for (const KnownPolicy &k : kPolicies)
    if (name == k.name) return DTypePolicy{k.name, k.compute, k.variable};
  if (name == "float16" || name == "mixed_float16" || name == "half")
    fail(Code::kUnimplemented, owner, ": dtype policy '", name,
         "' needs float16, which kiln does not have; use 'mixed_bfloat16' (or one of ", known_dtype_policies(), ")");
  fail(Code::kInvalidArgument, owner, ": '", name, "' is not a dtype policy; expected one of ", known_dtype_policies());
}

void set_global_policy(const DTypePolicy &policy) {
  const DTypePolicy checked = dtype_policy(policy.name, "set_global_policy");
  std::lock_guard<std::mutex> lock(global_mu());
  global() = checked;
}

DTypePolicy global_policy() {
  std::lock_guard<std::mutex> lock(global_mu());
  return global();
}

std::optional<std::string> policy_name_from_config(const Config &config, const std::string &key,
                                                   const std::string &owner) {
  if (!config.has(key) || config.is_null(key)) return std::nullopt;
  switch (config.type(key)) {
    case Config::Type::kString:
      return config.get_string(key);
    case Config::Type::kConfig: {
      // Keras 3: {"module": "keras", "class_name": "DTypePolicy", "config": {"name": ...},
      // "registered_name": null}; tf.keras 2: {"class_name": "Policy", "config": {"name": ...}}.
      const Config c = config.get_config(key);
      ConfigReader r(c, owner + ": " + key);
      const std::string cls = r.get_string("class_name", "DTypePolicy");
      if (cls != "DTypePolicy" && cls != "Policy" && cls != "FloatDTypePolicy")
        fail(Code::kInvalidArgument, owner, ": ", key, " has class_name '", cls,
             "'; expected 'DTypePolicy' (or tf.keras's 'Policy')");
      const std::optional<Config> inner = r.get_optional_config("config");
      r.accept({"module", "registered_name"});
      r.finish();
      if (!inner || !inner->has("name") || inner->type("name") != Config::Type::kString)
        fail(Code::kInvalidArgument, owner, ": ", key,
             " is a serialized DTypePolicy without a name; expected {\"class_name\": \"DTypePolicy\", "
             "\"config\": {\"name\": \"mixed_bfloat16\"}}");
      return inner->get_string("name");
    }
    default:
      fail(Code::kInvalidArgument, owner, ": ", key,
           " must be a policy name (e.g. 'mixed_bfloat16') or a serialized DTypePolicy; got ", config.to_json());
  }
}

DTypePolicy policy_from_config(const Config &config, const std::string &key, const std::string &owner) {
  const std::optional<std::string> name = policy_name_from_config(config, key, owner);
  return name ? dtype_policy(*name, owner) : global_policy();
}

void set_policy_config(Config &config, const std::string &key, const DTypePolicy &policy) {
  if (!policy.mixed()) {
    config.set(key, policy.name);
    return;
  }
  Config inner;
  inner.set("name", policy.name);
  Config c;
  c.set("module", "keras").set("class_name", "DTypePolicy").set("config", inner).set_null("registered_name");
  config.set(key, c);
}

}  // namespace kiln::layers
