// kiln_config entry points: a thin layer over kiln::Config.
#include <cstdlib>
#include <cstring>
#include <iterator>

#include "capi/handles.h"

using kiln::Code;
using kiln::Config;
using kiln::fail;
using kiln::capi::element_of;
using kiln::capi::require_array_fits;
using kiln::capi::require_not_null;

namespace {

const Config &config_of(const kiln_config *c, const char *fn, const char *arg = "config") {
  require_not_null(c, fn, arg);
  return c->value;
}

Config &mutable_config_of(kiln_config *c, const char *fn) {
  require_not_null(c, fn, "config");
  return c->value;
}

const char *key_of(const char *key, const char *fn) {
  require_not_null(key, fn, "key");
  return key;
}

// The JSON value at key, which must be a list; index must be in range.
const Config::Json &list_item(const Config &c, const char *key, size_t index, const char *fn) {
  if (!c.has(key)) fail(Code::kNotFound, fn, ": no key '", key, "'");
  const Config::Json &list = c.json()[key];
  if (!list.is_array()) fail(Code::kInvalidArgument, fn, ": key '", key, "' is not a list");
  if (index >= list.size())
    fail(Code::kOutOfRange, fn, ": index ", index, " is out of range for key '", key, "', a list of ", list.size());
  return list[index];
}

// Entry-point body for a setter: config->value.set(key, make()).
template <typename F>
kiln_status *set_value(kiln_config *config, const char *key, const char *fn, F &&make) {
  KILN_CAPI_BEGIN
  Config &c = mutable_config_of(config, fn);
  c.set(key_of(key, fn), make());
  KILN_CAPI_END_AS(fn)
}

// Entry-point body for a scalar getter: *out = read(config, key).
template <typename T, typename F>
kiln_status *get_value(T *out, const kiln_config *config, const char *key, const char *fn, F &&read) {
  KILN_CAPI_BEGIN
  require_not_null(out, fn, "out");
  const Config &c = config_of(config, fn);
  *out = read(c, std::string(key_of(key, fn)));
  KILN_CAPI_END_AS(fn)
}

template <typename T, typename F>
kiln_status *get_list(size_t *out_count, T *values, size_t count, const kiln_config *config, const char *key,
                      const char *fn, F &&read) {
  KILN_CAPI_BEGIN
  const Config &c = config_of(config, fn);
  if (count > 0) require_not_null(values, fn, "values");
  const auto list = read(c, std::string(key_of(key, fn)));
  for (size_t i = 0; i < count && i < list.size(); ++i) values[i] = list[i];
  if (out_count) *out_count = list.size();
  KILN_CAPI_END_AS(fn)
}

}  // namespace

extern "C" {

void kiln_string_free(char *string) { std::free(string); }

kiln_status *kiln_config_create(kiln_config **out) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{};
  KILN_CAPI_END
}

kiln_status *kiln_config_clone(kiln_config **out, const kiln_config *config) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_config{config_of(config, __func__)};
  KILN_CAPI_END
}

void kiln_config_free(kiln_config *config) { delete config; }

kiln_status *kiln_config_from_json(kiln_config **out, const char *json) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(json, __func__, "json");
  *out = new kiln_config{Config::from_json(json, __func__)};
  KILN_CAPI_END
}

kiln_status *kiln_config_to_json(char **out, const kiln_config *config, int indent) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const std::string s = config_of(config, __func__).to_json(indent < 0 ? -1 : indent);
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  *out = p;
  KILN_CAPI_END
}

bool kiln_config_equal(const kiln_config *a, const kiln_config *b) {
  return a && b && a->value == b->value;  // JSON object equality ignores key order
}

size_t kiln_config_get_size(const kiln_config *config) { return config ? config->value.size() : 0; }

kiln_status *kiln_config_get_key(const char **out, const kiln_config *config, size_t index) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const Config &c = config_of(config, __func__);
  if (index >= c.size())
    fail(Code::kOutOfRange, __func__, ": index ", index, " is out of range for a config of ", c.size(), " keys");
  *out = std::next(c.json().begin(), static_cast<std::ptrdiff_t>(index)).key().c_str();  // object iterators step one at a time
  KILN_CAPI_END
}

bool kiln_config_has(const kiln_config *config, const char *key) {
  return config && key && config->value.has(key);
}

kiln_status *kiln_config_get_type(kiln_config_type *out, const kiln_config *config, const char *key) {
  return get_value(out, config, key, __func__,
                   [](const Config &c, const std::string &k) { return static_cast<kiln_config_type>(c.type(k)); });
}

kiln_status *kiln_config_update(kiln_config *config, const kiln_config *src) {
  KILN_CAPI_BEGIN
  Config &c = mutable_config_of(config, __func__);
  require_not_null(src, __func__, "src");
  c.update(src->value);
  KILN_CAPI_END
}

kiln_status *kiln_config_remove(kiln_config *config, const char *key) {
  KILN_CAPI_BEGIN
  mutable_config_of(config, __func__).erase(key_of(key, __func__));
  KILN_CAPI_END
}

kiln_status *kiln_config_set_null(kiln_config *config, const char *key) {
  KILN_CAPI_BEGIN
  mutable_config_of(config, __func__).set_null(key_of(key, __func__));
  KILN_CAPI_END
}

kiln_status *kiln_config_set_bool(kiln_config *config, const char *key, bool value) {
  return set_value(config, key, __func__, [&] { return value; });
}

kiln_status *kiln_config_set_int(kiln_config *config, const char *key, int64_t value) {
  return set_value(config, key, __func__, [&] { return value; });
}

kiln_status *kiln_config_set_float(kiln_config *config, const char *key, double value) {
  return set_value(config, key, __func__, [&] { return value; });
}

kiln_status *kiln_config_set_string(kiln_config *config, const char *key, const char *value) {
  return set_value(config, key, __func__, [&] {
    require_not_null(value, "kiln_config_set_string", "value");
    return std::string(value);
  });
}

kiln_status *kiln_config_set_int_list(kiln_config *config, const char *key, const int64_t *values, size_t count) {
  return set_value(config, key, __func__, [&] {
    require_array_fits(count, sizeof(int64_t), "kiln_config_set_int_list", "count");
    if (count > 0) require_not_null(values, "kiln_config_set_int_list", "values");
    return std::vector<int64_t>(values, values + count);
  });
}

kiln_status *kiln_config_set_float_list(kiln_config *config, const char *key, const double *values,
                                        size_t count) {
  return set_value(config, key, __func__, [&] {
    require_array_fits(count, sizeof(double), "kiln_config_set_float_list", "count");
    if (count > 0) require_not_null(values, "kiln_config_set_float_list", "values");
    return std::vector<double>(values, values + count);
  });
}

kiln_status *kiln_config_set_string_list(kiln_config *config, const char *key, const char *const *values,
                                         size_t count) {
  return set_value(config, key, __func__, [&] {
    require_array_fits(count, sizeof(const char *), "kiln_config_set_string_list", "count");
    if (count > 0) require_not_null(values, "kiln_config_set_string_list", "values");
    std::vector<std::string> v;
    for (size_t i = 0; i < count; ++i) {
      v.emplace_back(element_of(values, i, "kiln_config_set_string_list", "values"));
    }
    return v;
  });
}

kiln_status *kiln_config_set_config(kiln_config *config, const char *key, const kiln_config *value) {
  return set_value(config, key, __func__,
                   [&] { return config_of(value, "kiln_config_set_config", "value"); });
}

kiln_status *kiln_config_set_config_list(kiln_config *config, const char *key, const kiln_config *const *values,
                                         size_t count) {
  return set_value(config, key, __func__, [&] {
    require_array_fits(count, sizeof(const kiln_config *), "kiln_config_set_config_list", "count");
    if (count > 0) require_not_null(values, "kiln_config_set_config_list", "values");
    std::vector<Config> v;
    for (size_t i = 0; i < count; ++i)
      v.push_back(element_of(values, i, "kiln_config_set_config_list", "values")->value);
    return v;
  });
}

kiln_status *kiln_config_get_bool(bool *out, const kiln_config *config, const char *key) {
  return get_value(out, config, key, __func__, [](const Config &c, const std::string &k) { return c.get_bool(k); });
}

kiln_status *kiln_config_get_int(int64_t *out, const kiln_config *config, const char *key) {
  return get_value(out, config, key, __func__, [](const Config &c, const std::string &k) { return c.get_int(k); });
}

kiln_status *kiln_config_get_float(double *out, const kiln_config *config, const char *key) {
  return get_value(out, config, key, __func__,
                   [](const Config &c, const std::string &k) { return c.get_float(k); });
}

kiln_status *kiln_config_get_string(const char **out, const kiln_config *config, const char *key) {
  return get_value(out, config, key, __func__, [](const Config &c, const std::string &k) {
    c.get_string(k);  // checks presence and type
    return c.json()[k].get_ref<const std::string &>().c_str();
  });
}

kiln_status *kiln_config_get_list_size(size_t *out, const kiln_config *config, const char *key) {
  return get_value(out, config, key, __func__, [](const Config &c, const std::string &k) -> size_t {
    if (c.type(k) != Config::Type::kList) return 1;  // type() throws NotFound first
    return c.json()[k].size();
  });
}

kiln_status *kiln_config_get_int_list(size_t *out_count, int64_t *values, size_t count, const kiln_config *config,
                                      const char *key) {
  return get_list(out_count, values, count, config, key, __func__,
                  [](const Config &c, const std::string &k) { return c.get_int_list(k); });
}

kiln_status *kiln_config_get_float_list(size_t *out_count, double *values, size_t count,
                                        const kiln_config *config, const char *key) {
  return get_list(out_count, values, count, config, key, __func__,
                  [](const Config &c, const std::string &k) { return c.get_float_list(k); });
}

kiln_status *kiln_config_get_string_at(const char **out, const kiln_config *config, const char *key,
                                       size_t index) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const Config::Json &v = list_item(config_of(config, __func__), key_of(key, __func__), index, __func__);
  if (!v.is_string()) fail(Code::kInvalidArgument, __func__, ": element ", index, " of key '", key, "' is not a string");
  *out = v.get_ref<const std::string &>().c_str();
  KILN_CAPI_END
}

kiln_status *kiln_config_get_config(kiln_config **out, const kiln_config *config, const char *key) {
  return get_value(out, config, key, __func__,
                   [](const Config &c, const std::string &k) { return new kiln_config{c.get_config(k)}; });
}

kiln_status *kiln_config_get_config_at(kiln_config **out, const kiln_config *config, const char *key,
                                       size_t index) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  const Config::Json &v = list_item(config_of(config, __func__), key_of(key, __func__), index, __func__);
  *out = new kiln_config{Config::from_value(v, std::string(__func__) + ": element of key '" + key + "'")};
  KILN_CAPI_END
}

}  // extern "C"
