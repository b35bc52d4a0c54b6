/* A small BERT-style encoder in C (see examples/python/bert_encoder.py, which prints the same
 * numbers): token embeddings plus a custom SegPosEmbedding, two encoder blocks (self-attention and
 * a GELU feed-forward network, each with dropout, a residual and LayerNormalization), mean-pooling
 * and a Dense classifier; one forward and backward pass under a GradientTape. The custom layers
 * and the model are kiln_layer_callbacks tables over one user_data struct. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"

enum { BATCH = 2, SEQ = 8, HIDDEN = 16, HEADS = 4, VOCAB = 50, TYPES = 2, CLASSES = 3, MAX_PARTS = 8 };

static int g_error = 0;

/* Prints a failed call's message and remembers the failure. */
static void must(kiln_status *st) {
  if (!st) return;
  fprintf(stderr, "error: %s\n", kiln_status_get_message(st));
  kiln_status_free(st);
  g_error = 1;
}

static void free_tensors(kiln_tensor **ts, size_t n) {
  size_t i;
  for (i = 0; i < n; ++i) kiln_tensor_free(ts[i]);
}

/* The one input of a call at index i, a new handle. */
static kiln_tensor *input(const kiln_tensor_list *inputs, size_t i) {
  kiln_tensor *t = NULL;
  must(kiln_tensor_list_get(&t, inputs, i));
  return t;
}

/* ---- built-in layers from their Keras configs */

static kiln_layer *create(const char *class_name, kiln_config *c) {
  kiln_layer *l = NULL;
  must(kiln_layer_create(&l, class_name, c));
  kiln_config_free(c);
  return l;
}

static kiln_config *config(void) {
  kiln_config *c = NULL;
  must(kiln_config_create(&c));
  return c;
}

static kiln_layer *dropout(int64_t seed) {
  kiln_config *c = config();
  must(kiln_config_set_float(c, "rate", 0.1));
  must(kiln_config_set_int(c, "seed", seed));
  return create("Dropout", c);
}

static kiln_layer *dense(int64_t units, const char *activation) {
  kiln_config *c = config();
  must(kiln_config_set_int(c, "units", units));
  must(kiln_config_set_string(c, "activation", activation));
  return create("Dense", c);
}

static kiln_layer *attention(int64_t hidden, int64_t heads, int64_t seed) {
  kiln_config *c = config();
  must(kiln_config_set_int(c, "num_heads", heads));
  must(kiln_config_set_int(c, "key_dim", hidden / heads));
  must(kiln_config_set_float(c, "dropout", 0.1));
  must(kiln_config_set_int(c, "seed", seed));
  return create("MultiHeadAttention", c);
}

static kiln_layer *token_embedding(void) {
  kiln_config *c = config();
  must(kiln_config_set_int(c, "input_dim", VOCAB));
  must(kiln_config_set_int(c, "output_dim", HIDDEN));
  must(kiln_config_set_string(c, "embeddings_initializer", "random_uniform"));
  return create("Embedding", c);
}

/* ---- custom layers: every one keeps its sub-layers (in tracking order) in one struct */

typedef struct {
  kiln_layer *part[MAX_PARTS];
  size_t num_parts;
  int64_t type_vocab, max_len;      /* SegPosEmbedding's table sizes */
  kiln_variable *types, *positions; /* SegPosEmbedding's tables, made in build */
} parts;

static void parts_destroy(void *user) {
  parts *p = (parts *)user;
  size_t i;
  for (i = 0; i < p->num_parts; ++i) kiln_layer_free(p->part[i]);
  kiln_variable_free(p->types);
  kiln_variable_free(p->positions);
  free(p);
}

typedef kiln_status *(*build_fn)(kiln_layer *, const int64_t *, const size_t *, size_t, void *);
typedef kiln_status *(*call_fn)(kiln_tensor_list *, kiln_layer *, const kiln_tensor_list *, bool, void *);

/* A custom layer (or model) of class_name over p. Made before its sub-layers, as a Python
 * subclass's super().__init__() is. */
static kiln_layer *custom(const char *class_name, bool model, build_fn build, call_fn call, parts *p) {
  kiln_layer_callbacks cb;
  kiln_layer *layer = NULL;
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.build = build;
  cb.call = call;
  cb.destroy = parts_destroy;
  must(model ? kiln_model_create_custom(&layer, class_name, NULL, &cb, p)
             : kiln_layer_create_custom(&layer, class_name, NULL, &cb, p));
  return layer;
}

/* Tracks child as layer's next sub-layer; p keeps it for the calls (and frees it). */
static void adopt(kiln_layer *layer, parts *p, kiln_layer *child) {
  if (p->num_parts == MAX_PARTS) {
    g_error = 1;
    return;
  }
  p->part[p->num_parts++] = child;
  must(kiln_layer_track(layer, child));
}

static kiln_status *add_table(kiln_variable **out, kiln_layer *layer, const char *name, int64_t rows,
                              int64_t cols) {
  kiln_add_weight_options o;
  int64_t dims[2];
  kiln_status *st = kiln_add_weight_options_init(&o, sizeof o);
  dims[0] = rows;
  dims[1] = cols;
  o.initializer = "truncated_normal";
  return st ? st : kiln_layer_add_weight(out, layer, name, dims, 2, &o);
}

/* ---- SegPosEmbedding: norm(x + types[t] + positions[0..seq)), dropout; tables made in build */
enum { SEG_NORM, SEG_DROP };

static kiln_status *seg_pos_build(kiln_layer *self, const int64_t *dims, const size_t *ranks, size_t n,
                                  void *user) {
  parts *s = (parts *)user;
  const int64_t hidden = dims[ranks[0] - 1];
  kiln_status *st = add_table(&s->types, self, "token_type_embeddings", s->type_vocab, hidden);
  (void)n;
  return st ? st : add_table(&s->positions, self, "position_embeddings", s->max_len, hidden);
}

static kiln_status *seg_pos_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                                 bool training, void *user) {
  parts *s = (parts *)user;
  kiln_tensor *x = input(inputs, 0), *t = input(inputs, 1), *types = NULL, *positions = NULL, *pos = NULL;
  kiln_tensor *ti = NULL, *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *y = NULL;
  /* As Keras's Embedding, indices of another dtype are cast: a model's build calls it on float zeros. */
  kiln_status *st = kiln_cast(&ti, t, KILN_DTYPE_INT32);
  (void)self;
  if (!st) st = kiln_variable_read(&types, s->types);
  if (!st) st = kiln_variable_read(&positions, s->positions);
  if (!st) st = kiln_range(&pos, 0, (double)kiln_tensor_get_dims(x)[1], 1, KILN_DTYPE_INT32);
  if (!st) st = kiln_gather(&a, types, ti, 0, 0);
  if (!st) st = kiln_gather(&b, positions, pos, 0, 0);
  if (!st) st = kiln_add(&c, x, a);
  if (!st) st = kiln_add(&d, c, b);
  if (!st) st = kiln_layer_call_tensor(&e, s->part[SEG_NORM], d, training);
  if (!st) st = kiln_layer_call_tensor(&y, s->part[SEG_DROP], e, training);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  {
    kiln_tensor *all[] = {x, t, ti, types, positions, pos, a, b, c, d, e, y};
    free_tensors(all, sizeof all / sizeof *all);
  }
  return st;
}

static kiln_layer *seg_pos_embedding(int64_t type_vocab, int64_t max_len, int64_t seed) {
  parts *p = (parts *)calloc(1, sizeof *p);
  kiln_layer *layer;
  p->type_vocab = type_vocab;
  p->max_len = max_len;
  layer = custom("SegPosEmbedding", false, seg_pos_build, seg_pos_call, p);
  adopt(layer, p, create("LayerNormalization", config()));
  adopt(layer, p, dropout(seed));
  return layer;
}

/* ---- EncoderBlock: norm1(x + drop(mha(x, x))), then norm2(h + drop(ffn(h))) */
enum { ATTENTION, ATTENTION_DROPOUT, ATTENTION_NORM, FFN_INNER, FFN_OUTER, FFN_DROPOUT, FFN_NORM };

static kiln_status *encoder_block_call(kiln_tensor_list *outputs, kiln_layer *self,
                                       const kiln_tensor_list *inputs, bool training, void *user) {
  parts *b = (parts *)user;
  kiln_tensor *x = input(inputs, 0), *a = NULL, *ad = NULL, *r1 = NULL, *h = NULL;
  kiln_tensor *f1 = NULL, *f2 = NULL, *fd = NULL, *r2 = NULL, *y = NULL;
  kiln_tensor_list *query_value = NULL, *attended = NULL;
  kiln_status *st = kiln_tensor_list_create(&query_value);
  (void)self;
  if (!st) st = kiln_tensor_list_append(query_value, x);
  if (!st) st = kiln_tensor_list_append(query_value, x);
  if (!st) st = kiln_layer_call(&attended, b->part[ATTENTION], query_value, training);
  if (!st) st = kiln_tensor_list_get(&a, attended, 0);
  if (!st) st = kiln_layer_call_tensor(&ad, b->part[ATTENTION_DROPOUT], a, training);
  if (!st) st = kiln_add(&r1, x, ad);
  if (!st) st = kiln_layer_call_tensor(&h, b->part[ATTENTION_NORM], r1, training);
  if (!st) st = kiln_layer_call_tensor(&f1, b->part[FFN_INNER], h, training);
  if (!st) st = kiln_layer_call_tensor(&f2, b->part[FFN_OUTER], f1, training);
  if (!st) st = kiln_layer_call_tensor(&fd, b->part[FFN_DROPOUT], f2, training);
  if (!st) st = kiln_add(&r2, h, fd);
  if (!st) st = kiln_layer_call_tensor(&y, b->part[FFN_NORM], r2, training);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_list_free(query_value);
  kiln_tensor_list_free(attended);
  {
    kiln_tensor *all[] = {x, a, ad, r1, h, f1, f2, fd, r2, y};
    free_tensors(all, sizeof all / sizeof *all);
  }
  return st;
}

static kiln_layer *encoder_block(int64_t hidden, int64_t heads, int64_t seed) {
  parts *p = (parts *)calloc(1, sizeof *p);
  kiln_layer *layer = custom("EncoderBlock", false, NULL, encoder_block_call, p);
  adopt(layer, p, attention(hidden, heads, seed));
  adopt(layer, p, dropout(seed + 1));
  adopt(layer, p, create("LayerNormalization", config()));
  adopt(layer, p, dense(4 * hidden, "gelu"));
  adopt(layer, p, dense(hidden, "linear"));
  adopt(layer, p, dropout(seed + 2));
  adopt(layer, p, create("LayerNormalization", config()));
  return layer;
}

/* ---- BertEncoder: classifier(pool(block2(block1(seg_pos(tokens(ids), types))))) */
enum { TOKENS, SEG_POS, BLOCK1, BLOCK2, POOL, CLASSIFIER };

static kiln_status *bert_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                              bool training, void *user) {
  parts *m = (parts *)user;
  kiln_tensor *ids = input(inputs, 0), *types = input(inputs, 1), *e = NULL, *h0 = NULL, *h1 = NULL,
              *h2 = NULL;
  kiln_tensor *pooled = NULL, *logits = NULL;
  kiln_tensor_list *seg_in = NULL, *seg_out = NULL;
  kiln_status *st = kiln_layer_call_tensor(&e, m->part[TOKENS], ids, training);
  (void)self;
  if (!st) st = kiln_tensor_list_create(&seg_in);
  if (!st) st = kiln_tensor_list_append(seg_in, e);
  if (!st) st = kiln_tensor_list_append(seg_in, types);
  if (!st) st = kiln_layer_call(&seg_out, m->part[SEG_POS], seg_in, training);
  if (!st) st = kiln_tensor_list_get(&h0, seg_out, 0);
  if (!st) st = kiln_layer_call_tensor(&h1, m->part[BLOCK1], h0, training);
  if (!st) st = kiln_layer_call_tensor(&h2, m->part[BLOCK2], h1, training);
  if (!st) st = kiln_layer_call_tensor(&pooled, m->part[POOL], h2, training);
  if (!st) st = kiln_layer_call_tensor(&logits, m->part[CLASSIFIER], pooled, training);
  if (!st) st = kiln_tensor_list_append(outputs, logits);
  kiln_tensor_list_free(seg_in);
  kiln_tensor_list_free(seg_out);
  {
    kiln_tensor *all[] = {ids, types, e, h0, h1, h2, pooled, logits};
    free_tensors(all, sizeof all / sizeof *all);
  }
  return st;
}

static kiln_layer *bert_encoder(void) {
  parts *p = (parts *)calloc(1, sizeof *p);
  kiln_layer *model = custom("BertEncoder", true, NULL, bert_call, p);
  adopt(model, p, token_embedding());
  adopt(model, p, seg_pos_embedding(TYPES, SEQ, 1));
  adopt(model, p, encoder_block(HIDDEN, HEADS, 10));
  adopt(model, p, encoder_block(HIDDEN, HEADS, 20));
  adopt(model, p, create("GlobalAveragePooling1D", config()));
  adopt(model, p, dense(CLASSES, "linear"));
  return model;
}

/* ---- printing */

static void show(const char *label, const kiln_tensor *t) {
  const float *v = (const float *)kiln_tensor_get_data(t);
  int64_t i, n = kiln_tensor_get_num_elements(t);
  printf("%s", label);
  for (i = 0; i < n; ++i) printf(" %.9g", (double)v[i]);
  printf("\n");
}

static void show_gradient(const kiln_variable *v, const kiln_tensor *g) {
  const float *x = (const float *)kiln_tensor_get_data(g);
  const int64_t *dims = kiln_tensor_get_dims(g);
  int64_t i, n = kiln_tensor_get_num_elements(g);
  double total = 0;
  int r;
  printf("%s [", kiln_variable_get_name(v));
  for (r = 0; r < kiln_tensor_get_rank(g); ++r) printf(r ? ",%lld" : "%lld", (long long)dims[r]);
  for (i = 0; i < n; ++i) total += x[i];
  printf("] grad sum %.9g first", total);
  for (i = 0; i < n && i < 3; ++i) printf(" %.9g", (double)x[i]);
  printf("\n");
}

static kiln_tensor *int_tensor(const int32_t *v, const int64_t *dims, size_t rank, size_t n) {
  kiln_tensor *t = NULL;
  must(kiln_tensor_create(&t, KILN_DTYPE_INT32, dims, rank, v, n * sizeof *v));
  return t;
}

int main(void) {
  enum { MAX_VARS = 64 };
  int32_t ids[BATCH * SEQ], types[BATCH * SEQ], labels[BATCH];
  const int64_t dims[2] = {BATCH, SEQ};
  kiln_variable *vars[MAX_VARS];
  kiln_tensor *grads[MAX_VARS];
  kiln_tensor *x_ids, *x_types, *y, *logits = NULL, *per_example = NULL, *loss = NULL;
  kiln_tensor_list *in = NULL, *out = NULL;
  kiln_layer *model;
  kiln_tape *tape = NULL;
  size_t n = 0, i;
  char *summary = NULL;

  kiln_set_seed(1234);
  model = bert_encoder();
  for (i = 0; i < BATCH * SEQ; ++i) {
    ids[i] = (int32_t)((7 * i + 3) % VOCAB);
    types[i] = i % SEQ >= SEQ / 2 ? 1 : 0;
  }
  for (i = 0; i < BATCH; ++i) labels[i] = (int32_t)((i + 1) % CLASSES);
  x_ids = int_tensor(ids, dims, 2, BATCH * SEQ);
  x_types = int_tensor(types, dims, 2, BATCH * SEQ);
  y = int_tensor(labels, dims, 1, BATCH);
  must(kiln_tensor_list_create(&in));
  must(kiln_tensor_list_append(in, x_ids));
  must(kiln_tensor_list_append(in, x_types));
  if (g_error) return 1;

  must(kiln_tape_create(&tape, false, true));
  must(kiln_layer_call(&out, model, in, true));
  if (g_error) return 1;
  must(kiln_tensor_list_get(&logits, out, 0));
  must(kiln_sparse_softmax_cross_entropy_with_logits(&per_example, y, logits));
  must(kiln_mean(&loss, per_example, NULL, 0, false));
  must(kiln_tape_stop(tape));
  must(kiln_layer_get_variables(vars, MAX_VARS, &n, model, KILN_VARIABLES_TRAINABLE));
  if (g_error || n > MAX_VARS) return 1;
  must(kiln_tape_gradient_variables(grads, tape, loss, (const kiln_variable *const *)vars, n,
                                    KILN_UNCONNECTED_NONE));
  must(kiln_layer_summary(&summary, model, 0));
  if (g_error) return 1;

  printf("%s", summary);
  show("loss", loss);
  show("logits", logits);
  printf("trainable variables %lu\n", (unsigned long)n);
  for (i = 0; i < n; ++i) show_gradient(vars[i], grads[i]);

  for (i = 0; i < n; ++i) {
    kiln_variable_free(vars[i]);
    kiln_tensor_free(grads[i]);
  }
  kiln_string_free(summary);
  kiln_tape_free(tape);
  kiln_tensor_list_free(in), kiln_tensor_list_free(out);
  kiln_tensor_free(x_ids), kiln_tensor_free(x_types), kiln_tensor_free(y);
  kiln_tensor_free(logits), kiln_tensor_free(per_example), kiln_tensor_free(loss);
  kiln_layer_free(model);
  return g_error;
}
