/* Callbacks inside fit through the shared library alone: a callback table sees every epoch and
 * batch with the model and its logs and stops training through kiln_model_set_stop_training; a
 * hook's error stops fit with its status; EarlyStopping stops and restores the best weights;
 * LearningRateScheduler and ReduceLROnPlateau change the optimizer's learning rate; TerminateOnNaN
 * ends a diverging fit; CSVLogger writes one row per epoch. Plain C99 (plus POSIX mkstemp). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define N 40
#define F 3

static float g_x[N * F];
static float g_y[N];

static void make_problem(int with_nan) {
  regression_problem(g_x, g_y, N, F, 7u);
  if (with_nan) g_x[0] = NAN;
}

/* Dense(1) regression, compiled with SGD(learning_rate) and mse. */
static kiln_layer *make_model(double learning_rate) {
  kiln_config *c = NULL;
  kiln_layer *m = NULL;
  kiln_optimizer *opt = NULL;
  kiln_compile_options co;
  const char *loss = "mse";
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_int(c, "units", 1));
  EXPECT_OK(kiln_layer_create(&m, "Dense", c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", learning_rate));
  EXPECT_OK(kiln_config_remove(c, "units"));
  EXPECT_OK(kiln_optimizer_create(&opt, "SGD", c));
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = opt;
  co.loss_names = &loss;
  co.num_loss_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
  kiln_optimizer_free(opt);
  kiln_config_free(c);
  return m;
}

/* fit(x, y, batch_size=10, epochs, validation_split=0.25, verbose=0, callbacks). */
static kiln_status *fit(kiln_layer *m, int64_t epochs, kiln_callback *const *cbs, size_t n) {
  int64_t xd[2] = {N, F}, yd[2] = {N, 1};
  kiln_tensor_list *x = list1(make(F32, 2, xd, g_x)), *y = list1(make(F32, 2, yd, g_y));
  kiln_fit_options fo;
  kiln_status *st;
  EXPECT_OK(kiln_fit_options_init(&fo, sizeof fo));
  fo.x = x;
  fo.y = y;
  fo.batch_size = 10;
  fo.epochs = epochs;
  fo.verbose = 0;
  fo.validation_split = 0.25;
  fo.shuffle = false;
  fo.callbacks = cbs;
  fo.num_callbacks = n;
  st = kiln_model_fit(NULL, m, &fo);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  return st;
}

static float first_weight(const kiln_layer *model) {
  kiln_variable *v = NULL;
  kiln_tensor *t = NULL;
  size_t n = 0;
  float w = -1;
  EXPECT_OK(kiln_layer_get_variables(&v, 1, &n, model, KILN_VARIABLES_ALL));
  EXPECT_OK(kiln_variable_read(&t, v));
  if (t) w = fdata(t)[0];
  kiln_tensor_free(t);
  kiln_variable_free(v);
  return w;
}

/* ---- a callback table in fit ---- */

typedef struct Seen {
  uint64_t model_id;
  int same_model, train_begin, train_end, epoch_begins, epoch_ends, batch_ends, test_begins, stop_at;
  int fail_at_epoch, val_loss_every_epoch;
  double lr[8];
  float weight_after[8];
} Seen;

static kiln_status *seen_train_begin(kiln_layer *model, const kiln_config *logs, void *ud) {
  Seen *s = (Seen *)ud;
  (void)logs;
  ++s->train_begin;
  s->epoch_begins = 0; /* counts this fit's epochs */
  s->same_model = model && kiln_layer_get_id(model) == s->model_id;
  return NULL;
}
static kiln_status *seen_train_end(kiln_layer *model, const kiln_config *logs, void *ud) {
  (void)model;
  (void)logs;
  ++((Seen *)ud)->train_end;
  return NULL;
}
static kiln_status *seen_epoch_begin(kiln_layer *model, int64_t epoch, const kiln_config *logs, void *ud) {
  Seen *s = (Seen *)ud;
  (void)model;
  if (epoch != s->epoch_begins) return kiln_status_create(KILN_STATUS_INTERNAL, "epochs out of order");
  ++s->epoch_begins;
  /* As Keras's CallbackList: a logs dict for every hook, empty at an epoch's begin. */
  if (logs == NULL) return kiln_status_create(KILN_STATUS_INTERNAL, "on_epoch_begin got NULL logs");
  return kiln_config_get_size(logs) == 0
             ? NULL
             : kiln_status_create(KILN_STATUS_INTERNAL, "on_epoch_begin got logs");
}
static kiln_status *seen_epoch_end(kiln_layer *model, int64_t epoch, const kiln_config *logs, void *ud) {
  Seen *s = (Seen *)ud;
  if (epoch == s->fail_at_epoch) return kiln_status_create(KILN_STATUS_DATA_LOSS, "the disk is full");
  ++s->epoch_ends;
  if (!kiln_config_has(logs, "loss") || !kiln_config_has(logs, "val_loss")) s->val_loss_every_epoch = 0;
  if (epoch < 8) {
    s->lr[epoch] = -1;
    if (kiln_config_has(logs, "learning_rate")) (void)kiln_config_get_float(&s->lr[epoch], logs, "learning_rate");
    s->weight_after[epoch] = first_weight(model);
  }
  if (epoch == s->stop_at) return kiln_model_set_stop_training(model, true);
  return NULL;
}
static kiln_status *seen_batch_end(kiln_layer *model, int64_t batch, const kiln_config *logs, void *ud) {
  (void)model;
  (void)batch;
  ++((Seen *)ud)->batch_ends;
  return kiln_config_has(logs, "loss") ? NULL : kiln_status_create(KILN_STATUS_INTERNAL, "batch logs lack loss");
}
static kiln_status *seen_test_begin(kiln_layer *model, const kiln_config *logs, void *ud) {
  (void)model;
  (void)logs;
  ++((Seen *)ud)->test_begins;
  return NULL;
}

static kiln_callback *seen_callback(Seen *s, const kiln_layer *model) {
  kiln_callback_table t;
  kiln_callback *cb = NULL;
  memset(s, 0, sizeof *s);
  s->model_id = kiln_layer_get_id(model);
  s->stop_at = -1;
  s->fail_at_epoch = -1;
  s->val_loss_every_epoch = 1;
  memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  t.on_train_begin = seen_train_begin;
  t.on_train_end = seen_train_end;
  t.on_epoch_begin = seen_epoch_begin;
  t.on_epoch_end = seen_epoch_end;
  t.on_train_batch_end = seen_batch_end;
  t.on_test_begin = seen_test_begin;
  EXPECT_OK(kiln_callback_create_custom(&cb, "Seen", &t, s));
  return cb;
}

static void test_table_in_fit(void) {
  Seen s;
  kiln_layer *m;
  kiln_callback *cb;
  make_problem(0);
  m = make_model(0.05);
  cb = seen_callback(&s, m);
  EXPECT_OK(fit(m, 3, &cb, 1));
  CHECK(s.train_begin == 1 && s.train_end == 1 && s.same_model);
  CHECK(s.epoch_begins == 3 && s.epoch_ends == 3 && s.val_loss_every_epoch);
  CHECK(s.batch_ends == 9);  /* 30 training samples in batches of 10 */
  CHECK(s.test_begins == 3); /* validation after each epoch */
  /* stop_training from a hook ends fit after that epoch */
  s.epoch_begins = s.epoch_ends = 0;
  s.stop_at = 1;
  EXPECT_OK(fit(m, 5, &cb, 1));
  CHECK(s.epoch_ends == 2);
  /* a hook's error status stops fit with it */
  s.epoch_begins = s.epoch_ends = s.train_end = 0;
  s.stop_at = -1;
  s.fail_at_epoch = 1;
  EXPECT_ERROR(fit(m, 5, &cb, 1), KILN_STATUS_DATA_LOSS, "Seen on_epoch_end", "the disk is full");
  CHECK(s.epoch_ends == 1 && s.train_end == 0);
  kiln_callback_free(cb);
  kiln_layer_free(m);
}

static kiln_callback *by_name(const char *name, const char *json) {
  kiln_config *c = NULL;
  kiln_callback *cb = NULL;
  EXPECT_OK(kiln_config_from_json(&c, json));
  EXPECT_OK(kiln_callback_create(&cb, name, c));
  kiln_config_free(c);
  return cb;
}

static void test_early_stopping_in_fit(void) {
  Seen s;
  kiln_layer *m;
  kiln_callback *cbs[2];
  kiln_config *attrs = NULL;
  int64_t stopped = -1;
  make_problem(0);
  m = make_model(0.05);
  cbs[0] = seen_callback(&s, m);
  /* min_delta larger than any change: no epoch after the first improves, so fit stops at epoch 1
   * and the weights go back to the end of epoch 0 */
  cbs[1] = by_name("EarlyStopping",
                   "{\"monitor\": \"val_loss\", \"min_delta\": 100, \"patience\": 1, \"restore_best_weights\": true}");
  EXPECT_OK(fit(m, 6, cbs, 2));
  CHECK(s.epoch_ends == 2);
  EXPECT_OK(kiln_callback_get_attributes(&attrs, cbs[1]));
  EXPECT_OK(kiln_config_get_int(&stopped, attrs, "stopped_epoch"));
  CHECK(stopped == 1);
  CHECK(s.weight_after[0] != s.weight_after[1]); /* epoch 1 trained on */
  CHECK(first_weight(m) == s.weight_after[0]);   /* and was undone */
  kiln_config_free(attrs);
  kiln_callback_free(cbs[0]);
  kiln_callback_free(cbs[1]);
  kiln_layer_free(m);
}

static kiln_status *one_over_epoch(double *out_lr, int64_t epoch, double lr, void *ud) {
  (void)lr;
  (void)ud;
  if (epoch == 3) return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "no rate for epoch 3");
  *out_lr = 0.1 / (double)(epoch + 1);
  return NULL;
}

static void test_learning_rate_callbacks_in_fit(void) {
  Seen s;
  kiln_layer *m;
  kiln_callback *cbs[2];
  make_problem(0);
  m = make_model(0.05);
  EXPECT_OK(kiln_callback_create_lr_scheduler(&cbs[0], 0, one_over_epoch, NULL, NULL));
  cbs[1] = seen_callback(&s, m);
  EXPECT_OK(fit(m, 3, cbs, 2));
  CHECK(fabs(s.lr[0] - 0.1) < 1e-12 && fabs(s.lr[1] - 0.05) < 1e-12 && fabs(s.lr[2] - 0.1 / 3) < 1e-12);
  EXPECT_ERROR(fit(m, 5, cbs, 2), KILN_STATUS_OUT_OF_RANGE, "LearningRateScheduler", "no rate for epoch 3");
  kiln_callback_free(cbs[0]);
  kiln_callback_free(cbs[1]);
  kiln_layer_free(m);

  /* ReduceLROnPlateau: no improvement counts after epoch 0 (min_delta 100): halves every epoch */
  m = make_model(0.1);
  cbs[1] = seen_callback(&s, m);
  cbs[0] = by_name("ReduceLROnPlateau", "{\"monitor\": \"loss\", \"min_delta\": 100, \"patience\": 1, \"factor\": 0.5}");
  EXPECT_OK(fit(m, 3, cbs, 2));
  CHECK(fabs(s.lr[0] - 0.1) < 1e-12 && fabs(s.lr[1] - 0.1) < 1e-12 && fabs(s.lr[2] - 0.05) < 1e-12);
  kiln_callback_free(cbs[0]);
  kiln_callback_free(cbs[1]);
  kiln_layer_free(m);
}

static void test_terminate_on_nan_in_fit(void) {
  Seen s;
  kiln_layer *m;
  kiln_callback *cbs[2];
  make_problem(1); /* a NaN in the first batch: its loss is NaN */
  m = make_model(0.05);
  cbs[0] = by_name("TerminateOnNaN", "{}");
  cbs[1] = seen_callback(&s, m);
  EXPECT_OK(kiln_set_progress_callback(NULL, NULL, NULL));
  EXPECT_OK(fit(m, 4, cbs, 2));
  CHECK(s.batch_ends == 1 && s.epoch_ends == 1);
  kiln_callback_free(cbs[0]);
  kiln_callback_free(cbs[1]);
  kiln_layer_free(m);
}

static void test_csv_logger_in_fit(void) {
  char path[] = "/tmp/kiln_capi_csv_fit_XXXXXX";
  char json[128], text[512];
  kiln_layer *m;
  kiln_callback *cb;
  FILE *f;
  size_t n;
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  close(fd);
  make_problem(0);
  m = make_model(0.05);
  snprintf(json, sizeof json, "{\"filename\": \"%s\"}", path);
  cb = by_name("CSVLogger", json);
  EXPECT_OK(fit(m, 2, &cb, 1));
  f = fopen(path, "rb");
  CHECK(f != NULL);
  if (f) {
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECK(strncmp(text, "epoch,loss,val_loss\r\n0,", 23) == 0);
    CHECK(strstr(text, "\r\n1,") != NULL);
  }
  remove(path);
  kiln_callback_free(cb);
  kiln_layer_free(m);
}

/* ---- a hook writes the logs: Keras's one logs dict ---- */

static kiln_status *write_logs(kiln_layer *model, int64_t epoch, const kiln_config *logs, void *ud) {
  kiln_config *l = (kiln_config *)logs; /* the hook's to change (kiln/callbacks.h) */
  kiln_status *st;
  (void)model;
  if (*(int *)ud) return kiln_config_set_string(l, "note", "not a number");
  st = kiln_config_set_float(l, "epoch_x10", 10.0 * (double)epoch);
  return st ? st : kiln_config_remove(l, "val_loss");
}

static void test_hooks_write_logs(void) {
  kiln_callback_table t;
  kiln_callback *cbs[2] = {NULL, NULL};
  kiln_config *h = NULL, *hist = NULL;
  kiln_layer *m;
  int write_string = 0;
  double v = -1;
  make_problem(0);
  m = make_model(0.05);
  memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  t.on_epoch_end = write_logs;
  EXPECT_OK(kiln_callback_create_custom(&cbs[0], "WriteLogs", &t, &write_string));
  EXPECT_OK(kiln_callback_create(&cbs[1], "History", NULL)); /* after it: sees the change */
  EXPECT_OK(fit(m, 2, cbs, 2));
  EXPECT_OK(kiln_callback_get_history(&h, cbs[1]));
  EXPECT_OK(kiln_config_get_config(&hist, h, "history"));
  CHECK(hist && kiln_config_has(hist, "epoch_x10") && !kiln_config_has(hist, "val_loss"));
  {
    double values[2] = {-1, -1};
    size_t n = 0;
    EXPECT_OK(kiln_config_get_float_list(&n, values, 2, hist, "epoch_x10"));
    v = values[1];
    CHECK(n == 2 && values[0] == 0.0);
  }
  CHECK(v == 10.0);
  kiln_config_free(hist);
  kiln_config_free(h);
  write_string = 1;
  EXPECT_ERROR(fit(m, 1, cbs, 2), KILN_STATUS_INVALID_ARGUMENT, "WriteLogs on_epoch_end",
               "'note' is not a number");
  kiln_callback_free(cbs[0]);
  kiln_callback_free(cbs[1]);
  kiln_layer_free(m);
}

int main(void) {
  test_table_in_fit();
  test_hooks_write_logs();
  test_early_stopping_in_fit();
  test_learning_rate_callbacks_in_fit();
  test_terminate_on_nan_in_fit();
  test_csv_logger_in_fit();
  return test_summary();
}
