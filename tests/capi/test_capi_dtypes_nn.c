/* float64 and bfloat16 through kiln.h for matmul, the reductions and scans, softmax, the norms,
 * floor division and the fused losses: float64 checked against long double loops written here,
 * bfloat16 softmax and norms against the rounded float32 result, the float64 gradient of matmul
 * through the tape, and dtype errors. Plain C99; frees everything it makes.
 * Prints "N passed, N failed" and exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define F64 KILN_DTYPE_FLOAT64

/* Every tensor a test makes is kept (capi_test_util.h) and freed by release(). */
static void release(void) { release_kept(); }

/* A successful call: the status is NULL (otherwise reported and freed). */
static int ok(kiln_status *st, int line) {
  if (!st) {
    ++g_passed;
    return 1;
  }
  fprintf(stderr, "%s:%d: unexpected status: %s\n", __FILE__, line, kiln_status_get_message(st));
  kiln_status_free(st);
  ++g_failed;
  return 0;
}
#define OK(call) ok((call), __LINE__)

/* A failing call: INVALID_ARGUMENT with a message holding every fragment (NULL-terminated). */
static void expect_invalid(kiln_status *st, int line, const char *const *fragments) {
  if (!st) {
    fprintf(stderr, "%s:%d: expected an error\n", __FILE__, line);
    ++g_failed;
    return;
  }
  CHECK(kiln_status_get_code(st) == KILN_STATUS_INVALID_ARGUMENT);
  for (; *fragments; ++fragments)
    if (!strstr(kiln_status_get_message(st), *fragments)) {
      fprintf(stderr, "%s:%d: '%s' lacks '%s'\n", __FILE__, line, kiln_status_get_message(st), *fragments);
      ++g_failed;
    }
  kiln_status_free(st);
}

static kiln_tensor *make_bytes(kiln_dtype dtype, const int64_t *dims, size_t rank, const void *data, size_t bytes) {
  kiln_tensor *t = NULL;
  if (!OK(kiln_tensor_create(&t, dtype, dims, rank, data, bytes))) return NULL;
  return keep(t);
}

static kiln_tensor *make_f64(const int64_t *dims, size_t rank, const double *v) {
  size_t n = 1, i;
  for (i = 0; i < rank; ++i) n *= (size_t)dims[i];
  return make_bytes(F64, dims, rank, v, n * sizeof(double));
}

static const double *f64(const kiln_tensor *t) { return (const double *)kiln_tensor_get_data(t); }

/* Deterministic values in [lo, hi). */
static void fill(double *v, size_t n, unsigned seed, double lo, double hi) {
  size_t i;
  unsigned s = seed * 2654435761u + 1u;
  for (i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    v[i] = lo + (hi - lo) * (double)(s >> 8) / 16777216.0;
  }
}

static int close_to(double got, long double want, double tol) {
  return fabsl((long double)got - want) <= tol * (1.0L + fabsl(want));
}

/* ------------------------------------------------------------------ tests */

static void test_matmul(void) {
  enum { M = 64, K = 300, N = 70 };
  static double a[M * K], b[K * N];
  const int64_t da[2] = {M, K}, db[2] = {K, N};
  kiln_tensor *ta, *tb, *c = NULL;
  int i, j, p, bad = 0;
  fill(a, M * K, 1, -1, 1);
  fill(b, K * N, 2, -1, 1);
  ta = make_f64(da, 2, a);
  tb = make_f64(db, 2, b);
  if (OK(kiln_matmul(&c, ta, tb, false, false))) {
    keep(c);
    CHECK(kiln_tensor_get_dtype(c) == F64);
    for (i = 0; i < M; ++i)
      for (j = 0; j < N; ++j) {
        long double s = 0;
        for (p = 0; p < K; ++p) s += (long double)a[i * K + p] * b[p * N + j];
        bad += !close_to(f64(c)[i * N + j], s, 1e-13);
      }
    CHECK(bad == 0);
  }
  release();
}

static void test_reductions_and_scans(void) {
  const double x[6] = {1.5, -2.0, 4.0, 0.25, 8.0, -1.0};
  const int64_t d[2] = {2, 3}, axis1[1] = {1};
  kiln_tensor *t = make_f64(d, 2, x), *s = NULL, *m = NULL, *mx = NULL, *am = NULL, *cs = NULL, *pr = NULL;
  kiln_tensor *tv = NULL, *ti = NULL;
  if (OK(kiln_sum(&s, t, axis1, 1, false))) {
    keep(s);
    CHECK(kiln_tensor_get_dtype(s) == F64 && f64(s)[0] == 3.5 && f64(s)[1] == 7.25);
  }
  if (OK(kiln_mean(&m, t, NULL, 0, false))) {
    keep(m);
    CHECK(close_to(f64(m)[0], 10.75L / 6, 1e-15));
  }
  if (OK(kiln_max(&mx, t, axis1, 1, true))) {
    keep(mx);
    CHECK(f64(mx)[0] == 4.0 && f64(mx)[1] == 8.0);
  }
  if (OK(kiln_argmin(&am, t, 1))) {
    keep(am);
    CHECK(((const int64_t *)kiln_tensor_get_data(am))[0] == 1 &&
          ((const int64_t *)kiln_tensor_get_data(am))[1] == 2);
  }
  if (OK(kiln_cumsum(&cs, t, 1, false, true))) {
    keep(cs);
    CHECK(f64(cs)[0] == 3.5 && f64(cs)[1] == 2.0 && f64(cs)[5] == -1.0);
  }
  if (OK(kiln_reduce_prod(&pr, t, axis1, 1, false))) {
    keep(pr);
    CHECK(f64(pr)[0] == -12.0 && f64(pr)[1] == -2.0);
  }
  if (OK(kiln_top_k(&tv, &ti, t, 1, true))) {
    keep(tv);
    keep(ti);
    CHECK(f64(tv)[0] == 4.0 && ((const int32_t *)kiln_tensor_get_data(ti))[1] == 1);
  }
  release();
}

static void test_softmax_and_losses(void) {
  enum { R = 40, C = 1000 };
  static double x[R * C];
  static long double lse[R];
  const int64_t d[2] = {R, C}, dl[1] = {R};
  int32_t labels[R];
  kiln_tensor *t, *l, *sm = NULL, *lsm = NULL, *xent = NULL;
  int r, j, bad = 0;
  fill(x, R * C, 3, -20, 20);
  for (r = 0; r < R; ++r) {
    long double mx = x[r * C], s = 0;
    for (j = 1; j < C; ++j) mx = x[r * C + j] > mx ? x[r * C + j] : mx;
    for (j = 0; j < C; ++j) s += expl(x[r * C + j] - mx);
    lse[r] = mx + logl(s);
    labels[r] = (r * 37) % C;
  }
  t = make_f64(d, 2, x);
  l = make_bytes(KILN_DTYPE_INT32, dl, 1, labels, sizeof labels);
  if (OK(kiln_softmax(&sm, t, -1)) && OK(kiln_log_softmax(&lsm, t, -1))) {
    keep(sm);
    keep(lsm);
    for (r = 0; r < R; ++r)
      for (j = 0; j < C; ++j) {
        bad += fabsl(f64(sm)[r * C + j] - expl(x[r * C + j] - lse[r])) > 1e-13L;
        bad += !close_to(f64(lsm)[r * C + j], x[r * C + j] - lse[r], 1e-13);
      }
    CHECK(bad == 0);
  }
  if (OK(kiln_sparse_softmax_cross_entropy_with_logits(&xent, l, t))) {
    keep(xent);
    CHECK(kiln_tensor_get_dtype(xent) == F64);
    for (r = 0, bad = 0; r < R; ++r) bad += !close_to(f64(xent)[r], lse[r] - x[r * C + labels[r]], 1e-13);
    CHECK(bad == 0);
  }
  release();
}

static void test_norms_and_floor(void) {
  const double x[6] = {1.0, 2.0, 4.0, -1.0, 0.0, 7.0}, g[3] = {1.0, 2.0, 0.5}, b[3] = {0.0, 1.0, -1.0};
  const double num[4] = {7.0, -7.0, 7.5, -0.5}, den[4] = {2.0, 2.0, -2.0, 0.25};
  const int64_t d[2] = {2, 3}, dc[1] = {3}, d4[1] = {4};
  kiln_tensor *tx = make_f64(d, 2, x), *tg = make_f64(dc, 1, g), *tb = make_f64(dc, 1, b);
  kiln_tensor *y = NULL, *by = NULL, *bm = NULL, *bv = NULL, *q = NULL, *md = NULL;
  int r, j, bad = 0;
  if (OK(kiln_layer_norm(&y, tx, tg, tb, NULL, 0, 1e-3f))) {
    keep(y);
    for (r = 0; r < 2; ++r) {
      long double mu = (x[r * 3] + x[r * 3 + 1] + (long double)x[r * 3 + 2]) / 3, var = 0;
      for (j = 0; j < 3; ++j) var += (x[r * 3 + j] - mu) * (x[r * 3 + j] - mu);
      var /= 3;
      for (j = 0; j < 3; ++j)
        bad += !close_to(f64(y)[r * 3 + j],
                         (x[r * 3 + j] - mu) / sqrtl(var + (long double)1e-3f) * g[j] + b[j], 1e-14);
    }
    CHECK(bad == 0);
  }
  if (OK(kiln_batch_norm(&by, &bm, &bv, tx, tg, tb, NULL, NULL, true, 1e-3f))) {
    keep(by);
    keep(bm);
    keep(bv);
    CHECK(kiln_tensor_get_dtype(bm) == F64 && f64(bm)[0] == 0.0 && f64(bm)[2] == 5.5);
    CHECK(f64(bv)[0] == 1.0 && f64(bv)[2] == 2.25);
  }
  if (OK(kiln_floordiv(&q, make_f64(d4, 1, num), make_f64(d4, 1, den))) &&
      OK(kiln_floormod(&md, make_f64(d4, 1, num), make_f64(d4, 1, den)))) {
    keep(q);
    keep(md);
    CHECK(f64(q)[0] == 3.0 && f64(q)[1] == -4.0 && f64(q)[2] == -4.0 && f64(q)[3] == -2.0);
    CHECK(f64(md)[0] == 1.0 && f64(md)[1] == 1.0 && f64(md)[2] == -0.5 && f64(md)[3] == 0.0);
  }
  release();
}

/* bfloat16 softmax and layer_norm equal the float32 result of the same values, rounded once. */
static void test_bfloat16(void) {
  static double x[2 * 50];
  const int64_t d[2] = {2, 50}, dc[1] = {50};
  static double g[50], b[50];
  kiln_tensor *x64, *xb = NULL, *x32 = NULL, *gb = NULL, *bb = NULL, *g32 = NULL, *b32 = NULL;
  kiln_tensor *s = NULL, *s32 = NULL, *sr = NULL, *ln = NULL, *ln32 = NULL, *lnr = NULL, *by = NULL,
              *bm = NULL;
  fill(x, 100, 5, -5, 5);
  fill(g, 50, 6, 0.5, 1.5);
  fill(b, 50, 7, -1, 1);
  x64 = make_f64(d, 2, x);
  if (!OK(kiln_cast(&xb, x64, BF16)) || !OK(kiln_cast(&x32, keep(xb), F32))) {
    release();
    return;
  }
  keep(x32);
  OK(kiln_cast(&gb, make_f64(dc, 1, g), BF16));
  OK(kiln_cast(&bb, make_f64(dc, 1, b), BF16));
  keep(gb);
  keep(bb);
  OK(kiln_cast(&g32, gb, F32));
  OK(kiln_cast(&b32, bb, F32));
  keep(g32);
  keep(b32);
  if (OK(kiln_softmax(&s, xb, -1)) && OK(kiln_softmax(&s32, x32, -1)) && OK(kiln_cast(&sr, s32, BF16))) {
    keep(s);
    keep(s32);
    keep(sr);
    CHECK(kiln_tensor_get_dtype(s) == BF16 &&
          memcmp(kiln_tensor_get_data(s), kiln_tensor_get_data(sr), 200) == 0);
  }
  if (OK(kiln_layer_norm(&ln, xb, gb, bb, NULL, 0, 1e-3f)) &&
      OK(kiln_layer_norm(&ln32, x32, g32, b32, NULL, 0, 1e-3f)) && OK(kiln_cast(&lnr, ln32, BF16))) {
    keep(ln);
    keep(ln32);
    keep(lnr);
    CHECK(memcmp(kiln_tensor_get_data(ln), kiln_tensor_get_data(lnr), 200) == 0);
  }
  /* the scans, products and floor division take bfloat16 too: float32's result, rounded once */
  {
    kiln_tensor *cp = NULL, *cp32 = NULL, *cpr = NULL, *fm = NULL, *fm32 = NULL, *fmr = NULL;
    if (OK(kiln_cumprod(&cp, xb, 1, false, true)) && OK(kiln_cumprod(&cp32, x32, 1, false, true)) &&
        OK(kiln_cast(&cpr, keep(cp32), BF16))) {
      keep(cp);
      keep(cpr);
      CHECK(kiln_tensor_get_dtype(cp) == BF16 &&
            memcmp(kiln_tensor_get_data(cp), kiln_tensor_get_data(cpr), 200) == 0);
    }
    kiln_tensor *es = NULL, *es32 = NULL, *esr = NULL;
    const kiln_tensor *eb[2], *e32[2];
    eb[0] = xb;
    eb[1] = xb;
    e32[0] = x32;
    e32[1] = x32;
    /* einsum too (a Dot layer under mixed_bfloat16) */
    if (OK(kiln_einsum(&es, "ij,ij->i", eb, 2)) && OK(kiln_einsum(&es32, "ij,ij->i", e32, 2)) &&
        OK(kiln_cast(&esr, keep(es32), BF16))) {
      keep(es);
      keep(esr);
      CHECK(kiln_tensor_get_dtype(es) == BF16 && memcmp(kiln_tensor_get_data(es), kiln_tensor_get_data(esr),
                                                        (size_t)kiln_tensor_get_num_elements(es) * 2) == 0);
    }
    if (OK(kiln_floormod(&fm, xb, gb)) && OK(kiln_floormod(&fm32, x32, g32)) &&
        OK(kiln_cast(&fmr, keep(fm32), BF16))) {
      keep(fm);
      keep(fmr);
      CHECK(kiln_tensor_get_dtype(fm) == BF16 &&
            memcmp(kiln_tensor_get_data(fm), kiln_tensor_get_data(fmr), 200) == 0);
    }
  }
  /* float32 gamma/beta with a bfloat16 x (Keras mixed precision); statistics come out float32. */
  if (OK(kiln_batch_norm(&by, &bm, NULL, xb, g32, b32, NULL, NULL, true, 1e-3f))) {
    keep(by);
    keep(bm);
    CHECK(kiln_tensor_get_dtype(by) == BF16 && kiln_tensor_get_dtype(bm) == F32);
  }
  release();
}

/* d/da sum(a . b) = b's row sums in every row; layer_norm's gradient in float64 is finite. */
static void test_gradients(void) {
  const double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {0.5, -1, 2, 0.25, 3, -4};
  const int64_t da[2] = {2, 3}, db[2] = {3, 2};
  kiln_tensor *ta = make_f64(da, 2, a), *tb = make_f64(db, 2, b), *c = NULL, *grads[2] = {NULL, NULL};
  kiln_tape *tape = NULL;
  const kiln_tensor *sources[2];
  if (!OK(kiln_tape_create(&tape, false, true))) {
    release();
    return;
  }
  OK(kiln_tape_watch(tape, ta));
  OK(kiln_tape_watch(tape, tb));
  if (OK(kiln_matmul(&c, ta, tb, false, false))) {
    keep(c);
    sources[0] = ta;
    sources[1] = tb;
    if (OK(kiln_tape_gradient(grads, tape, c, sources, 2, KILN_UNCONNECTED_ZERO))) {
      keep(grads[0]);
      keep(grads[1]);
      CHECK(kiln_tensor_get_dtype(grads[0]) == F64);
      CHECK(f64(grads[0])[0] == -0.5 && f64(grads[0])[1] == 2.25 && f64(grads[0])[5] == -1.0);
      CHECK(f64(grads[1])[0] == 5.0 && f64(grads[1])[5] == 9.0);
    }
  }
  kiln_tape_free(tape);
  release();
}

static void test_errors(void) {
  const double x[4] = {1, 2, 3, 4};
  const float xf[4] = {1, 2, 3, 4};
  const int32_t xi[4] = {1, 2, 3, 4};
  const int64_t d[2] = {2, 2};
  kiln_tensor *t64 = make_f64(d, 2, x), *t32 = make_bytes(F32, d, 2, xf, sizeof xf),
              *ti = make_bytes(KILN_DTYPE_INT32, d, 2, xi, sizeof xi);
  kiln_tensor *out = NULL;
  static const char *const mm[] = {"matmul", "float64", "float32", NULL};
  static const char *const sm[] = {"softmax", "int32", "expected float32 or bfloat16 or float64", NULL};
  static const char *const sx[] = {"sigmoid_cross_entropy_with_logits", "labels", "expected float64", NULL};
  expect_invalid(kiln_matmul(&out, t64, t32, false, false), __LINE__, mm);
  expect_invalid(kiln_softmax(&out, ti, -1), __LINE__, sm);
  expect_invalid(kiln_sigmoid_cross_entropy_with_logits(&out, t32, t64), __LINE__, sx);
  CHECK(out == NULL);
  release();
}

int main(void) {
  test_matmul();
  test_reductions_and_scans();
  test_softmax_and_losses();
  test_norms_and_floor();
  test_bfloat16();
  test_gradients();
  test_errors();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
