/* Callbacks through the shared library alone: a built-in callback by class name, clones, its
 * class name, an unknown class and NULL arguments as statuses. Plain C99. */
#include <stdio.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

static void test_create(void) {
  kiln_callback *h = NULL, *h2 = NULL;
  EXPECT_OK(kiln_callback_create(&h, "History", NULL));
  CHECK(h != NULL);
  CHECK(strcmp(kiln_callback_get_class_name(h), "History") == 0);
  EXPECT_OK(kiln_callback_clone(&h2, h));
  kiln_callback_free(h);
  CHECK(strcmp(kiln_callback_get_class_name(h2), "History") == 0);
  kiln_callback_free(h2);
  kiln_callback_free(NULL);
  CHECK(kiln_callback_get_class_name(NULL) == NULL);
}

static void test_errors(void) {
  kiln_callback *h = NULL;
  EXPECT_ERROR(kiln_callback_create(&h, "NoSuchCallback", NULL), KILN_STATUS_NOT_FOUND, "NoSuchCallback", "History");
  CHECK(h == NULL);
  EXPECT_ERROR(kiln_callback_create(NULL, "History", NULL), KILN_STATUS_INVALID_ARGUMENT, "out", "NULL");
  EXPECT_ERROR(kiln_callback_create(&h, NULL, NULL), KILN_STATUS_INVALID_ARGUMENT, "class_name", "NULL");
  EXPECT_ERROR(kiln_callback_clone(&h, NULL), KILN_STATUS_INVALID_ARGUMENT, "callback", "NULL");
}

static void test_history(void) {
  kiln_callback *h = NULL, *bar = NULL;
  kiln_config *r = NULL, *values = NULL;
  size_t n = 99;
  EXPECT_OK(kiln_callback_create(&h, "History", NULL));
  EXPECT_OK(kiln_callback_get_history(&r, h));
  EXPECT_OK(kiln_config_get_int_list(&n, NULL, 0, r, "epoch"));
  CHECK(n == 0);
  EXPECT_OK(kiln_config_get_config(&values, r, "history"));
  CHECK(kiln_config_get_size(values) == 0);
  kiln_config_free(values);
  kiln_config_free(r);
  r = NULL;
  EXPECT_OK(kiln_callback_create(&bar, "ProgbarLogger", NULL));
  EXPECT_ERROR(kiln_callback_get_history(&r, bar), KILN_STATUS_FAILED_PRECONDITION, "ProgbarLogger", "History");
  CHECK(r == NULL);
  EXPECT_ERROR(kiln_callback_get_history(NULL, h), KILN_STATUS_INVALID_ARGUMENT, "out", "NULL");
  EXPECT_ERROR(kiln_callback_get_history(&r, NULL), KILN_STATUS_INVALID_ARGUMENT, "callback", "NULL");
  kiln_callback_free(bar);
  kiln_callback_free(h);
}

int main(void) {
  test_create();
  test_history();
  test_errors();
  return test_summary();
}
