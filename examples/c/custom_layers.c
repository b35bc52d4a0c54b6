/* The seed's custom-layer examples in C (see examples/python/custom_layers.py, which prints the
 * same numbers): MyDense inside a custom model, a SegPosEmbedding whose build creates its tables,
 * and the summary of a nested Sequential, all through kiln_layer_callbacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"

static int g_error = 0;

/* Prints a failed call's message and remembers the failure. */
static void must(kiln_status *st) {
  if (!st) return;
  fprintf(stderr, "error: %s\n", kiln_status_get_message(st));
  kiln_status_free(st);
  g_error = 1;
}

static kiln_tensor *pattern(const int64_t *dims, size_t rank, float scale) {
  int64_t n = 1, i;
  size_t k;
  float *v;
  kiln_tensor *t = NULL;
  for (k = 0; k < rank; ++k) n *= dims[k];
  v = (float *)malloc((size_t)n * sizeof(float));
  for (i = 0; i < n; ++i) v[i] = scale * (float)(i % 7 - 3);
  must(kiln_tensor_create(&t, KILN_DTYPE_FLOAT32, dims, rank, v, (size_t)n * sizeof(float)));
  free(v);
  return t;
}

static void show(const char *label, const kiln_tensor *t) {
  int64_t n = 1, i;
  int r;
  const float *v = (const float *)kiln_tensor_get_data(t);
  for (r = 0; r < kiln_tensor_get_rank(t); ++r) n *= kiln_tensor_get_dims(t)[r];
  printf("%s", label);
  for (i = 0; i < n; ++i) printf(" %.6g", (double)v[i]);
  printf("\n");
}

static void names(const kiln_layer *layer, kiln_variables_kind kind) {
  kiln_variable *vars[16];
  size_t n = 0, i;
  must(kiln_layer_get_variables(vars, 16, &n, layer, kind));
  printf("variables");
  for (i = 0; i < n && i < 16; ++i) {
    printf(" %s", kiln_variable_get_name(vars[i]));
    kiln_variable_free(vars[i]);
  }
  printf("\n");
}

/* The one input of a call, a new handle. */
static kiln_tensor *input(const kiln_tensor_list *inputs, size_t i) {
  kiln_tensor *t = NULL;
  must(kiln_tensor_list_get(&t, inputs, i));
  return t;
}

static kiln_status *add_weight(kiln_variable **out, kiln_layer *layer, const char *name, int64_t d0, int64_t d1,
                               size_t rank, const char *initializer) {
  kiln_add_weight_options o;
  int64_t dims[2];
  kiln_status *st = kiln_add_weight_options_init(&o, sizeof o);
  dims[0] = d0;
  dims[1] = d1;
  o.initializer = initializer;
  return st ? st : kiln_layer_add_weight(out, layer, name, dims, rank, &o);
}

/* ---- MyDense: y = x W + b, weights created with the layer */
typedef struct {
  kiln_variable *w, *b;
} my_dense;

static kiln_status *my_dense_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                                  bool training, void *user) {
  my_dense *d = (my_dense *)user;
  kiln_tensor *x = input(inputs, 0), *w = NULL, *b = NULL, *xw = NULL, *y = NULL;
  kiln_status *st = kiln_variable_read(&w, d->w);
  (void)self;
  (void)training;
  if (!st) st = kiln_variable_read(&b, d->b);
  if (!st) st = kiln_matmul(&xw, x, w, false, false);
  if (!st) st = kiln_add(&y, xw, b);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_free(x);
  kiln_tensor_free(w);
  kiln_tensor_free(b);
  kiln_tensor_free(xw);
  kiln_tensor_free(y);
  return st;
}

static void my_dense_destroy(void *user) {
  my_dense *d = (my_dense *)user;
  kiln_variable_free(d->w);
  kiln_variable_free(d->b);
  free(d);
}

static kiln_layer *make_my_dense(int64_t in, int64_t out) {
  kiln_layer_callbacks cb;
  kiln_layer *layer = NULL;
  my_dense *d = (my_dense *)calloc(1, sizeof *d);
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = my_dense_call;
  cb.destroy = my_dense_destroy;
  must(kiln_layer_create_custom(&layer, "MyDense", NULL, &cb, d));
  must(add_weight(&d->w, layer, "kernel", in, out, 2, "random_normal"));
  must(add_weight(&d->b, layer, "bias", out, 0, 1, "zeros"));
  return layer;
}

/* ---- MyModel: dense2(relu(dense1(x))) */
typedef struct {
  kiln_layer *dense1, *dense2;
} my_model;

static kiln_status *my_model_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                                  bool training, void *user) {
  my_model *m = (my_model *)user;
  kiln_tensor *x = input(inputs, 0), *h = NULL, *r = NULL, *y = NULL;
  kiln_status *st = kiln_layer_call_tensor(&h, m->dense1, x, training);
  (void)self;
  if (!st) st = kiln_relu(&r, h);
  if (!st) st = kiln_layer_call_tensor(&y, m->dense2, r, training);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_free(x);
  kiln_tensor_free(h);
  kiln_tensor_free(r);
  kiln_tensor_free(y);
  return st;
}

static void my_model_destroy(void *user) {
  my_model *m = (my_model *)user;
  kiln_layer_free(m->dense1);
  kiln_layer_free(m->dense2);
  free(m);
}

/* ---- SegPosEmbedding: norm(x + types[t] + positions[0..seq)), dropout; tables made in build */
typedef struct {
  int64_t type_vocab, max_len;
  kiln_layer *norm, *drop;
  kiln_variable *types, *positions;
} seg_pos;

static kiln_status *seg_pos_build(kiln_layer *self, const int64_t *dims, const size_t *ranks, size_t n,
                                  void *user) {
  seg_pos *s = (seg_pos *)user;
  const int64_t hidden = dims[ranks[0] - 1];
  kiln_status *st = add_weight(&s->types, self, "token_type_embeddings", s->type_vocab, hidden, 2,
                               "truncated_normal");
  (void)n;
  return st ? st : add_weight(&s->positions, self, "position_embeddings", s->max_len, hidden, 2, "truncated_normal");
}

static kiln_status *seg_pos_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                                 bool training, void *user) {
  seg_pos *s = (seg_pos *)user;
  kiln_tensor *x = input(inputs, 0), *t = input(inputs, 1), *types = NULL, *positions = NULL, *pos = NULL;
  kiln_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *y = NULL;
  kiln_status *st = kiln_variable_read(&types, s->types);
  (void)self;
  if (!st) st = kiln_variable_read(&positions, s->positions);
  if (!st) st = kiln_range(&pos, 0, (double)kiln_tensor_get_dims(x)[1], 1, KILN_DTYPE_INT32);
  if (!st) st = kiln_gather(&a, types, t, 0, 0);
  if (!st) st = kiln_gather(&b, positions, pos, 0, 0);
  if (!st) st = kiln_add(&c, x, a);
  if (!st) st = kiln_add(&d, c, b);
  if (!st) st = kiln_layer_call_tensor(&e, s->norm, d, training);
  if (!st) st = kiln_layer_call_tensor(&y, s->drop, e, training);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_free(x), kiln_tensor_free(t), kiln_tensor_free(types), kiln_tensor_free(positions);
  kiln_tensor_free(pos), kiln_tensor_free(a), kiln_tensor_free(b), kiln_tensor_free(c), kiln_tensor_free(d);
  kiln_tensor_free(e), kiln_tensor_free(y);
  return st;
}

static void seg_pos_destroy(void *user) {
  seg_pos *s = (seg_pos *)user;
  kiln_layer_free(s->norm);
  kiln_layer_free(s->drop);
  kiln_variable_free(s->types);
  kiln_variable_free(s->positions);
  free(s);
}

static kiln_layer *builtin(const char *class_name, const char *key, double value) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  must(kiln_config_create(&c));
  if (key) must(kiln_config_set_float(c, key, value));
  must(kiln_layer_create(&l, class_name, c));
  kiln_config_free(c);
  return l;
}

static kiln_layer *dense(int64_t units, const char *activation) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  must(kiln_config_create(&c));
  must(kiln_config_set_int(c, "units", units));
  must(kiln_config_set_string(c, "activation", activation));
  must(kiln_layer_create(&l, "Dense", c));
  kiln_config_free(c);
  return l;
}

int main(void) {
  kiln_layer_callbacks cb;
  kiln_layer *model = NULL, *emb = NULL, *inner = NULL, *outer = NULL, *d64, *d10, *d2;
  my_model *m = (my_model *)calloc(1, sizeof *m);
  seg_pos *s = (seg_pos *)calloc(1, sizeof *s);
  kiln_tensor *x, *h, *t = NULL, *y = NULL;
  kiln_tensor_list *in = NULL, *out = NULL;
  const int64_t xd[2] = {2, 4}, hd[3] = {2, 3, 4}, td[2] = {2, 3}, shape[2] = {-1, 784};
  const int32_t token_types[6] = {0, 1, 1, 1, 0, 0};
  const size_t rank = 2;
  char *summary = NULL;

  kiln_set_seed(1234);
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = my_model_call;
  cb.destroy = my_model_destroy;
  must(kiln_model_create_custom(&model, "MyModel", NULL, &cb, m));
  m->dense1 = make_my_dense(4, 8);
  m->dense2 = make_my_dense(8, 3);
  must(kiln_layer_track(model, m->dense1));
  must(kiln_layer_track(model, m->dense2));
  x = pattern(xd, 2, 0.25f);
  must(kiln_layer_call_tensor(&y, model, x, false));
  if (g_error) return 1;
  show("mymodel", y);
  names(model, KILN_VARIABLES_TRAINABLE);
  kiln_tensor_free(y);

  cb.build = seg_pos_build;
  cb.call = seg_pos_call;
  cb.destroy = seg_pos_destroy;
  s->type_vocab = 2;
  s->max_len = 6;
  must(kiln_layer_create_custom(&emb, "SegPosEmbedding", NULL, &cb, s));
  s->norm = builtin("LayerNormalization", NULL, 0);
  s->drop = builtin("Dropout", "rate", 0.1);
  must(kiln_layer_track(emb, s->norm));
  must(kiln_layer_track(emb, s->drop));
  h = pattern(hd, 3, 0.125f);
  must(kiln_tensor_create(&t, KILN_DTYPE_INT32, td, 2, token_types, sizeof token_types));
  must(kiln_tensor_list_create(&in));
  must(kiln_tensor_list_append(in, h));
  must(kiln_tensor_list_append(in, t));
  must(kiln_layer_call(&out, emb, in, false));
  if (g_error) return 1;
  must(kiln_tensor_list_get(&y, out, 0));
  show("segpos", y);
  names(emb, KILN_VARIABLES_ALL);

  d64 = dense(64, "relu");
  d10 = dense(10, "linear");
  must(kiln_layer_create(&inner, "Sequential", NULL));
  must(kiln_sequential_add(inner, d64));
  must(kiln_sequential_add(inner, d10));
  d2 = dense(2, "linear");
  must(kiln_layer_create(&outer, "Sequential", NULL));
  must(kiln_sequential_add(outer, inner));
  must(kiln_sequential_add(outer, d2));
  must(kiln_layer_build(outer, shape, &rank, 1));
  must(kiln_layer_summary(&summary, outer, 0));
  if (g_error) return 1;
  printf("%s", summary);

  kiln_string_free(summary);
  kiln_tensor_free(x), kiln_tensor_free(h), kiln_tensor_free(t), kiln_tensor_free(y);
  kiln_tensor_list_free(in), kiln_tensor_list_free(out);
  kiln_layer_free(model), kiln_layer_free(emb), kiln_layer_free(inner), kiln_layer_free(outer);
  kiln_layer_free(d64), kiln_layer_free(d10), kiln_layer_free(d2);
  return g_error;
}
