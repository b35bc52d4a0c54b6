/* Sizes and values at the limits, through the shared library alone (issue 5, section 2):
 * element and byte counts that overflow, allocations too big for memory, huge windows,
 * thread counts and out-of-range enum values. Each call must come back as a status with
 * the right code and a message naming the entry point and the offending value: never a
 * crash, a hang, or a tensor with no memory behind it. Also checks that
 * kiln_allocator_release_cached gives memory back to the system. Plain C99.
 * Prints "N passed, N failed" and exits non-zero on any failure. */
#include <unistd.h>

#include "capi_test_util.h"

#define P62 ((int64_t)1 << 62)
#define P32 ((int64_t)1 << 32)

#if defined(__SANITIZE_ADDRESS__)
/* An allocation beyond memory must come back as NULL (kiln then reports RESOURCE_EXHAUSTED);
 * by default AddressSanitizer aborts instead. Its quarantine also keeps freed memory resident. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#define RSS_FOLLOWS_FREE 0
#else
#define RSS_FOLLOWS_FREE 1
#endif

/* A tensor that must be created; exits on failure (nothing below makes sense without it). */
static kiln_tensor *must(kiln_status *st, kiln_tensor *t, int line) {
  if (st || !t) {
    fprintf(stderr, "%s:%d: setup failed: %s\n", __FILE__, line, kiln_status_get_message(st));
    exit(2);
  }
  return t;
}
#define MUST(call) (st_ = (call), must(st_, o_, __LINE__))
static kiln_status *st_;
static kiln_tensor *o_;

static kiln_tensor *zeros(size_t rank, const int64_t *dims, kiln_dtype dtype) {
  return MUST(kiln_zeros(&o_, dims, rank, dtype));
}

/* ------------------------------------------------------------- creation */

static void test_creation(void) {
  const int64_t big[1] = {P62}, square[2] = {P32, P32}, empty_square[3] = {0, P32, P32};
  const int64_t d3131[2] = {(int64_t)1 << 31, (int64_t)1 << 31};
  const int64_t over63[1] = {((int64_t)1 << 60) + 1}; /* int64: 2^63 + 8 bytes */
  const int64_t over_memory[1] = {(int64_t)1 << 59};  /* float32: 2^61 bytes, beyond any address space */
  static float buf[1];

  /* 2^62 elements: a byte count no buffer can have. It used to crash with SIGSEGV. */
  EXPECT_ERROR(kiln_zeros(U, big, 1, F32), EXHAUSTED, "kiln_zeros", "18446744073709551616 bytes");
  EXPECT_ERROR(kiln_ones(U, big, 1, F32), EXHAUSTED, "kiln_ones", "float32[4611686018427387904]");
  EXPECT_ERROR(kiln_fill(U, big, 1, 3.0, I32), EXHAUSTED, "kiln_fill", "int32[4611686018427387904]");
  EXPECT_ERROR(kiln_random_uniform(U, big, 1, 0, 1, 1), EXHAUSTED, "kiln_random_uniform",
               "4611686018427387904");
  EXPECT_ERROR(kiln_random_normal(U, big, 1, 0, 1, 1), EXHAUSTED, "kiln_random_normal",
               "4611686018427387904");
  EXPECT_ERROR(kiln_truncated_normal(U, big, 1, 0, 1, 1), EXHAUSTED, "kiln_truncated_normal",
               "4611686018427387904");

  /* An element count that wraps around is an invalid shape, also when a 0 makes it empty. */
  EXPECT_ERROR(kiln_zeros(U, square, 2, F32), INVALID, "kiln_zeros", "[4294967296, 4294967296]");
  EXPECT_ERROR(kiln_zeros(U, empty_square, 3, F32), INVALID, "kiln_zeros", "[0, 4294967296, 4294967296]");

  /* Above 2^63 bytes the size-class loop used to spin forever. */
  EXPECT_ERROR(kiln_zeros(U, over63, 1, I64), EXHAUSTED, "kiln_zeros", "9223372036854775816 bytes");
  /* Below kiln's cap but beyond memory: the system allocator fails, kiln retries, then reports. */
  EXPECT_ERROR(kiln_zeros(U, over_memory, 1, F32), EXHAUSTED, "kiln_zeros", "2305843009213693952 bytes");

  /* {2^31, 2^31} float32 is 2^64 bytes, which wrapped to 0 and was accepted with no data. */
  EXPECT_ERROR(kiln_tensor_create(U, F32, d3131, 2, NULL, 0), INVALID, "kiln_tensor_create",
               "needs 18446744073709551616 bytes");
  EXPECT_ERROR(kiln_tensor_create_from_buffer(U, F32, d3131, 2, buf, 0, NULL, NULL), INVALID,
               "kiln_tensor_create_from_buffer", "needs 18446744073709551616 bytes");

  /* range: counts beyond memory, and bounds with no count at all. */
  EXPECT_ERROR(kiln_range(U, 0, 4611686018427387904.0, 1, I64), EXHAUSTED, "kiln_range",
               "int64[4611686018427387904]");
  EXPECT_ERROR(kiln_range(U, 0, 1e30, 1e-30, F32), INVALID, "range", "elements, more than");
  EXPECT_ERROR(kiln_range(U, 0, NAN, 1, I64), INVALID, "range", "limit nan");
  EXPECT_ERROR(kiln_range(U, NAN, 3, 1, F32), INVALID, "range", "start nan");
  EXPECT_ERROR(kiln_range(U, 0, INFINITY, 1, I32), INVALID, "range", "limit inf");
  EXPECT_ERROR(kiln_range(U, -INFINITY, 0, 1, F32), INVALID, "range", "start -inf");
  EXPECT_ERROR(kiln_range(U, 0, 3, NAN, F32), INVALID, "range", "delta nan");
  EXPECT_ERROR(kiln_range(U, 0, 3, INFINITY, F32), INVALID, "range", "delta inf");
}

/* ------------------------------------------------------------ shape ops */

static void test_shape_ops(void) {
  const int64_t d0[1] = {0}, d1[1] = {1}, d4[1] = {4}, d22[2] = {2, 2};
  const int64_t square[2] = {P32, P32}, square0[3] = {P32, P32, 0}, infer_square[3] = {-1, P32, P32};
  const int64_t big[1] = {P62}, m62[1] = {P62}, m32[2] = {P32, P32};
  const int64_t split_sizes[4] = {P62 + 1, P62 + 1, P62 + 1, P62 + 1}, split_max[2] = {INT64_MAX, 5};
  const int64_t begin1[1] = {1}, begin_max[1] = {INT64_MAX}, size_max[1] = {INT64_MAX}, size1[1] = {1};
  const int64_t tall0[2] = {P62, 0}, half0[2] = {(int64_t)1 << 61, 0};
  kiln_tensor *empty = zeros(1, d0, F32), *one = zeros(1, d1, F32), *four = zeros(1, d4, F32);
  kiln_tensor *two2 = zeros(2, d22, F32), *tall = zeros(2, tall0, F32), *half = zeros(2, half0, F32);
  kiln_tensor *outs[4] = {NULL, NULL, NULL, NULL};
  const kiln_tensor *pair[2], *quad[4];

  /* reshape [0] -> [2^32, 2^32] was accepted: a 0-element tensor whose dims overflow. */
  EXPECT_ERROR(kiln_reshape(U, empty, square, 2), INVALID, "reshape", "[4294967296, 4294967296]");
  EXPECT_ERROR(kiln_reshape(U, empty, square0, 3), INVALID, "reshape", "[4294967296, 4294967296, 0]");
  EXPECT_ERROR(kiln_reshape(U, empty, infer_square, 3), INVALID, "reshape", "[-1, 4294967296, 4294967296]");

  /* broadcast_to and tile gave tensors of 2^62 elements with no memory behind them. */
  EXPECT_ERROR(kiln_broadcast_to(U, one, big, 1), EXHAUSTED, "kiln_broadcast_to",
               "float32[4611686018427387904]");
  EXPECT_ERROR(kiln_broadcast_to(U, one, square, 2), INVALID, "kiln_broadcast_to",
               "[4294967296, 4294967296]");
  EXPECT_ERROR(kiln_tile(U, one, m62, 1), EXHAUSTED, "kiln_tile", "float32[4611686018427387904]");
  EXPECT_ERROR(kiln_tile(U, four, m62, 1), INVALID, "tile", "4 x 4611686018427387904"); /* was SIGFPE */
  EXPECT_ERROR(kiln_tile(U, two2, m32, 2), INVALID, "tile", "[8589934592, 8589934592]");

  /* split: four sizes of 2^62 + 1 wrapped to a sum of 4 and gave views past the buffer. */
  EXPECT_ERROR(kiln_split(outs, 4, four, split_sizes, 0), INVALID, "split", "4611686018427387905");
  CHECK(outs[0] == NULL && outs[3] == NULL);
  EXPECT_ERROR(kiln_split(outs, 2, four, split_max, 0), INVALID, "split", "9223372036854775807");
  CHECK(outs[0] == NULL && outs[1] == NULL);

  /* slice: begin + size overflowed and passed the bounds check. */
  EXPECT_ERROR(kiln_slice(U, four, begin1, size_max, 1), INVALID, "slice", "9223372036854775807");
  EXPECT_ERROR(kiln_slice(U, four, begin_max, size1, 1), INVALID, "slice", "9223372036854775807");

  /* concat and stack of empty tensors whose result would overflow. */
  pair[0] = pair[1] = tall;
  EXPECT_ERROR(kiln_concat(U, pair, 2, 0), INVALID, "concat", "float32[4611686018427387904, 0]");
  quad[0] = quad[1] = quad[2] = quad[3] = half;
  EXPECT_ERROR(kiln_stack(U, quad, 4, 0), INVALID, "stack", "[4, 2305843009213693952, 0]");

  kiln_tensor_free(empty);
  kiln_tensor_free(one);
  kiln_tensor_free(four);
  kiln_tensor_free(two2);
  kiln_tensor_free(tall);
  kiln_tensor_free(half);
}

static void test_index_and_math_ops(void) {
  const int32_t idx[2] = {0, 1};
  const int64_t d1[1] = {1}, d2[1] = {2}, a_dims[2] = {(int64_t)1 << 40, 0},
                b_dims[2] = {0, (int64_t)1 << 40};
  const int64_t x_dims[3] = {(int64_t)1 << 40, 1, 0}, y_dims[3] = {1, (int64_t)1 << 40, 0};
  kiln_tensor *one_index = MUST(kiln_tensor_create(&o_, I32, d1, 1, idx, 4));
  kiln_tensor *two_indices = MUST(kiln_tensor_create(&o_, I32, d2, 1, idx, 8));
  kiln_tensor *a = zeros(2, a_dims, F32), *b = zeros(2, b_dims, F32);
  kiln_tensor *x = zeros(3, x_dims, F32), *y = zeros(3, y_dims, F32);

  /* one_hot(depth = 2^62) returned a tensor with no memory behind it. */
  EXPECT_ERROR(kiln_one_hot(U, one_index, P62, 1, 0, -1, F32), EXHAUSTED, "kiln_one_hot",
               "float32[1, 4611686018427387904]");
  EXPECT_ERROR(kiln_one_hot(U, two_indices, P62, 1, 0, -1, F32), INVALID, "one_hot", "depth 4611686018427387904");

  /* Valid empty operands whose results would have 2^80 elements. */
  EXPECT_ERROR(kiln_matmul(U, a, b, false, false), INVALID, "matmul", "[1099511627776, 1099511627776]");
  EXPECT_ERROR(kiln_add(U, x, y), INVALID, "add", "[1099511627776, 1099511627776, 0]");

  kiln_tensor_free(one_index);
  kiln_tensor_free(two_indices);
  kiln_tensor_free(a);
  kiln_tensor_free(b);
  kiln_tensor_free(x);
  kiln_tensor_free(y);
}

/* ------------------------------------------------------------- windows */

static float sum_of(const kiln_tensor *t) {
  const float *v = (const float *)kiln_tensor_get_data(t);
  float s = 0;
  int64_t i;
  for (i = 0; i < kiln_tensor_get_num_elements(t); ++i) s += v[i];
  return s;
}

/* This file's conv and pool calls in their (strides, dilations, padding) form, over the options
 * structs the C API takes. */
static kiln_status *conv2d_call(kiln_tensor **out, const kiln_tensor *x, const kiln_tensor *f, const int64_t *strides,
                               const int64_t *dilations, kiln_padding padding) {
  const kiln_conv2d_options o = conv_options(strides, dilations, padding);
  return kiln_conv2d(out, x, f, &o);
}

static kiln_status *pool_call(int max, kiln_tensor **out, const kiln_tensor *x, const int64_t *ksize,
                              const int64_t *strides, kiln_padding padding) {
  const kiln_pool2d_options o = pool_options(ksize, strides, padding);
  return max ? kiln_max_pool2d(out, x, &o) : kiln_avg_pool2d(out, x, &o);
}

static void test_windows(void) {
  float xv[50], fv[8];
  const int64_t x_dims[4] = {1, 5, 5, 2}, f_dims[4] = {2, 2, 2, 1};
  const int64_t ones2[2] = {1, 1}, max2[2] = {INT64_MAX, INT64_MAX}, k22[2] = {2, 2}, four2[2] = {4, 4};
  const int64_t big_dil[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
  kiln_tensor *x, *f, *o = NULL, *ref = NULL;
  int i;
  for (i = 0; i < 50; ++i) xv[i] = (float)i;
  for (i = 0; i < 8; ++i) fv[i] = 1.0f;
  x = MUST(kiln_tensor_create(&o_, F32, x_dims, 4, xv, sizeof xv));
  f = MUST(kiln_tensor_create(&o_, F32, f_dims, 4, fv, sizeof fv));

  /* INT64_MAX strides used to give INTERNAL from oneDNN: one window, at the top left, like a
   * stride of 4 (the smallest giving one output here). */
  ref = MUST(conv2d_call(&o_, x, f, four2, ones2, KILN_PADDING_VALID));
  CHECK(conv2d_call(&o, x, f, max2, ones2, KILN_PADDING_VALID) == NULL && o &&
        kiln_tensor_get_num_elements(o) == 1 && sum_of(o) == sum_of(ref));
  kiln_tensor_free(o);
  o = NULL;
  CHECK(conv2d_call(&o, x, f, max2, ones2, KILN_PADDING_SAME) == NULL && o &&
        kiln_tensor_get_num_elements(o) == 1 && sum_of(o) == sum_of(ref));
  kiln_tensor_free(o);
  o = NULL;
  kiln_tensor_free(ref);
  ref = MUST(pool_call(1, &o_, x, k22, four2, KILN_PADDING_VALID));
  CHECK(pool_call(1, &o, x, k22, max2, KILN_PADDING_VALID) == NULL && o && sum_of(o) == sum_of(ref));
  kiln_tensor_free(o);
  o = NULL;
  kiln_tensor_free(ref);
  ref = MUST(pool_call(0, &o_, x, k22, four2, KILN_PADDING_VALID));
  CHECK(pool_call(0, &o, x, k22, max2, KILN_PADDING_SAME) == NULL && o && sum_of(o) == sum_of(ref));
  kiln_tensor_free(o);
  kiln_tensor_free(ref);

  /* Dilated windows and kernel sizes whose span overflows, or needs absurd padding. */
  EXPECT_ERROR(conv2d_call(U, x, f, ones2, max2, KILN_PADDING_VALID), INVALID, "conv2d",
               "9223372036854775807");
  EXPECT_ERROR(conv2d_call(U, x, f, ones2, max2, KILN_PADDING_SAME), INVALID, "conv2d",
               "9223372036854775807");
  EXPECT_ERROR(conv2d_call(U, x, f, ones2, big_dil, KILN_PADDING_SAME), INVALID, "conv2d", "1099511627776");
  EXPECT_ERROR(pool_call(1, U, x, max2, ones2, KILN_PADDING_VALID), INVALID, "max_pool2d",
               "9223372036854775807");
  EXPECT_ERROR(pool_call(0, U, x, max2, ones2, KILN_PADDING_SAME), INVALID, "avg_pool2d",
               "9223372036854775807");
  EXPECT_ERROR(pool_call(1, U, x, big_dil, ones2, KILN_PADDING_SAME), INVALID, "max_pool2d",
               "1099511627776");

  kiln_tensor_free(x);
  kiln_tensor_free(f);
}

/* ------------------------------------------------- threads and enum values */

static void test_threads(void) {
  int before = kiln_get_num_threads();
  /* libgomp used to kill the process on the next kernel. */
  EXPECT_ERROR(kiln_set_num_threads(1 << 30), INVALID, "set_num_threads", "got 1073741824");
  EXPECT_ERROR(kiln_set_num_threads(INT32_MAX), INVALID, "set_num_threads", "2147483647");
  EXPECT_ERROR(kiln_set_num_threads(INT32_MIN), INVALID, "set_num_threads", "-2147483648");
  CHECK(kiln_get_num_threads() == before);
}

static void test_negative_enums(void) {
  const int64_t d2[1] = {2}, x_dims[4] = {1, 2, 2, 1}, f_dims[4] = {1, 1, 1, 1}, k11[2] = {1, 1};
  const float v[4] = {1, 2, 3, 4};
  const kiln_dtype dtypes[2] = {(kiln_dtype)-1, (kiln_dtype)INT32_MIN};
  const kiln_padding paddings[2] = {(kiln_padding)-1, (kiln_padding)INT32_MIN};
  const kiln_unconnected modes[2] = {(kiln_unconnected)-1, (kiln_unconnected)INT32_MIN};
  const char *names[2] = {"-1", "-2147483648"};
  static float buf[2];
  kiln_tensor *x = MUST(kiln_tensor_create(&o_, F32, x_dims, 4, v, sizeof v));
  kiln_tensor *f = MUST(kiln_tensor_create(&o_, F32, f_dims, 4, v, 4)), *y = NULL, *grads[1] = {NULL};
  kiln_variable *var = NULL;
  const kiln_variable *vars[1];
  const kiln_tensor *sources[1];
  kiln_tape *tape = NULL;
  int i;
  for (i = 0; i < 2; ++i) {
    const char *n = names[i];
    EXPECT_ERROR(kiln_zeros(U, d2, 1, dtypes[i]), INVALID, "kiln_zeros: dtype", n);
    EXPECT_ERROR(kiln_ones(U, d2, 1, dtypes[i]), INVALID, "kiln_ones: dtype", n);
    EXPECT_ERROR(kiln_fill(U, d2, 1, 1.0, dtypes[i]), INVALID, "kiln_fill: dtype", n);
    EXPECT_ERROR(kiln_range(U, 0, 2, 1, dtypes[i]), INVALID, "kiln_range: dtype", n);
    EXPECT_ERROR(kiln_cast(U, x, dtypes[i]), INVALID, "kiln_cast: dtype", n);
    EXPECT_ERROR(kiln_tensor_create(U, dtypes[i], d2, 1, buf, 8), INVALID, "kiln_tensor_create: dtype", n);
    EXPECT_ERROR(kiln_tensor_create_from_buffer(U, dtypes[i], d2, 1, buf, 8, NULL, NULL), INVALID,
                 "kiln_tensor_create_from_buffer: dtype", n);
    EXPECT_ERROR(conv2d_call(U, x, f, k11, k11, paddings[i]), INVALID, "kiln_conv2d: padding", n);
    EXPECT_ERROR(pool_call(1, U, x, k11, k11, paddings[i]), INVALID, "kiln_max_pool2d: padding", n);
    EXPECT_ERROR(pool_call(0, U, x, k11, k11, paddings[i]), INVALID, "kiln_avg_pool2d: padding", n);
  }
  {
    kiln_status *st = kiln_status_create((kiln_status_code)INT32_MIN, "m");
    CHECK(kiln_status_get_code(st) == INVALID && strstr(kiln_status_get_message(st), "code -2147483648"));
    kiln_status_free(st);
  }

  /* The three gradient calls, on a persistent tape so that each bad call can be followed by more. */
  if (kiln_tape_create(&tape, true, true) || kiln_variable_create(&var, "v", x, true)) {
    fprintf(stderr, "%s:%d: setup failed\n", __FILE__, __LINE__);
    exit(2);
  }
  CHECK(kiln_tape_watch(tape, x) == NULL);
  y = MUST(kiln_square(&o_, x));
  sources[0] = x;
  vars[0] = var;
  for (i = 0; i < 2; ++i) {
    const char *n = names[i];
    EXPECT_ERROR(kiln_tape_gradient(grads, tape, y, sources, 1, modes[i]), INVALID,
                 "kiln_tape_gradient: unconnected", n);
    EXPECT_ERROR(kiln_tape_gradient_with_output(grads, tape, y, NULL, sources, 1, modes[i]), INVALID,
                 "kiln_tape_gradient_with_output: unconnected", n);
    EXPECT_ERROR(kiln_tape_gradient_variables(grads, tape, y, vars, 1, modes[i]), INVALID,
                 "kiln_tape_gradient_variables: unconnected", n);
    CHECK(grads[0] == NULL);
  }
  kiln_tensor_free(y);
  kiln_tape_free(tape);
  kiln_variable_free(var);
  kiln_tensor_free(x);
  kiln_tensor_free(f);
}

/* ------------------------------------------------------------- allocator */

static long rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

static void test_release_cached(void) {
  enum { kCount = 256 };
  const int64_t mib[1] = {(1 << 20) / 4}; /* 1 MiB of float32 */
  kiln_tensor *ts[kCount];
  int64_t allocs0, hits0, allocs1, hits1, allocs2, hits2;
  long before, filled, freed, released;
  size_t got;
  int i, caching;

  /* Is the cache on? (Sanitizer builds turn it off so AddressSanitizer sees every free.) */
  kiln_tensor_free(zeros(1, mib, F32));
  kiln_allocator_stats(&allocs0, &hits0);
  kiln_tensor_free(zeros(1, mib, F32));
  kiln_allocator_stats(&allocs1, &hits1);
  caching = hits1 == hits0 + 1;
  kiln_allocator_release_cached();

  before = rss_bytes();
  for (i = 0; i < kCount; ++i) ts[i] = zeros(1, mib, F32); /* zeros writes, so the pages are resident */
  filled = rss_bytes();
  for (i = 0; i < kCount; ++i) kiln_tensor_free(ts[i]);
  freed = rss_bytes();
  got = kiln_allocator_release_cached();
  released = rss_bytes();
  if (caching) {
    CHECK(freed - before > 200L << 20); /* the cache keeps them: the reason for the call */
    CHECK(got >= (size_t)kCount << 20);
  }
  if (RSS_FOLLOWS_FREE) {
    CHECK(before > 0 && filled - before > 200L << 20);
    CHECK(filled - released > 200L << 20);
  }
  CHECK(kiln_allocator_release_cached() == 0); /* nothing left */

  /* The stats see it: the next buffer of that size comes from the system, not the cache. */
  kiln_allocator_stats(&allocs1, &hits1);
  kiln_tensor_free(zeros(1, mib, F32));
  kiln_allocator_stats(&allocs2, &hits2);
  CHECK(allocs2 == allocs1 + 1 && hits2 == hits1);
}

/* Array counts past the address space (SIZE_MAX) are RESOURCE_EXHAUSTED naming the entry point,
 * checked before the array is read. */
static void test_huge_counts(void) {
  kiln_config *c = NULL;
  const int64_t ints[1] = {1};
  const double floats[1] = {1.0};
  const char *strings[1] = {"a"};
  kiln_config *report = NULL;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_ERROR(kiln_config_set_int_list(c, "k", ints, SIZE_MAX), KILN_STATUS_RESOURCE_EXHAUSTED,
               "kiln_config_set_int_list", "count");
  EXPECT_ERROR(kiln_config_set_float_list(c, "k", floats, SIZE_MAX), KILN_STATUS_RESOURCE_EXHAUSTED,
               "kiln_config_set_float_list", "count");
  EXPECT_ERROR(kiln_config_set_string_list(c, "k", strings, SIZE_MAX), KILN_STATUS_RESOURCE_EXHAUSTED,
               "kiln_config_set_string_list", "count");
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, NULL, 0, "/nonexistent", strings, strings, NULL,
                                         SIZE_MAX, NULL),
               KILN_STATUS_RESOURCE_EXHAUSTED, "kiln_init_from_checkpoint", "num_pairs");
  CHECK(report == NULL);
  { /* every pointer-array entry point; and a NULL element is named with its index */
    kiln_tensor *t = NULL, *grads[1] = {NULL};
    const kiln_tensor *ts[2] = {NULL, NULL};
    kiln_tape *tape = NULL;
    kiln_dataset *ds = NULL, *zipped = NULL;
    const kiln_dataset *dss[2] = {NULL, NULL};
    const kiln_config *cs[2] = {NULL, NULL};
    kiln_variable *vars[1] = {NULL};
    const char *names[2] = {"a", NULL};
    kiln_optimizer *opt = NULL;
    EXPECT_OK(kiln_zeros(&t, NULL, 0, KILN_DTYPE_FLOAT32));
    ts[0] = t;
    EXPECT_OK(kiln_tape_create(&tape, false, false));
    EXPECT_OK(kiln_dataset_range(&ds, 0, 3, 1));
    dss[0] = ds;
    cs[0] = c;
    EXPECT_OK(kiln_optimizer_create(&opt, "AdamW", NULL));
    EXPECT_ERROR(kiln_einsum(&t, "i->i", ts, SIZE_MAX), KILN_STATUS_RESOURCE_EXHAUSTED, "kiln_einsum",
                 "num_inputs");
    EXPECT_ERROR(kiln_tape_gradient(grads, tape, t, ts, SIZE_MAX, KILN_UNCONNECTED_NONE),
                 KILN_STATUS_RESOURCE_EXHAUSTED, "kiln_tape_gradient", "num_sources");
    EXPECT_ERROR(kiln_tape_gradient_variables(grads, tape, t, (const kiln_variable *const *)vars, SIZE_MAX,
                                              KILN_UNCONNECTED_NONE),
                 KILN_STATUS_RESOURCE_EXHAUSTED, "kiln_tape_gradient_variables", "num_variables");
    EXPECT_ERROR(kiln_dataset_zip(&zipped, dss, SIZE_MAX), KILN_STATUS_RESOURCE_EXHAUSTED, "kiln_dataset_zip",
                 "num_datasets");
    EXPECT_ERROR(kiln_config_set_config_list(c, "k", cs, SIZE_MAX), KILN_STATUS_RESOURCE_EXHAUSTED,
                 "kiln_config_set_config_list", "count");
    EXPECT_ERROR(kiln_optimizer_exclude_from_weight_decay(opt, vars, SIZE_MAX, NULL, 0),
                 KILN_STATUS_RESOURCE_EXHAUSTED, "kiln_optimizer_exclude_from_weight_decay", "num_vars");
    EXPECT_ERROR(kiln_dataset_zip(&zipped, dss, 2), KILN_STATUS_INVALID_ARGUMENT,
                 "kiln_dataset_zip: datasets[1] is NULL", NULL);
    EXPECT_ERROR(kiln_config_set_config_list(c, "k", cs, 2), KILN_STATUS_INVALID_ARGUMENT,
                 "kiln_config_set_config_list: values[1] is NULL", NULL);
    EXPECT_ERROR(kiln_config_set_string_list(c, "k", names, 2), KILN_STATUS_INVALID_ARGUMENT,
                 "kiln_config_set_string_list: values[1] is NULL", NULL);
    CHECK(zipped == NULL);
    kiln_optimizer_free(opt);
    kiln_dataset_free(ds);
    kiln_tape_free(tape);
    kiln_tensor_free(t);
  }
  kiln_config_free(c);
}

int main(void) {
  test_huge_counts();
  test_creation();
  test_shape_ops();
  test_index_and_math_ops();
  test_windows();
  test_threads();
  test_negative_enums();
  test_release_cached();
  return test_summary();
}
