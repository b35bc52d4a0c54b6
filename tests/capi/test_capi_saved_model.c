/* The SavedModel from plain C (kiln/saved_model.h): a trained, compiled model saved and loaded
 * back predicts bit for bit and trains on bit for bit; the signature's names, dtypes and shapes;
 * running it by position and by name; save options; load_model and compile=false; the
 * "inference_weights" load option; errors for NULL arguments, bad options, wrong inputs, a damaged
 * manifest and a missing directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capi_test_util.h"

static char g_root[64];

static const char *path_in(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", g_root, name);
  return buf;
}

/* Dense(8, relu), Dense(3, softmax) on 5 features. */
static kiln_layer *small_model(void) {
  kiln_layer *m = NULL, *a = dense_layer(8, "relu"), *b = dense_layer(3, "softmax");
  int64_t dims[2] = {-1, 5};
  size_t rank = 2;
  EXPECT_OK(kiln_layer_create(&m, "Sequential", NULL));
  EXPECT_OK(kiln_sequential_add(m, a));
  EXPECT_OK(kiln_sequential_add(m, b));
  kiln_layer_free(a);
  kiln_layer_free(b);
  EXPECT_OK(kiln_layer_build(m, dims, &rank, 1));
  return m;
}

static void compile_adam(kiln_layer *m) {
  const char *loss = "sparse_categorical_crossentropy";
  kiln_config *c = NULL;
  kiln_optimizer *opt = NULL;
  kiln_compile_options co;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", 0.01));
  EXPECT_OK(kiln_optimizer_create(&opt, "Adam", c));
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = opt;
  co.loss_names = &loss;
  co.num_loss_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
  kiln_optimizer_free(opt);
  kiln_config_free(c);
}

static kiln_tensor *batch_x(void) {
  float x[30];
  int64_t xd[2] = {6, 5};
  int i;
  for (i = 0; i < 30; ++i) x[i] = (float)((i * 7) % 17) / 16.0f - 0.5f;
  return f32(2, xd, x);
}

static void train_step(kiln_layer *m) {
  int64_t y[6], yd[1] = {6};
  kiln_tensor_list *xs = NULL, *ys = NULL;
  int i;
  for (i = 0; i < 6; ++i) y[i] = (i * 7 + 1) % 3;
  EXPECT_OK(kiln_tensor_list_create(&xs));
  EXPECT_OK(kiln_tensor_list_create(&ys));
  EXPECT_OK(kiln_tensor_list_append(xs, batch_x()));
  EXPECT_OK(kiln_tensor_list_append(ys, make(I64, 1, yd, y)));
  EXPECT_OK(kiln_model_train_on_batch(NULL, m, xs, ys, NULL, NULL, 0));
  kiln_tensor_list_free(xs);
  kiln_tensor_list_free(ys);
  release_kept();
}

/* The model's predictions on batch_x() (first output). */
static kiln_tensor *predict(kiln_layer *m) {
  kiln_tensor_list *xs = NULL, *out = NULL;
  kiln_tensor *y = NULL;
  EXPECT_OK(kiln_tensor_list_create(&xs));
  EXPECT_OK(kiln_tensor_list_append(xs, batch_x()));
  EXPECT_OK(kiln_model_predict_on_batch(&out, m, xs));
  if (out) EXPECT_OK(kiln_tensor_list_get(&y, out, 0));
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(xs);
  release_kept();
  return y;
}

static int same_tensor(const kiln_tensor *a, const kiln_tensor *b) {
  return a && b && kiln_tensor_get_num_elements(a) == kiln_tensor_get_num_elements(b) &&
         memcmp(kiln_tensor_get_data(a), kiln_tensor_get_data(b),
                (size_t)kiln_tensor_get_num_elements(a) * sizeof(float)) == 0;
}

static void test_round_trip(void) {
  char path[128];
  kiln_layer *m = small_model(), *loaded = NULL, *again = NULL;
  kiln_saved_model *sm = NULL;
  kiln_tensor *a = NULL, *b = NULL;
  const char *version = NULL;
  int i;
  compile_adam(m);
  for (i = 0; i < 3; ++i) train_step(m);
  EXPECT_OK(kiln_saved_model_save(m, path_in(path, sizeof path, "export"), NULL));
  EXPECT_OK(kiln_saved_model_load(&sm, path, NULL));
  EXPECT_OK(kiln_saved_model_get_kiln_version(&version, sm));
  CHECK(version && strcmp(version, kiln_version()) == 0);
  EXPECT_OK(kiln_saved_model_get_model(&loaded, sm));
  a = predict(m);
  b = predict(loaded);
  CHECK(same_tensor(a, b));
  kiln_tensor_free(a);
  kiln_tensor_free(b);
  /* Compiled as saved: training continues bit for bit. */
  CHECK(kiln_model_is_compiled(loaded));
  train_step(m);
  train_step(loaded);
  a = predict(m);
  b = predict(loaded);
  CHECK(same_tensor(a, b));
  kiln_tensor_free(a);
  kiln_tensor_free(b);
  kiln_saved_model_free(sm); /* the model handle stays valid */
  b = predict(loaded);
  CHECK(b != NULL);
  kiln_tensor_free(b);
  {
    kiln_config *no_compile = NULL;
    EXPECT_OK(kiln_config_create(&no_compile));
    EXPECT_OK(kiln_config_set_bool(no_compile, "compile", false));
    EXPECT_OK(kiln_saved_model_load_model(&again, path, no_compile));
    CHECK(again && !kiln_model_is_compiled(again));
    kiln_config_free(no_compile);
  }
  kiln_layer_free(again);
  kiln_layer_free(loaded);
  kiln_layer_free(m);
}

static void test_signature(void) {
  char path[128], in_name[64];
  kiln_layer *m = small_model(), *first = NULL;
  kiln_saved_model *sm = NULL;
  const kiln_saved_model_signature *sig = NULL, *other = NULL;
  kiln_tensor_list *out = NULL;
  kiln_tensor *x = batch_x(), *y = NULL, *direct = NULL;
  const char *name = NULL, *key = NULL;
  const char *names[1];
  kiln_dtype dtype = KILN_DTYPE_BOOL;
  int64_t dims[KILN_MAX_RANK];
  size_t n = 0, rank = 0;
  EXPECT_OK(kiln_saved_model_save(m, path_in(path, sizeof path, "sig"), NULL));
  EXPECT_OK(kiln_saved_model_load(&sm, path, NULL));
  EXPECT_OK(kiln_saved_model_get_num_signatures(&n, sm));
  CHECK(n == 1);
  EXPECT_OK(kiln_saved_model_get_signature_key(&key, sm, 0));
  CHECK(key && strcmp(key, "serving_default") == 0);
  EXPECT_ERROR(kiln_saved_model_get_signature_key(&key, sm, 1), KILN_STATUS_OUT_OF_RANGE, "past the end", NULL);
  EXPECT_OK(kiln_saved_model_get_signature(&sig, sm, NULL));
  EXPECT_OK(kiln_saved_model_get_signature(&other, sm, "serving_default"));
  CHECK(sig && sig == other);
  EXPECT_ERROR(kiln_saved_model_get_signature(&other, sm, "serve"), KILN_STATUS_NOT_FOUND, "no signature 'serve'",
               "serving_default");

  EXPECT_OK(kiln_layer_get_layer(&first, m, 0));
  snprintf(in_name, sizeof in_name, "%s_input", first ? kiln_layer_get_name(first) : "?");
  kiln_layer_free(first);
  EXPECT_OK(kiln_saved_model_signature_get_num_inputs(&n, sig));
  CHECK(n == 1);
  EXPECT_OK(kiln_saved_model_signature_get_input(&name, &dtype, dims, KILN_MAX_RANK, &rank, sig, 0));
  CHECK(name && strcmp(name, in_name) == 0 && dtype == F32 && rank == 2 && dims[0] == -1 && dims[1] == 5);
  EXPECT_OK(kiln_saved_model_signature_get_num_outputs(&n, sig));
  CHECK(n == 1);
  EXPECT_OK(kiln_saved_model_signature_get_output(NULL, &dtype, dims, KILN_MAX_RANK, &rank, sig, 0));
  CHECK(dtype == F32 && rank == 2 && dims[0] == -1 && dims[1] == 3);
  EXPECT_OK(kiln_saved_model_signature_get_output(NULL, NULL, NULL, 0, &rank, sig, 0));
  CHECK(rank == 2);
  EXPECT_ERROR(kiln_saved_model_signature_get_input(&name, NULL, NULL, 0, NULL, sig, 1), KILN_STATUS_OUT_OF_RANGE,
               "input 1 is past the end", NULL);

  /* By position and by name: the model's own call. */
  EXPECT_OK(kiln_layer_call_tensor(&direct, m, x, false));
  EXPECT_OK(kiln_saved_model_signature_run(&out, sig, (const kiln_tensor *const *)&x, 1));
  if (out) EXPECT_OK(kiln_tensor_list_get(&y, out, 0));
  CHECK(same_tensor(y, direct));
  kiln_tensor_free(y);
  kiln_tensor_list_free(out);
  out = NULL;
  y = NULL;
  names[0] = in_name;
  EXPECT_OK(kiln_saved_model_signature_run_named(&out, sig, names, (const kiln_tensor *const *)&x, 1));
  if (out) EXPECT_OK(kiln_tensor_list_get(&y, out, 0));
  CHECK(same_tensor(y, direct));
  kiln_tensor_free(y);
  kiln_tensor_list_free(out);
  out = NULL;
  names[0] = "pixels";
  EXPECT_ERROR(kiln_saved_model_signature_run_named(&out, sig, names, (const kiln_tensor *const *)&x, 1), INVALID,
               "no input named 'pixels'", in_name);
  EXPECT_ERROR(kiln_saved_model_signature_run(&out, sig, (const kiln_tensor *const *)&x, 0), INVALID,
               "got 0 input(s); expected 1", NULL);
  {
    int64_t d[2] = {2, 4};
    float v[8] = {0};
    kiln_tensor *bad = f32(2, d, v);
    EXPECT_ERROR(kiln_saved_model_signature_run(&out, sig, (const kiln_tensor *const *)&bad, 1), INVALID,
                 "has shape (2, 4); expected (None, 5)", NULL);
  }
  CHECK(out == NULL);
  kiln_tensor_free(direct);
  kiln_saved_model_free(sm);
  kiln_layer_free(m);
  release_kept();
}

static void test_options_and_errors(void) {
  char path[128], file[160];
  kiln_layer *m = small_model(), *unbuilt = NULL, *l = NULL;
  kiln_saved_model *sm = NULL;
  const kiln_saved_model_signature *sig = NULL;
  kiln_config *opts = NULL;
  const char *name = NULL;
  FILE *f;
  EXPECT_OK(kiln_config_from_json(&opts, "{\"inputs\": [{\"name\": \"features\"}], \"output_names\": [\"probs\"]}"));
  EXPECT_OK(kiln_saved_model_save(m, path_in(path, sizeof path, "named"), opts));
  kiln_config_free(opts);
  EXPECT_OK(kiln_saved_model_load(&sm, path, NULL));
  EXPECT_OK(kiln_saved_model_get_signature(&sig, sm, NULL));
  EXPECT_OK(kiln_saved_model_signature_get_input(&name, NULL, NULL, 0, NULL, sig, 0));
  CHECK(name && strcmp(name, "features") == 0);
  EXPECT_OK(kiln_saved_model_signature_get_output(&name, NULL, NULL, 0, NULL, sig, 0));
  CHECK(name && strcmp(name, "probs") == 0);
  kiln_saved_model_free(sm);
  sm = NULL;

  EXPECT_OK(kiln_config_from_json(&opts, "{\"input_names\": [\"x\"]}"));
  EXPECT_ERROR(kiln_saved_model_save(m, path_in(path, sizeof path, "bad"), opts), INVALID, "input_names", NULL);
  kiln_config_free(opts);
  EXPECT_OK(kiln_config_from_json(&opts, "{\"inputs\": [{\"dtype\": \"float16\"}]}"));
  EXPECT_ERROR(kiln_saved_model_save(m, path, opts), INVALID, "dtype 'float16' is unknown", NULL);
  kiln_config_free(opts);
  CHECK(access(path, F_OK) != 0); /* nothing written */

  EXPECT_ERROR(kiln_saved_model_save(NULL, path, NULL), INVALID, "'model' is NULL", NULL);
  EXPECT_ERROR(kiln_saved_model_save(m, NULL, NULL), INVALID, "'export_dir' is NULL", NULL);
  EXPECT_ERROR(kiln_saved_model_load(NULL, path, NULL), INVALID, "'out' is NULL", NULL);
  EXPECT_ERROR(kiln_saved_model_get_signature(&sig, NULL, NULL), INVALID, "'saved_model' is NULL", NULL);
  EXPECT_ERROR(kiln_saved_model_signature_run(NULL, sig, NULL, 0), INVALID, "'out' is NULL", NULL);
  kiln_saved_model_free(NULL);

  EXPECT_OK(kiln_layer_create(&unbuilt, "Sequential", NULL));
  EXPECT_ERROR(kiln_saved_model_save(unbuilt, path, NULL), KILN_STATUS_FAILED_PRECONDITION, "is not built", NULL);
  kiln_layer_free(unbuilt);

  EXPECT_ERROR(kiln_saved_model_load(&sm, g_root, NULL), KILN_STATUS_NOT_FOUND, "has no saved_model.pb", NULL);
  CHECK(sm == NULL);
  /* A damaged manifest: the fingerprint's checksum catches it. */
  f = fopen(path_in(file, sizeof file, "named/saved_model.pb"), "r+b");
  CHECK(f != NULL);
  if (f) {
    int c;
    fseek(f, 10, SEEK_SET);
    c = fgetc(f);
    fseek(f, 10, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
  }
  EXPECT_ERROR(kiln_saved_model_load_model(&l, path_in(path, sizeof path, "named"), NULL), KILN_STATUS_DATA_LOSS,
               "changed or damaged", NULL);
  CHECK(l == NULL);
  kiln_layer_free(m);
}

/* Runs the signature of a SavedModel loaded with `options` (JSON) on x; the output, new. */
static kiln_tensor *serve(const char *path, const char *options, kiln_tensor *x) {
  kiln_config *opts = NULL;
  kiln_saved_model *sm = NULL;
  const kiln_saved_model_signature *sig = NULL;
  kiln_tensor_list *out = NULL;
  kiln_tensor *y = NULL;
  EXPECT_OK(kiln_config_from_json(&opts, options));
  EXPECT_OK(kiln_saved_model_load(&sm, path, opts));
  kiln_config_free(opts);
  if (sm) EXPECT_OK(kiln_saved_model_get_signature(&sig, sm, NULL));
  if (sig) EXPECT_OK(kiln_saved_model_signature_run(&out, sig, (const kiln_tensor *const *)&x, 1));
  if (out) EXPECT_OK(kiln_tensor_list_get(&y, out, 0));
  kiln_tensor_list_free(out);
  kiln_saved_model_free(sm);
  return y;
}

/* "inference_weights": "bfloat16" rounds and "int8" quantizes the Dense kernels at batch 1 to 8
 * only (close to the float32 results); "float32" is the default; another value is an error naming
 * the key. */
static void test_inference_weights(void) {
  char path[128];
  kiln_layer *m = small_model(), *l = NULL;
  kiln_saved_model *sm = NULL;
  kiln_config *opts = NULL;
  kiln_tensor *x9 = NULL, *x1 = NULL, *a = NULL, *b = NULL, *c = NULL;
  int64_t d1[2] = {1, 5}, d9[2] = {9, 5};
  float v1[5] = {0.5f, -0.25f, 0.125f, 1.0f, -0.75f}, v9[45];
  int i;
  for (i = 0; i < 45; ++i) v9[i] = (float)((i * 5) % 11) / 10.0f - 0.5f;
  x1 = f32(2, d1, v1);
  x9 = f32(2, d9, v9);
  EXPECT_OK(kiln_saved_model_save(m, path_in(path, sizeof path, "inference"), NULL));
  a = serve(path, "{}", x1);
  b = serve(path, "{\"inference_weights\": \"float32\"}", x1);
  c = serve(path, "{\"inference_weights\": \"bfloat16\"}", x1);
  CHECK(same_tensor(a, b));
  CHECK(c != NULL && kiln_tensor_get_num_elements(c) == 3);
  CHECK(!same_tensor(a, c)); /* the rounded kernels change the low bits */
  if (a && c)
    for (i = 0; i < 3; ++i) {
      const float p = ((const float *)kiln_tensor_get_data(a))[i],
                  q = ((const float *)kiln_tensor_get_data(c))[i];
      CHECK(p - q < 0.02f && q - p < 0.02f);
    }
  kiln_tensor_free(b);
  kiln_tensor_free(c);
  c = serve(path, "{\"inference_weights\": \"int8\"}", x1);
  CHECK(c != NULL && kiln_tensor_get_num_elements(c) == 3);
  CHECK(!same_tensor(a, c)); /* quantized */
  if (a && c)
    for (i = 0; i < 3; ++i) {
      const float p = ((const float *)kiln_tensor_get_data(a))[i],
                  q = ((const float *)kiln_tensor_get_data(c))[i];
      CHECK(p - q < 0.02f && q - p < 0.02f);
    }
  kiln_tensor_free(a);
  kiln_tensor_free(c);
  /* Nine rows, more than the gemv kernel takes: the float32 product either way. */
  a = serve(path, "{}", x9);
  c = serve(path, "{\"inference_weights\": \"bfloat16\", \"compile\": false}", x9);
  CHECK(same_tensor(a, c));
  kiln_tensor_free(c);
  c = serve(path, "{\"inference_weights\": \"int8\"}", x9);
  CHECK(same_tensor(a, c));
  kiln_tensor_free(a);
  kiln_tensor_free(c);

  EXPECT_OK(kiln_config_from_json(&opts, "{\"inference_weights\": \"float16\"}"));
  EXPECT_ERROR(kiln_saved_model_load(&sm, path, opts), INVALID, "inference_weights",
               "\"bfloat16\" or \"int8\"");
  EXPECT_ERROR(kiln_saved_model_load_model(&l, path, opts), INVALID, "'float16'", "\"float32\"");
  CHECK(sm == NULL && l == NULL);
  kiln_config_free(opts);
  EXPECT_OK(kiln_config_from_json(&opts, "{\"inference_weights\": \"bfloat16\"}"));
  EXPECT_OK(kiln_saved_model_load_model(&l, path, opts));
  kiln_config_free(opts);
  kiln_layer_free(l);
  kiln_layer_free(m);
  release_kept();
}

int main(void) {
  snprintf(g_root, sizeof g_root, "/tmp/kiln_capi_saved_model_XXXXXX");
  if (!mkdtemp(g_root)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_signature();
  test_options_and_errors();
  test_inference_weights();
  remove_tree(g_root);
  return test_summary();
}
