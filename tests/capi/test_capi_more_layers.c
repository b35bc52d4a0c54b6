/* The activation, spatial reshaping, noise, Identity and Rescaling layers through the shared
 * library alone, created by Keras class name and a JSON config: values as Keras documents them,
 * a model with PReLU, GaussianNoise and SpatialDropout1D trained with train_on_batch (the alpha
 * weight moves), Normalization, Discretization and IntegerLookup with adapt, CenterCrop, the random image
 * layers, and bad configs and inputs as statuses naming the layer. Plain C99. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define OK(call) EXPECT_OK(call)

/* A layer of class_name from a JSON config; NULL after a failure (counted). */
static kiln_layer *layer_from(const char *class_name, const char *json) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  OK(kiln_config_from_json(&c, json));
  OK(kiln_layer_create(&l, class_name, c));
  kiln_config_free(c);
  return l;
}

/* The status of creating class_name from json (the layer, if made, freed). */
static kiln_status *create_status(const char *class_name, const char *json) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  kiln_status *st;
  OK(kiln_config_from_json(&c, json));
  st = kiln_layer_create(&l, class_name, c);
  kiln_config_free(c);
  kiln_layer_free(l);
  return st;
}

/* Calls a new layer of class_name(json) on x (inference) and checks the float32 result. */
static void expect_layer(const char *class_name, const char *json, const kiln_tensor *x, int rank,
                         const int64_t *dims, const float *want) {
  kiln_layer *l = layer_from(class_name, json);
  kiln_tensor *y = NULL;
  if (!l) return;
  OK(kiln_layer_call_tensor(&y, l, x, false));
  expect_f32(y, rank, dims, want, 1e-6);
  kiln_layer_free(l);
}

static void test_values(void) {
  const int64_t d5[1] = {5}, img[4] = {1, 2, 2, 1}, padded[4] = {1, 4, 4, 1}, seq[3] = {1, 2, 2},
                up[3] = {1, 4, 2}, u8d[2] = {1, 3};
  const float doc[5] = {-10, -5, 0, 5, 10}, px[4] = {1, 2, 3, 4}, sx[4] = {1, 2, 3, 4};
  const unsigned char u8[3] = {0, 51, 255};
  const float relu[5] = {-6, -3.5f, -1, 5, 6}, leaky[5] = {-3, -1.5f, 0, 5, 10},
              pad[16] = {0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0}, ups[8] = {1, 2, 1, 2, 3, 4, 3, 4},
              scaled[3] = {0, 51.0f / 255, 1};
  kiln_tensor *x = f32(1, d5, doc);
  kiln_clear_session();
  expect_layer("ReLU", "{\"max_value\": 6, \"negative_slope\": 0.5, \"threshold\": 2}", x, 1, d5, relu);
  expect_layer("LeakyReLU", "{}", x, 1, d5, leaky);
  expect_layer("ZeroPadding2D", "{\"padding\": 1}", f32(4, img, px), 4, padded, pad);
  expect_layer("UpSampling1D", "{\"size\": 2}", f32(3, seq, sx), 3, up, ups);
  { /* Resizing (tf.image.resize's half-pixel bilinear) and UpSampling2D's bilinear: [[1, 2], [3, 4]] to 4x4
     */
    const float bil[16] = {1,    1.25f, 1.75f, 2,    1.5f, 1.75f, 2.25f, 2.5f,
                           2.5f, 2.75f, 3.25f, 3.5f, 3,    3.25f, 3.75f, 4};
    expect_layer("Resizing", "{\"height\": 4, \"width\": 4}", f32(4, img, px), 4, padded, bil);
    expect_layer("UpSampling2D", "{\"interpolation\": \"bilinear\"}", f32(4, img, px), 4, padded, bil);
  }
  expect_layer("Identity", "{}", x, 1, d5, doc);
  expect_layer("Rescaling", "{\"scale\": 0.00392156862745098}", make(U8, 2, u8d, u8), 2, u8d, scaled);
  /* Keras 3's newer activations by name */
  {
    const float v[5] = {-2, -0.75f, 0, 0.25f, 3}, hard_tanh[5] = {-1, -0.75f, 0, 0.25f, 1},
                soft_shrink[5] = {-1.5f, -0.25f, 0, 0, 2.5f},
                sparse_sigmoid[5] = {0, 0.125f, 0.5f, 0.625f, 1},
                hard_silu[5] = {-2 * 1.0f / 6, -0.75f * 2.25f / 6, 0, 0.25f * 3.25f / 6, 3},
                glu[2] = {-1.0f, -0.75f * 0.5621765f};
    const int64_t two[1] = {2}, four[1] = {4};
    kiln_tensor *vx = f32(1, d5, v);
    expect_layer("Activation", "{\"activation\": \"hard_tanh\"}", vx, 1, d5, hard_tanh);
    expect_layer("Activation", "{\"activation\": \"soft_shrink\"}", vx, 1, d5, soft_shrink);
    expect_layer("Activation", "{\"activation\": \"sparse_sigmoid\"}", vx, 1, d5, sparse_sigmoid);
    expect_layer("Activation", "{\"activation\": \"hard_swish\"}", vx, 1, d5, hard_silu);
    expect_layer("Activation", "{\"activation\": \"glu\"}", f32(1, four, v), 1, two, glu);
  }
  /* Dot: two rank-2 inputs give [B, 1]; axes [1, 1] as a list */
  {
    const int64_t ad[2] = {2, 2}, od[2] = {2, 1};
    const float av[4] = {1, 2, 3, 4}, bv[4] = {3, 4, 0, 1}, want[2] = {11, 4};
    kiln_layer *dot = layer_from("Dot", "{\"axes\": [1, 1]}");
    kiln_tensor_list *in = NULL, *out = NULL;
    kiln_tensor *y = NULL;
    OK(kiln_tensor_list_create(&in));
    OK(kiln_tensor_list_append(in, f32(2, ad, av)));
    OK(kiln_tensor_list_append(in, f32(2, ad, bv)));
    if (dot) OK(kiln_layer_call(&out, dot, in, false));
    if (out) OK(kiln_tensor_list_get(&y, out, 0));
    if (y) expect_f32(y, 2, od, want, 0);
    kiln_tensor_list_free(out);
    kiln_tensor_list_free(in);
    kiln_layer_free(dot);
    EXPECT_ERROR(create_status("Dot", "{}"), INVALID, "Dot", "'axes' is required");
  }
  /* GroupNormalization: groups -1 (a group per channel) over [1, 2, 2]: each channel's two steps
   * become -1 and 1 (up to epsilon 1e-3 over the variance); the config then holds the channel count */
  {
    const int64_t gd[3] = {1, 2, 2};
    const float gv[4] = {1, 10, 3, 30};
    /* channel 0 steps 1, 3 (variance 1), channel 1 steps 10, 30 (variance 100) */
    const float s0 = 1.0f / sqrtf(1.0f + 1e-3f), s1 = 1.0f / sqrtf(1.0f + 1e-5f),
                want[4] = {-s0, -s1, s0, s1};
    kiln_layer *gn = layer_from("GroupNormalization", "{\"groups\": -1}");
    kiln_tensor *y = NULL;
    kiln_config *cfg = NULL;
    int64_t groups = 0;
    if (gn) OK(kiln_layer_call_tensor(&y, gn, f32(3, gd, gv), false));
    if (y) expect_f32(y, 3, gd, want, 1e-6);
    if (gn) OK(kiln_layer_get_config(&cfg, gn));
    if (cfg) OK(kiln_config_get_int(&groups, cfg, "groups"));
    CHECK(groups == 2);
    kiln_config_free(cfg);
    kiln_layer_free(gn);
    EXPECT_ERROR(create_status("GroupNormalization", "{\"groups\": 0}"), INVALID, "GroupNormalization",
                 "groups is 0");
  }
  /* UnitNormalization: unit L2 norm over the last axis; a zero row stays 0 */
  {
    const int64_t rows[2] = {2, 2};
    const float r[4] = {3, 4, 0, 0}, unit[4] = {0.6f, 0.8f, 0, 0};
    expect_layer("UnitNormalization", "{}", f32(2, rows, r), 2, rows, unit);
    expect_layer("UnitNormalization", "{\"axis\": [0, 1]}", f32(2, rows, r), 2, rows, unit);
  }
  /* RMSNormalization: x * rsqrt(mean(x^2) + 1e-6) with scale ones; a zero row stays 0 */
  {
    const int64_t rows[2] = {2, 2};
    const float r[4] = {3, 4, 0, 0};
    float rms[4] = {0, 0, 0, 0};
    rms[0] = (float)(3.0 / sqrt(12.5 + 1e-6));
    rms[1] = (float)(4.0 / sqrt(12.5 + 1e-6));
    expect_layer("RMSNormalization", "{}", f32(2, rows, r), 2, rows, rms);
    EXPECT_ERROR(create_status("LayerNormalization", "{\"gamma_constraint\": {\"class_name\": \"NonNeg\"}}"),
                 KILN_STATUS_UNIMPLEMENTED, "gamma_constraint", NULL);
  }
  release_kept();
}

/* A Sequential with PReLU, GaussianNoise and SpatialDropout1D trains: the weights move, alpha too. */
static void test_training(void) {
  kiln_layer *m = compiled_sequential(
      "[{\"class_name\": \"Dense\", \"config\": {\"units\": 8}}, "
      "{\"class_name\": \"PReLU\", \"config\": {\"alpha_initializer\": {\"class_name\": \"Constant\", "
      "\"config\": {\"value\": 0.25}}}}, "
      "{\"class_name\": \"GaussianNoise\", \"config\": {\"stddev\": 0.1, \"seed\": 1}}, "
      "{\"class_name\": \"Reshape\", \"config\": {\"target_shape\": [2, 4]}}, "
      "{\"class_name\": \"SpatialDropout1D\", \"config\": {\"rate\": 0.25}}, "
      "{\"class_name\": \"Flatten\", \"config\": {}}, "
      "{\"class_name\": \"Dense\", \"config\": {\"units\": 3}}]",
      5, "sparse_categorical_crossentropy", 0.05, 7);
  kiln_variable *vars[8];
  kiln_tensor *before = NULL, *after = NULL;
  size_t n = 0, i;
  if (!m) return;
  OK(kiln_layer_get_variables(vars, 8, &n, m, KILN_VARIABLES_TRAINABLE));
  CHECK(n == 5 && strstr(kiln_variable_get_name(vars[2]), "p_re_lu/alpha") != NULL);
  if (n == 5) OK(kiln_variable_read(&before, vars[2]));
  train_small_batches(m, 0, 5);
  if (n == 5) OK(kiln_variable_read(&after, vars[2]));
  if (before && after) {
    const float *b = fdata(before), *a = fdata(after);
    int moved = 0;
    CHECK(kiln_tensor_get_num_elements(after) == 8);
    for (i = 0; i < 8; ++i) moved += b[i] != a[i];
    CHECK(moved > 0);
  }
  kiln_tensor_free(before);
  kiln_tensor_free(after);
  for (i = 0; i < n && i < 8; ++i) kiln_variable_free(vars[i]);
  kiln_layer_free(m);
}

static void test_errors(void) {
  const int64_t d2[2] = {2, 3};
  const float v[6] = {1, 2, 3, 4, 5, 6};
  kiln_layer *pad = layer_from("ZeroPadding2D", "{}");
  kiln_layer *crop = layer_from("Cropping1D", "{\"cropping\": [2, 2]}");
  kiln_tensor *x = f32(2, d2, v);
  const int64_t d3[3] = {1, 3, 2};
  EXPECT_ERROR(create_status("ZeroPadding2D", "{\"padding\": -1}"), KILN_STATUS_INVALID_ARGUMENT,
               "ZeroPadding2D", "cannot be negative");
  EXPECT_ERROR(create_status("UpSampling2D", "{\"interpolation\": \"bicubic\"}"), KILN_STATUS_UNIMPLEMENTED,
               "bicubic", "bilinear");
  EXPECT_ERROR(create_status("ReLU", "{\"threshold\": -1}"), KILN_STATUS_INVALID_ARGUMENT, "ReLU",
               "threshold");
  EXPECT_ERROR(create_status("GaussianDropout", "{\"rate\": 1.5}"), KILN_STATUS_INVALID_ARGUMENT,
               "GaussianDropout", "[0, 1)");
  EXPECT_ERROR(create_status("AlphaDropout", "{\"rate\": 1.0}"), KILN_STATUS_INVALID_ARGUMENT, "AlphaDropout",
               "[0, 1)");
  EXPECT_ERROR(create_status("CategoryEncoding", "{}"), KILN_STATUS_INVALID_ARGUMENT, "CategoryEncoding",
               "num_tokens must be set");
  if (pad)
    EXPECT_ERROR(kiln_layer_call_tensor(U, pad, x, false), KILN_STATUS_INVALID_ARGUMENT, "zero_padding2d",
                 "rank 4");
  if (crop)
    EXPECT_ERROR(kiln_layer_call_tensor(U, crop, f32(3, d3, v), false), KILN_STATUS_INVALID_ARGUMENT,
                 "(Cropping1D)", "smaller than");
  kiln_layer_free(pad);
  kiln_layer_free(crop);
  release_kept();
}

/* Normalization: adapt from an array and from a dataset of batches (Keras's docstring example),
 * the weights it keeps, given mean and variance, and adapt's errors. */
static void test_normalization(void) {
  const int64_t d43[2] = {4, 3}, d13[2] = {1, 3}, d31[2] = {3, 1}, d42[2] = {4, 2};
  const float data[12] = {0, 7, 4, 2, 9, 6, 0, 7, 4, 2, 9, 6}, row[3] = {0, 7, 4}, minus1[3] = {-1, -1, -1};
  const float col[3] = {1, 2, 3}, scaled[3] = {-1.4142135f, -0.70710677f, 0},
              ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  const float mean[3] = {1, 8, 5}, var[3] = {1, 1, 1};
  kiln_layer *norm = layer_from("Normalization", "{\"axis\": -1}");
  kiln_layer *from_ds = layer_from("Normalization", "{}");
  kiln_layer *given = layer_from("Normalization", "{\"mean\": 3.0, \"variance\": 2.0}");
  kiln_layer *dense = layer_from("Dense", "{\"units\": 2}");
  kiln_tensor *x = f32(2, d43, data), *y = NULL;
  kiln_tensor_list *parts = NULL;
  kiln_dataset *slices = NULL, *batches = NULL, *empty = NULL;
  kiln_variable *vars[4] = {NULL, NULL, NULL, NULL};
  size_t n = 0, i;
  if (!norm || !from_ds || !given || !dense) return;
  OK(kiln_layer_adapt(norm, x));
  CHECK(kiln_layer_get_built(norm));
  if (OK(kiln_layer_call_tensor(&y, norm, f32(2, d13, row), false))) expect_f32(y, 2, d13, minus1, 1e-6);
  if (OK(kiln_layer_get_variables(vars, 4, &n, norm, KILN_VARIABLES_ALL))) {
    CHECK(n == 3);
    for (i = 0; i < n; ++i) CHECK(!kiln_variable_get_trainable(vars[i]));
    if (n == 3) {
      kiln_tensor *v = NULL;
      if (OK(kiln_variable_read(&v, vars[0]))) expect_f32(v, 1, d13 + 1, mean, 1e-6);
      if (OK(kiln_variable_read(&v, vars[1]))) expect_f32(v, 1, d13 + 1, var, 1e-6);
      if (OK(kiln_variable_read(&v, vars[2]))) {
        CHECK(kiln_tensor_get_dtype(v) == I64 && *(const int64_t *)kiln_tensor_get_data(v) == 4);
        kiln_tensor_free(v);
      }
    }
    for (i = 0; i < n; ++i) kiln_variable_free(vars[i]);
  }
  /* a dataset of (x) batches of 3 and 1 rows: the same mean and variance */
  OK(kiln_tensor_list_create(&parts));
  OK(kiln_tensor_list_append(parts, x));
  OK(kiln_dataset_from_tensor_slices(&slices, parts, NULL));
  OK(kiln_dataset_batch(&batches, slices, 3, false));
  OK(kiln_layer_adapt_dataset(from_ds, batches));
  if (OK(kiln_layer_call_tensor(&y, from_ds, f32(2, d13, row), false))) expect_f32(y, 2, d13, minus1, 1e-6);
  if (OK(kiln_layer_call_tensor(&y, given, f32(2, d31, col), false))) expect_f32(y, 2, d31, scaled, 1e-6);
  /* errors: the state stays as it was */
  EXPECT_ERROR(kiln_layer_adapt(dense, x), INVALID, "(Dense) has no adapt", "Normalization");
  EXPECT_ERROR(kiln_layer_adapt(given, x), KILN_STATUS_FAILED_PRECONDITION, "given mean and variance",
               "adapt");
  EXPECT_ERROR(kiln_layer_adapt(norm, f32(2, d42, ones)), INVALID, "batch of shape (4, 2)", "(None, 3)");
  EXPECT_ERROR(kiln_layer_adapt(NULL, x), INVALID, "kiln_layer_adapt", "layer");
  EXPECT_ERROR(kiln_layer_adapt(norm, NULL), INVALID, "kiln_layer_adapt", "data");
  EXPECT_ERROR(kiln_layer_adapt_dataset(norm, NULL), INVALID, "kiln_layer_adapt_dataset", "dataset");
  OK(kiln_dataset_take(&empty, batches, 0));
  EXPECT_ERROR(kiln_layer_adapt_dataset(norm, empty), INVALID, "no batches", "at least one");
  if (OK(kiln_layer_call_tensor(&y, norm, f32(2, d13, row), false))) expect_f32(y, 2, d13, minus1, 1e-6);
  EXPECT_ERROR(create_status("Normalization", "{\"mean\": 1.0}"), INVALID, "both mean and variance", NULL);
  EXPECT_ERROR(
      create_status("Normalization", "{\"mean\": [[1.0, 2.0], [3.0]], \"variance\": 1.0, \"axis\": [0, 1]}"),
      INVALID, "ragged", NULL);
  kiln_dataset_free(empty);
  kiln_dataset_free(batches);
  kiln_dataset_free(slices);
  kiln_tensor_list_free(parts);
  kiln_layer_free(norm);
  kiln_layer_free(from_ds);
  kiln_layer_free(given);
  kiln_layer_free(dense);
  release_kept();
}

/* SimpleRNN, GRU and LSTM by class name: h = x + 0.5 h per step (linear, kernel ones, recurrent 0.5, no
 * bias) over the steps 1, 2, 3 gives 1, 2.5, 4.25; backwards 3, 3.5, 2.75; a mask that drops the last
 * step keeps 2.5. LSTM takes its initial states as inputs and gives them back with return_state. */
static void test_recurrent(void) {
  static const char *linear =
      "{\"units\": 1, \"activation\": \"linear\", \"use_bias\": false, \"kernel_initializer\": \"ones\", "
      "\"recurrent_initializer\": {\"class_name\": \"Constant\", \"config\": {\"value\": 0.5}}, "
      "\"return_sequences\": true";
  const int64_t xd[3] = {1, 3, 1}, md[2] = {1, 3}, last[2] = {1, 1};
  const float xv[3] = {1, 2, 3}, fwd[3] = {1, 2.5f, 4.25f}, bwd[3] = {3, 3.5f, 2.75f}, kept[1] = {2.5f};
  const uint8_t mv[3] = {1, 1, 0};
  char json[512];
  kiln_tensor *x = f32(3, xd, xv);
  kiln_clear_session();
  snprintf(json, sizeof json, "%s}", linear);
  expect_layer("SimpleRNN", json, x, 3, xd, fwd);
  snprintf(json, sizeof json, "%s, \"go_backwards\": true}", linear);
  expect_layer("SimpleRNN", json, x, 3, xd, bwd);
  {
    kiln_layer *rnn = NULL;
    kiln_tensor_list *in = NULL, *masks = NULL, *out = NULL;
    kiln_tensor *y = NULL;
    kiln_layer_call_options o;
    snprintf(json, sizeof json, "%s, \"return_sequences\": false}", linear);
    rnn = layer_from("SimpleRNN", json);
    OK(kiln_tensor_list_create(&in));
    OK(kiln_tensor_list_append(in, x));
    OK(kiln_tensor_list_create(&masks));
    OK(kiln_tensor_list_append(masks, make(KILN_DTYPE_BOOL, 2, md, mv)));
    OK(kiln_layer_call_options_init(&o, sizeof o));
    o.masks = masks;
    if (rnn) OK(kiln_layer_call_with_options(&out, NULL, rnn, in, &o));
    if (out) OK(kiln_tensor_list_get(&y, out, 0));
    if (y) expect_f32(y, 2, last, kept, 0);
    kiln_tensor_list_free(out);
    kiln_tensor_list_free(masks);
    kiln_tensor_list_free(in);
    kiln_layer_free(rnn);
  }
  {
    /* LSTM(2) from zero weights but the bias's forget gate (unit_forget_bias): c = sigmoid(1) c0 + 0,
     * h = sigmoid(0) tanh(c) */
    const int64_t sd[2] = {1, 2}, seq[3] = {1, 3, 1};
    const float h0[2] = {0.5f, -1}, c0[2] = {2, -4};
    float want_c[2], want_h[2];
    kiln_layer *lstm =
        layer_from("LSTM",
                   "{\"units\": 2, \"kernel_initializer\": \"zeros\", \"recurrent_initializer\": "
                   "\"zeros\", \"return_state\": true}");
    kiln_tensor_list *in = NULL, *out = NULL;
    kiln_tensor *h = NULL, *c = NULL;
    size_t n = 0;
    int i;
    const float f = 1.0f / (1.0f + expf(-1.0f));
    for (i = 0; i < 2; ++i) {
      want_c[i] = c0[i] * f * f * f;
      want_h[i] = 0.5f * tanhf(want_c[i]);
    }
    OK(kiln_tensor_list_create(&in));
    OK(kiln_tensor_list_append(in, x));
    OK(kiln_tensor_list_append(in, f32(2, sd, h0)));
    OK(kiln_tensor_list_append(in, f32(2, sd, c0)));
    if (lstm) OK(kiln_layer_call(&out, lstm, in, false));
    n = kiln_tensor_list_get_size(out);
    CHECK(n == 3);
    if (n == 3) {
      OK(kiln_tensor_list_get(&h, out, 1));
      OK(kiln_tensor_list_get(&c, out, 2));
      expect_f32(h, 2, sd, want_h, 1e-6);
      expect_f32(c, 2, sd, want_c, 1e-6);
    }
    kiln_tensor_list_free(out);
    kiln_tensor_list_free(in);
    /* two initial states for a GRU (it has one), and sequences of rank 2, are statuses naming the layer */
    {
      kiln_layer *gru = layer_from("GRU", "{\"units\": 2}");
      kiln_tensor *y = NULL;
      OK(kiln_tensor_list_create(&in));
      OK(kiln_tensor_list_append(in, x));
      OK(kiln_tensor_list_append(in, f32(2, sd, h0)));
      OK(kiln_tensor_list_append(in, f32(2, sd, c0)));
      if (gru)
        EXPECT_ERROR(kiln_layer_call(&out, gru, in, false), INVALID, "GRU", "optionally 1 initial state");
      if (gru)
        EXPECT_ERROR(kiln_layer_call_tensor(&y, gru, f32(2, seq + 1, xv), false), INVALID, "GRU", "rank 3");
      kiln_tensor_list_free(in);
      kiln_layer_free(gru);
    }
    kiln_layer_free(lstm);
  }
  {
    /* Bidirectional(SimpleRNN) from a serialized layer: the forward and backward outputs side by side;
     * with the linear h = x + 0.5 h copies over 1, 2, 3: forward 4.25, backward 3 + 0.5 (2 + 0.5 * 1) = 2.75
     */
    const int64_t two[2] = {1, 2};
    const float both[2] = {4.25f, 2.75f};
    expect_layer(
        "Bidirectional",
        "{\"layer\": {\"class_name\": \"SimpleRNN\", \"config\": {\"units\": 1, \"activation\": "
        "\"linear\", \"use_bias\": false, \"kernel_initializer\": \"ones\", \"recurrent_initializer\": "
        "{\"class_name\": \"Constant\", \"config\": {\"value\": 0.5}}}}}",
        x, 2, two, both);
    EXPECT_ERROR(create_status("Bidirectional",
                               "{\"layer\": {\"class_name\": \"Dense\", \"config\": "
                               "{\"units\": 2}}}"),
                 INVALID, "Bidirectional", "expected a recurrent layer");
    EXPECT_ERROR(create_status("TimeDistributed", "{\"layer\": 3}"), INVALID, "TimeDistributed",
                 "serialized layer");
  }
  EXPECT_ERROR(create_status("LSTM", "{\"units\": 2, \"stateful\": true}"), KILN_STATUS_UNIMPLEMENTED, "LSTM",
               "stateful");
  EXPECT_ERROR(create_status("SimpleRNN", "{\"units\": 2, \"recurrent_activation\": \"sigmoid\"}"), INVALID,
               "SimpleRNN", "recurrent_activation");
  release_kept();
}

/* SpectralNormalization of a Dense(1) whose kernel is set to [3, 4]: one training call divides it by its
 * norm 5 (the power iteration is exact for one column), inference leaves it; vector_u comes first and is
 * not trainable; a wrapped layer without a kernel is an error. */
static void test_spectral_normalization(void) {
  const int64_t d12[2] = {1, 2}, d21[2] = {2, 1}, d11[2] = {1, 1};
  const float ones[2] = {1, 1}, k34[2] = {3, 4}, unit[2] = {0.6f, 0.8f}, seven[1] = {7}, sum[1] = {1.4f};
  kiln_layer *sn = layer_from("SpectralNormalization",
                              "{\"layer\": {\"class_name\": \"Dense\", \"config\": {\"units\": 1}}}");
  kiln_variable *vars[3] = {NULL, NULL, NULL};
  kiln_tensor *y = NULL, *x = f32(2, d12, ones), *k = NULL;
  size_t n = 0, i;
  if (!sn || !OK(kiln_layer_call_tensor(&y, sn, x, false))) return;
  kiln_tensor_free(y);
  if (OK(kiln_layer_get_variables(vars, 3, &n, sn, KILN_VARIABLES_ALL)) && n == 3) {
    CHECK(!kiln_variable_get_trainable(vars[0]) && kiln_variable_get_trainable(vars[1]));
    OK(kiln_variable_assign(vars[1], f32(2, d21, k34)));
    if (OK(kiln_layer_call_tensor(&y, sn, x, false))) expect_f32(y, 2, d11, seven, 1e-5f);
    if (OK(kiln_layer_call_tensor(&y, sn, x, true))) expect_f32(y, 2, d11, sum, 1e-5f);
    if (OK(kiln_variable_read(&k, vars[1]))) expect_f32(k, 2, d21, unit, 1e-6f);
  }
  CHECK(n == 3);
  for (i = 0; i < n && i < 3; ++i) kiln_variable_free(vars[i]);
  {
    kiln_layer *bad = layer_from("SpectralNormalization",
                                 "{\"layer\": {\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.5}}}");
    if (bad)
      EXPECT_ERROR(kiln_layer_call_tensor(&y, bad, x, true), INVALID, "SpectralNormalization", "kernel");
    kiln_layer_free(bad);
  }
  EXPECT_ERROR(create_status("SpectralNormalization",
                             "{\"layer\": {\"class_name\": \"Dense\", \"config\": "
                             "{\"units\": 1}}, \"power_iterations\": 0}"),
               INVALID, "SpectralNormalization", "power_iterations");
  kiln_layer_free(sn);
  release_kept();
}

/* A custom C cell (kiln_layer_create_custom + kiln_layer_set_state_size): y = x + 0.5 h, its state y. */
static kiln_status *half_cell_call(kiln_tensor_list *outputs, kiln_layer *self,
                                   const kiln_tensor_list *inputs, bool training, void *user_data) {
  kiln_tensor *x = NULL, *h = NULL, *half = NULL, *scaled = NULL, *y = NULL;
  kiln_status *st;
  const int64_t none[1] = {0};
  const float v = 0.5f;
  (void)self;
  (void)training;
  (void)user_data;
  if (kiln_tensor_list_get_size(inputs) != 2)
    return kiln_status_create(INVALID, "half cell: expected [x, h]");
  if ((st = kiln_tensor_list_get(&x, inputs, 0)) || (st = kiln_tensor_list_get(&h, inputs, 1)) ||
      (st = kiln_tensor_create(&half, F32, none, 0, &v, sizeof v)) || (st = kiln_mul(&scaled, h, half)) ||
      (st = kiln_add(&y, x, scaled)) || (st = kiln_tensor_list_append(outputs, y)))
    goto done;
  st = kiln_tensor_list_append(outputs, y);
done:
  kiln_tensor_free(x);
  kiln_tensor_free(h);
  kiln_tensor_free(half);
  kiln_tensor_free(scaled);
  kiln_tensor_free(y);
  return st;
}

/* keras.layers.RNN(cell) and the cells through the C API: a custom C cell and a built-in SimpleRNNCell,
 * each h = x + 0.5 h over the steps 1, 2, 3 (1, 2.5, 4.25; a mask dropping the last step keeps 2.5),
 * the cell called alone ([x, h] -> [y, h']), state sizes, StackedRNNCells, and bad arguments. */
static void test_rnn_cells(void) {
  static const char *linear_cell =
      "{\"class_name\": \"SimpleRNNCell\", \"config\": {\"units\": 1, \"activation\": \"linear\", "
      "\"use_bias\": "
      "false, \"kernel_initializer\": \"ones\", \"recurrent_initializer\": {\"class_name\": \"Constant\", "
      "\"config\": {\"value\": 0.5}}}}";
  const int64_t xd[3] = {1, 3, 1}, one[2] = {1, 1}, md[2] = {1, 3};
  const float xv[3] = {1, 2, 3}, seq[3] = {1, 2.5f, 4.25f}, two[1] = {2}, h1[1] = {1}, step[1] = {2.5f};
  const float kept[3] = {1, 2.5f, 2.5f};
  const uint8_t mv[3] = {1, 1, 0};
  kiln_layer_callbacks cb;
  kiln_layer *custom = NULL, *rnn = NULL, *dense = NULL, *lstm_cell = NULL, *stack = NULL, *cells[2];
  kiln_config *c = NULL;
  int64_t sizes[4] = {0, 0, 0, 0};
  size_t n = 9;
  char json[1024];
  kiln_tensor *x = f32(3, xd, xv), *y = NULL;
  kiln_clear_session();
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = half_cell_call;
  OK(kiln_layer_create_custom(&custom, "HalfCell", NULL, &cb, NULL));
  /* not a cell yet: RNN refuses it, naming state_size */
  EXPECT_ERROR(kiln_layer_create_around(&rnn, "RNN", NULL, &custom, 1), INVALID, "HalfCell", "state_size");
  OK(kiln_layer_get_state_size(sizes, 4, &n, custom));
  CHECK(n == 0);
  sizes[0] = 1;
  OK(kiln_layer_set_state_size(custom, sizes, 1));
  OK(kiln_config_from_json(&c, "{\"return_sequences\": true}"));
  OK(kiln_layer_create_around(&rnn, "RNN", c, &custom, 1));
  kiln_config_free(c);
  if (rnn) {
    kiln_tensor_list *in = NULL, *masks = NULL, *out = NULL;
    kiln_layer_call_options o;
    OK(kiln_layer_call_tensor(&y, rnn, x, false));
    if (y) expect_f32(y, 3, xd, seq, 1e-6);
    y = NULL;
    OK(kiln_tensor_list_create(&in));
    OK(kiln_tensor_list_append(in, x));
    OK(kiln_tensor_list_create(&masks));
    OK(kiln_tensor_list_append(masks, make(B8, 2, md, mv)));
    OK(kiln_layer_call_options_init(&o, sizeof o));
    o.masks = masks;
    OK(kiln_layer_call_with_options(&out, NULL, rnn, in, &o));
    if (out) OK(kiln_tensor_list_get(&y, out, 0));
    if (y) expect_f32(y, 3, xd, kept, 1e-6);
    y = NULL;
    kiln_tensor_list_free(out);
    kiln_tensor_list_free(masks);
    kiln_tensor_list_free(in);
    /* the RNN holds the cell object itself: its sub-layer is the same layer */
    {
      kiln_layer *sub = NULL;
      OK(kiln_layer_get_layer(&sub, rnn, 0));
      if (sub) CHECK(kiln_layer_get_id(sub) == kiln_layer_get_id(custom));
      kiln_layer_free(sub);
    }
    kiln_layer_free(rnn);
    rnn = NULL;
  }
  /* the same from a config: RNN with a serialized built-in cell */
  snprintf(json, sizeof json, "{\"return_sequences\": true, \"cell\": %s}", linear_cell);
  expect_layer("RNN", json, x, 3, xd, seq);
  /* a built-in cell alone: [x, h] -> [y, h'] */
  {
    kiln_config *ser = NULL;
    kiln_layer *cell = NULL;
    kiln_tensor_list *in = NULL, *out = NULL;
    OK(kiln_config_from_json(&ser, linear_cell));
    OK(kiln_layer_deserialize(&cell, ser));
    kiln_config_free(ser);
    OK(kiln_tensor_list_create(&in));
    OK(kiln_tensor_list_append(in, f32(2, one, two)));
    OK(kiln_tensor_list_append(in, f32(2, one, h1)));
    if (cell) OK(kiln_layer_call(&out, cell, in, false));
    CHECK(kiln_tensor_list_get_size(out) == 2);
    if (kiln_tensor_list_get_size(out) == 2) {
      OK(kiln_tensor_list_get(&y, out, 0));
      if (y) expect_f32(y, 2, one, step, 1e-6);
      y = NULL;
      OK(kiln_tensor_list_get(&y, out, 1));
      if (y) expect_f32(y, 2, one, step, 1e-6);
      y = NULL;
    }
    kiln_tensor_list_free(out);
    kiln_tensor_list_free(in);
    kiln_layer_free(cell);
  }
  /* state sizes: LSTMCell two of units; a stack the cells' one after the other */
  lstm_cell = layer_from("LSTMCell", "{\"units\": 3}");
  if (lstm_cell) {
    OK(kiln_layer_get_state_size(sizes, 4, &n, lstm_cell));
    CHECK(n == 2 && sizes[0] == 3 && sizes[1] == 3);
    cells[0] = lstm_cell;
    cells[1] = custom;
    OK(kiln_layer_create_around(&stack, "StackedRNNCells", NULL, cells, 2));
    if (stack) {
      OK(kiln_layer_get_state_size(sizes, 4, &n, stack));
      CHECK(n == 3 && sizes[0] == 3 && sizes[1] == 3 && sizes[2] == 1);
      OK(kiln_layer_get_state_size(NULL, 0, &n, stack));
      CHECK(n == 3);
    }
  }
  /* bad arguments */
  dense = layer_from("Dense", "{\"units\": 2}");
  EXPECT_ERROR(kiln_layer_create_around(&rnn, "RNN", NULL, &dense, 1), INVALID, "RNN", "state_size");
  EXPECT_ERROR(kiln_layer_create_around(&rnn, "Dense", NULL, &dense, 1), INVALID, "Dense", "RNN");
  EXPECT_ERROR(kiln_layer_create_around(&rnn, "RNN", NULL, &custom, 0), INVALID, "num_layers",
               "at least one");
  EXPECT_ERROR(kiln_layer_create_around(&rnn, "RNN", NULL, NULL, 1), INVALID, "layers", "NULL");
  cells[0] = NULL;
  EXPECT_ERROR(kiln_layer_create_around(&rnn, "RNN", NULL, cells, 1), INVALID, "layers[0]", "NULL");
  EXPECT_ERROR(kiln_layer_create_around(NULL, "RNN", NULL, &custom, 1), INVALID, "out", "NULL");
  sizes[0] = 0;
  EXPECT_ERROR(kiln_layer_set_state_size(custom, sizes, 1), INVALID, "state_size[0]", "positive");
  EXPECT_ERROR(kiln_layer_set_state_size(custom, NULL, 1), INVALID, "sizes", "NULL");
  sizes[0] = 2;
  EXPECT_ERROR(kiln_layer_set_state_size(dense, sizes, 1), INVALID, "only a custom layer", "Dense");
  EXPECT_ERROR(kiln_layer_get_state_size(sizes, 4, NULL, custom), INVALID, "out_count", "NULL");
  EXPECT_ERROR(kiln_layer_get_state_size(NULL, 4, &n, custom), INVALID, "out", "NULL");
  snprintf(json, sizeof json, "{\"cell\": {\"class_name\": \"Dense\", \"config\": {\"units\": 2}}}");
  EXPECT_ERROR(create_status("RNN", json), INVALID, "RNN", "state_size");
  EXPECT_ERROR(create_status("RNN", "{}"), INVALID, "RNN", "cell");
  kiln_layer_free(stack);
  kiln_layer_free(lstm_cell);
  kiln_layer_free(dense);
  kiln_layer_free(custom);
  release_kept();
}

/* EinsumDense by class name: the plain and ellipsis forms with ones for weights, and errors. */
static double sigmoid(double v) { return 1 / (1 + exp(-v)); }

/* ConvLSTM1D(1, 1) with kernel ones and no recurrence: each step's gates are the input plus the
 * bias (the forget gate's 1, unit_forget_bias), so h and c follow by hand; the initial states as
 * inputs; ConvLSTM2D's errors as statuses naming the layer. */
static void test_conv_lstm(void) {
  const int64_t xd[4] = {1, 2, 1, 1}, sd[3] = {1, 1, 1};
  const float xv[2] = {1, 2}, h0v[1] = {0.5f}, c0v[1] = {-2};
  kiln_tensor *x = f32(4, xd, xv), *h0 = f32(3, sd, h0v), *c0 = f32(3, sd, c0v);
  kiln_layer *l = layer_from("ConvLSTM1D",
                             "{\"filters\": 1, \"kernel_size\": 1, \"kernel_initializer\": \"ones\", "
                             "\"recurrent_initializer\": \"zeros\", \"return_state\": true}");
  kiln_tensor_list *in = NULL, *out = NULL;
  kiln_tensor *y = NULL;
  float want_h[1], want_c[1];
  int from_states;
  OK(kiln_tensor_list_create(&in));
  OK(kiln_tensor_list_append(in, x));
  for (from_states = 0; from_states < 2 && l; ++from_states) {
    double c = from_states ? c0v[0] : 0;
    int t;
    for (t = 0; t < 2; ++t) {
      const double v = xv[t];
      c = sigmoid(v + 1) * c + sigmoid(v) * tanh(v);
    }
    want_c[0] = (float)c;
    want_h[0] = (float)(sigmoid(xv[1]) * tanh(c));
    if (from_states) {
      OK(kiln_tensor_list_append(in, h0));
      OK(kiln_tensor_list_append(in, c0));
    }
    OK(kiln_layer_call(&out, l, in, false));
    if (!out) break;
    OK(kiln_tensor_list_get(&y, out, 0));
    expect_f32(y, 3, sd, want_h, 1e-6); /* frees y */
    y = NULL;
    OK(kiln_tensor_list_get(&y, out, 2));
    expect_f32(y, 3, sd, want_c, 1e-6);
    y = NULL;
    kiln_tensor_list_free(out);
    out = NULL;
  }
  {
    /* an initial state of the wrong shape, then bad configs */
    kiln_tensor_list *bad = NULL;
    OK(kiln_tensor_list_create(&bad));
    OK(kiln_tensor_list_append(bad, x));
    OK(kiln_tensor_list_append(bad, x));
    OK(kiln_tensor_list_append(bad, h0));
    EXPECT_ERROR(kiln_layer_call(&out, l, bad, false), INVALID, "ConvLSTM1D", "initial state h");
    kiln_tensor_list_free(bad);
  }
  EXPECT_ERROR(create_status("ConvLSTM2D",
                             "{\"filters\": 2, \"kernel_size\": 3, \"data_format\": "
                             "\"channels_first\"}"),
               KILN_STATUS_UNIMPLEMENTED, "ConvLSTM2D", "channels_first");
  EXPECT_ERROR(create_status("ConvLSTM3D", "{\"filters\": 2}"), INVALID, "ConvLSTM3D", "kernel_size");
  kiln_tensor_list_free(in);
  kiln_layer_free(l);
  release_kept();
}

/* AdaptiveAveragePooling1D and AdaptiveMaxPooling1D over PyTorch's windows (5 steps to 3: [0, 2),
 * [1, 4), [3, 5)); ActivityRegularization's loss from kiln_layer_get_losses; a bad output_size. */
static void test_adaptive_pooling(void) {
  const int64_t xd[3] = {1, 5, 1}, yd[3] = {1, 3, 1}, rd[2] = {1, 2}, scalar[1] = {0};
  const float xv[5] = {1, 2, 3, 4, 6}, avg[3] = {1.5f, 3, 5}, mx[3] = {2, 4, 6}, rv[2] = {1, -2};
  const float loss[1] = {(0.1f * 3 + 0.01f * 5) / 1};
  kiln_tensor *x = f32(3, xd, xv), *r = f32(2, rd, rv), *y = NULL;
  kiln_layer *reg = layer_from("ActivityRegularization", "{\"l1\": 0.1, \"l2\": 0.01}");
  kiln_tensor_list *losses = NULL;
  expect_layer("AdaptiveAveragePooling1D", "{\"output_size\": 3}", x, 3, yd, avg);
  expect_layer("AdaptiveMaxPooling1D", "{\"output_size\": [3]}", x, 3, yd, mx);
  if (reg) {
    OK(kiln_layer_call_tensor(&y, reg, r, false));
    expect_f32(y, 2, rd, rv, 0);
    OK(kiln_layer_get_losses(&losses, reg));
    y = NULL;
    if (losses) OK(kiln_tensor_list_get(&y, losses, 0));
    expect_f32(y, 0, scalar, loss, 1e-6);
  }
  EXPECT_ERROR(create_status("AdaptiveMaxPooling2D", "{\"output_size\": [1, 2, 3]}"), INVALID,
               "AdaptiveMaxPooling2D", "output_size");
  kiln_tensor_list_free(losses);
  kiln_layer_free(reg);
  release_kept();
}

/* GroupedQueryAttention by class name: [query, value] -> [B, T, dim]; with the scores flag the scores
 * have the query heads [B, 4, T, S]; heads that do not divide are a status naming the layer. */
static void test_grouped_query_attention(void) {
  const int64_t qd[3] = {1, 2, 4}, vd[3] = {1, 3, 4}, sd[4] = {1, 4, 2, 3}, none[1] = {0};
  float qv[8], vv[12];
  const uint8_t yes = 1;
  kiln_layer *l = layer_from("GroupedQueryAttention",
                             "{\"head_dim\": 2, \"num_query_heads\": 4, "
                             "\"num_key_value_heads\": 2, \"use_gate\": true}");
  kiln_tensor_list *in = NULL, *out = NULL;
  kiln_tensor *y = NULL, *q, *v, *flag; /* q, v and flag are kept: released at the end */
  int i;
  for (i = 0; i < 8; ++i) qv[i] = (float)i / 8;
  for (i = 0; i < 12; ++i) vv[i] = 1 - (float)i / 12;
  q = f32(3, qd, qv);
  v = f32(3, vd, vv);
  flag = make(B8, 0, none, &yes);
  OK(kiln_tensor_list_create(&in));
  OK(kiln_tensor_list_append(in, q));
  OK(kiln_tensor_list_append(in, v));
  OK(kiln_tensor_list_append(in, flag));
  if (l) OK(kiln_layer_call(&out, l, in, false));
  if (out) {
    CHECK(kiln_tensor_list_get_size(out) == 2);
    OK(kiln_tensor_list_get(&y, out, 0));
    CHECK(y && meta_ok(y, F32, 3, qd));
    kiln_tensor_free(y);
    y = NULL;
    OK(kiln_tensor_list_get(&y, out, 1));
    CHECK(y && meta_ok(y, F32, 4, sd));
    kiln_tensor_free(y);
  }
  EXPECT_ERROR(create_status("GroupedQueryAttention",
                             "{\"head_dim\": 2, \"num_query_heads\": 3, "
                             "\"num_key_value_heads\": 2}"),
               INVALID, "GroupedQueryAttention", "divisible");
  kiln_tensor_list_free(out);
  kiln_tensor_list_free(in);
  kiln_layer_free(l);
  release_kept();
}

static void test_einsum_dense(void) {
  const float xv[6] = {1, 2, 3, 4, 5, 6};
  const int64_t d23[2] = {2, 3}, d123[3] = {1, 2, 3}, d22[2] = {2, 2}, d122[3] = {1, 2, 2};
  const float plain[4] = {7, 7, 16, 16}, ell[4] = {6, 6, 15, 15};
  kiln_tensor *x = f32(2, d23, xv), *x3 = f32(3, d123, xv), *y = NULL;
  kiln_layer *bad = NULL;
  /* sum over b, plus a bias of ones on c */
  expect_layer("EinsumDense",
               "{\"equation\": \"ab,bc->ac\", \"output_shape\": 2, \"bias_axes\": \"c\", "
               "\"kernel_initializer\": \"ones\", \"bias_initializer\": \"ones\"}",
               x, 2, d22, plain);
  expect_layer("EinsumDense",
               "{\"equation\": \"...b,bc->...c\", \"output_shape\": 2, \"kernel_initializer\": \"ones\"}", x3,
               3, d122, ell);
  EXPECT_ERROR(create_status("EinsumDense", "{\"equation\": \"ab->b\", \"output_shape\": 2}"), INVALID,
               "EinsumDense", "not of a form");
  bad = layer_from("EinsumDense", "{\"equation\": \"ab,bc->ac\", \"output_shape\": [2, 2]}");
  EXPECT_ERROR(kiln_layer_call_tensor(&y, bad, x, false), INVALID, "output_shape has 2 dims", "needs 1");
  CHECK(y == NULL);
  kiln_layer_free(bad);
  release_kept();
}

/* CategoryEncoding by class name: multi-hot rows of integer ids. */
static void test_category_encoding(void) {
  const int64_t ids_v[4] = {0, 1, 3, 3}, d22[2] = {2, 2}, d24[2] = {2, 4};
  const float want[8] = {1, 1, 0, 0, 0, 0, 0, 1};
  expect_layer("CategoryEncoding", "{\"num_tokens\": 4}", make(I64, 2, d22, ids_v), 2, d24, want);
  release_kept();
}

/* Discretization: given boundaries (Keras's docstring example), adapt() from an array and from a
 * dataset of batches (the boundaries then in the config), errors; CenterCrop of uint8 images. */
static void test_discretization_center_crop(void) {
  const int64_t d24[2] = {2, 4}, d8[1] = {8}, img[4] = {1, 4, 4, 1}, crop[4] = {1, 2, 2, 1};
  const float x[8] = {-1.5f, 1.0f, 3.4f, .5f, 0.0f, 3.0f, 1.3f, 0.0f};
  const int32_t given[8] = {0, 2, 3, 1, 1, 3, 2, 1}, adapted[8] = {0, 2, 3, 2, 1, 3, 3, 1};
  unsigned char px[16];
  const float centre[4] = {5, 6, 9, 10};
  kiln_layer *fixed = layer_from("Discretization", "{\"bin_boundaries\": [0.0, 1.0, 2.0]}");
  kiln_layer *bins = layer_from("Discretization", "{\"num_bins\": 4}");
  kiln_layer *from_ds = layer_from("Discretization", "{\"num_bins\": 4}");
  kiln_tensor *t = f32(2, d24, x), *y = NULL;
  kiln_tensor_list *parts = NULL;
  kiln_dataset *slices = NULL, *batches = NULL;
  kiln_config *c = NULL;
  char *json = NULL;
  int i;
  for (i = 0; i < 16; ++i) px[i] = (unsigned char)i;
  if (!fixed || !bins || !from_ds) return;
  if (OK(kiln_layer_call_tensor(&y, fixed, t, false))) expect_raw(y, I32, 2, d24, given);
  EXPECT_ERROR(kiln_layer_call_tensor(&y, bins, t, false), KILN_STATUS_FAILED_PRECONDITION, "adapt()",
               "bin_boundaries");
  OK(kiln_layer_adapt(bins, t));
  if (OK(kiln_layer_call_tensor(&y, bins, t, false))) expect_raw(y, I32, 2, d24, adapted);
  if (OK(kiln_layer_get_config(&c, bins)) && OK(kiln_config_to_json(&json, c, -1))) {
    CHECK(strstr(json, "\"bin_boundaries\":[0.0,0.5,1.2999999523162842]") != NULL);
    CHECK(strstr(json, "\"num_bins\":4") != NULL);
  }
  kiln_string_free(json);
  kiln_config_free(c);
  /* the same values as a dataset of batches of 3, 3 and 2: summaries merged batch by batch */
  OK(kiln_tensor_list_create(&parts));
  OK(kiln_tensor_list_append(parts, f32(1, d8, x)));
  OK(kiln_dataset_from_tensor_slices(&slices, parts, NULL));
  OK(kiln_dataset_batch(&batches, slices, 3, false));
  OK(kiln_layer_adapt_dataset(from_ds, batches));
  if (OK(kiln_layer_call_tensor(&y, from_ds, t, false))) expect_raw(y, I32, 2, d24, adapted);
  EXPECT_ERROR(kiln_layer_adapt(fixed, t), KILN_STATUS_FAILED_PRECONDITION, "made with bin_boundaries", "num_bins");
  EXPECT_ERROR(create_status("Discretization", "{\"bin_boundaries\": [1.0, 0.0]}"), INVALID, "Discretization",
               "sorted ascending");
  EXPECT_ERROR(create_status("Discretization", "{}"), INVALID, "num_bins", "bin_boundaries");
  expect_layer("CenterCrop", "{\"height\": 2, \"width\": 2}", make(U8, 4, img, px), 4, crop, centre);
  EXPECT_ERROR(create_status("CenterCrop", "{\"height\": 2, \"width\": 0}"), INVALID, "CenterCrop", "positive");
  kiln_dataset_free(batches);
  kiln_dataset_free(slices);
  kiln_tensor_list_free(parts);
  kiln_layer_free(fixed);
  kiln_layer_free(bins);
  kiln_layer_free(from_ds);
  release_kept();
}

/* IntegerLookup: adapt() from an array and from a dataset (Keras's docstring example), the
 * vocabulary read and set, a given vocabulary with a mask, tf_idf, invert, farmhash OOV buckets, and
 * errors; Hashing with FarmHash, SipHash and a mask; HashedCrossing. */
static void test_integer_lookup(void) {
  const int64_t d23[2] = {2, 3}, d6[1] = {6}, d4[1] = {4}, d3[1] = {3}, d5[1] = {5}, d25[2] = {2, 5};
  const int64_t data[6] = {12, 1138, 42, 42, 1000, 36}, learned[6] = {-1, 42, 1138, 1000, 36, 12};
  const int64_t ids[6] = {5, 2, 1, 1, 3, 4}, vocab[4] = {12, 36, 1138, 42},
                masked_in[6] = {12, 1138, 42, 42, 1000, 0};
  const int64_t masked[6] = {2, 4, 5, 5, 1, 0}, inv_in[3] = {0, 1, 2}, inv[3] = {0, -1, 12},
                own[5] = {42, 1138, 1000, 36, 12};
  const int64_t repeat[3] = {3, 4, 3}, tokens[3] = {7, 8, 9};
  const float idf[4] = {0.25f, 0.75f, 0.6f, 0.4f},
              tf_idf[10] = {0, 0.25f, 0, 0.6f, 0.8f, 1.0f, 0, 0.75f, 0, 0.4f};
  const int64_t idf_in[8] = {12, 1138, 42, 42, 42, 7, 36, 7}, d24[2] = {2, 4};
  kiln_layer *adapted = layer_from("IntegerLookup", "{}");
  kiln_layer *from_ds = layer_from("IntegerLookup", "{}");
  kiln_layer *masked_l = layer_from("IntegerLookup", "{\"mask_token\": 0, \"invert\": false}");
  kiln_layer *inverse = layer_from("IntegerLookup", "{\"invert\": true, \"mask_token\": 0}");
  kiln_layer *weighted = layer_from("IntegerLookup", "{\"output_mode\": \"tf_idf\"}");
  kiln_layer *dense = layer_from("Dense", "{\"units\": 2}");
  kiln_layer *given = layer_from("IntegerLookup", "{\"vocabulary\": [1, 2]}");
  kiln_tensor *x = make(I64, 2, d23, data), *y = NULL, *v = NULL;
  kiln_tensor_list *parts = NULL;
  kiln_dataset *slices = NULL, *batches = NULL;
  kiln_config *c = NULL;
  char *json = NULL;
  if (!adapted || !from_ds || !masked_l || !inverse || !weighted || !dense || !given) return;
  OK(kiln_layer_adapt(adapted, x));
  if (OK(kiln_layer_get_vocabulary(&v, adapted, true))) expect_raw(v, I64, 1, d6, learned);
  if (OK(kiln_layer_get_vocabulary(&v, adapted, false))) expect_raw(v, I64, 1, d5, own);
  if (OK(kiln_layer_call_tensor(&y, adapted, x, false))) expect_raw(y, I64, 2, d23, ids);
  if (OK(kiln_layer_get_config(&c, adapted)) && OK(kiln_config_to_json(&json, c, -1))) {
    CHECK(strstr(json, "\"vocabulary\":[42,1138,1000,36,12]") != NULL);
    CHECK(strstr(json, "\"has_input_vocabulary\":false") != NULL);
  }
  kiln_string_free(json);
  kiln_config_free(c);
  /* the same rows as a dataset of batches of 1: the counts add up across batches */
  OK(kiln_tensor_list_create(&parts));
  OK(kiln_tensor_list_append(parts, x));
  OK(kiln_dataset_from_tensor_slices(&slices, parts, NULL));
  OK(kiln_dataset_batch(&batches, slices, 1, false));
  OK(kiln_layer_adapt_dataset(from_ds, batches));
  if (OK(kiln_layer_get_vocabulary(&v, from_ds, true))) expect_raw(v, I64, 1, d6, learned);
  /* set_vocabulary without the special tokens; the mask token is index 0 */
  OK(kiln_layer_set_vocabulary(masked_l, make(I64, 1, d4, vocab), NULL));
  if (OK(kiln_layer_call_tensor(&y, masked_l, make(I64, 2, d23, masked_in), false)))
    expect_raw(y, I64, 2, d23, masked);
  OK(kiln_layer_set_vocabulary(inverse, make(I64, 1, d4, vocab), NULL));
  if (OK(kiln_layer_call_tensor(&y, inverse, make(I64, 1, d3, inv_in), false)))
    expect_raw(y, I64, 1, d3, inv);
  /* tf_idf: Keras's docstring example; the OOV slot gets the mean weight */
  OK(kiln_layer_set_vocabulary(weighted, make(I64, 1, d4, vocab), f32(1, d4, idf)));
  if (OK(kiln_layer_call_tensor(&y, weighted, make(I64, 2, d24, idf_in), false)))
    expect_f32(y, 2, d25, tf_idf, 1e-6);
  /* errors leave the vocabulary as it was */
  EXPECT_ERROR(kiln_layer_set_vocabulary(masked_l, make(I64, 1, d3, repeat), NULL), INVALID, "repeats",
               "[3]");
  EXPECT_ERROR(kiln_layer_set_vocabulary(weighted, make(I64, 1, d3, tokens), NULL), INVALID, "idf_weights",
               "tf_idf");
  EXPECT_ERROR(kiln_layer_set_vocabulary(weighted, make(I64, 1, d3, tokens), f32(1, d4, idf)), INVALID,
               "as long as", "4 weights for 3 tokens");
  if (OK(kiln_layer_call_tensor(&y, masked_l, make(I64, 2, d23, masked_in), false)))
    expect_raw(y, I64, 2, d23, masked);
  EXPECT_ERROR(kiln_layer_get_vocabulary(&v, dense, true), INVALID, "Dense", "no vocabulary");
  EXPECT_ERROR(kiln_layer_get_vocabulary(NULL, adapted, true), INVALID, "out", "NULL");
  EXPECT_ERROR(kiln_layer_get_vocabulary(&v, NULL, true), INVALID, "layer", "NULL");
  EXPECT_ERROR(kiln_layer_set_vocabulary(adapted, NULL, NULL), INVALID, "vocabulary", "NULL");
  EXPECT_ERROR(kiln_layer_adapt(given, x), KILN_STATUS_FAILED_PRECONDITION, "IntegerLookup",
               "made with a vocabulary");
  EXPECT_ERROR(create_status("IntegerLookup", "{\"output_mode\": \"one_hot\", \"invert\": true}"), INVALID,
               "IntegerLookup", "invert");
  EXPECT_ERROR(create_status("IntegerLookup", "{\"vocabulary\": \"/nonexistent/vocab.txt\"}"),
               KILN_STATUS_NOT_FOUND, "/nonexistent/vocab.txt", "");
  /* Hashing: Keras's tests, integers hashed as their digits by FarmHash, or SipHash with a salt */
  {
    const int64_t d51[2] = {5, 1}, digits[5] = {0, 1, 2, 3, 4}, fast[5] = {1, 0, 1, 0, 2},
                  strong[5] = {1, 1, 2, 0, 1};
    kiln_layer *hash = layer_from("Hashing", "{\"num_bins\": 3}");
    kiln_layer *salted = layer_from("Hashing", "{\"num_bins\": 3, \"salt\": [133, 137]}");
    kiln_layer *mask = layer_from("Hashing", "{\"num_bins\": 3, \"mask_value\": 1}");
    kiln_layer *farm = layer_from("IntegerLookup",
                                  "{\"vocabulary\": [10, 20, 30], \"num_oov_indices\": 4, "
                                  "\"oov_method\": \"farmhash\"}");
    const int64_t oov_in[4] = {100, 200, 300, 400}, oov_out[4] = {3, 1, 3, 1};
    kiln_tensor *in = make(I64, 2, d51, digits);
    if (hash && OK(kiln_layer_call_tensor(&y, hash, in, false))) expect_raw(y, I64, 2, d51, fast);
    if (salted && OK(kiln_layer_call_tensor(&y, salted, in, false))) expect_raw(y, I64, 2, d51, strong);
    if (mask && OK(kiln_layer_call_tensor(&y, mask, in, false))) {
      const int64_t *got = kiln_tensor_get_data(y);
      CHECK(got[1] == 0 && got[0] >= 1 && got[0] <= 2);
      kiln_tensor_free(y);
    }
    if (farm && OK(kiln_layer_call_tensor(&y, farm, make(I64, 1, d4, oov_in), false)))
      expect_raw(y, I64, 1, d4, oov_out);
    /* HashedCrossing: the same pair, the same bin; a single feature is an error */
    {
      const int64_t d3[1] = {3}, f1[3] = {1, 2, 1}, f2[3] = {4, 5, 4};
      kiln_layer *cross = layer_from("HashedCrossing", "{\"num_bins\": 1000}");
      kiln_tensor_list *pair = NULL, *got = NULL, *one = NULL;
      kiln_tensor *bins = NULL;
      OK(kiln_tensor_list_create(&pair));
      OK(kiln_tensor_list_append(pair, make(I64, 1, d3, f1)));
      OK(kiln_tensor_list_append(pair, make(I64, 1, d3, f2)));
      if (cross) OK(kiln_layer_call(&got, cross, pair, false));
      if (got && OK(kiln_tensor_list_get(&bins, got, 0)) && meta_ok(bins, I64, 1, d3)) {
        const int64_t *b = kiln_tensor_get_data(bins);
        CHECK(b[0] == b[2] && b[0] >= 0 && b[0] < 1000);
      }
      kiln_tensor_free(bins);
      kiln_tensor_list_free(got);
      got = NULL;
      OK(kiln_tensor_list_create(&one));
      OK(kiln_tensor_list_append(one, make(I64, 1, d3, f1)));
      if (cross) EXPECT_ERROR(kiln_layer_call(&got, cross, one, false), INVALID, "HashedCrossing", "two features");
      kiln_tensor_list_free(got);
      kiln_tensor_list_free(one);
      kiln_tensor_list_free(pair);
      kiln_layer_free(cross);
    }
    EXPECT_ERROR(create_status("Hashing", "{\"num_bins\": 0}"), INVALID, "Hashing", "positive");
    EXPECT_ERROR(create_status("Hashing", "{\"num_bins\": 2, \"salt\": [1, 2, 3]}"), INVALID, "salt",
                 "two ints");
    kiln_layer_free(hash);
    kiln_layer_free(salted);
    kiln_layer_free(mask);
    kiln_layer_free(farm);
  }
  kiln_dataset_free(batches);
  kiln_dataset_free(slices);
  kiln_tensor_list_free(parts);
  kiln_layer_free(adapted);
  kiln_layer_free(from_ds);
  kiln_layer_free(masked_l);
  kiln_layer_free(inverse);
  kiln_layer_free(weighted);
  kiln_layer_free(dense);
  kiln_layer_free(given);
  release_kept();
}

/* The random image layers: the images as float32 outside training; in training a flip of a 1 x 2
 * image is the image or its mirror, a crop one of its windows, and contrast and brightness stay in
 * value_range. */
static void test_random_image_layers(void) {
  const int64_t d1121[4] = {1, 1, 2, 1}, d1111[4] = {1, 1, 1, 1};
  const float px[2] = {10, 200};
  kiln_layer *flip = layer_from("RandomFlip", "{\"mode\": \"horizontal\"}");
  kiln_layer *crop = layer_from("RandomCrop", "{\"height\": 1, \"width\": 1}");
  kiln_layer *contrast = layer_from("RandomContrast", "{\"factor\": 0.5, \"value_range\": [-1000, 1000]}");
  kiln_layer *bright = layer_from("RandomBrightness", "{\"factor\": [0.9, 1.0], \"value_range\": [0, 255]}");
  kiln_tensor *x = f32(4, d1121, px), *y = NULL;
  int i;
  if (!flip || !crop || !contrast || !bright) return;
  if (OK(kiln_layer_call_tensor(&y, flip, x, false))) expect_f32(y, 4, d1121, px, 0);
  for (i = 0; i < 8; ++i)
    if (OK(kiln_layer_call_tensor(&y, flip, x, true))) {
      const float *v = fdata(y);
      CHECK((v[0] == 10 && v[1] == 200) || (v[0] == 200 && v[1] == 10));
      kiln_tensor_free(y);
    }
  if (OK(kiln_layer_call_tensor(&y, crop, x, true)) && meta_ok(y, F32, 4, d1111)) {
    CHECK(fdata(y)[0] == 10 || fdata(y)[0] == 200);
    kiln_tensor_free(y);
  }
  if (OK(kiln_layer_call_tensor(&y, contrast, x, true))) {
    const float *v = fdata(y);
    CHECK(v[0] + v[1] > 209.99f && v[0] + v[1] < 210.01f); /* the mean stays */
    kiln_tensor_free(y);
  }
  if (OK(kiln_layer_call_tensor(&y, bright, x, true))) {
    CHECK(fdata(y)[1] == 255 && fdata(y)[0] >= 10 + 0.9f * 255 - 0.01f);
    kiln_tensor_free(y);
  }
  { /* a fixed quarter turn of a 2 x 2 image: [[1, 2], [3, 4]] to [[2, 4], [1, 3]] */
    const int64_t d1221[4] = {1, 2, 2, 1};
    const float sq[4] = {1, 2, 3, 4}, turned[4] = {2, 4, 1, 3};
    kiln_layer *turn =
        layer_from("RandomRotation", "{\"factor\": [0.25, 0.25], \"interpolation\": \"nearest\"}");
    if (turn && OK(kiln_layer_call_tensor(&y, turn, f32(4, d1221, sq), true)))
      expect_f32(y, 4, d1221, turned, 0);
    kiln_layer_free(turn);
  }
  EXPECT_ERROR(create_status("RandomZoom", "{\"height_factor\": -1}"), INVALID, "RandomZoom", "(-1, 1]");
  EXPECT_ERROR(create_status("RandomContrast", "{\"factor\": 2}"), INVALID, "RandomContrast", "factor");
  EXPECT_ERROR(create_status("RandomFlip", "{\"mode\": \"up\"}"), INVALID, "RandomFlip", "'up'");
  kiln_layer_free(flip);
  kiln_layer_free(crop);
  kiln_layer_free(contrast);
  kiln_layer_free(bright);
  release_kept();
}

/* Keras 3's colour layers through C with fixed draws: AutoContrast (always on) stretches each channel
 * to [0, 255]; Solarization's default inverts; RandomInvert with probability 1; RandomGrayscale,
 * RandomPosterization and RandomSharpness at known settings; RandomShear's fixed draw is one of two
 * shears; bad factors and channel counts are statuses naming the layer. */
static void test_color_layers(void) {
  const int64_t d1123[4] = {1, 1, 2, 3}, d1122[4] = {1, 1, 2, 2};
  const float px[6] = {10, 50, 90, 30, 70, 200};
  const float stretched[6] = {0, 0, 0, 255, 255, 255}, inverted[6] = {245, 205, 165, 225, 185, 55};
  const float posterized[6] = {0, 0, 64, 0, 64, 192};
  const float g0 = 0.2989f * 10 + 0.5870f * 50 + 0.1140f * 90,
              g1 = 0.2989f * 30 + 0.5870f * 70 + 0.1140f * 200;
  const float gray[6] = {g0, g0, g0, g1, g1, g1};
  kiln_layer *ac = layer_from("AutoContrast", "{}");
  kiln_layer *sol = layer_from("Solarization", "{\"seed\": 2}");
  kiln_layer *inv = layer_from("RandomInvert", "{\"factor\": [1, 1]}");
  kiln_layer *gs = layer_from("RandomGrayscale", "{\"factor\": 1}");
  kiln_layer *post = layer_from("RandomPosterization", "{\"factor\": [2, 2]}");
  kiln_layer *sharp = layer_from("RandomSharpness", "{\"factor\": [0.5, 0.5]}");
  kiln_layer *shear = layer_from("RandomShear", "{\"x_factor\": [1, 1], \"interpolation\": \"nearest\"}");
  kiln_tensor *x = f32(4, d1123, px), *y = NULL;
  if (!ac || !sol || !inv || !gs || !post || !sharp || !shear) return;
  if (OK(kiln_layer_call_tensor(&y, ac, x, false))) expect_f32(y, 4, d1123, stretched, 1e-3f);
  if (OK(kiln_layer_call_tensor(&y, sol, x, true))) expect_f32(y, 4, d1123, inverted, 1e-4f);
  if (OK(kiln_layer_call_tensor(&y, sol, x, false))) expect_f32(y, 4, d1123, px, 0);
  if (OK(kiln_layer_call_tensor(&y, inv, x, true))) expect_f32(y, 4, d1123, inverted, 0);
  if (OK(kiln_layer_call_tensor(&y, gs, x, true))) expect_f32(y, 4, d1123, gray, 1e-3f);
  if (OK(kiln_layer_call_tensor(&y, post, x, true))) expect_f32(y, 4, d1123, posterized, 0);
  if (OK(kiln_layer_call_tensor(&y, sharp, x, true))) expect_f32(y, 4, d1123, px, 1e-3f);
  { /* one row [1, 2, 3]: a shear of x by +-1 reads (x + y, y), so row 0 is the image itself */
    const int64_t d1131[4] = {1, 1, 3, 1};
    const float row[3] = {1, 2, 3};
    if (OK(kiln_layer_call_tensor(&y, shear, f32(4, d1131, row), true))) expect_f32(y, 4, d1131, row, 0);
  }
  { /* RandomSaturation 0.5 keeps the image; RandomHue 1 turns it by half a circle; the jitter's brightness */
    const float turned[6] = {90, 50, 10, 200, 160, 30},
                brighter[6] = {35.5f, 75.5f, 115.5f, 55.5f, 95.5f, 225.5f};
    kiln_layer *sat = layer_from("RandomSaturation", "{\"factor\": [0.5, 0.5]}");
    kiln_layer *hue = layer_from("RandomHue", "{\"factor\": [1, 1]}");
    kiln_layer *jit = layer_from("RandomColorJitter", "{\"brightness_factor\": [0.1, 0.1]}");
    if (sat && OK(kiln_layer_call_tensor(&y, sat, x, true))) expect_f32(y, 4, d1123, px, 1e-3f);
    if (hue && OK(kiln_layer_call_tensor(&y, hue, x, true))) expect_f32(y, 4, d1123, turned, 1e-3f);
    if (jit && OK(kiln_layer_call_tensor(&y, jit, x, true))) expect_f32(y, 4, d1123, brighter, 1e-3f);
    EXPECT_ERROR(kiln_layer_call_tensor(&y, hue, f32(4, d1122, px), true), INVALID, "RandomHue", "channels");
    { /* RandomErasing of the whole image (scale 1) with 0; RandomGaussianBlur of size 1 only clips */
      const float zeros[6] = {0, 0, 0, 0, 0, 0}, capped[6] = {10, 50, 90, 30, 70, 100};
      kiln_layer *er =
          layer_from("RandomErasing", "{\"factor\": [1, 1], \"scale\": [1, 1], \"fill_value\": 0}");
      kiln_layer *bl = layer_from("RandomGaussianBlur", "{\"kernel_size\": 1, \"value_range\": [0, 100]}");
      if (er && OK(kiln_layer_call_tensor(&y, er, x, true))) expect_f32(y, 4, d1123, zeros, 0);
      if (bl && OK(kiln_layer_call_tensor(&y, bl, x, true))) expect_f32(y, 4, d1123, capped, 0);
      EXPECT_ERROR(create_status("RandomGaussianBlur", "{\"kernel_size\": 2}"), INVALID, "RandomGaussianBlur",
                   "odd");
      kiln_layer_free(er);
      kiln_layer_free(bl);
    }
    kiln_layer_free(sat);
    kiln_layer_free(hue);
    kiln_layer_free(jit);
  }
  EXPECT_ERROR(create_status("RandomInvert", "{\"factor\": 2}"), INVALID, "RandomInvert", "factor");
  EXPECT_ERROR(create_status("RandomPosterization", "{\"factor\": 9}"), INVALID, "RandomPosterization",
               "[1, 8]");
  EXPECT_ERROR(create_status("AutoContrast", "{\"value_range\": [2, 2]}"), INVALID, "AutoContrast",
               "value_range");
  EXPECT_ERROR(create_status("RandomShear", "{\"x_factor\": 1.5}"), INVALID, "RandomShear", "x_factor");
  { /* MixUp with a tiny alpha takes each image whole from itself or a partner, and its label with it; CutMix
     * keeps the images outside training; labels that are not floats are an error */
    const int64_t id[4] = {4, 1, 1, 1}, ld[2] = {4, 4};
    const float iv[4] = {0, 1, 2, 3}, lv[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    const int32_t bad[16] = {0};
    kiln_layer *mix = layer_from("MixUp", "{\"alpha\": 1e-6, \"seed\": 3}");
    kiln_layer *cut = layer_from("CutMix", "{}");
    kiln_tensor_list *in = NULL, *out = NULL, *bad_in = NULL;
    kiln_tensor *img = NULL, *lab = NULL;
    float got_img[4] = {0}, got_lab[16] = {0};
    OK(kiln_tensor_list_create(&in));
    OK(kiln_tensor_list_append(in, f32(4, id, iv)));
    OK(kiln_tensor_list_append(in, f32(2, ld, lv)));
    if (mix && OK(kiln_layer_call(&out, mix, in, true)) && kiln_tensor_list_get_size(out) == 2 &&
        OK(kiln_tensor_list_get(&img, out, 0)) && OK(kiln_tensor_list_get(&lab, out, 1)) &&
        OK(kiln_tensor_copy_to(img, got_img, sizeof got_img)) &&
        OK(kiln_tensor_copy_to(lab, got_lab, sizeof got_lab))) {
      for (int i = 0; i < 4; ++i) {
        const int from = (int)got_img[i];
        CHECK(got_img[i] == (float)from && from >= 0 && from < 4 && got_lab[i * 4 + from] == 1.0f);
      }
    }
    kiln_tensor_free(img);
    kiln_tensor_free(lab);
    kiln_tensor_list_free(out);
    out = NULL;
    if (cut && OK(kiln_layer_call(&out, cut, in, false)) && OK(kiln_tensor_list_get(&lab, out, 1)))
      expect_f32(lab, 2, ld, lv, 0);
    kiln_tensor_list_free(out);
    OK(kiln_tensor_list_create(&bad_in));
    OK(kiln_tensor_list_append(bad_in, f32(4, id, iv)));
    OK(kiln_tensor_list_append(bad_in, make(I32, 2, ld, bad)));
    out = NULL;
    EXPECT_ERROR(kiln_layer_call(&out, cut, bad_in, true), INVALID, "CutMix", "labels");
    kiln_tensor_list_free(bad_in);
    kiln_tensor_list_free(in);
    kiln_layer_free(mix);
    kiln_layer_free(cut);
  }
  { /* RandAugment of no ops keeps the images; a negative count is an error */
    kiln_layer *ra = layer_from("RandAugment", "{\"num_ops\": 0}");
    if (ra && OK(kiln_layer_call_tensor(&y, ra, x, true))) expect_f32(y, 4, d1123, px, 0);
    EXPECT_ERROR(create_status("RandAugment", "{\"num_ops\": -3}"), INVALID, "RandAugment", "num_ops");
    kiln_layer_free(ra);
  }
  { /* Equalization: two values per channel become 0 and 255 */
    kiln_layer *eq = layer_from("Equalization", "{}");
    if (eq && OK(kiln_layer_call_tensor(&y, eq, x, true))) expect_f32(y, 4, d1123, stretched, 0);
    EXPECT_ERROR(create_status("Equalization", "{\"bins\": -2}"), INVALID, "Equalization", "bins");
    kiln_layer_free(eq);
  }
  { /* RandomPerspective moving no corner (scale 0) or at probability 0 keeps the image */
    kiln_layer *still = layer_from("RandomPerspective", "{\"scale\": 0}");
    kiln_layer *never = layer_from("RandomPerspective", "{\"factor\": 0, \"seed\": 1}");
    if (still && OK(kiln_layer_call_tensor(&y, still, x, true))) expect_f32(y, 4, d1123, px, 0);
    if (never && OK(kiln_layer_call_tensor(&y, never, x, true))) expect_f32(y, 4, d1123, px, 0);
    EXPECT_ERROR(create_status("RandomPerspective", "{\"scale\": 2}"), INVALID, "RandomPerspective", "scale");
    kiln_layer_free(still);
    kiln_layer_free(never);
  }
  {
    const float two[4] = {1, 2, 3, 4};
    EXPECT_ERROR(kiln_layer_call_tensor(&y, gs, f32(4, d1122, two), true), INVALID, "RandomGrayscale",
                 "channels");
  }
  kiln_layer_free(ac);
  kiln_layer_free(sol);
  kiln_layer_free(inv);
  kiln_layer_free(gs);
  kiln_layer_free(post);
  kiln_layer_free(sharp);
  kiln_layer_free(shear);
  release_kept();
}

int main(void) {
  test_category_encoding();
  test_discretization_center_crop();
  test_integer_lookup();
  test_random_image_layers();
  test_color_layers();
  test_spectral_normalization();
  test_einsum_dense();
  test_values();
  test_normalization();
  test_training();
  test_errors();
  test_recurrent();
  test_rnn_cells();
  test_conv_lstm();
  test_adaptive_pooling();
  test_grouped_query_attention();
  return test_summary();
}
