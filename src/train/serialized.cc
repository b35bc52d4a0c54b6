#include "train/serialized.h"

#include <optional>

#include "core/error.h"

namespace kiln::train {

Config serialized(const std::string &class_name, const Config &config) {
  Config c;
  c.set("class_name", class_name);
  c.set("config", config);
  return c;
}

ClassAndConfig read_serialized(const Config &serialized, const char *kind) {
  ConfigReader r(serialized, kind);
  ClassAndConfig out;
  out.class_name = r.get_string("class_name", "");
  if (out.class_name.empty())
    fail(Code::kInvalidArgument, kind, ": a serialized ", kind, " needs a 'class_name'");
  out.config = r.get_optional_config("config").value_or(Config());
  r.accept({"module", "registered_name"});
  r.finish();
  return out;
}

std::string join_names(const std::vector<std::string> &names) {
  std::string s;
  for (const std::string &n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace kiln::train
