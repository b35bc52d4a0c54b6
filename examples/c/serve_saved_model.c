/* Serving a SavedModel from C: load it, look up its serving signature, run it on a batch, and run
 * it again from 8 threads at once (the results must be identical).
 *
 *   kiln_example_serve_saved_model_c EXPORT_DIR
 *
 * EXPORT_DIR is a SavedModel written by any kiln front end (here: examples/cpp/saved_model_export.cc,
 * which trains a small MLP on 4 features and saves it). The output is the same as that of
 * examples/python/serve_saved_model.py and of the exporter itself: the test
 * example.saved_model_cpp_to_c_python compares them byte for byte. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kiln/kiln.h"

#define ROWS 6
#define FEATURES 4
#define THREADS 8

static const kiln_saved_model_signature *g_serve;
static kiln_tensor *g_input;
static const float *g_expected;
static size_t g_expected_count;

static int fail(kiln_status *st) {
  fprintf(stderr, "kiln: %s\n", kiln_status_get_message(st));
  kiln_status_free(st);
  return 1;
}

static void print_spec(const char *kind, const char *name, kiln_dtype dtype, const int64_t *dims, size_t rank) {
  size_t d;
  printf("  %s %s %s (", kind, name, dtype == KILN_DTYPE_FLOAT32 ? "float32" : "other");
  for (d = 0; d < rank; ++d) {
    if (dims[d] < 0)
      printf("%sNone", d ? ", " : "");
    else
      printf("%s%lld", d ? ", " : "", (long long)dims[d]);
  }
  printf(")\n");
}

/* Each thread runs the signature 10 times and counts results that differ from the first run's. */
static void *serve_thread(void *arg) {
  int round, *mismatches = (int *)arg;
  for (round = 0; round < 10; ++round) {
    kiln_tensor_list *out = NULL;
    kiln_tensor *y = NULL;
    kiln_status *st = kiln_saved_model_signature_run(&out, g_serve, (const kiln_tensor *const *)&g_input, 1);
    if (!st) st = kiln_tensor_list_get(&y, out, 0);
    if (st) {
      kiln_status_free(st);
      ++*mismatches;
    } else if (kiln_tensor_get_num_elements(y) != (int64_t)g_expected_count ||
               memcmp(kiln_tensor_get_data(y), g_expected, g_expected_count * sizeof(float)) != 0) {
      ++*mismatches;
    }
    kiln_tensor_free(y);
    kiln_tensor_list_free(out);
  }
  return NULL;
}

int main(int argc, char **argv) {
  kiln_saved_model *sm = NULL;
  kiln_tensor_list *outputs = NULL;
  kiln_tensor *y = NULL;
  float xs[ROWS * FEATURES];
  int64_t dims[2] = {ROWS, FEATURES}, spec_dims[KILN_MAX_RANK];
  size_t i, j, n_in = 0, n_out = 0, rank = 0;
  int mismatches[THREADS] = {0}, total = 0, cols;
  pthread_t threads[THREADS];
  const char *name = NULL;
  kiln_dtype dtype;
  kiln_status *st;
  if (argc != 2) {
    fprintf(stderr, "usage: %s EXPORT_DIR\n", argv[0]);
    return 2;
  }
  /* The batch all three programs serve: multiples of 1/64, exact in float32. */
  for (i = 0; i < ROWS * FEATURES; ++i) xs[i] = (float)((int)((i * 37) % 129) - 64) / 64.0f;

  /* Load, look up the signature, run it: the handful of calls a server needs. */
  st = kiln_saved_model_load(&sm, argv[1], NULL);
  if (!st) st = kiln_saved_model_get_signature(&g_serve, sm, "serving_default");
  if (!st) st = kiln_tensor_create(&g_input, KILN_DTYPE_FLOAT32, dims, 2, xs, sizeof xs);
  if (!st) st = kiln_saved_model_signature_run(&outputs, g_serve, (const kiln_tensor *const *)&g_input, 1);
  if (!st) st = kiln_tensor_list_get(&y, outputs, 0);
  if (st) return fail(st);

  printf("signature serving_default\n");
  if (!st) st = kiln_saved_model_signature_get_num_inputs(&n_in, g_serve);
  for (i = 0; !st && i < n_in; ++i) {
    st = kiln_saved_model_signature_get_input(&name, &dtype, spec_dims, KILN_MAX_RANK, &rank, g_serve, i);
    if (!st) print_spec("input", name, dtype, spec_dims, rank);
  }
  if (!st) st = kiln_saved_model_signature_get_num_outputs(&n_out, g_serve);
  for (i = 0; !st && i < n_out; ++i) {
    st = kiln_saved_model_signature_get_output(&name, &dtype, spec_dims, KILN_MAX_RANK, &rank, g_serve, i);
    if (!st) print_spec("output", name, dtype, spec_dims, rank);
  }
  if (st) return fail(st);

  g_expected = (const float *)kiln_tensor_get_data(y);
  g_expected_count = (size_t)kiln_tensor_get_num_elements(y);
  cols = (int)(g_expected_count / ROWS);
  for (i = 0; i < ROWS; ++i) {
    printf("row %d:", (int)i);
    for (j = 0; j < (size_t)cols; ++j) printf(" %.9g", g_expected[i * (size_t)cols + j]);
    printf("\n");
  }

  for (i = 0; i < THREADS; ++i) pthread_create(&threads[i], NULL, serve_thread, &mismatches[i]);
  for (i = 0; i < THREADS; ++i) {
    pthread_join(threads[i], NULL);
    total += mismatches[i];
  }
  printf("%d threads: %s\n", THREADS, total ? "DIFFERENT" : "identical");

  kiln_tensor_free(y);
  kiln_tensor_list_free(outputs);
  kiln_tensor_free(g_input);
  kiln_saved_model_free(sm);
  return total ? 1 : 0;
}
