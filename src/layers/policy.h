// Keras's dtype policies (keras.DTypePolicy, keras.mixed_precision): a layer's compute dtype and
// variable dtype. "float32", "float64" and "bfloat16" use one dtype for both; "mixed_bfloat16"
// computes in bfloat16 and keeps variables (so gradients and optimizer state) in float32. A layer
// made without a dtype takes the global policy in force when it is constructed.
#pragma once

#include <optional>
#include <string>

#include "core/config.h"
#include "core/dtype.h"

namespace kiln::layers {

struct DTypePolicy {
  std::string name = "float32";
  DType compute_dtype = DType::kFloat32;
  DType variable_dtype = DType::kFloat32;
  // Compute and variable dtypes differ: variables are read cast to the compute dtype in a call.
  bool mixed() const { return compute_dtype != variable_dtype; }
  bool operator==(const DTypePolicy &o) const { return name == o.name; }
  bool operator!=(const DTypePolicy &o) const { return !(*this == o); }
};

// The policy of that name. An unknown name is INVALID_ARGUMENT listing the known policies;
// "float16" and "mixed_float16" are UNIMPLEMENTED (kiln has no float16 dtype). owner prefixes
// the message ("Dense: ...").
DTypePolicy dtype_policy(const std::string &name, const std::string &owner = "dtype policy");
// The names dtype_policy accepts, comma-separated.
std::string known_dtype_policies();

// keras.mixed_precision.set_global_policy / global_policy: the policy layers made without a
// dtype take. Process-wide (as tf.keras); thread-safe. Starts as "float32".
void set_global_policy(const DTypePolicy &policy);
DTypePolicy global_policy();

// The policy name a layer config's "dtype" value gives: none when absent or null, the name itself, or
// the name inside Keras 3's serialized policy {"class_name": "DTypePolicy" (or tf.keras's "Policy"),
// "config": {"name": ...}}. Any other value is INVALID_ARGUMENT naming owner and key.
std::optional<std::string> policy_name_from_config(const Config &config, const std::string &key,
                                                   const std::string &owner);
// A layer config's "dtype" value as a policy: the global policy when it names none.
DTypePolicy policy_from_config(const Config &config, const std::string &key, const std::string &owner);
// The "dtype" value get_config writes: the plain name for a one-dtype policy (as tf.keras 2),
// Keras 3's serialized DTypePolicy for a mixed one. set_policy_config writes it into config[key].
void set_policy_config(Config &config, const std::string &key, const DTypePolicy &policy);

}  // namespace kiln::layers
