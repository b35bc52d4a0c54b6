// Keras's serialized form {"class_name": ..., "config": {...}} and the "known:" lists of the
// loss and metric registries.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"

namespace kiln::train {

// {"class_name": class_name, "config": config}.
Config serialized(const std::string &class_name, const Config &config);
// The class name and config of a serialized object (module and registered_name are accepted and
// ignored); `kind` ("loss", "metric") names the object in errors.
struct ClassAndConfig {
  std::string class_name;
  Config config;
};
ClassAndConfig read_serialized(const Config &serialized, const char *kind);
// "a, b, c".
std::string join_names(const std::vector<std::string> &names);

}  // namespace kiln::train
