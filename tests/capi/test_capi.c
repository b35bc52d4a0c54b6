/* C API tests: a plain C99 program that links only libkiln.so.
 * Prints "N passed, N failed" and exits non-zero on any failure. */
#include "capi_test_util.h"

static kiln_tensor *tensor2(int64_t rows, int64_t cols, const float *data) {
  int64_t dims[2];
  kiln_tensor *t = NULL;
  dims[0] = rows;
  dims[1] = cols;
  if (!EXPECT_OK(
          kiln_tensor_create(&t, KILN_DTYPE_FLOAT32, dims, 2, data, (size_t)(rows * cols) * sizeof(float))))
    return NULL;
  return t;
}

static void test_version(void) {
  CHECK(strlen(kiln_version()) > 0);
  CHECK(strcmp(kiln_version(), KILN_VERSION_STRING) == 0);
  CHECK(kiln_abi_version() == KILN_ABI_VERSION);
  CHECK(kiln_status_get_code(NULL) == KILN_STATUS_OK);
  kiln_status_free(NULL);
}

static void test_tensor_roundtrip(void) {
  float v[6] = {1, 2, 3, 4, 5, 6}, back[6];
  kiln_tensor *t = tensor2(2, 3, v);
  CHECK(t != NULL);
  if (!t) return;
  CHECK(kiln_tensor_get_dtype(t) == KILN_DTYPE_FLOAT32);
  CHECK(kiln_tensor_get_rank(t) == 2);
  CHECK(kiln_tensor_get_dims(t)[0] == 2 && kiln_tensor_get_dims(t)[1] == 3);
  CHECK(kiln_tensor_get_num_elements(t) == 6);
  CHECK(kiln_tensor_get_byte_size(t) == sizeof v);
  EXPECT_OK(kiln_tensor_copy_to(t, back, sizeof back));
  CHECK(memcmp(v, back, sizeof v) == 0);
  v[0] = 100; /* a copy was taken */
  CHECK(((const float *)kiln_tensor_get_data(t))[0] == 1.0f);
  kiln_tensor_free(t);
}

static int g_deleted = 0;
static void count_delete(void *data, void *user_data) {
  (void)data;
  g_deleted += *(int *)user_data;
}

static void test_zero_copy(void) {
  static float buf[4] = {1, 2, 3, 4};
  int64_t dims[1] = {4};
  int one = 1;
  kiln_tensor *t = NULL, *u = NULL;
  g_deleted = 0;
  EXPECT_OK(
      kiln_tensor_create_from_buffer(&t, KILN_DTYPE_FLOAT32, dims, 1, buf, sizeof buf, count_delete, &one));
  CHECK(kiln_tensor_get_data(t) == (const void *)buf);
  EXPECT_OK(kiln_tensor_clone(&u, t));
  kiln_tensor_free(t);
  CHECK(g_deleted == 0); /* the clone still holds the buffer */
  kiln_tensor_free(u);
  CHECK(g_deleted == 1);
  /* A failed adoption does not call the deleter. */
  EXPECT_ERROR(kiln_tensor_create_from_buffer(&t, KILN_DTYPE_FLOAT32, dims, 1, buf, 3, count_delete, &one),
               KILN_STATUS_INVALID_ARGUMENT, "16 bytes", "got 3");
  CHECK(g_deleted == 1);
}

static void test_bad_input(void) {
  float v[6] = {0};
  int64_t dims[2] = {2, 3}, neg[1] = {-2};
  kiln_tensor *a = tensor2(2, 3, v), *b = tensor2(3, 2, v), *out = NULL;
  EXPECT_ERROR(kiln_tensor_create(NULL, KILN_DTYPE_FLOAT32, dims, 2, v, sizeof v), KILN_STATUS_INVALID_ARGUMENT,
               "out", "NULL");
  EXPECT_ERROR(kiln_tensor_create(&out, (kiln_dtype)99, dims, 2, v, sizeof v), KILN_STATUS_INVALID_ARGUMENT,
               "dtype 99", NULL);
  EXPECT_ERROR(kiln_tensor_create(&out, KILN_DTYPE_FLOAT32, dims, 2, v, 5), KILN_STATUS_INVALID_ARGUMENT,
               "24 bytes", "got 5");
  EXPECT_ERROR(kiln_tensor_create(&out, KILN_DTYPE_FLOAT32, neg, 1, v, 0), KILN_STATUS_INVALID_ARGUMENT,
               "negative", NULL);
  EXPECT_ERROR(kiln_add(&out, a, NULL), KILN_STATUS_INVALID_ARGUMENT, "kiln_add", "'b' is NULL");
  EXPECT_ERROR(kiln_add(&out, a, b), KILN_STATUS_INVALID_ARGUMENT, "[2, 3]", "[3, 2]");
  EXPECT_ERROR(kiln_matmul(&out, a, a, false, false), KILN_STATUS_INVALID_ARGUMENT, "matmul", "[2, 3]");
  EXPECT_ERROR(kiln_tape_stop(NULL), KILN_STATUS_INVALID_ARGUMENT, "tape", "NULL");
  CHECK(out == NULL); /* failed calls leave out untouched */
  CHECK(kiln_tensor_get_rank(NULL) == -1);
  CHECK(kiln_tensor_get_data(NULL) == NULL);
  kiln_tensor_free(a);
  kiln_tensor_free(b);
}

/* A two-layer network: loss = mean((tanh(x W1 + b1) W2 + b2 - t)^2). */
static kiln_status *two_layer_loss(kiln_tensor **loss, kiln_tensor *x, kiln_tensor *t, kiln_tensor *const *p) {
  kiln_tensor *h0 = NULL, *h1 = NULL, *h = NULL, *y0 = NULL, *y = NULL, *d = NULL, *sq = NULL;
  kiln_status *st = kiln_matmul(&h0, x, p[0], false, false);
  if (!st) st = kiln_add(&h1, h0, p[1]);
  if (!st) st = kiln_tanh(&h, h1);
  if (!st) st = kiln_matmul(&y0, h, p[2], false, false);
  if (!st) st = kiln_add(&y, y0, p[3]);
  if (!st) st = kiln_sub(&d, y, t);
  if (!st) st = kiln_square(&sq, d);
  if (!st) st = kiln_mean(loss, sq, NULL, 0, false);
  kiln_tensor_free(h0);
  kiln_tensor_free(h1);
  kiln_tensor_free(h);
  kiln_tensor_free(y0);
  kiln_tensor_free(y);
  kiln_tensor_free(d);
  kiln_tensor_free(sq);
  return st;
}

static float scalar_of(const kiln_tensor *t) { return *(const float *)kiln_tensor_get_data(t); }

static void test_two_layer_gradient(void) {
  int64_t shapes[4][2] = {{3, 5}, {1, 5}, {5, 2}, {1, 2}};
  kiln_tensor *x = NULL, *t = NULL, *init[4] = {0}, *loss = NULL, *grads[4] = {0};
  kiln_variable *vars[4] = {0};
  kiln_tape *tape = NULL;
  int64_t xdims[2] = {4, 3}, tdims[2] = {4, 2};
  int i;
  const char *names[4] = {"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"};
  if (!EXPECT_OK(kiln_random_normal(&x, xdims, 2, 0.0f, 1.0f, 1))) return;
  if (!EXPECT_OK(kiln_random_normal(&t, tdims, 2, 0.0f, 1.0f, 2))) return;
  for (i = 0; i < 4; ++i) {
    if (!EXPECT_OK(kiln_random_normal(&init[i], shapes[i], 2, 0.0f, 0.5f, 10 + i))) return;
    if (!EXPECT_OK(kiln_variable_create(&vars[i], names[i], init[i], true))) return;
  }
  {
    kiln_tensor *p[4] = {0};
    for (i = 0; i < 4; ++i) EXPECT_OK(kiln_variable_read(&p[i], vars[i]));
    EXPECT_OK(kiln_tape_create(&tape, false, true));
    for (i = 0; i < 4; ++i) { /* read again under the tape: watched */
      kiln_tensor_free(p[i]);
      p[i] = NULL;
      EXPECT_OK(kiln_variable_read(&p[i], vars[i]));
    }
    EXPECT_OK(two_layer_loss(&loss, x, t, p));
    EXPECT_OK(kiln_tape_stop(tape));
    EXPECT_OK(kiln_tape_gradient_variables(grads, tape, loss, (const kiln_variable *const *)vars, 4,
                                          KILN_UNCONNECTED_NONE));
    /* Central differences through the same C API. */
    for (i = 0; i < 4; ++i) {
      int64_t n = kiln_tensor_get_num_elements(p[i]), k;
      float *buf = malloc((size_t)n * sizeof(float));
      memcpy(buf, kiln_tensor_get_data(p[i]), (size_t)n * sizeof(float));
      CHECK(grads[i] != NULL && kiln_tensor_get_num_elements(grads[i]) == n);
      for (k = 0; k < n && grads[i]; ++k) {
        const float eps = 1e-2f, orig = buf[k];
        float up, down, numeric, analytic;
        kiln_tensor *q[4], *l = NULL;
        int j;
        for (j = 0; j < 4; ++j) q[j] = p[j];
        buf[k] = orig + eps;
        q[i] = tensor2(shapes[i][0], shapes[i][1], buf);
        EXPECT_OK(two_layer_loss(&l, x, t, q));
        up = scalar_of(l);
        kiln_tensor_free(l);
        kiln_tensor_free(q[i]);
        buf[k] = orig - eps;
        q[i] = tensor2(shapes[i][0], shapes[i][1], buf);
        EXPECT_OK(two_layer_loss(&l, x, t, q));
        down = scalar_of(l);
        kiln_tensor_free(l);
        kiln_tensor_free(q[i]);
        buf[k] = orig;
        numeric = (up - down) / (2 * eps);
        analytic = ((const float *)kiln_tensor_get_data(grads[i]))[k];
        if (fabsf(numeric - analytic) > 2e-3f + 2e-2f * fabsf(numeric)) {
          fprintf(stderr, "%s[%ld]: analytic %g vs numeric %g\n", names[i], (long)k, analytic, numeric);
          ++g_failed;
        } else {
          ++g_passed;
        }
      }
      free(buf);
    }
    for (i = 0; i < 4; ++i) kiln_tensor_free(p[i]);
  }
  /* A second gradient call on a non-persistent tape is an error. */
  EXPECT_ERROR(kiln_tape_gradient_variables(grads, tape, loss, (const kiln_variable *const *)vars, 4,
                                            KILN_UNCONNECTED_NONE),
               KILN_STATUS_FAILED_PRECONDITION, "only be called once", NULL);
  for (i = 0; i < 4; ++i) {
    kiln_tensor_free(grads[i]);
    kiln_tensor_free(init[i]);
    kiln_variable_free(vars[i]);
  }
  kiln_tensor_free(loss);
  kiln_tensor_free(x);
  kiln_tensor_free(t);
  kiln_tape_free(tape);
}

static void test_second_order(void) {
  float xv[3] = {-1.0f, 0.5f, 2.0f};
  int64_t dims[1] = {3};
  kiln_tensor *x = NULL, *x2 = NULL, *x3 = NULL, *dy = NULL, *d2y = NULL;
  kiln_tape *outer = NULL, *inner = NULL;
  int i;
  EXPECT_OK(kiln_tensor_create(&x, KILN_DTYPE_FLOAT32, dims, 1, xv, sizeof xv));
  EXPECT_OK(kiln_tape_create(&outer, false, true));
  EXPECT_OK(kiln_tape_watch(outer, x));
  EXPECT_OK(kiln_tape_create(&inner, false, true));
  EXPECT_OK(kiln_tape_watch(inner, x));
  EXPECT_OK(kiln_mul(&x2, x, x));
  EXPECT_OK(kiln_mul(&x3, x2, x));
  EXPECT_OK(kiln_tape_stop(inner));
  EXPECT_OK(kiln_tape_gradient(&dy, inner, x3, (const kiln_tensor *const *)&x, 1, KILN_UNCONNECTED_NONE));
  EXPECT_OK(kiln_tape_stop(outer));
  EXPECT_OK(kiln_tape_gradient(&d2y, outer, dy, (const kiln_tensor *const *)&x, 1, KILN_UNCONNECTED_NONE));
  for (i = 0; i < 3 && dy && d2y; ++i) {
    CHECK(fabsf(((const float *)kiln_tensor_get_data(dy))[i] - 3 * xv[i] * xv[i]) < 1e-5f);
    CHECK(fabsf(((const float *)kiln_tensor_get_data(d2y))[i] - 6 * xv[i]) < 1e-5f);
  }
  kiln_tensor_free(x);
  kiln_tensor_free(x2);
  kiln_tensor_free(x3);
  kiln_tensor_free(dy);
  kiln_tensor_free(d2y);
  kiln_tape_free(inner);
  kiln_tape_free(outer);
}

/* tape.jacobian / batch_jacobian / reset through the C API: y = x * x gives diag(2x). */
static void test_jacobian_and_reset(void) {
  const float xv[4] = {1, -2, 3, 0.5f};
  kiln_tensor *x = tensor2(2, 2, xv), *y = NULL, *j[2] = {NULL, NULL}, *bj = NULL, *y2 = NULL, *g = NULL;
  kiln_tensor *two[2];
  kiln_tape *tape = NULL;
  kiln_tape_gradient_options o;
  int a, b;
  if (!x || !EXPECT_OK(kiln_tape_create(&tape, true, true))) return;
  EXPECT_OK(kiln_tape_watch(tape, x));
  EXPECT_OK(kiln_mul(&y, x, x));
  EXPECT_OK(kiln_tape_stop(tape));
  kiln_tape_gradient_options_init(&o);
  o.targets = (const kiln_tensor *const *)&y;
  o.num_targets = 1;
  o.sources = (const kiln_tensor *const *)&x;
  o.num_sources = 1;
  if (EXPECT_OK(kiln_tape_jacobian(j, tape, &o)) && j[0]) {
    CHECK(kiln_tensor_get_rank(j[0]) == 4 && kiln_tensor_get_num_elements(j[0]) == 16);
    for (a = 0; a < 4; ++a)
      for (b = 0; b < 4; ++b)
        CHECK(((const float *)kiln_tensor_get_data(j[0]))[a * 4 + b] == (a == b ? 2 * xv[a] : 0.0f));
  }
  if (EXPECT_OK(kiln_tape_batch_jacobian(&bj, tape, y, x, KILN_UNCONNECTED_NONE)) && bj) {
    CHECK(kiln_tensor_get_rank(bj) == 3 && kiln_tensor_get_num_elements(bj) == 8);
    for (a = 0; a < 2; ++a) /* bj[row, i, k] = 2 x[row, i] when i == k */
      for (b = 0; b < 4; ++b)
        CHECK(((const float *)kiln_tensor_get_data(bj))[a * 4 + b] ==
              (b / 2 == b % 2 ? 2 * xv[a * 2 + b / 2] : 0.0f));
  }
  /* Bad input: two targets, output gradients, NULL handles, a batch mismatch. */
  two[0] = y;
  two[1] = y;
  o.targets = (const kiln_tensor *const *)two;
  o.num_targets = 2;
  EXPECT_ERROR(kiln_tape_jacobian(j + 1, tape, &o), KILN_STATUS_INVALID_ARGUMENT, "num_targets",
               "exactly one");
  o.num_targets = 1;
  o.output_gradients = (const kiln_tensor *const *)&y;
  EXPECT_ERROR(kiln_tape_jacobian(j + 1, tape, &o), KILN_STATUS_INVALID_ARGUMENT, "output_gradients", NULL);
  EXPECT_ERROR(kiln_tape_jacobian(j + 1, NULL, &o), KILN_STATUS_INVALID_ARGUMENT, "tape", "NULL");
  EXPECT_ERROR(kiln_tape_batch_jacobian(&bj, tape, y, NULL, KILN_UNCONNECTED_NONE),
               KILN_STATUS_INVALID_ARGUMENT, "source", NULL);
  EXPECT_ERROR(kiln_tape_batch_jacobian(NULL, tape, y, x, KILN_UNCONNECTED_NONE),
               KILN_STATUS_INVALID_ARGUMENT, "out", NULL);
  EXPECT_ERROR(kiln_tape_reset(NULL), KILN_STATUS_INVALID_ARGUMENT, "tape", "NULL");
  CHECK(j[1] == NULL);
  /* reset: what was recorded and watched is forgotten. */
  EXPECT_OK(kiln_tape_reset(tape));
  EXPECT_OK(kiln_tape_start(tape));
  EXPECT_OK(kiln_mul(&y2, x, x));
  EXPECT_OK(kiln_tape_stop(tape));
  EXPECT_OK(kiln_tape_gradient(&g, tape, y2, (const kiln_tensor *const *)&x, 1, KILN_UNCONNECTED_NONE));
  CHECK(g == NULL);
  kiln_tensor_free(g);
  kiln_tensor_free(y2);
  kiln_tensor_free(bj);
  kiln_tensor_free(j[0]);
  kiln_tensor_free(y);
  kiln_tensor_free(x);
  kiln_tape_free(tape);
}

static void test_primitive_cache_steady(void) {
  int64_t dims[2] = {64, 64};
  kiln_tensor *a = NULL, *b = NULL;
  int64_t misses_before = 0, misses_after = 0;
  int i;
  EXPECT_OK(kiln_random_uniform(&a, dims, 2, -1, 1, 3));
  EXPECT_OK(kiln_random_uniform(&b, dims, 2, -1, 1, 4));
  for (i = 0; i < 1000; ++i) {
    kiln_tensor *c = NULL;
    if (!EXPECT_OK(kiln_matmul(&c, a, b, false, false))) break;
    if (i == 0) kiln_primitive_cache_stats(NULL, &misses_before, NULL);
    kiln_tensor_free(c);
  }
  kiln_primitive_cache_stats(NULL, &misses_after, NULL);
  CHECK(misses_before > 0);
  CHECK(misses_after == misses_before);
  kiln_tensor_free(a);
  kiln_tensor_free(b);
}

/* A one-process communicator over a C table: created and freed (destroy runs once); a bad rank,
 * size or table is INVALID_ARGUMENT and leaves *out as it was. */
static kiln_status *no_allreduce(void *data, size_t count, kiln_dtype dtype, void *user) {
  (void)data;
  (void)count;
  (void)dtype;
  (void)user;
  return NULL;
}
static kiln_status *no_broadcast(void *data, size_t bytes, int root, void *user) {
  (void)data;
  (void)bytes;
  (void)root;
  (void)user;
  return NULL;
}
static void count_destroy(void *user) { ++*(int *)user; }

static void test_communicator_create(void) {
  kiln_communicator_table t;
  kiln_communicator *c = NULL, *const sentinel = (kiln_communicator *)&t;
  int destroyed = 0;
  memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  t.allreduce_sum = no_allreduce;
  t.broadcast = no_broadcast;
  t.destroy = count_destroy;
  EXPECT_OK(kiln_communicator_create(&c, 0, 1, &t, &destroyed));
  CHECK(kiln_communicator_get_rank(c) == 0 && kiln_communicator_get_size(c) == 1);
  kiln_communicator_free(c);
  CHECK(destroyed == 1);
  c = sentinel;
  EXPECT_ERROR(kiln_communicator_create(&c, 1, 1, &t, &destroyed), KILN_STATUS_INVALID_ARGUMENT,
               "rank 1 of size 1", NULL);
  EXPECT_ERROR(kiln_communicator_create(&c, 0, 1, NULL, &destroyed), KILN_STATUS_INVALID_ARGUMENT,
               "'table' is NULL", NULL);
  t.struct_size = 1;
  EXPECT_ERROR(kiln_communicator_create(&c, 0, 1, &t, &destroyed), KILN_STATUS_INVALID_ARGUMENT,
               "struct_size is 1", NULL);
  CHECK(c == sentinel);
  CHECK(destroyed == 1);
}

int main(void) {
  test_version();
  test_communicator_create();
  test_tensor_roundtrip();
  test_zero_copy();
  test_bad_input();
  test_two_layer_gradient();
  test_second_order();
  test_jacobian_and_reset();
  test_primitive_cache_steady();
  return test_summary();
}
