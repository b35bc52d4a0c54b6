/* float64 and bfloat16 through the elementwise entry points, from plain C99 against the
 * shared library alone: values, dtypes kept, truediv's promotion of integers to float64,
 * gradients on a tape in float64, creation ops, and errors naming the entry point.
 * Prints "N passed, N failed" and exits non-zero on any failure. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kiln/kiln.h"

#define INVALID KILN_STATUS_INVALID_ARGUMENT
#define F32 KILN_DTYPE_FLOAT32
#define BF16 KILN_DTYPE_BFLOAT16
#define F64 KILN_DTYPE_FLOAT64
#define I32 KILN_DTYPE_INT32
#define I64 KILN_DTYPE_INT64

static int g_passed = 0, g_failed = 0;

#define CHECK(cond) check((cond) != 0, #cond, __LINE__)
static void check(int ok, const char *what, int line) {
  if (ok) {
    ++g_passed;
  } else {
    fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, line, what);
    ++g_failed;
  }
}

/* A call that must succeed: its status is checked and freed; returns *out. */
#define OK(call) ok_status((call), #call, __LINE__)
static void ok_status(kiln_status *st, const char *call, int line) {
  if (st) fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, line, call, kiln_status_get_message(st));
  check(st == NULL, call, line);
  kiln_status_free(st);
}

static void expect_error(kiln_status *st, const char *frag1, const char *frag2, int line) {
  const char *msg = kiln_status_get_message(st);
  check(st != NULL && kiln_status_get_code(st) == INVALID && strstr(msg, frag1) && strstr(msg, frag2),
        msg ? msg : "succeeded", line);
  kiln_status_free(st);
}
#define EXPECT_ERROR(call, f1, f2) expect_error((call), (f1), (f2), __LINE__)

static kiln_tensor *f64(const double *v, int64_t n) {
  kiln_tensor *t = NULL;
  OK(kiln_tensor_create(&t, F64, &n, 1, v, (size_t)n * sizeof(double)));
  return t;
}

static const double *d64(const kiln_tensor *t) { return (const double *)kiln_tensor_get_data(t); }

static void test_binary_and_unary_float64(void) {
  const double av[3] = {1.0, -2.5, 0.1}, bv[3] = {3.0, 0.5, 0.2};
  kiln_tensor *a = f64(av, 3), *b = f64(bv, 3), *o = NULL;
  OK(kiln_add(&o, a, b));
  CHECK(kiln_tensor_get_dtype(o) == F64);
  CHECK(d64(o)[2] == 0.1 + 0.2); /* double arithmetic, not float32 */
  kiln_tensor_free(o);
  OK(kiln_div(&o, a, b));
  CHECK(d64(o)[0] == 1.0 / 3.0);
  kiln_tensor_free(o);
  OK(kiln_pow(&o, b, a));
  CHECK(fabs(d64(o)[0] - 3.0) < 1e-15 && d64(o)[2] == pow(0.2, 0.1));
  kiln_tensor_free(o);
  OK(kiln_exp(&o, a));
  CHECK(fabs(d64(o)[0] - 2.718281828459045) < 1e-15);
  kiln_tensor_free(o);
  OK(kiln_gelu(&o, a, false));
  CHECK(kiln_tensor_get_dtype(o) == F64 && fabs(d64(o)[0] - 0.8413447460685429) < 1e-15);
  kiln_tensor_free(o);
  OK(kiln_leaky_relu(&o, a, 0.5f));
  CHECK(d64(o)[1] == -1.25);
  kiln_tensor_free(o);
  OK(kiln_greater(&o, a, b));
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
  OK(kiln_tensor_create(&x32, F32, &n, 1, v, sizeof v));
  OK(kiln_cast(&x, x32, BF16));
  OK(kiln_mul(&o, x, x));
  CHECK(kiln_tensor_get_dtype(o) == BF16);
  OK(kiln_cast(&back, o, F32));
  OK(kiln_tensor_copy_to(back, got, sizeof got));
  CHECK(got[0] == 1.0f && got[1] == 4.0f && got[2] == 0.25f);
  kiln_tensor_free(o);
  kiln_tensor_free(back);
  OK(kiln_relu(&o, x));
  OK(kiln_cast(&back, o, F32));
  OK(kiln_tensor_copy_to(back, got, sizeof got));
  CHECK(kiln_tensor_get_dtype(o) == BF16 && got[0] == 1.0f && got[1] == 0.0f);
  kiln_tensor_free(o);
  kiln_tensor_free(back);
  EXPECT_ERROR(kiln_add(&o, x, x32), "add:", "different dtypes");
  kiln_tensor_free(x);
  kiln_tensor_free(x32);
}

static void test_truediv(void) {
  const int32_t iv[2] = {1, 7}, jv[2] = {2, 2};
  const int64_t lv[1] = {3}, mv[1] = {4};
  int64_t n = 2, one = 1;
  kiln_tensor *i = NULL, *j = NULL, *l = NULL, *m = NULL, *o = NULL;
  OK(kiln_tensor_create(&i, I32, &n, 1, iv, sizeof iv));
  OK(kiln_tensor_create(&j, I32, &n, 1, jv, sizeof jv));
  OK(kiln_tensor_create(&l, I64, &one, 1, lv, sizeof lv));
  OK(kiln_tensor_create(&m, I64, &one, 1, mv, sizeof mv));
  OK(kiln_truediv(&o, i, j));
  CHECK(kiln_tensor_get_dtype(o) == F64 && d64(o)[0] == 0.5 && d64(o)[1] == 3.5);
  kiln_tensor_free(o);
  OK(kiln_truediv(&o, l, m));
  CHECK(kiln_tensor_get_dtype(o) == F64 && d64(o)[0] == 0.75);
  kiln_tensor_free(o);
  OK(kiln_div(&o, i, j)); /* kiln_div keeps integer division */
  CHECK(kiln_tensor_get_dtype(o) == I32);
  kiln_tensor_free(o);
  o = NULL;
  EXPECT_ERROR(kiln_truediv(&o, i, l), "truediv:", "different dtypes");
  CHECK(o == NULL);
  EXPECT_ERROR(kiln_truediv(NULL, i, j), "kiln_truediv", "'out' is NULL");
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
  OK(kiln_tape_create(&tape, false, true));
  OK(kiln_tape_watch(tape, x));
  OK(kiln_tanh(&y, x));
  OK(kiln_tape_gradient(g, tape, y, src, 1, KILN_UNCONNECTED_NONE));
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
  OK(kiln_fill(&o, &n, 1, 0.1, F64));
  CHECK(kiln_tensor_get_dtype(o) == F64 && d64(o)[1] == 0.1);
  kiln_tensor_free(o);
  OK(kiln_range(&o, 0.0, 1.0, 0.25, F64));
  CHECK(kiln_tensor_get_num_elements(o) == 4 && d64(o)[3] == 0.75);
  kiln_tensor_free(o);
  OK(kiln_ones(&o, &n, 1, F64));
  CHECK(d64(o)[0] == 1.0);
  kiln_tensor_free(o);
}

int main(void) {
  test_binary_and_unary_float64();
  test_bfloat16();
  test_truediv();
  test_gradient_float64();
  test_creation();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
