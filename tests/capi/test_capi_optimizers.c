/* Optimizers and learning-rate schedules from plain C: creation by class name and config, one
 * Adam step against Keras's formula, apply_gradients with a skipped (NULL) gradient, iterations,
 * the learning rate (get, set mid-run, schedules), variables, slots by variable, weight-decay
 * exclusion, configs, the AdamWarmup recipe from JSON, a custom schedule (C functions), a GradientTape
 * training loop, and errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

static kiln_variable *variable(const char *name, int64_t n, const float *values) {
  kiln_variable *v = NULL;
  kiln_tensor *t = f32(1, &n, values); /* kept: freed by release_kept */
  EXPECT_OK(kiln_variable_create(&v, name, t, true));
  return v;
}

static float value_at(const kiln_variable *v, int64_t i) {
  kiln_tensor *t = NULL;
  float x = NAN;
  if (EXPECT_OK(kiln_variable_read(&t, v))) x = fdata(t)[i];
  kiln_tensor_free(t);
  return x;
}

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (1.0 + fabs(b)); }

static void test_adam_step(void) {
  const float w0[2] = {1.0f, 2.0f}, b0[3] = {0.5f, 0.5f, 0.5f}, gw[2] = {0.5f, -1.0f};
  const int64_t two = 2;
  kiln_variable *w = variable("dense/kernel", 2, w0), *b = variable("dense/bias", 3, b0);
  kiln_variable *vars[2];
  const kiln_tensor *grads[2];
  kiln_tensor *g = f32(1, &two, gw);
  kiln_config *c = NULL, *got = NULL;
  kiln_optimizer *opt = NULL, *same = NULL;
  kiln_variable *slot = NULL, *listed[8] = {NULL};
  size_t count = 0, i;
  int64_t iterations = -1;
  double lr = 0, alpha;
  vars[0] = w;
  vars[1] = b;
  grads[0] = g;
  grads[1] = NULL; /* skipped, as Keras skips a None gradient */
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", 0.1));
  EXPECT_OK(kiln_optimizer_create(&opt, "Adam", c));
  CHECK(strcmp(kiln_optimizer_get_class_name(opt), "Adam") == 0);
  EXPECT_OK(kiln_optimizer_apply_gradients(opt, grads, vars, 2));
  /* Keras: alpha = lr * sqrt(1 - b2) / (1 - b1); m = 0.1 g; v = 0.001 g^2; w -= alpha m / (sqrt(v) + eps). */
  alpha = 0.1 * sqrt(1 - 0.999) / (1 - 0.9);
  for (i = 0; i < 2; ++i) {
    const double m = 0.1 * gw[i], v = 0.001 * gw[i] * gw[i];
    CHECK(near(value_at(w, (int64_t)i), w0[i] - alpha * m / (sqrt(v) + 1e-7), 1e-6));
  }
  CHECK(value_at(b, 0) == 0.5f);
  EXPECT_OK(kiln_optimizer_get_iterations(&iterations, opt));
  CHECK(iterations == 1);
  /* variables: iterations, then w's momentum and velocity, then b's (as Keras builds: every
   * variable given, gradient or not, in the list's order). */
  EXPECT_OK(kiln_optimizer_get_variables(NULL, 0, &count, opt));
  CHECK(count == 5);
  EXPECT_OK(kiln_optimizer_get_variables(listed, 8, &count, opt));
  CHECK(count == 5 && strstr(kiln_variable_get_name(listed[0]), "iteration") != NULL);
  EXPECT_OK(kiln_optimizer_get_slot(&slot, opt, w, "m"));
  CHECK(slot && kiln_variable_get_id(slot) == kiln_variable_get_id(listed[1]));
  CHECK(slot && near(value_at(slot, 0), 0.05, 1e-6));
  kiln_variable_free(slot);
  slot = NULL;
  for (i = 0; i < count; ++i) kiln_variable_free(listed[i]);
  EXPECT_OK(kiln_optimizer_get_slot(&slot, opt, b, "momentum"));
  CHECK(slot && value_at(slot, 0) == 0.0f);
  kiln_variable_free(slot);
  slot = NULL;
  EXPECT_ERROR(kiln_optimizer_get_slot(&slot, opt, w, "momentum "), KILN_STATUS_NOT_FOUND, "no slot", NULL);
  EXPECT_ERROR(kiln_optimizer_get_slot(&slot, opt, w, "accumulator"), KILN_STATUS_NOT_FOUND, "accumulator",
               "momentum, velocity");
  CHECK(slot == NULL);
  /* The learning rate changes mid-run; the moments stay. */
  EXPECT_OK(kiln_optimizer_set_learning_rate(opt, 0.01));
  EXPECT_OK(kiln_optimizer_get_learning_rate(&lr, opt));
  CHECK(lr == 0.01);
  EXPECT_OK(kiln_optimizer_get_slot(&slot, opt, w, "momentum"));
  CHECK(slot && near(value_at(slot, 0), 0.05, 1e-6));
  kiln_variable_free(slot);
  /* get_config, handles. */
  EXPECT_OK(kiln_optimizer_get_config(&got, opt));
  EXPECT_OK(kiln_config_get_float(&lr, got, "learning_rate"));
  CHECK(lr == 0.01);
  kiln_config_free(got);
  EXPECT_OK(kiln_optimizer_clone(&same, opt));
  CHECK(kiln_optimizer_get_id(same) == kiln_optimizer_get_id(opt) && kiln_optimizer_get_id(opt) != 0);
  CHECK(kiln_optimizer_get_id(NULL) == 0 && kiln_optimizer_get_class_name(NULL) == NULL);
  kiln_optimizer_free(same);
  kiln_optimizer_free(NULL);
  /* Errors name the variable, and change nothing. */
  grads[1] = g;
  EXPECT_ERROR(kiln_optimizer_apply_gradients(opt, grads, vars, 2), INVALID, "dense/bias", "[2]");
  EXPECT_ERROR(kiln_optimizer_apply_gradients(opt, grads, NULL, 2), INVALID, "vars", NULL);
  EXPECT_ERROR(kiln_optimizer_apply_gradients(NULL, grads, vars, 2), INVALID, "optimizer", NULL);
  grads[0] = NULL;
  grads[1] = NULL;
  EXPECT_ERROR(kiln_optimizer_apply_gradients(opt, grads, vars, 2), INVALID, "no gradients", NULL);
  EXPECT_OK(kiln_optimizer_get_iterations(&iterations, opt));
  CHECK(iterations == 1);
  EXPECT_ERROR(kiln_optimizer_exclude_from_weight_decay(opt, NULL, 0, NULL, 0),
               KILN_STATUS_FAILED_PRECONDITION, "before", NULL);
  kiln_optimizer_free(opt);
  kiln_config_free(c);
  kiln_variable_free(w);
  kiln_variable_free(b);
}

/* Nadam's u_product is listed after iterations: float32 (Keras's floatx) for a float32 model,
 * holding the product of Keras's float32 momentum schedule; float64 for a float64 model. */
static void test_nadam_u_product(void) {
  const float w0[3] = {1.0f, -2.0f, 0.5f}, gw[3] = {0.25f, 1.0f, -0.5f};
  const double w64 = 1.5, g64 = 0.5;
  const int64_t three = 3;
  kiln_variable *w = variable("dense/kernel", 3, w0), *v64 = NULL, *listed[4] = {NULL};
  kiln_tensor *g = f32(1, &three, gw), *value = NULL;
  const kiln_tensor *grads[1];
  kiln_optimizer *opt = NULL;
  size_t count = 0, i;
  float want = 1.0f;
  int step;
  grads[0] = g;
  EXPECT_OK(kiln_optimizer_create(&opt, "Nadam", NULL));
  for (step = 1; step <= 3; ++step) {
    EXPECT_OK(kiln_optimizer_apply_gradients(opt, grads, &w, 1));
    want = want * 0.9f * (1.0f - 0.5f * powf(0.96f, (float)step));
  }
  EXPECT_OK(kiln_optimizer_get_variables(listed, 4, &count, opt));
  CHECK(count == 4);
  if (count == 4 && EXPECT_OK(kiln_variable_read(&value, listed[1]))) {
    CHECK(strstr(kiln_variable_get_name(listed[1]), "u_product") != NULL);
    CHECK(kiln_tensor_get_dtype(value) == F32);
    CHECK(kiln_tensor_get_dtype(value) == F32 && fdata(value)[0] == want);
  }
  kiln_tensor_free(value);
  value = NULL;
  for (i = 0; i < count; ++i) kiln_variable_free(listed[i]);
  kiln_optimizer_free(opt);
  /* A float64 model: u_product float64. */
  EXPECT_OK(kiln_variable_create(&v64, "w64", make(KILN_DTYPE_FLOAT64, 0, NULL, &w64), true));
  grads[0] = make(KILN_DTYPE_FLOAT64, 0, NULL, &g64);
  EXPECT_OK(kiln_optimizer_create(&opt, "Nadam", NULL));
  EXPECT_OK(kiln_optimizer_apply_gradients(opt, grads, &v64, 1));
  EXPECT_OK(kiln_optimizer_get_variables(listed, 4, &count, opt));
  CHECK(count == 4);
  if (count == 4 && EXPECT_OK(kiln_variable_read(&value, listed[1]))) {
    CHECK(kiln_tensor_get_dtype(value) == KILN_DTYPE_FLOAT64);
    CHECK(kiln_tensor_get_dtype(value) == KILN_DTYPE_FLOAT64 &&
          *(const double *)kiln_tensor_get_data(value) == 0.9 * (1.0 - 0.5 * 0.96));
  }
  kiln_tensor_free(value);
  for (i = 0; i < count; ++i) kiln_variable_free(listed[i]);
  kiln_optimizer_free(opt);
  kiln_variable_free(v64);
  kiln_variable_free(w);
}

static void test_weight_decay_exclusion(void) {
  const float ones[2] = {1.0f, 1.0f}, zeros[2] = {0.0f, 0.0f};
  const int64_t two = 2;
  kiln_variable *k = variable("dense/kernel", 2, ones), *b = variable("dense/bias", 2, ones);
  kiln_variable *vars[2];
  const kiln_tensor *grads[2];
  const char *names[1] = {"bias"};
  kiln_tensor *z = f32(1, &two, zeros);
  kiln_config *c = NULL;
  kiln_optimizer *opt = NULL;
  vars[0] = k;
  vars[1] = b;
  grads[0] = z;
  grads[1] = z;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "weight_decay", 0.5));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", 0.1));
  EXPECT_OK(kiln_optimizer_create(&opt, "adamw", c));
  CHECK(strncmp(kiln_optimizer_get_name(opt), "adam_w", 6) == 0); /* Keras's auto name */
  EXPECT_OK(kiln_optimizer_exclude_from_weight_decay(opt, NULL, 0, names, 1));
  EXPECT_OK(kiln_optimizer_apply_gradients(opt, grads, vars, 2));
  CHECK(near(value_at(k, 0), 1.0 - 1.0 * 0.5 * 0.1, 1e-7)); /* w -= w * wd * lr */
  CHECK(value_at(b, 0) == 1.0f);                            /* excluded */
  kiln_optimizer_free(opt);
  kiln_config_free(c);
  kiln_variable_free(k);
  kiln_variable_free(b);
}

static void test_schedules(void) {
  kiln_config *s = NULL, *full = NULL, *opt_cfg = NULL;
  kiln_optimizer *opt = NULL;
  double lr = 0;
  EXPECT_OK(
      kiln_config_from_json(&s,
                            "{\"class_name\": \"ExponentialDecay\", \"config\": "
                            "{\"initial_learning_rate\": 0.1, \"decay_steps\": 2, \"decay_rate\": 0.5}}"));
  /* Schedules compute in float32, as Keras does (floatx): 0.1f * 0.5f^2. */
  EXPECT_OK(kiln_learning_rate_schedule_call(&lr, s, 4));
  CHECK(lr == (double)0.025f);
  EXPECT_OK(kiln_learning_rate_schedule_get_config(&full, s));
  CHECK(full && kiln_config_has(full, "config"));
  kiln_config_free(full);
  /* An optimizer with a schedule: its learning rate follows iterations and cannot be set. */
  EXPECT_OK(kiln_optimizer_create(&opt, "SGD", NULL));
  EXPECT_OK(kiln_optimizer_set_learning_rate_schedule(opt, s));
  EXPECT_OK(kiln_optimizer_get_learning_rate(&lr, opt));
  CHECK(lr == (double)0.1f);
  EXPECT_ERROR(kiln_optimizer_set_learning_rate(opt, 0.5), KILN_STATUS_FAILED_PRECONDITION, "schedule", NULL);
  kiln_optimizer_free(opt);
  kiln_config_free(s);
  /* BERT/ALBERT's AdamWarmup in one config: linear warm-up over 10 steps, then linear decay to 0 at 100. */
  EXPECT_OK(kiln_config_from_json(
      &opt_cfg,
      "{\"learning_rate\": {\"class_name\": \"LinearWarmup\", \"config\": {\"warmup_steps\": 10, "
      "\"after_warmup_lr_sched\": {\"class_name\": \"PolynomialDecay\", \"config\": {"
      "\"initial_learning_rate\": 1e-4, \"decay_steps\": 100, \"end_learning_rate\": 0.0}}}}, "
      "\"weight_decay\": 0.01, \"epsilon\": 1e-6, \"exclude_from_weight_decay\": [\"LayerNorm\", "
      "\"bias\"]}"));
  EXPECT_OK(kiln_optimizer_create(&opt, "AdamW", opt_cfg));
  EXPECT_OK(kiln_optimizer_get_learning_rate(&lr, opt));
  CHECK(lr == 0.0);
  EXPECT_OK(
      kiln_config_from_json(&s,
                            "{\"class_name\": \"LinearWarmup\", \"config\": {\"warmup_steps\": 10, "
                            "\"after_warmup_lr_sched\": {\"class_name\": \"PolynomialDecay\", \"config\": {"
                            "\"initial_learning_rate\": 1e-4, \"decay_steps\": 100, "
                            "\"end_learning_rate\": 0.0}}}}"));
  /* Model Garden's float32 formula, up to PolynomialDecay's value at step 10, then that schedule. */
  EXPECT_OK(kiln_learning_rate_schedule_call(&lr, s, 5));
  CHECK(lr == (double)(5.0f / 10.0f * (1e-4f * (1.0f - 10.0f / 100.0f))));
  EXPECT_OK(kiln_learning_rate_schedule_call(&lr, s, 55));
  CHECK(lr == (double)(1e-4f * (1.0f - 55.0f / 100.0f)));
  kiln_config_free(s);
  /* Model Garden's WarmUp (BERT's create_optimizer): init * step / warmup_steps, then the decay. */
  EXPECT_OK(kiln_config_from_json(
      &s,
      "{\"class_name\": \"WarmUp\", \"config\": {\"initial_learning_rate\": 1e-4, "
      "\"warmup_steps\": 10, \"decay_schedule_fn\": {\"class_name\": \"PolynomialDecay\", "
      "\"config\": {\"initial_learning_rate\": 1e-4, \"decay_steps\": 100, "
      "\"end_learning_rate\": 0.0}}}}"));
  EXPECT_OK(kiln_learning_rate_schedule_call(&lr, s, 5));
  CHECK(lr == (double)(1e-4f * (5.0f / 10.0f)));
  EXPECT_OK(kiln_learning_rate_schedule_call(&lr, s, 55));
  CHECK(lr == (double)(1e-4f * (1.0f - 55.0f / 100.0f)));
  kiln_config_free(s);
  kiln_optimizer_free(opt);
  kiln_config_free(opt_cfg);
  /* SGDR: restarts at 5 and 15 (t_mul 2), each peak half the last. */
  EXPECT_OK(
      kiln_config_from_json(&s,
                            "{\"class_name\": \"CosineDecayRestarts\", \"config\": {"
                            "\"initial_learning_rate\": 0.1, \"first_decay_steps\": 5, \"m_mul\": 0.5}}"));
  EXPECT_OK(kiln_learning_rate_schedule_call(&lr, s, 15));
  CHECK(lr == (double)0.025f);
  EXPECT_OK(kiln_learning_rate_schedule_call(&lr, s, 10));
  /* halfway down the second period: 0.1 * 0.5 * 0.5 * (1 + cos(pi / 2)), float32's pi and cosf */
  CHECK(lr == (double)(0.1f * (0.25f * (1.0f + cosf((float)3.14159265358979323846 * 0.5f)))));
  CHECK(near(lr, 0.025, 1e-8));
  kiln_config_free(s);
  EXPECT_OK(kiln_config_from_json(&s, "{\"class_name\": \"NoSuchDecay\", \"config\": {}}"));
  EXPECT_ERROR(kiln_learning_rate_schedule_call(&lr, s, 1), KILN_STATUS_NOT_FOUND, "NoSuchDecay", NULL);
  EXPECT_ERROR(kiln_learning_rate_schedule_call(NULL, s, 1), INVALID, "out", NULL);
  kiln_config_free(s);
}

static void test_errors_and_serialization(void) {
  kiln_optimizer *opt = (kiln_optimizer *)NULL, *back = NULL;
  kiln_config *c = NULL, *ser = NULL, *a = NULL, *b = NULL;
  EXPECT_ERROR(kiln_optimizer_create(&opt, "Adamax2", NULL), KILN_STATUS_NOT_FOUND, "Adamax2", NULL);
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "beta1", 0.5));
  EXPECT_ERROR(kiln_optimizer_create(&opt, "Adam", c), INVALID, "beta1", NULL);
  EXPECT_ERROR(kiln_optimizer_create(NULL, "Adam", NULL), INVALID, "out", NULL);
  CHECK(opt == NULL);
  kiln_config_free(c);
  EXPECT_OK(kiln_config_from_json(&c, "{\"momentum\": 0.9, \"nesterov\": true, \"clipnorm\": 1.0}"));
  EXPECT_OK(kiln_optimizer_create(&opt, "sgd", c));
  EXPECT_OK(kiln_optimizer_serialize(&ser, opt));
  EXPECT_OK(kiln_optimizer_deserialize(&back, ser));
  EXPECT_OK(kiln_optimizer_get_config(&a, opt));
  EXPECT_OK(kiln_optimizer_get_config(&b, back));
  CHECK(kiln_config_equal(a, b));
  CHECK(kiln_optimizer_get_id(back) != kiln_optimizer_get_id(opt));
  kiln_config_free(a);
  kiln_config_free(b);
  kiln_config_free(ser);
  kiln_config_free(c);
  kiln_optimizer_free(back);
  kiln_optimizer_free(opt);
}

/* A GradientTape loop: Adam lowers sum((w - target)^2). */
static void test_training_loop(void) {
  const float w0[4] = {0, 0, 0, 0}, target[4] = {1, -2, 3, 0.5f};
  const int64_t four = 4;
  kiln_variable *w = variable("w", 4, w0);
  kiln_tensor *t = f32(1, &four, target);
  kiln_config *c = NULL;
  kiln_optimizer *opt = NULL;
  double first = -1, last = -1;
  int step;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", 0.1));
  EXPECT_OK(kiln_optimizer_create(&opt, "Adam", c));
  for (step = 0; step < 100; ++step) {
    kiln_tape *tape = NULL;
    kiln_tensor *x = NULL, *d = NULL, *sq = NULL, *loss = NULL, *grad = NULL;
    const kiln_tensor *grads[1];
    kiln_variable *vars[1];
    EXPECT_OK(kiln_tape_create(&tape, false, true));
    EXPECT_OK(kiln_variable_read(&x, w));
    EXPECT_OK(kiln_sub(&d, x, t));
    EXPECT_OK(kiln_mul(&sq, d, d));
    EXPECT_OK(kiln_sum(&loss, sq, NULL, 0, false));
    EXPECT_OK(kiln_tape_stop(tape));
    EXPECT_OK(kiln_tape_gradient_variables(&grad, tape, loss, (const kiln_variable *const *)&w, 1,
                                           KILN_UNCONNECTED_NONE));
    if (step == 0) first = fdata(loss)[0];
    last = fdata(loss)[0];
    grads[0] = grad;
    vars[0] = w;
    EXPECT_OK(kiln_optimizer_apply_gradients(opt, grads, vars, 1));
    kiln_tensor_free(grad);
    kiln_tensor_free(loss);
    kiln_tensor_free(sq);
    kiln_tensor_free(d);
    kiln_tensor_free(x);
    kiln_tape_free(tape);
  }
  CHECK(last < 0.05 * first);
  kiln_optimizer_free(opt);
  kiln_config_free(c);
  kiln_variable_free(w);
}

/* minimize: loss_fn under a tape the call makes; the same steps as the tape loop, bit for bit. */
struct squared_error {
  kiln_variable *w;
  kiln_tensor *target;
  int fail;
};

static kiln_status *squared_error_loss(kiln_tensor **out, void *user) {
  struct squared_error *e = (struct squared_error *)user;
  kiln_tensor *x = NULL, *d = NULL, *sq = NULL;
  kiln_status *st;
  if (e->fail) return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "the data ran out");
  st = kiln_variable_read(&x, e->w);
  if (!st) st = kiln_sub(&d, x, e->target);
  if (!st) st = kiln_mul(&sq, d, d);
  if (!st) st = kiln_sum(out, sq, NULL, 0, false);
  kiln_tensor_free(sq);
  kiln_tensor_free(d);
  kiln_tensor_free(x);
  return st;
}

static kiln_status *no_loss(kiln_tensor **out, void *user) {
  (void)out;
  (void)user;
  return NULL;
}

static void test_minimize(void) {
  const float w0[4] = {0, 0, 0, 0}, target[4] = {1, -2, 3, 0.5f};
  const int64_t four = 4;
  struct squared_error by_minimize, by_tape;
  kiln_optimizer *a = NULL, *b = NULL;
  kiln_config *c = NULL;
  int step, i;
  by_minimize.w = variable("w", 4, w0);
  by_tape.w = variable("w", 4, w0);
  by_minimize.target = by_tape.target = f32(1, &four, target);
  by_minimize.fail = by_tape.fail = 0;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", 0.1));
  EXPECT_OK(kiln_optimizer_create(&a, "Adam", c));
  EXPECT_OK(kiln_optimizer_create(&b, "Adam", c));
  for (step = 0; step < 5; ++step) {
    kiln_tensor *loss = NULL, *tape_loss = NULL, *grad = NULL;
    kiln_tape *tape = NULL;
    const kiln_tensor *grads[1];
    EXPECT_OK(kiln_optimizer_minimize(&loss, a, squared_error_loss, &by_minimize, &by_minimize.w, 1));
    EXPECT_OK(kiln_tape_create(&tape, false, true));
    EXPECT_OK(squared_error_loss(&tape_loss, &by_tape));
    EXPECT_OK(kiln_tape_stop(tape));
    EXPECT_OK(kiln_tape_gradient_variables(&grad, tape, tape_loss, (const kiln_variable *const *)&by_tape.w,
                                           1, KILN_UNCONNECTED_NONE));
    grads[0] = grad;
    EXPECT_OK(kiln_optimizer_apply_gradients(b, grads, &by_tape.w, 1));
    CHECK(loss && tape_loss && fdata(loss)[0] == fdata(tape_loss)[0]);
    for (i = 0; i < 4; ++i) CHECK(value_at(by_minimize.w, i) == value_at(by_tape.w, i));
    kiln_tensor_free(loss);
    kiln_tensor_free(tape_loss);
    kiln_tensor_free(grad);
    kiln_tape_free(tape);
  }
  {
    int64_t it = -1;
    EXPECT_OK(kiln_optimizer_get_iterations(&it, a));
    CHECK(it == 5);
  }
  /* A loss function's status comes back with its code, and nothing changes. */
  by_minimize.fail = 1;
  EXPECT_ERROR(kiln_optimizer_minimize(NULL, a, squared_error_loss, &by_minimize, &by_minimize.w, 1),
               KILN_STATUS_OUT_OF_RANGE, "loss_fn", "the data ran out");
  CHECK(value_at(by_minimize.w, 0) == value_at(by_tape.w, 0));
  EXPECT_ERROR(kiln_optimizer_minimize(NULL, a, no_loss, NULL, &by_minimize.w, 1),
               KILN_STATUS_INVALID_ARGUMENT, "loss_fn wrote no loss", NULL);
  EXPECT_ERROR(kiln_optimizer_minimize(NULL, a, NULL, NULL, &by_minimize.w, 1), KILN_STATUS_INVALID_ARGUMENT,
               "loss_fn", "NULL");
  EXPECT_ERROR(kiln_optimizer_minimize(NULL, a, squared_error_loss, &by_minimize, NULL, 0),
               KILN_STATUS_INVALID_ARGUMENT, "no variables", NULL);
  EXPECT_ERROR(kiln_optimizer_minimize(NULL, NULL, squared_error_loss, &by_minimize, &by_minimize.w, 1),
               KILN_STATUS_INVALID_ARGUMENT, "optimizer", "NULL");
  kiln_optimizer_free(a);
  kiln_optimizer_free(b);
  kiln_config_free(c);
  kiln_variable_free(by_minimize.w);
  kiln_variable_free(by_tape.w);
}

/* Keras 3's use_ema, gradient_accumulation_steps and loss_scale_factor (the unit tests check the
   formulas; here: reachable from C, with the steps of OptimizerEma.WithAccumulationAveragesMoveEveryCall). */
static void test_ema_accumulation_loss_scale(void) {
  const float w0[1] = {8.0f}, gv[2] = {2.0f, 4.0f}, zero4[4] = {0, 0, 0, 0}, target[4] = {1, -2, 3, 0.5f};
  const int64_t one = 1, four = 4;
  kiln_variable *w = variable("w", 1, w0), *avg = NULL;
  kiln_config *c = NULL;
  kiln_optimizer *opt = NULL, *scaled = NULL, *plain = NULL;
  kiln_tensor *loss = NULL, *out = NULL;
  int64_t it = -1;
  int step, i;
  struct squared_error a, b;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", 1.0));
  EXPECT_OK(kiln_config_set_bool(c, "use_ema", true));
  EXPECT_OK(kiln_config_set_float(c, "ema_momentum", 0.5));
  EXPECT_OK(kiln_config_set_int(c, "gradient_accumulation_steps", 2));
  EXPECT_OK(kiln_optimizer_create(&opt, "SGD", c));
  for (step = 0; step < 4; ++step) {
    const kiln_tensor *g[1];
    g[0] = f32(1, &one, gv + step % 2);
    EXPECT_OK(kiln_optimizer_apply_gradients(opt, g, &w, 1));
  }
  CHECK(value_at(w, 0) == 2.0f);
  EXPECT_OK(kiln_optimizer_get_iterations(&it, opt));
  CHECK(it == 2); /* updates, not calls */
  EXPECT_OK(kiln_optimizer_get_slot(&avg, opt, w, "average"));
  CHECK(value_at(avg, 0) == 3.5f);
  EXPECT_OK(kiln_optimizer_finalize_variable_values(opt, &w, 1));
  CHECK(value_at(w, 0) == 3.5f);
  EXPECT_ERROR(kiln_optimizer_finalize_variable_values(opt, NULL, 1), KILN_STATUS_INVALID_ARGUMENT, "vars",
               "NULL");
  kiln_variable_free(avg);
  kiln_optimizer_free(opt);
  kiln_config_free(c);

  /* loss_scale_factor: scale_loss multiplies; minimize differentiates the scaled loss and the
     step divides again, so with a power of two it moves the weights exactly as without. */
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "loss_scale_factor", 4.0));
  EXPECT_OK(kiln_optimizer_create(&scaled, "Adam", c));
  EXPECT_OK(kiln_optimizer_create(&plain, "Adam", NULL));
  loss = f32(0, NULL, w0);
  EXPECT_OK(kiln_optimizer_scale_loss(&out, scaled, loss));
  CHECK(out && fdata(out)[0] == 32.0f);
  kiln_tensor_free(out);
  out = NULL;
  EXPECT_OK(kiln_optimizer_scale_loss(&out, plain, loss));
  CHECK(out && fdata(out)[0] == 8.0f);
  kiln_tensor_free(out);
  EXPECT_ERROR(kiln_optimizer_scale_loss(&out, scaled, NULL), KILN_STATUS_INVALID_ARGUMENT, "loss", "NULL");
  a.w = variable("w", 4, zero4);
  b.w = variable("w", 4, zero4);
  a.target = b.target = f32(1, &four, target);
  a.fail = b.fail = 0;
  for (step = 0; step < 3; ++step) {
    EXPECT_OK(kiln_optimizer_minimize(NULL, scaled, squared_error_loss, &a, &a.w, 1));
    EXPECT_OK(kiln_optimizer_minimize(NULL, plain, squared_error_loss, &b, &b.w, 1));
  }
  for (i = 0; i < 4; ++i) CHECK(value_at(a.w, i) == value_at(b.w, i) && value_at(a.w, i) != 0.0f);
  EXPECT_OK(kiln_config_set_int(c, "gradient_accumulation_steps", 1));
  EXPECT_ERROR(kiln_optimizer_create(&opt, "SGD", c), KILN_STATUS_INVALID_ARGUMENT,
               "gradient_accumulation_steps", ">= 2");
  kiln_optimizer_free(scaled);
  kiln_optimizer_free(plain);
  kiln_config_free(c);
  kiln_variable_free(a.w);
  kiln_variable_free(b.w);
  kiln_variable_free(w);
}

/* A custom schedule (a LearningRateSchedule subclass in C): start / (step + 1), failing at step 2. */
typedef struct {
  double start;
  int destroyed;
} inverse_schedule;

static kiln_status *inverse_lr(double *out_lr, int64_t step, void *user_data) {
  const inverse_schedule *s = (const inverse_schedule *)user_data;
  if (step == 2) return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "no step 2");
  *out_lr = s->start / (double)(step + 1);
  return NULL;
}

static kiln_status *inverse_config(kiln_config *config, void *user_data) {
  return kiln_config_set_float(config, "start", ((const inverse_schedule *)user_data)->start);
}

static void inverse_destroy(void *user_data) { ((inverse_schedule *)user_data)->destroyed++; }

static void test_custom_schedule(void) {
  inverse_schedule s = {0.5, 0};
  kiln_optimizer *opt = NULL;
  kiln_config *c = NULL, *lr_cfg = NULL, *inner = NULL;
  double lr = 0, start = 0;
  const float one = 1.0f;
  int64_t n = 1;
  kiln_variable *w = variable("w", 1, &one);
  const kiln_tensor *g = f32(1, &n, &one); /* kept */
  EXPECT_OK(kiln_optimizer_create(&opt, "SGD", NULL));
  EXPECT_ERROR(kiln_optimizer_set_learning_rate_fn(opt, "Inverse", NULL, NULL, NULL, &s),
               KILN_STATUS_INVALID_ARGUMENT, "fn", NULL);
  EXPECT_OK(kiln_optimizer_set_learning_rate_fn(opt, "Inverse", inverse_lr, inverse_config, inverse_destroy, &s));
  EXPECT_OK(kiln_optimizer_get_learning_rate(&lr, opt));
  CHECK(lr == 0.5);
  EXPECT_OK(kiln_optimizer_apply_gradients(opt, &g, &w, 1)); /* w = 1 - 0.5 */
  EXPECT_OK(kiln_optimizer_apply_gradients(opt, &g, &w, 1)); /* w = 0.5 - 0.25 */
  CHECK(value_at(w, 0) == 0.25f);
  /* The schedule's status fails the step, which changes nothing. */
  EXPECT_ERROR(kiln_optimizer_apply_gradients(opt, &g, &w, 1), KILN_STATUS_OUT_OF_RANGE, "Inverse", "no step 2");
  CHECK(value_at(w, 0) == 0.25f);
  /* get_config gives {"class_name": "Inverse", "config": {"start": 0.5}}. */
  EXPECT_OK(kiln_optimizer_get_config(&c, opt));
  EXPECT_OK(kiln_config_get_config(&lr_cfg, c, "learning_rate"));
  EXPECT_OK(kiln_config_get_config(&inner, lr_cfg, "config"));
  EXPECT_OK(kiln_config_get_float(&start, inner, "start"));
  CHECK(start == 0.5);
  CHECK(s.destroyed == 0);
  /* A new learning rate drops the schedule: its user_data is destroyed once. */
  EXPECT_OK(kiln_optimizer_set_learning_rate_fn(opt, "NoConfig", inverse_lr, NULL, NULL, &s));
  CHECK(s.destroyed == 1);
  kiln_config_free(c);
  EXPECT_ERROR(kiln_optimizer_get_config(&c, opt), KILN_STATUS_UNIMPLEMENTED, "NoConfig", "get_config");
  kiln_config_free(inner);
  kiln_config_free(lr_cfg);
  kiln_optimizer_free(opt);
  kiln_variable_free(w);
}

/* Ftrl, by its Keras name: one step from accumulator 0.1 and linear 0, Keras's formulas; l1 zeroes a
 * weight whose linear term stays inside [-l1, l1]; bad settings are refused naming the key. */
static void test_ftrl_step(void) {
  const float w0[2] = {1.0f, -0.5f}, gw[2] = {2.0f, 0.01f};
  const int64_t two = 2;
  kiln_variable *w = variable("dense/kernel", 2, w0), *slot = NULL;
  kiln_variable *vars[1];
  const kiln_tensor *grads[1];
  kiln_config *c = NULL;
  kiln_optimizer *opt = NULL;
  int i;
  vars[0] = w;
  grads[0] = f32(1, &two, gw);
  EXPECT_OK(kiln_config_from_json(&c, "{\"learning_rate\": 0.1, \"l1_regularization_strength\": 0.5}"));
  EXPECT_OK(kiln_optimizer_create(&opt, "ftrl", c));
  CHECK(strcmp(kiln_optimizer_get_class_name(opt), "Ftrl") == 0);
  EXPECT_OK(kiln_optimizer_apply_gradients(opt, grads, vars, 1));
  for (i = 0; i < 2; ++i) {
    const double g = gw[i], n = 0.1 + g * g, linear = g - (sqrt(n) - sqrt(0.1)) / 0.1 * w0[i];
    const double clipped = linear < -0.5 ? -0.5 : (linear > 0.5 ? 0.5 : linear);
    CHECK(near(value_at(w, i), (clipped - linear) / (sqrt(n) / 0.1), 1e-5));
  }
  CHECK(value_at(w, 1) == 0.0f); /* |linear| = 0.01 + ~0 < l1 */
  CHECK(value_at(w, 0) != 0.0f);
  EXPECT_OK(kiln_optimizer_get_slot(&slot, opt, w, "linear"));
  CHECK(slot && near(value_at(slot, 0), 2.0 - (sqrt(4.1) - sqrt(0.1)) / 0.1, 1e-5));
  kiln_variable_free(slot);
  slot = NULL;
  EXPECT_OK(kiln_optimizer_get_slot(&slot, opt, w, "accumulator"));
  CHECK(slot && near(value_at(slot, 0), 4.1, 1e-6));
  kiln_variable_free(slot);
  kiln_optimizer_free(opt);
  kiln_config_free(c);
  opt = NULL;
  EXPECT_OK(kiln_config_from_json(&c, "{\"learning_rate_power\": 0.5}"));
  EXPECT_ERROR(kiln_optimizer_create(&opt, "Ftrl", c), INVALID, "learning_rate_power", "negative or zero");
  kiln_config_free(c);
  EXPECT_OK(kiln_config_from_json(&c, "{\"l2_shrinkage_regularization_strength\": -1}"));
  EXPECT_ERROR(kiln_optimizer_create(&opt, "Ftrl", c), INVALID, "l2_shrinkage_regularization_strength", "-1");
  CHECK(opt == NULL);
  kiln_config_free(c);
  kiln_variable_free(w);
}

/* Lamb, by its Keras name: the first step moves each variable by lr * |w| / |r| * r, r = m_hat /
 * (sqrt(v_hat) + eps) = g / (|g| + eps) at step 1. */
static void test_lamb_step(void) {
  const float w0[2] = {3.0f, -4.0f}, gw[2] = {0.5f, 2.0f};
  const int64_t two = 2;
  kiln_variable *w = variable("dense/kernel", 2, w0);
  kiln_variable *vars[1];
  const kiln_tensor *grads[1];
  kiln_optimizer *opt = NULL;
  double r[2], r_norm = 0;
  int i;
  vars[0] = w;
  grads[0] = f32(1, &two, gw);
  EXPECT_OK(kiln_optimizer_create(&opt, "lamb", NULL));
  CHECK(strcmp(kiln_optimizer_get_class_name(opt), "Lamb") == 0);
  EXPECT_OK(kiln_optimizer_apply_gradients(opt, grads, vars, 1));
  for (i = 0; i < 2; ++i) {
    r[i] = gw[i] / (fabs(gw[i]) + 1e-7);
    r_norm += r[i] * r[i];
  }
  for (i = 0; i < 2; ++i) CHECK(near(value_at(w, i), w0[i] - 5.0 / sqrt(r_norm) * 0.001 * r[i], 1e-6));
  kiln_optimizer_free(opt);
  kiln_variable_free(w);
}

/* Adafactor, by its Keras name: at step 1 beta_2 is 0, so a matrix's r and c are the means of
 * g^2 + 1e-30 over its columns and rows, velocity = (r / mean(r)) c, and each variable moves by
 * max(1e-3, rms(w)) * lr * u / max(1, rms(u)), u = g / sqrt(velocity). A vector keeps velocity =
 * g^2 + 1e-30, its r and c int32 placeholders. */
static void test_adafactor_step(void) {
  const float w0[4] = {0.5f, -1.0f, 2.0f, 0.25f}, gw[4] = {0.3f, -0.6f, 1.2f, 0.1f};
  const float b0[2] = {1.0f, -2.0f}, gb[2] = {0.5f, 0.25f};
  const int64_t two_by_two[2] = {2, 2}, two = 2;
  kiln_variable *w = NULL, *b = variable("dense/bias", 2, b0), *vars[2], *slot = NULL;
  const kiln_tensor *grads[2];
  kiln_tensor *t = NULL;
  kiln_optimizer *opt = NULL;
  double r[2], c[2], u[4], ub[2], ms = 0, msb = 0, rms_w = 0, rms_b = 0;
  int i, j;
  EXPECT_OK(kiln_variable_create(&w, "dense/kernel", f32(2, two_by_two, w0), true));
  vars[0] = w;
  vars[1] = b;
  grads[0] = f32(2, two_by_two, gw);
  grads[1] = f32(1, &two, gb);
  EXPECT_OK(kiln_optimizer_create(&opt, "adafactor", NULL));
  CHECK(strcmp(kiln_optimizer_get_class_name(opt), "Adafactor") == 0);
  EXPECT_OK(kiln_optimizer_apply_gradients(opt, grads, vars, 2));
  for (i = 0; i < 2; ++i) {
    r[i] = (gw[2 * i] * gw[2 * i] + gw[2 * i + 1] * gw[2 * i + 1]) / 2.0;
    c[i] = (gw[i] * gw[i] + gw[2 + i] * gw[2 + i]) / 2.0;
  }
  for (i = 0; i < 2; ++i)
    for (j = 0; j < 2; ++j) {
      u[2 * i + j] = gw[2 * i + j] / sqrt(r[i] / ((r[0] + r[1]) / 2.0) * c[j]);
      ms += u[2 * i + j] * u[2 * i + j] / 4.0;
    }
  for (i = 0; i < 4; ++i) rms_w += (double)w0[i] * w0[i] / 4.0;
  for (i = 0; i < 2; ++i) {
    ub[i] = gb[i] / sqrt((double)gb[i] * gb[i]);
    msb += ub[i] * ub[i] / 2.0;
    rms_b += (double)b0[i] * b0[i] / 2.0;
  }
  for (i = 0; i < 4; ++i)
    CHECK(near(value_at(w, i), w0[i] - sqrt(rms_w) * 0.001 * u[i] / (sqrt(ms) > 1 ? sqrt(ms) : 1), 1e-6));
  for (i = 0; i < 2; ++i)
    CHECK(near(value_at(b, i), b0[i] - sqrt(rms_b) * 0.001 * ub[i] / (sqrt(msb) > 1 ? sqrt(msb) : 1), 1e-6));
  /* r of the matrix is [2]; r of the vector an int32 scalar placeholder. */
  EXPECT_OK(kiln_optimizer_get_slot(&slot, opt, w, "r"));
  if (EXPECT_OK(kiln_variable_read(&t, slot))) {
    CHECK(kiln_tensor_get_rank(t) == 1 && kiln_tensor_get_dims(t)[0] == 2);
    CHECK(near(fdata(t)[1], r[1], 1e-6));
  }
  kiln_tensor_free(t);
  kiln_variable_free(slot);
  slot = NULL;
  t = NULL;
  EXPECT_OK(kiln_optimizer_get_slot(&slot, opt, b, "c"));
  if (EXPECT_OK(kiln_variable_read(&t, slot)))
    CHECK(kiln_tensor_get_dtype(t) == KILN_DTYPE_INT32 && kiln_tensor_get_rank(t) == 0);
  kiln_tensor_free(t);
  kiln_variable_free(slot);
  kiln_optimizer_free(opt);
  kiln_variable_free(w);
  kiln_variable_free(b);
}

/* Keras's optimizer.build(var_list): slots without a step, in the list's order. */
static void test_build(void) {
  const float w0[2] = {1.0f, 2.0f}, b0[1] = {3.0f};
  const int32_t i0 = 1;
  const int64_t one = 1;
  kiln_variable *w = variable("dense/kernel", 2, w0), *b = variable("dense/bias", 1, b0), *vars[2],
                *slot = NULL;
  kiln_variable *iv = NULL, *listed[8] = {NULL};
  kiln_optimizer *opt = NULL;
  size_t count = 0, i;
  int64_t iterations = -1;
  vars[0] = b;
  vars[1] = w;
  EXPECT_OK(kiln_optimizer_create(&opt, "Adam", NULL));
  EXPECT_OK(kiln_optimizer_build(opt, vars, 2));
  EXPECT_OK(kiln_optimizer_get_iterations(&iterations, opt));
  CHECK(iterations == 0);
  EXPECT_OK(kiln_optimizer_get_variables(listed, 8, &count, opt));
  CHECK(count == 5);
  EXPECT_OK(kiln_optimizer_get_slot(&slot, opt, b, "velocity"));
  CHECK(count == 5 && slot && kiln_variable_get_id(slot) == kiln_variable_get_id(listed[2]));
  CHECK(slot && value_at(slot, 0) == 0.0f);
  kiln_variable_free(slot);
  for (i = 0; i < count; ++i) kiln_variable_free(listed[i]);
  EXPECT_OK(kiln_optimizer_build(opt, vars, 2)); /* again: nothing new */
  EXPECT_OK(kiln_optimizer_get_variables(NULL, 0, &count, opt));
  CHECK(count == 5);
  vars[1] = NULL;
  EXPECT_ERROR(kiln_optimizer_build(opt, vars, 2), KILN_STATUS_INVALID_ARGUMENT, "vars[1]", NULL);
  EXPECT_OK(kiln_variable_create(&iv, "step", make(KILN_DTYPE_INT32, 1, &one, &i0), false));
  vars[1] = iv;
  EXPECT_ERROR(kiln_optimizer_build(opt, vars, 2), KILN_STATUS_INVALID_ARGUMENT, "'step'", "float32");
  EXPECT_ERROR(kiln_optimizer_build(NULL, vars, 2), KILN_STATUS_INVALID_ARGUMENT, "optimizer", NULL);
  kiln_optimizer_free(opt);
  kiln_variable_free(w);
  kiln_variable_free(b);
  kiln_variable_free(iv);
}

int main(void) {
  test_custom_schedule();
  test_build();
  test_adafactor_step();
  test_adam_step();
  test_ftrl_step();
  test_lamb_step();
  test_ema_accumulation_loss_scale();
  test_weight_decay_exclusion();
  test_nadam_u_product();
  test_schedules();
  test_errors_and_serialization();
  test_training_loop();
  test_minimize();
  release_kept();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
