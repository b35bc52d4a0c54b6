#include "core/config.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "core/error.h"
#include "core/utf8.h"

namespace kiln {

namespace {

Config::Type type_of(const Config::Json &v) {
  switch (v.type()) {
    case Config::Json::value_t::null: return Config::Type::kNull;
    case Config::Json::value_t::boolean: return Config::Type::kBool;
    case Config::Json::value_t::number_integer:
    case Config::Json::value_t::number_unsigned: return Config::Type::kInt;
    case Config::Json::value_t::number_float: return Config::Type::kFloat;
    case Config::Json::value_t::string: return Config::Type::kString;
    case Config::Json::value_t::array: return Config::Type::kList;
    case Config::Json::value_t::object: return Config::Type::kConfig;
    default: break;
  }
  return Config::Type::kNull;  // binary and discarded values never enter a Config
}

// The value as it would print, shortened: errors quote what they got.
std::string quote(const Config::Json &v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>()))  // dump() writes these as null
    return std::isnan(v.get<double>()) ? "NaN" : v.get<double>() > 0 ? "Infinity" : "-Infinity";
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

[[noreturn]] void wrong_type(const std::string &key, const Config::Json &v, const char *expected) {
  fail(Code::kInvalidArgument, "config: key '", key, "' is ", config_type_name(type_of(v)), " ", quote(v),
       "; expected ", expected);
}

bool as_int(const Config::Json &v, int64_t *out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.2e18) {
      *out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

int64_t int_of(const std::string &key, const Config::Json &v, const char *expected) {
  int64_t i = 0;
  if (!as_int(v, &i)) wrong_type(key, v, expected);
  return i;
}

double float_of(const std::string &key, const Config::Json &v, const char *expected) {
  if (!v.is_number()) wrong_type(key, v, expected);
  return v.get<double>();
}

void require_key(const std::string &key) {
  if (key.empty()) fail(Code::kInvalidArgument, "config: a key must not be empty");
  require_utf8(key, "config", "a key");  // configs are JSON, which holds UTF-8 text only
}

void require_text(const std::string &key, const std::string &v) {
  if (!is_utf8(v)) require_utf8(v, "config", ("the string of key '" + key + "'").c_str());
}

// Non-finite floats have no JSON spelling (a config must survive to_json/from_json), so refuse.
void require_finite(const std::string &key, double v) {
  if (!std::isfinite(v))
    fail(Code::kInvalidArgument, "config: key '", key, "' is ", v, "; expected a finite float (configs are JSON)");
}

}  // namespace

const char *config_type_name(Config::Type t) {
  switch (t) {
    case Config::Type::kNull: return "null";
    case Config::Type::kBool: return "a bool";
    case Config::Type::kInt: return "an int";
    case Config::Type::kFloat: return "a float";
    case Config::Type::kString: return "a string";
    case Config::Type::kList: return "a list";
    case Config::Type::kConfig: return "a config";
  }
  return "unknown";
}

Config::Config() : value_(Json::object()) {}

namespace {
// Configs nest at most this deep (objects and lists): serialising, copying and reading one walk
// it recursively, so a deeper one would overflow the stack. Real configs nest a few dozen levels.
constexpr int kMaxConfigDepth = 512;

// Whether v nests deeper than `levels`; its own recursion stops at the limit.
bool nests_deeper_than(const Config::Json &v, int levels) {
  if (!v.is_structured()) return false;
  if (levels <= 0) return true;
  for (const auto &e : v)
    if (nests_deeper_than(e, levels - 1)) return true;
  return false;
}

void require_depth(const Config::Json &v, int levels, const std::string &what) {
  if (nests_deeper_than(v, levels))
    fail(Code::kInvalidArgument, what, ": the config nests deeper than ", kMaxConfigDepth,
         " levels of objects and lists; expected at most ", kMaxConfigDepth);
}
}  // namespace

Config Config::from_value(Json value, const std::string &what) {
  require_depth(value, kMaxConfigDepth, what);  // first: quoting a deeper value would recurse
  if (!value.is_object())
    fail(Code::kInvalidArgument, what, ": expected a JSON object ({...}); got ",
         config_type_name(type_of(value)), " ", quote(value));
  return Config(std::move(value));
}

// Non-finite floats in JSON text: Python's json module writes NaN, Infinity and -Infinity, which
// nlohmann's parser and dumper do not know. Both directions go through marker strings that no
// real config holds.
namespace {

const char kMarkerPrefix[] = "\x01kiln-nonfinite:";

std::string marker(double d) {
  return std::string(kMarkerPrefix) + (std::isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
}

bool has_nonfinite(const Config::Json &v) {
  if (v.is_number_float()) return !std::isfinite(v.get<double>());
  if (v.is_structured())
    for (const auto &e : v) if (has_nonfinite(e)) return true;
  return false;
}

void nonfinite_to_markers(Config::Json &v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    v = marker(v.get<double>());
  } else if (v.is_structured()) {
    for (auto &e : v) nonfinite_to_markers(e);
  }
}

void markers_to_nonfinite(Config::Json &v) {
  if (v.is_string()) {
    const std::string &s = v.get_ref<const std::string &>();
    if (s.rfind(kMarkerPrefix, 0) != 0) return;
    const std::string word = s.substr(sizeof(kMarkerPrefix) - 1);
    if (word == "NaN") v = std::numeric_limits<double>::quiet_NaN();
    else if (word == "Infinity") v = std::numeric_limits<double>::infinity();
    else if (word == "-Infinity") v = -std::numeric_limits<double>::infinity();
  } else if (v.is_structured()) {
    for (auto &e : v) markers_to_nonfinite(e);
  }
}

// The text with each bare NaN / Infinity / -Infinity (outside strings) as a quoted marker; false
// when there is none.
bool quote_nonfinite_words(const std::string &text, std::string &out) {
  static const char *const kWords[] = {"-Infinity", "Infinity", "NaN"};
  bool in_string = false, found = false;
  out.clear();
  out.reserve(text.size() + 32);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) out += text[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    bool matched = false;
    for (const char *w : kWords) {
      const size_t n = std::strlen(w);
      if (text.compare(i, n, w) == 0) {
        Config::Json quoted = std::string(kMarkerPrefix) + w;
        out += quoted.dump();
        i += n - 1;
        matched = found = true;
        break;
      }
    }
    if (!matched) out += c;
  }
  return found;
}

}  // namespace

namespace {
// A "name" holding a NUL ("\u0000" in the JSON text), at any depth: names go back to C callers
// as C strings, which end at the first NUL ("a\u0000b" would read back as "a"). Other strings
// keep their NULs (Python reads configs back as JSON). Empty when none.
std::string name_with_nul(const Config::Json &v) {
  if (v.is_object())
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key() == "name" && it.value().is_string() &&
          it.value().get_ref<const std::string &>().find('\0') != std::string::npos)
        return it.value().get<std::string>();
      std::string s = name_with_nul(it.value());
      if (!s.empty()) return s;
    }
  if (v.is_array())
    for (const Config::Json &e : v) {
      std::string s = name_with_nul(e);
      if (!s.empty()) return s;
    }
  return "";
}
}  // namespace

Config Config::from_json(const std::string &text, const char *what) {
  Json v = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::string quoted;
  if (v.is_discarded() && quote_nonfinite_words(text, quoted)) {
    v = Json::parse(quoted, nullptr, /*allow_exceptions=*/false);
    if (!v.is_discarded()) {
      require_depth(v, kMaxConfigDepth, what);  // before the markers' recursive walk
      markers_to_nonfinite(v);
    }
  }
  if (v.is_discarded()) fail(Code::kInvalidArgument, what, ": not valid JSON: ", text.substr(0, 80));
  require_depth(v, kMaxConfigDepth, what);  // before the recursive walk below
  const std::string nul = name_with_nul(v);
  if (!nul.empty())
    fail(Code::kInvalidArgument, what, ": the name ", Json(nul).dump(),
         " holds a NUL byte; expected a name without one (C strings end at a NUL)");
  return from_value(std::move(v), what);
}

std::string Config::to_json(int indent) const {
  // nlohmann's serializer grows its indent buffer (512 spaces) at most twofold a level, so a
  // level may add no more than 1024.
  if (indent > kMaxJsonIndent)
    fail(Code::kInvalidArgument, "config to_json: indent ", indent,
         " is out of range; expected a negative value ", "(compact) or 0 to ", kMaxJsonIndent);
  if (!has_nonfinite(value_)) return value_.dump(indent);
  Json copy = value_;
  nonfinite_to_markers(copy);
  std::string text = copy.dump(indent);
  for (const char *w : {"-Infinity", "Infinity", "NaN"}) {
    const std::string quoted = Json(std::string(kMarkerPrefix) + w).dump();
    for (size_t pos = text.find(quoted); pos != std::string::npos; pos = text.find(quoted, pos + 1))
      text.replace(pos, quoted.size(), w);
  }
  return text;
}

bool Config::has(const std::string &key) const { return value_.contains(key); }

std::vector<std::string> Config::keys() const {
  std::vector<std::string> k;
  k.reserve(value_.size());
  for (auto it = value_.begin(); it != value_.end(); ++it) k.push_back(it.key());
  return k;
}

const Config::Json &Config::at(const std::string &key) const {
  auto it = value_.find(key);
  if (it == value_.end()) fail(Code::kNotFound, "config: no key '", key, "'");
  return *it;
}

Config::Type Config::type(const std::string &key) const { return type_of(at(key)); }

void Config::erase(const std::string &key) { value_.erase(key); }

void Config::update(const Config &other) {
  for (auto it = other.value_.begin(); it != other.value_.end(); ++it) value_[it.key()] = it.value();
}

Config &Config::set_null(const std::string &key) {
  require_key(key);
  value_[key] = nullptr;
  return *this;
}
Config &Config::set(const std::string &key, bool v) {
  require_key(key);
  value_[key] = v;
  return *this;
}
Config &Config::set(const std::string &key, int64_t v) {
  require_key(key);
  value_[key] = v;
  return *this;
}
Config &Config::set(const std::string &key, double v) {
  require_key(key);
  require_finite(key, v);
  value_[key] = v;
  return *this;
}
Config &Config::set_any_float(const std::string &key, double v) {
  require_key(key);
  value_[key] = v;
  return *this;
}
Config &Config::set_any_float(const std::string &key, const std::vector<double> &v) {
  require_key(key);
  value_[key] = v;
  return *this;
}
Config &Config::set(const std::string &key, const std::string &v) {
  require_key(key);
  require_text(key, v);
  value_[key] = v;
  return *this;
}
Config &Config::set(const std::string &key, const std::vector<int64_t> &v) {
  require_key(key);
  value_[key] = v;
  return *this;
}
Config &Config::set(const std::string &key, const std::vector<double> &v) {
  require_key(key);
  for (double d : v) require_finite(key, d);
  value_[key] = v;
  return *this;
}
Config &Config::set(const std::string &key, const std::vector<std::string> &v) {
  require_key(key);
  for (const std::string &e : v) require_text(key, e);
  value_[key] = v;
  return *this;
}
Config &Config::set(const std::string &key, const Config &v) {
  require_key(key);
  require_depth(v.value_, kMaxConfigDepth - 1, "config: key '" + key + "'");
  value_[key] = v.value_;
  return *this;
}
Config &Config::set(const std::string &key, const std::vector<Config> &v) {
  require_key(key);
  for (const Config &c : v) require_depth(c.value_, kMaxConfigDepth - 2, "config: key '" + key + "'");
  Json list = Json::array();
  for (const Config &c : v) list.push_back(c.value_);
  value_[key] = std::move(list);
  return *this;
}

Config &Config::set_dims(const std::string &key, const std::vector<int64_t> &dims) {
  require_key(key);
  Json list = Json::array();
  for (int64_t d : dims) list.push_back(d < 0 ? Json(nullptr) : Json(d));
  value_[key] = std::move(list);
  return *this;
}

std::vector<int64_t> Config::get_dims(const std::string &key) const {
  const Json &v = at(key);
  if (!v.is_array()) wrong_type(key, v, "a shape (a list of ints and nulls)");
  std::vector<int64_t> out;
  for (const Json &e : v) out.push_back(e.is_null() ? -1 : int_of(key, e, "a shape (a list of ints and nulls)"));
  return out;
}

bool Config::get_bool(const std::string &key) const {
  const Json &v = at(key);
  if (!v.is_boolean()) wrong_type(key, v, "a bool");
  return v.get<bool>();
}
int64_t Config::get_int(const std::string &key) const { return int_of(key, at(key), "an int"); }
double Config::get_float(const std::string &key) const { return float_of(key, at(key), "a float"); }
std::string Config::get_string(const std::string &key) const {
  const Json &v = at(key);
  if (!v.is_string()) wrong_type(key, v, "a string");
  return v.get<std::string>();
}
bool Config::is_null(const std::string &key) const { return at(key).is_null(); }

std::vector<int64_t> Config::get_int_list(const std::string &key) const {
  const Json &v = at(key);
  if (!v.is_array()) return {int_of(key, v, "a list of ints")};
  std::vector<int64_t> out;
  for (const Json &e : v) out.push_back(int_of(key, e, "a list of ints"));
  return out;
}
std::vector<double> Config::get_float_list(const std::string &key) const {
  const Json &v = at(key);
  if (!v.is_array()) return {float_of(key, v, "a list of floats")};
  std::vector<double> out;
  for (const Json &e : v) out.push_back(float_of(key, e, "a list of floats"));
  return out;
}
std::vector<std::string> Config::get_string_list(const std::string &key) const {
  const Json &v = at(key);
  if (!v.is_array()) wrong_type(key, v, "a list of strings");
  std::vector<std::string> out;
  for (const Json &e : v) {
    if (!e.is_string()) wrong_type(key, v, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}
Config Config::get_config(const std::string &key) const {
  const Json &v = at(key);
  if (!v.is_object()) wrong_type(key, v, "a config");
  return Config(v);
}
std::vector<Config> Config::get_config_list(const std::string &key) const {
  const Json &v = at(key);
  if (!v.is_array()) wrong_type(key, v, "a list of configs");
  std::vector<Config> out;
  for (const Json &e : v) {
    if (!e.is_object()) wrong_type(key, v, "a list of configs");
    out.push_back(Config(e));
  }
  return out;
}

// ---------------------------------------------------------------- ConfigReader

ConfigReader::ConfigReader(const Config &config, std::string owner) : config_(config), owner_(std::move(owner)) {}

template <typename F>
auto ConfigReader::read(const std::string &key, F &&f) -> decltype(f()) {
  known_.insert(key);
  try {
    return f();
  } catch (const Error &e) {
    fail(e.code(), owner_, ": ", e.what());
  }
}

bool ConfigReader::has(const std::string &key) {
  known_.insert(key);
  return config_.has(key) && !config_.is_null(key);
}
bool ConfigReader::get_bool(const std::string &key, bool def) {
  return has(key) ? read(key, [&] { return config_.get_bool(key); }) : def;
}
int64_t ConfigReader::get_int(const std::string &key, int64_t def) {
  return has(key) ? read(key, [&] { return config_.get_int(key); }) : def;
}
int64_t ConfigReader::get_int(const std::string &key) {
  if (!has(key)) fail(Code::kInvalidArgument, owner_, ": config key '", key, "' is required");
  return read(key, [&] { return config_.get_int(key); });
}
double ConfigReader::get_float(const std::string &key, double def) {
  // A setting must be finite, also when it came from JSON text holding NaN or Infinity.
  return has(key) ? read(key, [&] {
    const double v = config_.get_float(key);
    require_finite(key, v);
    return v;
  })
                  : def;
}
std::string ConfigReader::get_string(const std::string &key, const std::string &def) {
  return has(key) ? read(key, [&] { return config_.get_string(key); }) : def;
}
std::optional<std::string> ConfigReader::get_optional_string(const std::string &key) {
  if (!has(key)) return std::nullopt;
  return read(key, [&] { return config_.get_string(key); });
}
std::vector<int64_t> ConfigReader::get_int_list(const std::string &key, const std::vector<int64_t> &def) {
  return has(key) ? read(key, [&] { return config_.get_int_list(key); }) : def;
}
std::optional<std::vector<int64_t>> ConfigReader::get_optional_int_list(const std::string &key) {
  if (!has(key)) return std::nullopt;
  return read(key, [&] { return config_.get_int_list(key); });
}
std::optional<Config> ConfigReader::get_optional_config(const std::string &key) {
  if (!has(key)) return std::nullopt;
  return read(key, [&] { return config_.get_config(key); });
}
std::vector<Config> ConfigReader::get_config_list(const std::string &key) {
  if (!has(key)) return {};
  return read(key, [&] { return config_.get_config_list(key); });
}
void ConfigReader::accept(std::initializer_list<const char *> keys) {
  for (const char *k : keys) known_.insert(k);
}

void ConfigReader::finish() const {
  for (const std::string &k : config_.keys()) {
    if (known_.count(k)) continue;
    std::string accepted;
    for (const std::string &a : known_) accepted += (accepted.empty() ? "" : ", ") + a;
    fail(Code::kInvalidArgument, owner_, ": unknown config key '", k, "'; accepted keys: ", accepted);
  }
}

}  // namespace kiln
