/* The training loop through the shared library alone (include/kiln/training.h): the seed's loop
 * (compile, fit with validation_split and validation_freq, predict, evaluate), the *_on_batch
 * calls, a dataset, a custom train_step through the step-callbacks table (compute_loss, tape,
 * apply_gradients, compute_metrics), and NULL / bad input as statuses. Plain C99. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define N 64
#define F 4
#define C 3

static float g_x[N * F];
static int64_t g_y[N];

/* x in [-1, 1); y the class a linear rule picks, so a small model learns it. */
static void make_problem(void) {
  int i;
  lcg_floats(g_x, N * F, 11u);
  for (i = 0; i < N; ++i) {
    const float *r = &g_x[i * F];
    float a = r[0] - r[1], b = r[1] + r[2] - r[0], c = r[3] - r[2];
    g_y[i] = a >= b && a >= c ? 0 : (b >= c ? 1 : 2);
  }
}

static kiln_tensor *x_tensor(void) {
  int64_t dims[2] = {N, F};
  return make(F32, 2, dims, g_x);
}

static kiln_tensor *y_tensor(void) {
  int64_t dims[1] = {N};
  return make(I64, 1, dims, g_y);
}

static kiln_layer *make_model(void) {
  kiln_layer *m = NULL, *d0 = dense_layer(16, "relu"), *d1 = dense_layer(C, "softmax");
  EXPECT_OK(kiln_layer_create(&m, "Sequential", NULL));
  EXPECT_OK(kiln_sequential_add(m, d0));
  EXPECT_OK(kiln_sequential_add(m, d1));
  kiln_layer_free(d0);
  kiln_layer_free(d1);
  return m;
}

static kiln_optimizer *optimizer(const char *class_name, double lr) {
  kiln_config *c = NULL;
  kiln_optimizer *o = NULL;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", lr));
  EXPECT_OK(kiln_optimizer_create(&o, class_name, c));
  kiln_config_free(c);
  return o;
}

static kiln_optimizer *adam(double lr) { return optimizer("Adam", lr); }

static void compile_model(kiln_layer *m, kiln_optimizer *opt) {
  const char *loss = "sparse_categorical_crossentropy", *metric = "accuracy";
  kiln_compile_options co;
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = opt;
  co.loss_names = &loss;
  co.num_loss_names = 1;
  co.metric_names = &metric;
  co.num_metric_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
}

static double log_value(const kiln_config *logs, const char *key) {
  double v = -1;
  EXPECT_OK(kiln_config_get_float(&v, logs, key));
  return v;
}

static double evaluate_loss(kiln_layer *m, const kiln_tensor_list *x, const kiln_tensor_list *y,
                            int64_t batch) {
  kiln_evaluate_options eo;
  kiln_config *logs = NULL;
  double loss;
  EXPECT_OK(kiln_evaluate_options_init(&eo, sizeof eo));
  eo.x = x;
  eo.y = y;
  eo.batch_size = batch;
  eo.verbose = 0;
  if (!EXPECT_OK(kiln_model_evaluate(&logs, m, &eo))) return -1;
  loss = log_value(logs, "loss");
  CHECK(kiln_config_has(logs, "accuracy"));
  kiln_config_free(logs);
  return loss;
}

static void test_seed_loop(void) {
  kiln_layer *m = make_model();
  kiln_optimizer *opt = adam(0.02), *got = NULL;
  kiln_tensor_list *x = list1(x_tensor()), *y = list1(y_tensor()), *pred = NULL, *pred1 = NULL;
  kiln_fit_options fo;
  kiln_predict_options po;
  kiln_callback *history = NULL;
  kiln_config *names = NULL;
  kiln_tensor *p0 = NULL, *p1 = NULL;
  int64_t freq[2] = {1, 3}, iterations = 0, pdims[2] = {N, C};
  double before, after;
  size_t count = 0;

  kiln_set_seed(3);
  CHECK(!kiln_model_is_compiled(m));
  compile_model(m, opt);
  CHECK(kiln_model_is_compiled(m));
  EXPECT_OK(kiln_model_get_optimizer(&got, m));
  CHECK(got != NULL && strcmp(kiln_optimizer_get_class_name(got), "Adam") == 0);
  before = evaluate_loss(m, x, y, 32);

  EXPECT_OK(kiln_fit_options_init(&fo, sizeof fo));
  CHECK(fo.batch_size == 32 && fo.epochs == 1 && fo.verbose == -1 && fo.shuffle && fo.num_inputs == 1);
  CHECK(fo.steps_per_epoch == -1 && fo.validation_steps == -1 && fo.validation_batch_size == -1);
  fo.x = x;
  fo.y = y;
  fo.epochs = 20;
  fo.batch_size = 16;
  fo.verbose = 0;
  fo.validation_split = 0.2;
  fo.validation_freq = freq;
  fo.num_validation_freq = 2;
  EXPECT_OK(kiln_model_fit(&history, m, &fo));
  CHECK(history != NULL && strcmp(kiln_callback_get_class_name(history), "History") == 0);
  {
    kiln_config *rec = NULL, *h = NULL;
    size_t n_loss = 0, n_val = 0, n_keys = 0;
    const char *k = NULL;
    double losses[20];
    EXPECT_OK(kiln_callback_get_history(&rec, history));
    EXPECT_OK(kiln_config_get_config(&h, rec, "history"));
    EXPECT_OK(kiln_config_get_float_list(&n_loss, losses, 20, h, "loss"));
    EXPECT_OK(kiln_config_get_list_size(&n_val, h, "val_loss"));
    EXPECT_OK(kiln_config_get_list_size(&n_keys, rec, "keys"));
    CHECK(n_loss == 20 && losses[19] < losses[0]);
    CHECK(n_val == 2); /* validation_freq [1, 3]: epochs 1 and 3 */
    CHECK(n_keys == 4 && kiln_config_has(h, "val_accuracy") && kiln_config_has(h, "accuracy"));
    EXPECT_OK(kiln_config_get_string_at(&k, rec, "keys", 2));
    CHECK(k && strcmp(k, "val_loss") == 0);
    kiln_config_free(h);
    kiln_config_free(rec);
  }
  kiln_callback_free(history);
  EXPECT_OK(kiln_optimizer_get_iterations(&iterations, got));
  CHECK(iterations == 20 * 4); /* 51 training samples (the last 13 validate) in batches of 16 */
  after = evaluate_loss(m, x, y, 32);
  CHECK(after < 0.7 * before);

  EXPECT_OK(kiln_model_get_metrics_names(&names, m));
  EXPECT_OK(kiln_config_get_list_size(&count, names, "names"));
  CHECK(count == 2);
  kiln_config_free(names);

  EXPECT_OK(kiln_predict_options_init(&po, sizeof po));
  po.x = x;
  po.batch_size = 10;
  po.verbose = 0;
  EXPECT_OK(kiln_model_predict(&pred, m, &po));
  EXPECT_OK(kiln_model_predict_on_batch(&pred1, m, x));
  CHECK(kiln_tensor_list_get_size(pred) == 1);
  EXPECT_OK(kiln_tensor_list_get(&p0, pred, 0));
  EXPECT_OK(kiln_tensor_list_get(&p1, pred1, 0));
  if (p0 && p1 && meta_ok(p0, F32, 2, pdims)) {
    int i, close = 1;
    for (i = 0; i < N * C; ++i) close &= fabs(fdata(p0)[i] - fdata(p1)[i]) < 1e-5;
    CHECK(close);
  }
  kiln_tensor_free(p0);
  kiln_tensor_free(p1);
  kiln_tensor_list_free(pred);
  kiln_tensor_list_free(pred1);

  /* evaluate over one batch = test_on_batch */
  {
    kiln_config *logs = NULL;
    EXPECT_OK(kiln_model_test_on_batch(&logs, m, x, y, NULL));
    if (logs) CHECK(fabs(log_value(logs, "loss") - evaluate_loss(m, x, y, N)) < 1e-6);
    kiln_config_free(logs);
    EXPECT_OK(kiln_model_train_on_batch(&logs, m, x, y, NULL, NULL, 0));
    if (logs) CHECK(log_value(logs, "loss") > 0 && kiln_config_has(logs, "accuracy"));
    kiln_config_free(logs);
    EXPECT_OK(kiln_model_train_on_batch(NULL, m, x, y, NULL, NULL, 0));
  }

  EXPECT_OK(kiln_model_set_stop_training(m, true));
  CHECK(kiln_model_get_stop_training(m));
  EXPECT_OK(kiln_model_set_stop_training(m, false));
  CHECK(!kiln_model_get_stop_training(m));

  kiln_optimizer_free(got);
  kiln_optimizer_free(opt);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  kiln_layer_free(m);
  release_kept();
}

static void test_dataset_and_weights(void) {
  kiln_layer *m = make_model();
  kiln_tensor_list *xyw = NULL, *x = list1(x_tensor()), *y = list1(y_tensor());
  kiln_dataset *slices = NULL, *ds = NULL;
  kiln_fit_options fo;
  kiln_evaluate_options eo;
  kiln_config *a = NULL, *b = NULL;
  float w[N];
  int64_t wd[1] = {N};
  double cw[C] = {1.0, 2.0, 0.5};
  kiln_tensor *wt;
  int i;
  for (i = 0; i < N; ++i) w[i] = (float)(i % 3);
  wt = make(F32, 1, wd, w);
  compile_model(m, NULL); /* optimizer_name NULL: rmsprop */
  EXPECT_OK(kiln_tensor_list_create(&xyw));
  EXPECT_OK(kiln_tensor_list_append(xyw, x_tensor()));
  EXPECT_OK(kiln_tensor_list_append(xyw, y_tensor()));
  EXPECT_OK(kiln_tensor_list_append(xyw, wt));
  EXPECT_OK(kiln_dataset_from_tensor_slices(&slices, xyw, NULL));
  EXPECT_OK(kiln_dataset_batch(&ds, slices, 16, false));

  /* a dataset with sample weights evaluates as the tensors with those weights */
  EXPECT_OK(kiln_evaluate_options_init(&eo, sizeof eo));
  eo.dataset = ds;
  eo.verbose = 0;
  EXPECT_OK(kiln_model_evaluate(&a, m, &eo));
  eo.dataset = NULL;
  eo.x = x;
  eo.y = y;
  eo.sample_weight = wt;
  EXPECT_OK(kiln_model_evaluate(&b, m, &eo));
  if (a && b) CHECK(fabs(log_value(a, "loss") - log_value(b, "loss")) < 1e-6);
  kiln_config_free(a);
  kiln_config_free(b);

  EXPECT_OK(kiln_fit_options_init(&fo, sizeof fo));
  fo.dataset = ds;
  fo.epochs = 2;
  fo.verbose = 0;
  fo.class_weight = cw;
  fo.num_class_weight = C;
  /* Keras 3: class_weight with a dataset that holds sample weights is refused */
  EXPECT_ERROR(kiln_model_fit(NULL, m, &fo), INVALID, "class_weight and sample_weight were both given",
               "one or the other");
  fo.class_weight = NULL;
  fo.num_class_weight = 0;
  EXPECT_OK(kiln_model_fit(NULL, m, &fo));
  fo.validation_split = 0.5;
  EXPECT_ERROR(kiln_model_fit(NULL, m, &fo), INVALID, "validation_split", "dataset");

  kiln_dataset_free(ds);
  kiln_dataset_free(slices);
  kiln_tensor_list_free(xyw);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  kiln_layer_free(m);
  release_kept();
}

/* A custom train_step as Keras's: forward under a tape, compute_loss, gradients of the
 * trainable variables, apply_gradients, compute_metrics. */
struct step_state {
  int train_calls, test_calls, destroyed;
};

static kiln_status *my_train_step(kiln_config *logs, kiln_layer *model, const kiln_tensor_list *data,
                                  void *ud) {
  struct step_state *s = (struct step_state *)ud;
  kiln_tensor *x = NULL, *y = NULL, *loss = NULL, *grads[8] = {0};
  kiln_tensor_list *xs = NULL, *ys = NULL, *y_pred = NULL;
  kiln_variable *vars[8] = {0};
  kiln_optimizer *opt = NULL;
  kiln_config *m = NULL;
  kiln_tape *tape = NULL;
  size_t nv = 0, i;
  kiln_status *st;
  s->train_calls++;
  st = kiln_tensor_list_get(&x, data, 0);
  if (!st) st = kiln_tensor_list_get(&y, data, 1);
  if (!st) st = kiln_tensor_list_create(&xs);
  if (!st) st = kiln_tensor_list_append(xs, x);
  if (!st) st = kiln_tensor_list_create(&ys);
  if (!st) st = kiln_tensor_list_append(ys, y);
  if (!st) st = kiln_tape_create(&tape, false, true);
  if (!st) st = kiln_layer_call(&y_pred, model, xs, true);
  if (!st) st = kiln_model_compute_loss(&loss, model, xs, ys, y_pred, NULL);
  if (!st) st = kiln_tape_stop(tape);
  if (!st) st = kiln_layer_get_variables(vars, 8, &nv, model, KILN_VARIABLES_TRAINABLE);
  if (!st && nv > 8) st = kiln_status_create(KILN_STATUS_INTERNAL, "too many variables");
  if (!st)
    st = kiln_tape_gradient_variables(grads, tape, loss, (const kiln_variable *const *)vars, nv,
                                      KILN_UNCONNECTED_NONE);
  if (!st) st = kiln_model_get_optimizer(&opt, model);
  if (!st) st = kiln_optimizer_apply_gradients(opt, (const kiln_tensor *const *)grads, vars, nv);
  if (!st) st = kiln_model_compute_metrics(&m, model, xs, ys, y_pred, NULL);
  if (!st) st = kiln_config_update(logs, m);
  if (!st) st = kiln_config_set_float(logs, "custom", 2.5);
  for (i = 0; i < nv && i < 8; ++i) {
    kiln_tensor_free(grads[i]);
    kiln_variable_free(vars[i]);
  }
  kiln_config_free(m);
  kiln_optimizer_free(opt);
  kiln_tape_free(tape);
  kiln_tensor_free(loss);
  kiln_tensor_list_free(y_pred);
  kiln_tensor_list_free(xs);
  kiln_tensor_list_free(ys);
  kiln_tensor_free(x);
  kiln_tensor_free(y);
  return st;
}

static kiln_status *failing_test_step(kiln_config *logs, kiln_layer *model, const kiln_tensor_list *data,
                                      void *ud) {
  (void)logs;
  (void)model;
  (void)data;
  ((struct step_state *)ud)->test_calls++;
  return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "my test step failed");
}

static void destroy_state(void *ud) { ((struct step_state *)ud)->destroyed++; }

static void test_custom_step(void) {
  struct step_state s = {0, 0, 0};
  kiln_model_step_callbacks cb;
  kiln_layer *m = make_model();
  kiln_tensor_list *x = list1(x_tensor()), *y = list1(y_tensor());
  kiln_fit_options fo;
  kiln_evaluate_options eo;
  kiln_config *logs = NULL;
  kiln_optimizer *opt = adam(0.01);
  int64_t iterations = 0;
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.train_step = my_train_step;
  cb.test_step = failing_test_step;
  cb.destroy = destroy_state;
  EXPECT_OK(kiln_model_set_step_callbacks(m, &cb, &s)); /* before compile: kept by compile */
  compile_model(m, opt);
  EXPECT_OK(kiln_fit_options_init(&fo, sizeof fo));
  fo.x = x;
  fo.y = y;
  fo.epochs = 2;
  fo.verbose = 0;
  EXPECT_OK(kiln_model_fit(NULL, m, &fo));
  CHECK(s.train_calls == 4);
  EXPECT_OK(kiln_optimizer_get_iterations(&iterations, opt));
  CHECK(iterations == 4);
  EXPECT_OK(kiln_model_train_on_batch(&logs, m, x, y, NULL, NULL, 0));
  if (logs)
    CHECK(log_value(logs, "custom") == 2.5 && kiln_config_has(logs, "loss") &&
          kiln_config_has(logs, "accuracy"));
  kiln_config_free(logs);
  logs = NULL;
  EXPECT_OK(kiln_evaluate_options_init(&eo, sizeof eo));
  eo.x = x;
  eo.y = y;
  eo.verbose = 0;
  EXPECT_ERROR(kiln_model_evaluate(&logs, m, &eo), KILN_STATUS_OUT_OF_RANGE, "test_step",
               "my test step failed");
  CHECK(logs == NULL && s.test_calls == 1);
  CHECK(s.destroyed == 0);
  EXPECT_OK(kiln_model_set_step_callbacks(m, NULL, NULL)); /* back to the built-in steps */
  CHECK(s.destroyed == 1);
  EXPECT_OK(kiln_model_fit(NULL, m, &fo));
  CHECK(s.train_calls == 5);
  kiln_optimizer_free(opt);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  kiln_layer_free(m);
  release_kept();
}

static void test_errors(void) {
  kiln_layer *m = make_model();
  kiln_tensor_list *x = list1(x_tensor()), *y = list1(y_tensor()), *short_y = NULL, *bad_y = NULL,
                   *out = NULL;
  kiln_fit_options fo;
  kiln_compile_options co;
  kiln_evaluate_options eo;
  kiln_predict_options po;
  kiln_optimizer *opt = NULL;
  kiln_config *logs = NULL;
  kiln_callback *h = NULL;
  kiln_tensor *loss = NULL;
  int64_t d60[1] = {60}, labels[N];
  const char *bad_loss = "no_such_loss", *bad_metric = "no_such_metric", *mse = "mse";
  int i;

  EXPECT_OK(kiln_fit_options_init(&fo, sizeof fo));
  fo.x = x;
  fo.y = y;
  fo.verbose = 0;
  EXPECT_ERROR(kiln_model_fit(&h, m, &fo), KILN_STATUS_FAILED_PRECONDITION, "compile()", NULL);
  CHECK(h == NULL);
  EXPECT_ERROR(kiln_model_train_on_batch(&logs, m, x, y, NULL, NULL, 0), KILN_STATUS_FAILED_PRECONDITION,
               "compile()", NULL);
  EXPECT_ERROR(kiln_model_get_optimizer(&opt, m), KILN_STATUS_FAILED_PRECONDITION, "compile()", NULL);
  CHECK(opt == NULL);
  EXPECT_ERROR(kiln_model_get_metrics_names(&logs, m), KILN_STATUS_FAILED_PRECONDITION, "compile()", NULL);
  EXPECT_ERROR(kiln_model_compute_loss(&loss, m, x, y, y, NULL), KILN_STATUS_FAILED_PRECONDITION, "compile()",
               NULL);

  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.loss_names = &bad_loss;
  co.num_loss_names = 1;
  EXPECT_ERROR(kiln_model_compile(m, &co), KILN_STATUS_NOT_FOUND, "no_such_loss", "mean_squared_error");
  co.loss_names = &mse;
  co.metric_names = &bad_metric;
  co.num_metric_names = 1;
  EXPECT_ERROR(kiln_model_compile(m, &co), KILN_STATUS_NOT_FOUND, "no_such_metric", "accuracy");
  co.num_metric_names = 0;
  co.optimizer_name = "no_such_optimizer";
  EXPECT_ERROR(kiln_model_compile(m, &co), KILN_STATUS_NOT_FOUND, "no_such_optimizer", "Adam");
  CHECK(!kiln_model_is_compiled(m));
  co.optimizer_name = NULL;
  co.loss_names = NULL;
  co.num_loss_names = 1;
  EXPECT_ERROR(kiln_model_compile(m, &co), INVALID, "loss_names", "NULL");
  co.struct_size = 3;
  EXPECT_ERROR(kiln_model_compile(m, &co), INVALID, "struct_size", NULL);
  EXPECT_ERROR(kiln_compile_options_init(NULL, sizeof co), INVALID, "options", NULL);
  EXPECT_ERROR(kiln_fit_options_init(&fo, 4), INVALID, "struct_size", NULL);

  compile_model(m, NULL);
  /* x/y size mismatch names both sizes */
  {
    kiln_tensor *ys = make(I64, 1, d60, g_y);
    short_y = list1(ys);
  }
  fo.y = short_y;
  EXPECT_ERROR(kiln_model_fit(&h, m, &fo), INVALID, "64", "60");
  /* labels out of range for sparse cross-entropy, before any batch trains */
  for (i = 0; i < N; ++i) labels[i] = g_y[i];
  labels[40] = 9;
  {
    int64_t dn[1] = {N};
    bad_y = list1(make(I64, 1, dn, labels));
  }
  fo.y = bad_y;
  EXPECT_ERROR(kiln_model_fit(&h, m, &fo), INVALID, "label 9", "[0, 3)");
  fo.y = y;
  fo.validation_split = 1.0;
  EXPECT_ERROR(kiln_model_fit(&h, m, &fo), INVALID, "validation_split", NULL);
  fo.validation_split = 0;
  fo.x = NULL;
  EXPECT_ERROR(kiln_model_fit(&h, m, &fo), INVALID, "no x", NULL);
  fo.x = x;
  fo.num_callbacks = 1;
  EXPECT_ERROR(kiln_model_fit(&h, m, &fo), INVALID, "callbacks", "NULL");
  fo.num_callbacks = 0;
  fo.num_validation_freq = 1;
  EXPECT_ERROR(kiln_model_fit(&h, m, &fo), INVALID, "validation_freq", "NULL");
  fo.num_validation_freq = 0;
  fo.verbose = 7;
  EXPECT_ERROR(kiln_model_fit(&h, m, &fo), INVALID, "verbose", NULL);
  CHECK(h == NULL);
  {
    int64_t it = -1;
    EXPECT_OK(kiln_model_get_optimizer(&opt, m));
    EXPECT_OK(kiln_optimizer_get_iterations(&it, opt));
    CHECK(it == 0); /* nothing trained */
    kiln_optimizer_free(opt);
    opt = NULL;
  }

  EXPECT_ERROR(kiln_model_fit(&h, NULL, &fo), INVALID, "model", "NULL");
  EXPECT_ERROR(kiln_model_fit(&h, m, NULL), INVALID, "options", "NULL");
  EXPECT_ERROR(kiln_model_compile(NULL, &co), INVALID, "model", "NULL");
  EXPECT_ERROR(kiln_model_evaluate(NULL, m, &eo), INVALID, "out_logs", "NULL");
  EXPECT_OK(kiln_evaluate_options_init(&eo, sizeof eo));
  EXPECT_ERROR(kiln_model_evaluate(&logs, m, NULL), INVALID, "options", "NULL");
  EXPECT_ERROR(kiln_model_evaluate(&logs, m, &eo), INVALID, "no x", NULL);
  EXPECT_OK(kiln_predict_options_init(&po, sizeof po));
  EXPECT_ERROR(kiln_model_predict(&out, m, &po), INVALID, "no x", NULL);
  EXPECT_ERROR(kiln_model_predict(NULL, m, &po), INVALID, "out", "NULL");
  EXPECT_ERROR(kiln_model_predict_on_batch(&out, m, NULL), INVALID, "x", "NULL");
  EXPECT_ERROR(kiln_model_train_on_batch(&logs, m, NULL, y, NULL, NULL, 0), INVALID, "x", "NULL");
  EXPECT_ERROR(kiln_model_train_on_batch(&logs, m, x, y, NULL, NULL, 2), INVALID, "class_weight", "NULL");
  EXPECT_ERROR(kiln_model_test_on_batch(&logs, m, x, NULL, NULL), INVALID, "no y given", "compiled loss");
  EXPECT_ERROR(kiln_model_compute_loss(NULL, m, x, y, y, NULL), INVALID, "out", "NULL");
  EXPECT_ERROR(kiln_model_compute_metrics(&logs, m, x, y, NULL, NULL), INVALID, "y_pred", "NULL");
  EXPECT_ERROR(kiln_model_get_optimizer(NULL, m), INVALID, "out", "NULL");
  EXPECT_ERROR(kiln_model_set_stop_training(NULL, true), INVALID, "model", "NULL");
  EXPECT_ERROR(kiln_model_set_step_callbacks(NULL, NULL, NULL), INVALID, "model", "NULL");
  {
    kiln_model_step_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.struct_size = 2;
    EXPECT_ERROR(kiln_model_set_step_callbacks(m, &cb, NULL), INVALID, "struct_size", NULL);
  }
  CHECK(!kiln_model_is_compiled(NULL));
  CHECK(!kiln_model_get_stop_training(NULL));
  CHECK(logs == NULL && out == NULL && loss == NULL);

  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  kiln_tensor_list_free(short_y);
  kiln_tensor_list_free(bad_y);
  kiln_layer_free(m);
  release_kept();
}

/* Keras's compile list mixing names and objects: metrics_names, the logs and the saved compile
 * config follow the order metric_is_object gives; a wrong order is INVALID_ARGUMENT. */
static void test_mixed_metric_order(void) {
  kiln_layer *m = make_model();
  kiln_tensor_list *x = list1(x_tensor()), *y = list1(y_tensor());
  kiln_metric *top = NULL;
  kiln_config *logs = NULL, *names = NULL, *c = NULL;
  kiln_compile_options co;
  const char *loss = "sparse_categorical_crossentropy", *metric_names[2] = {"accuracy", "crossentropy"},
             *got = NULL;
  const bool order[3] = {false, true, false}, bad[3] = {true, true, false};
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_int(c, "k", 2));
  EXPECT_OK(kiln_metric_create(&top, "SparseTopKCategoricalAccuracy", c));
  kiln_config_free(c);
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  CHECK(co.metric_is_object == NULL && co.num_metric_is_object == 0);
  co.loss_names = &loss;
  co.num_loss_names = 1;
  co.metric_names = metric_names;
  co.num_metric_names = 2;
  co.metrics = &top;
  co.num_metrics = 1;
  co.metric_is_object = bad;
  co.num_metric_is_object = 3;
  EXPECT_ERROR(kiln_model_compile(m, &co), INVALID, "metric order has 3 entries, 2 of them objects",
               "2 names and 1 objects");
  co.num_metric_is_object = 2;
  EXPECT_ERROR(kiln_model_compile(m, &co), INVALID, "metric order has 2 entries", NULL);
  co.metric_is_object = order;
  co.num_metric_is_object = 3;
  EXPECT_OK(kiln_model_compile(m, &co));
  EXPECT_OK(kiln_model_train_on_batch(&logs, m, x, y, NULL, NULL, 0));
  EXPECT_OK(kiln_config_get_key(&got, logs, 1));
  CHECK(got && strcmp(got, "accuracy") == 0);
  EXPECT_OK(kiln_config_get_key(&got, logs, 2));
  CHECK(got && strcmp(got, "sparse_top_k_categorical_accuracy") == 0);
  EXPECT_OK(kiln_config_get_key(&got, logs, 3));
  CHECK(got && strcmp(got, "crossentropy") == 0);
  EXPECT_OK(kiln_model_get_metrics_names(&names, m));
  EXPECT_OK(kiln_config_get_string_at(&got, names, "names", 2));
  CHECK(got && strcmp(got, "sparse_top_k_categorical_accuracy") == 0);
  kiln_config_free(names);
  kiln_config_free(logs);
  kiln_metric_free(top);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  kiln_layer_free(m);
}

/* A model with two heads, each a Dense(1) of x. */
typedef struct two_heads {
  kiln_layer *a, *b;
} two_heads;

static kiln_status *two_heads_call(kiln_tensor_list *outputs, kiln_layer *self,
                                   const kiln_tensor_list *inputs, bool training, void *user) {
  two_heads *h = (two_heads *)user;
  kiln_tensor *x = NULL, *ya = NULL, *yb = NULL;
  kiln_status *st;
  (void)self;
  if ((st = kiln_tensor_list_get(&x, inputs, 0))) return st;
  st = kiln_layer_call_tensor(&ya, h->a, x, training);
  if (!st) st = kiln_layer_call_tensor(&yb, h->b, x, training);
  if (!st) st = kiln_tensor_list_append(outputs, ya);
  if (!st) st = kiln_tensor_list_append(outputs, yb);
  kiln_tensor_free(x);
  kiln_tensor_free(ya);
  kiln_tensor_free(yb);
  return st;
}

/* Keras's individual loss trackers: a model with two outputs logs each output's loss before its
 * loss weight ("output_1_loss", "output_2_loss"), after the compiled metrics. */
static void test_per_output_losses(void) {
  two_heads h = {dense_layer(1, "linear"), dense_layer(1, "tanh")};
  kiln_layer_callbacks cb;
  kiln_layer *m = NULL;
  kiln_compile_options co;
  kiln_tensor_list *x = list1(x_tensor()), *y = NULL;
  kiln_config *logs = NULL, *names = NULL;
  const char *losses[2] = {"mse", "mae"}, *metric = "mae", *got = NULL;
  const double weights[2] = {1.0, 0.5};
  float t1[N], t2[N];
  int64_t dims[2] = {N, 1};
  double l1, l2;
  int i;
  for (i = 0; i < N; ++i) {
    t1[i] = g_x[i * F] * 2.0f;
    t2[i] = 0.5f - g_x[i * F + 1];
  }
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = two_heads_call;
  EXPECT_OK(kiln_model_create_custom(&m, "TwoHeads", NULL, &cb, &h));
  EXPECT_OK(kiln_layer_track(m, h.a));
  EXPECT_OK(kiln_layer_track(m, h.b));
  EXPECT_OK(kiln_tensor_list_create(&y));
  EXPECT_OK(kiln_tensor_list_append(y, make(F32, 2, dims, t1)));
  EXPECT_OK(kiln_tensor_list_append(y, make(F32, 2, dims, t2)));
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.loss_names = losses;
  co.num_loss_names = 2;
  co.loss_weights = weights;
  co.num_loss_weights = 2;
  co.metric_names = &metric;
  co.num_metric_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
  EXPECT_OK(kiln_model_test_on_batch(&logs, m, x, y, NULL));
  {
    static const char *want[5] = {"loss", "output_1_mae", "output_2_mae", "output_1_loss", "output_2_loss"};
    CHECK(kiln_config_get_size(logs) == 5);
    for (i = 0; i < 5; ++i) {
      EXPECT_OK(kiln_config_get_key(&got, logs, (size_t)i));
      CHECK(got && strcmp(got, want[i]) == 0);
    }
  }
  l1 = log_value(logs, "output_1_loss");
  l2 = log_value(logs, "output_2_loss");
  CHECK(l1 > 0 && l2 > 0 && fabs(l1 - l2) > 1e-4);
  CHECK(fabs(log_value(logs, "loss") - (l1 + 0.5 * l2)) < 1e-5 * (1 + l1));
  CHECK(fabs(log_value(logs, "output_2_mae") - l2) < 1e-5); /* the mae loss is the mae metric */
  EXPECT_OK(kiln_model_get_metrics_names(&names, m));
  EXPECT_OK(kiln_config_get_string_at(&got, names, "names", 4));
  CHECK(got && strcmp(got, "output_2_loss") == 0);
  /* Keras's model.metrics: the metric objects in that order, sharing the model's state. */
  {
    kiln_metric *objs[5] = {NULL, NULL, NULL, NULL, NULL};
    kiln_tensor *r = NULL;
    size_t count = 0;
    EXPECT_OK(kiln_model_get_metrics(NULL, 0, &count, m));
    CHECK(count == 5);
    EXPECT_OK(kiln_model_get_metrics(objs, 5, &count, m));
    CHECK(objs[0] && strcmp(kiln_metric_get_name(objs[0]), "loss") == 0);
    CHECK(objs[4] && strcmp(kiln_metric_get_name(objs[4]), "output_2_loss") == 0);
    EXPECT_OK(kiln_metric_result(&r, objs[4]));
    CHECK(r && fabs(kiln_tensor_get_data(r) ? ((const float *)kiln_tensor_get_data(r))[0] - l2 : 1) < 1e-5);
    kiln_tensor_free(r);
    for (i = 0; i < 5; ++i) kiln_metric_free(objs[i]);
    EXPECT_ERROR(kiln_model_get_metrics(objs, 5, NULL, m), KILN_STATUS_INVALID_ARGUMENT, "out_count", NULL);
    EXPECT_ERROR(kiln_model_get_metrics(NULL, 5, &count, m), KILN_STATUS_INVALID_ARGUMENT, "out", NULL);
  }
  kiln_config_free(names);
  kiln_config_free(logs);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  kiln_layer_free(m);
  kiln_layer_free(h.a);
  kiln_layer_free(h.b);
}

/* Keras's weighted_metrics: the metrics flagged in metric_is_weighted see the sample weight, follow
 * the others in the logs, and take "weighted_<name>" when their name is taken; an older
 * struct_size leaves the flags unread. */
static void test_weighted_metrics(void) {
  kiln_layer *m = make_model();
  kiln_tensor_list *x = list1(x_tensor()), *y = list1(y_tensor()), *pred = NULL;
  kiln_tensor *w = NULL, *p = NULL;
  kiln_config *logs = NULL;
  kiln_compile_options co;
  const char *loss = "sparse_categorical_crossentropy", *names[3] = {"accuracy", "accuracy", "accuracy"},
             *got = NULL;
  const bool weighted[3] = {false, true, true};
  float weights[N];
  int64_t dims[1] = {N};
  double all = 0, first = 0;
  int i, k;
  for (i = 0; i < N; ++i) weights[i] = i < 10 ? 1.0f : 0.0f;
  w = make(F32, 1, dims, weights);
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  CHECK(co.metric_is_weighted == NULL && co.num_metric_is_weighted == 0);
  co.loss_names = &loss;
  co.num_loss_names = 1;
  co.metric_names = names;
  co.num_metric_names = 3;
  co.metric_is_weighted = weighted;
  co.num_metric_is_weighted = 2;
  EXPECT_ERROR(kiln_model_compile(m, &co), INVALID, "metric_is_weighted has 2 entries", "one per metric (3)");
  co.num_metric_is_weighted = 3;
  EXPECT_OK(kiln_model_compile(m, &co));
  EXPECT_OK(kiln_model_predict_on_batch(&pred, m, x));
  EXPECT_OK(kiln_tensor_list_get(&p, pred, 0));
  if (p) {
    const float *prob = (const float *)kiln_tensor_get_data(p);
    for (i = 0; i < N; ++i) {
      int best = 0;
      for (k = 1; k < C; ++k)
        if (prob[i * C + k] > prob[i * C + best]) best = k;
      all += best == g_y[i];
      if (i < 10) first += best == g_y[i];
    }
  }
  EXPECT_OK(kiln_model_test_on_batch(&logs, m, x, y, w));
  EXPECT_OK(kiln_config_get_key(&got, logs, 1));
  CHECK(got && strcmp(got, "accuracy") == 0);
  EXPECT_OK(kiln_config_get_key(&got, logs, 2));
  CHECK(got && strcmp(got, "weighted_accuracy") == 0);
  EXPECT_OK(kiln_config_get_key(&got, logs, 3));
  CHECK(got && strcmp(got, "weighted_accuracy_1") == 0);
  CHECK(fabs(log_value(logs, "accuracy") - all / N) < 1e-6);
  CHECK(fabs(log_value(logs, "weighted_accuracy") - first / 10) < 1e-6);
  CHECK(fabs(log_value(logs, "weighted_accuracy_1") - first / 10) < 1e-6);
  kiln_config_free(logs);
  logs = NULL;
  /* A caller built before metric_is_weighted: its struct ends before the flags. */
  co.struct_size = offsetof(kiln_compile_options, metric_is_weighted);
  EXPECT_OK(kiln_model_compile(m, &co));
  EXPECT_OK(kiln_model_test_on_batch(&logs, m, x, y, w));
  EXPECT_OK(kiln_config_get_key(&got, logs, 2));
  CHECK(got && strcmp(got, "accuracy_1") == 0);
  CHECK(fabs(log_value(logs, "accuracy_1") - all / N) < 1e-6);
  kiln_config_free(logs);
  kiln_tensor_free(p);
  kiln_tensor_list_free(pred);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  kiln_layer_free(m);
}

/* Keras's fit(x) without y (y NULL): a model compiled without a loss trains on its own losses,
 * here the kernel's l2 penalty 0.01 * sum(k^2), which each SGD(0.5) step scales by 0.99^2. */
static void test_without_targets(void) {
  kiln_layer *m = NULL, *d = NULL;
  kiln_config *c = NULL, *logs = NULL;
  kiln_optimizer *sgd = optimizer("SGD", 0.5);
  kiln_compile_options co;
  kiln_fit_options fo;
  kiln_tensor_list *x = list1(x_tensor()), *pred = NULL;
  kiln_tensor *loss = NULL;
  double l0 = -1, l = -1;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_int(c, "units", C));
  EXPECT_OK(kiln_config_set_string(c, "kernel_regularizer", "l2"));
  EXPECT_OK(kiln_layer_create(&d, "Dense", c));
  EXPECT_OK(kiln_layer_create(&m, "Sequential", NULL));
  EXPECT_OK(kiln_sequential_add(m, d));
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = sgd;
  EXPECT_OK(kiln_model_compile(m, &co));

  EXPECT_OK(kiln_model_train_on_batch(&logs, m, x, NULL, NULL, NULL, 0));
  if (logs) l0 = log_value(logs, "loss");
  kiln_config_free(logs);
  logs = NULL;
  CHECK(l0 > 0);
  EXPECT_OK(kiln_fit_options_init(&fo, sizeof fo));
  fo.x = x;
  fo.y = NULL;
  fo.batch_size = 16; /* 4 steps */
  fo.verbose = 0;
  EXPECT_OK(kiln_model_fit(NULL, m, &fo));
  EXPECT_OK(kiln_model_test_on_batch(&logs, m, x, NULL, NULL));
  if (logs) l = log_value(logs, "loss");
  kiln_config_free(logs);
  logs = NULL;
  CHECK(fabs(l - l0 * pow(0.9801, 5)) < 1e-5 * l0);
  EXPECT_OK(kiln_model_predict_on_batch(&pred, m, x));
  EXPECT_OK(kiln_model_compute_loss(&loss, m, x, NULL, pred, NULL));
  if (loss) CHECK(fabs(fdata(loss)[0] - l) < 1e-5 * l0);
  EXPECT_OK(kiln_model_compute_metrics(&logs, m, x, NULL, pred, NULL));
  kiln_config_free(logs);
  logs = NULL;

  /* a compiled loss needs y, and says so */
  compile_model(m, sgd);
  EXPECT_ERROR(kiln_model_train_on_batch(&logs, m, x, NULL, NULL, NULL, 0), INVALID, "no y given",
               "'sparse_categorical_crossentropy'");
  EXPECT_ERROR(kiln_model_fit(NULL, m, &fo), INVALID, "fit: no y given", "add_loss");
  EXPECT_ERROR(kiln_model_compute_loss(&loss, m, x, NULL, pred, NULL), INVALID, "no y given",
               "compiled loss");

  kiln_tensor_free(loss);
  kiln_tensor_list_free(pred);
  kiln_tensor_list_free(x);
  kiln_optimizer_free(sgd);
  kiln_layer_free(d);
  kiln_layer_free(m);
  kiln_config_free(c);
  release_kept();
}

int main(void) {
  make_problem();
  test_without_targets();
  test_mixed_metric_order();
  test_weighted_metrics();
  test_per_output_losses();
  test_seed_loop();
  test_dataset_and_weights();
  test_custom_step();
  test_errors();
  return test_summary();
}
