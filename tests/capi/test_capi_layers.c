/* Layers through the shared library alone: built-in layers by class name, Sequential, weights
 * in Keras's order, summary, configs, a custom layer through the callback table (MyDense), and
 * bad input as statuses. Plain C99. Prints "N passed, N failed"; non-zero exit on failure. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

/* OK(call): the call must succeed. */
#define OK(call) EXPECT_OK(call)

static kiln_tensor *matrix(int64_t rows, int64_t cols) {
  float *v = (float *)malloc((size_t)(rows * cols) * sizeof(float));
  int64_t dims[2];
  kiln_tensor *t = NULL;
  int64_t i;
  dims[0] = rows;
  dims[1] = cols;
  for (i = 0; i < rows * cols; ++i) v[i] = 0.1f * (float)(i % 7 - 3);
  OK(kiln_tensor_create(&t, KILN_DTYPE_FLOAT32, dims, 2, v, (size_t)(rows * cols) * sizeof(float)));
  free(v);
  return t;
}

static kiln_layer *dense(int64_t units, const char *activation) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  kiln_config_create(&c);
  kiln_config_set_int(c, "units", units);
  kiln_config_set_string(c, "activation", activation);
  OK(kiln_layer_create(&l, "Dense", c));
  kiln_config_free(c);
  return l;
}

static void test_sequential(void) {
  kiln_layer *seq = NULL, *d0 = dense(64, "relu"), *d1 = dense(10, "linear"), *got = NULL;
  kiln_variable *vars[8] = {NULL};
  size_t n = 0, i;
  int64_t dims[2] = {-1, 784}, params = 0;
  size_t rank = 2;
  char *summary = NULL;
  kiln_tensor *x = matrix(3, 784), *y = NULL;
  kiln_clear_session();
  OK(kiln_layer_create(&seq, "Sequential", NULL));
  OK(kiln_sequential_add(seq, d0));
  OK(kiln_sequential_add(seq, d1));
  OK(kiln_layer_build(seq, dims, &rank, 1));
  CHECK(kiln_layer_get_built(seq));
  CHECK(kiln_layer_is_model(seq));
  OK(kiln_layer_count_params(&params, seq));
  CHECK(params == 50890);
  OK(kiln_layer_get_variables(NULL, 0, &n, seq, KILN_VARIABLES_TRAINABLE));
  CHECK(n == 4);
  OK(kiln_layer_get_variables(vars, 8, &n, seq, KILN_VARIABLES_ALL));
  CHECK(n == 4 && vars[0] && vars[3]);
  CHECK(strstr(kiln_variable_get_name(vars[0]), "/kernel") != NULL);
  CHECK(strcmp(kiln_variable_get_name(vars[3]) + strlen(kiln_variable_get_name(vars[3])) - 5, "/bias") == 0);
  for (i = 0; i < n; ++i) kiln_variable_free(vars[i]);
  OK(kiln_layer_summary(&summary, seq, 0));
  CHECK(strstr(summary, "Total params: 50890 (198.79 KB)") != NULL);
  kiln_string_free(summary);
  OK(kiln_layer_call_tensor(&y, seq, x, false));
  CHECK(kiln_tensor_get_dims(y)[1] == 10);
  CHECK(kiln_layer_get_num_layers(seq) == 2);
  OK(kiln_layer_get_layer(&got, seq, 1));
  CHECK(kiln_layer_get_id(got) == kiln_layer_get_id(d1));
  kiln_layer_free(got);
  EXPECT_ERROR(kiln_layer_get_layer_by_name(&got, seq, "nope"), KILN_STATUS_NOT_FOUND, "no layer named 'nope'", NULL);
  EXPECT_ERROR(kiln_sequential_add(d0, d1), KILN_STATUS_INVALID_ARGUMENT, "expected a Sequential", NULL);
  OK(kiln_sequential_pop(seq));
  CHECK(kiln_layer_get_num_layers(seq) == 1);
  kiln_tensor_free(x);
  kiln_tensor_free(y);
  kiln_layer_free(d0);
  kiln_layer_free(d1);
  kiln_layer_free(seq);
}

/* Keras's InputLayer through C: first in a Sequential, it builds the model as layers are added;
 * it is not one of the model's layers and leads its config; a second one, a late one and a bad
 * config are errors. A Dense's input_shape config does the same. */
static void test_input_layer(void) {
  kiln_layer *seq = NULL, *in = NULL, *again = NULL, *d = dense(4, "linear"), *legacy = NULL, *bad = NULL;
  kiln_config *c = NULL, *ser = NULL, *inner = NULL, *first = NULL;
  kiln_tensor *x = matrix(2, 3), *y = NULL;
  int64_t params = 0;
  size_t count = 0;
  const char *cls = NULL;
  OK(kiln_config_from_json(&c, "{\"shape\": [3], \"dtype\": \"float32\", \"name\": \"features\"}"));
  OK(kiln_layer_create(&in, "InputLayer", c));
  kiln_config_free(c);
  OK(kiln_layer_create(&seq, "Sequential", NULL));
  OK(kiln_sequential_add(seq, in));
  CHECK(!kiln_layer_get_built(seq));
  OK(kiln_sequential_add(seq, d));
  CHECK(kiln_layer_get_built(seq)); /* built on add, as Keras */
  CHECK(kiln_layer_get_num_layers(seq) == 1);
  OK(kiln_layer_count_params(&params, seq));
  CHECK(params == 16);
  OK(kiln_layer_call_tensor(&y, seq, x, false));
  CHECK(y && kiln_tensor_get_dims(y)[1] == 4);
  OK(kiln_layer_serialize(&ser, seq));
  OK(kiln_config_get_config(&inner, ser, "config"));
  OK(kiln_config_get_config_at(&first, inner, "layers", 0));
  OK(kiln_config_get_string(&cls, first, "class_name"));
  CHECK(cls && strcmp(cls, "InputLayer") == 0);
  OK(kiln_layer_deserialize(&again, ser));
  CHECK(kiln_layer_get_built(again) && kiln_layer_get_num_layers(again) == 1);
  EXPECT_ERROR(kiln_sequential_add(seq, in), KILN_STATUS_INVALID_ARGUMENT, "already been configured",
               "input shape (None, 3)");
  /* The clone's input layer has the same name as `in`: Keras checks names first. */
  EXPECT_ERROR(kiln_sequential_add(again, in), KILN_STATUS_INVALID_ARGUMENT, "unique names", "'features'");
  /* Names are unique within a model, as Keras's Sequential.add requires. */
  OK(kiln_config_from_json(&c, "{\"units\": 4}"));
  OK(kiln_config_set_string(c, "name", kiln_layer_get_name(d)));
  OK(kiln_layer_create(&bad, "Dense", c));
  kiln_config_free(c);
  EXPECT_ERROR(kiln_sequential_add(seq, bad), KILN_STATUS_INVALID_ARGUMENT, "unique names",
               kiln_layer_get_name(d));
  CHECK(kiln_layer_get_num_layers(seq) == 1);
  kiln_layer_free(bad);
  bad = NULL;

  /* tf.keras 2's way: input_shape on the first layer. */
  OK(kiln_config_from_json(&c, "{\"units\": 2, \"input_shape\": [5], \"batch_size\": 8}"));
  OK(kiln_layer_create(&legacy, "Dense", c));
  kiln_config_free(c);
  kiln_layer_free(seq);
  seq = NULL;
  OK(kiln_layer_create(&seq, "Sequential", NULL));
  OK(kiln_sequential_add(seq, legacy));
  CHECK(kiln_layer_get_built(seq));
  OK(kiln_layer_get_variables(NULL, 0, &count, seq, KILN_VARIABLES_ALL));
  CHECK(count == 2);
  EXPECT_ERROR(kiln_sequential_add(seq, in), KILN_STATUS_INVALID_ARGUMENT, "already been configured",
               "input shape (8, 5)");

  OK(kiln_config_from_json(&c, "{\"shape\": [3], \"sparse\": true}"));
  EXPECT_ERROR(kiln_layer_create(&bad, "InputLayer", c), KILN_STATUS_UNIMPLEMENTED, "sparse", NULL);
  kiln_config_free(c);
  OK(kiln_config_from_json(&c, "{\"dtype\": \"float32\"}"));
  EXPECT_ERROR(kiln_layer_create(&bad, "InputLayer", c), KILN_STATUS_INVALID_ARGUMENT, "give a shape", NULL);
  kiln_config_free(c);
  CHECK(bad == NULL);
  kiln_config_free(first);
  kiln_config_free(inner);
  kiln_config_free(ser);
  kiln_tensor_free(x);
  kiln_tensor_free(y);
  kiln_layer_free(legacy);
  kiln_layer_free(again);
  kiln_layer_free(d);
  kiln_layer_free(in);
  kiln_layer_free(seq);
}

/* MyDense through the callback table: weights created in build, call = x W + b. */
typedef struct my_dense {
  int64_t units;
  kiln_variable *kernel, *bias;
  int destroyed;
} my_dense;

static kiln_status *my_build(kiln_layer *self, const int64_t *dims, const size_t *ranks, size_t n, void *user) {
  my_dense *d = (my_dense *)user;
  int64_t kshape[2];
  kiln_add_weight_options o;
  kiln_status *st;
  if (n != 1 || ranks[0] != 2) return kiln_status_create(KILN_STATUS_INVALID_ARGUMENT, "MyDense wants one 2-D input");
  kshape[0] = dims[1];
  kshape[1] = d->units;
  st = kiln_layer_add_weight(&d->kernel, self, "kernel", kshape, 2, NULL);
  if (st) return st;
  kiln_add_weight_options_init(&o, sizeof o);
  o.initializer = "zeros";
  return kiln_layer_add_weight(&d->bias, self, "bias", &d->units, 1, &o);
}

static kiln_status *my_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                            bool training, void *user) {
  my_dense *d = (my_dense *)user;
  kiln_tensor *x = NULL, *w = NULL, *b = NULL, *xw = NULL, *y = NULL;
  kiln_status *st;
  (void)self;
  (void)training;
  if ((st = kiln_tensor_list_get(&x, inputs, 0))) return st;
  kiln_variable_read(&w, d->kernel);
  kiln_variable_read(&b, d->bias);
  st = kiln_matmul(&xw, x, w, false, false);
  if (!st) st = kiln_add(&y, xw, b);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_free(x);
  kiln_tensor_free(w);
  kiln_tensor_free(b);
  kiln_tensor_free(xw);
  kiln_tensor_free(y);
  return st;
}

static kiln_status *my_get_config(kiln_config *config, const kiln_layer *self, void *user) {
  (void)self;
  return kiln_config_set_int(config, "units", ((my_dense *)user)->units);
}

static void my_destroy(void *user) {
  my_dense *d = (my_dense *)user;
  kiln_variable_free(d->kernel);
  kiln_variable_free(d->bias);
  d->kernel = d->bias = NULL;
  d->destroyed = 1;
}

static kiln_status *failing_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                                 bool training, void *user) {
  (void)outputs;
  (void)self;
  (void)inputs;
  (void)training;
  (void)user;
  return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "boom from C");
}

static void test_custom_layer(void) {
  my_dense state = {3, NULL, NULL, 0};
  kiln_layer_callbacks cb;
  kiln_layer *layer = NULL, *bad = NULL;
  kiln_tensor *x = matrix(2, 4), *y = NULL;
  kiln_config *config = NULL;
  kiln_variable *vars[2] = {NULL, NULL};
  size_t n = 0;
  int64_t units = 0;
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.build = my_build;
  cb.call = my_call;
  cb.get_config = my_get_config;
  cb.destroy = my_destroy;
  kiln_clear_session();
  OK(kiln_layer_create_custom(&layer, "MyDense", NULL, &cb, &state));
  CHECK(strcmp(kiln_layer_get_name(layer), "my_dense") == 0);
  CHECK(!kiln_layer_get_built(layer));
  OK(kiln_layer_call_tensor(&y, layer, x, false));
  CHECK(kiln_tensor_get_dims(y)[0] == 2 && kiln_tensor_get_dims(y)[1] == 3);
  OK(kiln_layer_get_variables(vars, 2, &n, layer, KILN_VARIABLES_TRAINABLE));
  CHECK(n == 2 && strcmp(kiln_variable_get_name(vars[0]), "my_dense/kernel") == 0);
  kiln_variable_free(vars[0]);
  kiln_variable_free(vars[1]);
  OK(kiln_layer_get_config(&config, layer));
  OK(kiln_config_get_int(&units, config, "units"));
  CHECK(units == 3);
  kiln_config_free(config);
  EXPECT_ERROR(kiln_layer_add_weight(&vars[0], layer, "late", &units, 1, NULL), KILN_STATUS_FAILED_PRECONDITION,
               "after the layer was built", NULL);
  CHECK(!state.destroyed);
  kiln_layer_free(layer);
  CHECK(state.destroyed); /* the last handle went: destroy ran */

  cb.call = failing_call;
  cb.build = NULL;
  cb.destroy = NULL;
  OK(kiln_layer_create_custom(&bad, "Bad", NULL, &cb, NULL));
  kiln_tensor_free(y);
  y = NULL;
  EXPECT_ERROR(kiln_layer_call_tensor(&y, bad, x, false), KILN_STATUS_OUT_OF_RANGE, "layer 'bad' (Bad) call: boom from C", NULL);
  CHECK(y == NULL);
  kiln_layer_free(bad);
  cb.call = NULL;
  EXPECT_ERROR(kiln_layer_create_custom(&bad, "Bad", NULL, &cb, NULL), KILN_STATUS_INVALID_ARGUMENT, "call is NULL", NULL);
  kiln_tensor_free(x);
}

/* Keras's `self.w = tf.Variable(...)`: variables made with kiln_variable_create, tracked with
 * kiln_layer_track_variable, are the layer's weights (trainable as made), by their names. */
static void test_tracked_variables(void) {
  my_dense state = {3, NULL, NULL, 0};
  kiln_layer_callbacks cb;
  kiln_layer *layer = NULL;
  kiln_tensor *x = matrix(2, 4), *k = matrix(4, 3), *b = matrix(1, 3), *y = NULL;
  kiln_variable *vars[3] = {NULL, NULL, NULL}, *other = NULL;
  size_t n = 0;
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = my_call;
  OK(kiln_variable_create(&state.kernel, "w", k, true));
  OK(kiln_variable_create(&state.bias, "b", b, false));
  OK(kiln_variable_create(&other, "other", b, true));
  OK(kiln_layer_create_custom(&layer, "Linear", NULL, &cb, &state));
  OK(kiln_layer_track_variable(layer, state.kernel, "w"));
  OK(kiln_layer_track_variable(layer, state.kernel, "again")); /* already a weight: not added twice */
  OK(kiln_layer_track_variable(layer, other, "b"));
  OK(kiln_layer_track_variable(layer, state.bias, "b")); /* the name given again: replaces other */
  EXPECT_ERROR(kiln_layer_track_variable(layer, state.bias, "a/b"), KILN_STATUS_INVALID_ARGUMENT,
               "without '/'", NULL);
  EXPECT_ERROR(kiln_layer_track_variable(layer, NULL, "c"), KILN_STATUS_INVALID_ARGUMENT, "variable", NULL);
  EXPECT_ERROR(kiln_layer_track_variable(layer, other, NULL), KILN_STATUS_INVALID_ARGUMENT, "name", NULL);
  EXPECT_ERROR(kiln_layer_track_variable(NULL, other, "c"), KILN_STATUS_INVALID_ARGUMENT, "layer", NULL);
  OK(kiln_layer_get_variables(vars, 3, &n, layer, KILN_VARIABLES_ALL));
  CHECK(n == 2 && kiln_variable_get_id(vars[0]) == kiln_variable_get_id(state.kernel) &&
        kiln_variable_get_id(vars[1]) == kiln_variable_get_id(state.bias));
  kiln_variable_free(vars[0]);
  kiln_variable_free(vars[1]);
  OK(kiln_layer_get_variables(vars, 3, &n, layer, KILN_VARIABLES_TRAINABLE));
  CHECK(n == 1);
  kiln_variable_free(vars[0]);
  OK(kiln_layer_call_tensor(&y, layer, x, false));
  EXPECT_ERROR(kiln_layer_track_variable(layer, other, "late"), KILN_STATUS_FAILED_PRECONDITION,
               "after the layer was built", NULL);
  kiln_layer_free(layer);
  kiln_variable_free(state.kernel);
  kiln_variable_free(state.bias);
  kiln_variable_free(other);
  kiln_tensor_free(x), kiln_tensor_free(k), kiln_tensor_free(b), kiln_tensor_free(y);
}

/* Keras's call context: a custom layer whose call calls a Dropout(0.5) with
 * training_from_context. The Dropout takes the custom layer's training; outside any call it
 * takes options.training; a struct_size that ends at masks leaves the flag unread. */
typedef struct {
  kiln_layer *dropout;
  size_t options_size; /* the struct_size the call passes on to the Dropout */
  bool inner_training; /* options.training of the inner call */
} wrap_state;

static kiln_status *wrap_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                              bool training, void *user) {
  wrap_state *w = (wrap_state *)user;
  kiln_layer_call_options o;
  kiln_tensor_list *out = NULL;
  kiln_tensor *y = NULL;
  kiln_status *st;
  (void)self;
  (void)training;
  if ((st = kiln_layer_call_options_init(&o, sizeof o))) return st;
  o.struct_size = w->options_size;
  o.training = w->inner_training;
  o.training_from_context = true;
  if ((st = kiln_layer_call_with_options(&out, NULL, w->dropout, inputs, &o))) return st;
  st = kiln_tensor_list_get(&y, out, 0);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_free(y);
  kiln_tensor_list_free(out);
  return st;
}

/* How many of y's n elements are zero. */
static int64_t zeros_in(const kiln_tensor *y, int64_t n) {
  const float *v = (const float *)kiln_tensor_get_data(y);
  int64_t i, z = 0;
  for (i = 0; i < n; ++i) z += v[i] == 0.0f;
  return z;
}

static void test_training_from_context(void) {
  enum { kRows = 50, kCols = 40 };
  static const int64_t dims[2] = {kRows, kCols};
  static float ones[kRows * kCols];
  wrap_state w = {NULL, sizeof(kiln_layer_call_options), false};
  kiln_layer_callbacks cb;
  kiln_layer *wrap = NULL;
  kiln_config *c = NULL;
  kiln_tensor *x = NULL, *y = NULL;
  kiln_tensor_list *in = NULL, *out = NULL;
  kiln_layer_call_options o;
  int i;
  for (i = 0; i < kRows * kCols; ++i) ones[i] = 1.0f;
  OK(kiln_tensor_create(&x, KILN_DTYPE_FLOAT32, dims, 2, ones, sizeof ones));
  kiln_config_create(&c);
  kiln_config_set_float(c, "rate", 0.5);
  OK(kiln_layer_create(&w.dropout, "Dropout", c));
  kiln_config_free(c);
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = wrap_call;
  OK(kiln_layer_create_custom(&wrap, "Wrap", NULL, &cb, &w));

  OK(kiln_layer_call_tensor(&y, wrap, x, true)); /* the Dropout drops: about half are zeros */
  CHECK(zeros_in(y, kRows * kCols) > 700 && zeros_in(y, kRows * kCols) < 1300);
  kiln_tensor_free(y);
  w.inner_training = true; /* from the context: the enclosing call's false wins over it */
  OK(kiln_layer_call_tensor(&y, wrap, x, false));
  CHECK(zeros_in(y, kRows * kCols) == 0);
  kiln_tensor_free(y);
  w.inner_training = false;
  w.options_size = offsetof(kiln_layer_call_options, masks) + sizeof o.masks; /* flag unread: false */
  OK(kiln_layer_call_tensor(&y, wrap, x, true));
  CHECK(zeros_in(y, kRows * kCols) == 0);
  kiln_tensor_free(y);

  /* Outside any layer call the flag falls back to options.training. */
  OK(kiln_tensor_list_create(&in));
  OK(kiln_tensor_list_append(in, x));
  OK(kiln_layer_call_options_init(&o, sizeof o));
  CHECK(!o.training_from_context);
  o.training_from_context = true;
  o.training = true;
  OK(kiln_layer_call_with_options(&out, NULL, w.dropout, in, &o));
  OK(kiln_tensor_list_get(&y, out, 0));
  CHECK(zeros_in(y, kRows * kCols) > 700);
  kiln_tensor_free(y);
  kiln_tensor_list_free(out);
  o.training = false;
  OK(kiln_layer_call_with_options(&out, NULL, w.dropout, in, &o));
  OK(kiln_tensor_list_get(&y, out, 0));
  CHECK(zeros_in(y, kRows * kCols) == 0);
  kiln_tensor_free(y);
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(in);
  kiln_layer_free(wrap);
  kiln_layer_free(w.dropout);
  kiln_tensor_free(x);
}

/* Multi-input built-ins by class name: MultiHeadAttention with a mask and the
 * return_attention_scores flag (a scalar bool input), and Concatenate. */
static void test_attention_and_merge(void) {
  static const int64_t qd[3] = {1, 2, 4}, vd[3] = {1, 3, 4}, md[3] = {1, 2, 3};
  static const float qv[8] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f};
  static const float vv[12] = {0.2f, 0.1f, -0.3f, 0.5f, 0.9f, -0.1f, 0.4f, 0.3f, -0.6f, 0.2f, 0.8f, 0.1f};
  static const uint8_t mv[6] = {1, 0, 1, 1, 1, 0}, on = 1;
  kiln_config *c = NULL;
  kiln_layer *mha = NULL, *cat = NULL;
  kiln_tensor_list *in = NULL, *out = NULL;
  kiln_tensor *q = f32(3, qd, qv), *v = f32(3, vd, vv), *mask = make(B8, 3, md, mv), *flag = make(B8, 0, NULL, &on);
  kiln_tensor *y = NULL, *scores = NULL;
  kiln_variable *vars[8] = {NULL};
  size_t n = 0, i;
  const float *p;
  kiln_clear_session();
  OK(kiln_config_create(&c));
  OK(kiln_config_set_int(c, "num_heads", 2));
  OK(kiln_config_set_int(c, "key_dim", 2));
  OK(kiln_layer_create(&mha, "MultiHeadAttention", c));
  kiln_config_free(c);
  OK(kiln_tensor_list_create(&in));
  OK(kiln_tensor_list_append(in, q));
  EXPECT_ERROR(kiln_layer_call(&out, mha, in, false), INVALID, "layer 'multi_head_attention' (MultiHeadAttention)",
               "got 1 inputs");
  OK(kiln_tensor_list_append(in, v));
  OK(kiln_tensor_list_append(in, v)); /* key = value */
  OK(kiln_tensor_list_append(in, mask));
  OK(kiln_tensor_list_append(in, flag)); /* return_attention_scores */
  OK(kiln_layer_call(&out, mha, in, false));
  CHECK(kiln_tensor_list_get_size(out) == 2);
  OK(kiln_tensor_list_get(&y, out, 0));
  OK(kiln_tensor_list_get(&scores, out, 1));
  CHECK(kiln_tensor_get_rank(y) == 3 && kiln_tensor_get_dims(y)[2] == 4);
  CHECK(kiln_tensor_get_rank(scores) == 4 && kiln_tensor_get_dims(scores)[1] == 2);
  p = fdata(scores); /* [1, 2 heads, 2, 3]: the masked probabilities are zero */
  for (i = 0; i < 12; ++i) {
    if (!mv[i % 6]) CHECK(p[i] == 0.0f);
  }
  OK(kiln_layer_get_variables(vars, 8, &n, mha, KILN_VARIABLES_TRAINABLE));
  CHECK(n == 8 && strcmp(kiln_variable_get_name(vars[0]), "multi_head_attention/query/kernel") == 0);
  for (i = 0; i < n; ++i) kiln_variable_free(vars[i]);
  kiln_tensor_free(y);
  kiln_tensor_free(scores);
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(in);

  OK(kiln_layer_create(&cat, "Concatenate", NULL));
  OK(kiln_tensor_list_create(&in));
  OK(kiln_tensor_list_append(in, q));
  OK(kiln_tensor_list_append(in, q));
  OK(kiln_layer_call(&out, cat, in, false));
  OK(kiln_tensor_list_get(&y, out, 0));
  CHECK(kiln_tensor_get_dims(y)[2] == 8);
  kiln_tensor_free(y);
  kiln_tensor_list_free(out);
  OK(kiln_tensor_list_append(in, v));
  EXPECT_ERROR(kiln_layer_call(&out, cat, in, false), INVALID, "layer 'concatenate' (Concatenate)", "matching shapes");
  kiln_tensor_list_free(in);
  kiln_layer_free(cat);
  kiln_layer_free(mha);
  release_kept(); /* q, v, mask, flag */
}

/* kiln_layer_compute_output_shapes: several inputs (Concatenate; Attention's query, value, key) and several
 * outputs (LSTM with return_state), the sizes learned with capacities 0, and bad arguments. */
static void test_compute_output_shapes(void) {
  static const int64_t cat_in[4] = {-1, 3, -1, 4}, attn_in[9] = {2, 3, 4, 2, 5, 6, 2, 5, 4},
                       seq[3] = {-1, 7, 3};
  static const size_t two[2] = {2, 2}, three[3] = {3, 3, 3}, one[1] = {3};
  int64_t dims[16];
  size_t ranks[4], count = 0, total = 0;
  kiln_config *c = NULL;
  kiln_layer *cat = NULL, *attn = NULL, *lstm = NULL;
  kiln_clear_session();
  OK(kiln_layer_create(&cat, "Concatenate", NULL));
  OK(kiln_layer_compute_output_shapes(NULL, 0, NULL, 0, &count, &total, cat, cat_in, two, 2));
  CHECK(count == 1 && total == 2);
  OK(kiln_layer_compute_output_shapes(dims, 16, ranks, 4, &count, &total, cat, cat_in, two, 2));
  CHECK(ranks[0] == 2 && dims[0] == -1 && dims[1] == 7);
  OK(kiln_layer_create(&attn, "Attention", NULL));
  OK(kiln_layer_compute_output_shapes(dims, 16, ranks, 4, &count, &total, attn, attn_in, three, 3));
  CHECK(count == 1 && ranks[0] == 3 && dims[0] == 2 && dims[1] == 3 && dims[2] == 6);
  {
    /* The scalar flag shapes may follow (Keras's formula: the query's shape, the value's dim). */
    static const size_t with_flags[5] = {3, 3, 3, 0, 0};
    OK(kiln_layer_compute_output_shapes(dims, 16, ranks, 4, &count, &total, attn, attn_in, with_flags, 5));
    CHECK(count == 1 && ranks[0] == 3 && dims[2] == 6);
  }
  OK(kiln_config_create(&c));
  OK(kiln_config_set_int(c, "units", 5));
  OK(kiln_config_set_bool(c, "return_state", true));
  OK(kiln_layer_create(&lstm, "LSTM", c));
  kiln_config_free(c);
  OK(kiln_layer_compute_output_shapes(dims, 16, ranks, 4, &count, &total, lstm, seq, one, 1));
  CHECK(count == 3 && total == 6 && ranks[0] == 2 && ranks[1] == 2 && ranks[2] == 2);
  CHECK(dims[0] == -1 && dims[1] == 5 && dims[3] == 5 && dims[5] == 5);
  EXPECT_ERROR(kiln_layer_compute_output_shapes(dims, 16, ranks, 4, NULL, &total, lstm, seq, one, 1), INVALID,
               "'out_count' is NULL", NULL);
  EXPECT_ERROR(kiln_layer_compute_output_shapes(NULL, 16, ranks, 4, &count, &total, lstm, seq, one, 1),
               INVALID, "'out_dims' is NULL", NULL);
  EXPECT_ERROR(kiln_layer_compute_output_shapes(dims, 16, ranks, 4, &count, &total, NULL, seq, one, 1),
               INVALID, "'layer' is NULL", NULL);
  kiln_layer_free(cat);
  kiln_layer_free(attn);
  kiln_layer_free(lstm);
}

static void test_initializer(void) {
  kiln_config *c = NULL;
  kiln_tensor *t = NULL;
  int64_t dims[2] = {2, 3};
  int i;
  OK(kiln_config_create(&c));
  OK(kiln_config_set_string(c, "class_name", "ones"));
  OK(kiln_initializer_call(&t, c, dims, 2, KILN_DTYPE_FLOAT32));
  for (i = 0; i < 6; ++i) CHECK(((const float *)kiln_tensor_get_data(t))[i] == 1.0f);
  kiln_tensor_free(t);
  t = NULL;
  OK(kiln_config_set_string(c, "class_name", "nope"));
  EXPECT_ERROR(kiln_initializer_call(&t, c, dims, 2, KILN_DTYPE_FLOAT32), KILN_STATUS_NOT_FOUND,
               "unknown initializer 'nope'", NULL);
  OK(kiln_config_set_string(c, "class_name", "glorot_uniform")); /* zeros/ones/constant fill ints too, as Keras */
  EXPECT_ERROR(kiln_initializer_call(&t, c, dims, 2, KILN_DTYPE_INT32), KILN_STATUS_INVALID_ARGUMENT, "int32", NULL);
  kiln_config_free(c);
}

static kiln_status *no_from_config(kiln_layer **out, const kiln_config *config, void *user) {
  (void)out;
  (void)config;
  (void)user;
  return kiln_status_create(KILN_STATUS_UNIMPLEMENTED, "not used");
}

static void test_errors(void) {
  kiln_layer *l = NULL;
  kiln_config *c = NULL;
  kiln_tensor *y = NULL;
  EXPECT_ERROR(kiln_layer_create(&l, "Dense2", NULL), KILN_STATUS_NOT_FOUND, "unknown layer class 'Dense2'", NULL);
  EXPECT_ERROR(kiln_layer_create(&l, "Dense", NULL), KILN_STATUS_INVALID_ARGUMENT, "'units' is required", NULL);
  OK(kiln_config_create(&c));
  OK(kiln_config_set_string(c, "units", "8"));
  EXPECT_ERROR(kiln_layer_create(&l, "Dense", c), KILN_STATUS_INVALID_ARGUMENT, "key 'units' is a string", NULL);
  kiln_config_free(c);
  CHECK(l == NULL);
  EXPECT_ERROR(kiln_layer_call_tensor(&y, NULL, NULL, false), KILN_STATUS_INVALID_ARGUMENT, "'layer' is NULL", NULL);
  CHECK(kiln_layer_get_name(NULL) == NULL);
  CHECK(kiln_layer_get_id(NULL) == 0);
  kiln_layer_free(NULL);
  kiln_tensor_list_free(NULL);
  {
    /* Names are UTF-8 text (they reach configs): not UTF-8 is refused where it is given. */
    static const char *bad = "My\xff\xfeLayer";
    kiln_layer_callbacks cb;
    kiln_callback_table t;
    kiln_callback *cbk = NULL;
    kiln_dataset *ds = NULL;
    kiln_tensor_list *xs = NULL;
    const char *names[1] = {"\xc0\xaf"};
    memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.call = my_call;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    EXPECT_ERROR(kiln_layer_create_custom(&l, bad, NULL, &cb, NULL), KILN_STATUS_INVALID_ARGUMENT,
                 "the class name is not valid UTF-8", "byte 0xFF at offset 2");
    EXPECT_ERROR(kiln_model_create_custom(&l, bad, NULL, &cb, NULL), KILN_STATUS_INVALID_ARGUMENT,
                 "not valid UTF-8", NULL);
    EXPECT_ERROR(kiln_callback_create_custom(&cbk, bad, &t, NULL), KILN_STATUS_INVALID_ARGUMENT,
                 "not valid UTF-8", NULL);
    kiln_tensor *m = matrix(2, 2);
    kiln_layer_class_callbacks cc;
    memset(&cc, 0, sizeof cc);
    cc.struct_size = sizeof cc;
    cc.from_config = no_from_config;
    EXPECT_ERROR(kiln_layer_register_class(bad, &cc, NULL), KILN_STATUS_INVALID_ARGUMENT, "not valid UTF-8",
                 NULL);
    OK(kiln_tensor_list_create(&xs));
    OK(kiln_tensor_list_append(xs, m));
    kiln_tensor_free(m);
    EXPECT_ERROR(kiln_dataset_from_tensor_slices(&ds, xs, names), KILN_STATUS_INVALID_ARGUMENT,
                 "a component's name is not valid UTF-8", NULL);
    CHECK(l == NULL && cbk == NULL && ds == NULL);
    kiln_tensor_list_free(xs);
  }
}

/* An activity regularizer's loss is divided by the batch size, as tf.keras adds it: Dense(2) with
 * kernel ones on ones[4, 3] gives y = 3, l2 0.01 * 8 * 9 = 0.72, over 4 rows 0.18. */
static void test_activity_regularizer(void) {
  static const int64_t xd[2] = {4, 3}, scalar[1] = {0};
  static const float ones[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, want = 0.18f;
  kiln_config *c = NULL;
  kiln_layer *d = NULL;
  kiln_tensor_list *in = list1(f32(2, xd, ones)), *out = NULL, *losses = NULL;
  kiln_tensor *loss = NULL;
  OK(kiln_config_create(&c));
  OK(kiln_config_set_int(c, "units", 2));
  OK(kiln_config_set_string(c, "activity_regularizer", "l2"));
  OK(kiln_config_set_string(c, "kernel_initializer", "ones"));
  OK(kiln_layer_create(&d, "Dense", c));
  kiln_config_free(c);
  OK(kiln_layer_call(&out, d, in, false));
  OK(kiln_layer_get_losses(&losses, d));
  CHECK(kiln_tensor_list_get_size(losses) == 1);
  OK(kiln_tensor_list_get(&loss, losses, 0));
  if (loss) expect_f32(loss, 0, scalar, &want, 1e-6);
  kiln_tensor_list_free(losses);
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(in);
  kiln_layer_free(d);
  release_kept();
}

int main(void) {
  test_input_layer();
  test_sequential();
  test_custom_layer();
  test_tracked_variables();
  test_training_from_context();
  test_attention_and_merge();
  test_compute_output_shapes();
  test_activity_regularizer();
  test_initializer();
  test_errors();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
