/* The harness shared by the plain-C tests in this folder: pass/fail counters, CHECK, the
 * kept-tensor pool, RUN / EXPECT_OK / EXPECT_ERROR around calls that return a status, and
 * checks of a result's dtype, shape and values. A failed check prints file:line, the call and
 * why, and counts; nothing aborts. Each test program includes this once and ends main() with
 * `return test_summary();`. Plain C99; everything here is static, so each program has its own. */
#ifndef KILN_TESTS_CAPI_TEST_UTIL_H
#define KILN_TESTS_CAPI_TEST_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"

#define INVALID KILN_STATUS_INVALID_ARGUMENT
#define EXHAUSTED KILN_STATUS_RESOURCE_EXHAUSTED
#define F32 KILN_DTYPE_FLOAT32
#define BF16 KILN_DTYPE_BFLOAT16
#define I32 KILN_DTYPE_INT32
#define I64 KILN_DTYPE_INT64
#define U8 KILN_DTYPE_UINT8
#define B8 KILN_DTYPE_BOOL

static int g_passed = 0, g_failed = 0;
static const char *g_call = ""; /* the call being checked, for messages */
static const char *g_file = "";
static int g_line = 0;

static inline void report(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s:%d: %s: ", g_file, g_line, g_call);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  ++g_failed;
}

/* CHECK may also run on threads the test starts when the file defines KILN_CAPI_TEST_THREADS
 * before including this header (the counters are then locked); the other checks below use the
 * shared g_call/g_file/g_line and belong to the main thread. */
#ifdef KILN_CAPI_TEST_THREADS
#include <pthread.h>
static pthread_mutex_t g_count_mutex = PTHREAD_MUTEX_INITIALIZER;
static inline void lock_counts(void) { pthread_mutex_lock(&g_count_mutex); }
static inline void unlock_counts(void) { pthread_mutex_unlock(&g_count_mutex); }
#else
static inline void lock_counts(void) {}
static inline void unlock_counts(void) {}
#endif

#define CHECK(cond) check((cond) != 0, #cond, __FILE__, __LINE__)
static inline void check(int ok, const char *what, const char *file, int line) {
  lock_counts();
  if (ok) {
    ++g_passed;
  } else {
    fprintf(stderr, "%s:%d: %s: failed\n", file, line, what);
    ++g_failed;
  }
  unlock_counts();
}

/* Inputs and intermediate results, freed together at the end of each test. */
#define MAX_KEPT 256
static kiln_tensor *g_kept[MAX_KEPT];
static int g_num_kept = 0;

static inline kiln_tensor *keep(kiln_tensor *t) {
  if (t && g_num_kept == MAX_KEPT) {
    report("MAX_KEPT is too small");
    kiln_tensor_free(t);
    return NULL;
  }
  if (t) g_kept[g_num_kept++] = t;
  return t;
}

static inline void release_kept(void) {
  while (g_num_kept > 0) kiln_tensor_free(g_kept[--g_num_kept]);
}

static inline size_t dtype_size(kiln_dtype dtype) {
  switch (dtype) {
    case F32:
    case I32:
      return 4;
    case BF16:
      return 2;
    case I64:
    case KILN_DTYPE_FLOAT64:
      return 8;
    default:
      return 1;
  }
}

static inline int64_t count_of(int rank, const int64_t *dims) {
  int64_t n = 1;
  int i;
  for (i = 0; i < rank; ++i) n *= dims[i];
  return n;
}

/* A kept tensor holding a copy of data; NULL (a counted failure) on error. */
static inline kiln_tensor *make(kiln_dtype dtype, int rank, const int64_t *dims, const void *data) {
  kiln_tensor *t = NULL;
  kiln_status *st =
      kiln_tensor_create(&t, dtype, dims, rank, data, (size_t)count_of(rank, dims) * dtype_size(dtype));
  if (st) {
    g_call = "kiln_tensor_create";
    report("%s", kiln_status_get_message(st));
    kiln_status_free(st);
    return NULL;
  }
  return keep(t);
}

static inline kiln_tensor *f32(int rank, const int64_t *dims, const float *values) {
  return make(F32, rank, dims, values);
}

static inline const float *fdata(const kiln_tensor *t) { return (const float *)kiln_tensor_get_data(t); }

/* Where the check being made is, for report. */
static inline void check_at(const char *call, const char *file, int line) {
  g_call = call;
  g_file = file;
  g_line = line;
}

/* Reports and frees the status of a call that had to succeed; 1 when it had failed. */
static inline int status_failed(kiln_status *st) {
  if (!st) return 0;
  report("failed: %s", kiln_status_get_message(st));
  kiln_status_free(st);
  return 1;
}

/* RUN(call) runs an op that writes the local `o` and must succeed; it yields the new
 * tensor, or NULL (a counted failure, message printed). */
#define RUN(call) take((call), &o, #call, __FILE__, __LINE__)
static inline kiln_tensor *take(kiln_status *st, kiln_tensor **out, const char *call, const char *file,
                                int line) {
  kiln_tensor *t = *out;
  *out = NULL;
  check_at(call, file, line);
  if (status_failed(st)) {
    kiln_tensor_free(t);
    return NULL;
  }
  if (!t) report("succeeded without writing its out argument");
  return t;
}

/* For calls without a tensor result; 1 when the call succeeded. */
#define EXPECT_OK(call) expect_ok((call), #call, __FILE__, __LINE__)
static inline int expect_ok(kiln_status *st, const char *call, const char *file, int line) {
  check_at(call, file, line);
  if (status_failed(st)) return 0;
  ++g_passed;
  return 1;
}

/* Steps from .. from+steps-1 of train_on_batch on a fixed 6-row batch of 5 features and 3 classes
 * (the step-th batch is the same for every model). */
static inline void train_small_batches(kiln_layer *m, int from, int steps) {
  int s, i;
  for (s = from; s < from + steps; ++s) {
    float x[30];
    int64_t y[6], xd[2] = {6, 5}, yd[1] = {6};
    kiln_tensor_list *xs = NULL, *ys = NULL;
    for (i = 0; i < 30; ++i) x[i] = (float)((i * 7 + s * 13) % 17) / 17.0f - 0.5f;
    for (i = 0; i < 6; ++i) y[i] = (i * 7 + s) % 3;
    EXPECT_OK(kiln_tensor_list_create(&xs));
    EXPECT_OK(kiln_tensor_list_create(&ys));
    EXPECT_OK(kiln_tensor_list_append(xs, f32(2, xd, x)));
    EXPECT_OK(kiln_tensor_list_append(ys, make(I64, 1, yd, y)));
    EXPECT_OK(kiln_model_train_on_batch(NULL, m, xs, ys, NULL, NULL, 0));
    kiln_tensor_list_free(xs);
    kiln_tensor_list_free(ys);
    release_kept();
  }
}

/* A Dense(units, activation) layer (NULL after a failure, which is counted). */
static inline kiln_layer *dense_layer(int64_t units, const char *activation) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_int(c, "units", units));
  EXPECT_OK(kiln_config_set_string(c, "activation", activation));
  EXPECT_OK(kiln_layer_create(&l, "Dense", c));
  kiln_config_free(c);
  return l;
}

/* n floats in [-1, 1) from a linear congruential sequence started at seed (the inputs of the small
 * training problems). */
static inline void lcg_floats(float *x, int n, uint32_t seed) {
  int i;
  for (i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
  }
}

/* The out argument of calls that must fail: it must stay NULL. */
static kiln_tensor *g_untouched = NULL;
#define U (&g_untouched)

/* The call must fail with `code` and a one-line message holding both fragments (either may be NULL). */
#define EXPECT_ERROR(call, code, frag1, frag2) \
  expect_error((call), (code), (frag1), (frag2), #call, __FILE__, __LINE__)
static inline void expect_error(kiln_status *st, kiln_status_code code, const char *frag1, const char *frag2,
                                const char *call, const char *file, int line) {
  const char *msg = kiln_status_get_message(st);
  check_at(call, file, line);
  if (!st)
    report("succeeded; expected status %d", (int)code);
  else if (kiln_status_get_code(st) != code)
    report("status %d ('%s'); expected %d", (int)kiln_status_get_code(st), msg, (int)code);
  else if (frag1 && !strstr(msg, frag1))
    report("message '%s' lacks '%s'", msg, frag1);
  else if (frag2 && !strstr(msg, frag2))
    report("message '%s' lacks '%s'", msg, frag2);
  else if (strchr(msg, '\n'))
    report("message '%s' is not one line", msg);
  else if (g_untouched)
    report("failed but wrote its out argument");
  else
    ++g_passed;
  kiln_tensor_free(g_untouched);
  g_untouched = NULL;
  kiln_status_free(st);
}

/* Whether t has this dtype and shape (and a consistent element count and byte size). */
static inline int meta_ok(const kiln_tensor *t, kiln_dtype dtype, int rank, const int64_t *dims) {
  int64_t n = count_of(rank, dims);
  int i;
  if (kiln_tensor_get_dtype(t) != dtype) {
    report("dtype %d; expected %d", (int)kiln_tensor_get_dtype(t), (int)dtype);
    return 0;
  }
  if (kiln_tensor_get_rank(t) != rank) {
    report("rank %d; expected %d", kiln_tensor_get_rank(t), rank);
    return 0;
  }
  for (i = 0; i < rank; ++i)
    if (kiln_tensor_get_dims(t)[i] != dims[i]) {
      report("dim %d is %lld; expected %lld", i, (long long)kiln_tensor_get_dims(t)[i], (long long)dims[i]);
      return 0;
    }
  if (kiln_tensor_get_num_elements(t) != n || kiln_tensor_get_byte_size(t) != (size_t)n * dtype_size(dtype)) {
    report("%lld elements in %lu bytes; expected %lld", (long long)kiln_tensor_get_num_elements(t),
           (unsigned long)kiln_tensor_get_byte_size(t), (long long)n);
    return 0;
  }
  if (n > 0 && !kiln_tensor_get_data(t)) {
    report("no data");
    return 0;
  }
  return 1;
}

/* Checks a float32 result against want (relative tolerance tol on 1 + |want|), then frees it. */
static inline void expect_f32(kiln_tensor *t, int rank, const int64_t *dims, const float *want, double tol) {
  if (!t) return;
  if (meta_ok(t, F32, rank, dims)) {
    const float *v = fdata(t);
    int64_t i, n = count_of(rank, dims);
    for (i = 0; i < n; ++i)
      if (!(fabs((double)v[i] - want[i]) <= tol * (1 + fabs(want[i])))) break;
    if (i < n)
      report("element %lld is %.8g; expected %.8g", (long long)i, v[i], want[i]);
    else
      ++g_passed;
  }
  kiln_tensor_free(t);
}

/* Checks a result's dtype, shape and exact bytes against want, then frees it. */
static inline void expect_raw(kiln_tensor *t, kiln_dtype dtype, int rank, const int64_t *dims,
                              const void *want) {
  if (!t) return;
  if (meta_ok(t, dtype, rank, dims)) {
    const unsigned char *got = kiln_tensor_get_data(t), *ref = want;
    size_t i, n = kiln_tensor_get_byte_size(t);
    for (i = 0; i < n && got[i] == ref[i]; ++i) {
    }
    if (i < n)
      report("element %lu differs from the reference", (unsigned long)(i / dtype_size(dtype)));
    else
      ++g_passed;
  }
  kiln_tensor_free(t);
}

/* Conv and pool options in the (strides, dilations, padding) and (ksize, strides, padding) forms. */
static inline kiln_conv2d_options conv_options(const int64_t *strides, const int64_t *dilations,
                                               kiln_padding padding) {
  kiln_conv2d_options o;
  EXPECT_OK(kiln_conv2d_options_init(&o, sizeof o));
  o.strides[0] = strides[0], o.strides[1] = strides[1];
  o.dilations[0] = dilations[0], o.dilations[1] = dilations[1];
  o.padding = padding;
  return o;
}

static inline kiln_pool2d_options pool_options(const int64_t *ksize, const int64_t *strides,
                                               kiln_padding padding) {
  kiln_pool2d_options o;
  EXPECT_OK(kiln_pool2d_options_init(&o, sizeof o));
  o.ksize[0] = ksize[0], o.ksize[1] = ksize[1];
  o.strides[0] = strides[0], o.strides[1] = strides[1];
  o.padding = padding;
  return o;
}

/* A regression problem of n rows and f >= 3 features: x[i] pseudo-random in [-1, 1) from an LCG
 * started at seed, y = x0 - 2 x1 + 0.5 x2 per row. */
static inline void regression_problem(float *x, float *y, int n, int f, uint32_t seed) {
  uint32_t s = seed;
  int i;
  for (i = 0; i < n * f; ++i) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)(s >> 8) / 8388608.0f - 1.0f;
  }
  for (i = 0; i < n; ++i) y[i] = x[i * f] - 2 * x[i * f + 1] + 0.5f * x[i * f + 2];
}

/* A new tensor list holding t (the list takes its own reference). */
static inline kiln_tensor_list *list1(const kiln_tensor *t) {
  kiln_tensor_list *l = NULL;
  EXPECT_OK(kiln_tensor_list_create(&l));
  EXPECT_OK(kiln_tensor_list_append(l, t));
  return l;
}

/* kiln_set_seed(seed), then a Sequential of layers_json (a JSON list of serialized layers) built for
 * (None, features) and compiled with Adam(learning_rate) and the named loss. */
static inline kiln_layer *compiled_sequential(const char *layers_json, int64_t features, const char *loss,
                                              double learning_rate, uint64_t seed) {
  kiln_config *c = NULL;
  kiln_layer *m = NULL;
  kiln_optimizer *opt = NULL;
  kiln_compile_options co;
  const int64_t dims[2] = {-1, features};
  const size_t ranks[1] = {2};
  char json[1024];
  kiln_set_seed(seed);
  snprintf(json, sizeof json, "{\"layers\": %s}", layers_json);
  EXPECT_OK(kiln_config_from_json(&c, json));
  EXPECT_OK(kiln_layer_create(&m, "Sequential", c));
  kiln_config_free(c);
  EXPECT_OK(kiln_layer_build(m, dims, ranks, 1));
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", learning_rate));
  EXPECT_OK(kiln_optimizer_create(&opt, "Adam", c));
  kiln_config_free(c);
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = opt;
  co.loss_names = &loss;
  co.num_loss_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
  kiln_optimizer_free(opt);
  return m;
}

/* Removes dir and everything in it (a test's temporary directory). */
static inline void remove_tree(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Each row {class name, config JSON, message fragment}: kiln_callback_create must fail with
 * INVALID_ARGUMENT and a message holding the fragment, leaving its out argument NULL. */
static inline void expect_bad_callback_configs(const char *const (*bad)[3], size_t n) {
  size_t i;
  for (i = 0; i < n; ++i) {
    kiln_callback *cb = NULL;
    kiln_config *c = NULL;
    EXPECT_OK(kiln_config_from_json(&c, bad[i][1]));
    EXPECT_ERROR(kiln_callback_create(&cb, bad[i][0], c), KILN_STATUS_INVALID_ARGUMENT, bad[i][2], bad[i][0]);
    CHECK(cb == NULL);
    kiln_config_free(c);
  }
}

/* Prints the counts; the exit status of the test program. */
static inline int test_summary(void) {
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}

#endif /* KILN_TESTS_CAPI_TEST_UTIL_H */
