// Config: the typed key-value settings every configurable object takes and gives back
// (Keras's get_config / from_config): layers now; optimizers, losses, metrics, callbacks and the
// SavedModel later. An ordered map (keys keep insertion order, as a Keras config dict does) from
// string keys to null, bool, int, float, string, lists and nested configs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln {

class Config {
 public:
  using Json = nlohmann::ordered_json;
  // Values match KILN_CONFIG_* in include/kiln/config.h; append only.
  enum class Type : int { kNull = 0, kBool = 1, kInt = 2, kFloat = 3, kString = 4, kList = 5, kConfig = 6 };

  Config();
  // From JSON text whose top level is an object; `what` names the caller in errors.
  static Config from_json(const std::string &text, const char *what = "config");
  // From a JSON object value (throws InvalidArgument naming `what` if it is not an object).
  static Config from_value(Json value, const std::string &what);
  // Compact JSON (indent < 0) or indented by 0 to kMaxJsonIndent spaces (more: InvalidArgument).
  static constexpr int kMaxJsonIndent = 1024;
  std::string to_json(int indent = -1) const;

  bool has(const std::string &key) const;
  size_t size() const { return value_.size(); }
  std::vector<std::string> keys() const;
  // NotFound when the key is absent.
  Type type(const std::string &key) const;
  void erase(const std::string &key);
  // dict.update: every key of other, set here.
  void update(const Config &other);

  Config &set_null(const std::string &key);
  Config &set(const std::string &key, bool v);
  Config &set(const std::string &key, int v) { return set(key, static_cast<int64_t>(v)); }
  Config &set(const std::string &key, int64_t v);
  Config &set(const std::string &key, double v);
  Config &set(const std::string &key, const char *v) { return set(key, std::string(v)); }
  Config &set(const std::string &key, const std::string &v);
  Config &set(const std::string &key, const std::vector<int64_t> &v);
  Config &set(const std::string &key, const std::vector<double> &v);
  Config &set(const std::string &key, const std::vector<std::string> &v);
  Config &set(const std::string &key, const Config &v);
  Config &set(const std::string &key, const std::vector<Config> &v);
  // Keras's "a value or None": *v when v holds one, null otherwise.
  template <typename T>
  Config &set(const std::string &key, const std::optional<T> &v) {
    return v ? set(key, *v) : set_null(key);
  }
  // As set, but NaN and infinities are kept: measured values (fit's logs, a History) may be
  // non-finite, settings may not. to_json writes them as Python's json module does (NaN,
  // Infinity, -Infinity) and from_json reads them back.
  Config &set_any_float(const std::string &key, double v);
  Config &set_any_float(const std::string &key, const std::vector<double> &v);
  // A shape whose unknown dims (-1) are written as null (Keras's None).
  Config &set_dims(const std::string &key, const std::vector<int64_t> &dims);

  // Typed reads: NotFound when absent, InvalidArgument naming the key, the value and the
  // expected type otherwise. get_float accepts an int; get_int accepts a float only when it
  // is integral (Keras configs written by JSON tools may say 64.0).
  bool get_bool(const std::string &key) const;
  int64_t get_int(const std::string &key) const;
  double get_float(const std::string &key) const;
  std::string get_string(const std::string &key) const;
  bool is_null(const std::string &key) const;
  // A list of ints; a single int is read as a one-element list.
  std::vector<int64_t> get_int_list(const std::string &key) const;
  std::vector<double> get_float_list(const std::string &key) const;
  // A shape: a list of ints and nulls (Keras's None), nulls read as -1.
  std::vector<int64_t> get_dims(const std::string &key) const;
  std::vector<std::string> get_string_list(const std::string &key) const;
  Config get_config(const std::string &key) const;
  std::vector<Config> get_config_list(const std::string &key) const;

  const Json &json() const { return value_; }
  bool operator==(const Config &other) const { return value_ == other.value_; }
  bool operator!=(const Config &other) const { return !(*this == other); }

 private:
  explicit Config(Json v) : value_(std::move(v)) {}
  const Json &at(const std::string &key) const;
  Json value_;
};

const char *config_type_name(Config::Type t);

// Reads an object's constructor config: each read marks its key as used, and finish() rejects
// any key left over, naming it and the keys `owner` accepts (a misspelt option is an error, not
// silently ignored). Optional reads give the default when the key is absent or null.
class ConfigReader {
 public:
  ConfigReader(const Config &config, std::string owner);
  const Config &config() const { return config_; }
  const std::string &owner() const { return owner_; }

  bool has(const std::string &key);  // present and not null; marks the key known
  bool get_bool(const std::string &key, bool def);
  int64_t get_int(const std::string &key, int64_t def);
  int64_t get_int(const std::string &key);  // required
  double get_float(const std::string &key, double def);
  std::string get_string(const std::string &key, const std::string &def);
  std::optional<std::string> get_optional_string(const std::string &key);
  std::vector<int64_t> get_int_list(const std::string &key, const std::vector<int64_t> &def);
  std::optional<std::vector<int64_t>> get_optional_int_list(const std::string &key);
  std::optional<Config> get_optional_config(const std::string &key);
  std::vector<Config> get_config_list(const std::string &key);
  // Marks keys as accepted without reading them (read elsewhere, or ignored on purpose).
  void accept(std::initializer_list<const char *> keys);
  void finish() const;

 private:
  template <typename F>
  auto read(const std::string &key, F &&f) -> decltype(f());
  Config config_;  // a copy: a reader may outlive the config it was made from
  std::string owner_;
  std::set<std::string> known_;
};

}  // namespace kiln
