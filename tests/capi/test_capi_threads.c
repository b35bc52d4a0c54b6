/* Per-thread kernel thread counts through the shared library alone (issue 5):
 * kiln_set_num_threads_for_this_thread applies to the calling thread only, 0 removes it,
 * out-of-range values are rejected with a message naming the value and the range, and a
 * kernel run from a worker thread at 1 thread gives the same bits as the global-count run.
 * Plain C99 with POSIX threads. Prints "N passed, N failed"; exits non-zero on any failure. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"

static int g_passed = 0, g_failed = 0;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond) check((cond) != 0, #cond, __LINE__)
static void check(int ok, const char *what, int line) {
  pthread_mutex_lock(&g_mu);
  if (ok) {
    ++g_passed;
  } else {
    fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, line, what);
    ++g_failed;
  }
  pthread_mutex_unlock(&g_mu);
}

/* The call must fail with INVALID_ARGUMENT and a message holding both fragments. */
static void expect_invalid(kiln_status *st, const char *frag1, const char *frag2, int line) {
  const char *msg = kiln_status_get_message(st);
  int ok = st && kiln_status_get_code(st) == KILN_STATUS_INVALID_ARGUMENT && strstr(msg, frag1) &&
           strstr(msg, frag2);
  if (!ok) fprintf(stderr, "%s:%d: expected INVALID_ARGUMENT with '%s' and '%s'; got '%s'\n", __FILE__, line,
                   frag1, frag2, st ? msg : "success");
  check(ok, "expect_invalid", line);
  kiln_status_free(st);
}

static kiln_tensor *filled(const int64_t *dims, size_t rank, float scale) {
  int64_t n = 1;
  size_t i;
  float *v;
  kiln_tensor *t = NULL;
  for (i = 0; i < rank; ++i) n *= dims[i];
  v = (float *)malloc((size_t)n * sizeof(float));
  for (i = 0; i < (size_t)n; ++i) v[i] = scale * (float)sin(0.37 * (double)i + 0.1);
  kiln_status_free(kiln_tensor_create(&t, KILN_DTYPE_FLOAT32, dims, rank, v, (size_t)n * sizeof(float)));
  free(v);
  return t;
}

/* matmul [48, 40] x [40, 56] and a 3x3 SAME conv2d over [2, 9, 9, 8] with 16 filters: both
 * large enough to run multi-threaded kernels. */
typedef struct {
  kiln_tensor *a, *b, *x, *f;
} inputs;

typedef struct {
  kiln_tensor *mm, *conv;
} outputs;

static outputs run(const inputs *in) {
  outputs o = {NULL, NULL};
  kiln_conv2d_options opt;
  kiln_status_free(kiln_matmul(&o.mm, in->a, in->b, false, false));
  kiln_status_free(kiln_conv2d_options_init(&opt, sizeof opt));
  opt.padding = KILN_PADDING_SAME;
  kiln_status_free(kiln_conv2d(&o.conv, in->x, in->f, &opt));
  return o;
}

static int same_bits(const kiln_tensor *a, const kiln_tensor *b) {
  return a && b && kiln_tensor_get_byte_size(a) == kiln_tensor_get_byte_size(b) &&
         memcmp(kiln_tensor_get_data(a), kiln_tensor_get_data(b), kiln_tensor_get_byte_size(a)) == 0;
}

static void free_outputs(outputs *o) {
  kiln_tensor_free(o->mm);
  kiln_tensor_free(o->conv);
}

typedef struct {
  const inputs *in;
  const outputs *want;
  int override_count; /* 0: leave the thread on the global count */
  int seen_count;     /* kiln_get_num_threads inside the thread */
  int seen_after_remove;
  int same;
} worker_arg;

static void *worker(void *p) {
  worker_arg *w = (worker_arg *)p;
  outputs got;
  if (w->override_count > 0) {
    CHECK(kiln_get_num_threads_for_this_thread() == 0);
    CHECK(kiln_set_num_threads_for_this_thread(w->override_count) == NULL);
    CHECK(kiln_get_num_threads_for_this_thread() == w->override_count);
  }
  w->seen_count = kiln_get_num_threads();
  got = run(w->in);
  w->same = same_bits(got.mm, w->want->mm) && same_bits(got.conv, w->want->conv);
  free_outputs(&got);
  CHECK(kiln_set_num_threads_for_this_thread(0) == NULL);
  w->seen_after_remove = kiln_get_num_threads();
  return NULL;
}

int main(void) {
  const int64_t a_dims[2] = {48, 40}, b_dims[2] = {40, 56}, x_dims[4] = {2, 9, 9, 8}, f_dims[4] = {3, 3, 8, 16};
  const int global = 3;
  char too_many[32];
  inputs in;
  outputs want;
  pthread_t t[3];
  worker_arg args[3];
  int i;

  CHECK(kiln_set_num_threads(global) == NULL);
  in.a = filled(a_dims, 2, 1.0f);
  in.b = filled(b_dims, 2, 0.5f);
  in.x = filled(x_dims, 4, 1.0f);
  in.f = filled(f_dims, 4, 0.25f);
  want = run(&in);
  CHECK(want.mm && want.conv);

  /* Two workers at 1 and 2 threads, one left on the global count, all at once. */
  for (i = 0; i < 3; ++i) {
    args[i].in = &in;
    args[i].want = &want;
    args[i].override_count = i == 2 ? 0 : i + 1;
    args[i].same = 0;
    pthread_create(&t[i], NULL, worker, &args[i]);
  }
  for (i = 0; i < 3; ++i) pthread_join(t[i], NULL);
  for (i = 0; i < 3; ++i) {
    CHECK(args[i].same);
    CHECK(args[i].seen_count == (args[i].override_count ? args[i].override_count : global));
    CHECK(args[i].seen_after_remove == global);
  }
  /* The workers' overrides never reached this thread. */
  CHECK(kiln_get_num_threads() == global);
  CHECK(kiln_get_num_threads_for_this_thread() == 0);

  /* An override here, then the global count changes underneath it, then removal. */
  CHECK(kiln_set_num_threads_for_this_thread(1) == NULL);
  CHECK(kiln_set_num_threads(2) == NULL);
  CHECK(kiln_get_num_threads() == 1);
  {
    outputs got = run(&in);
    CHECK(same_bits(got.mm, want.mm) && same_bits(got.conv, want.conv));
    free_outputs(&got);
  }
  CHECK(kiln_set_num_threads_for_this_thread(0) == NULL);
  CHECK(kiln_get_num_threads() == 2);

  /* Out of range: rejected, nothing changed. */
  CHECK(kiln_set_num_threads_for_this_thread(4) == NULL);
  expect_invalid(kiln_set_num_threads_for_this_thread(-1), "set_num_threads_for_this_thread", "got -1", __LINE__);
  expect_invalid(kiln_set_num_threads_for_this_thread(1 << 30), "got 1073741824", "0 (remove the override)",
                 __LINE__);
  expect_invalid(kiln_set_num_threads_for_this_thread(INT32_MIN), "-2147483648", "a count from 1 to", __LINE__);
  CHECK(kiln_get_num_threads() == 4);
  CHECK(kiln_get_num_threads_for_this_thread() == 4);
  snprintf(too_many, sizeof too_many, "%d", 100000);
  expect_invalid(kiln_set_num_threads_for_this_thread(100000), "set_num_threads_for_this_thread", too_many,
                 __LINE__);
  CHECK(kiln_set_num_threads_for_this_thread(0) == NULL);

  free_outputs(&want);
  kiln_tensor_free(in.a);
  kiln_tensor_free(in.b);
  kiln_tensor_free(in.x);
  kiln_tensor_free(in.f);
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
