/* Per-thread kernel thread counts through the shared library alone (issue 5):
 * kiln_set_num_threads_for_this_thread applies to the calling thread only, 0 removes it,
 * out-of-range values are rejected with a message naming the value and the range, and a
 * kernel run from a worker thread at 1 thread gives the same bits as the global-count run.
 * Plain C99 with POSIX threads. Prints "N passed, N failed"; exits non-zero on any failure. */
#include <pthread.h>

#define KILN_CAPI_TEST_THREADS
#include "capi_test_util.h"

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

/* One iterator shared by threads, as a tf.data iterator: every element goes to exactly one caller,
 * and every caller ends. range(0, kCount).shuffle(...).prefetch(2), four threads. */
enum { kCount = 4000, kPullers = 4 };
typedef struct {
  kiln_iterator *it;
  int *seen; /* per element, how many callers got it (each increments its own slot) */
  int errors;
} puller_arg;

static void *puller(void *p) {
  puller_arg *a = (puller_arg *)p;
  for (;;) {
    kiln_tensor_list *out = NULL;
    kiln_tensor *v = NULL;
    bool end = false;
    if (kiln_iterator_next(&out, &end, a->it) != NULL) {
      ++a->errors;
      return NULL;
    }
    if (end) break;
    if (kiln_tensor_list_get(&v, out, 0) == NULL) {
      const int64_t x = *(const int64_t *)kiln_tensor_get_data(v);
      if (x >= 0 && x < kCount) ++a->seen[x];
      kiln_tensor_free(v);
    }
    kiln_tensor_list_free(out);
  }
  return NULL;
}

static void test_shared_iterator(void) {
  kiln_dataset *r = NULL, *sh = NULL, *pf = NULL;
  kiln_iterator *it = NULL;
  pthread_t t[kPullers];
  puller_arg args[kPullers];
  static int seen[kPullers][kCount];
  int i, k, exactly_once = 1;
  EXPECT_OK(kiln_dataset_range(&r, 0, kCount, 1));
  EXPECT_OK(kiln_dataset_shuffle(&sh, r, 500, 7, true));
  EXPECT_OK(kiln_dataset_prefetch(&pf, sh, 2));
  EXPECT_OK(kiln_dataset_make_iterator(&it, pf));
  for (i = 0; i < kPullers; ++i) {
    args[i].it = it;
    args[i].seen = seen[i];
    args[i].errors = 0;
    pthread_create(&t[i], NULL, puller, &args[i]);
  }
  for (i = 0; i < kPullers; ++i) pthread_join(t[i], NULL); /* every caller ends */
  for (k = 0; k < kCount; ++k) {
    int n = 0;
    for (i = 0; i < kPullers; ++i) n += seen[i][k];
    exactly_once &= n == 1;
  }
  CHECK(exactly_once);
  for (i = 0; i < kPullers; ++i) CHECK(args[i].errors == 0);
  kiln_iterator_free(it);
  kiln_dataset_free(pf);
  kiln_dataset_free(sh);
  kiln_dataset_free(r);
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
  EXPECT_ERROR(kiln_set_num_threads_for_this_thread(-1), INVALID, "set_num_threads_for_this_thread",
               "got -1");
  EXPECT_ERROR(kiln_set_num_threads_for_this_thread(1 << 30), INVALID, "got 1073741824",
               "0 (remove the override)");
  EXPECT_ERROR(kiln_set_num_threads_for_this_thread(INT32_MIN), INVALID, "-2147483648",
               "a count from 1 to");
  CHECK(kiln_get_num_threads() == 4);
  CHECK(kiln_get_num_threads_for_this_thread() == 4);
  snprintf(too_many, sizeof too_many, "%d", 100000);
  EXPECT_ERROR(kiln_set_num_threads_for_this_thread(100000), INVALID, "set_num_threads_for_this_thread",
               too_many);
  CHECK(kiln_set_num_threads_for_this_thread(0) == NULL);

  free_outputs(&want);
  kiln_tensor_free(in.a);
  kiln_tensor_free(in.b);
  kiln_tensor_free(in.x);
  kiln_tensor_free(in.f);
  test_shared_iterator();
  return test_summary();
}
