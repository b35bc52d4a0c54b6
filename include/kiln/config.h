/*
 * kiln/config.h — kiln_config: the typed key-value settings of configurable objects.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * A config is what Keras's get_config returns and from_config takes: an ordered map (keys keep
 * the order they were first set in) from UTF-8 string keys to null, bool, int, float, string,
 * lists and nested configs. Every built-in layer is created from one
 * (kiln_layer_create(&layer, "Dense", config)), gives one back, and the SavedModel stores them;
 * so a new option never needs a new symbol. The whole value also travels as JSON
 * (kiln_config_to_json / kiln_config_from_json), which is how bindings pass dictionaries.
 *
 *   kiln_config *c = NULL;
 *   kiln_config_create(&c);
 *   kiln_config_set_int(c, "units", 64);
 *   kiln_config_set_string(c, "activation", "relu");
 *   ...
 *   kiln_config_free(c);
 */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include "kiln/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The type of a config value. Explicit values; append only. */
typedef enum kiln_config_type {
  KILN_CONFIG_NULL = 0,
  KILN_CONFIG_BOOL = 1,
  KILN_CONFIG_INT = 2,
  KILN_CONFIG_FLOAT = 3,
  KILN_CONFIG_STRING = 4,
  KILN_CONFIG_LIST = 5,   /**< a list (of ints, floats, strings, configs, or mixed: read mixed ones as JSON) */
  KILN_CONFIG_CONFIG = 6, /**< a nested config */
  KILN_CONFIG_MIN_ENUM = -0x7FFFFFFF - 1, /**< not a value: with MAX_ENUM, any int is a valid enum value */
  KILN_CONFIG_MAX_ENUM = 0x7FFFFFFF       /**< not a type */
} kiln_config_type;

/// Frees a string kiln returned (kiln_config_to_json, summaries). Accepts NULL.
KILN_API void kiln_string_free(char *string);

/// A new empty config. Ownership: *out is new, free with kiln_config_free. Thread-safety: safe.
KILN_API kiln_status *kiln_config_create(kiln_config **out);
/// A deep copy. Ownership: *out is new. Thread-safety: safe while no thread modifies config.
KILN_API kiln_status *kiln_config_clone(kiln_config **out, const kiln_config *config);
/// Frees a config. Accepts NULL.
KILN_API void kiln_config_free(kiln_config *config);
/// A config from JSON text whose top level is an object. NaN, Infinity and -Infinity are read as
/// Python's json module writes them (measured values such as fit's logs may be non-finite;
/// settings read by a layer, loss or optimizer must be finite and are refused there).
/// Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_config_from_json(kiln_config **out, const char *json);
/// The config as compact JSON (indent < 0) or indented by `indent` spaces (at most 1024; more is
/// INVALID_ARGUMENT); non-finite floats
/// (only measured values hold them) as NaN, Infinity, -Infinity. Ownership: *out is a
/// new NUL-terminated UTF-8 string, free with kiln_string_free. Thread-safety: safe while no
/// thread modifies config.
KILN_API kiln_status *kiln_config_to_json(char **out, const kiln_config *config, int indent);
/// Whether two configs hold the same keys, in any order, with equal values. false if either is NULL.
KILN_API bool kiln_config_equal(const kiln_config *a, const kiln_config *b);

/// The number of keys; 0 for NULL.
KILN_API size_t kiln_config_get_size(const kiln_config *config);
/// The key at `index` (0 <= index < size), in insertion order. Lifetime: *out is borrowed, valid
/// until config is modified or freed. OUT_OF_RANGE for a bad index.
KILN_API kiln_status *kiln_config_get_key(const char **out, const kiln_config *config, size_t index);
/// Whether key is present (also when its value is null). false for NULL arguments.
KILN_API bool kiln_config_has(const kiln_config *config, const char *key);
/// The type of key's value; NOT_FOUND when the key is absent.
KILN_API kiln_status *kiln_config_get_type(kiln_config_type *out, const kiln_config *config, const char *key);
/// dict.update: sets every key of src into config (existing keys keep their place, new ones go
/// at the end). How a binding merges a whole dictionary into a config it was handed.
KILN_API kiln_status *kiln_config_update(kiln_config *config, const kiln_config *src);
/// Removes key if present.
KILN_API kiln_status *kiln_config_remove(kiln_config *config, const char *key);

/* Setters: add the key at the end, or replace its value in place. Thread-safety: one thread. */
KILN_API kiln_status *kiln_config_set_null(kiln_config *config, const char *key);
KILN_API kiln_status *kiln_config_set_bool(kiln_config *config, const char *key, bool value);
KILN_API kiln_status *kiln_config_set_int(kiln_config *config, const char *key, int64_t value);
/// Non-finite values are INVALID_ARGUMENT (configs are JSON).
KILN_API kiln_status *kiln_config_set_float(kiln_config *config, const char *key, double value);
/// value is UTF-8, copied.
KILN_API kiln_status *kiln_config_set_string(kiln_config *config, const char *key, const char *value);
KILN_API kiln_status *kiln_config_set_int_list(kiln_config *config, const char *key, const int64_t *values,
                                               size_t count);
KILN_API kiln_status *kiln_config_set_float_list(kiln_config *config, const char *key, const double *values,
                                                 size_t count);
/// values: count UTF-8 strings, copied.
KILN_API kiln_status *kiln_config_set_string_list(kiln_config *config, const char *key,
                                                  const char *const *values, size_t count);
/// Stores a copy of value.
KILN_API kiln_status *kiln_config_set_config(kiln_config *config, const char *key, const kiln_config *value);
/// Stores copies of values[0..count).
KILN_API kiln_status *kiln_config_set_config_list(kiln_config *config, const char *key,
                                                  const kiln_config *const *values, size_t count);

/* Getters: NOT_FOUND when the key is absent; INVALID_ARGUMENT naming the key, the value and the
   expected type when the type differs (get_float also reads an int; get_int reads an integral
   float). On failure *out is untouched. Thread-safety: safe while no thread modifies config. */
KILN_API kiln_status *kiln_config_get_bool(bool *out, const kiln_config *config, const char *key);
KILN_API kiln_status *kiln_config_get_int(int64_t *out, const kiln_config *config, const char *key);
KILN_API kiln_status *kiln_config_get_float(double *out, const kiln_config *config, const char *key);
/// Lifetime: *out is borrowed, valid until config is modified or freed.
KILN_API kiln_status *kiln_config_get_string(const char **out, const kiln_config *config, const char *key);
/// The number of elements of a list value (1 for a scalar read as a list).
KILN_API kiln_status *kiln_config_get_list_size(size_t *out, const kiln_config *config, const char *key);
/// Copies min(count, size) ints into values; *out_count (may be NULL) gets the list's size. A
/// single int reads as a one-element list.
KILN_API kiln_status *kiln_config_get_int_list(size_t *out_count, int64_t *values, size_t count,
                                               const kiln_config *config, const char *key);
KILN_API kiln_status *kiln_config_get_float_list(size_t *out_count, double *values, size_t count,
                                                 const kiln_config *config, const char *key);
/// The string at `index` of a list of strings. Lifetime: borrowed, as kiln_config_get_string.
KILN_API kiln_status *kiln_config_get_string_at(const char **out, const kiln_config *config, const char *key,
                                                size_t index);
/// A copy of a nested config. Ownership: *out is new, free with kiln_config_free.
KILN_API kiln_status *kiln_config_get_config(kiln_config **out, const kiln_config *config, const char *key);
/// A copy of the config at `index` of a list of configs. Ownership: *out is new.
KILN_API kiln_status *kiln_config_get_config_at(kiln_config **out, const kiln_config *config, const char *key,
                                                size_t index);

#ifdef __cplusplus
}
#endif

#endif /* KILN_CONFIG_H */
