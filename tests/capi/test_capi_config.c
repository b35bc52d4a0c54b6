/* kiln_config through the shared library alone: every setter and getter, JSON both ways,
 * insertion order, and bad input (NULL, wrong types, missing keys, bad JSON) as statuses.
 * Plain C99. Prints "N passed, N failed" and exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

/* OK(call): the call must succeed. */
#define OK(call) EXPECT_OK(call)

static void test_values(void) {
  kiln_config *c = NULL, *init = NULL, *back = NULL, *got = NULL;
  const int64_t ks[2] = {3, 5};
  const double fs[2] = {0.5, 2.0};
  const char *names[2] = {"a", "bc"};
  int64_t i = 0, list[4] = {0};
  double f = 0;
  bool b = false;
  const char *s = NULL;
  size_t n = 0;
  char *json = NULL;
  kiln_config_type t = KILN_CONFIG_NULL;

  OK(kiln_config_create(&c));
  OK(kiln_config_set_int(c, "units", 64));
  OK(kiln_config_set_string(c, "activation", "relu"));
  OK(kiln_config_set_bool(c, "use_bias", true));
  OK(kiln_config_set_float(c, "rate", 0.25));
  OK(kiln_config_set_int_list(c, "kernel_size", ks, 2));
  OK(kiln_config_set_float_list(c, "scales", fs, 2));
  OK(kiln_config_set_string_list(c, "names", names, 2));
  OK(kiln_config_set_null(c, "noise_shape"));
  OK(kiln_config_create(&init));
  OK(kiln_config_set_string(init, "class_name", "Zeros"));
  OK(kiln_config_set_config(c, "bias_initializer", init));
  {
    const kiln_config *items[2];
    items[0] = init;
    items[1] = init;
    OK(kiln_config_set_config_list(c, "layers", items, 2));
  }
  CHECK(kiln_config_get_size(c) == 10);
  OK(kiln_config_get_key(&s, c, 1));
  CHECK(strcmp(s, "activation") == 0);
  CHECK(kiln_config_has(c, "noise_shape"));
  CHECK(!kiln_config_has(c, "missing"));

  OK(kiln_config_get_int(&i, c, "units"));
  CHECK(i == 64);
  OK(kiln_config_get_float(&f, c, "units"));
  CHECK(f == 64.0);
  OK(kiln_config_get_bool(&b, c, "use_bias"));
  CHECK(b);
  OK(kiln_config_get_string(&s, c, "activation"));
  CHECK(strcmp(s, "relu") == 0);
  OK(kiln_config_get_type(&t, c, "noise_shape"));
  CHECK(t == KILN_CONFIG_NULL);
  OK(kiln_config_get_type(&t, c, "bias_initializer"));
  CHECK(t == KILN_CONFIG_CONFIG);
  OK(kiln_config_get_list_size(&n, c, "kernel_size"));
  CHECK(n == 2);
  OK(kiln_config_get_int_list(&n, list, 4, c, "kernel_size"));
  CHECK(n == 2 && list[0] == 3 && list[1] == 5);
  OK(kiln_config_get_int_list(&n, list, 1, c, "units")); /* a scalar is a one-element list */
  CHECK(n == 1 && list[0] == 64);
  {
    double fl[2] = {0, 0};
    OK(kiln_config_get_float_list(&n, fl, 2, c, "scales"));
    CHECK(n == 2 && fl[0] == 0.5 && fl[1] == 2.0);
  }
  OK(kiln_config_get_string_at(&s, c, "names", 1));
  CHECK(strcmp(s, "bc") == 0);
  OK(kiln_config_get_config(&got, c, "bias_initializer"));
  CHECK(kiln_config_equal(got, init));
  kiln_config_free(got);
  got = NULL;
  OK(kiln_config_get_config_at(&got, c, "layers", 1));
  CHECK(kiln_config_equal(got, init));
  kiln_config_free(got);

  OK(kiln_config_to_json(&json, c, -1));
  CHECK(strncmp(json, "{\"units\":64,\"activation\":\"relu\"", 31) == 0);
  OK(kiln_config_from_json(&back, json));
  CHECK(kiln_config_equal(back, c));
  kiln_string_free(json);
  kiln_config_free(back);

  {
    kiln_config *extra = NULL;
    OK(kiln_config_create(&extra));
    OK(kiln_config_set_int(extra, "units", 7));
    OK(kiln_config_set_bool(extra, "new_key", true));
    OK(kiln_config_update(c, extra));
    OK(kiln_config_get_int(&i, c, "units"));
    CHECK(i == 7);
    OK(kiln_config_get_key(&s, c, 0));
    CHECK(strcmp(s, "units") == 0); /* kept its place */
    CHECK(kiln_config_has(c, "new_key"));
    kiln_config_free(extra);
  }
  OK(kiln_config_remove(c, "units"));
  CHECK(!kiln_config_has(c, "units"));
  kiln_config_free(c);
  kiln_config_free(init);
}

static void test_errors(void) {
  kiln_config *c = NULL, *untouched = NULL;
  int64_t i = 7;
  const char *s = NULL;
  char *json = NULL;
  OK(kiln_config_create(&c));
  OK(kiln_config_set_string(c, "units", "64"));
  OK(kiln_config_set_float(c, "rate", 0.5));
  /* Configs are JSON: malformed UTF-8 is refused when it comes in, naming the key. */
  EXPECT_ERROR(kiln_config_set_string(c, "name", "\xff\xfe"), KILN_STATUS_INVALID_ARGUMENT, "key 'name'",
               "UTF-8");
  EXPECT_ERROR(kiln_config_set_int(c, "\xc3", 1), KILN_STATUS_INVALID_ARGUMENT, "key", "UTF-8");
  EXPECT_ERROR(kiln_config_get_int(&i, c, "units"), KILN_STATUS_INVALID_ARGUMENT,
               "key 'units' is a string \"64\"; expected an int", NULL);
  CHECK(i == 7); /* out untouched on failure */
  EXPECT_ERROR(kiln_config_get_int(&i, c, "rate"), KILN_STATUS_INVALID_ARGUMENT, "expected an int", NULL);
  EXPECT_ERROR(kiln_config_get_int(&i, c, "missing"), KILN_STATUS_NOT_FOUND, "no key 'missing'", NULL);
  EXPECT_ERROR(kiln_config_get_int(&i, NULL, "units"), KILN_STATUS_INVALID_ARGUMENT, "'config' is NULL", NULL);
  EXPECT_ERROR(kiln_config_get_int(&i, c, NULL), KILN_STATUS_INVALID_ARGUMENT, "'key' is NULL", NULL);
  EXPECT_ERROR(kiln_config_get_int(NULL, c, "units"), KILN_STATUS_INVALID_ARGUMENT, "'out' is NULL", NULL);
  EXPECT_ERROR(kiln_config_set_float(c, "x", NAN), KILN_STATUS_INVALID_ARGUMENT, "expected a finite float", NULL);
  EXPECT_ERROR(kiln_config_set_int(c, "", 1), KILN_STATUS_INVALID_ARGUMENT, "must not be empty", NULL);
  EXPECT_ERROR(kiln_config_set_string(c, "x", NULL), KILN_STATUS_INVALID_ARGUMENT, "'value' is NULL", NULL);
  EXPECT_ERROR(kiln_config_set_int_list(c, "x", NULL, 2), KILN_STATUS_INVALID_ARGUMENT, "'values' is NULL", NULL);
  EXPECT_ERROR(kiln_config_get_key(&s, c, 2), KILN_STATUS_OUT_OF_RANGE, "index 2", NULL);
  EXPECT_ERROR(kiln_config_get_string_at(&s, c, "units", 0), KILN_STATUS_INVALID_ARGUMENT, "not a list", NULL);
  EXPECT_ERROR(kiln_config_from_json(&untouched, "{\"a\":"), KILN_STATUS_INVALID_ARGUMENT, "not valid JSON", NULL);
  EXPECT_ERROR(kiln_config_from_json(&untouched, "[1]"), KILN_STATUS_INVALID_ARGUMENT, "expected a JSON object", NULL);
  EXPECT_ERROR(kiln_config_from_json(&untouched, NULL), KILN_STATUS_INVALID_ARGUMENT, "'json' is NULL", NULL);
  { /* configs nest at most 512 levels: deeper ones would overflow the stack of a recursive walk */
    enum { kDeep = 20000 };
    char *deep = malloc(2 * kDeep + 16);
    size_t n = 5;
    int d;
    CHECK(deep != NULL);
    memcpy(deep, "{\"a\":", 5); /* {"a":[[...[1]...]]} */
    for (d = 0; d < kDeep; ++d) deep[n++] = '[';
    deep[n++] = '1';
    for (d = 0; d < kDeep; ++d) deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    EXPECT_ERROR(kiln_config_from_json(&untouched, deep), KILN_STATUS_INVALID_ARGUMENT,
                 "nests deeper than 512", NULL);
    /* A list at the top, 100000 deep: refused before the message quotes it (which would recurse). */
    free(deep);
    deep = malloc(200000 + 2);
    CHECK(deep != NULL);
    memset(deep, '[', 100000);
    deep[100000] = '1';
    memset(deep + 100001, ']', 100000);
    deep[200001] = '\0';
    EXPECT_ERROR(kiln_config_from_json(&untouched, deep), KILN_STATUS_INVALID_ARGUMENT,
                 "nests deeper than 512", NULL);
    free(deep);
  }
  EXPECT_ERROR(kiln_config_set_config(c, "x", NULL), KILN_STATUS_INVALID_ARGUMENT,
               "kiln_config_set_config: argument 'value' is NULL", NULL);
  CHECK(untouched == NULL);
  EXPECT_ERROR(kiln_config_to_json(&json, NULL, 0), KILN_STATUS_INVALID_ARGUMENT, "'config' is NULL", NULL);
  CHECK(json == NULL);
  { /* indents: up to 1024 spaces a level, at every depth; more is refused */
    kiln_config *inner = NULL, *outer = NULL;
    OK(kiln_config_create(&inner));
    OK(kiln_config_set_int(inner, "k", 1));
    OK(kiln_config_create(&outer));
    OK(kiln_config_set_config(outer, "inner", inner));
    OK(kiln_config_set_int(outer, "n", 2));
    OK(kiln_config_to_json(&json, outer, 1024));
    /* {\n + 1024 "inner": {\n + 2048 "k": 1\n + 1024 }",\n + 1024 "n": 2\n} */
    CHECK(strlen(json) == 1 + 1 + 1024 + 10 + 1 + 2048 + 6 + 1 + 1024 + 2 + 1 + 1024 + 6 + 1 + 1);
    kiln_string_free(json);
    json = NULL;
    EXPECT_ERROR(kiln_config_to_json(&json, outer, 1025), KILN_STATUS_INVALID_ARGUMENT,
                 "indent 1025 is out of range; expected a negative value (compact) or 0 to 1024", NULL);
    EXPECT_ERROR(kiln_config_to_json(&json, outer, 100000000), KILN_STATUS_INVALID_ARGUMENT, "indent", NULL);
    CHECK(json == NULL);
    kiln_config_free(inner);
    kiln_config_free(outer);
  }
  CHECK(kiln_config_get_size(NULL) == 0);
  CHECK(!kiln_config_has(NULL, "x"));
  CHECK(!kiln_config_equal(NULL, c));
  kiln_config_free(NULL);
  kiln_string_free(NULL);
  kiln_config_free(c);
}

int main(void) {
  test_values();
  test_errors();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
