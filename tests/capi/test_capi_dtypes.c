/* float64 and bfloat16 through the elementwise entry points, from plain C99 against the
 * shared library alone: values, dtypes kept, truediv's promotion of integers to float64,
 * gradients on a tape in float64, creation ops, and errors naming the entry point.
 * Prints "N passed, N failed" and exits non-zero on any failure. */
#include "capi_test_util.h"

#define F64 KILN_DTYPE_FLOAT64

static kiln_tensor *f64(const double *v, int64_t n) {
  kiln_tensor *t = NULL;
  EXPECT_OK(kiln_tensor_create(&t, F64, &n, 1, v, (size_t)n * sizeof(double)));
  return t;
}

static const double *d64(const kiln_tensor *t) { return (const double *)kiln_tensor_get_data(t); }

static void test_binary_and_unary_float64(void) {
  const double av[3] = {1.0, -2.5, 0.1}, bv[3] = {3.0, 0.5, 0.2};
  kiln_tensor *a = f64(av, 3), *b = f64(bv, 3), *o = NULL;
  EXPECT_OK(kiln_add(&o, a, b));
  CHECK(kiln_tensor_get_dtype(o) == F64);
  CHECK(d64(o)[2] == 0.1 + 0.2); /* double arithmetic, not float32 */
  kiln_tensor_free(o);
  EXPECT_OK(kiln_div(&o, a, b));
  CHECK(d64(o)[0] == 1.0 / 3.0);
  kiln_tensor_free(o);
  EXPECT_OK(kiln_pow(&o, b, a));
  CHECK(fabs(d64(o)[0] - 3.0) < 1e-15 && d64(o)[2] == pow(0.2, 0.1));
  kiln_tensor_free(o);
  EXPECT_OK(kiln_exp(&o, a));
  CHECK(fabs(d64(o)[0] - 2.718281828459045) < 1e-15);
  kiln_tensor_free(o);
  EXPECT_OK(kiln_gelu(&o, a, false));
  CHECK(kiln_tensor_get_dtype(o) == F64 && fabs(d64(o)[0] - 0.8413447460685429) < 1e-15);
  kiln_tensor_free(o);
  EXPECT_OK(kiln_leaky_relu(&o, a, 0.5f));
  CHECK(d64(o)[1] == -1.25);
  kiln_tensor_free(o);
  EXPECT_OK(kiln_greater(&o, a, b));
  CHECK(kiln_tensor_get_dtype(o) == KILN_DTYPE_BOOL);
  kiln_tensor_free(o);
  kiln_tensor_free(a);
  kiln_tensor_free(b);
}

static void test_bfloat16(void) {
  const float v[3] = {1.0f, -2.0f, 0.5f};
  int64_t n = 3;
  kiln_tensor *x32 = NULL, *x = NULL, *o = NULL, *back = NULL;
  float got[3];
  EXPECT_OK(kiln_tensor_create(&x32, F32, &n, 1, v, sizeof v));
  EXPECT_OK(kiln_cast(&x, x32, BF16));
  EXPECT_OK(kiln_mul(&o, x, x));
  CHECK(kiln_tensor_get_dtype(o) == BF16);
  EXPECT_OK(kiln_cast(&back, o, F32));
  EXPECT_OK(kiln_tensor_copy_to(back, got, sizeof got));
  CHECK(got[0] == 1.0f && got[1] == 4.0f && got[2] == 0.25f);
  kiln_tensor_free(o);
  kiln_tensor_free(back);
  EXPECT_OK(kiln_relu(&o, x));
  EXPECT_OK(kiln_cast(&back, o, F32));
  EXPECT_OK(kiln_tensor_copy_to(back, got, sizeof got));
  CHECK(kiln_tensor_get_dtype(o) == BF16 && got[0] == 1.0f && got[1] == 0.0f);
  kiln_tensor_free(o);
  kiln_tensor_free(back);
  EXPECT_ERROR(kiln_add(&o, x, x32), INVALID, "add:", "different dtypes");
  kiln_tensor_free(x);
  kiln_tensor_free(x32);
}

/* Floating -> integer as TensorFlow on x86-64: NaN, inf and values past int32 give INT32_MIN
 * (INT64_MIN for int64); uint8 is the int32 result's low byte. */
static void test_float_to_integer(void) {
  const float v[5] = {-1.0f, 300.0f, NAN, INFINITY, -2.5f};
  int64_t n = 5;
  kiln_tensor *x = NULL, *o = NULL;
  EXPECT_OK(kiln_tensor_create(&x, F32, &n, 1, v, sizeof v));
  EXPECT_OK(kiln_cast(&o, x, KILN_DTYPE_INT32));
  {
    const int32_t *i = (const int32_t *)kiln_tensor_get_data(o);
    CHECK(i[0] == -1 && i[1] == 300 && i[2] == INT32_MIN && i[3] == INT32_MIN && i[4] == -2);
  }
  kiln_tensor_free(o);
  EXPECT_OK(kiln_cast(&o, x, KILN_DTYPE_UINT8));
  {
    const uint8_t *u = (const uint8_t *)kiln_tensor_get_data(o);
    CHECK(u[0] == 255 && u[1] == 44 && u[2] == 0 && u[3] == 0 && u[4] == 254);
  }
  kiln_tensor_free(o);
  EXPECT_OK(kiln_cast(&o, x, KILN_DTYPE_INT64));
  {
    const int64_t *l = (const int64_t *)kiln_tensor_get_data(o);
    CHECK(l[0] == -1 && l[1] == 300 && l[2] == INT64_MIN && l[3] == INT64_MIN && l[4] == -2);
  }
  kiln_tensor_free(o);
  kiln_tensor_free(x);
}

static void test_truediv(void) {
  const int32_t iv[2] = {1, 7}, jv[2] = {2, 2};
  const int64_t lv[1] = {3}, mv[1] = {4};
  int64_t n = 2, one = 1;
  kiln_tensor *i = NULL, *j = NULL, *l = NULL, *m = NULL, *o = NULL;
  EXPECT_OK(kiln_tensor_create(&i, I32, &n, 1, iv, sizeof iv));
  EXPECT_OK(kiln_tensor_create(&j, I32, &n, 1, jv, sizeof jv));
  EXPECT_OK(kiln_tensor_create(&l, I64, &one, 1, lv, sizeof lv));
  EXPECT_OK(kiln_tensor_create(&m, I64, &one, 1, mv, sizeof mv));
  EXPECT_OK(kiln_truediv(&o, i, j));
  CHECK(kiln_tensor_get_dtype(o) == F64 && d64(o)[0] == 0.5 && d64(o)[1] == 3.5);
  kiln_tensor_free(o);
  EXPECT_OK(kiln_truediv(&o, l, m));
  CHECK(kiln_tensor_get_dtype(o) == F64 && d64(o)[0] == 0.75);
  kiln_tensor_free(o);
  EXPECT_OK(kiln_div(&o, i, j)); /* kiln_div keeps integer division */
  CHECK(kiln_tensor_get_dtype(o) == I32);
  kiln_tensor_free(o);
  o = NULL;
  EXPECT_ERROR(kiln_truediv(&o, i, l), INVALID, "truediv:", "different dtypes");
  CHECK(o == NULL);
  EXPECT_ERROR(kiln_truediv(NULL, i, j), INVALID, "kiln_truediv", "'out' is NULL");
  kiln_tensor_free(i);
  kiln_tensor_free(j);
  kiln_tensor_free(l);
  kiln_tensor_free(m);
}

static void test_gradient_float64(void) {
  const double xv[2] = {0.5, -1.5};
  kiln_tensor *x = f64(xv, 2), *y = NULL, *g[1] = {NULL};
  const kiln_tensor *src[1];
  kiln_tape *tape = NULL;
  src[0] = x;
  EXPECT_OK(kiln_tape_create(&tape, false, true));
  EXPECT_OK(kiln_tape_watch(tape, x));
  EXPECT_OK(kiln_tanh(&y, x));
  EXPECT_OK(kiln_tape_gradient(g, tape, y, src, 1, KILN_UNCONNECTED_NONE));
  CHECK(g[0] && kiln_tensor_get_dtype(g[0]) == F64);
  if (g[0]) {
    const double t = tanh(0.5);
    CHECK(fabs(d64(g[0])[0] - (1 - t * t)) < 1e-15);
  }
  kiln_tensor_free(g[0]);
  kiln_tensor_free(y);
  kiln_tape_free(tape);
  kiln_tensor_free(x);
}

static void test_creation(void) {
  int64_t n = 2;
  kiln_tensor *o = NULL;
  EXPECT_OK(kiln_fill(&o, &n, 1, 0.1, F64));
  CHECK(kiln_tensor_get_dtype(o) == F64 && d64(o)[1] == 0.1);
  kiln_tensor_free(o);
  EXPECT_OK(kiln_range(&o, 0.0, 1.0, 0.25, F64));
  CHECK(kiln_tensor_get_num_elements(o) == 4 && d64(o)[3] == 0.75);
  kiln_tensor_free(o);
  EXPECT_OK(kiln_ones(&o, &n, 1, F64));
  CHECK(d64(o)[0] == 1.0);
  kiln_tensor_free(o);
  /* As TF: a float range is sized in its dtype (ceil(1.2f / 0.2f) = 6, the limit excluded; float64's
     quotient is above 6, so 7), each element the one before plus delta. */
  EXPECT_OK(kiln_range(&o, 1.0, 2.2, 0.2, KILN_DTYPE_FLOAT32));
  CHECK(kiln_tensor_get_num_elements(o) == 6);
  if (kiln_tensor_get_num_elements(o) == 6) {
    const float *p = (const float *)kiln_tensor_get_data(o);
    CHECK(p[1] == 1.0f + 0.2f && p[2] == (1.0f + 0.2f) + 0.2f);
  }
  kiln_tensor_free(o);
  EXPECT_OK(kiln_range(&o, 1.0, 2.2, 0.2, F64));
  CHECK(kiln_tensor_get_num_elements(o) == 7);
  kiln_tensor_free(o);
}

/* The mean divides the sum by the count (seven 3s give 3, not 3 * (1/7) * 7); sign(-0) is +0. */
static void test_mean_and_sign(void) {
  const double threes[7] = {3, 3, 3, 3, 3, 3, 3}, zeros[2] = {-0.0, 0.0};
  kiln_tensor *x = f64(threes, 7), *m = NULL, *z = f64(zeros, 2), *s = NULL;
  EXPECT_OK(kiln_mean(&m, x, NULL, 0, false));
  if (m) CHECK(d64(m)[0] == 3.0);
  EXPECT_OK(kiln_sign(&s, z));
  if (s) CHECK(!signbit(d64(s)[0]) && !signbit(d64(s)[1]));
  kiln_tensor_free(s);
  kiln_tensor_free(z);
  kiln_tensor_free(m);
  kiln_tensor_free(x);
}

int main(void) {
  test_binary_and_unary_float64();
  test_bfloat16();
  test_float_to_integer();
  test_truediv();
  test_gradient_float64();
  test_creation();
  test_mean_and_sign();
  return test_summary();
}
