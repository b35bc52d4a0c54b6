/* The pass/fail counters and CHECK of the plain C API tests (C99, links nothing but libkiln.so).
 * Each test program includes this once and ends with
 *     printf("%d passed, %d failed\n", g_passed, g_failed);  return g_failed != 0; */
#ifndef KILN_TESTS_CAPI_CHECK_H
#define KILN_TESTS_CAPI_CHECK_H

#include <stdio.h>

static int g_passed = 0, g_failed = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      ++g_passed;                                                              \
    } else {                                                                   \
      ++g_failed;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#endif /* KILN_TESTS_CAPI_CHECK_H */
