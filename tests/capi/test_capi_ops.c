/* Every entry point of kiln.h, through the shared library alone. Each op runs on valid
 * input checked against a reference computed here (hand values or plain loops), and on
 * bad input, which must give a status with the right code and a one-line message naming
 * the op and what was wrong, never an abort; a failed call leaves its out argument alone.
 * Plain C99. CI also runs it under AddressSanitizer with leak detection: all is freed.
 * Prints "N passed, N failed" and exits non-zero on any failure. */
#include "capi_test_util.h"

/* ------------------------------------------------------ library and status */

static void test_library(void) {
  int64_t hits = -1, misses = -1, size = -1, allocs0 = -1, reused0 = -1, allocs1 = -1, reused1 = -1;
  int64_t dims[1] = {1000};
  kiln_tensor *o = NULL;
  CHECK(strcmp(kiln_version(), KILN_VERSION_STRING) == 0);
  CHECK(kiln_abi_version() == KILN_ABI_VERSION);
  CHECK(kiln_status_get_code(NULL) == KILN_STATUS_OK);
  CHECK(strcmp(kiln_status_get_message(NULL), "") == 0);
  kiln_status_free(NULL);

  /* Statuses made by callers (callbacks report failures with them). */
  {
    kiln_status *st = kiln_status_create(KILN_STATUS_NOT_FOUND, "no such layer 'dense_9'");
    CHECK(st != NULL && kiln_status_get_code(st) == KILN_STATUS_NOT_FOUND);
    CHECK(strcmp(kiln_status_get_message(st), "no such layer 'dense_9'") == 0);
    kiln_status_free(st);
    st = kiln_status_create(KILN_STATUS_INTERNAL, NULL);
    CHECK(st != NULL && kiln_status_get_code(st) == KILN_STATUS_INTERNAL);
    CHECK(strcmp(kiln_status_get_message(st), "") == 0);
    kiln_status_free(st);
  }
  EXPECT_ERROR(kiln_status_create(KILN_STATUS_OK, "fine"), INVALID, "kiln_status_create: code 0",
               "is not an error code");
  EXPECT_ERROR(kiln_status_create((kiln_status_code)-5, NULL), INVALID, "kiln_status_create: code -5", NULL);
  EXPECT_ERROR(kiln_status_create(KILN_STATUS_MAX_ENUM, NULL), INVALID, "kiln_status_create", "expected 1");

  EXPECT_OK(kiln_set_num_threads(2));
  CHECK(kiln_get_num_threads() == 2);
  EXPECT_ERROR(kiln_set_num_threads(0), INVALID, "set_num_threads", "got 0");
  EXPECT_ERROR(kiln_set_num_threads(1 << 30), INVALID, "set_num_threads", "got 1073741824");
  CHECK(kiln_get_num_threads() == 2); /* a failed call changes nothing */

  kiln_primitive_cache_stats(NULL, NULL, NULL);
  kiln_primitive_cache_stats(&hits, &misses, &size);
  CHECK(hits >= 0 && misses >= 0 && size >= 0);

  /* Every buffer is counted once, as a system allocation or as a reuse. */
  kiln_allocator_stats(NULL, NULL);
  kiln_allocator_stats(&allocs0, &reused0);
  kiln_tensor_free(RUN(kiln_zeros(&o, dims, 1, F32)));
  kiln_tensor_free(RUN(kiln_zeros(&o, dims, 1, F32)));
  kiln_allocator_stats(&allocs1, &reused1);
  CHECK(allocs0 >= 0 && reused0 >= 0);
  CHECK(allocs1 + reused1 >= allocs0 + reused0 + 2);

  /* Once released, nothing is cached: the next buffer comes from the system
   * (test_capi_limits.c checks that the memory leaves the process). */
  kiln_allocator_release_cached();
  CHECK(kiln_allocator_release_cached() == 0);
  kiln_allocator_stats(&allocs0, &reused0);
  kiln_tensor_free(RUN(kiln_zeros(&o, dims, 1, F32)));
  kiln_allocator_stats(&allocs1, &reused1);
  CHECK(allocs1 == allocs0 + 1 && reused1 == reused0);
}

/* ------------------------------------------------------------------ tensors */

static int g_deleted = 0;
static void count_delete(void *data, void *user_data) {
  (void)data;
  g_deleted += *(const int *)user_data;
}

static void test_tensors(void) {
  float fv[6] = {1, 2, 3, 4, 5, 6}, back[6];
  uint16_t bf[2] = {0x3F80, 0xC000}; /* 1, -2 */
  int32_t i32v[3] = {-1, 0, 7};
  int64_t i64v[2] = {-5, 1LL << 40};
  uint8_t u8v[3] = {0, 128, 255}, b8v[4] = {1, 0, 0, 1};
  int64_t d23[2] = {2, 3}, d2[1] = {2}, d3[1] = {3}, d22[2] = {2, 2}, d03[2] = {0, 3}, neg[1] = {-2};
  static float buf[4] = {1, 2, 3, 4};
  int64_t d4[1] = {4};
  int one = 1;
  kiln_tensor *t = NULL, *u = NULL, *o = NULL;

  /* Every dtype round-trips through create, the getters and copy_to. */
  t = f32(2, d23, fv);
  if (t && meta_ok(t, F32, 2, d23)) {
    EXPECT_OK(kiln_tensor_copy_to(t, back, sizeof back));
    CHECK(memcmp(back, fv, sizeof fv) == 0);
    fv[0] = 100; /* create took a copy */
    CHECK(fdata(t)[0] == 1.0f);
  }
  expect_raw(RUN(kiln_tensor_clone(&o, make(BF16, 1, d2, bf))), BF16, 1, d2, bf);
  expect_raw(RUN(kiln_tensor_clone(&o, make(I32, 1, d3, i32v))), I32, 1, d3, i32v);
  expect_raw(RUN(kiln_tensor_clone(&o, make(I64, 1, d2, i64v))), I64, 1, d2, i64v);
  expect_raw(RUN(kiln_tensor_clone(&o, make(U8, 1, d3, u8v))), U8, 1, d3, u8v);
  expect_raw(RUN(kiln_tensor_clone(&o, make(B8, 2, d22, b8v))), B8, 2, d22, b8v);
  /* A scalar (dims may be NULL) and an empty tensor (data may be NULL). */
  expect_f32(RUN(kiln_tensor_create(&o, F32, NULL, 0, fv + 1, sizeof(float))), 0, NULL, fv + 1, 0);
  expect_f32(RUN(kiln_tensor_create(&o, F32, d03, 2, NULL, 0)), 2, d03, NULL, 0);
  EXPECT_OK(kiln_tensor_copy_to(make(F32, 2, d03, NULL), NULL, 0));

  /* Getters on NULL. */
  CHECK(kiln_tensor_get_dtype(NULL) == 0);
  CHECK(kiln_tensor_get_rank(NULL) == -1);
  CHECK(kiln_tensor_get_dims(NULL) == NULL);
  CHECK(kiln_tensor_get_num_elements(NULL) == -1);
  CHECK(kiln_tensor_get_byte_size(NULL) == 0);
  CHECK(kiln_tensor_get_data(NULL) == NULL);
  kiln_tensor_free(NULL);

  /* Zero-copy adoption: the deleter runs once, when the last handle goes. */
  g_deleted = 0;
  EXPECT_OK(kiln_tensor_create_from_buffer(&u, F32, d4, 1, buf, sizeof buf, count_delete, &one));
  CHECK(kiln_tensor_get_data(u) == (const void *)buf);
  o = RUN(kiln_tensor_clone(&o, u));
  kiln_tensor_free(u);
  CHECK(g_deleted == 0);
  expect_f32(o, 1, d4, buf, 0);
  CHECK(g_deleted == 1);
  u = NULL;
  EXPECT_OK(kiln_tensor_create_from_buffer(&u, F32, d4, 1, buf, sizeof buf, NULL, NULL));
  expect_f32(u, 1, d4, buf, 0);

  /* Bad input. */
  EXPECT_ERROR(kiln_tensor_create(NULL, F32, d23, 2, fv, sizeof fv), INVALID, "kiln_tensor_create",
               "'out' is NULL");
  EXPECT_ERROR(kiln_tensor_create(U, (kiln_dtype)0, d23, 2, fv, sizeof fv), INVALID, "kiln_tensor_create",
               "dtype 0");
  EXPECT_ERROR(kiln_tensor_create(U, F32, d23, 2, fv, 5), INVALID, "24 bytes", "got 5");
  EXPECT_ERROR(kiln_tensor_create(U, F32, d23, 2, NULL, sizeof fv), INVALID, "NULL", NULL);
  EXPECT_ERROR(kiln_tensor_create(U, F32, neg, 1, fv, 0), INVALID, "-2", "negative");
  EXPECT_ERROR(kiln_tensor_create(U, F32, d23, (size_t)-1, fv, 0), INVALID, "kiln_tensor_create: rank 18446744073709551615",
               "larger than KILN_MAX_RANK (8)");
  EXPECT_ERROR(kiln_tensor_create(U, F32, d23, KILN_MAX_RANK + 1, fv, 0), INVALID, "kiln_tensor_create: rank 9",
               "larger than KILN_MAX_RANK (8)");
  g_deleted = 0;
  EXPECT_ERROR(kiln_tensor_create_from_buffer(U, F32, d4, 1, buf, 8, count_delete, &one), INVALID,
               "kiln_tensor_create_from_buffer", "needs 16 bytes; got 8");
  EXPECT_ERROR(kiln_tensor_create_from_buffer(U, F32, d2, 1, (char *)buf + 1, 8, count_delete, &one), INVALID,
               "kiln_tensor_create_from_buffer", "not aligned");
  EXPECT_ERROR(kiln_tensor_create_from_buffer(U, (kiln_dtype)99, d4, 1, buf, sizeof buf, count_delete, &one),
               INVALID, "kiln_tensor_create_from_buffer", "dtype 99");
  CHECK(g_deleted == 0); /* failed adoptions never call the deleter */
  EXPECT_ERROR(kiln_tensor_clone(U, NULL), INVALID, "kiln_tensor_clone", "'tensor' is NULL");
  EXPECT_ERROR(kiln_tensor_clone(NULL, t), INVALID, "kiln_tensor_clone", "'out' is NULL");
  EXPECT_ERROR(kiln_tensor_copy_to(t, back, 8), INVALID, "kiln_tensor_copy_to", "holds 24 bytes");
  EXPECT_ERROR(kiln_tensor_copy_to(t, NULL, sizeof back), INVALID, "kiln_tensor_copy_to", "'dst' is NULL");
  EXPECT_ERROR(kiln_tensor_copy_to(NULL, back, sizeof back), INVALID, "kiln_tensor_copy_to",
               "'tensor' is NULL");
  release_kept();
}

/* ----------------------------------------------------------------- creation */

static void test_creation(void) {
  int64_t d22[2] = {2, 2}, d3[1] = {3}, d2[1] = {2}, neg[2] = {2, -1};
  int64_t zeros64[4] = {0, 0, 0, 0}, r64[3] = {0, 1, 2};
  uint8_t ones8[3] = {1, 1, 1}, sevens[2] = {7, 7};
  uint16_t bf15[2] = {0x3FC0, 0x3FC0}; /* 1.5 */
  int32_t trunc[3] = {-3, -3, -3}, r32[3] = {5, 3, 1};
  float one = 1, halves[3] = {2.5f, 2.5f, 2.5f}, steps[4] = {0, 1.5f, 3, 4.5f};
  kiln_tensor *o = NULL;

  expect_raw(RUN(kiln_zeros(&o, d22, 2, I64)), I64, 2, d22, zeros64);
  expect_raw(RUN(kiln_ones(&o, d3, 1, B8)), B8, 1, d3, ones8);
  expect_f32(RUN(kiln_ones(&o, NULL, 0, F32)), 0, NULL, &one, 0);
  expect_raw(RUN(kiln_fill(&o, d2, 1, 7.0, U8)), U8, 1, d2, sevens);
  expect_raw(RUN(kiln_fill(&o, d2, 1, 1.5, BF16)), BF16, 1, d2, bf15);
  expect_raw(RUN(kiln_fill(&o, d3, 1, -3.9, I32)), I32, 1, d3, trunc);
  expect_f32(RUN(kiln_fill(&o, d3, 1, 2.5, F32)), 1, d3, halves, 0);
  expect_f32(RUN(kiln_range(&o, 0, 5, 1.5, F32)), 1, (int64_t[1]){4}, steps, 1e-7);
  expect_raw(RUN(kiln_range(&o, 5, 0, -2, I32)), I32, 1, d3, r32);
  expect_raw(RUN(kiln_range(&o, 0, 3, 1, I64)), I64, 1, d3, r64);

  EXPECT_ERROR(kiln_zeros(NULL, d22, 2, F32), INVALID, "kiln_zeros", "'out' is NULL");
  EXPECT_ERROR(kiln_zeros(U, d22, 2, (kiln_dtype)99), INVALID, "kiln_zeros", "dtype 99");
  EXPECT_ERROR(kiln_ones(U, d22, 2, (kiln_dtype)0), INVALID, "kiln_ones", "dtype 0");
  EXPECT_ERROR(kiln_ones(NULL, d22, 2, F32), INVALID, "kiln_ones", "'out' is NULL");
  EXPECT_ERROR(kiln_fill(U, d22, 2, 1.0, (kiln_dtype)99), INVALID, "kiln_fill", "dtype 99");
  EXPECT_ERROR(kiln_fill(NULL, d22, 2, 1.0, F32), INVALID, "kiln_fill", "'out' is NULL");
  /* Shape errors name the op as well (they come from the shared Shape check). */
  EXPECT_ERROR(kiln_zeros(U, neg, 2, F32), INVALID, "kiln_zeros", "negative");
  EXPECT_ERROR(kiln_random_normal(U, NULL, 2, 0, 1, 1), INVALID, "kiln_random_normal", "NULL");
  EXPECT_ERROR(kiln_range(NULL, 0, 3, 1, F32), INVALID, "kiln_range", "'out' is NULL");
  EXPECT_ERROR(kiln_range(U, 0, 3, 0, F32), INVALID, "range", "delta is 0");
  EXPECT_ERROR(kiln_range(U, 0, 3, -1, F32), INVALID, "range", "cannot reach limit 3");
  EXPECT_ERROR(kiln_range(U, 0, 3, 1, B8), INVALID, "range", "dtype bool is not supported");
  EXPECT_ERROR(kiln_range(U, 0, 3, 1, (kiln_dtype)0), INVALID, "kiln_range", "dtype 0");
  release_kept();
}

/* -------------------------------------------------------------- randomness */

/* Mean and standard deviation of a float32 tensor. */
static void moments(const kiln_tensor *t, double *mean, double *stddev) {
  int64_t i, n = kiln_tensor_get_num_elements(t);
  double s = 0, s2 = 0;
  for (i = 0; i < n; ++i) {
    s += fdata(t)[i];
    s2 += (double)fdata(t)[i] * fdata(t)[i];
  }
  *mean = s / (double)n;
  *stddev = sqrt(s2 / (double)n - *mean * *mean);
}

static int same_values(const kiln_tensor *a, const kiln_tensor *b) {
  return a && b && kiln_tensor_get_byte_size(a) == kiln_tensor_get_byte_size(b) &&
         memcmp(kiln_tensor_get_data(a), kiln_tensor_get_data(b), kiln_tensor_get_byte_size(a)) == 0;
}

static void test_random(void) {
  int64_t dims[1] = {4000}, i, n = 4000;
  kiln_tensor *o = NULL, *u1, *u2, *u3, *u4, *nrm, *tn;
  double mean = 0, sd = 0, lo = 1e9, hi = -1e9, biggest = 0;

  /* Unseeded ops repeat after kiln_set_seed; seeded ones (TF2) differ call to call and repeat after
   * kiln_set_seed. */
  kiln_set_seed(42);
  u1 = keep(RUN(kiln_random_uniform(&o, dims, 1, -1.0f, 2.0f, -1)));
  kiln_set_seed(42);
  u2 = keep(RUN(kiln_random_uniform(&o, dims, 1, -1.0f, 2.0f, -1)));
  CHECK(same_values(u1, u2));
  u3 = keep(RUN(kiln_random_uniform(&o, dims, 1, -1.0f, 2.0f, 5)));
  u4 = keep(RUN(kiln_random_uniform(&o, dims, 1, -1.0f, 2.0f, 5)));
  CHECK(u3 && u4 && !same_values(u3, u4));
  kiln_set_seed(42);
  CHECK(same_values(u3, keep(RUN(kiln_random_uniform(&o, dims, 1, -1.0f, 2.0f, 5)))));
  CHECK(same_values(u4, keep(RUN(kiln_random_uniform(&o, dims, 1, -1.0f, 2.0f, 5)))));
  CHECK(u1 && u3 && !same_values(u1, u3));
  if (u1) {
    for (i = 0; i < n; ++i) {
      lo = fdata(u1)[i] < lo ? fdata(u1)[i] : lo;
      hi = fdata(u1)[i] > hi ? fdata(u1)[i] : hi;
    }
    moments(u1, &mean, &sd);
    CHECK(lo >= -1.0 && hi < 2.0 && lo < -0.9 && hi > 1.9);
    CHECK(fabs(mean - 0.5) < 0.1);
  }
  nrm = keep(RUN(kiln_random_normal(&o, dims, 1, 1.0f, 2.0f, 7)));
  if (nrm) {
    moments(nrm, &mean, &sd);
    CHECK(fabs(mean - 1.0) < 0.15 && fabs(sd - 2.0) < 0.15);
  }
  tn = keep(RUN(kiln_truncated_normal(&o, dims, 1, 0.0f, 1.0f, 8)));
  if (tn) {
    for (i = 0; i < n; ++i) biggest = fabs(fdata(tn)[i]) > biggest ? fabs(fdata(tn)[i]) : biggest;
    moments(tn, &mean, &sd);
    CHECK(biggest <= 2.0 && fabs(mean) < 0.1 && sd > 0.8 && sd < 0.95); /* truncated: sd 0.88 */
  }

  EXPECT_ERROR(kiln_random_uniform(NULL, dims, 1, 0, 1, 1), INVALID, "kiln_random_uniform", "'out' is NULL");
  EXPECT_ERROR(kiln_random_uniform(U, dims, 1, 2, 1, 1), INVALID, "random_uniform",
               "minval 2 is greater than maxval 1");
  EXPECT_ERROR(kiln_random_normal(NULL, dims, 1, 0, 1, 1), INVALID, "kiln_random_normal", "'out' is NULL");
  EXPECT_ERROR(kiln_random_normal(U, dims, 1, 0, -1, 1), INVALID, "random_normal", "stddev is -1");
  EXPECT_ERROR(kiln_truncated_normal(NULL, dims, 1, 0, 1, 1), INVALID, "kiln_truncated_normal",
               "'out' is NULL");
  EXPECT_ERROR(kiln_truncated_normal(U, dims, 1, (float)INFINITY, 1, 1), INVALID, "truncated_normal",
               "expected a finite value");
  release_kept();
}

/* tf.random.uniform's other dtypes: float64 at full precision and bfloat16 at its own (k / 256
 * for [0, 1), never 1), int32 and int64 in [minval, maxval) with every value of a small range drawn,
 * int64's whole range; float32 through _float is kiln_random_uniform; the stateless forms repeat
 * for a seed pair; wrong dtypes and bounds are errors naming them. */
static void test_random_dtypes(void) {
  int64_t dims[1] = {4000}, i, n = 4000, seen[7] = {0}, seen64[5] = {0}, coarse = 0, neg = 0;
  int all_seen = 1, in_range = 1;
  kiln_tensor *o = NULL, *a, *t;
  double mean = 0;

  kiln_set_seed(3);
  a = keep(RUN(kiln_random_uniform(&o, dims, 1, -1.0f, 2.0f, 9)));
  kiln_set_seed(3);
  CHECK(same_values(a, keep(RUN(kiln_random_uniform_float(&o, dims, 1, -1.0, 2.0, F32, 9)))));

  t = keep(RUN(kiln_random_uniform_float(&o, dims, 1, -1.0, 2.0, KILN_DTYPE_FLOAT64, 9)));
  CHECK(t && kiln_tensor_get_dtype(t) == KILN_DTYPE_FLOAT64);
  if (t) {
    const double *v = (const double *)kiln_tensor_get_data(t);
    for (i = 0; i < n; ++i) {
      in_range &= v[i] >= -1.0 && v[i] < 2.0;
      coarse += (double)(float)v[i] == v[i]; /* a float64 draw is (almost) never a float32 */
      mean += v[i] / (double)n;
    }
    CHECK(in_range && coarse < 5 && fabs(mean - 0.5) < 0.1);
  }
  t = keep(RUN(kiln_random_uniform_float(&o, dims, 1, 0.0, 1.0, BF16, -1)));
  CHECK(t && kiln_tensor_get_dtype(t) == BF16);
  if (t) {
    const uint16_t *v = (const uint16_t *)kiln_tensor_get_data(t);
    for (i = 0; i < n; ++i) {
      uint32_t bits = (uint32_t)v[i] << 16;
      float f;
      memcpy(&f, &bits, sizeof f);
      in_range &= f >= 0.0f && f < 1.0f && f * 256.0f == floorf(f * 256.0f);
    }
    CHECK(in_range);
  }

  t = keep(RUN(kiln_random_uniform_int(&o, dims, 1, -3, 4, I32, 5)));
  CHECK(t && kiln_tensor_get_dtype(t) == I32);
  if (t) {
    const int32_t *v = (const int32_t *)kiln_tensor_get_data(t);
    for (i = 0; i < n; ++i) {
      in_range &= v[i] >= -3 && v[i] < 4;
      if (v[i] >= -3 && v[i] < 4) seen[v[i] + 3]++;
    }
    for (i = 0; i < 7; ++i) all_seen &= seen[i] > 400; /* ~571 each */
    CHECK(in_range && all_seen);
  }
  t = keep(RUN(kiln_random_uniform_int(&o, dims, 1, 1000000000000, 1000000000005, I64, 5)));
  CHECK(t && kiln_tensor_get_dtype(t) == I64);
  if (t) {
    const int64_t *v = (const int64_t *)kiln_tensor_get_data(t);
    for (i = 0; i < n; ++i) {
      const int64_t k = v[i] - 1000000000000;
      in_range &= k >= 0 && k < 5;
      if (k >= 0 && k < 5) seen64[k]++;
    }
    for (i = 0; i < 5; ++i) all_seen &= seen64[i] > 600; /* ~800 each */
    CHECK(in_range && all_seen);
  }
  t = keep(RUN(kiln_random_uniform_int(&o, dims, 1, INT64_MIN, INT64_MAX, I64, 5)));
  if (t) {
    const int64_t *v = (const int64_t *)kiln_tensor_get_data(t);
    for (i = 0; i < n; ++i) neg += v[i] < 0;
    CHECK(neg > 1800 && neg < 2200 && v[0] != INT64_MAX);
  }

  a = keep(RUN(kiln_stateless_random_uniform_int(&o, dims, 1, 0, 100, I64, 1, 2)));
  CHECK(same_values(a, keep(RUN(kiln_stateless_random_uniform_int(&o, dims, 1, 0, 100, I64, 1, 2)))));
  CHECK(!same_values(a, keep(RUN(kiln_stateless_random_uniform_int(&o, dims, 1, 0, 100, I64, 1, 3)))));
  a = keep(RUN(kiln_stateless_random_uniform_float(&o, dims, 1, -2.0, 2.0, KILN_DTYPE_FLOAT64, 1, 2)));
  CHECK(same_values(
      a, keep(RUN(kiln_stateless_random_uniform_float(&o, dims, 1, -2.0, 2.0, KILN_DTYPE_FLOAT64, 1, 2)))));
  CHECK(same_values(keep(RUN(kiln_stateless_random_uniform(&o, dims, 1, -2.0f, 2.0f, 1, 2))),
                    keep(RUN(kiln_stateless_random_uniform_float(&o, dims, 1, -2.0, 2.0, F32, 1, 2)))));

  EXPECT_ERROR(kiln_random_uniform_int(NULL, dims, 1, 0, 1, I32, 1), INVALID, "kiln_random_uniform_int",
               "'out' is NULL");
  EXPECT_ERROR(kiln_random_uniform_int(U, dims, 1, 0, 1, U8, 1), INVALID, "random_uniform",
               "dtype is uint8; expected int32 or int64");
  EXPECT_ERROR(kiln_random_uniform_int(U, dims, 1, 5, 5, I32, 1), INVALID, "random_uniform",
               "minval 5 is not less than maxval 5");
  EXPECT_ERROR(kiln_random_uniform_int(U, dims, 1, 0, 1099511627776, I32, 1), INVALID, "random_uniform",
               "bound 1099511627776 is outside int32's range");
  EXPECT_ERROR(kiln_random_uniform_float(U, dims, 1, 0, 1, I32, 1), INVALID, "random_uniform",
               "dtype is int32; expected float32, bfloat16 or float64");
  EXPECT_ERROR(kiln_random_uniform_float(U, dims, 1, 0, NAN, KILN_DTYPE_FLOAT64, 1), INVALID,
               "random_uniform", "maxval is nan; expected a finite float64 value");
  EXPECT_ERROR(kiln_random_uniform_float(U, dims, 1, 0, 1e39, BF16, 1), INVALID, "random_uniform",
               "expected a finite bfloat16 value");
  EXPECT_ERROR(kiln_random_uniform_float(U, dims, 1, -1e300, 0, F32, 1), INVALID, "random_uniform",
               "minval is -1e+300; expected a finite float32 value");
  EXPECT_ERROR(kiln_random_uniform_float(U, dims, 1, 0, 3.4e38, BF16, 1), INVALID, "random_uniform",
               "expected a finite bfloat16 value"); /* a float32, but bfloat16 rounds it to inf */
  EXPECT_ERROR(kiln_random_uniform_float(U, dims, 1, 2, 1, KILN_DTYPE_FLOAT64, 1), INVALID, "random_uniform",
               "minval 2 is greater than maxval 1");
  EXPECT_ERROR(kiln_random_uniform_float(U, dims, 1, 0, 1, (kiln_dtype)99, 1), INVALID,
               "kiln_random_uniform_float", NULL);
  EXPECT_ERROR(kiln_stateless_random_uniform_int(U, dims, 1, 3, 2, I64, 1, 2), INVALID,
               "stateless_random_uniform", "minval 3 is not less than maxval 2");
  EXPECT_ERROR(kiln_stateless_random_uniform_float(U, NULL, 1, 0, 1, F32, 1, 2), INVALID,
               "kiln_stateless_random_uniform_float", NULL);
  release_kept();
}

/* ------------------------------------------------------ elementwise binary */

enum {
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
  OP_MAX,
  OP_MIN,
  OP_POW,
  OP_EQ,
  OP_NE,
  OP_GT,
  OP_GE,
  OP_LT,
  OP_LE,
  OP_AND,
  OP_OR,
  OP_XOR
};

typedef kiln_status *(*binary_fn)(kiln_tensor **, const kiln_tensor *, const kiln_tensor *);

struct binary_case {
  const char *name;
  binary_fn fn;
  int op;
  kiln_dtype bad_dtype; /* a dtype the op refuses; 0: every dtype is accepted */
  const char *bad_expect;
};

static double binary_ref(int op, double a, double b) {
  switch (op) {
    case OP_ADD:
      return a + b;
    case OP_SUB:
      return a - b;
    case OP_MUL:
      return a * b;
    case OP_DIV:
      return a / b;
    case OP_MAX:
      return a > b ? a : b;
    case OP_MIN:
      return a < b ? a : b;
    case OP_POW:
      return pow(a, b);
    case OP_EQ:
      return a == b;
    case OP_NE:
      return a != b;
    case OP_GT:
      return a > b;
    case OP_GE:
      return a >= b;
    case OP_LT:
      return a < b;
    case OP_LE:
      return a <= b;
    case OP_AND:
      return a && b;
    case OP_OR:
      return a || b;
    default:
      return (a != 0) != (b != 0);
  }
}

static const struct binary_case kBinary[] = {
    {"add", kiln_add, OP_ADD, B8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"sub", kiln_sub, OP_SUB, B8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"mul", kiln_mul, OP_MUL, U8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"div", kiln_div, OP_DIV, B8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"maximum", kiln_maximum, OP_MAX, B8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"minimum", kiln_minimum, OP_MIN, U8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"pow", kiln_pow, OP_POW, B8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"equal", kiln_equal, OP_EQ, (kiln_dtype)0, NULL},
    {"not_equal", kiln_not_equal, OP_NE, (kiln_dtype)0, NULL},
    {"greater", kiln_greater, OP_GT, (kiln_dtype)0, NULL},
    {"greater_equal", kiln_greater_equal, OP_GE, (kiln_dtype)0, NULL},
    {"less", kiln_less, OP_LT, (kiln_dtype)0, NULL},
    {"less_equal", kiln_less_equal, OP_LE, (kiln_dtype)0, NULL},
    {"logical_and", kiln_logical_and, OP_AND, F32, "expected bool"},
    {"logical_or", kiln_logical_or, OP_OR, I32, "expected bool"},
    {"logical_xor", kiln_logical_xor, OP_XOR, F32, "expected bool"},
};

static void test_binary(void) {
  /* a [2, 3] with b [3] broadcast over its rows; a > 0 for pow; ties for the comparisons. */
  float av[6] = {2, 0.5f, 1, 4, 0.5f, 3}, bv[3] = {2, 0.5f, 3}, want[6];
  uint8_t la[4] = {1, 1, 0, 0}, lb[3] = {1, 0, 1}, bits[6];
  int64_t d23[2] = {2, 3}, d3[1] = {3}, d22[2] = {2, 2}, d2[1] = {2};
  int32_t ia[3] = {1, -2, 3}, ib = 10, isum[3] = {11, 8, 13};
  int64_t la64[2] = {-5, 7}, lb64[2] = {3, 3}, lmax[2] = {3, 7};
  uint8_t ucmp[3] = {0, 1, 0}, ua[3] = {1, 200, 3}, ub[3] = {2, 200, 9};
  kiln_tensor *a = f32(2, d23, av), *b = f32(1, d3, bv), *ba = make(B8, 2, d22, la),
              *bb = make(B8, 1, d2, lb);
  kiln_tensor *wrong = make(I32, 1, d3, ia), *short_f = f32(1, d2, bv), *short_b = make(B8, 1, d3, lb),
              *o = NULL;
  char fn[64], op[64];
  size_t c;
  int i;

  for (c = 0; c < sizeof kBinary / sizeof kBinary[0]; ++c) {
    const struct binary_case *k = &kBinary[c];
    int logical = k->op >= OP_AND, boolean = k->op >= OP_EQ;
    kiln_tensor *bad = NULL, *x = logical ? ba : a, *y = logical ? bb : b;
    int64_t *dims = logical ? d22 : d23;
    for (i = 0; i < (logical ? 4 : 6); ++i) {
      double r = logical ? binary_ref(k->op, la[i], lb[i % 2]) : binary_ref(k->op, av[i], bv[i % 3]);
      want[i] = (float)r;
      bits[i] = (uint8_t)(r != 0);
    }
    if (boolean)
      expect_raw(RUN(k->fn(&o, x, y)), B8, 2, dims, bits);
    else
      expect_f32(RUN(k->fn(&o, x, y)), 2, dims, want, 1e-6);

    sprintf(fn, "kiln_%s", k->name);
    sprintf(op, "%s:", k->name);
    EXPECT_ERROR(k->fn(NULL, x, y), INVALID, fn, "'out' is NULL");
    EXPECT_ERROR(k->fn(U, NULL, y), INVALID, fn, "'a' is NULL");
    EXPECT_ERROR(k->fn(U, x, NULL), INVALID, fn, "'b' is NULL");
    EXPECT_ERROR(k->fn(U, a, wrong), INVALID, op, "different dtypes");
    EXPECT_ERROR(k->fn(U, x, logical ? short_b : short_f), INVALID, op, "not broadcast-compatible");
    if (k->bad_dtype) {
      keep(bad = RUN(kiln_zeros(&o, d2, 1, k->bad_dtype)));
      EXPECT_ERROR(k->fn(U, bad, bad), INVALID, op, k->bad_expect);
    }
  }
  /* Integer and uint8 paths. */
  expect_raw(RUN(kiln_add(&o, wrong, make(I32, 0, NULL, &ib))), I32, 1, d3, isum);
  expect_raw(RUN(kiln_maximum(&o, make(I64, 1, d2, la64), make(I64, 1, d2, lb64))), I64, 1, d2, lmax);
  expect_raw(RUN(kiln_equal(&o, make(U8, 1, d3, ua), make(U8, 1, d3, ub))), B8, 1, d3, ucmp);
  /* Integer pow multiplies (0^0 = 1); a negative integer exponent is an error, as TF. */
  {
    int32_t base[3] = {0, -2, 3}, expo[3] = {0, 3, 4}, pw[3] = {1, -8, 81}, neg = -1;
    expect_raw(RUN(kiln_pow(&o, make(I32, 1, d3, base), make(I32, 1, d3, expo))), I32, 1, d3, pw);
    EXPECT_ERROR(kiln_pow(U, make(I32, 1, d3, base), make(I32, 0, NULL, &neg)), INVALID,
                 "pow:", "integers to negative integer powers are not allowed");
  }
  release_kept();
}

/* ------------------------------------------------------- elementwise unary */

enum {
  U_NEG,
  U_ABS,
  U_EXP,
  U_LOG,
  U_SQRT,
  U_RSQRT,
  U_SQUARE,
  U_TANH,
  U_SIGMOID,
  U_RELU,
  U_GELU,
  U_GELU_TANH,
  U_SOFTPLUS,
  U_ELU,
  U_LEAKY,
  U_SWISH,
  U_CLIP,
  U_IDENTITY,
  U_NOT
};

typedef kiln_status *(*unary_fn)(kiln_tensor **, const kiln_tensor *);

enum { IN_SIGNED, IN_POSITIVE, IN_BOOL };

struct unary_case {
  const char *name;
  unary_fn fn;
  int op;
  int input;
  kiln_dtype bad_dtype; /* 0: every dtype is accepted */
  const char *bad_expect;
};

static double unary_ref(int op, double x) {
  switch (op) {
    case U_NEG:
      return -x;
    case U_ABS:
      return fabs(x);
    case U_EXP:
      return exp(x);
    case U_LOG:
      return log(x);
    case U_SQRT:
      return sqrt(x);
    case U_RSQRT:
      return 1 / sqrt(x);
    case U_SQUARE:
      return x * x;
    case U_TANH:
      return tanh(x);
    case U_SIGMOID:
      return 1 / (1 + exp(-x));
    case U_RELU:
      return x > 0 ? x : 0;
    case U_GELU:
      return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case U_GELU_TANH:
      return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case U_SOFTPLUS:
      return log1p(exp(x));
    case U_ELU:
      return x > 0 ? x : 0.5 * (exp(x) - 1);
    case U_LEAKY:
      return x > 0 ? x : 0.1 * x;
    case U_SWISH:
      return x / (1 + exp(-x));
    case U_CLIP:
      return x < -1 ? -1 : x > 1 ? 1 : x;
    case U_IDENTITY:
      return x;
    default:
      return x == 0;
  }
}

/* The ops with parameters, bound to the values unary_ref uses. */
static kiln_status *gelu_erf(kiln_tensor **o, const kiln_tensor *x) { return kiln_gelu(o, x, false); }
static kiln_status *gelu_tanh(kiln_tensor **o, const kiln_tensor *x) { return kiln_gelu(o, x, true); }
static kiln_status *elu_half(kiln_tensor **o, const kiln_tensor *x) { return kiln_elu(o, x, 0.5f); }
static kiln_status *leaky_tenth(kiln_tensor **o, const kiln_tensor *x) { return kiln_leaky_relu(o, x, 0.1f); }
static kiln_status *clip_unit(kiln_tensor **o, const kiln_tensor *x) {
  return kiln_clip_by_value(o, x, -1, 1);
}

static const struct unary_case kUnary[] = {
    {"neg", kiln_neg, U_NEG, IN_SIGNED, B8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"abs", kiln_abs, U_ABS, IN_SIGNED, U8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"exp", kiln_exp, U_EXP, IN_SIGNED, I32, "expected float32"},
    {"log", kiln_log, U_LOG, IN_POSITIVE, I32, "expected float32"},
    {"sqrt", kiln_sqrt, U_SQRT, IN_POSITIVE, I64, "expected float32"},
    {"rsqrt", kiln_rsqrt, U_RSQRT, IN_POSITIVE, I64, "expected float32"},
    {"square", kiln_square, U_SQUARE, IN_SIGNED, B8,
     "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"tanh", kiln_tanh, U_TANH, IN_SIGNED, I32, "expected float32"},
    {"sigmoid", kiln_sigmoid, U_SIGMOID, IN_SIGNED, I32, "expected float32"},
    {"relu", kiln_relu, U_RELU, IN_SIGNED, B8, "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"gelu", gelu_erf, U_GELU, IN_SIGNED, I32, "expected float32"},
    {"gelu", gelu_tanh, U_GELU_TANH, IN_SIGNED, B8, "expected float32"},
    {"softplus", kiln_softplus, U_SOFTPLUS, IN_SIGNED, I32, "expected float32"},
    {"elu", elu_half, U_ELU, IN_SIGNED, I32, "expected float32"},
    {"leaky_relu", leaky_tenth, U_LEAKY, IN_SIGNED, I32, "expected float32"},
    {"swish", kiln_swish, U_SWISH, IN_SIGNED, I32, "expected float32"},
    {"clip_by_value", clip_unit, U_CLIP, IN_SIGNED, U8,
     "expected float32 or bfloat16 or float64 or int32 or int64"},
    {"stop_gradient", kiln_stop_gradient, U_IDENTITY, IN_SIGNED, (kiln_dtype)0, NULL},
    {"logical_not", kiln_logical_not, U_NOT, IN_BOOL, F32, "expected bool"},
};

static void test_unary(void) {
  float sv[6] = {-2, -0.5f, 0, 0.5f, 1, 3}, pv[6] = {0.25f, 0.5f, 1, 2, 4, 9}, want[6];
  uint8_t bv[6] = {1, 0, 0, 1, 1, 0}, bits[6];
  int64_t d23[2] = {2, 3}, d2[1] = {2}, d3[1] = {3};
  int32_t iv[3] = {-3, 0, 5}, ineg[3] = {3, 0, -5}, isq[3] = {9, 0, 25};
  int64_t lv[3] = {-3, 0, 5}, labs[3] = {3, 0, 5};
  kiln_tensor *signed_x = f32(2, d23, sv), *positive = f32(2, d23, pv), *boolean = make(B8, 2, d23, bv);
  kiln_tensor *o = NULL, *x;
  char fn[64], op[64];
  size_t c;
  int i;

  for (c = 0; c < sizeof kUnary / sizeof kUnary[0]; ++c) {
    const struct unary_case *k = &kUnary[c];
    const float *in = k->input == IN_POSITIVE ? pv : sv;
    x = k->input == IN_BOOL ? boolean : k->input == IN_POSITIVE ? positive : signed_x;
    for (i = 0; i < 6; ++i) {
      double r = unary_ref(k->op, k->input == IN_BOOL ? bv[i] : in[i]);
      want[i] = (float)r;
      bits[i] = (uint8_t)(r != 0);
    }
    if (k->input == IN_BOOL)
      expect_raw(RUN(k->fn(&o, x)), B8, 2, d23, bits);
    else
      expect_f32(RUN(k->fn(&o, x)), 2, d23, want, 2e-6);

    sprintf(fn, "kiln_%s", k->name);
    sprintf(op, "%s:", k->name);
    EXPECT_ERROR(k->fn(NULL, x), INVALID, fn, "'out' is NULL");
    EXPECT_ERROR(k->fn(U, NULL), INVALID, fn, "'x' is NULL");
    if (k->bad_dtype) {
      kiln_tensor *bad = keep(RUN(kiln_zeros(&o, d2, 1, k->bad_dtype)));
      EXPECT_ERROR(k->fn(U, bad), INVALID, op, k->bad_expect);
    }
  }
  /* stop_gradient keeps any dtype. */
  expect_raw(RUN(kiln_stop_gradient(&o, boolean)), B8, 2, d23, bv);
  /* Integer paths. */
  expect_raw(RUN(kiln_neg(&o, make(I32, 1, d3, iv))), I32, 1, d3, ineg);
  expect_raw(RUN(kiln_square(&o, make(I32, 1, d3, iv))), I32, 1, d3, isq);
  expect_raw(RUN(kiln_abs(&o, make(I64, 1, d3, lv))), I64, 1, d3, labs);
  /* As TF registers them: sign, relu, relu6, round (the identity) and clip_by_value of integers. */
  {
    int32_t jv[4] = {-9, 0, 4, 8}, jsign[4] = {-1, 0, 1, 1}, jrelu[4] = {0, 0, 4, 8},
            jrelu6[4] = {0, 0, 4, 6}, jclip[4] = {-1, 0, 1, 1};
    int64_t d4[1] = {4}, lclip[3] = {-2, 0, 2};
    kiln_tensor *j = make(I32, 1, d4, jv);
    expect_raw(RUN(kiln_sign(&o, j)), I32, 1, d4, jsign);
    expect_raw(RUN(kiln_relu(&o, j)), I32, 1, d4, jrelu);
    expect_raw(RUN(kiln_relu6(&o, j)), I32, 1, d4, jrelu6);
    expect_raw(RUN(kiln_round(&o, j)), I32, 1, d4, jv);
    expect_raw(RUN(kiln_clip_by_value(&o, j, -1, 1)), I32, 1, d4, jclip);
    expect_raw(RUN(kiln_clip_by_value(&o, make(I64, 1, d3, lv), -2, 2)), I64, 1, d3, lclip);
    EXPECT_ERROR(kiln_clip_by_value(U, j, -1.5f, 1), INVALID,
                 "clip_by_value: argument 'clip_value_min' is -1.5",
                 "expected a whole number in the range of x's dtype int32");
    EXPECT_ERROR(kiln_clip_by_value(U, j, 0, 3e9f), INVALID, "clip_by_value: argument 'clip_value_max'",
                 "int32");
  }
  /* kiln_clip_by_value_tensor: bounds of x's dtype that broadcast to x's shape; integer bounds exact
     (16777217 is no float32). */
  {
    int64_t d3b[1] = {3}, d1[1] = {1}, d21[2] = {2, 1}, d23b[2] = {2, 3};
    int64_t xv[3] = {INT64_C(1) << 40, -7, 16777219}, lov[3] = {0, 0, 16777217},
            hiv[1] = {(INT64_C(1) << 40) - 1};
    int64_t want_l[3] = {(INT64_C(1) << 40) - 1, 0, 16777219};
    kiln_tensor *x = make(I64, 1, d3b, xv);
    expect_raw(RUN(kiln_clip_by_value_tensor(&o, x, make(I64, 1, d3b, lov), make(I64, 1, d1, hiv))), I64, 1,
               d3b, want_l);
    float fx[6] = {0.5f, 2.5f, 9.0f, -1.0f, NAN, 4.0f}, flo[3] = {1, 2, 3}, fhi[2] = {2, 3.5f};
    float fwant[6] = {1, 2, 3, 1, NAN, 3.5f};
    kiln_tensor *f = make(F32, 2, d23b, fx), *flow = make(F32, 1, d3b, flo), *fhigh = make(F32, 2, d21, fhi);
    const float *gp = fdata(keep(RUN(kiln_clip_by_value_tensor(&o, f, flow, fhigh))));
    for (i = 0; i < 6; ++i) CHECK(isnan(fwant[i]) ? isnan(gp[i]) : gp[i] == fwant[i]);
    EXPECT_ERROR(kiln_clip_by_value_tensor(U, f, x, fhigh), INVALID,
                 "clip_by_value: argument 'clip_value_min' is", "int64[3]; expected x's dtype float32");
    EXPECT_ERROR(kiln_clip_by_value_tensor(U, flow, f, fhigh), INVALID, "clip_by_value: bounds",
                 "expected bounds that broadcast to x's shape");
    EXPECT_ERROR(kiln_clip_by_value_tensor(U, f, NULL, fhigh), INVALID, "kiln_clip_by_value_tensor",
                 "clip_min");
  }
  /* Parameters out of range. */
  EXPECT_ERROR(kiln_elu(U, signed_x, (float)NAN), INVALID, "elu", "'alpha' is nan");
  EXPECT_ERROR(kiln_leaky_relu(U, signed_x, (float)INFINITY), INVALID, "leaky_relu",
               "expected a finite value");
  /* clip_by_value is TF's maximum(minimum(x, max), min): min everywhere when min > max. */
  for (i = 0; i < 6; ++i) want[i] = 1;
  expect_f32(RUN(kiln_clip_by_value(&o, signed_x, 1, -1)), 2, d23, want, 0);
  release_kept();
}

/* ------------------------------------------------------------- where, cast */

static void test_where_cast(void) {
  uint8_t cv[2] = {1, 0}, cast_bool[4] = {1, 1, 0, 1}, bools[2] = {1, 0};
  float xv[6] = {2, 0.5f, 1, 4, 0.5f, 3}, nine = 9, picked[6] = {2, 0.5f, 1, 9, 9, 9};
  float fv[4] = {1.7f, -1.7f, 0, 2.5f}, bf_in[4] = {1, -2, 1.00390625f, 1.01171875f};
  float bf_back[4] = {1, -2, 1, 1.015625f}, from_int[2] = {3, -4}, from_bool[2] = {1, 0};
  int32_t to_i32[4] = {1, -1, 0, 2}, iv[2] = {3, -4}, ipick[2] = {3, 0}, izero = 0;
  int64_t to_i64[4] = {1, -1, 0, 2};
  uint16_t to_bf[4] = {0x3F80, 0xC000, 0x3F80, 0x3F82}; /* round to nearest even */
  int64_t d21[2] = {2, 1}, d23[2] = {2, 3}, d4[1] = {4}, d2[1] = {2};
  kiln_tensor *cond = make(B8, 2, d21, cv), *x = f32(2, d23, xv), *y = f32(0, NULL, &nine),
              *fx = f32(1, d4, fv);
  kiln_tensor *ints = make(I32, 1, d2, iv), *o = NULL, *bf;

  expect_f32(RUN(kiln_where(&o, cond, x, y)), 2, d23, picked, 0);
  expect_raw(RUN(kiln_where(&o, make(B8, 1, d2, cv), ints, make(I32, 0, NULL, &izero))), I32, 1, d2, ipick);
  EXPECT_ERROR(kiln_where(NULL, cond, x, y), INVALID, "kiln_where", "'out' is NULL");
  EXPECT_ERROR(kiln_where(U, NULL, x, y), INVALID, "kiln_where", "'cond' is NULL");
  EXPECT_ERROR(kiln_where(U, cond, x, NULL), INVALID, "kiln_where", "'y' is NULL");
  EXPECT_ERROR(kiln_where(U, x, x, y), INVALID, "where: argument 'cond' is float32[2, 3]", "expected bool");
  EXPECT_ERROR(kiln_where(U, cond, x, ints), INVALID, "where: x is float32[2, 3] and y is int32[2]",
               "expected the same dtype");
  EXPECT_ERROR(kiln_where(U, make(B8, 1, d2, cv), x, y), INVALID, "where: shapes [2] and [2, 3]",
               "not broadcast-compatible");

  expect_raw(RUN(kiln_cast(&o, fx, I32)), I32, 1, d4, to_i32);
  expect_raw(RUN(kiln_cast(&o, fx, I64)), I64, 1, d4, to_i64);
  expect_raw(RUN(kiln_cast(&o, fx, B8)), B8, 1, d4, cast_bool);
  expect_f32(RUN(kiln_cast(&o, fx, F32)), 1, d4, fv, 0);
  bf = keep(RUN(kiln_cast(&o, f32(1, d4, bf_in), BF16)));
  expect_raw(RUN(kiln_tensor_clone(&o, bf)), BF16, 1, d4, to_bf);
  expect_f32(RUN(kiln_cast(&o, bf, F32)), 1, d4, bf_back, 0);
  expect_f32(RUN(kiln_cast(&o, ints, F32)), 1, d2, from_int, 0);
  expect_f32(RUN(kiln_cast(&o, make(B8, 1, d2, bools), F32)), 1, d2, from_bool, 0);
  EXPECT_ERROR(kiln_cast(NULL, fx, I32), INVALID, "kiln_cast", "'out' is NULL");
  EXPECT_ERROR(kiln_cast(U, NULL, I32), INVALID, "kiln_cast", "'x' is NULL");
  EXPECT_ERROR(kiln_cast(U, fx, (kiln_dtype)99), INVALID, "kiln_cast", "dtype 99");
  release_kept();
}

/* ------------------------------------------------------------------ matmul */

/* out[m, n] = op(a)[m, k] op(b)[k, n]; op transposes when asked (a then stored [k, m], b [n, k]). */
static void ref_matmul(const float *a, const float *b, int m, int k, int n, int ta, int tb, float *out) {
  int i, j, p;
  for (i = 0; i < m; ++i)
    for (j = 0; j < n; ++j) {
      double s = 0;
      for (p = 0; p < k; ++p)
        s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      out[i * n + j] = (float)s;
    }
}

static void test_matmul(void) {
  float av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {1, -1, 0, 2, 0.5f, 1}, a3v[12], want[9];
  int64_t d23[2] = {2, 3}, d32[2] = {3, 2}, d22[2] = {2, 2}, d33[2] = {3, 3}, d223[3] = {2, 2, 3},
          d222[3] = {2, 2, 2}, d332[3] = {3, 3, 2}, d3[1] = {3};
  int64_t hits0 = 0, misses0 = 0, hits1 = 0, misses1 = 0;
  kiln_tensor *a = f32(2, d23, av), *b = f32(2, d32, bv), *o = NULL, *abf, *bbf, *cbf;
  int i;

  ref_matmul(av, bv, 2, 3, 2, 0, 0, want);
  expect_f32(RUN(kiln_matmul(&o, a, b, false, false)), 2, d22, want, 1e-6);
  kiln_primitive_cache_stats(&hits0, &misses0, NULL);
  ref_matmul(av, av, 2, 3, 2, 0, 1, want);
  expect_f32(RUN(kiln_matmul(&o, a, a, false, true)), 2, d22, want, 1e-6);
  kiln_primitive_cache_stats(&hits1, &misses1, NULL);
  /* A transposed matmul goes through the oneDNN primitive cache (a plain one of at most 8 rows
   * runs kiln's gemv kernel). */
  CHECK(hits1 + misses1 > hits0 + misses0);
  ref_matmul(av, av, 3, 2, 3, 1, 0, want);
  expect_f32(RUN(kiln_matmul(&o, a, a, true, false)), 2, d33, want, 1e-6);
  ref_matmul(bv, av, 2, 3, 2, 1, 1, want);
  expect_f32(RUN(kiln_matmul(&o, b, a, true, true)), 2, d22, want, 1e-6);
  /* Batched [2, 2, 3] x [3, 2]: b broadcasts over the batch. */
  {
    float batched[8];
    for (i = 0; i < 6; ++i) a3v[i] = av[i], a3v[6 + i] = -2 * av[i];
    ref_matmul(a3v, bv, 2, 3, 2, 0, 0, batched);
    ref_matmul(a3v + 6, bv, 2, 3, 2, 0, 0, batched + 4);
    expect_f32(RUN(kiln_matmul(&o, f32(3, d223, a3v), b, false, false)), 3, d222, batched, 1e-6);
  }
  /* bfloat16 in, bfloat16 out (these values are exact in bfloat16). */
  abf = keep(RUN(kiln_cast(&o, a, BF16)));
  bbf = keep(RUN(kiln_cast(&o, b, BF16)));
  cbf = keep(RUN(kiln_matmul(&o, abf, bbf, false, false)));
  ref_matmul(av, bv, 2, 3, 2, 0, 0, want);
  if (cbf && meta_ok(cbf, BF16, 2, d22)) expect_f32(RUN(kiln_cast(&o, cbf, F32)), 2, d22, want, 1e-2);

  EXPECT_ERROR(kiln_matmul(NULL, a, b, false, false), INVALID, "kiln_matmul", "'out' is NULL");
  EXPECT_ERROR(kiln_matmul(U, NULL, b, false, false), INVALID, "kiln_matmul", "'a' is NULL");
  EXPECT_ERROR(kiln_matmul(U, a, NULL, false, false), INVALID, "kiln_matmul", "'b' is NULL");
  EXPECT_ERROR(kiln_matmul(U, a, a, false, false), INVALID, "matmul: inner dimensions differ, 3 vs 2",
               "transpose_b=false");
  EXPECT_ERROR(kiln_matmul(U, a, b, true, false), INVALID, "matmul: inner dimensions differ, 2 vs 3",
               "transpose_a=true");
  EXPECT_ERROR(kiln_matmul(U, f32(1, d3, av), b, false, false), INVALID, "matmul", "rank >= 2");
  /* Integers multiply in kiln's own loop, wrapping on overflow, as TF's integer MatMul. */
  {
    int32_t ia[6] = {1, 2, 3, 4, 5, 6}, ib[6] = {1, -1, 0, 2, 7, 1}, iprod[4] = {22, 6, 46, 12};
    int64_t la[2] = {INT64_MAX, 1}, lb[2] = {3, 4}, lprod = (int64_t)((uint64_t)INT64_MAX * 3u + 4u);
    int64_t d12[2] = {1, 2}, d21[2] = {2, 1}, d11[2] = {1, 1};
    expect_raw(RUN(kiln_matmul(&o, make(I32, 2, d23, ia), make(I32, 2, d32, ib), false, false)), I32, 2, d22,
               iprod);
    expect_raw(RUN(kiln_matmul(&o, make(I64, 2, d12, la), make(I64, 2, d21, lb), false, false)), I64, 2, d11,
               &lprod);
    EXPECT_ERROR(kiln_matmul(U, make(I32, 2, d23, ia), b, false, false), INVALID, "matmul",
                 "different dtypes");
    EXPECT_ERROR(kiln_matmul(U, make(U8, 2, d23, ia), make(U8, 2, d32, ib), false, false), INVALID,
                 "matmul: argument 'a' is uint8[2, 3]", "expected float32 or bfloat16 or float64 or int32");
  }
  EXPECT_ERROR(kiln_matmul(U, abf, b, false, false), INVALID, "matmul", "different dtypes");
  {
    float zeros18[18] = {0};
    EXPECT_ERROR(kiln_matmul(U, f32(3, d223, a3v), f32(3, d332, zeros18), false, false), INVALID, "matmul",
                 "batch dimensions do not broadcast");
  }
  release_kept();
}

/* -------------------------------------------------------------- reductions */

typedef kiln_status *(*reduce_fn)(kiln_tensor **, const kiln_tensor *, const int64_t *, size_t, bool);

static const struct {
  const char *name;
  reduce_fn fn;
} kReduce[] = {{"sum", kiln_sum}, {"mean", kiln_mean}, {"max", kiln_max}, {"min", kiln_min}};

static void test_reductions(void) {
  float rv[6] = {1, 2, 3, 4, 5, 6}, s21 = 21, cols[3] = {5, 7, 9}, rows[2] = {6, 15}, means[2] = {2, 5};
  float avg = 3.5f, six = 6, col_max[3] = {4, 5, 6}, row_min[2] = {1, 4}, col_min[3] = {1, 2, 3};
  float av[6] = {1, 3, 3, 7, 2, 0};
  int32_t iv[6] = {1, 2, 3, 4, 5, 6}, icols[3] = {5, 7, 9}, jv[4] = {2, 9, 9, 1};
  int64_t lv[3] = {-4, 8, 2}, lmax = 8, at_rows[2] = {1, 0}, at_cols[3] = {1, 0, 0}, at_int = 1;
  int64_t d23[2] = {2, 3}, d3[1] = {3}, d2[1] = {2}, d21[2] = {2, 1}, d11[2] = {1, 1}, d13[2] = {1, 3},
          d4[1] = {4};
  int64_t ax0[1] = {0}, ax1[1] = {1}, axm1[1] = {-1}, ax01[2] = {0, 1}, ax2[1] = {2}, dup[2] = {0, -2};
  kiln_tensor *x = f32(2, d23, rv), *xi = make(I32, 2, d23, iv), *bools = NULL, *o = NULL;
  char fn[64], op[64];
  size_t c;

  expect_f32(RUN(kiln_sum(&o, x, NULL, 0, false)), 0, NULL, &s21, 1e-6);
  expect_f32(RUN(kiln_sum(&o, x, ax0, 1, false)), 1, d3, cols, 1e-6);
  expect_f32(RUN(kiln_sum(&o, x, axm1, 1, true)), 2, d21, rows, 1e-6);
  expect_f32(RUN(kiln_sum(&o, x, ax01, 2, false)), 0, NULL, &s21, 1e-6);
  expect_raw(RUN(kiln_sum(&o, xi, ax0, 1, false)), I32, 1, d3, icols);
  expect_f32(RUN(kiln_mean(&o, x, ax1, 1, false)), 1, d2, means, 1e-6);
  expect_f32(RUN(kiln_mean(&o, x, NULL, 0, true)), 2, d11, &avg, 1e-6);
  expect_f32(RUN(kiln_max(&o, x, NULL, 0, false)), 0, NULL, &six, 0);
  expect_f32(RUN(kiln_max(&o, x, ax0, 1, false)), 1, d3, col_max, 0);
  expect_raw(RUN(kiln_max(&o, make(I64, 1, d3, lv), NULL, 0, false)), I64, 0, NULL, &lmax);
  expect_f32(RUN(kiln_min(&o, x, ax1, 1, false)), 1, d2, row_min, 0);
  expect_f32(RUN(kiln_min(&o, x, ax0, 1, true)), 2, d13, col_min, 0);

  for (c = 0; c < sizeof kReduce / sizeof kReduce[0]; ++c) {
    sprintf(fn, "kiln_%s", kReduce[c].name);
    sprintf(op, "%s: axis 2 is out of range for a tensor of rank 2", kReduce[c].name);
    EXPECT_ERROR(kReduce[c].fn(NULL, x, NULL, 0, false), INVALID, fn, "'out' is NULL");
    EXPECT_ERROR(kReduce[c].fn(U, NULL, NULL, 0, false), INVALID, fn, "'x' is NULL");
    EXPECT_ERROR(kReduce[c].fn(U, x, NULL, 1, false), INVALID, fn, "'axes' is NULL");
    EXPECT_ERROR(kReduce[c].fn(U, x, ax2, 1, false), INVALID, op, "expected an axis in [-2, 2)");
    EXPECT_ERROR(kReduce[c].fn(U, x, dup, 2, false), INVALID, kReduce[c].name, "more than once");
  }
  keep(bools = RUN(kiln_zeros(&o, d2, 1, B8)));
  EXPECT_ERROR(kiln_sum(U, bools, NULL, 0, false), INVALID, "sum: argument 'x' is bool[2]",
               "expected float32");
  /* An integer mean is TF's: the sum divided by the count, truncated toward zero. */
  {
    int32_t imeans[2] = {2, 5}, iall = 3; /* 21 / 6 */
    expect_raw(RUN(kiln_mean(&o, xi, ax1, 1, false)), I32, 1, d2, imeans);
    expect_raw(RUN(kiln_mean(&o, xi, NULL, 0, false)), I32, 0, NULL, &iall);
  }
  EXPECT_ERROR(kiln_mean(U, bools, NULL, 0, false), INVALID, "mean: argument 'x' is bool[2]",
               "expected float32 or bfloat16 or float64 or int32 or int64");
  EXPECT_ERROR(kiln_max(U, bools, NULL, 0, false), INVALID, "max: argument 'x' is bool[2]",
               "expected float32");
  EXPECT_ERROR(kiln_min(U, bools, NULL, 0, false), INVALID, "min: argument 'x' is bool[2]",
               "expected float32");

  expect_raw(RUN(kiln_argmax(&o, f32(2, d23, av), -1)), I64, 1, d2, at_rows); /* first index on ties */
  expect_raw(RUN(kiln_argmax(&o, f32(2, d23, av), 0)), I64, 1, d3, at_cols);
  expect_raw(RUN(kiln_argmax(&o, make(I32, 1, d4, jv), 0)), I64, 0, NULL, &at_int);
  EXPECT_ERROR(kiln_argmax(NULL, x, 0), INVALID, "kiln_argmax", "'out' is NULL");
  EXPECT_ERROR(kiln_argmax(U, NULL, 0), INVALID, "kiln_argmax", "'x' is NULL");
  EXPECT_ERROR(kiln_argmax(U, x, 2), INVALID, "argmax: axis 2 is out of range", "[-2, 2)");
  EXPECT_ERROR(kiln_argmax(U, bools, 0), INVALID, "argmax: argument 'x' is bool[2]", "expected float32");
  EXPECT_ERROR(kiln_argmax(U, f32(0, NULL, rv), 0), INVALID, "argmax", "expected rank >= 1");
  release_kept();
}

/* ----------------------------------------------------------------- softmax */

/* Softmax (or log-softmax) of a [rows, cols] matrix along axis 0 or 1. */
static void ref_softmax(const float *x, int rows, int cols, int axis, int log_form, float *out) {
  int groups = axis ? rows : cols, len = axis ? cols : rows, stride = axis ? 1 : cols, g, i;
  for (g = 0; g < groups; ++g) {
    const int base = axis ? g * cols : g;
    double top = x[base], s = 0;
    for (i = 1; i < len; ++i) top = x[base + i * stride] > top ? x[base + i * stride] : top;
    for (i = 0; i < len; ++i) s += exp(x[base + i * stride] - top);
    for (i = 0; i < len; ++i) {
      double z = x[base + i * stride] - top;
      out[base + i * stride] = (float)(log_form ? z - log(s) : exp(z) / s);
    }
  }
}

static void test_softmax(void) {
  float sv[6] = {1, 2, 3, -1, 0, 5}, want[6], one = 1;
  int32_t iv[2] = {1, 2};
  int64_t d23[2] = {2, 3}, d2[1] = {2};
  kiln_tensor *x = f32(2, d23, sv), *xi = make(I32, 1, d2, iv), *o = NULL;
  int axis, log_form;

  for (log_form = 0; log_form < 2; ++log_form)
    for (axis = 0; axis < 2; ++axis) {
      kiln_status *(*fn)(kiln_tensor **, const kiln_tensor *, int64_t) =
          log_form ? kiln_log_softmax : kiln_softmax;
      const char *name = log_form ? "kiln_log_softmax" : "kiln_softmax";
      ref_softmax(sv, 2, 3, axis, log_form, want);
      expect_f32(RUN(fn(&o, x, axis ? -1 : 0)), 2, d23, want, 1e-6);
      EXPECT_ERROR(fn(NULL, x, 0), INVALID, name, "'out' is NULL");
      EXPECT_ERROR(fn(U, NULL, 0), INVALID, name, "'x' is NULL");
      EXPECT_ERROR(fn(U, x, 2), INVALID, name + 5, "axis 2 is out of range");
      EXPECT_ERROR(fn(U, xi, 0), INVALID, name + 5, "argument 'x' is int32[2]; expected float32");
      EXPECT_ERROR(fn(U, f32(0, NULL, &one), 0), INVALID, name + 5, "expected rank >= 1");
    }
  release_kept();
}

/* ---------------------------------------------------- layer and batch norm */

/* y = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis of a [rows, cols] matrix. */
static void ref_layer_norm(const float *x, int rows, int cols, const float *g, const float *b, double eps,
                           float *y) {
  int r, c;
  for (r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (c = 0; c < cols; ++c) m += x[r * cols + c] / (double)cols;
    for (c = 0; c < cols; ++c) v += (x[r * cols + c] - m) * (x[r * cols + c] - m) / cols;
    for (c = 0; c < cols; ++c) y[r * cols + c] = (float)((x[r * cols + c] - m) / sqrt(v + eps) * g[c] + b[c]);
  }
}

/* Batch norm of [rows, cols] over the rows; training computes (and returns) the batch statistics. */
static void ref_batch_norm(const float *x, int rows, int cols, const float *g, const float *b, float *mean,
                           float *var, int training, double eps, float *y) {
  int r, c;
  for (c = 0; c < cols; ++c) {
    if (training) {
      double m = 0, v = 0;
      for (r = 0; r < rows; ++r) m += x[r * cols + c] / (double)rows;
      for (r = 0; r < rows; ++r) v += (x[r * cols + c] - m) * (x[r * cols + c] - m) / rows;
      mean[c] = (float)m;
      var[c] = (float)v;
    }
    for (r = 0; r < rows; ++r)
      y[r * cols + c] = (float)((x[r * cols + c] - mean[c]) / sqrt(var[c] + eps) * g[c] + b[c]);
  }
}

static void test_norms(void) {
  float lx[6] = {1, 2, 3, -1, 0, 5}, lg[3] = {1, 2, 0.5f}, lb[3] = {0, 1, -1}, want[8];
  float bx[8] = {1, 2, 3, 6, 5, 4, 7, 0}, bg[2] = {1, 2}, bb[2] = {0, -1}, bm[2], bvar[2];
  float given_m[2] = {1, 1}, given_v[2] = {4, 0.25f};
  int64_t d23[2] = {2, 3}, d3[1] = {3}, d2[1] = {2}, d42[2] = {4, 2}, d1221[4] = {1, 2, 2, 2};
  kiln_tensor *x = f32(2, d23, lx), *g = f32(1, d3, lg), *b = f32(1, d3, lb), *o = NULL;
  kiln_tensor *bnx = f32(2, d42, bx), *bng = f32(1, d2, bg), *bnb = f32(1, d2, bb);
  kiln_tensor *gm = f32(1, d2, given_m), *gv = f32(1, d2, given_v), *y = NULL, *m = NULL, *v = NULL;

  ref_layer_norm(lx, 2, 3, lg, lb, 1e-3, want);
  expect_f32(RUN(kiln_layer_norm(&o, x, g, b, NULL, 0, 1e-3f)), 2, d23, want, 1e-5);
  ref_layer_norm(lx, 2, 3, lg, lb, 0.5, want);
  expect_f32(RUN(kiln_layer_norm(&o, x, g, b, NULL, 0, 0.5f)), 2, d23, want, 1e-5);
  EXPECT_ERROR(kiln_layer_norm(NULL, x, g, b, NULL, 0, 1e-3f), INVALID, "kiln_layer_norm", "'out' is NULL");
  EXPECT_ERROR(kiln_layer_norm(U, x, g, NULL, NULL, 0, 1e-3f), INVALID, "kiln_layer_norm", "'beta' is NULL");
  EXPECT_ERROR(kiln_layer_norm(U, x, bng, b, NULL, 0, 1e-3f), INVALID, "layer_norm: argument 'gamma' is float32[2]",
               "expected float32[3]");
  EXPECT_ERROR(kiln_layer_norm(U, x, g, b, NULL, 0, -1), INVALID, "layer_norm: epsilon is -1",
               "expected a finite value >= 0");
  EXPECT_ERROR(kiln_layer_norm(U, make(I32, 2, d23, lx), g, b, NULL, 0, 1e-3f), INVALID,
               "layer_norm: argument 'x' is int32", "expected float32");

  /* Training: batch statistics, returned. */
  ref_batch_norm(bx, 4, 2, bg, bb, bm, bvar, 1, 1e-3, want);
  EXPECT_OK(kiln_batch_norm(&y, &m, &v, bnx, bng, bnb, NULL, NULL, true, 1e-3f));
  expect_f32(y, 2, d42, want, 1e-5);
  expect_f32(m, 1, d2, bm, 1e-6);
  expect_f32(v, 1, d2, bvar, 1e-6);
  /* Statistics not wanted; moving statistics given but ignored when training. */
  expect_f32(RUN(kiln_batch_norm(&o, NULL, NULL, bnx, bng, bnb, gm, gv, true, 1e-3f)), 2, d42, want, 1e-5);
  /* Rank 4: normalised over N, H, W. */
  expect_f32(RUN(kiln_batch_norm(&o, NULL, NULL, f32(4, d1221, bx), bng, bnb, NULL, NULL, true, 1e-3f)), 4,
             d1221, want, 1e-5);
  /* Inference: the given statistics, handed back. */
  ref_batch_norm(bx, 4, 2, bg, bb, given_m, given_v, 0, 1e-3, want);
  y = m = v = NULL;
  EXPECT_OK(kiln_batch_norm(&y, &m, &v, bnx, bng, bnb, gm, gv, false, 1e-3f));
  expect_f32(y, 2, d42, want, 1e-5);
  expect_f32(m, 1, d2, given_m, 0);
  expect_f32(v, 1, d2, given_v, 0);

  y = m = v = NULL;
  EXPECT_ERROR(kiln_batch_norm(NULL, &m, &v, bnx, bng, bnb, gm, gv, false, 1e-3f), INVALID, "kiln_batch_norm",
               "'out' is NULL");
  EXPECT_ERROR(kiln_batch_norm(U, &m, &v, bnx, bng, bnb, NULL, gv, false, 1e-3f), INVALID, "kiln_batch_norm",
               "'mean' is NULL");
  EXPECT_ERROR(kiln_batch_norm(U, &m, &v, bnx, bng, bnb, gm, NULL, false, 1e-3f), INVALID, "kiln_batch_norm",
               "'variance' is NULL");
  EXPECT_ERROR(kiln_batch_norm(U, &m, &v, NULL, bng, bnb, gm, gv, false, 1e-3f), INVALID, "kiln_batch_norm",
               "'x' is NULL");
  EXPECT_ERROR(kiln_batch_norm(U, &m, &v, f32(1, d2, bx), bng, bnb, NULL, NULL, true, 1e-3f), INVALID,
               "batch_norm: argument 'x' is float32[2]", "expected rank >= 2");
  EXPECT_ERROR(kiln_batch_norm(U, &m, &v, bnx, g, bnb, NULL, NULL, true, 1e-3f), INVALID,
               "batch_norm: argument 'gamma' is float32[3]", "expected float32[2]");
  EXPECT_ERROR(kiln_batch_norm(U, &m, &v, bnx, bng, bnb, g, NULL, true, 1e-3f), INVALID,
               "batch_norm: argument 'mean' is float32[3]", "expected float32[2]");
  EXPECT_ERROR(kiln_batch_norm(U, &m, &v, bnx, bng, bnb, NULL, NULL, true, (float)NAN), INVALID,
               "batch_norm: epsilon is nan", NULL);
  CHECK(m == NULL && v == NULL); /* failed calls write no statistics */
  release_kept();
}

/* ----------------------------------------------------- convolution, pooling */

/* TF's geometry of a window op on [N, H, W, C] (channels last). */
struct window {
  int64_t n, h, w, c, kh, kw, o, sh, sw, dh, dw, oh, ow, pad_top, pad_left;
};

static void window_axis(int64_t in, int64_t k, int64_t s, int64_t d, int same, int64_t *out,
                        int64_t *before) {
  const int64_t span = (k - 1) * d + 1;
  int64_t total;
  if (!same) {
    *out = in >= span ? (in - span) / s + 1 : 0;
    *before = 0;
    return;
  }
  *out = (in + s - 1) / s;
  total = (*out - 1) * s + span - in;
  *before = total > 0 ? total / 2 : 0;
}

static struct window make_window(const int64_t *x_dims, int64_t kh, int64_t kw, int64_t o,
                                 const int64_t *strides, const int64_t *dilations, int same) {
  struct window g;
  g.n = x_dims[0], g.h = x_dims[1], g.w = x_dims[2], g.c = x_dims[3];
  g.kh = kh, g.kw = kw, g.o = o;
  g.sh = strides[0], g.sw = strides[1], g.dh = dilations[0], g.dw = dilations[1];
  window_axis(g.h, kh, g.sh, g.dh, same, &g.oh, &g.pad_top);
  window_axis(g.w, kw, g.sw, g.dw, same, &g.ow, &g.pad_left);
  return g;
}

/* kind 0: convolution with filter f [KH, KW, C, O]; 1: max pool; 2: average pool (o is the channel).
 * Cells of the padding are skipped: they add nothing to a convolution and TF leaves them out of pools. */
static void ref_window(const struct window *g, const float *x, const float *f, int kind, float *out) {
  int64_t n, oh, ow, o, i, j, ch;
  for (n = 0; n < g->n; ++n)
    for (oh = 0; oh < g->oh; ++oh)
      for (ow = 0; ow < g->ow; ++ow)
        for (o = 0; o < g->o; ++o) {
          double acc = 0, top = -1e300;
          int64_t cells = 0;
          for (i = 0; i < g->kh; ++i)
            for (j = 0; j < g->kw; ++j) {
              const int64_t ih = oh * g->sh - g->pad_top + i * g->dh,
                            iw = ow * g->sw - g->pad_left + j * g->dw;
              const float *cell;
              if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
              cell = x + ((n * g->h + ih) * g->w + iw) * g->c;
              ++cells;
              if (kind == 0) {
                for (ch = 0; ch < g->c; ++ch)
                  acc += (double)cell[ch] * f[((i * g->kw + j) * g->c + ch) * g->o + o];
              } else {
                acc += cell[o];
                top = cell[o] > top ? cell[o] : top;
              }
            }
          out[((n * g->oh + oh) * g->ow + ow) * g->o + o] = (float)(kind == 0   ? acc
                                                                    : kind == 1 ? top
                                                                                : acc / (double)cells);
        }
}

/* layer_norm over the two trailing axes (Keras LayerNormalization(axis=[-2, -1])). */
static void test_layer_norm_axes(void) {
  float xv[8] = {1, 2, 3, 4, 0, 0, 0, 8}, gv[4] = {1, 2, 1, 2}, bv[4] = {0, 0, 1, 1}, want[8];
  int64_t d222[3] = {2, 2, 2}, d22[2] = {2, 2}, d4[1] = {4}, last2[2] = {-1, -2}, first[1] = {0}, mixed[2] = {0, 2};
  kiln_tensor *x = f32(3, d222, xv), *g = f32(2, d22, gv), *b = f32(2, d22, bv), *o = NULL;
  int r, i;
  for (r = 0; r < 2; ++r) {
    double mean = 0, var = 0;
    for (i = 0; i < 4; ++i) mean += xv[r * 4 + i] / 4.0;
    for (i = 0; i < 4; ++i) var += (xv[r * 4 + i] - mean) * (xv[r * 4 + i] - mean) / 4.0;
    for (i = 0; i < 4; ++i) want[r * 4 + i] = (float)((xv[r * 4 + i] - mean) / sqrt(var + 1e-3) * gv[i] + bv[i]);
  }
  expect_f32(RUN(kiln_layer_norm(&o, x, g, b, last2, 2, 1e-3f)), 3, d222, want, 1e-5);
  EXPECT_ERROR(kiln_layer_norm(U, x, g, b, first, 1, 1e-3f), INVALID, "layer_norm: axes [0] for x float32[2, 2, 2]",
               "expected distinct trailing axes");
  EXPECT_ERROR(kiln_layer_norm(U, x, g, b, mixed, 2, 1e-3f), INVALID, "layer_norm: axes [0, 2]", "trailing");
  EXPECT_ERROR(kiln_layer_norm(U, x, f32(1, d4, gv), b, last2, 2, 1e-3f), INVALID,
               "layer_norm: argument 'gamma' is float32[4]", "expected float32[2, 2]");
  EXPECT_ERROR(kiln_layer_norm(U, x, g, b, NULL, 2, 1e-3f), INVALID, "kiln_layer_norm", "'axes' is NULL");
  release_kept();
}

/* A struct as a caller built against a newer kiln would pass: known fields, then one kiln does not know. */
struct newer_conv2d_options {
  kiln_conv2d_options known;
  int64_t added_later;
};

static void test_options_structs(void) {
  kiln_conv2d_options c;
  kiln_pool2d_options p;
  struct newer_conv2d_options big;
  size_t v1 = offsetof(kiln_conv2d_options, padding) + sizeof(kiln_padding);

  memset(&c, 0x5a, sizeof c);
  EXPECT_OK(kiln_conv2d_options_init(&c, sizeof c));
  CHECK(c.struct_size == sizeof c && c.strides[0] == 1 && c.strides[1] == 1 && c.dilations[0] == 1 &&
        c.dilations[1] == 1 && c.padding == KILN_PADDING_VALID);
  memset(&p, 0x5a, sizeof p);
  EXPECT_OK(kiln_pool2d_options_init(&p, sizeof p));
  CHECK(p.struct_size == sizeof p && p.ksize[0] == 2 && p.ksize[1] == 2 && p.strides[0] == 2 && p.strides[1] == 2 &&
        p.padding == KILN_PADDING_VALID);
  /* The first version's exact size (no tail padding) is accepted; smaller is not. */
  EXPECT_OK(kiln_conv2d_options_init(&c, v1));
  CHECK(c.struct_size == v1);
  EXPECT_ERROR(kiln_conv2d_options_init(&c, v1 - 1), INVALID, "kiln_conv2d_options_init",
               "kiln_conv2d_options.struct_size is");
  EXPECT_ERROR(kiln_conv2d_options_init(NULL, sizeof c), INVALID, "kiln_conv2d_options_init",
               "'options' is NULL");
  EXPECT_ERROR(kiln_pool2d_options_init(&p, 8), INVALID, "kiln_pool2d_options_init", "expected at least");
  EXPECT_ERROR(kiln_pool2d_options_init(NULL, sizeof p), INVALID, "kiln_pool2d_options_init", "'options' is NULL");
  /* A newer caller's larger struct: init fills the known part and leaves the rest alone. */
  big.added_later = 77;
  EXPECT_OK(kiln_conv2d_options_init(&big.known, sizeof big));
  CHECK(big.known.struct_size == sizeof big && big.added_later == 77 && big.known.strides[1] == 1);
}

static void test_conv_pool(void) {
  int64_t xd[4] = {2, 5, 4, 3}, fd[4] = {3, 2, 3, 2}, od[4], d3[3] = {5, 4, 3}, bad_f[4] = {3, 2, 2, 2};
  int64_t big_f[4] = {6, 2, 3, 2};
  int64_t s11[2] = {1, 1}, s21[2] = {2, 1}, s12[2] = {1, 2}, s22[2] = {2, 2}, d21[2] = {2, 1},
          s01[2] = {0, 1};
  int64_t k22[2] = {2, 2}, k32[2] = {3, 2};
  struct {
    const int64_t *strides, *dilations;
    kiln_padding padding;
  } convs[3] = {{s11, s11, KILN_PADDING_VALID}, {s21, s11, KILN_PADDING_SAME}, {s12, d21, KILN_PADDING_SAME}};
  struct {
    const int64_t *ksize, *strides;
    kiln_padding padding;
  } pools[2] = {{k22, s22, KILN_PADDING_VALID}, {k32, s21, KILN_PADDING_SAME}};
  float xv[120], fv[36], want[120], zeros[72] = {0};
  kiln_tensor *x, *f, *o = NULL;
  kiln_conv2d_options co, small, bad;
  kiln_pool2d_options po;
  struct newer_conv2d_options newer;
  int i, kind;

  for (i = 0; i < 120; ++i) xv[i] = (float)((i * 7) % 13) - 6;
  for (i = 0; i < 36; ++i) fv[i] = 0.25f * (float)((i * 5) % 7 - 3);
  x = f32(4, xd, xv);
  f = f32(4, fd, fv);
  for (i = 0; i < 3; ++i) {
    struct window g = make_window(xd, 3, 2, 2, convs[i].strides, convs[i].dilations, convs[i].padding);
    od[0] = g.n, od[1] = g.oh, od[2] = g.ow, od[3] = g.o;
    ref_window(&g, xv, fv, 0, want);
    co = conv_options(convs[i].strides, convs[i].dilations, convs[i].padding);
    expect_f32(RUN(kiln_conv2d(&o, x, f, &co)), 4, od, want, 1e-5);
    if (i == 2) {
      /* The same call from a newer caller: the field this kiln does not know is ignored. */
      newer.known = co;
      newer.known.struct_size = sizeof newer;
      newer.added_later = -12345;
      expect_f32(RUN(kiln_conv2d(&o, x, f, &newer.known)), 4, od, want, 1e-5);
    }
    if (i == 0) expect_f32(RUN(kiln_conv2d(&o, x, f, NULL)), 4, od, want, 1e-5); /* NULL: the defaults */
    if (i == 1) {
      /* A first-version caller: struct_size without tail padding is enough. */
      small = co;
      small.struct_size = offsetof(kiln_conv2d_options, padding) + sizeof(kiln_padding);
      expect_f32(RUN(kiln_conv2d(&o, x, f, &small)), 4, od, want, 1e-5);
    }
  }
  for (i = 0; i < 2; ++i)
    for (kind = 1; kind <= 2; ++kind) {
      struct window g =
          make_window(xd, pools[i].ksize[0], pools[i].ksize[1], 3, pools[i].strides, s11, pools[i].padding);
      od[0] = g.n, od[1] = g.oh, od[2] = g.ow, od[3] = g.o;
      ref_window(&g, xv, NULL, kind, want);
      po = pool_options(pools[i].ksize, pools[i].strides, pools[i].padding);
      expect_f32(RUN((kind == 1 ? kiln_max_pool2d : kiln_avg_pool2d)(&o, x, &po)), 4, od, want, 1e-6);
      if (i == 0) /* NULL: Keras' defaults, a 2x2 window with strides 2, VALID */
        expect_f32(RUN((kind == 1 ? kiln_max_pool2d : kiln_avg_pool2d)(&o, x, NULL)), 4, od, want, 1e-6);
    }

  co = conv_options(s11, s11, KILN_PADDING_VALID);
  EXPECT_ERROR(kiln_conv2d(NULL, x, f, &co), INVALID, "kiln_conv2d", "'out' is NULL");
  EXPECT_ERROR(kiln_conv2d(U, NULL, f, &co), INVALID, "kiln_conv2d", "'x' is NULL");
  EXPECT_ERROR(kiln_conv2d(U, x, NULL, &co), INVALID, "kiln_conv2d", "'filter' is NULL");
  small = co;
  small.struct_size = sizeof(size_t);
  EXPECT_ERROR(kiln_conv2d(U, x, f, &small), INVALID, "kiln_conv2d: kiln_conv2d_options.struct_size is 8",
               "expected at least");
  small.struct_size = 0;
  EXPECT_ERROR(kiln_conv2d(U, x, f, &small), INVALID, "kiln_conv2d", "struct_size is 0");
  bad = co;
  bad.padding = (kiln_padding)7;
  EXPECT_ERROR(kiln_conv2d(U, x, f, &bad), INVALID, "kiln_conv2d: padding 7 is not a kiln_padding", NULL);
  EXPECT_ERROR(kiln_conv2d(U, x, f32(4, bad_f, zeros), &co), INVALID,
               "conv2d: filter of shape [3, 2, 2, 2] takes 2 input channels",
               "expected filter dim 2 == x dim 3");
  bad = conv_options(s01, s11, KILN_PADDING_VALID);
  EXPECT_ERROR(kiln_conv2d(U, x, f, &bad), INVALID, "conv2d: strides is [0, 1]", "expected 2 positive values");
  bad = conv_options(s11, s01, KILN_PADDING_VALID);
  EXPECT_ERROR(kiln_conv2d(U, x, f, &bad), INVALID, "conv2d: dilations is [0, 1]", "expected 2 positive values");
  EXPECT_ERROR(kiln_conv2d(U, f32(3, d3, xv), f, &co), INVALID, "conv2d: x has shape [5, 4, 3]", "expected rank 4");
  EXPECT_ERROR(kiln_conv2d(U, x, f32(4, big_f, zeros), &co), INVALID, "conv2d", "gives an empty 0x3 output");
  EXPECT_ERROR(kiln_conv2d(U, make(I32, 4, xd, xv), f, &co), INVALID, "conv2d: argument 'x' is int32",
               "expected float32");
  for (kind = 1; kind <= 2; ++kind) {
    kiln_status *(*pool)(kiln_tensor **, const kiln_tensor *, const kiln_pool2d_options *) =
        kind == 1 ? kiln_max_pool2d : kiln_avg_pool2d;
    const char *name = kind == 1 ? "kiln_max_pool2d" : "kiln_avg_pool2d";
    kiln_pool2d_options pbad;
    po = pool_options(k22, s22, KILN_PADDING_VALID);
    EXPECT_ERROR(pool(NULL, x, &po), INVALID, name, "'out' is NULL");
    EXPECT_ERROR(pool(U, NULL, &po), INVALID, name, "'x' is NULL");
    pbad = po;
    pbad.struct_size = 4;
    EXPECT_ERROR(pool(U, x, &pbad), INVALID, name, "kiln_pool2d_options.struct_size is 4");
    pbad = pool_options(k22, s22, (kiln_padding)-1);
    EXPECT_ERROR(pool(U, x, &pbad), INVALID, name, "padding -1 is not a kiln_padding");
    pbad = pool_options(s01, s22, KILN_PADDING_VALID);
    EXPECT_ERROR(pool(U, x, &pbad), INVALID, name + 5, "ksize is [0, 1]");
    EXPECT_ERROR(pool(U, f32(3, d3, xv), &po), INVALID, name + 5, "expected rank 4");
    EXPECT_ERROR(pool(U, make(I32, 4, xd, xv), &po), INVALID, name + 5, "argument 'x' is int32");
  }
  release_kept();
}

/* The 3-D window ops: options defaults, hand-worked values, conv3d_transpose as conv3d's adjoint
 * (<conv3d(u, f), v> == <u, conv3d_transpose(v, f)>), bad input. */
static void test_conv3d_pool3d(void) {
  const int64_t xd[5] = {1, 2, 3, 3, 1}, fd[5] = {2, 2, 2, 1, 1}, od[5] = {1, 1, 2, 2, 1},
                pd[5] = {1, 1, 1, 1, 1}, ud[5] = {2, 4, 3, 5, 2}, f2[5] = {2, 3, 2, 2, 3},
                vd[5] = {2, 2, 3, 3, 3}, ud4[4] = {2, 4, 3, 5};
  float xv[18], ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, uv[240], fv[72], vv[108];
  const float want_conv[4] = {52, 60, 76, 84}, max_want[1] = {13}, avg_want[1] = {6.5f};
  kiln_conv3d_options c, same;
  kiln_pool3d_options p;
  kiln_tensor *o = NULL, *x, *u, *f, *v, *lhs, *rhs;
  int i;
  /* x[0, d, h, w, 0] = 9 d + 3 h + w: a 2x2x2 window of ones sums 8 times its centre */
  for (i = 0; i < 18; ++i) xv[i] = (float)i;
  for (i = 0; i < 240; ++i) uv[i] = 0.01f * (float)((i * 7) % 23 - 11);
  for (i = 0; i < 72; ++i) fv[i] = 0.1f * (float)((i * 5) % 13 - 6);
  for (i = 0; i < 108; ++i) vv[i] = 0.1f * (float)((i * 3) % 17 - 8);
  x = f32(5, xd, xv);
  EXPECT_OK(kiln_conv3d_options_init(&c, sizeof c));
  CHECK(c.struct_size == sizeof c && c.strides[2] == 1 && c.dilations[0] == 1 &&
        c.padding == KILN_PADDING_VALID);
  EXPECT_OK(kiln_pool3d_options_init(&p, sizeof p));
  CHECK(p.ksize[0] == 2 && p.ksize[2] == 2 && p.strides[1] == 2 && p.padding == KILN_PADDING_VALID);
  expect_f32(RUN(kiln_conv3d(&o, x, f32(5, fd, ones), &c)), 5, od, want_conv, 1e-5);
  expect_f32(RUN(kiln_conv3d(&o, x, f32(5, fd, ones), NULL)), 5, od, want_conv, 1e-5);
  /* the default pooling takes the 2x2x2 window at the origin: cells 0, 1, 3, 4, 9, 10, 12, 13 */
  expect_f32(RUN(kiln_max_pool3d(&o, x, NULL)), 5, pd, max_want, 0);
  expect_f32(RUN(kiln_avg_pool3d(&o, x, &p)), 5, pd, avg_want, 1e-6);
  /* the adjoint: u [2, 4, 3, 5, 2] -> v [2, 2, 3, 3, 3] with strides (2, 1, 2), SAME */
  EXPECT_OK(kiln_conv3d_options_init(&same, sizeof same));
  same.strides[0] = 2;
  same.strides[2] = 2;
  same.padding = KILN_PADDING_SAME;
  u = f32(5, ud, uv);
  f = f32(5, f2, fv);
  v = f32(5, vd, vv);
  lhs = keep(RUN(kiln_conv3d(&o, u, f, &same)));
  rhs = keep(RUN(kiln_conv3d_transpose(&o, v, f, ud, 5, &same)));
  if (lhs && rhs) {
    const kiln_tensor *dot1 = keep(RUN(kiln_sum(&o, keep(RUN(kiln_mul(&o, lhs, v))), NULL, 0, false)));
    const kiln_tensor *dot2 = keep(RUN(kiln_sum(&o, keep(RUN(kiln_mul(&o, u, rhs))), NULL, 0, false)));
    CHECK(kiln_tensor_get_rank(lhs) == 5 && kiln_tensor_get_dims(lhs)[0] == 2 &&
          kiln_tensor_get_dims(lhs)[1] == 2 && kiln_tensor_get_dims(lhs)[4] == 3);
    CHECK(dot1 && dot2 && fabs(fdata(dot1)[0] - fdata(dot2)[0]) < 1e-4 * (1 + fabs(fdata(dot1)[0])));
  }
  EXPECT_ERROR(kiln_conv3d_transpose(&o, v, f, ud4, 4, &same), INVALID, "kiln_conv3d_transpose",
               "expected 5 [N, OD, OH, OW, O]");
  EXPECT_ERROR(kiln_conv3d(&o, f32(4, ud4, uv), f, NULL), INVALID, "conv3d", "expected rank 5");
  EXPECT_ERROR(kiln_conv3d(&o, u, f32(5, fd, ones), NULL), INVALID, "conv3d", "is for 1 channels");
  EXPECT_ERROR(kiln_conv3d_options_init(&c, 8), INVALID, "kiln_conv3d_options_init", "expected at least");
  EXPECT_ERROR(kiln_pool3d_options_init(NULL, sizeof p), INVALID, "kiln_pool3d_options_init",
               "'options' is NULL");
  p.ksize[1] = 0;
  EXPECT_ERROR(kiln_max_pool3d(&o, x, &p), INVALID, "max_pool3d", "expected 3 positive values");
  EXPECT_ERROR(kiln_avg_pool3d(NULL, x, NULL), INVALID, "kiln_avg_pool3d", "'out' is NULL");
  { /* bfloat16 operands compute in float32 and give bfloat16: the maximum 13 is exact */
    kiln_tensor *xb = keep(RUN(kiln_cast(&o, x, KILN_DTYPE_BFLOAT16)));
    kiln_tensor *m = xb ? keep(RUN(kiln_max_pool3d(&o, xb, NULL))) : NULL;
    kiln_tensor *m32 = m ? RUN(kiln_cast(&o, m, KILN_DTYPE_FLOAT32)) : NULL;
    CHECK(m && kiln_tensor_get_dtype(m) == KILN_DTYPE_BFLOAT16);
    if (m32) expect_f32(m32, 5, pd, max_want, 0);
  }
  release_kept();
}

/* kiln_image_resize: a 2x2 image to 4x4, bilinear and nearest, by hand; one image [H, W, C]; bad input. */
static void test_image_resize(void) {
  const int64_t xd[4] = {1, 2, 2, 1}, yd[4] = {1, 4, 4, 1}, x3[3] = {2, 2, 1}, y3[3] = {1, 3, 1};
  const float xv[4] = {0, 4, 8, 12};
  /* rows: 0, 0.25, 0.75, 1 of the way down; columns likewise (half-pixel centres, clamped) */
  const float bil[16] = {0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12};
  const float near[16] = {0, 0, 4, 4, 0, 0, 4, 4, 8, 8, 12, 12, 8, 8, 12, 12}, col[3] = {4, 6, 8};
  kiln_tensor *o = NULL, *x = f32(4, xd, xv);
  expect_f32(RUN(kiln_image_resize(&o, x, 4, 4, KILN_RESIZE_BILINEAR)), 4, yd, bil, 1e-6);
  expect_f32(RUN(kiln_image_resize(&o, x, 4, 4, KILN_RESIZE_NEAREST)), 4, yd, near, 0);
  expect_f32(RUN(kiln_image_resize(&o, f32(3, x3, xv), 1, 3, KILN_RESIZE_BILINEAR)), 3, y3, col, 1e-6);
  EXPECT_ERROR(kiln_image_resize(&o, x, 0, 4, KILN_RESIZE_BILINEAR), INVALID, "resize", "must be positive");
  EXPECT_ERROR(kiln_image_resize(&o, x, 4, 4, (kiln_resize_method)7), INVALID, "kiln_image_resize",
               "not a kiln_resize_method");
  EXPECT_ERROR(kiln_image_resize(&o, NULL, 4, 4, KILN_RESIZE_NEAREST), INVALID, "kiln_image_resize",
               "images");
  release_kept();
}

/* kiln_image_rgb_to_hsv, kiln_image_hsv_to_rgb, kiln_image_rgb_to_grayscale: known colours by hand (TF's
 * formulas), the round trip, bad input. */
static void test_image_colour(void) {
  const int64_t d[2] = {3, 3}, g[2] = {3, 1};
  const float rgb[9] = {1, 0, 0, 0, 0.5f, 1, 0.5f, 0.5f, 0.5f};
  const float hsv[9] = {0, 1, 1, 7.0f / 12, 1, 1, 0, 0, 0.5f};
  const float gray[3] = {0.2989f, 0.5870f * 0.5f + 0.1140f, 0.5f * (0.2989f + 0.5870f + 0.1140f)};
  kiln_tensor *o = NULL, *x = f32(2, d, rgb);
  expect_f32(RUN(kiln_image_rgb_to_hsv(&o, x)), 2, d, hsv, 1e-6);
  expect_f32(RUN(kiln_image_hsv_to_rgb(&o, f32(2, d, hsv))), 2, d, rgb, 1e-6);
  expect_f32(RUN(kiln_image_rgb_to_grayscale(&o, x)), 2, g, gray, 1e-6);
  EXPECT_ERROR(kiln_image_rgb_to_hsv(&o, f32(2, g, gray)), INVALID, "rgb_to_hsv", "3 channels");
  EXPECT_ERROR(kiln_image_hsv_to_rgb(&o, NULL), INVALID, "kiln_image_hsv_to_rgb", "images");
  EXPECT_ERROR(kiln_image_rgb_to_grayscale(NULL, x), INVALID, "kiln_image_rgb_to_grayscale", "out");
  release_kept();
}

/* kiln_image_affine_transform: a row [1 2 3 4] shifted right by 2 under each fill mode (TF's
 * definitions, worked by hand), half a pixel bilinear, one transform for a batch, bad input. */
static void test_image_affine_transform(void) {
  const int64_t xd[4] = {1, 1, 4, 1}, td[1] = {8}, bd[4] = {2, 1, 4, 1}, t2[2] = {2, 8};
  const float xv[4] = {1, 2, 3, 4}, shift2[8] = {1, 0, -2, 0, 1, 0, 0, 0}, half[8] = {1, 0, -0.5f, 0, 1, 0, 0, 0};
  const float reflect[4] = {2, 1, 1, 2}, wrap[4] = {3, 4, 1, 2}, constant[4] = {9, 9, 1, 2}, nearest[4] = {1, 1, 1, 2};
  const float mixed[4] = {5, 1.5f, 2.5f, 3.5f}, both[8] = {9, 9, 1, 2, 9, 9, 1, 2}, xx[8] = {1, 2, 3, 4, 1, 2, 3, 4};
  const int32_t iv[4] = {10, 20, 30, 40}, ishift[4] = {0, 0, 10, 20};
  const float two_rows[16] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
  kiln_tensor *o = NULL, *x = f32(4, xd, xv), *t = f32(1, td, shift2);
  expect_f32(RUN(kiln_image_affine_transform(&o, x, t, KILN_RESIZE_NEAREST, KILN_FILL_REFLECT, 9)), 4, xd, reflect, 0);
  expect_f32(RUN(kiln_image_affine_transform(&o, x, t, KILN_RESIZE_NEAREST, KILN_FILL_WRAP, 9)), 4, xd, wrap, 0);
  expect_f32(RUN(kiln_image_affine_transform(&o, x, t, KILN_RESIZE_BILINEAR, KILN_FILL_CONSTANT, 9)), 4, xd, constant,
             0);
  expect_f32(RUN(kiln_image_affine_transform(&o, x, t, KILN_RESIZE_NEAREST, KILN_FILL_NEAREST, 9)), 4, xd, nearest, 0);
  expect_f32(RUN(kiln_image_affine_transform(&o, x, f32(1, td, half), KILN_RESIZE_BILINEAR, KILN_FILL_CONSTANT, 9)), 4,
             xd, mixed, 1e-6);
  expect_f32(RUN(kiln_image_affine_transform(&o, f32(4, bd, xx), t, KILN_RESIZE_NEAREST, KILN_FILL_CONSTANT, 9)), 4, bd,
             both, 0);
  expect_raw(RUN(kiln_image_affine_transform(&o, make(I32, 4, xd, iv), t, KILN_RESIZE_NEAREST, KILN_FILL_CONSTANT, 0)),
             I32, 4, xd, ishift);
  EXPECT_ERROR(
      kiln_image_affine_transform(&o, x, f32(2, t2, two_rows), KILN_RESIZE_NEAREST, KILN_FILL_WRAP, 0),
      INVALID, "projective_transform", "transforms");
  EXPECT_ERROR(kiln_image_affine_transform(&o, x, t, KILN_RESIZE_NEAREST, (kiln_fill_mode)9, 0), INVALID,
               "kiln_image_affine_transform", "not a kiln_fill_mode");
  EXPECT_ERROR(kiln_image_affine_transform(&o, x, t, (kiln_resize_method)5, KILN_FILL_WRAP, 0), INVALID,
               "kiln_image_affine_transform", "not a kiln_resize_method");
  EXPECT_ERROR(kiln_image_affine_transform(&o, x, NULL, KILN_RESIZE_NEAREST, KILN_FILL_WRAP, 0), INVALID,
               "kiln_image_affine_transform", "transform");
  release_kept();
}

/* kiln_random_gamma, kiln_random_beta, kiln_random_shuffle: positive Gamma values, Beta values in [0, 1],
 * a shuffle that keeps the values; bad parameters and axes are statuses. */
static void test_random_gamma_beta_shuffle(void) {
  const int64_t d[1] = {200}, five[1] = {5};
  const float v[5] = {1, 2, 3, 4, 5};
  float g[200], s[5] = {0, 0, 0, 0, 0};
  kiln_tensor *o = NULL;
  int ok = 1, i, j;
  if (EXPECT_OK(kiln_random_gamma(&o, d, 1, 0.7, 2.0, 3)) && EXPECT_OK(kiln_tensor_copy_to(o, g, sizeof g)))
    for (i = 0; i < 200; ++i) ok = ok && g[i] >= 0;
  kiln_tensor_free(o);
  if (EXPECT_OK(kiln_random_beta(&o, d, 1, 0.5, 0.5, -1)) && EXPECT_OK(kiln_tensor_copy_to(o, g, sizeof g)))
    for (i = 0; i < 200; ++i) ok = ok && g[i] >= 0 && g[i] <= 1;
  kiln_tensor_free(o);
  if (EXPECT_OK(kiln_random_shuffle(&o, f32(1, five, v), 0, 1)) &&
      EXPECT_OK(kiln_tensor_copy_to(o, s, sizeof s)))
    for (i = 0; i < 5; ++i)
      for (j = i + 1; j < 5; ++j)
        if (s[j] < s[i]) {
          const float t = s[i];
          s[i] = s[j];
          s[j] = t;
        }
  kiln_tensor_free(o);
  CHECK(ok);
  CHECK(s[0] == 1 && s[1] == 2 && s[2] == 3 && s[3] == 4 && s[4] == 5);
  EXPECT_ERROR(kiln_random_gamma(&o, d, 1, 0.0, 1.0, -1), INVALID, "random_gamma", "alpha");
  EXPECT_ERROR(kiln_random_beta(&o, d, 1, 1.0, -2.0, -1), INVALID, "random_beta", "beta");
  EXPECT_ERROR(kiln_random_shuffle(&o, f32(1, five, v), 2, -1), INVALID, "random_shuffle", "axis");
  EXPECT_ERROR(kiln_random_shuffle(&o, NULL, 0, -1), INVALID, "kiln_random_shuffle", "value");
  release_kept();
}

/* kiln_image_perspective_transform: every corner of a 2 x 4 image two to the right is a shift (fill_value
 * brought in), for one image or per image; points on a line and bad shapes are statuses. */
static void test_image_perspective_transform(void) {
  const int64_t xd[4] = {1, 2, 4, 1}, pd[2] = {4, 2}, bd[3] = {2, 4, 2}, bad[2] = {4, 3};
  const float xv[8] = {1, 2, 3, 4, 5, 6, 7, 8}, shifted[8] = {9, 9, 1, 2, 9, 9, 5, 6};
  const float corners[8] = {0, 0, 3, 0, 0, 1, 3, 1}, right[8] = {2, 0, 5, 0, 2, 1, 5, 1};
  const float line[8] = {0, 0, 1, 1, 2, 2, 3, 3}, twelve[12] = {0};
  const float two_starts[16] = {0, 0, 3, 0, 0, 1, 3, 1, 0, 0, 3, 0, 0, 1, 3, 1};
  kiln_tensor *o = NULL, *x = f32(4, xd, xv), *s = f32(2, pd, corners), *e = f32(2, pd, right);
  expect_f32(RUN(kiln_image_perspective_transform(&o, x, s, e, KILN_RESIZE_BILINEAR, 9)), 4, xd, shifted,
             1e-5f);
  expect_f32(RUN(kiln_image_perspective_transform(&o, x, s, s, KILN_RESIZE_NEAREST, 9)), 4, xd, xv, 0);
  EXPECT_ERROR(kiln_image_perspective_transform(&o, x, s, f32(2, pd, line), KILN_RESIZE_BILINEAR, 0), INVALID,
               "perspective_transform", "singular");
  EXPECT_ERROR(kiln_image_perspective_transform(&o, x, f32(2, bad, twelve), e, KILN_RESIZE_BILINEAR, 0),
               INVALID, "start_points", "[4, 2]");
  EXPECT_ERROR(kiln_image_perspective_transform(&o, x, f32(3, bd, two_starts), e, KILN_RESIZE_BILINEAR, 0),
               INVALID, "end_points", "same shape");
  EXPECT_ERROR(kiln_image_perspective_transform(&o, x, s, e, (kiln_resize_method)5, 0), INVALID,
               "kiln_image_perspective_transform", "not a kiln_resize_method");
  EXPECT_ERROR(kiln_image_perspective_transform(&o, x, s, NULL, KILN_RESIZE_BILINEAR, 0), INVALID,
               "kiln_image_perspective_transform", "end_points");
  release_kept();
}

/* depthwise_conv2d, conv2d_transpose and conv1d: hand-worked values, the shared options struct,
 * bad input. */
static void test_conv_variants(void) {
  float xv[8] = {1, 2, 3, 4, 5, 6, 7, 8}, fv[4] = {1, 2, 3, 4}, two = 2, taps[2] = {1, -1};
  float dw[16] = {1, 2, 6, 8, 3, 6, 12, 16, 5, 10, 18, 24, 7, 14, 24, 32}, tr[4] = {2, 4, 6, 8};
  float diffs[3] = {-1, -1, -1};
  int64_t dx[4] = {1, 2, 2, 2}, df[4] = {1, 1, 2, 2}, dy[4] = {1, 2, 2, 4}, d1111[4] = {1, 1, 1, 1};
  int64_t dk[4] = {2, 2, 1, 1}, out_shape[4] = {1, 2, 2, 1}, bad_out[4] = {1, 4, 4, 1}, d122[4] = {1, 2, 2, 1};
  int64_t x1[3] = {1, 4, 1}, f1[3] = {2, 1, 1}, y1[3] = {1, 3, 1}, y1s[3] = {1, 2, 1}, s22[2] = {2, 2};
  int64_t s11[2] = {1, 1}, s21[2] = {2, 1}, s12[2] = {1, 2}, f3[4] = {1, 1, 3, 1};
  kiln_tensor *x = f32(4, dx, xv), *f = f32(4, df, fv), *o = NULL, *xt = f32(4, d1111, &two), *ft = f32(4, dk, fv);
  kiln_tensor *x1d = f32(3, x1, xv), *f1d = f32(3, f1, taps);
  kiln_conv2d_options co = conv_options(s11, s11, KILN_PADDING_VALID), c2 = conv_options(s22, s11, KILN_PADDING_VALID);
  kiln_conv2d_options c1 = conv_options(s21, s11, KILN_PADDING_VALID), bad = conv_options(s12, s11, KILN_PADDING_VALID);

  expect_f32(RUN(kiln_depthwise_conv2d(&o, x, f, &co)), 4, dy, dw, 0);
  expect_f32(RUN(kiln_depthwise_conv2d(&o, x, f, NULL)), 4, dy, dw, 0);
  EXPECT_ERROR(kiln_depthwise_conv2d(NULL, x, f, &co), INVALID, "kiln_depthwise_conv2d", "'out' is NULL");
  EXPECT_ERROR(kiln_depthwise_conv2d(U, x, f32(4, f3, xv), &co), INVALID, "depthwise_conv2d: filter of shape [1, 1, 3, 1]",
               "expected filter dim 2 == x dim 3");

  expect_f32(RUN(kiln_conv2d_transpose(&o, xt, ft, out_shape, 4, &c2)), 4, d122, tr, 0);
  EXPECT_ERROR(kiln_conv2d_transpose(U, xt, ft, out_shape, 3, &c2), INVALID, "kiln_conv2d_transpose: output_rank is 3",
               "expected 4");
  EXPECT_ERROR(kiln_conv2d_transpose(U, xt, ft, NULL, 4, &c2), INVALID, "kiln_conv2d_transpose",
               "'output_shape' is NULL");
  EXPECT_ERROR(kiln_conv2d_transpose(U, xt, ft, bad_out, 4, &c2), INVALID, "conv2d_transpose: output_shape [1, 4, 4, 1]",
               "convolves to 2x2");

  expect_f32(RUN(kiln_conv1d(&o, x1d, f1d, NULL)), 3, y1, diffs, 0);
  expect_f32(RUN(kiln_conv1d(&o, x1d, f1d, &c1)), 3, y1s, diffs, 0); /* strides[0]: the width's */
  EXPECT_ERROR(kiln_conv1d(U, x1d, f1d, &bad), INVALID, "kiln_conv1d: strides[1] is 2", "expected 1");
  EXPECT_ERROR(kiln_conv1d(U, NULL, f1d, &co), INVALID, "kiln_conv1d", "'x' is NULL");
  EXPECT_ERROR(kiln_conv1d(U, x, f1d, &co), INVALID, "conv1d: x has shape [1, 2, 2, 2]", "expected rank 3");
  release_kept();
}

/* ------------------------------------------------------------- shape ops */

static void test_reshape_transpose(void) {
  float rv[6] = {1, 2, 3, 4, 5, 6}, tv[6] = {1, 4, 2, 5, 3, 6}, seq[12], want[12];
  int64_t d23[2] = {2, 3}, d32[2] = {3, 2}, d6[1] = {6}, d1[1] = {1}, d232[3] = {2, 3, 2},
          d223[3] = {2, 2, 3};
  int64_t to3x[2] = {3, -1}, to4x[2] = {4, -1}, twice[2] = {-1, -1}, to4[1] = {4};
  int64_t p10[2] = {1, 0}, pm10[2] = {-1, 0}, p00[2] = {0, 0}, p0[1] = {0}, p02[2] = {0, 2},
          p201[3] = {2, 0, 1};
  kiln_tensor *x = f32(2, d23, rv), *o = NULL;
  int a, b, c;

  expect_f32(RUN(kiln_reshape(&o, x, to3x, 2)), 2, d32, rv, 0);
  expect_f32(RUN(kiln_reshape(&o, x, d6, 1)), 1, d6, rv, 0);
  expect_f32(RUN(kiln_reshape(&o, f32(1, d1, rv), NULL, 0)), 0, NULL, rv, 0);
  EXPECT_ERROR(kiln_reshape(NULL, x, d6, 1), INVALID, "kiln_reshape", "'out' is NULL");
  EXPECT_ERROR(kiln_reshape(U, NULL, d6, 1), INVALID, "kiln_reshape", "'x' is NULL");
  EXPECT_ERROR(kiln_reshape(U, x, NULL, 2), INVALID, "kiln_reshape", "'dims' is NULL");
  EXPECT_ERROR(kiln_reshape(U, x, d6, (size_t)-1), INVALID, "kiln_reshape: rank 18446744073709551615",
               "larger than KILN_MAX_RANK (8)");
  EXPECT_ERROR(kiln_reshape(U, x, to4x, 2), INVALID, "reshape: cannot infer the -1 in [4, -1]",
               "float32[2, 3]");
  EXPECT_ERROR(kiln_reshape(U, x, twice, 2), INVALID, "reshape", "more than one -1");
  EXPECT_ERROR(kiln_reshape(U, x, to4, 1), INVALID,
               "reshape: cannot reshape float32[2, 3] (6 elements) to [4]", NULL);

  for (c = 0; c < 12; ++c) seq[c] = (float)c;
  expect_f32(RUN(kiln_transpose(&o, x, NULL, 0)), 2, d32, tv, 0);
  expect_f32(RUN(kiln_transpose(&o, x, p10, 2)), 2, d32, tv, 0);
  expect_f32(RUN(kiln_transpose(&o, x, pm10, 2)), 2, d32, tv, 0);
  for (a = 0; a < 2; ++a) /* out[a][b][c] = in[b][c][a] */
    for (b = 0; b < 2; ++b)
      for (c = 0; c < 3; ++c) want[(a * 2 + b) * 3 + c] = seq[(b * 3 + c) * 2 + a];
  expect_f32(RUN(kiln_transpose(&o, f32(3, d232, seq), p201, 3)), 3, d223, want, 0);
  EXPECT_ERROR(kiln_transpose(NULL, x, NULL, 0), INVALID, "kiln_transpose", "'out' is NULL");
  EXPECT_ERROR(kiln_transpose(U, NULL, NULL, 0), INVALID, "kiln_transpose", "'x' is NULL");
  EXPECT_ERROR(kiln_transpose(U, x, NULL, 2), INVALID, "kiln_transpose", "'perm' is NULL");
  EXPECT_ERROR(kiln_transpose(U, x, p00, 2), INVALID,
               "transpose: perm [0, 0] for float32[2, 3] repeats axis 0", NULL);
  EXPECT_ERROR(kiln_transpose(U, x, p0, 1), INVALID, "transpose: perm [0] has 1 entries", "expected 2");
  EXPECT_ERROR(kiln_transpose(U, x, p02, 2), INVALID, "transpose: axis 2 is out of range", NULL);
  release_kept();
}

typedef kiln_status *(*list_fn)(kiln_tensor **, const kiln_tensor *const *, size_t, int64_t);

/* Bad value lists that concat and stack both refuse; values holds two good tensors. */
static void check_list_errors(const char *fn, list_fn join, const kiln_tensor *const *values) {
  const kiln_tensor *holes[2];
  holes[0] = values[0], holes[1] = NULL;
  EXPECT_ERROR(join(NULL, values, 2, 0), INVALID, fn, "'out' is NULL");
  EXPECT_ERROR(join(U, NULL, 2, 0), INVALID, fn, "'values' is NULL");
  EXPECT_ERROR(join(U, holes, 2, 0), INVALID, fn, "values[1] is NULL");
  EXPECT_ERROR(join(U, values, 0, 0), INVALID, fn + 5, "empty list"); /* the op's name, without kiln_ */
}

static void test_concat_split_slice(void) {
  float c1v[2] = {1, 2}, c2v[4] = {3, 4, 5, 6}, cat1[6] = {1, 3, 4, 2, 5, 6},
        cat0[8] = {3, 4, 5, 6, 3, 4, 5, 6};
  float seq[12], left[6] = {0, 1, 4, 5, 8, 9}, right[6] = {2, 3, 6, 7, 10, 11}, col0[3] = {0, 4, 8};
  float rest[9] = {1, 2, 3, 5, 6, 7, 9, 10, 11}, win[6] = {5, 6, 7, 9, 10, 11}, col2[3] = {2, 6, 10}, one = 1;
  int64_t d21[2] = {2, 1}, d22[2] = {2, 2}, d23[2] = {2, 3}, d42[2] = {4, 2}, d34[2] = {3, 4},
          d32[2] = {3, 2};
  int64_t d14[2] = {1, 4}, d24[2] = {2, 4}, d31[2] = {3, 1}, d30[2] = {3, 0}, d33[2] = {3, 3};
  int64_t s1m[2] = {1, -1}, s103[3] = {1, 0, 3}, s11[2] = {1, 1}, sneg[2] = {-2, 5};
  int64_t b11[2] = {1, 1}, z2m[2] = {2, -1}, b02[2] = {0, 2}, z31[2] = {3, 1}, b20[2] = {2, 0},
          z21[2] = {2, 1};
  kiln_tensor *c1 = f32(2, d21, c1v), *c2 = f32(2, d22, c2v), *s, *o = NULL, *outs[3] = {NULL, NULL, NULL};
  const kiln_tensor *pair[2], *scalars[2], *mixed[2];
  int i;

  pair[0] = c1, pair[1] = c2;
  expect_f32(RUN(kiln_concat(&o, pair, 2, 1)), 2, d23, cat1, 0);
  expect_f32(RUN(kiln_concat(&o, pair, 2, -1)), 2, d23, cat1, 0);
  pair[0] = c2;
  expect_f32(RUN(kiln_concat(&o, pair, 2, 0)), 2, d42, cat0, 0);
  expect_f32(RUN(kiln_concat(&o, pair, 1, 0)), 2, d22, c2v, 0);
  pair[0] = c1;
  mixed[0] = c1, mixed[1] = make(I32, 2, d21, c1v);
  check_list_errors("kiln_concat", kiln_concat, pair);
  EXPECT_ERROR(kiln_concat(U, pair, 2, 0), INVALID,
               "concat: values[1] is float32[2, 2] but values[0] is float32[2, 1]", "except on axis 0");
  EXPECT_ERROR(kiln_concat(U, mixed, 2, 0), INVALID, "concat: values[1] is int32[2, 1]", "the same dtype");
  EXPECT_ERROR(kiln_concat(U, pair, 2, 2), INVALID, "concat: axis 2 is out of range", NULL);
  scalars[0] = scalars[1] = f32(0, NULL, &one);
  EXPECT_ERROR(kiln_concat(U, scalars, 2, 0), INVALID, "concat", "scalars");

  for (i = 0; i < 12; ++i) seq[i] = (float)i;
  s = f32(2, d34, seq);
  EXPECT_OK(kiln_split(outs, 2, s, NULL, 1));
  expect_f32(outs[0], 2, d32, left, 0);
  expect_f32(outs[1], 2, d32, right, 0);
  outs[0] = outs[1] = NULL;
  EXPECT_OK(kiln_split(outs, 2, s, s1m, 0));
  expect_f32(outs[0], 2, d14, seq, 0);
  expect_f32(outs[1], 2, d24, seq + 4, 0);
  outs[0] = outs[1] = NULL;
  EXPECT_OK(kiln_split(outs, 3, s, s103, -1));
  expect_f32(outs[0], 2, d31, col0, 0);
  expect_f32(outs[1], 2, d30, NULL, 0);
  expect_f32(outs[2], 2, d33, rest, 0);
  outs[0] = outs[1] = outs[2] = NULL;
  EXPECT_ERROR(kiln_split(NULL, 2, s, NULL, 1), INVALID, "kiln_split", "'outs' is NULL");
  EXPECT_ERROR(kiln_split(outs, 0, s, NULL, 1), INVALID, "kiln_split", "num_outputs is 0");
  EXPECT_ERROR(kiln_split(outs, 2, NULL, NULL, 1), INVALID, "kiln_split", "'x' is NULL");
  EXPECT_ERROR(kiln_split(outs, 3, s, NULL, 1), INVALID,
               "split: cannot split axis 1 of float32[3, 4] into 3 equal parts", NULL);
  EXPECT_ERROR(kiln_split(outs, 2, s, s11, 0), INVALID, "split: sizes [1, 1] do not add up to 3", NULL);
  EXPECT_ERROR(kiln_split(outs, 2, s, sneg, 0), INVALID, "split: sizes [-2, 5]", "negative size");
  EXPECT_ERROR(kiln_split(outs, 2, s, NULL, 2), INVALID, "split: axis 2 is out of range", NULL);
  EXPECT_ERROR(kiln_split(outs, 1, f32(0, NULL, &one), NULL, 0), INVALID, "split", "scalar");
  CHECK(outs[0] == NULL && outs[1] == NULL && outs[2] == NULL); /* failed splits write nothing */

  expect_f32(RUN(kiln_slice(&o, s, b11, z2m, 2)), 2, d23, win, 0);
  expect_f32(RUN(kiln_slice(&o, s, b02, z31, 2)), 2, d31, col2, 0);
  expect_f32(RUN(kiln_slice(&o, f32(0, NULL, &one), NULL, NULL, 0)), 0, NULL, &one, 0);
  EXPECT_ERROR(kiln_slice(NULL, s, b11, z2m, 2), INVALID, "kiln_slice", "'out' is NULL");
  EXPECT_ERROR(kiln_slice(U, NULL, b11, z2m, 2), INVALID, "kiln_slice", "'x' is NULL");
  EXPECT_ERROR(kiln_slice(U, s, NULL, z2m, 2), INVALID, "kiln_slice", "'begin' is NULL");
  EXPECT_ERROR(kiln_slice(U, s, b11, NULL, 2), INVALID, "kiln_slice", "'size' is NULL");
  EXPECT_ERROR(kiln_slice(U, s, b20, z21, 2), INVALID,
               "slice: window begin [2, 0] size [2, 1] does not fit in [3, 4]", "at dim 0");
  EXPECT_ERROR(kiln_slice(U, s, b11, z2m, 1), INVALID, "slice", "one entry per dim (2)");
  release_kept();
}

static void test_stack_and_dims(void) {
  float v1[2] = {1, 2}, v2[2] = {3, 4}, v3[3] = {0}, rows[4] = {1, 2, 3, 4}, cols[4] = {1, 3, 2, 4};
  float rv[6] = {1, 2, 3, 4, 5, 6}, qv[2] = {7, 8}, bv[6] = {1, 2, 3, 1, 2, 3}, cv[6] = {1, 1, 1, 2, 2, 2};
  float tiled[12] = {1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2};
  int64_t lv[2] = {5, 6}, ltiled[4] = {5, 6, 5, 6};
  int64_t d2[1] = {2}, d3[1] = {3}, d4[1] = {4}, d22[2] = {2, 2}, d23[2] = {2, 3}, d21[2] = {2, 1},
          d12[2] = {1, 2};
  int64_t d231[3] = {2, 3, 1}, d123[3] = {1, 2, 3}, d213[3] = {2, 1, 3}, d121[3] = {1, 2, 1}, d24[2] = {2, 4};
  int64_t d26[2] = {2, 6}, ax0[1] = {0}, axm1[1] = {-1}, ax1[1] = {1}, ax3[1] = {3};
  int64_t m23[2] = {2, 3}, m2[1] = {2}, m1n[2] = {1, -1};
  kiln_tensor *a = f32(1, d2, v1), *b = f32(1, d2, v2), *x = f32(2, d23, rv), *q = f32(3, d121, qv),
              *o = NULL;
  const kiln_tensor *pair[2], *uneven[2];

  pair[0] = a, pair[1] = b;
  uneven[0] = a, uneven[1] = f32(1, d3, v3);
  expect_f32(RUN(kiln_stack(&o, pair, 2, 0)), 2, d22, rows, 0);
  expect_f32(RUN(kiln_stack(&o, pair, 2, 1)), 2, d22, cols, 0);
  expect_f32(RUN(kiln_stack(&o, pair, 2, -1)), 2, d22, cols, 0);
  check_list_errors("kiln_stack", kiln_stack, pair);
  EXPECT_ERROR(kiln_stack(U, uneven, 2, 0), INVALID,
               "stack: values[1] is float32[3] but values[0] is float32[2]", "the same dtype and shape");
  EXPECT_ERROR(kiln_stack(U, pair, 2, 2), INVALID, "stack: axis 2 is out of range", "[-2, 1]");

  expect_f32(RUN(kiln_expand_dims(&o, x, -1)), 3, d231, rv, 0);
  expect_f32(RUN(kiln_expand_dims(&o, x, 0)), 3, d123, rv, 0);
  expect_f32(RUN(kiln_expand_dims(&o, x, 1)), 3, d213, rv, 0);
  EXPECT_ERROR(kiln_expand_dims(NULL, x, 0), INVALID, "kiln_expand_dims", "'out' is NULL");
  EXPECT_ERROR(kiln_expand_dims(U, NULL, 0), INVALID, "kiln_expand_dims", "'x' is NULL");
  EXPECT_ERROR(kiln_expand_dims(U, x, 3), INVALID, "expand_dims: axis 3 is out of range for float32[2, 3]",
               "[-3, 2]");
  EXPECT_ERROR(kiln_expand_dims(U, x, -4), INVALID, "expand_dims: axis -4 is out of range", NULL);

  expect_f32(RUN(kiln_squeeze(&o, q, NULL, 0)), 1, d2, qv, 0);
  expect_f32(RUN(kiln_squeeze(&o, q, ax0, 1)), 2, d21, qv, 0);
  expect_f32(RUN(kiln_squeeze(&o, q, axm1, 1)), 2, d12, qv, 0);
  EXPECT_ERROR(kiln_squeeze(NULL, q, NULL, 0), INVALID, "kiln_squeeze", "'out' is NULL");
  EXPECT_ERROR(kiln_squeeze(U, NULL, NULL, 0), INVALID, "kiln_squeeze", "'x' is NULL");
  EXPECT_ERROR(kiln_squeeze(U, q, NULL, 1), INVALID, "kiln_squeeze", "'axes' is NULL");
  EXPECT_ERROR(kiln_squeeze(U, q, ax1, 1), INVALID, "squeeze: cannot squeeze axis 1 of float32[1, 2, 1]",
               "its size is 2");
  EXPECT_ERROR(kiln_squeeze(U, q, ax3, 1), INVALID, "squeeze: axis 3 is out of range", NULL);

  expect_f32(RUN(kiln_broadcast_to(&o, f32(1, d3, rv), m23, 2)), 2, d23, bv, 0);
  expect_f32(RUN(kiln_broadcast_to(&o, f32(2, d21, v1), m23, 2)), 2, d23, cv, 0);
  expect_f32(RUN(kiln_broadcast_to(&o, x, m23, 2)), 2, d23, rv, 0);
  EXPECT_ERROR(kiln_broadcast_to(NULL, x, m23, 2), INVALID, "kiln_broadcast_to", "'out' is NULL");
  EXPECT_ERROR(kiln_broadcast_to(U, NULL, m23, 2), INVALID, "kiln_broadcast_to", "'x' is NULL");
  EXPECT_ERROR(kiln_broadcast_to(U, f32(1, d3, rv), d24, 2), INVALID,
               "broadcast_to: cannot broadcast float32[3] to [2, 4]", "dimension 1: 3 vs 4");
  EXPECT_ERROR(kiln_broadcast_to(U, x, m2, 1), INVALID, "broadcast_to: cannot broadcast float32[2, 3] to [2]",
               "fewer dims");
  EXPECT_ERROR(kiln_broadcast_to(U, x, NULL, 2), INVALID, "kiln_broadcast_to", "NULL");

  expect_f32(RUN(kiln_tile(&o, f32(2, d12, v1), m23, 2)), 2, d26, tiled, 0);
  expect_raw(RUN(kiln_tile(&o, make(I64, 1, d2, lv), m2, 1)), I64, 1, d4, ltiled);
  EXPECT_ERROR(kiln_tile(NULL, x, m23, 2), INVALID, "kiln_tile", "'out' is NULL");
  EXPECT_ERROR(kiln_tile(U, NULL, m23, 2), INVALID, "kiln_tile", "'x' is NULL");
  EXPECT_ERROR(kiln_tile(U, x, NULL, 2), INVALID, "kiln_tile", "'multiples' is NULL");
  EXPECT_ERROR(kiln_tile(U, x, m2, 1), INVALID, "tile: multiples [2] has 1 entries for float32[2, 3]",
               "one per dim (2)");
  EXPECT_ERROR(kiln_tile(U, x, m1n, 2), INVALID, "tile: multiples [1, -1]", "negative entry");
  release_kept();
}

/* ------------------------------------------------- gather, one_hot, dropout */

/* gather with batch_dims, gather_nd, scatter_nd, tensor_scatter_nd_add, boolean_mask, one_hot with
 * axis and dtype, pad: TF's results on hand-worked cases, and the bad-input statuses. */
static void test_indexing_nd(void) {
  float pv[6] = {1, 2, 3, 4, 5, 6}, bg[4] = {3, 1, 5, 5}, nd[2] = {6, 1}, nd_row[3] = {4, 5, 6}, nd_b[2] = {3, 4};
  float up[3] = {1, 2, 3}, scat[4] = {4, 0, 2, 0}, ones4[4] = {1, 1, 1, 1}, added[4] = {5, 1, 3, 1};
  float rows13[4] = {1, 2, 5, 6}, col2[3] = {2, 4, 6}, hot_axis0[6] = {0, 1, 1, 0, 0, 0};
  float pad_c[15] = {9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9};
  float pad_r[12] = {3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5};
  float pad_s[12] = {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6};
  int32_t ib[4] = {2, 0, 1, 1}, ind[4] = {1, 2, 0, 0}, i1[1] = {1}, i20[2] = {2, 0}, bad_nd[2] = {2, 0};
  int32_t sc[3] = {0, 2, 0}, i10[2] = {1, 0}, hot_i32[6] = {0, 7, 7, 0, 0, 0}, iv[3] = {1, 2, 3};
  int32_t ipad[5] = {0, 1, 2, 3, 0};
  /* scatter_nd of int32 at rows {0, 2, 0}: row 0 gets INT32_MAX + 3, which wraps to INT32_MIN + 2. */
  int32_t iv_big[3] = {INT32_MAX, 5, 3}, scat_i[4] = {INT32_MIN + 2, 0, 5, 0}, ones4_i[4] = {1, 1, 1, 1};
  int32_t added_i[4] = {INT32_MIN + 3, 1, 6, 1};
  int64_t iv64[3] = {((int64_t)1 << 53) + 1, 7, 2}, scat_i64[4] = {((int64_t)1 << 53) + 3, 0, 7, 0};
  uint8_t m101[3] = {1, 0, 1}, m01[2] = {0, 1};
  int64_t d23[2] = {2, 3}, d22[2] = {2, 2}, d2[1] = {2}, d11[2] = {1, 1}, d13[2] = {1, 3}, d21[2] = {2, 1};
  int64_t d31[2] = {3, 1}, d3[1] = {3}, d4[1] = {4}, d32[2] = {3, 2}, d1[1] = {1}, d35[2] = {3, 5};
  int64_t d26[2] = {2, 6}, d43[2] = {4, 3};
  int64_t p_c[4] = {1, 0, 0, 2}, p_r[4] = {0, 0, 2, 1}, p_s[4] = {1, 1, 0, 0}, p_bad[4] = {0, 0, 3, 0};
  int64_t p1[2] = {1, 1};
  kiln_tensor *p = f32(2, d23, pv), *o = NULL, *x32;

  /* gather, batch_dims 1: row b picks params[b, indices[b, j]]. */
  expect_f32(RUN(kiln_gather(&o, p, make(I32, 2, d22, ib), 1, 1)), 2, d22, bg, 0);
  expect_f32(RUN(kiln_gather(&o, p, make(I32, 2, d22, ib), 1, -1)), 2, d22, bg, 0); /* -1: rank(indices) - 1 */
  EXPECT_ERROR(kiln_gather(U, p, make(I32, 2, d31, sc), 1, 1), INVALID, "gather: params [2, 3]",
               "differ in batch dim 0");
  EXPECT_ERROR(kiln_gather(U, p, make(I32, 2, d22, ib), 0, 1), INVALID, "gather: axis 0 is before batch_dims 1",
               NULL);
  EXPECT_ERROR(kiln_gather(U, p, make(I32, 2, d22, ib), 1, 3), INVALID, "gather: batch_dims 3", NULL);

  /* gather_nd */
  expect_f32(RUN(kiln_gather_nd(&o, p, make(I32, 2, d22, ind), 0)), 1, d2, nd, 0);
  expect_f32(RUN(kiln_gather_nd(&o, p, make(I32, 2, d11, i1), 0)), 2, d13, nd_row, 0);
  expect_f32(RUN(kiln_gather_nd(&o, p, make(I32, 2, d21, i20), 1)), 1, d2, nd_b, 0);
  EXPECT_ERROR(kiln_gather_nd(NULL, p, make(I32, 2, d11, i1), 0), INVALID, "kiln_gather_nd", "'out' is NULL");
  EXPECT_ERROR(kiln_gather_nd(U, NULL, make(I32, 2, d11, i1), 0), INVALID, "kiln_gather_nd", "'params' is NULL");
  EXPECT_ERROR(kiln_gather_nd(U, p, make(I32, 2, d13, bad_nd), 0), INVALID, "gather_nd", "K = 3");
  EXPECT_ERROR(kiln_gather_nd(U, p, make(I32, 1, d2, bad_nd), 0), INVALID, "gather_nd",
               "out of range for dim 0 of params dims [2, 3]");
  EXPECT_ERROR(kiln_gather_nd(U, p, p, 0), INVALID, "gather_nd: argument 'indices' is float32[2, 3]", NULL);

  /* scatter_nd and tensor_scatter_nd_add: duplicates accumulate. */
  expect_f32(RUN(kiln_scatter_nd(&o, make(I32, 2, d31, sc), f32(1, d3, up), d4, 1)), 1, d4, scat, 0);
  EXPECT_ERROR(kiln_scatter_nd(U, make(I32, 2, d31, sc), f32(1, d2, up), d4, 1), INVALID,
               "scatter_nd: updates float32[2]", "expected updates of shape [3]");
  EXPECT_ERROR(kiln_scatter_nd(U, make(I32, 2, d31, sc), f32(1, d3, up), NULL, 1), INVALID, "kiln_scatter_nd",
               "dims pointer is NULL");
  EXPECT_ERROR(kiln_scatter_nd(U, make(I32, 2, d31, sc), f32(1, d3, up), d2, 1), INVALID, "scatter_nd",
               "out of range");
  expect_f32(RUN(kiln_tensor_scatter_nd_add(&o, f32(1, d4, ones4), make(I32, 2, d31, sc), f32(1, d3, up))), 1, d4,
             added, 0);
  EXPECT_ERROR(
      kiln_tensor_scatter_nd_add(U, make(I32, 1, d4, ones4_i), make(I32, 2, d31, sc), f32(1, d3, up)),
      INVALID, "tensor_scatter_nd_add: operands have different dtypes, int32[4]", "float32[3]");
  EXPECT_ERROR(
      kiln_tensor_scatter_nd_add(U, make(U8, 1, d3, m101), make(I32, 2, d31, sc), make(U8, 1, d3, m101)),
      INVALID, "tensor_scatter_nd_add: argument 'tensor' is uint8[3]", "int64");
  /* Integers sum in their own dtype (int64 exactly beyond 2^53) and wrap around on overflow, as TF's. */
  expect_raw(RUN(kiln_scatter_nd(&o, make(I32, 2, d31, sc), make(I32, 1, d3, iv_big), d4, 1)), I32, 1, d4,
             scat_i);
  expect_raw(RUN(kiln_scatter_nd(&o, make(I32, 2, d31, sc), make(I64, 1, d3, iv64), d4, 1)), I64, 1, d4,
             scat_i64);
  expect_raw(RUN(kiln_tensor_scatter_nd_add(&o, make(I32, 1, d4, ones4_i), make(I32, 2, d31, sc),
                                            make(I32, 1, d3, iv_big))),
             I32, 1, d4, added_i);
  EXPECT_ERROR(kiln_tensor_scatter_nd_add(U, f32(1, d4, ones4), NULL, f32(1, d3, up)), INVALID,
               "kiln_tensor_scatter_nd_add", "'indices' is NULL");

  /* boolean_mask */
  expect_f32(RUN(kiln_boolean_mask(&o, f32(2, d32, pv), make(B8, 1, d3, m101), 0)), 2, d22, rows13, 0);
  expect_f32(RUN(kiln_boolean_mask(&o, f32(2, d32, pv), make(B8, 1, d2, m01), 1)), 2, d31, col2, 0);
  EXPECT_ERROR(kiln_boolean_mask(U, f32(2, d32, pv), make(B8, 1, d2, m01), 0), INVALID,
               "boolean_mask: mask bool[2] does not match dims 0 to 0 of tensor float32[3, 2]", NULL);
  EXPECT_ERROR(kiln_boolean_mask(U, f32(2, d32, pv), make(I32, 1, d3, iv), 0), INVALID,
               "boolean_mask: argument 'mask' is int32[3]", "expected bool");
  EXPECT_ERROR(kiln_boolean_mask(U, NULL, make(B8, 1, d3, m101), 0), INVALID, "kiln_boolean_mask",
               "'tensor' is NULL");

  /* one_hot with axis and dtype */
  expect_f32(RUN(kiln_one_hot(&o, make(I32, 1, d2, i10), 3, 1, 0, 0, F32)), 2, d32, hot_axis0, 0);
  expect_raw(RUN(kiln_one_hot(&o, make(I32, 1, d2, i10), 3, 7, 0, 0, I32)), I32, 2, d32, hot_i32);
  EXPECT_ERROR(kiln_one_hot(U, make(I32, 1, d2, i10), 3, 1e10, 0, -1, I32), INVALID,
               "one_hot: on_value 1e+10 does not fit in int32", NULL);
  EXPECT_ERROR(kiln_one_hot(U, make(I32, 1, d2, i10), 3, 1, 0, 2, F32), INVALID, "one_hot: axis 2",
               "expected -1 or 0 to 1");
  EXPECT_ERROR(kiln_one_hot(U, make(I32, 1, d2, i10), 3, 1, 0, -1, (kiln_dtype)99), INVALID, "kiln_one_hot", NULL);

  /* pad: each mode, a non-float dtype, and the bad cases */
  expect_f32(RUN(kiln_pad(&o, p, p_c, 2, KILN_PAD_MODE_CONSTANT, 9)), 2, d35, pad_c, 0);
  expect_f32(RUN(kiln_pad(&o, p, p_r, 2, KILN_PAD_MODE_REFLECT, 0)), 2, d26, pad_r, 0);
  expect_f32(RUN(kiln_pad(&o, p, p_s, 2, KILN_PAD_MODE_SYMMETRIC, 0)), 2, d43, pad_s, 0);
  x32 = make(I32, 1, d3, iv);
  expect_raw(RUN(kiln_pad(&o, x32, p1, 1, KILN_PAD_MODE_CONSTANT, 0)), I32, 1, (int64_t[]){5}, ipad);
  EXPECT_ERROR(kiln_pad(NULL, p, p_c, 2, KILN_PAD_MODE_CONSTANT, 0), INVALID, "kiln_pad", "'out' is NULL");
  EXPECT_ERROR(kiln_pad(U, p, NULL, 2, KILN_PAD_MODE_CONSTANT, 0), INVALID, "kiln_pad", "'paddings' is NULL");
  EXPECT_ERROR(kiln_pad(U, p, p_c, 1, KILN_PAD_MODE_CONSTANT, 0), INVALID, "kiln_pad: num_dims is 1",
               "expected its rank, 2");
  EXPECT_ERROR(kiln_pad(U, p, p_bad, 2, KILN_PAD_MODE_REFLECT, 0), INVALID, "pad: paddings [3, 0] for dim 1",
               "<= 2 (dim - 1)");
  EXPECT_ERROR(kiln_pad(U, p, p_c, 2, (kiln_pad_mode)5, 0), INVALID, "kiln_pad: mode 5 is not a kiln_pad_mode",
               NULL);
  EXPECT_ERROR(kiln_pad(U, x32, p1, 1, KILN_PAD_MODE_CONSTANT, 0.5e10), INVALID, "pad: constant_values",
               "does not fit in int32");
  (void)d1;
  release_kept();
}

static void test_indexing(void) {
  float pv[6] = {1, 2, 3, 4, 5, 6}, rows[4] = {5, 6, 1, 2}, cols[12] = {2, 2, 1, 2, 4, 4, 3, 4, 6, 6, 5, 6};
  float hot[12] = {5, -1, -1, -1, -1, 5, -1, 5, -1, -1, -1, -1}, hot2[4] = {0, 1, 1, 0}, one = 1;
  int32_t i20[2] = {2, 0}, i3[1] = {3}, iv[3] = {10, 20, 30}, i220[3] = {2, 2, 0}, ipicked[3] = {30, 30, 10};
  int32_t i10[2] = {1, 0};
  int64_t l1101[4] = {1, 1, 0, 1}, lhot[4] = {0, 2, 1, -1}, lneg[1] = {-1};
  int64_t d32[2] = {3, 2}, d2[1] = {2}, d22[2] = {2, 2}, d322[3] = {3, 2, 2}, d1[1] = {1}, d3[1] = {3},
          d4[1] = {4};
  int64_t d43[2] = {4, 3}, d20[2] = {2, 0}, big[1] = {1000};
  kiln_tensor *p = f32(2, d32, pv), *idx = make(I32, 1, d2, i20), *o = NULL, *x, *kept1, *kept2, *kept3;
  int64_t i, zeros = 0, twos = 0;

  expect_f32(RUN(kiln_gather(&o, p, idx, 0, 0)), 2, d22, rows, 0);
  expect_f32(RUN(kiln_gather(&o, p, make(I64, 2, d22, l1101), 1, 0)), 3, d322, cols, 0);
  expect_f32(RUN(kiln_gather(&o, p, make(I64, 2, d22, l1101), -1, 0)), 3, d322, cols, 0);
  expect_raw(RUN(kiln_gather(&o, make(I32, 1, d3, iv), make(I32, 1, d3, i220), 0, 0)), I32, 1, d3, ipicked);
  EXPECT_ERROR(kiln_gather(NULL, p, idx, 0, 0), INVALID, "kiln_gather", "'out' is NULL");
  EXPECT_ERROR(kiln_gather(U, NULL, idx, 0, 0), INVALID, "kiln_gather", "'params' is NULL");
  EXPECT_ERROR(kiln_gather(U, p, NULL, 0, 0), INVALID, "kiln_gather", "'indices' is NULL");
  EXPECT_ERROR(kiln_gather(U, p, make(I32, 1, d1, i3), 0, 0), INVALID,
               "gather: indices[0] = 3 is out of range for axis 0 of params [3, 2]", "[0, 3)");
  EXPECT_ERROR(kiln_gather(U, p, make(I64, 1, d1, lneg), 1, 0), INVALID, "gather: indices[0] = -1", "[0, 2)");
  EXPECT_ERROR(kiln_gather(U, p, p, 0, 0), INVALID, "gather: argument 'indices' is float32[3, 2]",
               "expected int32 or int64");
  EXPECT_ERROR(kiln_gather(U, p, idx, 2, 0), INVALID, "gather: axis 2 is out of range", NULL);
  EXPECT_ERROR(kiln_gather(U, f32(0, NULL, &one), idx, 0, 0), INVALID, "gather", "scalar");

  expect_f32(RUN(kiln_one_hot(&o, make(I64, 1, d4, lhot), 3, 5, -1, -1, F32)), 2, d43, hot, 0); /* -1: all off */
  expect_f32(RUN(kiln_one_hot(&o, make(I32, 1, d2, i10), 2, 1, 0, -1, F32)), 2, d22, hot2, 0);
  expect_f32(RUN(kiln_one_hot(&o, make(I32, 1, d2, i10), 0, 1, 0, -1, F32)), 2, d20, NULL, 0);
  EXPECT_ERROR(kiln_one_hot(NULL, idx, 3, 1, 0, -1, F32), INVALID, "kiln_one_hot", "'out' is NULL");
  EXPECT_ERROR(kiln_one_hot(U, NULL, 3, 1, 0, -1, F32), INVALID, "kiln_one_hot", "'indices' is NULL");
  EXPECT_ERROR(kiln_one_hot(U, idx, -1, 1, 0, -1, F32), INVALID, "one_hot: depth is -1", "expected depth >= 0");
  EXPECT_ERROR(kiln_one_hot(U, p, 3, 1, 0, -1, F32), INVALID, "one_hot: argument 'indices' is float32[3, 2]",
               "expected int32 or int64");

  x = keep(RUN(kiln_ones(&o, big, 1, F32)));
  expect_f32(RUN(kiln_dropout(&o, x, 0.5f, false, 3)), 1, big, fdata(x), 0);
  expect_f32(RUN(kiln_dropout(&o, x, 0.0f, true, 3)), 1, big, fdata(x), 0);
  kiln_set_seed(5);
  kept1 = keep(RUN(kiln_dropout(&o, x, 0.5f, true, 3)));
  kept2 = keep(RUN(kiln_dropout(&o, x, 0.5f, true, 3)));
  kept3 = keep(RUN(kiln_dropout(&o, x, 0.5f, true, 4)));
  CHECK(kept1 && kept2 && !same_values(kept1, kept2)); /* TF2: the next call with a seed, another mask */
  kiln_set_seed(5);
  CHECK(same_values(kept1, keep(RUN(kiln_dropout(&o, x, 0.5f, true, 3))))); /* repeats after set_seed */
  CHECK(kept1 && kept3 && !same_values(kept1, kept3));
  if (kept1 && meta_ok(kept1, F32, 1, big)) {
    for (i = 0; i < 1000; ++i) {
      zeros += fdata(kept1)[i] == 0.0f;
      twos += fdata(kept1)[i] == 2.0f; /* kept values scaled by 1 / (1 - rate) */
    }
    CHECK(zeros + twos == 1000 && zeros > 400 && zeros < 600);
  }
  EXPECT_ERROR(kiln_dropout(NULL, x, 0.5f, true, 3), INVALID, "kiln_dropout", "'out' is NULL");
  EXPECT_ERROR(kiln_dropout(U, NULL, 0.5f, true, 3), INVALID, "kiln_dropout", "'x' is NULL");
  EXPECT_ERROR(kiln_dropout(U, x, 1.0f, true, 3), INVALID, "dropout: rate is 1", "[0, 1)");
  EXPECT_ERROR(kiln_dropout(U, x, -0.5f, false, 3), INVALID, "dropout: rate is -0.5", "[0, 1)");
  EXPECT_ERROR(kiln_dropout(U, idx, 0.5f, true, 3), INVALID, "dropout: argument 'x' is int32[2]",
               "expected float32");
  release_kept();
}

/* ---------------------------------------------------------------- variables */

/* kiln_variable_update_fn doubling float32 values; *calls counts the calls, -1 makes it fail. */
static kiln_status *double_values(void *dst, const void *src, size_t num_bytes, kiln_dtype dtype,
                                  void *user_data) {
  int *calls = (int *)user_data;
  size_t i;
  if (*calls < 0) return kiln_status_create(INVALID, "told to fail");
  if (dtype != F32) return kiln_status_create(INVALID, "not float32");
  for (i = 0; i < num_bytes / sizeof(float); ++i) ((float *)dst)[i] = 2 * ((const float *)src)[i];
  ++*calls;
  return NULL;
}

static void test_variables(void) {
  float init[2] = {1, 2}, five6[2] = {5, 6}, ones[2] = {1, 1}, halves[2] = {0.5f, 0.5f},
        after[2] = {5.5f, 6.5f};
  float seven[2] = {6, 7};
  int32_t counts[2] = {3, 4}, step[2] = {1, 1}, stepped[2] = {4, 5}, back[2] = {2, 3};
  int64_t d2[1] = {2}, d3[1] = {3};
  char name[16] = "layer/w";
  kiln_variable *w = NULL, *n = NULL, *bad = NULL;
  kiln_tensor *first = NULL, *o = NULL, *initial = f32(1, d2, init);

  EXPECT_OK(kiln_variable_create(&w, name, initial, true));
  name[0] = 'X'; /* the name was copied */
  CHECK(w && strcmp(kiln_variable_get_name(w), "layer/w") == 0);
  CHECK(kiln_variable_get_trainable(w));
  first = keep(RUN(kiln_variable_read(&o, w)));
  expect_f32(RUN(kiln_tensor_clone(&o, first)), 1, d2, init, 0);
  EXPECT_OK(kiln_variable_assign(w, f32(1, d2, five6)));
  expect_f32(RUN(kiln_variable_read(&o, w)), 1, d2, five6, 0);
  expect_f32(RUN(kiln_tensor_clone(&o, first)), 1, d2, init, 0); /* earlier reads never change */
  expect_f32(RUN(kiln_tensor_clone(&o, initial)), 1, d2, init, 0);
  EXPECT_OK(kiln_variable_assign_add(w, f32(1, d2, ones)));
  expect_f32(RUN(kiln_variable_read(&o, w)), 1, d2, seven, 0);
  EXPECT_OK(kiln_variable_assign_sub(w, f32(1, d2, halves)));
  expect_f32(RUN(kiln_variable_read(&o, w)), 1, d2, after, 0);
  {
    /* A clone is a second handle to the same variable, alive after the first is freed. */
    kiln_variable *w2 = NULL, *w3 = NULL;
    EXPECT_OK(kiln_variable_clone(&w2, w));
    CHECK(w2 != NULL && w2 != w && strcmp(kiln_variable_get_name(w2), "layer/w") == 0);
    EXPECT_OK(kiln_variable_clone(&w3, w2));
    EXPECT_OK(kiln_variable_assign_add(w2, f32(1, d2, ones)));
    kiln_variable_free(w2);
    EXPECT_OK(kiln_variable_assign_sub(w3, f32(1, d2, ones)));
    kiln_variable_free(w3);
    expect_f32(RUN(kiln_variable_read(&o, w)), 1, d2, after, 0);
    EXPECT_ERROR(kiln_variable_clone(NULL, w), INVALID, "kiln_variable_clone", "'out' is NULL");
    EXPECT_ERROR(kiln_variable_clone(&w2, NULL), INVALID, "kiln_variable_clone", "'variable' is NULL");
  }

  {
    /* update_in_place: in place while no read is alive, on a new buffer while one is. */
    const float *before = NULL;
    kiln_tensor *held = NULL;
    int calls = 0;
    EXPECT_OK(kiln_variable_update_in_place(w, double_values, &calls));
    held = keep(RUN(kiln_variable_read(&o, w)));
    CHECK(calls == 1 && held && fdata(held)[0] == 2 * after[0]);
    before = fdata(held);
    EXPECT_OK(kiln_variable_update_in_place(w, double_values, &calls));
    CHECK(fdata(held) == before && before[0] == 2 * after[0]); /* the held read did not change */
    expect_f32(RUN(kiln_variable_read(&o, w)), 1, d2, (const float[]){4 * after[0], 4 * after[1]}, 0);
    calls = -1; /* the function's error comes back */
    EXPECT_ERROR(kiln_variable_update_in_place(w, double_values, &calls), INVALID, "told to fail", NULL);
    EXPECT_ERROR(kiln_variable_update_in_place(w, NULL, NULL), INVALID, "'fn' is NULL", NULL);
    EXPECT_ERROR(kiln_variable_update_in_place(NULL, double_values, &calls), INVALID, "'variable' is NULL",
                 NULL);
    EXPECT_OK(kiln_variable_assign(w, f32(1, d2, after)));
  }

  EXPECT_OK(kiln_variable_create(&n, "step", make(I32, 1, d2, counts), false));
  CHECK(!kiln_variable_get_trainable(n));
  EXPECT_OK(kiln_variable_assign_add(n, make(I32, 1, d2, step)));
  expect_raw(RUN(kiln_variable_read(&o, n)), I32, 1, d2, stepped);
  EXPECT_OK(kiln_variable_assign_sub(n, make(I32, 1, d2, step)));
  EXPECT_OK(kiln_variable_assign_sub(n, make(I32, 1, d2, step)));
  expect_raw(RUN(kiln_variable_read(&o, n)), I32, 1, d2, back);

  CHECK(kiln_variable_get_name(NULL) == NULL);
  CHECK(!kiln_variable_get_trainable(NULL));
  kiln_variable_free(NULL);
  EXPECT_ERROR(kiln_variable_create(NULL, "v", initial, true), INVALID, "kiln_variable_create",
               "'out' is NULL");
  EXPECT_ERROR(kiln_variable_create(&bad, NULL, initial, true), INVALID, "kiln_variable_create",
               "'name' is NULL");
  EXPECT_ERROR(kiln_variable_create(&bad, "v", NULL, true), INVALID, "kiln_variable_create",
               "'initial' is NULL");
  CHECK(bad == NULL);
  EXPECT_ERROR(kiln_variable_read(NULL, w), INVALID, "kiln_variable_read", "'out' is NULL");
  EXPECT_ERROR(kiln_variable_read(U, NULL), INVALID, "kiln_variable_read", "'variable' is NULL");
  EXPECT_ERROR(kiln_variable_assign(NULL, initial), INVALID, "kiln_variable_assign", "'variable' is NULL");
  EXPECT_ERROR(kiln_variable_assign(w, NULL), INVALID, "kiln_variable_assign", "'value' is NULL");
  EXPECT_ERROR(kiln_variable_assign(w, f32(1, d3, init)), INVALID,
               "Variable.assign on variable 'layer/w': got float32[3]", "expected float32[2]");
  EXPECT_ERROR(kiln_variable_assign_add(NULL, initial), INVALID, "kiln_variable_assign_add",
               "'variable' is NULL");
  EXPECT_ERROR(kiln_variable_assign_add(w, make(I32, 1, d2, step)), INVALID,
               "Variable.assign_add on variable 'layer/w': got int32[2]", "expected float32[2]");
  EXPECT_ERROR(kiln_variable_assign_sub(NULL, initial), INVALID, "kiln_variable_assign_sub",
               "'variable' is NULL");
  EXPECT_ERROR(kiln_variable_assign_sub(w, NULL), INVALID, "kiln_variable_assign_sub", "'delta' is NULL");
  EXPECT_ERROR(kiln_variable_assign_sub(n, initial), INVALID, "Variable.assign_sub on variable 'step'",
               "expected int32[2]");
  expect_f32(RUN(kiln_variable_read(&o, w)), 1, d2, after, 0); /* failed assignments change nothing */
  kiln_variable_free(w);
  expect_f32(RUN(kiln_tensor_clone(&o, first)), 1, d2, init, 0); /* reads outlive the variable */
  kiln_variable_free(n);
  release_kept();
}

/* -------------------------------------------------------------------- tapes */

/* The three gradient entry points in one shape; sources are tensors or variables. */
typedef kiln_status *(*gradient_fn)(kiln_tensor **, kiln_tape *, const kiln_tensor *, const void *const *,
                                    size_t, kiln_unconnected);
static kiln_status *gradient_of_tensors(kiln_tensor **grads, kiln_tape *tape, const kiln_tensor *target,
                                        const void *const *sources, size_t n, kiln_unconnected unconnected) {
  return kiln_tape_gradient(grads, tape, target, (const kiln_tensor *const *)sources, n, unconnected);
}
static kiln_status *gradient_with_no_output(kiln_tensor **grads, kiln_tape *tape, const kiln_tensor *target,
                                            const void *const *sources, size_t n,
                                            kiln_unconnected unconnected) {
  return kiln_tape_gradient_with_output(grads, tape, target, NULL, (const kiln_tensor *const *)sources, n,
                                        unconnected);
}
static kiln_status *gradient_of_variables(kiln_tensor **grads, kiln_tape *tape, const kiln_tensor *target,
                                          const void *const *sources, size_t n,
                                          kiln_unconnected unconnected) {
  return kiln_tape_gradient_variables(grads, tape, target, (const kiln_variable *const *)sources, n,
                                      unconnected);
}

/* Bad arguments every gradient entry point refuses, without writing a gradient or spending the tape.
 * `list` names the sources argument ("sources" or "variables"). */
static void check_gradient_errors(const char *fn, gradient_fn gradient, kiln_tape *tape,
                                  const kiln_tensor *target, const void *const *sources, const char *list) {
  kiln_tensor *grads[1] = {NULL};
  const void *holes[1] = {NULL};
  char null_list[64], null_entry[64], bad_enum[128];
  sprintf(null_list, "'%s' is NULL", list);
  sprintf(null_entry, "%s[0] is NULL", list);
  sprintf(bad_enum, "%s: unconnected 7 is not a kiln_unconnected", fn);
  EXPECT_ERROR(gradient(grads, NULL, target, sources, 1, KILN_UNCONNECTED_NONE), INVALID, fn,
               "'tape' is NULL");
  EXPECT_ERROR(gradient(NULL, tape, target, sources, 1, KILN_UNCONNECTED_NONE), INVALID, fn,
               "'out_grads' is NULL");
  EXPECT_ERROR(gradient(grads, tape, NULL, sources, 1, KILN_UNCONNECTED_NONE), INVALID, fn,
               "'target' is NULL");
  EXPECT_ERROR(gradient(grads, tape, target, NULL, 1, KILN_UNCONNECTED_NONE), INVALID, fn, null_list);
  EXPECT_ERROR(gradient(grads, tape, target, holes, 1, KILN_UNCONNECTED_NONE), INVALID, fn, null_entry);
  EXPECT_ERROR(gradient(grads, tape, target, sources, 1, (kiln_unconnected)7), INVALID, bad_enum, NULL);
  CHECK(grads[0] == NULL);
}

static void test_tapes(void) {
  float xv[3] = {1, 2, 3}, twice[3] = {2, 4, 6}, cubed[3] = {3, 12, 27}, zero3[3] = {0, 0, 0};
  float og[3] = {1, 0.5f, -1}, scaled[3] = {2, 2, -6}, wv[2] = {1, 2}, w_grad[2] = {2, 4}, cv[1] = {3};
  float c_grad[1] = {6}, zero1[1] = {0};
  int32_t iv[2] = {1, 2};
  int64_t d3[1] = {3}, d2[1] = {2}, d1[1] = {1};
  kiln_tensor *x = f32(1, d3, xv), *ints = make(I32, 1, d2, iv), *o = NULL, *sq, *loss, *y2, *y3, *wr, *cr;
  kiln_tensor *grads[2] = {NULL, NULL};
  const kiln_tensor *src[1];
  const kiln_variable *vars[2];
  kiln_variable *w = NULL, *c = NULL;
  kiln_tape *tape = NULL, *other = NULL;

  src[0] = x;
  /* The kiln.h example: d sum(x * x) / dx = 2x; a non-persistent tape answers once. */
  EXPECT_OK(kiln_tape_create(&tape, false, true));
  EXPECT_OK(kiln_tape_watch(tape, x));
  sq = keep(RUN(kiln_mul(&o, x, x)));
  loss = keep(RUN(kiln_sum(&o, sq, NULL, 0, false)));
  EXPECT_OK(kiln_tape_stop(tape));
  EXPECT_OK(kiln_tape_gradient(grads, tape, loss, src, 1, KILN_UNCONNECTED_NONE));
  expect_f32(grads[0], 1, d3, twice, 1e-6);
  grads[0] = NULL;
  EXPECT_ERROR(kiln_tape_gradient(grads, tape, loss, src, 1, KILN_UNCONNECTED_NONE),
               KILN_STATUS_FAILED_PRECONDITION, "GradientTape.gradient", "only be called once");
  kiln_tape_free(tape);

  /* Persistent, stopped and started again: only what was recorded counts. */
  EXPECT_OK(kiln_tape_create(&tape, true, true));
  EXPECT_OK(kiln_tape_watch(tape, x));
  sq = keep(RUN(kiln_mul(&o, x, x)));
  EXPECT_OK(kiln_tape_stop(tape));
  y2 = keep(RUN(kiln_mul(&o, sq, x))); /* not recorded */
  EXPECT_OK(kiln_tape_start(tape));
  y3 = keep(RUN(kiln_mul(&o, sq, x)));
  EXPECT_OK(kiln_tape_stop(tape));
  EXPECT_OK(kiln_tape_gradient(grads, tape, y3, src, 1, KILN_UNCONNECTED_NONE));
  expect_f32(grads[0], 1, d3, cubed, 1e-6);
  grads[0] = NULL;
  EXPECT_OK(kiln_tape_gradient(grads, tape, y2, src, 1, KILN_UNCONNECTED_NONE));
  CHECK(grads[0] == NULL);
  EXPECT_OK(kiln_tape_gradient(grads, tape, y2, src, 1, KILN_UNCONNECTED_ZERO));
  expect_f32(grads[0], 1, d3, zero3, 0);
  grads[0] = NULL;
  /* An upstream gradient scales the result; NULL means ones. */
  EXPECT_OK(kiln_tape_gradient_with_output(grads, tape, sq, f32(1, d3, og), src, 1, KILN_UNCONNECTED_NONE));
  expect_f32(grads[0], 1, d3, scaled, 1e-6);
  grads[0] = NULL;
  EXPECT_OK(kiln_tape_gradient_with_output(grads, tape, sq, NULL, src, 1, KILN_UNCONNECTED_NONE));
  expect_f32(grads[0], 1, d3, twice, 1e-6);
  grads[0] = NULL;

  /* Bad input; none of it spends or changes the tape. */
  EXPECT_ERROR(kiln_tape_create(NULL, false, true), INVALID, "kiln_tape_create", "'out' is NULL");
  EXPECT_ERROR(kiln_tape_stop(NULL), INVALID, "kiln_tape_stop", "'tape' is NULL");
  EXPECT_ERROR(kiln_tape_start(NULL), INVALID, "kiln_tape_start", "'tape' is NULL");
  EXPECT_ERROR(kiln_tape_watch(NULL, x), INVALID, "kiln_tape_watch", "'tape' is NULL");
  EXPECT_ERROR(kiln_tape_watch(tape, NULL), INVALID, "kiln_tape_watch", "'tensor' is NULL");
  EXPECT_ERROR(kiln_tape_watch(tape, ints), INVALID, "GradientTape.watch: cannot watch a int32[2]",
               "expected a floating-point tensor");
  EXPECT_ERROR(kiln_tape_watch_variable(NULL, NULL), INVALID, "kiln_tape_watch_variable", "'tape' is NULL");
  EXPECT_ERROR(kiln_tape_watch_variable(tape, NULL), INVALID, "kiln_tape_watch_variable",
               "'variable' is NULL");
  check_gradient_errors("kiln_tape_gradient", gradient_of_tensors, tape, y3, (const void *const *)src,
                        "sources");
  check_gradient_errors("kiln_tape_gradient_with_output", gradient_with_no_output, tape, sq,
                        (const void *const *)src, "sources");
  EXPECT_ERROR(kiln_tape_gradient(grads, tape, ints, src, 1, KILN_UNCONNECTED_NONE), INVALID,
               "GradientTape.gradient: target is int32[2]", "expected a floating-point tensor");
  EXPECT_ERROR(kiln_tape_gradient_with_output(grads, tape, sq, f32(1, d2, og), src, 1, KILN_UNCONNECTED_NONE),
               INVALID, "GradientTape.gradient: output gradient float32[2] does not match target float32[3]",
               NULL);
  CHECK(grads[0] == NULL); /* failed calls write no gradient */
  EXPECT_OK(kiln_tape_gradient(grads, tape, y3, src, 1, KILN_UNCONNECTED_NONE));
  expect_f32(grads[0], 1, d3, cubed, 1e-6);
  grads[0] = NULL;
  kiln_tape_free(tape);
  kiln_tape_free(NULL);

  /* Variables: a trainable one read under the tape is watched; a non-trainable one is not. */
  EXPECT_OK(kiln_variable_create(&w, "w", f32(1, d2, wv), true));
  EXPECT_OK(kiln_variable_create(&c, "c", f32(1, d1, cv), false));
  vars[0] = w, vars[1] = c;
  EXPECT_OK(kiln_tape_create(&tape, true, true));
  wr = keep(RUN(kiln_variable_read(&o, w)));
  cr = keep(RUN(kiln_variable_read(&o, c)));
  loss = keep(RUN(kiln_add(&o, keep(RUN(kiln_sum(&o, keep(RUN(kiln_square(&o, wr))), NULL, 0, false))),
                           keep(RUN(kiln_sum(&o, cr, NULL, 0, false))))));
  EXPECT_OK(kiln_tape_stop(tape));
  EXPECT_OK(kiln_tape_gradient_variables(grads, tape, loss, vars, 2, KILN_UNCONNECTED_ZERO));
  expect_f32(grads[0], 1, d2, w_grad, 1e-6);
  expect_f32(grads[1], 1, d1, zero1, 0);
  grads[0] = grads[1] = NULL;
  EXPECT_OK(kiln_tape_gradient_variables(grads, tape, loss, vars, 2, KILN_UNCONNECTED_NONE));
  expect_f32(grads[0], 1, d2, w_grad, 1e-6);
  CHECK(grads[1] == NULL);
  grads[0] = grads[1] = NULL;
  check_gradient_errors("kiln_tape_gradient_variables", gradient_of_variables, tape, loss,
                        (const void *const *)vars, "variables");
  kiln_tape_free(tape);

  /* watch_accessed_variables false: only what is watched explicitly, here the non-trainable c. */
  EXPECT_OK(kiln_tape_create(&other, false, false));
  EXPECT_OK(kiln_tape_watch_variable(other, c));
  wr = keep(RUN(kiln_variable_read(&o, w)));
  cr = keep(RUN(kiln_variable_read(&o, c)));
  loss = keep(RUN(kiln_add(&o, keep(RUN(kiln_sum(&o, wr, NULL, 0, false))),
                           keep(RUN(kiln_sum(&o, keep(RUN(kiln_square(&o, cr))), NULL, 0, false))))));
  EXPECT_OK(kiln_tape_stop(other));
  EXPECT_OK(kiln_tape_gradient_variables(grads, other, loss, vars, 2, KILN_UNCONNECTED_NONE));
  CHECK(grads[0] == NULL);
  expect_f32(grads[1], 1, d1, c_grad, 1e-6);
  grads[0] = grads[1] = NULL;
  kiln_tape_free(other);
  kiln_variable_free(w);
  kiln_variable_free(c);
  release_kept();
}

/* -------------------------------------------------- out-of-range enum values */

/* Any int value of a kiln enum must come back as a status, never undefined behaviour in the
 * library: each public enum has a *_MAX_ENUM = 0x7FFFFFFF member so that every int is a value
 * of its type (the sanitizer build would abort on a load of an out-of-range value). */
static void test_out_of_range_enums(void) {
  int64_t d2[1] = {2}, no_padding[2] = {0, 0};
  kiln_tensor *o = NULL, *x = keep(RUN(kiln_zeros(&o, d2, 1, F32)));
  EXPECT_ERROR(kiln_zeros(U, d2, 1, (kiln_dtype)99), INVALID, "kiln_zeros", "dtype 99");
  EXPECT_ERROR(kiln_cast(U, x, (kiln_dtype)-3), INVALID, "kiln_cast", "dtype -3");
  EXPECT_ERROR(kiln_cast(U, x, KILN_DTYPE_MAX_ENUM), INVALID, "kiln_cast", "dtype");
  EXPECT_ERROR(kiln_pad(U, x, no_padding, 1, KILN_PAD_MODE_MIN_ENUM, 0), INVALID, "kiln_pad", "is not a kiln_pad_mode");
  EXPECT_ERROR(kiln_pad(U, x, no_padding, 1, KILN_PAD_MODE_MAX_ENUM, 0), INVALID, "kiln_pad", "is not a kiln_pad_mode");
  EXPECT_ERROR(kiln_one_hot(U, x, 2, 1, 0, -1, KILN_DTYPE_MIN_ENUM), INVALID, "kiln_one_hot", "dtype");
  release_kept();
}

/* ----------------------------------------------------------------- losses */

static void test_losses(void) {
  float logits[6] = {100, -100, 0, 0.5f, -1.25f, 2}, z[6] = {1, 0, 0, 0.25f, 0.25f, 0.5f};
  float sx[3] = {-100, 0, 20}, sz[3] = {1, 0.5f, 0}, sloss[3];
  float sparse_loss[2], dense_loss[2];
  int32_t labels[2] = {0, 2}, bad[2] = {0, 3};
  int64_t d23[2] = {2, 3}, d2[1] = {2}, d3[1] = {3};
  kiln_tensor *o = NULL, *x = f32(2, d23, logits), *y = make(I32, 1, d2, labels), *zt = f32(2, d23, z);
  int r, j;
  for (r = 0; r < 2; ++r) {
    double m = -1e30, s = 0;
    for (j = 0; j < 3; ++j) m = logits[r * 3 + j] > m ? logits[r * 3 + j] : m;
    for (j = 0; j < 3; ++j) s += exp(logits[r * 3 + j] - m);
    sparse_loss[r] = (float)(log(s) + m - logits[r * 3 + labels[r]]);
    dense_loss[r] = 0;
    for (j = 0; j < 3; ++j) dense_loss[r] += (float)(z[r * 3 + j] * (log(s) + m - logits[r * 3 + j]));
  }
  sparse_loss[0] = 3.7200760e-44f; /* exp(-100): kept, not rounded to 0 */
  dense_loss[0] = 3.7200760e-44f;
  for (j = 0; j < 3; ++j) sloss[j] = (float)((sx[j] > 0 ? sx[j] : 0) - sx[j] * sz[j] + log1p(exp(-fabs(sx[j]))));
  expect_f32(RUN(kiln_sparse_softmax_cross_entropy_with_logits(&o, y, x)), 1, d2, sparse_loss, 1e-5);
  expect_f32(RUN(kiln_softmax_cross_entropy_with_logits(&o, zt, x, -1)), 1, d2, dense_loss, 1e-5);
  expect_f32(RUN(kiln_sigmoid_cross_entropy_with_logits(&o, f32(1, d3, sz), f32(1, d3, sx))), 1, d3, sloss, 1e-6);
  EXPECT_ERROR(kiln_sparse_softmax_cross_entropy_with_logits(U, make(I32, 1, d2, bad), x), INVALID,
               "sparse_softmax_cross_entropy_with_logits: labels[1] = 3", "[0, 3)");
  EXPECT_ERROR(kiln_sparse_softmax_cross_entropy_with_logits(NULL, y, x), INVALID, "kiln_sparse_softmax", "'out'");
  EXPECT_ERROR(kiln_sparse_softmax_cross_entropy_with_logits(U, zt, x), INVALID, "argument 'labels' is float32",
               "int32 or int64");
  EXPECT_ERROR(kiln_softmax_cross_entropy_with_logits(U, zt, x, 2), INVALID, "softmax_cross_entropy_with_logits",
               "axis 2");
  EXPECT_ERROR(kiln_softmax_cross_entropy_with_logits(U, NULL, x, -1), INVALID, "'labels' is NULL", NULL);
  EXPECT_ERROR(kiln_sigmoid_cross_entropy_with_logits(U, f32(1, d3, sz), x), INVALID,
               "sigmoid_cross_entropy_with_logits", "same shape");
  release_kept();
}

/* The CTC loss of uniform logits over two classes, two frames: label [1] has the paths 11, _1
   and 1_ (3 of 4), no labels only __ (1 of 4); time-major and batch-major, blank first and last. */
static void test_ctc_loss(void) {
  float zeros[8] = {0}, want[2];
  int32_t ones[2] = {1, 1}, noughts[2] = {0, 0}, lengths[2] = {1, 0}, frames[2] = {2, 2},
          too_long[2] = {2, 0};
  int64_t d222[3] = {2, 2, 2}, d21[2] = {2, 1}, d2[1] = {2};
  kiln_tensor *o = NULL, *x = f32(3, d222, zeros), *ll = make(I32, 1, d2, lengths),
              *tl = make(I32, 1, d2, frames);
  want[0] = (float)-log(0.75);
  want[1] = (float)-log(0.25);
  expect_f32(RUN(kiln_ctc_loss(&o, make(I32, 2, d21, ones), x, ll, tl, true, 0)), 1, d2, want, 1e-6);
  expect_f32(RUN(kiln_ctc_loss(&o, make(I32, 2, d21, noughts), x, ll, tl, false, -1)), 1, d2, want, 1e-6);
  EXPECT_ERROR(kiln_ctc_loss(U, make(I32, 2, d21, noughts), x, ll, tl, true, 0), INVALID,
               "ctc_loss: labels[0, 0] = 0 is the blank index", "within label_length[0] = 1");
  EXPECT_ERROR(kiln_ctc_loss(U, make(I32, 2, d21, ones), x, make(I32, 1, d2, too_long), tl, true, 0), INVALID,
               "label_length[0] = 2 is out of range", "[0, 1]");
  EXPECT_ERROR(kiln_ctc_loss(U, make(I32, 2, d21, ones), x, NULL, tl, true, 0), INVALID, "kiln_ctc_loss",
               "'label_length' is NULL");
  EXPECT_ERROR(kiln_ctc_loss(U, make(I32, 2, d21, ones), x, ll, tl, true, 2), INVALID, "blank_index 2",
               "[-2, 2)");
  release_kept();
}

/* Decoding one sample of three frames over classes {blank 0, 1, 2}: the frame maxima 1, 1, 2 give
   [1, 2] greedily (score -(3 + 2 + 4)); beam search returns two paths, best first. */
static void test_ctc_decode(void) {
  float logits[9] = {0, 3, 1, 0, 2, 1, 0, 1, 4};
  int32_t three[1] = {3}, greedy_want[3] = {1, 2, -1};
  int64_t d133[3] = {1, 3, 3}, d113[3] = {1, 1, 3}, d1[1] = {1}, d11[2] = {1, 1}, d213[3] = {2, 1, 3},
          d12[2] = {1, 2};
  float greedy_score[1] = {-9};
  kiln_tensor *x = f32(3, d133, logits), *len = make(I32, 1, d1, three), *paths = NULL, *scores = NULL;
  const float *s;
  EXPECT_OK(kiln_ctc_decode(&paths, &scores, x, len, NULL, 100, 1, true, 0));
  expect_raw(paths, I32, 3, d113, greedy_want);
  expect_f32(scores, 2, d11, greedy_score, 0);
  paths = scores = NULL;
  EXPECT_OK(kiln_ctc_decode(&paths, &scores, x, len, "beam_search", 4, 2, true, 0));
  CHECK(meta_ok(paths, I32, 3, d213) && meta_ok(scores, F32, 2, d12));
  CHECK(((const int32_t *)kiln_tensor_get_data(paths))[0] == 1 &&
        ((const int32_t *)kiln_tensor_get_data(paths))[1] == 2);
  s = fdata(scores);
  CHECK(s[0] < 0 && s[1] < s[0]);
  kiln_tensor_free(paths);
  kiln_tensor_free(scores);
  paths = scores = NULL;
  EXPECT_ERROR(kiln_ctc_decode(&paths, &scores, x, len, "beam_search", 1, 2, true, 0), INVALID,
               "1 <= top_paths <= beam_width", NULL);
  EXPECT_ERROR(kiln_ctc_decode(&paths, NULL, x, len, NULL, 1, 1, true, 0), INVALID, "kiln_ctc_decode",
               "'scores'");
  CHECK(paths == NULL && scores == NULL);
  release_kept();
}

/* ------------------------------------------ more reductions, scans, helpers */

static void test_reduce_extra(void) {
  float xv[6] = {1, 2, 3, 4, 5, 6}, prod_rows[2] = {6, 120}, prod_all = 720, lse[2], bias[3] = {10, 20, 30};
  float biased[6] = {11, 22, 33, 14, 25, 36}, mean[3] = {2.5f, 3.5f, 4.5f}, var[3] = {2.25f, 2.25f, 2.25f};
  float l2[6], cs[6] = {1, 3, 6, 4, 9, 15}, cs_ex_rev[6] = {5, 3, 0, 11, 6, 0}, topv[4] = {3, 2, 6, 5};
  float cp[6] = {1, 2, 6, 4, 20, 120}, cp_ex_rev[6] = {6, 3, 1, 30, 6, 1};
  int32_t topi[4] = {2, 1, 2, 1};
  int64_t amin[2] = {0, 0}, d23[2] = {2, 3}, d2[1] = {2}, d3[1] = {3}, d22[2] = {2, 2}, ax1[1] = {1},
          ax0[1] = {0}, ax5[1] = {5};
  unsigned char bv[6] = {1, 0, 1, 1, 1, 1}, any_rows[2] = {1, 1}, all_rows[2] = {0, 1};
  kiln_tensor *o = NULL, *x = f32(2, d23, xv), *b = make(B8, 2, d23, bv), *m = NULL, *v = NULL;
  kiln_status *st;
  int i;
  for (i = 0; i < 2; ++i)
    lse[i] = (float)(log(exp(xv[3 * i]) + exp(xv[3 * i + 1]) + exp(xv[3 * i + 2])));
  for (i = 0; i < 6; ++i) l2[i] = xv[i] / (float)sqrt(i < 3 ? 14.0 : 77.0);
  expect_f32(RUN(kiln_reduce_prod(&o, x, ax1, 1, false)), 1, d2, prod_rows, 1e-6);
  expect_f32(RUN(kiln_reduce_prod(&o, x, NULL, 0, false)), 0, NULL, &prod_all, 1e-6);
  expect_raw(RUN(kiln_reduce_any(&o, b, ax1, 1, false)), B8, 1, d2, any_rows);
  expect_raw(RUN(kiln_reduce_all(&o, b, ax1, 1, false)), B8, 1, d2, all_rows);
  expect_f32(RUN(kiln_reduce_logsumexp(&o, x, ax1, 1, false)), 1, d2, lse, 1e-6);
  expect_raw(RUN(kiln_argmin(&o, x, 1)), I64, 1, d2, amin);
  expect_f32(RUN(kiln_bias_add(&o, x, f32(1, d3, bias))), 2, d23, biased, 0);
  expect_f32(RUN(kiln_l2_normalize(&o, x, ax1, 1, 1e-12f)), 2, d23, l2, 1e-6);
  expect_f32(RUN(kiln_cumsum(&o, x, 1, false, false)), 2, d23, cs, 0);
  expect_f32(RUN(kiln_cumsum(&o, x, -1, true, true)), 2, d23, cs_ex_rev, 0);
  expect_f32(RUN(kiln_cumprod(&o, x, 1, false, false)), 2, d23, cp, 0);
  expect_f32(RUN(kiln_cumprod(&o, x, -1, true, true)), 2, d23, cp_ex_rev, 0);
  st = kiln_moments(&m, &v, x, ax0, 1, false);
  CHECK(st == NULL);
  kiln_status_free(st);
  expect_f32(m, 1, d3, mean, 1e-6);
  expect_f32(v, 1, d3, var, 1e-6);
  m = v = NULL;
  st = kiln_top_k(&m, &v, x, 2, true);
  CHECK(st == NULL);
  kiln_status_free(st);
  expect_f32(m, 2, d22, topv, 0);
  expect_raw(v, I32, 2, d22, topi);
  m = v = NULL;
  EXPECT_ERROR(kiln_reduce_prod(U, b, NULL, 0, false), INVALID, "reduce_prod: argument 'x' is bool", NULL);
  EXPECT_ERROR(kiln_reduce_any(U, x, NULL, 0, false), INVALID, "reduce_any: argument 'x' is float32", "bool");
  EXPECT_ERROR(kiln_reduce_all(U, b, ax5, 1, false), INVALID, "reduce_all", "axis 5");
  EXPECT_ERROR(kiln_reduce_logsumexp(U, x, NULL, 1, false), INVALID, "kiln_reduce_logsumexp", "'axes' is NULL");
  EXPECT_ERROR(kiln_argmin(U, x, 2), INVALID, "argmin", "axis 2");
  EXPECT_ERROR(kiln_bias_add(U, x, x), INVALID, "bias_add: value float32[2, 3] and bias float32[2, 3]", NULL);
  EXPECT_ERROR(kiln_l2_normalize(U, b, NULL, 0, 1e-12f), INVALID, "l2_normalize: argument 'x' is bool", NULL);
  EXPECT_ERROR(kiln_cumsum(U, b, 0, false, false), INVALID, "cumsum: argument 'x' is bool", NULL);
  EXPECT_ERROR(kiln_cumprod(U, b, 0, false, false), INVALID, "cumprod: argument 'x' is bool", NULL);
  EXPECT_ERROR(kiln_cumprod(U, x, 2, false, false), INVALID, "cumprod", "axis 2");
  EXPECT_ERROR(kiln_cumprod(NULL, x, 0, false, false), INVALID, "kiln_cumprod", "'out'");
  EXPECT_ERROR(kiln_moments(&m, NULL, x, ax0, 1, false), INVALID, "kiln_moments", "'out_variance' is NULL");
  CHECK(m == NULL);
  EXPECT_ERROR(kiln_top_k(&m, &v, x, 4, true), INVALID, "top_k: k is 4", "k <= 3");
  CHECK(m == NULL && v == NULL);
  release_kept();
}

/* --------------------------------------------------------- floor division */

static void test_floor_div(void) {
  int32_t a[4] = {7, -7, 7, -7}, b[4] = {2, 2, -2, -2}, q[4] = {3, -4, -4, 3}, r[4] = {1, 1, -1, -1};
  int32_t zero[4] = {1, 0, 1, 1};
  float fa[2] = {7.5f, -7.5f}, fb = 2.0f, fq[2] = {3, -4}, fr[2] = {1.5f, 0.5f};
  int64_t d4[1] = {4}, d2[1] = {2};
  kiln_tensor *o = NULL, *ta = make(I32, 1, d4, a), *tb = make(I32, 1, d4, b);
  expect_raw(RUN(kiln_floordiv(&o, ta, tb)), I32, 1, d4, q);
  expect_raw(RUN(kiln_floormod(&o, ta, tb)), I32, 1, d4, r);
  expect_f32(RUN(kiln_floordiv(&o, f32(1, d2, fa), f32(0, NULL, &fb))), 1, d2, fq, 0);
  expect_f32(RUN(kiln_floormod(&o, f32(1, d2, fa), f32(0, NULL, &fb))), 1, d2, fr, 0);
  EXPECT_ERROR(kiln_floordiv(U, ta, make(I32, 1, d4, zero)), INVALID, "floordiv: integer division by zero", NULL);
  EXPECT_ERROR(kiln_floormod(U, ta, f32(1, d2, fa)), INVALID, "floormod: operands have different dtypes", NULL);
  EXPECT_ERROR(kiln_floordiv(NULL, ta, tb), INVALID, "kiln_floordiv", "'out' is NULL");
  EXPECT_ERROR(kiln_floormod(U, NULL, tb), INVALID, "kiln_floormod", "'a' is NULL");
  release_kept();
}

/* ------------------------------------------------------------------ einsum */

static void test_einsum(void) {
  float av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {1, 0, 0, 1, 1, 1}, ab[4] = {4, 5, 10, 11}, at[6] = {1, 4, 2, 5, 3, 6};
  float rows[2] = {6, 15};
  int64_t d23[2] = {2, 3}, d32[2] = {3, 2}, d22[2] = {2, 2}, d2[1] = {2};
  kiln_tensor *o = NULL, *a = f32(2, d23, av), *b = f32(2, d32, bv);
  const kiln_tensor *ins[2];
  ins[0] = a;
  ins[1] = b;
  expect_f32(RUN(kiln_einsum(&o, "ij,jk->ik", ins, 2)), 2, d22, ab, 1e-6);
  expect_f32(RUN(kiln_einsum(&o, "ij->ji", ins, 1)), 2, d32, at, 0);
  expect_f32(RUN(kiln_einsum(&o, "ij->i", ins, 1)), 1, d2, rows, 1e-6);
  EXPECT_ERROR(kiln_einsum(U, "ij,jk->iz", ins, 2), INVALID, "output label 'z' in no input", NULL);
  ins[1] = a;
  EXPECT_ERROR(kiln_einsum(U, "ij,jk->ik", ins, 2), INVALID, "einsum: equation 'ij,jk->ik' gives label j sizes",
               "expected equal sizes");
  EXPECT_ERROR(kiln_einsum(U, "ii->i", ins, 1), KILN_STATUS_UNIMPLEMENTED, "einsum", "diagonal");
  EXPECT_ERROR(kiln_einsum(U, NULL, ins, 1), INVALID, "kiln_einsum", "'equation' is NULL");
  EXPECT_ERROR(kiln_einsum(NULL, "ij->ji", ins, 1), INVALID, "kiln_einsum", "'out' is NULL");
  /* Integers, as TF's einsum: exact, through the integer matmul. */
  {
    int32_t ia[6] = {1, 2, 3, 4, 5, 6}, ib[6] = {1, 0, 0, 1, 1, 1}, iab[4] = {4, 5, 10, 11};
    ins[0] = make(I32, 2, d23, ia);
    ins[1] = make(I32, 2, d32, ib);
    expect_raw(RUN(kiln_einsum(&o, "ij,jk->ik", ins, 2)), I32, 2, d22, iab);
    ins[1] = make(U8, 2, d32, ib);
    EXPECT_ERROR(kiln_einsum(U, "ij,jk->ik", ins, 2), INVALID, "einsum: argument 'inputs[1]' is uint8", NULL);
  }
  release_kept();
}

/* ------------------------------------- exact int64 creation, more unary ops */

static void test_int64_creation_and_more_unary(void) {
  const int64_t big = (int64_t)1 << 60, mn = INT64_MIN, mx = INT64_MAX;
  int64_t d1[1] = {1}, d3[1] = {3}, d6[1] = {6}, d2[1] = {2};
  int64_t fill_big[1] = {((int64_t)1 << 60) + 1}, r_big[3] = {big, big + 1, big + 2}, r_wide[3] = {mn, -1, mx - 1};
  int32_t r32[3] = {4, 1, -2};
  float rf[3] = {0, 1, 2}, x[6] = {-0.75f, -0.5f, 0, 0.5f, 2.5f, 3.5f}, want[6];
  kiln_tensor *o = NULL, *xt = f32(1, d6, x), *it;
  static const struct {
    const char *name;
    unary_fn fn;
  } ops[] = {{"log1p", kiln_log1p}, {"expm1", kiln_expm1}, {"floor", kiln_floor}, {"round", kiln_round},
             {"sign", kiln_sign},   {"sin", kiln_sin},     {"cos", kiln_cos},     {"relu6", kiln_relu6},
             {"selu", kiln_selu}};
  const double scale = 1.0507009873554805, alpha = 1.6732632423543772;
  char fn[64], op[64];
  size_t c;
  int i;

  expect_raw(RUN(kiln_fill_int64(&o, d1, 1, big + 1, I64)), I64, 1, d1, fill_big);
  expect_raw(RUN(kiln_range_int64(&o, big, big + 3, 1, I64)), I64, 1, d3, r_big);
  expect_raw(RUN(kiln_range_int64(&o, mn, mx, mx, I64)), I64, 1, d3, r_wide);
  expect_raw(RUN(kiln_range_int64(&o, 4, -3, -3, I32)), I32, 1, d3, r32);
  expect_f32(RUN(kiln_range_int64(&o, 0, 3, 1, F32)), 1, d3, rf, 0);
  EXPECT_ERROR(kiln_fill_int64(NULL, d1, 1, 1, I64), INVALID, "kiln_fill_int64", "'out' is NULL");
  EXPECT_ERROR(kiln_fill_int64(U, d1, 1, big, I32), INVALID, "fill", "does not fit in int32");
  EXPECT_ERROR(kiln_fill_int64(U, d1, 1, 1, (kiln_dtype)99), INVALID, "kiln_fill_int64", "dtype 99");
  EXPECT_ERROR(kiln_range_int64(NULL, 0, 3, 1, I64), INVALID, "kiln_range_int64", "'out' is NULL");
  EXPECT_ERROR(kiln_range_int64(U, 0, 3, 0, I64), INVALID, "range", "delta is 0");
  EXPECT_ERROR(kiln_range_int64(U, 0, big, big / 4, I32), INVALID, "range", "int32");
  EXPECT_ERROR(kiln_range_int64(U, 0, 3, 1, B8), INVALID, "range", "dtype bool is not supported");
  /* The double entry points refuse NaN and out-of-range values instead of converting them. */
  EXPECT_ERROR(kiln_range(U, 0, NAN, 1, I64), INVALID, "range", "finite");
  EXPECT_ERROR(kiln_fill(U, d1, 1, NAN, I32), INVALID, "fill", "int32");
  EXPECT_ERROR(kiln_fill(U, d1, 1, 1e30, I64), INVALID, "fill", "int64");

  it = keep(RUN(kiln_zeros(&o, d2, 1, U8)));
  for (c = 0; c < sizeof ops / sizeof ops[0]; ++c) {
    for (i = 0; i < 6; ++i) {
      const double v = x[i];
      double r = 0;
      switch (c) {
        case 0: r = log1p(v); break;
        case 1: r = expm1(v); break;
        case 2: r = floor(v); break;
        case 3: r = nearbyint(v); break; /* ties to even: -0.5 -> -0, 0.5 -> 0, 2.5 -> 2, 3.5 -> 4 */
        case 4: r = v > 0 ? 1 : v < 0 ? -1 : 0; break;
        case 5: r = sin(v); break;
        case 6: r = cos(v); break;
        case 7: r = v < 0 ? 0 : v > 6 ? 6 : v; break;
        default: r = v > 0 ? scale * v : scale * alpha * expm1(v); break;
      }
      want[i] = (float)r;
    }
    expect_f32(RUN(ops[c].fn(&o, xt)), 1, d6, want, 2e-6);
    sprintf(fn, "kiln_%s", ops[c].name);
    sprintf(op, "%s:", ops[c].name);
    EXPECT_ERROR(ops[c].fn(NULL, xt), INVALID, fn, "'out' is NULL");
    EXPECT_ERROR(ops[c].fn(U, NULL), INVALID, fn, "'x' is NULL");
    EXPECT_ERROR(ops[c].fn(U, it), INVALID, op, "expected float32");
  }
  release_kept();
}

/* ------------------------------------------- variable identity, multi-target gradients */

/* POSIX file mappings for the adopted-buffer checks (the target defines _POSIX_C_SOURCE). */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

/* A temporary file of n floats, all equal to value, mapped with prot; *fd is open. */
static float *map_floats(size_t n, float value, int prot, int *fd) {
  char path[] = "/tmp/kiln_capi_mapXXXXXX";
  size_t i;
  void *p;
  *fd = mkstemp(path);
  if (*fd < 0) return NULL;
  unlink(path);
  for (i = 0; i < n; ++i)
    if (write(*fd, &value, sizeof value) != (ssize_t)sizeof value) return NULL;
  p = mmap(NULL, n * sizeof(float), prot, MAP_SHARED, *fd, 0);
  return p == MAP_FAILED ? NULL : (float *)p;
}

/* A variable copies its initial value: assignments never write into an adopted buffer, be it
 * a read-only mapping (which would fault) or a writable one (which would change the file). */
static void test_variable_over_mapped_buffer(int prot) {
  int64_t d4[1] = {4};
  float one4[4] = {1, 1, 1, 1}, three4[4] = {3, 3, 3, 3}, on_disk = 0;
  kiln_tensor *t = NULL, *o = NULL;
  kiln_variable *v = NULL;
  int fd = -1;
  float *map = map_floats(4, 2.0f, prot, &fd);
  CHECK(map != NULL);
  if (!map) return;
  EXPECT_OK(kiln_tensor_create_from_buffer(&t, F32, d4, 1, map, 4 * sizeof(float), NULL, NULL));
  EXPECT_OK(kiln_variable_create(&v, "mapped", t, true));
  kiln_tensor_free(t); /* the variable is all that is left */
  EXPECT_OK(kiln_variable_assign_add(v, f32(1, d4, one4)));
  expect_f32(RUN(kiln_variable_read(&o, v)), 1, d4, three4, 0);
  release_kept();
  EXPECT_OK(kiln_variable_assign(v, f32(1, d4, one4)));
  EXPECT_OK(kiln_variable_assign_sub(v, f32(1, d4, one4)));
  CHECK(map[0] == 2.0f && map[3] == 2.0f);
  CHECK(pread(fd, &on_disk, sizeof on_disk, 0) == (ssize_t)sizeof on_disk && on_disk == 2.0f);
  kiln_variable_free(v);
  munmap(map, 4 * sizeof(float));
  close(fd);
  release_kept();
}

static void test_variable_identity(void) {
  int64_t d2[1] = {2};
  float xv[2] = {1, 2}, three[2] = {3, 3}, five[2] = {5, 5}, k3[1] = {3}, k5[1] = {5};
  float sum_g[2] = {2 + 1, 4 + 2}, ones2[2] = {1, 1};
  int32_t iv[2] = {1, 1};
  kiln_tensor *t = f32(1, d2, xv), *o = NULL, *loss, *l1, *l2, *x = f32(1, d2, xv);
  kiln_tensor *grads[2] = {NULL, NULL};
  const kiln_tensor *targets[2], *srcs[2], *ogs[2];
  const kiln_variable *vars[2];
  kiln_variable *v1 = NULL, *v2 = NULL;
  kiln_tape *tape = NULL;
  kiln_tape_gradient_options opts;

  /* Two variables from one tensor: distinct, stable ids and independent gradients. */
  EXPECT_OK(kiln_variable_create(&v1, "v1", t, true));
  EXPECT_OK(kiln_variable_create(&v2, "v2", t, true));
  CHECK(kiln_variable_get_id(v1) != 0 && kiln_variable_get_id(v1) != kiln_variable_get_id(v2));
  CHECK(kiln_variable_get_id(NULL) == 0);
  vars[0] = v1, vars[1] = v2;
  EXPECT_OK(kiln_tape_create(&tape, false, true));
  l1 = keep(RUN(kiln_sum(&o, keep(RUN(kiln_mul(&o, keep(RUN(kiln_variable_read(&o, v1))), f32(0, NULL, k3)))),
                         NULL, 0, false)));
  l2 = keep(RUN(kiln_sum(&o, keep(RUN(kiln_mul(&o, keep(RUN(kiln_variable_read(&o, v2))), f32(0, NULL, k5)))),
                         NULL, 0, false)));
  loss = keep(RUN(kiln_add(&o, l1, l2)));
  EXPECT_OK(kiln_tape_stop(tape));
  {
    const uint64_t id = kiln_variable_get_id(v1);
    EXPECT_OK(kiln_variable_assign_add(v1, f32(1, d2, ones2)));
    CHECK(kiln_variable_get_id(v1) == id);
  }
  EXPECT_OK(kiln_tape_gradient_variables(grads, tape, loss, vars, 2, KILN_UNCONNECTED_NONE));
  expect_f32(grads[0], 1, d2, three, 0);
  expect_f32(grads[1], 1, d2, five, 0);
  grads[0] = grads[1] = NULL;
  kiln_tape_free(tape);

  /* A list of targets, sources mixing a tensor and a variable: gradients summed over targets. */
  EXPECT_OK(kiln_tape_create(&tape, false, true));
  EXPECT_OK(kiln_tape_watch(tape, x));
  l1 = keep(RUN(kiln_sum(&o, keep(RUN(kiln_mul(&o, x, x))), NULL, 0, false))); /* d/dx: 2x */
  l2 = keep(RUN(kiln_mul(&o, x, keep(RUN(kiln_variable_read(&o, v2))))));      /* d/dx: v2 = [1, 2] */
  EXPECT_OK(kiln_tape_stop(tape));
  targets[0] = l1, targets[1] = l2;
  srcs[0] = x, srcs[1] = NULL;
  vars[0] = NULL, vars[1] = v2;
  ogs[0] = NULL, ogs[1] = make(I32, 1, d2, iv);
  kiln_tape_gradient_options_init(NULL);
  kiln_tape_gradient_options_init(&opts);
  CHECK(opts.struct_size == sizeof opts && opts.num_targets == 0 &&
        opts.unconnected == KILN_UNCONNECTED_NONE);
  opts.targets = targets, opts.num_targets = 2;
  opts.sources = srcs, opts.variables = vars, opts.num_sources = 2;
  /* Bad input first; none of it spends the non-persistent tape. */
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, NULL, &opts), INVALID, "kiln_tape_gradient_multi",
               "'tape' is NULL");
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, tape, NULL), INVALID, "kiln_tape_gradient_multi",
               "'options' is NULL");
  EXPECT_ERROR(kiln_tape_gradient_multi(NULL, tape, &opts), INVALID, "kiln_tape_gradient_multi",
               "'out_grads' is NULL");
  opts.output_gradients = ogs; /* an int32 output gradient for a float32 target */
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, tape, &opts), INVALID, "output gradient int32[2]",
               "does not match target float32[2]");
  opts.output_gradients = NULL;
  opts.struct_size = 8;
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, tape, &opts), INVALID, "struct_size is 8",
               "kiln_tape_gradient_options_init");
  opts.struct_size = sizeof opts + 16; /* a newer caller's larger struct passes the size check */
  opts.unconnected = 5;
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, tape, &opts), INVALID, "kiln_tape_gradient_multi",
               "unconnected 5");
  opts.unconnected = KILN_UNCONNECTED_NONE;
  vars[0] = v1; /* both a tensor and a variable for source 0 */
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, tape, &opts), INVALID, "source 0 has both", NULL);
  vars[0] = NULL, srcs[1] = NULL, vars[1] = NULL;
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, tape, &opts), INVALID, "source 1 has neither", NULL);
  vars[1] = v2;
  targets[1] = NULL;
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, tape, &opts), INVALID, "options->targets[1] is NULL", NULL);
  targets[1] = l2;
  opts.targets = NULL;
  EXPECT_ERROR(kiln_tape_gradient_multi(grads, tape, &opts), INVALID, "'options->targets' is NULL", NULL);
  opts.targets = targets;
  /* kiln_tape_gradient_with_output rejects an int32 output gradient without spending the tape either. */
  srcs[1] = x;
  EXPECT_ERROR(kiln_tape_gradient_with_output(grads, tape, l2, ogs[1], srcs, 1, KILN_UNCONNECTED_NONE),
               INVALID, "output gradient int32[2]", NULL);
  srcs[1] = NULL;
  CHECK(grads[0] == NULL && grads[1] == NULL);
  EXPECT_OK(kiln_tape_gradient_multi(grads, tape, &opts));
  expect_f32(grads[0], 1, d2, sum_g, 1e-6);
  expect_f32(grads[1], 1, d2, xv, 0);
  grads[0] = grads[1] = NULL;
  kiln_tape_free(tape);
  kiln_variable_free(v1);
  kiln_variable_free(v2);
  release_kept();

  test_variable_over_mapped_buffer(PROT_READ);
  test_variable_over_mapped_buffer(PROT_READ | PROT_WRITE);
}

/* ------------------------------------------ stateless randomness, dropout options */

static void test_stateless_random_and_dropout_options(void) {
  int64_t d1000[1] = {1000}, d46[2] = {4, 6}, noise_rows[2] = {4, 1}, noise_any[2] = {-1, 1},
          bad_noise[2] = {4, 3};
  float xv[24];
  kiln_tensor *o = NULL, *a, *b, *x, *y, *y2;
  kiln_dropout_options opts;
  int i, r, c, rows_ok = 1;
  for (i = 0; i < 24; ++i) xv[i] = 1.0f + (float)i;
  x = f32(2, d46, xv);

  /* The same seed pair gives the same values whatever the global seed; another pair differs. */
  kiln_set_seed(1);
  a = keep(RUN(kiln_stateless_random_uniform(&o, d1000, 1, -1.0f, 2.0f, 3, 4)));
  kiln_set_seed(2);
  b = keep(RUN(kiln_stateless_random_uniform(&o, d1000, 1, -1.0f, 2.0f, 3, 4)));
  CHECK(same_values(a, b));
  CHECK(!same_values(a, keep(RUN(kiln_stateless_random_uniform(&o, d1000, 1, -1.0f, 2.0f, 3, 5)))));
  a = keep(RUN(kiln_stateless_random_normal(&o, d1000, 1, 0.0f, 1.0f, -7, 8)));
  CHECK(same_values(a, keep(RUN(kiln_stateless_random_normal(&o, d1000, 1, 0.0f, 1.0f, -7, 8)))));
  a = keep(RUN(kiln_stateless_truncated_normal(&o, d1000, 1, 0.0f, 1.0f, 9, 9)));
  CHECK(same_values(a, keep(RUN(kiln_stateless_truncated_normal(&o, d1000, 1, 0.0f, 1.0f, 9, 9)))));
  EXPECT_ERROR(kiln_stateless_random_uniform(NULL, d1000, 1, 0, 1, 1, 2), INVALID,
               "kiln_stateless_random_uniform", "'out' is NULL");
  EXPECT_ERROR(kiln_stateless_random_uniform(U, d1000, 1, 2, 1, 1, 2), INVALID, "stateless_random_uniform",
               "minval 2 is greater than maxval 1");
  EXPECT_ERROR(kiln_stateless_random_normal(U, d1000, 1, 0, -1, 1, 2), INVALID, "stateless_random_normal",
               "stddev is -1");
  EXPECT_ERROR(kiln_stateless_truncated_normal(U, NULL, 1, 0, 1, 1, 2), INVALID,
               "kiln_stateless_truncated_normal", NULL);

  /* Dropout options: defaults, noise_shape (rows kept or dropped whole), stateless masks. */
  kiln_dropout_options_init(NULL);
  kiln_dropout_options_init(&opts);
  CHECK(opts.struct_size == sizeof opts && opts.rate == 0.5f && opts.training && opts.seed < 0 &&
        opts.noise_shape == NULL && !opts.stateless);
  opts.noise_shape = noise_rows, opts.noise_rank = 2;
  y = keep(RUN(kiln_dropout_with_options(&o, x, &opts)));
  if (y)
    for (r = 0; r < 4; ++r)
      for (c = 0; c < 6; ++c)
        if (fdata(y)[r * 6 + c] != (fdata(y)[r * 6] == 0 ? 0.0f : 2.0f * xv[r * 6 + c])) rows_ok = 0;
  CHECK(y && rows_ok);
  opts.stateless = true, opts.stateless_seed[0] = 11, opts.stateless_seed[1] = 12;
  opts.noise_shape = noise_any;
  y = keep(RUN(kiln_dropout_with_options(&o, x, &opts)));
  opts.noise_shape = noise_rows;
  y2 = keep(RUN(kiln_dropout_with_options(&o, x, &opts)));
  CHECK(same_values(y, y2)); /* -1 takes x's dim; the same seed, the same mask */
  opts.training = false;     /* ignored when stateless */
  CHECK(same_values(y, keep(RUN(kiln_dropout_with_options(&o, x, &opts)))));
  opts.stateless = false;
  CHECK(same_values(x, keep(RUN(kiln_dropout_with_options(&o, x, &opts))))); /* not training: x */
  opts.training = true;
  EXPECT_ERROR(kiln_dropout_with_options(NULL, x, &opts), INVALID, "kiln_dropout_with_options",
               "'out' is NULL");
  EXPECT_ERROR(kiln_dropout_with_options(U, NULL, &opts), INVALID, "kiln_dropout_with_options",
               "'x' is NULL");
  EXPECT_ERROR(kiln_dropout_with_options(U, x, NULL), INVALID, "kiln_dropout_with_options",
               "'options' is NULL");
  opts.noise_shape = bad_noise;
  EXPECT_ERROR(kiln_dropout_with_options(U, x, &opts), INVALID,
               "dropout: noise_shape [4, 3] does not broadcast", "dim 1");
  opts.noise_shape = NULL;
  EXPECT_ERROR(kiln_dropout_with_options(U, x, &opts), INVALID, "'options->noise_shape' is NULL", NULL);
  opts.noise_shape = noise_rows, opts.noise_rank = 1;
  EXPECT_ERROR(kiln_dropout_with_options(U, x, &opts), INVALID, "noise_shape [4] has rank 1", NULL);
  opts.noise_rank = 2, opts.rate = 1.0f;
  EXPECT_ERROR(kiln_dropout_with_options(U, x, &opts), INVALID, "dropout: rate is 1", NULL);
  opts.rate = 0.5f, opts.struct_size = 4;
  EXPECT_ERROR(kiln_dropout_with_options(U, x, &opts), INVALID, "struct_size is 4", NULL);
  opts.struct_size = sizeof opts + 16; /* a newer caller's larger struct: the known fields are read */
  CHECK(keep(RUN(kiln_dropout_with_options(&o, x, &opts))) != NULL);
  release_kept();
}

int main(void) {
  test_library();
  test_tensors();
  test_creation();
  test_random();
  test_random_dtypes();
  test_binary();
  test_unary();
  test_where_cast();
  test_matmul();
  test_reductions();
  test_softmax();
  test_norms();
  test_layer_norm_axes();
  test_options_structs();
  test_conv_pool();
  test_conv_variants();
  test_conv3d_pool3d();
  test_image_resize();
  test_image_colour();
  test_image_affine_transform();
  test_image_perspective_transform();
  test_random_gamma_beta_shuffle();
  test_reshape_transpose();
  test_concat_split_slice();
  test_stack_and_dims();
  test_indexing();
  test_indexing_nd();
  test_variables();
  test_tapes();
  test_out_of_range_enums();
  test_losses();
  test_ctc_loss();
  test_ctc_decode();
  test_reduce_extra();
  test_floor_div();
  test_einsum();
  test_int64_creation_and_more_unary();
  test_variable_identity();
  test_stateless_random_and_dropout_options();
  return test_summary();
}
