/* Keras masking through the shared library alone: empty list slots, kiln_layer_call_with_options
 * giving output masks (Embedding(mask_zero), Sequential, MultiHeadAttention, GlobalAveragePooling1D,
 * merge layers), kiln_layer_compute_mask, custom C layers that read and make masks, and bad masks
 * as statuses. Plain C99. Prints "N passed, N failed"; non-zero exit on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define OK(call) EXPECT_OK(call)

static kiln_layer *create(const char *cls, kiln_config *c) {
  kiln_layer *l = NULL;
  OK(kiln_layer_create(&l, cls, c));
  kiln_config_free(c);
  return l;
}

static kiln_config *config(void) {
  kiln_config *c = NULL;
  kiln_config_create(&c);
  return c;
}

static kiln_layer *embedding(void) {
  kiln_config *c = config();
  kiln_config_set_int(c, "input_dim", 6);
  kiln_config_set_int(c, "output_dim", 4);
  kiln_config_set_bool(c, "mask_zero", true);
  return create("Embedding", c);
}

/* ids [2, 4], padded with 0 at the end of each row. */
static kiln_tensor *ids(void) {
  static const int32_t v[8] = {3, 1, 0, 0, 2, 5, 4, 0};
  static const int64_t dims[2] = {2, 4};
  return make(I32, 2, dims, v);
}

static kiln_tensor *bool_tensor(int rank, const int64_t *dims, const uint8_t *v) {
  return make(B8, rank, dims, v);
}

/* A list of n tensors (NULL entries: empty slots). */
static kiln_tensor_list *list_of(size_t n, kiln_tensor *const *ts) {
  kiln_tensor_list *l = NULL;
  size_t i;
  OK(kiln_tensor_list_create(&l));
  for (i = 0; i < n; ++i) OK(kiln_tensor_list_append(l, ts[i]));
  return l;
}

/* The tensor at index i of a list, kept (freed at the end of the test); NULL for an empty slot. */
static kiln_tensor *at(const kiln_tensor_list *l, size_t i) {
  kiln_tensor *t = NULL;
  OK(kiln_tensor_list_get(&t, l, i));
  return keep(t);
}

/* Whether a bool tensor holds exactly v[0..n). */
static int bools_are(const kiln_tensor *t, const uint8_t *v, int64_t n) {
  return t && kiln_tensor_get_dtype(t) == B8 && kiln_tensor_get_num_elements(t) == n &&
         memcmp(kiln_tensor_get_data(t), v, (size_t)n) == 0;
}

static int close_to(const kiln_tensor *a, const kiln_tensor *b, float tol) {
  int64_t i, n;
  if (!a || !b || kiln_tensor_get_num_elements(a) != kiln_tensor_get_num_elements(b)) return 0;
  n = kiln_tensor_get_num_elements(a);
  for (i = 0; i < n; ++i)
    if (fabsf(fdata(a)[i] - fdata(b)[i]) > tol) return 0;
  return 1;
}

/* Calls layer on inputs with masks (NULL: none); *out_masks gets the output masks. */
static kiln_tensor_list *call_masked(kiln_layer *layer, kiln_tensor_list *inputs, kiln_tensor_list *masks,
                                     bool training, kiln_tensor_list **out_masks) {
  kiln_layer_call_options o;
  kiln_tensor_list *out = NULL;
  OK(kiln_layer_call_options_init(&o, sizeof o));
  o.training = training;
  o.masks = masks;
  OK(kiln_layer_call_with_options(&out, out_masks, layer, inputs, &o));
  return out;
}

/* Calls layer on inputs with masks; whether its first output mask holds exactly want[0..n). */
static int first_mask_is(kiln_layer *layer, kiln_tensor_list *inputs, kiln_tensor_list *masks, const uint8_t *want,
                         int64_t n) {
  kiln_tensor_list *out_masks = NULL, *out = call_masked(layer, inputs, masks, false, &out_masks);
  const int ok = bools_are(at(out_masks, 0), want, n);
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(out_masks);
  return ok;
}

static const uint8_t kIdsMask[8] = {1, 1, 0, 0, 1, 1, 1, 0};

static void test_list_slots(void) {
  kiln_tensor *x = ids(), *got = x;
  kiln_tensor *slots[2];
  kiln_tensor_list *l;
  kiln_layer *d;
  kiln_config *c = config();
  slots[0] = NULL;
  slots[1] = x;
  l = list_of(2, slots);
  CHECK(kiln_tensor_list_get_size(l) == 2);
  OK(kiln_tensor_list_get(&got, l, 0));
  CHECK(got == NULL);
  CHECK(at(l, 1) != NULL);
  /* A layer's inputs must be tensors. */
  kiln_config_set_int(c, "units", 2);
  d = create("Dense", c);
  EXPECT_ERROR(kiln_layer_call((kiln_tensor_list **)U, d, l, false), INVALID, "input 0 is empty", NULL);
  kiln_layer_free(d);
  kiln_tensor_list_free(l);
  release_kept();
}

static void test_embedding_and_sequential(void) {
  kiln_layer *e = embedding(), *seq = NULL, *d, *drop, *norm;
  kiln_tensor *x = ids();
  kiln_tensor_list *in = list_of(1, &x), *out, *masks = NULL, *computed = NULL;
  kiln_config *c = config();
  CHECK(kiln_layer_get_supports_masking(e));
  out = call_masked(e, in, NULL, false, &masks);
  CHECK(kiln_tensor_list_get_size(masks) == 1);
  CHECK(bools_are(at(masks, 0), kIdsMask, 8));
  OK(kiln_layer_compute_mask(&computed, e, in, NULL));
  CHECK(bools_are(at(computed, 0), kIdsMask, 8));
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(masks);
  kiln_tensor_list_free(computed);

  kiln_config_set_int(c, "units", 5);
  d = create("Dense", c);
  c = config();
  kiln_config_set_float(c, "rate", 0.5);
  drop = create("Dropout", c);
  norm = create("LayerNormalization", NULL);
  CHECK(kiln_layer_get_supports_masking(d) && kiln_layer_get_supports_masking(drop) &&
        kiln_layer_get_supports_masking(norm));
  OK(kiln_layer_create(&seq, "Sequential", NULL));
  OK(kiln_sequential_add(seq, e));
  OK(kiln_sequential_add(seq, d));
  OK(kiln_sequential_add(seq, drop));
  OK(kiln_sequential_add(seq, norm));
  masks = NULL;
  out = call_masked(seq, in, NULL, true, &masks);
  CHECK(kiln_tensor_list_get_size(out) == 1 && kiln_tensor_get_rank(at(out, 0)) == 3);
  CHECK(bools_are(at(masks, 0), kIdsMask, 8));
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(masks);
  /* out_masks may be NULL: the outputs alone. */
  out = call_masked(seq, in, NULL, false, NULL);
  CHECK(kiln_tensor_list_get_size(out) == 1);
  kiln_tensor_list_free(out);
  kiln_layer_free(seq);
  kiln_layer_free(e);
  kiln_layer_free(d);
  kiln_layer_free(drop);
  kiln_layer_free(norm);
  kiln_tensor_list_free(in);
  release_kept();
}

/* Keras's _keras_mask: a layer's output carries its mask (kiln_tensor_get_keras_mask), the next
 * layer called on it takes it, and a loss leaves the masked steps out. */
static void test_carried_masks(void) {
  kiln_layer *e = embedding(), *d;
  kiln_config *c = config();
  kiln_tensor *x = ids(), *h = NULL, *y = NULL, *m = NULL, *zero = NULL, *value = NULL;
  kiln_loss *mse = NULL;
  const float *yv;
  double sum = 0;
  int i;
  OK(kiln_layer_call_tensor(&h, e, x, false));
  OK(kiln_tensor_get_keras_mask(&m, h));
  CHECK(bools_are(m, kIdsMask, 8));
  kiln_tensor_free(m);
  m = NULL;
  OK(kiln_tensor_get_keras_mask(&m, x)); /* the ids carry none */
  CHECK(m == NULL);
  kiln_config_set_int(c, "units", 1);
  d = create("Dense", c);
  OK(kiln_layer_call_tensor(&y, d, h, false)); /* no mask given: h's own */
  OK(kiln_tensor_get_keras_mask(&m, y));
  CHECK(bools_are(m, kIdsMask, 8));
  kiln_tensor_free(m);
  OK(kiln_zeros(&zero, kiln_tensor_get_dims(y), (size_t)kiln_tensor_get_rank(y), F32));
  OK(kiln_loss_create(&mse, "mse", NULL));
  OK(kiln_loss_call(&value, mse, zero, y, NULL));
  yv = (const float *)kiln_tensor_get_data(y);
  for (i = 0; i < 8; ++i) sum += kIdsMask[i] ? (double)yv[i] * yv[i] : 0.0;
  CHECK(fabs(*(const float *)kiln_tensor_get_data(value) - sum / 5) < 1e-5);
  EXPECT_ERROR(kiln_tensor_get_keras_mask(NULL, y), INVALID, "'out' is NULL", NULL);
  EXPECT_ERROR(kiln_tensor_get_keras_mask(&m, NULL), INVALID, "'tensor' is NULL", NULL);
  kiln_tensor_free(value);
  kiln_tensor_free(zero);
  kiln_tensor_free(y);
  kiln_tensor_free(h);
  kiln_loss_free(mse);
  kiln_layer_free(d);
  kiln_layer_free(e);
  release_kept();
}

static void test_attention(void) {
  static const int64_t qd[3] = {2, 3, 4}, vd[3] = {2, 4, 4}, qmd[2] = {2, 3}, vmd[2] = {2, 4},
                       amd[3] = {2, 3, 4};
  static const uint8_t qm[6] = {1, 1, 0, 1, 1, 1}, vm[8] = {1, 1, 1, 0, 1, 0, 0, 0};
  float qv[24], vv[32];
  uint8_t am[24];
  int b, t, s, i;
  kiln_config *c = config();
  kiln_layer *mha;
  kiln_tensor *q, *v, *qmask, *vmask, *amask, *flag, *ins[5], *ms[3];
  kiln_tensor_list *in, *masks, *out, *out_masks = NULL, *in2, *out2;
  uint8_t yes = 1;
  for (i = 0; i < 24; ++i) qv[i] = 0.1f * (float)((i * 7) % 11 - 5);
  for (i = 0; i < 32; ++i) vv[i] = 0.1f * (float)((i * 5) % 13 - 6);
  for (b = 0; b < 2; ++b)
    for (t = 0; t < 3; ++t)
      for (s = 0; s < 4; ++s) am[(b * 3 + t) * 4 + s] = (uint8_t)(qm[b * 3 + t] & vm[b * 4 + s]);
  q = f32(3, qd, qv);
  v = f32(3, vd, vv);
  qmask = bool_tensor(2, qmd, qm);
  vmask = bool_tensor(2, vmd, vm);
  amask = bool_tensor(3, amd, am);
  flag = make(B8, 0, NULL, &yes);
  kiln_config_set_int(c, "num_heads", 2);
  kiln_config_set_int(c, "key_dim", 3);
  mha = create("MultiHeadAttention", c);
  CHECK(kiln_layer_get_supports_masking(mha));
  ins[0] = q;
  ins[1] = v;
  ins[2] = flag;
  ms[0] = qmask;
  ms[1] = vmask;
  ms[2] = NULL;
  in = list_of(3, ins);
  masks = list_of(3, ms);
  out = call_masked(mha, in, masks, false, &out_masks);
  ins[2] = v;
  ins[3] = amask;
  ins[4] = flag;
  in2 = list_of(5, ins);
  OK(kiln_layer_call(&out2, mha, in2, false));
  CHECK(close_to(at(out, 0), at(out2, 0), 1e-5f));
  CHECK(close_to(at(out, 1), at(out2, 1), 1e-6f));
  /* Scores [2, 2, 3, 4]: zero at masked keys; the output keeps the query mask, the scores none. */
  {
    const float *sc = fdata(at(out, 1));
    int h, bad = 0;
    for (b = 0; b < 2; ++b)
      for (h = 0; h < 2; ++h)
        for (t = 0; t < 3; ++t)
          for (s = 0; s < 4; ++s)
            if (!vm[b * 4 + s] && sc[((b * 2 + h) * 3 + t) * 4 + s] != 0.0f) ++bad;
    CHECK(bad == 0);
  }
  CHECK(bools_are(at(out_masks, 0), qm, 6));
  CHECK(at(out_masks, 1) == NULL);
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(out_masks);
  kiln_tensor_list_free(out2);
  kiln_tensor_list_free(in);
  kiln_tensor_list_free(in2);
  kiln_tensor_list_free(masks);
  kiln_layer_free(mha);
  release_kept();
}

/* Attention and AdditiveAttention: the value mask and the causal mask keep steps out of the
 * weights, the query mask zeroes output rows and is the output's mask, and bad input lists fail. */
static void test_dot_attention(void) {
  static const int64_t qd[3] = {2, 3, 4}, vd[3] = {2, 4, 4}, qmd[2] = {2, 3}, vmd[2] = {2, 4};
  static const uint8_t qm[6] = {1, 0, 1, 1, 1, 1}, vm[8] = {1, 1, 0, 1, 1, 0, 0, 0};
  const char *classes[2] = {"Attention", "AdditiveAttention"};
  float qv[24], vv[32];
  uint8_t yes = 1;
  int b, t, s, i, k;
  for (i = 0; i < 24; ++i) qv[i] = 0.1f * (float)((i * 7) % 11 - 5);
  for (i = 0; i < 32; ++i) vv[i] = 0.1f * (float)((i * 5) % 13 - 6);
  for (k = 0; k < 2; ++k) {
    kiln_layer *l = create(classes[k], NULL);
    kiln_tensor *q = f32(3, qd, qv), *v = f32(3, vd, vv), *flag = make(B8, 0, NULL, &yes);
    kiln_tensor *ins[4], *ms[4];
    kiln_tensor_list *in, *masks, *out, *out_masks = NULL, *bad, *bad_out = NULL;
    size_t nvars = 0;
    ins[0] = q;
    ins[1] = v;
    ins[2] = flag;
    ins[3] = flag;
    ms[0] = bool_tensor(2, qmd, qm);
    ms[1] = bool_tensor(2, vmd, vm);
    ms[2] = NULL;
    ms[3] = NULL;
    in = list_of(4, ins);
    masks = list_of(4, ms);
    out = call_masked(l, in, masks, false, &out_masks);
    CHECK(kiln_tensor_list_get_size(out) == 2);
    {
      const float *w = fdata(at(out, 1)), *y = fdata(at(out, 0));
      int bad_weights = 0, bad_rows = 0;
      CHECK(w && y);
      for (b = 0; w && y && b < 2; ++b)
        for (t = 0; t < 3; ++t) {
          float row = 0;
          for (s = 0; s < 4; ++s) {
            const float x = w[(b * 3 + t) * 4 + s];
            row += x;
            if ((!vm[b * 4 + s] || s > t) && x != 0.0f) ++bad_weights;
          }
          if (fabsf(row - 1.0f) > 1e-5f) ++bad_weights;
          for (s = 0; s < 4; ++s)
            if (!qm[b * 3 + t] && y[(b * 3 + t) * 4 + s] != 0.0f) ++bad_rows;
        }
      CHECK(bad_weights == 0 && bad_rows == 0);
    }
    CHECK(bools_are(at(out_masks, 0), qm, 6));
    CHECK(at(out_masks, 1) == NULL);
    OK(kiln_layer_get_variables(NULL, 0, &nvars, l, KILN_VARIABLES_ALL));
    CHECK(nvars == (k == 0 ? 0u : 1u)); /* Attention: no scale by default; AdditiveAttention: scale [4] */
    bad = list_of(1, ins);
    EXPECT_ERROR(kiln_layer_call(&bad_out, l, bad, false), INVALID, classes[k], "[query, value]");
    kiln_tensor_list_free(bad);
    kiln_tensor_list_free(in);
    kiln_tensor_list_free(masks);
    kiln_tensor_list_free(out);
    kiln_tensor_list_free(out_masks);
    kiln_layer_free(l);
  }
  {
    kiln_config *c = config();
    kiln_layer *l = NULL;
    kiln_config_set_string(c, "score_mode", "general");
    EXPECT_ERROR(kiln_layer_create(&l, "Attention", c), INVALID, "score_mode is 'general'", NULL);
    kiln_config_free(c);
  }
  release_kept();
}

static void test_pooling_and_merge(void) {
  static const int64_t xd[3] = {2, 3, 2}, md[2] = {2, 3};
  static const float xv[12] = {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60};
  static const uint8_t m1[6] = {1, 1, 0, 0, 1, 1}, m2[6] = {1, 0, 1, 1, 1, 1}, either[6] = {1, 1, 1, 1, 1, 1};
  kiln_tensor *x = f32(3, xd, xv), *ma = bool_tensor(2, md, m1), *mb = bool_tensor(2, md, m2);
  kiln_tensor *ins[2], *ms[2];
  kiln_layer *gap = create("GlobalAveragePooling1D", NULL), *add = create("Add", NULL);
  kiln_tensor_list *in, *masks, *out, *out_masks = NULL;
  const float *y;
  ins[0] = x;
  ms[0] = ma;
  in = list_of(1, ins);
  masks = list_of(1, ms);
  out = call_masked(gap, in, masks, false, &out_masks);
  y = fdata(at(out, 0));
  CHECK(y && fabsf(y[0] - 2) < 1e-6f && fabsf(y[1] - 3) < 1e-6f && fabsf(y[2] - 40) < 1e-5f &&
        fabsf(y[3] - 50) < 1e-5f);
  CHECK(kiln_tensor_list_get_size(out_masks) == 1 && at(out_masks, 0) == NULL);
  kiln_tensor_list_free(in);
  kiln_tensor_list_free(masks);
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(out_masks);

  ins[1] = x;
  ms[1] = mb;
  in = list_of(2, ins);
  masks = list_of(2, ms);
  CHECK(first_mask_is(add, in, masks, either, 6)); /* Keras 3: the OR of the masks */
  kiln_tensor_list_free(masks);
  /* An input without a mask: no output mask (Keras 3). */
  ms[1] = NULL;
  masks = list_of(2, ms);
  out = call_masked(add, in, masks, false, &out_masks);
  CHECK(kiln_tensor_list_get_size(out_masks) == 1 && at(out_masks, 0) == NULL);
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(out_masks);
  kiln_tensor_list_free(masks);
  kiln_tensor_list_free(in);
  kiln_layer_free(gap);
  kiln_layer_free(add);
  release_kept();
}

/* A custom layer reading its mask: the masked sum over the steps of [B, T, F]. */
static kiln_status *masked_sum_call(kiln_tensor_list *outputs, kiln_layer *self,
                                    const kiln_tensor_list *inputs, const kiln_tensor_list *masks,
                                    bool training, void *user_data) {
  kiln_tensor *x = NULL, *m = NULL, *mf = NULL, *me = NULL, *prod = NULL, *y = NULL;
  const int64_t axis = 1;
  kiln_status *st;
  (void)self;
  (void)training;
  ++*(int *)user_data;
  if ((st = kiln_tensor_list_get(&x, inputs, 0))) return st;
  st = kiln_tensor_list_get(&m, masks, 0);
  if (!st && m) st = kiln_cast(&mf, m, F32);
  if (!st && m) st = kiln_expand_dims(&me, mf, -1);
  if (!st) st = m ? kiln_mul(&prod, x, me) : kiln_tensor_clone(&prod, x);
  if (!st) st = kiln_sum(&y, prod, &axis, 1, false);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_free(x);
  kiln_tensor_free(m);
  kiln_tensor_free(mf);
  kiln_tensor_free(me);
  kiln_tensor_free(prod);
  kiln_tensor_free(y);
  return st;
}

/* A custom layer making a mask: a step is valid when its first feature is not zero. */
static kiln_status *identity_call(kiln_tensor_list *outputs, kiln_layer *self, const kiln_tensor_list *inputs,
                                  bool training, void *user_data) {
  kiln_tensor *x = NULL;
  kiln_status *st;
  (void)self;
  (void)training;
  (void)user_data;
  if ((st = kiln_tensor_list_get(&x, inputs, 0))) return st;
  st = kiln_tensor_list_append(outputs, x);
  kiln_tensor_free(x);
  return st;
}

static kiln_status *first_feature_mask(kiln_tensor_list *out_masks, kiln_layer *self,
                                       const kiln_tensor_list *inputs, const kiln_tensor_list *masks,
                                       void *user_data) {
  kiln_tensor *x = NULL, *first = NULL, *zero = NULL, *m = NULL;
  const int64_t begin[3] = {0, 0, 0};
  int64_t size[3];
  kiln_status *st;
  (void)self;
  (void)masks;
  (void)user_data;
  if ((st = kiln_tensor_list_get(&x, inputs, 0))) return st;
  size[0] = kiln_tensor_get_dims(x)[0];
  size[1] = kiln_tensor_get_dims(x)[1];
  size[2] = 1;
  st = kiln_slice(&first, x, begin, size, 3);
  if (!st) st = kiln_zeros(&zero, NULL, 0, F32);
  if (!st) {
    kiln_tensor *sq = NULL;
    const int64_t last = 2;
    st = kiln_not_equal(&sq, first, zero);
    if (!st) st = kiln_squeeze(&m, sq, &last, 1);
    kiln_tensor_free(sq);
  }
  if (!st) st = kiln_tensor_list_append(out_masks, m);
  kiln_tensor_free(x);
  kiln_tensor_free(first);
  kiln_tensor_free(zero);
  kiln_tensor_free(m);
  return st;
}

/* Softmax takes its mask as Keras does: one that broadcasts ([1, 1, 3] over [1, 2, 3], as attention
 * masks), and a float one read as > 0.5. */
static void test_softmax_masks(void) {
  static const int64_t xd[3] = {1, 2, 3}, nd[3] = {1, 1, 3}, wd[3] = {1, 2, 3};
  static const float xv[6] = {1, 2, 3, 3, 2, 1}, soft[3] = {0.9f, 0.2f, 0.6f};
  static const uint8_t narrow[3] = {1, 0, 1}, wide[6] = {1, 0, 1, 1, 0, 1};
  kiln_layer *sm = create("Softmax", NULL);
  kiln_tensor *x = f32(3, xd, xv);
  kiln_tensor_list *in = list_of(1, &x), *m_narrow, *m_wide, *m_soft, *a, *b, *c;
  kiln_tensor *mn = bool_tensor(3, nd, narrow), *mw = bool_tensor(3, wd, wide), *ms = f32(3, nd, soft);
  m_narrow = list_of(1, &mn);
  m_wide = list_of(1, &mw);
  m_soft = list_of(1, &ms);
  a = call_masked(sm, in, m_narrow, false, NULL);
  b = call_masked(sm, in, m_wide, false, NULL);
  c = call_masked(sm, in, m_soft, false, NULL);
  CHECK(close_to(at(a, 0), at(b, 0), 0.0f));
  CHECK(close_to(at(c, 0), at(b, 0), 0.0f));
  CHECK(at(a, 0) && fdata(at(a, 0))[1] == 0.0f && fabsf(fdata(at(a, 0))[0] - 0.11920292f) < 1e-6f);
  kiln_tensor_list_free(a);
  kiln_tensor_list_free(b);
  kiln_tensor_list_free(c);
  kiln_tensor_list_free(m_narrow);
  kiln_tensor_list_free(m_wide);
  kiln_tensor_list_free(m_soft);
  kiln_tensor_list_free(in);
  kiln_layer_free(sm);
  release_kept();
}

static void test_custom_layers(void) {
  static const int64_t xd[3] = {1, 3, 2};
  static const float xv[6] = {1, 2, 0, 5, 3, 4};
  static const uint8_t want_mask[3] = {1, 0, 1};
  kiln_layer_callbacks reader, maker;
  kiln_layer *sum = NULL, *mk = NULL, *seq = NULL;
  kiln_tensor *x = f32(3, xd, xv);
  kiln_tensor_list *in = list_of(1, &x), *out, *out_masks = NULL;
  const float *y;
  int calls = 0;
  memset(&reader, 0, sizeof reader);
  reader.struct_size = sizeof reader;
  reader.call_with_mask = masked_sum_call; /* call stays NULL */
  OK(kiln_layer_create_custom(&sum, "MaskedSum", NULL, &reader, &calls));
  CHECK(!kiln_layer_get_supports_masking(sum));
  memset(&maker, 0, sizeof maker);
  maker.struct_size = sizeof maker;
  maker.call = identity_call;
  maker.compute_mask = first_feature_mask;
  maker.supports_masking = true;
  OK(kiln_layer_create_custom(&mk, "FirstFeatureMask", NULL, &maker, NULL));
  CHECK(kiln_layer_get_supports_masking(mk));
  /* The maker's mask hides step 1, which the reader then leaves out of its sum. */
  OK(kiln_layer_create(&seq, "Sequential", NULL));
  OK(kiln_sequential_add(seq, mk));
  OK(kiln_sequential_add(seq, sum));
  out = call_masked(seq, in, NULL, false, &out_masks);
  y = fdata(at(out, 0));
  CHECK(y && y[0] == 4.0f && y[1] == 6.0f);
  CHECK(at(out_masks, 0) == NULL); /* the reader does not support masking */
  CHECK(calls >= 1);
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(out_masks);
  CHECK(first_mask_is(mk, in, NULL, want_mask, 3));
  /* Without masks the reader sums every step. */
  out = call_masked(sum, in, NULL, false, NULL);
  y = fdata(at(out, 0));
  CHECK(y && y[0] == 4.0f && y[1] == 11.0f);
  kiln_tensor_list_free(out);
  /* A table of the first version (no masking fields) still makes a layer, without masking. */
  maker.struct_size = offsetof(kiln_layer_callbacks, destroy) + sizeof maker.destroy;
  kiln_layer_free(mk);
  mk = NULL;
  OK(kiln_layer_create_custom(&mk, "OldLayer", NULL, &maker, NULL));
  CHECK(!kiln_layer_get_supports_masking(mk));
  /* Neither call nor call_with_mask: an error. */
  reader.call_with_mask = NULL;
  EXPECT_ERROR(kiln_layer_create_custom((kiln_layer **)U, "NoCall", NULL, &reader, NULL), INVALID,
               "call_with_mask", NULL);
  kiln_layer_free(seq);
  kiln_layer_free(sum);
  kiln_layer_free(mk);
  kiln_tensor_list_free(in);
  release_kept();
}

static void test_errors(void) {
  static const int64_t xd[3] = {2, 3, 4}, bad[2] = {2, 4}, good[2] = {2, 3};
  static const uint8_t ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  float xv[24] = {0};
  kiln_config *c = config();
  kiln_layer *d;
  kiln_tensor *x = f32(3, xd, xv), *mb = bool_tensor(2, bad, ones), *mg = bool_tensor(2, good, ones);
  kiln_tensor *ms[2];
  kiln_tensor_list *in = list_of(1, &x), *masks;
  kiln_layer_call_options o;
  kiln_config_set_int(c, "units", 2);
  kiln_config_set_string(c, "name", "proj");
  d = create("Dense", c);
  OK(kiln_layer_call_options_init(&o, sizeof o));
  CHECK(!o.training && o.masks == NULL);
  ms[0] = mb;
  masks = list_of(1, ms);
  o.masks = masks;
  EXPECT_ERROR(kiln_layer_call_with_options((kiln_tensor_list **)U, NULL, d, in, &o), INVALID, "layer 'proj'",
               "mask 0 has shape [2, 4]; expected the leading dims of input 0's shape [2, 3, 4]");
  kiln_tensor_list_free(masks);
  ms[0] = mg;
  ms[1] = NULL;
  masks = list_of(2, ms);
  o.masks = masks;
  EXPECT_ERROR(kiln_layer_call_with_options((kiln_tensor_list **)U, NULL, d, in, &o), INVALID, "layer 'proj'",
               "2 masks for 1 inputs");
  EXPECT_ERROR(kiln_layer_compute_mask((kiln_tensor_list **)U, d, in, masks), INVALID, "2 masks for 1 inputs",
               NULL);
  kiln_tensor_list_free(masks);
  EXPECT_ERROR(kiln_layer_call_options_init(&o, 4), INVALID, "kiln_layer_call_options", NULL);
  o.struct_size = 4;
  EXPECT_ERROR(kiln_layer_call_with_options((kiln_tensor_list **)U, NULL, d, in, &o), INVALID, "struct_size",
               NULL);
  EXPECT_ERROR(kiln_layer_call_with_options((kiln_tensor_list **)U, NULL, NULL, in, NULL), INVALID, "layer",
               NULL);
  EXPECT_ERROR(kiln_layer_set_supports_masking(NULL, true), INVALID, "layer", NULL);
  CHECK(!kiln_layer_get_supports_masking(NULL));
  kiln_layer_free(d);
  kiln_tensor_list_free(in);
  release_kept();
}

int main(void) {
  test_list_slots();
  test_embedding_and_sequential();
  test_carried_masks();
  test_attention();
  test_dot_attention();
  test_pooling_and_merge();
  test_softmax_masks();
  test_custom_layers();
  test_errors();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
