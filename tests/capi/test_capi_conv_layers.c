/* Convolution and pooling layers through the shared library alone, created by Keras class name
 * and a kiln_config: a Conv2D against kiln_conv2d + kiln_bias_add + kiln_relu, the Keras aliases,
 * errors as statuses naming the layer, and a small CNN (Conv2D -> MaxPooling2D -> Conv2D ->
 * GlobalAveragePooling2D -> Dense) built from (None, 28, 28, 1) with Keras's parameter counts,
 * trained one gradient step; the 3-D layers (Conv3D, Conv3DTranspose, MaxPooling3D,
 * GlobalAveragePooling3D) against loops written here. Plain C99. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define OK(call) EXPECT_OK(call)

/* A kept float32 tensor of dims with a repeating ramp of values. */
static kiln_tensor *ramp(int rank, const int64_t *dims, int shift) {
  int64_t i, n = count_of(rank, dims);
  float *v = (float *)malloc((size_t)n * sizeof(float));
  kiln_tensor *t;
  for (i = 0; i < n; ++i) v[i] = 0.1f * (float)((i + shift) % 11 - 5);
  t = f32(rank, dims, v);
  free(v);
  return t;
}

/* A layer of class_name from a config of int, string and int-list keys; NULL on failure. */
static kiln_layer *layer(const char *class_name, const char *activation, int64_t filters, int64_t kernel,
                         int64_t units) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  OK(kiln_config_create(&c));
  if (filters) OK(kiln_config_set_int(c, "filters", filters));
  if (kernel) OK(kiln_config_set_int(c, "kernel_size", kernel));
  if (units) OK(kiln_config_set_int(c, "units", units));
  if (activation) OK(kiln_config_set_string(c, "activation", activation));
  OK(kiln_layer_create(&l, class_name, c));
  kiln_config_free(c);
  return l;
}

/* Gives every variable of a built layer ramp values. */
static void ramp_weights(kiln_layer *l) {
  kiln_variable *vars[4] = {NULL, NULL, NULL, NULL};
  size_t n = 0, i;
  OK(kiln_layer_get_variables(vars, 4, &n, l, KILN_VARIABLES_ALL));
  for (i = 0; i < n && i < 4; ++i) {
    kiln_tensor *v = NULL;
    OK(kiln_variable_read(&v, vars[i]));
    OK(kiln_variable_assign(vars[i], ramp(kiln_tensor_get_rank(v), kiln_tensor_get_dims(v), (int)i + 1)));
    kiln_tensor_free(v);
    kiln_variable_free(vars[i]);
  }
}

static void test_conv2d_against_ops(void) {
  const int64_t xd[4] = {2, 6, 5, 3}, shape[4] = {-1, 6, 5, 3}, yd[4] = {2, 3, 5, 4}, strides[2] = {2, 1},
                dil[2] = {1, 1}, size[2] = {3, 2};
  size_t rank = 4, n = 0;
  kiln_config *c = NULL;
  kiln_layer *conv = NULL;
  kiln_variable *vars[2] = {NULL, NULL};
  kiln_tensor *x = ramp(4, xd, 0), *y = NULL, *o = NULL, *k, *b, *z, *zb, *want;
  kiln_conv2d_options opt = conv_options(strides, dil, KILN_PADDING_SAME);
  kiln_clear_session();
  OK(kiln_config_create(&c));
  OK(kiln_config_set_int(c, "filters", 4));
  OK(kiln_config_set_int_list(c, "kernel_size", size, 2));
  OK(kiln_config_set_int_list(c, "strides", strides, 2));
  OK(kiln_config_set_string(c, "padding", "same"));
  OK(kiln_config_set_string(c, "activation", "relu"));
  OK(kiln_layer_create(&conv, "Conv2D", c));
  kiln_config_free(c);
  CHECK(strcmp(kiln_layer_get_name(conv), "conv2d") == 0);
  OK(kiln_layer_build(conv, shape, &rank, 1));
  ramp_weights(conv);
  OK(kiln_layer_get_variables(vars, 2, &n, conv, KILN_VARIABLES_ALL));
  CHECK(n == 2 && strcmp(kiln_variable_get_name(vars[0]), "conv2d/kernel") == 0);
  k = keep(RUN(kiln_variable_read(&o, vars[0])));
  b = keep(RUN(kiln_variable_read(&o, vars[1])));
  CHECK(k && kiln_tensor_get_rank(k) == 4 && kiln_tensor_get_dims(k)[2] == 3 &&
        kiln_tensor_get_dims(k)[3] == 4);
  z = keep(RUN(kiln_conv2d(&o, x, k, &opt)));
  zb = keep(RUN(kiln_bias_add(&o, z, b)));
  want = keep(RUN(kiln_relu(&o, zb)));
  OK(kiln_layer_call_tensor(&y, conv, x, false));
  if (y && want) expect_f32(y, 4, yd, fdata(want), 1e-5);
  kiln_variable_free(vars[0]);
  kiln_variable_free(vars[1]);
  kiln_layer_free(conv);
  release_kept();
}

static void test_aliases_and_errors(void) {
  const int64_t bad[3] = {2, 5, 5}, xd[4] = {1, 5, 5, 3};
  kiln_layer *l, *conv, *none = NULL;
  kiln_config *c = NULL;
  kiln_tensor *y = NULL;
  kiln_clear_session();
  l = layer("MaxPool2D", NULL, 0, 0, 0);
  conv = layer("Conv2D", NULL, 2, 3, 0);
  CHECK(l && strcmp(kiln_layer_get_class_name(l), "MaxPooling2D") == 0);
  kiln_layer_free(l);
  l = layer("GlobalAvgPool2D", NULL, 0, 0, 0);
  CHECK(l && strcmp(kiln_layer_get_class_name(l), "GlobalAveragePooling2D") == 0);
  kiln_layer_free(l);
  {
    /* Conv1DTranspose (by its alias) and DepthwiseConv1D: [1, 5, 3] -> [1, 7, 2] (valid: 5 + 3 - 1) and
     * [1, 3, 3] */
    const int64_t x1[3] = {1, 5, 3};
    kiln_tensor *t = NULL;
    l = layer("Convolution1DTranspose", NULL, 2, 3, 0);
    CHECK(l && strcmp(kiln_layer_get_class_name(l), "Conv1DTranspose") == 0);
    if (l) OK(kiln_layer_call_tensor(&t, l, ramp(3, x1, 0), false));
    CHECK(t && kiln_tensor_get_rank(t) == 3 && kiln_tensor_get_dims(t)[1] == 7 &&
          kiln_tensor_get_dims(t)[2] == 2);
    kiln_tensor_free(t);
    t = NULL;
    kiln_layer_free(l);
    l = layer("DepthwiseConv1D", NULL, 0, 3, 0);
    if (l) OK(kiln_layer_call_tensor(&t, l, ramp(3, x1, 0), false));
    CHECK(t && kiln_tensor_get_rank(t) == 3 && kiln_tensor_get_dims(t)[1] == 3 &&
          kiln_tensor_get_dims(t)[2] == 3);
    kiln_tensor_free(t);
    kiln_layer_free(l);
  }
  EXPECT_ERROR(kiln_layer_call_tensor(&y, conv, ramp(3, bad, 0), false), INVALID, "layer 'conv2d' (Conv2D)",
               "expected rank 4");
  OK(kiln_layer_call_tensor(&y, conv, ramp(4, xd, 0), false));
  kiln_tensor_free(y);
  OK(kiln_config_create(&c));
  OK(kiln_config_set_int(c, "filters", 2));
  OK(kiln_config_set_int(c, "kernel_size", 3));
  OK(kiln_config_set_string(c, "data_format", "channels_first"));
  EXPECT_ERROR(kiln_layer_create(&none, "Conv2D", c), KILN_STATUS_UNIMPLEMENTED, "channels_first", NULL);
  CHECK(none == NULL);
  kiln_config_free(c);
  { /* Flatten(data_format="channels_first"): [1, 5, 5, 3] read as (batch, channels 5, 5, 3), so
     * output k = 5 j + c takes x[0, c, j / 3, j % 3] */
    kiln_layer *flat = NULL;
    kiln_tensor *x = ramp(4, xd, 0);
    const float *xv = (const float *)kiln_tensor_get_data(x), *yv;
    OK(kiln_config_create(&c));
    OK(kiln_config_set_string(c, "data_format", "channels_first"));
    OK(kiln_layer_create(&flat, "Flatten", c));
    kiln_config_free(c);
    OK(kiln_layer_call_tensor(&y, flat, x, false));
    yv = (const float *)kiln_tensor_get_data(y);
    CHECK(kiln_tensor_get_dims(y)[1] == 75);
    CHECK(yv[1] == xv[15] && yv[5 * 4 + 2] == xv[2 * 15 + 4]);
    kiln_tensor_free(y);
    kiln_layer_free(flat);
  }
  { /* SeparableConv2D(1, 2) with kernels of ones over ones [1, 3, 3, 1]: each output sums a 2x2
     * window (4) through the pointwise 1x1 kernel; its weights are Keras's three */
    const int64_t od[4] = {1, 2, 2, 1}, xd1[4] = {1, 3, 3, 1};
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, four[4] = {4, 4, 4, 4};
    kiln_layer *sep = NULL;
    size_t n = 0;
    OK(kiln_config_from_json(&c,
                             "{\"filters\": 1, \"kernel_size\": 2, \"depthwise_initializer\": \"ones\", "
                             "\"pointwise_initializer\": \"ones\"}"));
    OK(kiln_layer_create(&sep, "SeparableConv2D", c));
    kiln_config_free(c);
    if (sep && OK(kiln_layer_call_tensor(&y, sep, f32(4, xd1, ones), false))) expect_f32(y, 4, od, four, 0);
    if (sep) OK(kiln_layer_get_variables(NULL, 0, &n, sep, KILN_VARIABLES_ALL));
    CHECK(n == 3);
    kiln_layer_free(sep);
  }
  kiln_layer_free(conv);
  release_kept();
}

/* The loss of the CNN on x: mean sparse softmax cross-entropy against labels (a kept tensor). */
static kiln_tensor *cnn_loss(kiln_layer *model, kiln_tensor *x, kiln_tensor *labels) {
  kiln_tensor *o = NULL, *logits, *ce;
  logits = keep(RUN(kiln_layer_call_tensor(&o, model, x, true)));
  ce = keep(RUN(kiln_sparse_softmax_cross_entropy_with_logits(&o, labels, logits)));
  return keep(RUN(kiln_mean(&o, ce, NULL, 0, false)));
}

static void test_small_cnn(void) {
  const int64_t shape[4] = {-1, 28, 28, 1}, xd[4] = {4, 28, 28, 1}, ld[1] = {4},
                params[5] = {80, 0, 1168, 0, 170};
  const int32_t label_values[4] = {1, 7, 3, 0};
  size_t rank = 4, n = 0, i;
  int64_t count = 0;
  char *summary = NULL;
  kiln_layer *seq = NULL, *parts[5];
  kiln_variable *vars[6] = {NULL};
  kiln_tensor *grads[6] = {NULL}, *x, *labels, *loss, *after, *o = NULL, *lr;
  kiln_tape *tape = NULL;
  const int64_t scalar_dims[1] = {1};
  kiln_clear_session();
  parts[0] = layer("Conv2D", "relu", 8, 3, 0);
  parts[1] = layer("MaxPooling2D", NULL, 0, 0, 0);
  parts[2] = layer("Conv2D", "relu", 16, 3, 0);
  parts[3] = layer("GlobalAveragePooling2D", NULL, 0, 0, 0);
  parts[4] = layer("Dense", NULL, 0, 0, 10);
  OK(kiln_layer_create(&seq, "Sequential", NULL));
  for (i = 0; i < 5; ++i) OK(kiln_sequential_add(seq, parts[i]));
  OK(kiln_layer_build(seq, shape, &rank, 1));
  OK(kiln_layer_count_params(&count, seq));
  CHECK(count == 1418);
  for (i = 0; i < 5; ++i) {
    OK(kiln_layer_count_params(&count, parts[i]));
    CHECK(count == params[i]);
  }
  OK(kiln_layer_summary(&summary, seq, 0));
  CHECK(summary && strstr(summary, " conv2d (Conv2D)             (None, 26, 26, 8)         80") != NULL);
  CHECK(summary && strstr(summary, "Total params: 1418 (5.54 KB)") != NULL);
  kiln_string_free(summary);

  x = ramp(4, xd, 0);
  labels = make(I32, 1, ld, label_values);
  OK(kiln_layer_get_variables(vars, 6, &n, seq, KILN_VARIABLES_TRAINABLE));
  CHECK(n == 6);
  OK(kiln_tape_create(&tape, false, true));
  loss = cnn_loss(seq, x, labels);
  OK(kiln_tape_stop(tape));
  OK(kiln_tape_gradient_variables(grads, tape, loss, (const kiln_variable *const *)vars, 6,
                                  KILN_UNCONNECTED_NONE));
  kiln_tape_free(tape);
  lr = keep(RUN(kiln_fill(&o, scalar_dims, 0, 0.05, F32)));
  for (i = 0; i < 6; ++i) {
    CHECK(grads[i] != NULL);
    if (grads[i]) OK(kiln_variable_assign_sub(vars[i], keep(RUN(kiln_mul(&o, grads[i], lr)))));
    kiln_tensor_free(grads[i]);
    kiln_variable_free(vars[i]);
  }
  after = cnn_loss(seq, x, labels);
  CHECK(loss && after && fdata(after)[0] < fdata(loss)[0]);
  for (i = 0; i < 5; ++i) kiln_layer_free(parts[i]);
  kiln_layer_free(seq);
  release_kept();
}

/* x [2, 3, 4, 4, 2] (ramp) at (n, d, h, w, c). */
static float at5(const float *x, int n, int d, int h, int w, int c) {
  return x[(((n * 3 + d) * 4 + h) * 4 + w) * 2 + c];
}

/* The 3-D layers by class name: a Conv3D with a 2x2x2 kernel (valid) and a Conv3DTranspose with a
 * 2x2x2 kernel and strides 2 (each input cell writes its own 2x2x2 block) against loops, MaxPooling3D
 * and GlobalAveragePooling3D against loops, an alias, and an input of the wrong rank. */
static void test_3d_layers(void) {
  const int64_t xd[5] = {2, 3, 4, 4, 2}, cd[5] = {2, 2, 3, 3, 3}, td[5] = {2, 6, 8, 8, 1},
                pd[5] = {2, 1, 2, 2, 2}, gd[2] = {2, 2}, bad[4] = {2, 4, 4, 2};
  kiln_tensor *x = ramp(5, xd, 0), *y = NULL, *k = NULL, *b = NULL;
  const float *xv = fdata(x);
  float want[2 * 6 * 8 * 8], wantg[4];
  kiln_layer *l;
  kiln_variable *vars[2] = {NULL, NULL};
  size_t n = 0;
  int i, d, h, w, c, o, a, e, f;
  kiln_clear_session();
  /* Conv3D(3, 2): y[n, d, h, w, o] = b[o] + sum x[n, d + a, h + e, w + f, c] * k[a, e, f, c, o] */
  l = layer("Convolution3D", NULL, 3, 2, 0);
  CHECK(l && strcmp(kiln_layer_get_class_name(l), "Conv3D") == 0 &&
        strcmp(kiln_layer_get_name(l), "conv3d") == 0);
  if (l && OK(kiln_layer_call_tensor(&y, l, x, false))) {
    ramp_weights(l);
    kiln_tensor_free(y);
    y = NULL;
    OK(kiln_layer_get_variables(vars, 2, &n, l, KILN_VARIABLES_ALL));
    OK(kiln_variable_read(&k, vars[0]));
    OK(kiln_variable_read(&b, vars[1]));
    CHECK(k && kiln_tensor_get_rank(k) == 5 && kiln_tensor_get_dims(k)[3] == 2 &&
          kiln_tensor_get_dims(k)[4] == 3);
    for (i = 0; i < 2 && k && b; ++i)
      for (d = 0; d < 2; ++d)
        for (h = 0; h < 3; ++h)
          for (w = 0; w < 3; ++w)
            for (o = 0; o < 3; ++o) {
              double acc = fdata(b)[o];
              for (a = 0; a < 2; ++a)
                for (e = 0; e < 2; ++e)
                  for (f = 0; f < 2; ++f)
                    for (c = 0; c < 2; ++c)
                      acc += at5(xv, i, d + a, h + e, w + f, c) *
                             fdata(k)[(((a * 2 + e) * 2 + f) * 2 + c) * 3 + o];
              want[(((i * 2 + d) * 3 + h) * 3 + w) * 3 + o] = (float)acc;
            }
    if (OK(kiln_layer_call_tensor(&y, l, x, false))) expect_f32(y, 5, cd, want, 1e-5);
    kiln_tensor_free(k);
    kiln_tensor_free(b);
    kiln_variable_free(vars[0]);
    kiln_variable_free(vars[1]);
  }
  kiln_layer_free(l);
  { /* Conv3DTranspose(1, 2, strides=2): y[n, 2d + a, 2h + e, 2w + f, 0] = b + sum_c x[n, d, h, w, c] * k[a,
       e, f, 0, c] */
    kiln_config *cfg = NULL;
    l = NULL;
    k = b = y = NULL;
    OK(kiln_config_from_json(&cfg, "{\"filters\": 1, \"kernel_size\": 2, \"strides\": 2}"));
    OK(kiln_layer_create(&l, "Conv3DTranspose", cfg));
    kiln_config_free(cfg);
    if (l && OK(kiln_layer_call_tensor(&y, l, x, false))) {
      kiln_tensor_free(y);
      y = NULL;
      ramp_weights(l);
      OK(kiln_layer_get_variables(vars, 2, &n, l, KILN_VARIABLES_ALL));
      OK(kiln_variable_read(&k, vars[0]));
      OK(kiln_variable_read(&b, vars[1]));
      for (i = 0; i < 2 && k && b; ++i)
        for (d = 0; d < 6; ++d)
          for (h = 0; h < 8; ++h)
            for (w = 0; w < 8; ++w) {
              double acc = fdata(b)[0];
              for (c = 0; c < 2; ++c)
                acc += at5(xv, i, d / 2, h / 2, w / 2, c) *
                       fdata(k)[(((d % 2) * 2 + h % 2) * 2 + w % 2) * 2 + c];
              want[((i * 6 + d) * 8 + h) * 8 + w] = (float)acc;
            }
      if (OK(kiln_layer_call_tensor(&y, l, x, false))) expect_f32(y, 5, td, want, 1e-5);
      kiln_tensor_free(k);
      kiln_tensor_free(b);
      kiln_variable_free(vars[0]);
      kiln_variable_free(vars[1]);
    }
    kiln_layer_free(l);
  }
  /* MaxPooling3D() (2x2x2, strides 2, valid): depth 3 -> 1 */
  for (i = 0; i < 2; ++i)
    for (h = 0; h < 2; ++h)
      for (w = 0; w < 2; ++w)
        for (c = 0; c < 2; ++c) {
          float m = -1e30f;
          for (a = 0; a < 2; ++a)
            for (e = 0; e < 2; ++e)
              for (f = 0; f < 2; ++f) {
                const float v = at5(xv, i, a, 2 * h + e, 2 * w + f, c);
                if (v > m) m = v;
              }
          want[((i * 2 + h) * 2 + w) * 2 + c] = m;
        }
  l = layer("MaxPool3D", NULL, 0, 0, 0);
  CHECK(l && strcmp(kiln_layer_get_class_name(l), "MaxPooling3D") == 0);
  y = NULL;
  if (l && OK(kiln_layer_call_tensor(&y, l, x, false))) expect_f32(y, 5, pd, want, 0);
  kiln_layer_free(l);
  /* GlobalAveragePooling3D: the mean over depth, height and width */
  for (i = 0; i < 2; ++i)
    for (c = 0; c < 2; ++c) {
      double acc = 0;
      for (d = 0; d < 3; ++d)
        for (h = 0; h < 4; ++h)
          for (w = 0; w < 4; ++w) acc += at5(xv, i, d, h, w, c);
      wantg[i * 2 + c] = (float)(acc / 48);
    }
  l = layer("GlobalAveragePooling3D", NULL, 0, 0, 0);
  y = NULL;
  if (l && OK(kiln_layer_call_tensor(&y, l, x, false))) expect_f32(y, 2, gd, wantg, 1e-6);
  kiln_layer_free(l);
  l = layer("AveragePooling3D", NULL, 0, 0, 0);
  y = NULL;
  EXPECT_ERROR(kiln_layer_call_tensor(&y, l, ramp(4, bad, 0), false), INVALID, "(AveragePooling3D)",
               "expected rank 5");
  CHECK(y == NULL);
  kiln_layer_free(l);
  release_kept();
}

int main(void) {
  test_3d_layers();
  test_conv2d_against_ops();
  test_aliases_and_errors();
  test_small_cnn();
  return test_summary();
}
