/* Callbacks through the shared library alone: a built-in callback by class name, clones, its
 * class name, an unknown class and NULL arguments as statuses; a callback table (hooks, the
 * borrowed model, logs and NULL logs, an error status naming the hook, destroy); the built-ins
 * by name driven hook by hook (EarlyStopping stopping and restoring weights, CSVLogger's file,
 * TerminateOnNaN), LearningRateScheduler's function, and the progress and warning routes.
 * Plain C99 (plus POSIX mkstemp). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

static void test_create(void) {
  kiln_callback *h = NULL, *h2 = NULL;
  EXPECT_OK(kiln_callback_create(&h, "History", NULL));
  CHECK(h != NULL);
  CHECK(strcmp(kiln_callback_get_class_name(h), "History") == 0);
  EXPECT_OK(kiln_callback_clone(&h2, h));
  kiln_callback_free(h);
  CHECK(strcmp(kiln_callback_get_class_name(h2), "History") == 0);
  kiln_callback_free(h2);
  kiln_callback_free(NULL);
  CHECK(kiln_callback_get_class_name(NULL) == NULL);
}

static void test_errors(void) {
  kiln_callback *h = NULL;
  EXPECT_ERROR(kiln_callback_create(&h, "NoSuchCallback", NULL), KILN_STATUS_NOT_FOUND, "NoSuchCallback", "History");
  CHECK(h == NULL);
  EXPECT_ERROR(kiln_callback_create(NULL, "History", NULL), KILN_STATUS_INVALID_ARGUMENT, "out", "NULL");
  EXPECT_ERROR(kiln_callback_create(&h, NULL, NULL), KILN_STATUS_INVALID_ARGUMENT, "class_name", "NULL");
  EXPECT_ERROR(kiln_callback_clone(&h, NULL), KILN_STATUS_INVALID_ARGUMENT, "callback", "NULL");
}

/* A Dense(2) layer built for 3 features: the model the callbacks act on. */
static kiln_layer *make_model(void) {
  kiln_config *c = NULL;
  kiln_layer *m = NULL;
  int64_t dims[2] = {-1, 3};
  size_t rank = 2;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_int(c, "units", 2));
  EXPECT_OK(kiln_layer_create(&m, "Dense", c));
  EXPECT_OK(kiln_layer_build(m, dims, &rank, 1));
  kiln_config_free(c);
  return m;
}

/* Sets every element of every variable of the model to value. */
static void fill_weights(kiln_layer *model, float value) {
  kiln_variable *vars[4] = {NULL, NULL, NULL, NULL};
  size_t n = 0, i;
  float data[6];
  EXPECT_OK(kiln_layer_get_variables(vars, 4, &n, model, KILN_VARIABLES_ALL));
  for (i = 0; i < 6; ++i) data[i] = value;
  for (i = 0; i < n && i < 4; ++i) {
    kiln_tensor *t = NULL;
    EXPECT_OK(kiln_variable_read(&t, vars[i]));
    {
      const int64_t *dims = kiln_tensor_get_dims(t);
      kiln_tensor *v = f32((int)kiln_tensor_get_rank(t), dims, data);
      EXPECT_OK(kiln_variable_assign(vars[i], v));
    }
    kiln_tensor_free(t);
    kiln_variable_free(vars[i]);
  }
}

static float first_weight(kiln_layer *model) {
  kiln_variable *v = NULL;
  kiln_tensor *t = NULL;
  size_t n = 0;
  float w;
  EXPECT_OK(kiln_layer_get_variables(&v, 1, &n, model, KILN_VARIABLES_ALL));
  EXPECT_OK(kiln_variable_read(&t, v));
  w = fdata(t)[0];
  kiln_tensor_free(t);
  kiln_variable_free(v);
  return w;
}

/* Runs hook on_epoch_end(epoch) with logs {"loss": 1.0, name: value}. */
static kiln_status *epoch_end(kiln_callback *cb, int64_t epoch, const char *name, double value) {
  kiln_config *logs = NULL;
  kiln_status *st;
  EXPECT_OK(kiln_config_create(&logs));
  EXPECT_OK(kiln_config_set_float(logs, "loss", 1.0));
  EXPECT_OK(kiln_config_set_float(logs, name, value));
  st = kiln_callback_call_hook(cb, "on_epoch_end", epoch, logs);
  kiln_config_free(logs);
  return st;
}

static int64_t get_int(const kiln_config *c, const char *key) {
  int64_t v = -99;
  EXPECT_OK(kiln_config_get_int(&v, c, key));
  return v;
}

/* ---- a callback table ---- */

typedef struct Trace {
  int train_begin, epoch_ends, destroyed, begin_logs_empty, model_seen;
  int64_t last_epoch;
  double last_loss;
  char model_class[32];
} Trace;

static kiln_status *trace_train_begin(kiln_layer *model, const kiln_config *logs, void *ud) {
  Trace *t = (Trace *)ud;
  (void)model;
  ++t->train_begin;
  t->begin_logs_empty = logs != NULL && kiln_config_get_size(logs) == 0;
  return NULL;
}

static kiln_status *trace_epoch_end(kiln_layer *model, int64_t epoch, const kiln_config *logs, void *ud) {
  Trace *t = (Trace *)ud;
  kiln_status *st;
  if (epoch == 7) return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "epoch 7 is one too many");
  ++t->epoch_ends;
  t->last_epoch = epoch;
  st = kiln_config_get_float(&t->last_loss, logs, "loss");
  if (st) return st;
  if (model) {
    t->model_seen = 1;
    snprintf(t->model_class, sizeof t->model_class, "%s", kiln_layer_get_class_name(model));
  }
  return NULL;
}

static void trace_destroy(void *ud) { ++((Trace *)ud)->destroyed; }

static void test_custom_table(void) {
  Trace t;
  kiln_callback_table table;
  kiln_callback *cb = NULL, *clone = NULL;
  kiln_layer *model = make_model();
  kiln_config *logs = NULL, *params = NULL;
  memset(&t, 0, sizeof t);
  memset(&table, 0, sizeof table);
  table.struct_size = sizeof table;
  table.on_train_begin = trace_train_begin;
  table.on_epoch_end = trace_epoch_end;
  table.destroy = trace_destroy;
  EXPECT_OK(kiln_callback_create_custom(&cb, "MyCallback", &table, &t));
  CHECK(strcmp(kiln_callback_get_class_name(cb), "MyCallback") == 0);
  /* outside fit: no model until set_model; NULL logs reach the hook as empty ones (Keras's {}) */
  EXPECT_OK(kiln_callback_call_hook(cb, "on_train_begin", 0, NULL));
  CHECK(t.train_begin == 1 && t.begin_logs_empty == 1);
  EXPECT_OK(epoch_end(cb, 2, "val_loss", 0.5));
  CHECK(t.epoch_ends == 1 && t.last_epoch == 2 && t.last_loss == 1.0 && t.model_seen == 0);
  EXPECT_OK(kiln_callback_set_model(cb, model));
  EXPECT_OK(epoch_end(cb, 3, "val_loss", 0.5));
  CHECK(t.model_seen == 1 && strcmp(t.model_class, "Dense") == 0);
  /* hooks the table leaves NULL do nothing */
  EXPECT_OK(kiln_callback_call_hook(cb, "on_predict_batch_end", 0, NULL));
  /* an error status comes back with its code, naming the callback and the hook */
  EXPECT_ERROR(epoch_end(cb, 7, "val_loss", 0.5), KILN_STATUS_OUT_OF_RANGE, "MyCallback on_epoch_end",
               "epoch 7 is one too many");
  EXPECT_ERROR(kiln_callback_call_hook(cb, "on_epoch_finish", 0, NULL), INVALID, "on_epoch_finish", "on_epoch_end");
  /* params as fit set them (defaults here) */
  EXPECT_OK(kiln_callback_get_params(&params, cb));
  CHECK(get_int(params, "epochs") == 1 && get_int(params, "steps") == -1);
  kiln_config_free(params);
  /* destroy runs once, when the last handle goes */
  EXPECT_OK(kiln_callback_clone(&clone, cb));
  kiln_callback_free(cb);
  CHECK(t.destroyed == 0);
  kiln_callback_free(clone);
  CHECK(t.destroyed == 1);

  /* bad tables */
  table.struct_size = 8;
  EXPECT_ERROR(kiln_callback_create_custom(&cb, "MyCallback", &table, &t), INVALID, "struct_size",
               "sizeof(kiln_callback_table)");
  table.struct_size = sizeof table;
  EXPECT_ERROR(kiln_callback_create_custom(&cb, "", &table, &t), INVALID, "class_name", "empty");
  EXPECT_ERROR(kiln_callback_create_custom(&cb, "MyCallback", NULL, &t), INVALID, "table", "NULL");
  CHECK(t.destroyed == 1); /* failures leave user_data to the caller */
  (void)logs;
  kiln_layer_free(model);
}

/* ---- the built-ins by name ---- */

static char g_printed[1024];
static void capture(const char *text, void *ud) {
  size_t used = strlen(g_printed);
  (void)ud;
  snprintf(g_printed + used, sizeof g_printed - used, "%s", text);
}

static void test_early_stopping(void) {
  kiln_layer *model = make_model();
  kiln_config *c = NULL, *attrs = NULL;
  kiln_callback *es = NULL;
  static const double values[4] = {0.9, 0.3, 0.5, 0.4};
  int64_t e;
  g_printed[0] = '\0';
  EXPECT_OK(kiln_set_progress_callback(capture, NULL, NULL));
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_int(c, "patience", 1));
  EXPECT_OK(kiln_config_set_bool(c, "restore_best_weights", true));
  EXPECT_OK(kiln_config_set_int(c, "verbose", 1));
  EXPECT_OK(kiln_callback_create(&es, "EarlyStopping", c));
  EXPECT_OK(kiln_callback_set_model(es, model));
  EXPECT_OK(kiln_callback_call_hook(es, "on_train_begin", 0, NULL));
  for (e = 0; e < 4; ++e) {
    fill_weights(model, (float)e); /* the weights "trained" in epoch e */
    EXPECT_OK(epoch_end(es, e, "val_loss", values[e]));
    EXPECT_OK(kiln_callback_get_attributes(&attrs, es));
    if (get_int(attrs, "stopped_epoch") > 0) e = 4; /* fit stops here */
    kiln_config_free(attrs);
  }
  EXPECT_OK(kiln_callback_call_hook(es, "on_train_end", 0, NULL));
  EXPECT_OK(kiln_callback_get_attributes(&attrs, es));
  CHECK(get_int(attrs, "stopped_epoch") == 2 && get_int(attrs, "best_epoch") == 1);
  kiln_config_free(attrs);
  CHECK(first_weight(model) == 1.0f); /* restored to the best epoch's */
  CHECK(strstr(g_printed, "Epoch 3: early stopping\n") != NULL);
  CHECK(strstr(g_printed, "Restoring model weights from the end of the best epoch: 2.") != NULL);
  EXPECT_OK(kiln_set_progress_callback(NULL, NULL, NULL));
  kiln_callback_free(es);

  /* bad settings and unknown keys are errors naming them */
  EXPECT_OK(kiln_config_set_string(c, "mode", "maximum"));
  EXPECT_ERROR(kiln_callback_create(&es, "EarlyStopping", c), INVALID, "maximum", "'auto', 'min' or 'max'");
  EXPECT_OK(kiln_config_remove(c, "mode"));
  EXPECT_OK(kiln_config_set_int(c, "patiense", 1));
  EXPECT_ERROR(kiln_callback_create(&es, "EarlyStopping", c), INVALID, "patiense", "EarlyStopping");
  kiln_config_free(c);
  kiln_layer_free(model);
}

static char g_warned[512];
static void capture_warning(const char *text, void *ud) {
  (void)ud;
  snprintf(g_warned, sizeof g_warned, "%s", text);
}

static void test_missing_monitor_warns(void) {
  kiln_callback *cb = NULL;
  g_warned[0] = '\0';
  EXPECT_OK(kiln_set_warning_callback(capture_warning, NULL));
  EXPECT_OK(kiln_callback_create(&cb, "ReduceLROnPlateau", NULL));
  /* ReduceLROnPlateau reads the optimizer first: without compile it is a clear error */
  EXPECT_ERROR(epoch_end(cb, 0, "val_los", 1.0), KILN_STATUS_FAILED_PRECONDITION, "ReduceLROnPlateau", "model");
  kiln_callback_free(cb);
  EXPECT_OK(kiln_callback_create(&cb, "EarlyStopping", NULL));
  EXPECT_OK(epoch_end(cb, 0, "val_los", 1.0));
  CHECK(strstr(g_warned, "`val_loss` which is not available. Available metrics are: loss,val_los") != NULL);
  EXPECT_OK(kiln_set_warning_callback(NULL, NULL));
  kiln_callback_free(cb);
}

static void test_csv_logger(void) {
  char path[] = "/tmp/kiln_capi_csv_XXXXXX";
  char text[256];
  size_t n;
  FILE *f;
  kiln_config *c = NULL;
  kiln_callback *cb = NULL;
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  close(fd);
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_string(c, "filename", path));
  EXPECT_OK(kiln_config_set_string(c, "separator", ";"));
  EXPECT_OK(kiln_callback_create(&cb, "CSVLogger", c));
  EXPECT_OK(kiln_callback_call_hook(cb, "on_train_begin", 0, NULL));
  EXPECT_OK(epoch_end(cb, 0, "val_loss", 0.25));
  EXPECT_OK(kiln_callback_call_hook(cb, "on_train_end", 0, NULL));
  f = fopen(path, "rb");
  CHECK(f != NULL);
  if (f) {
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECK(strcmp(text, "epoch;loss;val_loss\r\n0;1.0;0.25\r\n") == 0);
  }
  remove(path);
  kiln_callback_free(cb);
  kiln_config_free(c);
  EXPECT_ERROR(kiln_callback_create(&cb, "CSVLogger", NULL), INVALID, "CSVLogger", "filename");
}

static kiln_status *halve(double *out_lr, int64_t epoch, double lr, void *ud) {
  ++*(int *)ud;
  *out_lr = epoch == 0 ? lr : lr / 2;
  return NULL;
}
static void count_destroy(void *ud) { *(int *)ud += 100; }

static void test_lr_scheduler(void) {
  int calls = 0;
  kiln_callback *cb = NULL;
  kiln_layer *model = make_model();
  EXPECT_OK(kiln_callback_create_lr_scheduler(&cb, 0, halve, count_destroy, &calls));
  CHECK(strcmp(kiln_callback_get_class_name(cb), "LearningRateScheduler") == 0);
  EXPECT_OK(kiln_callback_set_model(cb, model));
  /* the model has no optimizer before compile */
  EXPECT_ERROR(kiln_callback_call_hook(cb, "on_epoch_begin", 0, NULL), KILN_STATUS_FAILED_PRECONDITION,
               "LearningRateScheduler", "compile");
  EXPECT_ERROR(kiln_callback_create_lr_scheduler(&cb, 0, NULL, NULL, NULL), INVALID, "schedule", "NULL");
  EXPECT_ERROR(kiln_callback_create(&cb, "LearningRateScheduler", NULL), INVALID, "schedule function",
               "kiln_callback_create_lr_scheduler");
  kiln_callback_free(cb);
  CHECK(calls == 100); /* destroyed with the callback, never called */
  kiln_layer_free(model);
}

static void test_terminate_on_nan(void) {
  kiln_callback *cb = NULL;
  kiln_config *c = NULL, *logs = NULL;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_bool(c, "raise_error", true));
  EXPECT_OK(kiln_callback_create(&cb, "TerminateOnNaN", c));
  EXPECT_OK(kiln_config_create(&logs));
  EXPECT_OK(kiln_config_set_float(logs, "loss", 0.5));
  EXPECT_OK(kiln_callback_call_hook(cb, "on_train_batch_end", 3, logs));
  kiln_config_free(logs);
  logs = NULL;
  EXPECT_OK(kiln_config_from_json(&logs, "{\"loss\": NaN}")); /* Python's json spelling */
  EXPECT_ERROR(kiln_callback_call_hook(cb, "on_train_batch_end", 4, logs), KILN_STATUS_FAILED_PRECONDITION,
               "batch 4", "nan");
  kiln_config_free(logs);
  kiln_config_free(c);
  kiln_callback_free(cb);
}

/* SwapEMAWeights by name: its key, and a clear error on an uncompiled model. */
static void test_swap_ema_weights(void) {
  kiln_callback *cb = NULL, *bad = NULL;
  kiln_config *c = NULL;
  kiln_layer *model = NULL;
  kiln_config *dense = NULL;
  EXPECT_OK(kiln_config_from_json(&c, "{\"swap_on_epoch\": true}"));
  EXPECT_OK(kiln_callback_create(&cb, "SwapEMAWeights", c));
  kiln_config_free(c);
  c = NULL;
  EXPECT_OK(kiln_config_from_json(&c, "{\"swap_on_epochs\": true}"));
  EXPECT_ERROR(kiln_callback_create(&bad, "SwapEMAWeights", c), KILN_STATUS_INVALID_ARGUMENT,
               "swap_on_epochs", NULL);
  CHECK(bad == NULL);
  EXPECT_OK(kiln_config_from_json(&dense, "{\"units\": 2}"));
  EXPECT_OK(kiln_layer_create(&model, "Dense", dense));
  EXPECT_OK(kiln_callback_set_model(cb, model));
  EXPECT_ERROR(kiln_callback_call_hook(cb, "on_test_begin", 0, NULL), KILN_STATUS_FAILED_PRECONDITION,
               "compile", NULL);
  kiln_config_free(dense);
  kiln_config_free(c);
  kiln_callback_free(cb);
  kiln_layer_free(model);
}

static void test_history(void) {
  kiln_callback *h = NULL, *bar = NULL;
  kiln_config *r = NULL, *values = NULL;
  size_t n = 99;
  EXPECT_OK(kiln_callback_create(&h, "History", NULL));
  EXPECT_OK(kiln_callback_get_history(&r, h));
  EXPECT_OK(kiln_config_get_int_list(&n, NULL, 0, r, "epoch"));
  CHECK(n == 0);
  EXPECT_OK(kiln_config_get_config(&values, r, "history"));
  CHECK(kiln_config_get_size(values) == 0);
  kiln_config_free(values);
  kiln_config_free(r);
  r = NULL;
  EXPECT_OK(kiln_callback_create(&bar, "ProgbarLogger", NULL));
  EXPECT_ERROR(kiln_callback_get_history(&r, bar), KILN_STATUS_FAILED_PRECONDITION, "ProgbarLogger", "History");
  CHECK(r == NULL);
  EXPECT_ERROR(kiln_callback_get_history(NULL, h), KILN_STATUS_INVALID_ARGUMENT, "out", "NULL");
  EXPECT_ERROR(kiln_callback_get_history(&r, NULL), KILN_STATUS_INVALID_ARGUMENT, "callback", "NULL");
  kiln_callback_free(bar);
  kiln_callback_free(h);
}

int main(void) {
  test_create();
  test_history();
  test_errors();
  test_custom_table();
  test_early_stopping();
  test_missing_monitor_warns();
  test_csv_logger();
  test_lr_scheduler();
  test_terminate_on_nan();
  test_swap_ema_weights();
  return test_summary();
}
