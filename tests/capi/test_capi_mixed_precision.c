/* Mixed precision through the shared library alone: the global dtype policy, a layer's policy,
 * compute and variable dtypes, a mixed_bfloat16 Dense model with a float32 last layer trained a
 * few Adam steps with a tape (float32 gradients and slots, the loss falls), the policy in
 * get_config, and bad names as statuses. Plain C99. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define OK(call) EXPECT_OK(call)

/* The global policy's name, or "" (after a reported failure). Caller frees with kiln_string_free. */
static char *global_name(void) {
  char *s = NULL;
  OK(kiln_get_global_dtype_policy(&s));
  return s;
}

static int global_is(const char *name) {
  char *s = global_name();
  int same = s && strcmp(s, name) == 0;
  kiln_string_free(s);
  return same;
}

/* A Dense layer; dtype NULL takes the global policy. */
static kiln_layer *dense(int64_t units, const char *activation, const char *dtype) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  OK(kiln_config_create(&c));
  OK(kiln_config_set_int(c, "units", units));
  if (activation) OK(kiln_config_set_string(c, "activation", activation));
  if (dtype) OK(kiln_config_set_string(c, "dtype", dtype));
  OK(kiln_layer_create(&l, "Dense", c));
  kiln_config_free(c);
  return l;
}

static void test_policies(void) {
  kiln_dtype compute = KILN_DTYPE_INT32, variable = KILN_DTYPE_INT32;
  kiln_layer *before, *after, *f32;
  CHECK(global_is("float32"));
  OK(kiln_dtype_policy_get_dtypes(&compute, &variable, "mixed_bfloat16"));
  CHECK(compute == KILN_DTYPE_BFLOAT16 && variable == KILN_DTYPE_FLOAT32);
  OK(kiln_dtype_policy_get_dtypes(&compute, &variable, "float64"));
  CHECK(compute == KILN_DTYPE_FLOAT64 && variable == KILN_DTYPE_FLOAT64);
  compute = variable = KILN_DTYPE_INT32;
  EXPECT_ERROR(kiln_dtype_policy_get_dtypes(&compute, &variable, "mixed_bf16"), INVALID, "'mixed_bf16'",
               "mixed_bfloat16");
  CHECK(compute == KILN_DTYPE_INT32 && variable == KILN_DTYPE_INT32); /* untouched */
  EXPECT_ERROR(kiln_dtype_policy_get_dtypes(&compute, &variable, "mixed_float16"), KILN_STATUS_UNIMPLEMENTED,
               "float16", NULL);
  EXPECT_ERROR(kiln_dtype_policy_get_dtypes(&compute, NULL, "float32"), INVALID, "out_variable", NULL);

  before = dense(2, NULL, NULL);
  OK(kiln_set_global_dtype_policy("mixed_bfloat16"));
  CHECK(global_is("mixed_bfloat16"));
  EXPECT_ERROR(kiln_set_global_dtype_policy("float8"), INVALID, "float8", "mixed_bfloat16");
  EXPECT_ERROR(kiln_set_global_dtype_policy(NULL), INVALID, "name", NULL);
  CHECK(global_is("mixed_bfloat16")); /* a failed set changes nothing */
  EXPECT_ERROR(kiln_get_global_dtype_policy(NULL), INVALID, "out", NULL);
  after = dense(2, NULL, NULL);
  f32 = dense(2, NULL, "float32");
  CHECK(strcmp(kiln_layer_get_dtype_policy(before), "float32") == 0);
  CHECK(strcmp(kiln_layer_get_dtype_policy(after), "mixed_bfloat16") == 0);
  CHECK(kiln_layer_get_compute_dtype(after) == KILN_DTYPE_BFLOAT16);
  CHECK(kiln_layer_get_variable_dtype(after) == KILN_DTYPE_FLOAT32);
  CHECK(kiln_layer_get_compute_dtype(f32) == KILN_DTYPE_FLOAT32);
  CHECK(kiln_layer_get_dtype_policy(NULL) == NULL);
  CHECK(kiln_layer_get_compute_dtype(NULL) == 0 && kiln_layer_get_variable_dtype(NULL) == 0);
  OK(kiln_set_global_dtype_policy("float32"));
  kiln_layer_free(before);
  kiln_layer_free(after);
  kiln_layer_free(f32);
}

static void test_config_round_trip(void) {
  kiln_layer *d, *again = NULL;
  kiln_config *ser = NULL, *cfg = NULL, *dt = NULL;
  kiln_config_type type = KILN_CONFIG_NULL;
  char *json = NULL;
  OK(kiln_set_global_dtype_policy("mixed_bfloat16"));
  d = dense(3, NULL, NULL);
  OK(kiln_set_global_dtype_policy("float32"));
  OK(kiln_layer_get_config(&cfg, d));
  OK(kiln_config_get_type(&type, cfg, "dtype"));
  CHECK(type == KILN_CONFIG_CONFIG); /* Keras 3's serialized DTypePolicy */
  OK(kiln_config_get_config(&dt, cfg, "dtype"));
  OK(kiln_config_to_json(&json, dt, -1));
  CHECK(json && strstr(json, "\"DTypePolicy\"") && strstr(json, "\"mixed_bfloat16\""));
  OK(kiln_layer_serialize(&ser, d));
  OK(kiln_layer_deserialize(&again, ser));
  CHECK(again && strcmp(kiln_layer_get_dtype_policy(again), "mixed_bfloat16") == 0);
  kiln_string_free(json);
  kiln_config_free(dt);
  kiln_config_free(cfg);
  kiln_config_free(ser);
  kiln_layer_free(again);
  kiln_layer_free(d);
}

/* mean((float32(model(x)) - y)^2) */
static kiln_tensor *loss_of(kiln_layer *model, kiln_tensor *x, kiln_tensor *y, kiln_dtype *out_dtype) {
  kiln_tensor *o = NULL, *p, *p32, *d, *sq;
  p = keep(RUN(kiln_layer_call_tensor(&o, model, x, true)));
  if (!p) return NULL;
  *out_dtype = kiln_tensor_get_dtype(p);
  p32 = keep(RUN(kiln_cast(&o, p, KILN_DTYPE_FLOAT32)));
  d = keep(RUN(kiln_sub(&o, p32, y)));
  sq = keep(RUN(kiln_square(&o, d)));
  return keep(RUN(kiln_mean(&o, sq, NULL, 0, false)));
}

static void test_training(void) {
  const int64_t xd[2] = {16, 4}, yd[2] = {16, 1}, axis = 1;
  float xv[64];
  kiln_tensor *x, *y, *o = NULL;
  kiln_layer *seq = NULL, *hidden, *out;
  kiln_optimizer *adam = NULL;
  kiln_config *c = NULL;
  kiln_variable *vars[4];
  kiln_tensor *grads[4];
  size_t n = 0, i;
  int step;
  float first_loss = 0, last_loss = 0;
  for (i = 0; i < 64; ++i) xv[i] = (float)((int)(i * 7 % 13) - 6) / 6.0f;
  x = f32(2, xd, xv);
  y = keep(RUN(kiln_sum(&o, x, &axis, 1, true)));
  CHECK(y && meta_ok(y, F32, 2, yd));

  OK(kiln_set_global_dtype_policy("mixed_bfloat16"));
  hidden = dense(8, "tanh", NULL);
  out = dense(1, NULL, "float32"); /* Keras's advice: the last layer in float32 */
  OK(kiln_layer_create(&seq, "Sequential", NULL));
  OK(kiln_sequential_add(seq, hidden));
  OK(kiln_sequential_add(seq, out));
  OK(kiln_set_global_dtype_policy("float32"));
  CHECK(strcmp(kiln_layer_get_dtype_policy(seq), "mixed_bfloat16") == 0);

  OK(kiln_config_create(&c));
  OK(kiln_config_set_float(c, "learning_rate", 0.02));
  OK(kiln_optimizer_create(&adam, "Adam", c));
  kiln_config_free(c);
  for (step = 0; step < 30; ++step) {
    kiln_tape *tape = NULL;
    kiln_tensor *loss;
    kiln_dtype out_dtype = 0;
    OK(kiln_tape_create(&tape, false, true));
    loss = loss_of(seq, x, y, &out_dtype);
    if (step == 0) {
      kiln_tensor *h = NULL;
      CHECK(out_dtype == KILN_DTYPE_FLOAT32); /* the float32 last layer */
      OK(kiln_layer_call_tensor(&h, hidden, x, false));
      CHECK(h && kiln_tensor_get_dtype(h) == KILN_DTYPE_BFLOAT16); /* bf16 compute */
      kiln_tensor_free(h);
    }
    OK(kiln_tape_stop(tape));
    OK(kiln_layer_get_variables(vars, 4, &n, seq, KILN_VARIABLES_TRAINABLE));
    CHECK(n == 4);
    if (loss && n == 4 && EXPECT_OK(kiln_tape_gradient_variables(grads, tape, loss, (const kiln_variable *const *)vars, 4,
                                                                  KILN_UNCONNECTED_NONE))) {
      for (i = 0; i < 4; ++i) CHECK(grads[i] && kiln_tensor_get_dtype(grads[i]) == KILN_DTYPE_FLOAT32);
      OK(kiln_optimizer_apply_gradients(adam, (const kiln_tensor *const *)grads, vars, 4));
      for (i = 0; i < 4; ++i) kiln_tensor_free(grads[i]);
    }
    if (loss) {
      if (step == 0) first_loss = fdata(loss)[0];
      last_loss = fdata(loss)[0];
    }
    for (i = 0; i < n && i < 4; ++i) {
      if (step == 29) {
        kiln_tensor *v = NULL;
        kiln_variable *slot = NULL, *slot2 = NULL;
        OK(kiln_variable_read(&v, vars[i]));
        CHECK(v && kiln_tensor_get_dtype(v) == KILN_DTYPE_FLOAT32);
        kiln_tensor_free(v);
        OK(kiln_optimizer_get_slot(&slot, adam, vars[i], "momentum"));
        OK(kiln_optimizer_get_slot(&slot2, adam, vars[i], "velocity"));
        v = NULL;
        if (slot) OK(kiln_variable_read(&v, slot));
        CHECK(v && kiln_tensor_get_dtype(v) == KILN_DTYPE_FLOAT32);
        kiln_tensor_free(v);
        v = NULL;
        if (slot2) OK(kiln_variable_read(&v, slot2));
        CHECK(v && kiln_tensor_get_dtype(v) == KILN_DTYPE_FLOAT32);
        kiln_tensor_free(v);
        kiln_variable_free(slot);
        kiln_variable_free(slot2);
      }
      kiln_variable_free(vars[i]);
    }
    kiln_tape_free(tape);
    release_kept();
    x = f32(2, xd, xv);
    y = keep(RUN(kiln_sum(&o, x, &axis, 1, true)));
  }
  CHECK(last_loss < 0.5f * first_loss);
  if (!(last_loss < 0.5f * first_loss)) fprintf(stderr, "loss %g -> %g\n", first_loss, last_loss);
  kiln_optimizer_free(adam);
  kiln_layer_free(hidden);
  kiln_layer_free(out);
  kiln_layer_free(seq);
  release_kept();
}

int main(void) {
  test_policies();
  test_config_round_trip();
  test_training();
  CHECK(global_is("float32"));
  return test_summary();
}
