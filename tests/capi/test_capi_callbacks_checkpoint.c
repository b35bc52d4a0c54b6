/* ModelCheckpoint and BackupAndRestore through the shared library alone, made by class name with
 * a config of Keras's arguments: ModelCheckpoint writes a checkpoint per epoch under its formatted
 * name and prints Keras 2's line; a name the logs lack is INVALID_ARGUMENT; a fit that fails in
 * its second epoch (a callback table returning an error) resumes from BackupAndRestore's backup
 * with a fresh model and optimizer at that epoch, ends bit-identical to an uninterrupted fit, and
 * deletes the backup; bad configs are INVALID_ARGUMENT. Plain C99 (plus POSIX mkdtemp). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define N 40
#define F 3
#define MAX_PARAMS 64

static float g_x[N * F];
static float g_y[N];
static char g_dir[64];

static void make_problem(void) { regression_problem(g_x, g_y, N, F, 5u); }

static int exists(const char *path) { return access(path, F_OK) == 0; }

static const char *path_in(const char *name) {
  static char buf[256];
  snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
  return buf;
}

/* Sequential([Dense(4, relu), Dense(1)]) built for (None, 3), with Adam(0.01) and mse; the same
 * initial weights for the same seed. */
static kiln_layer *make_model(uint64_t seed) {
  return compiled_sequential(
      "[{\"class_name\": \"Dense\", \"config\": {\"units\": 4, \"activation\": \"relu\"}}, "
      "{\"class_name\": \"Dense\", \"config\": {\"units\": 1}}]",
      F, "mse", 0.01, seed);
}

/* fit(x, y, batch_size=10 (4 batches), epochs, shuffle=False, verbose=0, callbacks), with
 * validation_split=0.25 (3 batches) when asked; *out_history gets the History when not NULL. */
static kiln_status *fit(kiln_callback **out_history, kiln_layer *m, int64_t epochs, kiln_callback *const *cbs,
                        size_t n, int validation) {
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
  fo.shuffle = false;
  fo.validation_split = validation ? 0.25 : 0.0;
  fo.callbacks = cbs;
  fo.num_callbacks = n;
  st = kiln_model_fit(out_history, m, &fo);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  return st;
}

/* Every weight of the model, in order; returns their number. */
static size_t read_weights(float *out, const kiln_layer *m) {
  kiln_variable *vars[8];
  size_t n = 0, i, total = 0;
  EXPECT_OK(kiln_layer_get_variables(vars, 8, &n, m, KILN_VARIABLES_ALL));
  for (i = 0; i < n && i < 8; ++i) {
    kiln_tensor *t = NULL;
    EXPECT_OK(kiln_variable_read(&t, vars[i]));
    if (t) {
      size_t count = kiln_tensor_get_byte_size(t) / sizeof(float);
      if (total + count <= MAX_PARAMS) memcpy(out + total, fdata(t), count * sizeof(float));
      total += count;
    }
    kiln_tensor_free(t);
    kiln_variable_free(vars[i]);
  }
  return total;
}

static kiln_callback *by_name(const char *name, const char *json) {
  kiln_config *c = NULL;
  kiln_callback *cb = NULL;
  EXPECT_OK(kiln_config_from_json(&c, json));
  EXPECT_OK(kiln_callback_create(&cb, name, c));
  kiln_config_free(c);
  return cb;
}

static char g_printed[4096];

static void on_text(const char *text, void *user_data) {
  size_t used = strlen(g_printed);
  (void)user_data;
  strncat(g_printed, text, sizeof g_printed - used - 1);
}

/* ---- a callback that fails at (epoch, batch), as a crash would, and logs the epochs run ---- */

typedef struct Crash {
  int64_t at_epoch, at_batch, epoch;
  int64_t epochs[8];
  int num_epochs;
} Crash;

static kiln_status *crash_epoch_begin(kiln_layer *model, int64_t epoch, const kiln_config *logs, void *ud) {
  Crash *c = (Crash *)ud;
  (void)model;
  (void)logs;
  c->epoch = epoch;
  if (c->num_epochs < 8) c->epochs[c->num_epochs++] = epoch;
  return NULL;
}

static kiln_status *crash_batch_begin(kiln_layer *model, int64_t batch, const kiln_config *logs, void *ud) {
  Crash *c = (Crash *)ud;
  (void)model;
  (void)logs;
  if (c->epoch == c->at_epoch && batch == c->at_batch)
    return kiln_status_create(KILN_STATUS_INTERNAL, "the machine went down");
  return NULL;
}

static kiln_callback *crash_callback(Crash *c, int64_t at_epoch, int64_t at_batch) {
  kiln_callback_table t;
  kiln_callback *cb = NULL;
  memset(c, 0, sizeof *c);
  c->at_epoch = at_epoch;
  c->at_batch = at_batch;
  c->epoch = -1;
  memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  t.on_epoch_begin = crash_epoch_begin;
  t.on_train_batch_begin = crash_batch_begin;
  EXPECT_OK(kiln_callback_create_custom(&cb, "Crash", &t, c));
  return cb;
}

static void test_model_checkpoint(void) {
  char json[512];
  const char *expected_line;
  kiln_layer *m = make_model(1);
  kiln_callback *cb;
  kiln_config *attrs = NULL;
  int64_t since = -1;
  snprintf(json, sizeof json,
           "{\"filepath\": \"%s/w.{epoch:02d}\", \"verbose\": 1, \"save_weights_only\": true, \"save_freq\": "
           "\"epoch\"}",
           g_dir);
  cb = by_name("ModelCheckpoint", json);
  CHECK(strcmp(kiln_callback_get_class_name(cb), "ModelCheckpoint") == 0);
  g_printed[0] = '\0';
  EXPECT_OK(kiln_set_progress_callback(on_text, NULL, NULL));
  EXPECT_OK(fit(NULL, m, 2, &cb, 1, 1));
  EXPECT_OK(kiln_set_progress_callback(NULL, NULL, NULL));
  CHECK(exists(path_in("w.01.index")) && exists(path_in("w.01.data-00000-of-00001")));
  CHECK(exists(path_in("w.02.index")) && exists(path_in("checkpoint")));
  snprintf(json, sizeof json, "\nEpoch 2: saving model to %s/w.02\n", g_dir);
  expected_line = json;
  CHECK(strstr(g_printed, expected_line) != NULL);
  EXPECT_OK(kiln_callback_get_attributes(&attrs, cb));
  EXPECT_OK(kiln_config_get_int(&since, attrs, "epochs_since_last_save"));
  CHECK(since == 0);
  kiln_config_free(attrs);
  kiln_callback_free(cb);

  /* Keras's KeyError: a name the logs lack (no validation here, so no val_loss) */
  snprintf(json, sizeof json, "{\"filepath\": \"%s/w.{val_loss:.2f}\"}", g_dir);
  cb = by_name("ModelCheckpoint", json);
  EXPECT_ERROR(fit(NULL, m, 1, &cb, 1, 0), KILN_STATUS_INVALID_ARGUMENT, "KeyError: 'val_loss'",
               "epoch, loss");
  kiln_callback_free(cb);

  /* A .keras (or HDF5) filepath is refused when the callback is made: kiln writes SavedModel
   * directories and TensorFlow-format checkpoints. */
  {
    kiln_config *c = NULL;
    cb = NULL;
    snprintf(json, sizeof json, "{\"filepath\": \"%s/model_{epoch}.keras\"}", g_dir);
    EXPECT_OK(kiln_config_from_json(&c, json));
    EXPECT_ERROR(kiln_callback_create(&cb, "ModelCheckpoint", c), KILN_STATUS_UNIMPLEMENTED, "HDF5 or .keras",
                 "model_{epoch}.keras");
    CHECK(cb == NULL);
    kiln_config_free(c);
  }
  kiln_layer_free(m);
  remove(path_in("w.01.index"));
  remove(path_in("w.01.data-00000-of-00001"));
  remove(path_in("w.02.index"));
  remove(path_in("w.02.data-00000-of-00001"));
  remove(path_in("checkpoint"));
}

static void test_backup_and_restore_resumes(void) {
  float expected[MAX_PARAMS], got[MAX_PARAMS];
  size_t n_expected, n_got;
  char json[256], backup[128];
  kiln_layer *m;
  kiln_callback *cbs[2], *history = NULL;
  kiln_config *record = NULL, *attrs = NULL;
  int64_t epochs[4] = {-1, -1, -1, -1}, resumed = -1;
  size_t num_epochs = 0;
  Crash crash, log;

  /* uninterrupted */
  m = make_model(7);
  EXPECT_OK(fit(NULL, m, 3, NULL, 0, 0));
  n_expected = read_weights(expected, m);
  kiln_layer_free(m);

  /* dies at batch 2 of epoch 1: the backup holds epoch 0 */
  snprintf(backup, sizeof backup, "%s/backup", g_dir);
  snprintf(json, sizeof json, "{\"backup_dir\": \"%s\"}", backup);
  m = make_model(7);
  cbs[0] = by_name("BackupAndRestore", json);
  cbs[1] = crash_callback(&crash, 1, 2);
  EXPECT_ERROR(fit(NULL, m, 3, cbs, 2, 0), KILN_STATUS_INTERNAL, "the machine went down", NULL);
  CHECK(crash.num_epochs == 2 && crash.epochs[1] == 1);
  CHECK(exists(path_in("backup/chief/checkpoint")));
  kiln_callback_free(cbs[0]);
  kiln_callback_free(cbs[1]);
  kiln_layer_free(m);

  /* a fresh model and optimizer continue at epoch 1 */
  m = make_model(7);
  cbs[0] = by_name("BackupAndRestore", json);
  cbs[1] = crash_callback(&log, -1, -1);
  EXPECT_OK(fit(&history, m, 3, cbs, 2, 0));
  EXPECT_OK(kiln_callback_get_history(&record, history));
  EXPECT_OK(kiln_config_get_int_list(&num_epochs, epochs, 4, record, "epoch"));
  CHECK(num_epochs == 2 && epochs[0] == 1 && epochs[1] == 2);
  CHECK(log.num_epochs == 2 && log.epochs[0] == 1 && log.epochs[1] == 2);
  EXPECT_OK(kiln_callback_get_attributes(&attrs, cbs[0]));
  EXPECT_OK(kiln_config_get_int(&resumed, attrs, "resumed_epoch"));
  CHECK(resumed == 1);
  n_got = read_weights(got, m);
  CHECK(n_got == n_expected && n_got <= MAX_PARAMS);
  CHECK(n_got <= MAX_PARAMS && memcmp(got, expected, n_got * sizeof(float)) == 0); /* bit for bit */
  CHECK(!exists(backup));                                                          /* deleted on completion */
  kiln_config_free(attrs);
  kiln_config_free(record);
  kiln_callback_free(history);
  kiln_callback_free(cbs[0]);
  kiln_callback_free(cbs[1]);
  kiln_layer_free(m);
}

static void test_bad_configs(void) {
  kiln_callback *cb = NULL;
  static const char *const bad[][3] = {
      {"ModelCheckpoint", "{}", "'filepath' is required"},
      {"ModelCheckpoint", "{\"filepath\": \"w\", \"save_freq\": \"batch\"}", "unrecognized save_freq"},
      {"ModelCheckpoint", "{\"filepath\": \"w\", \"save_freq\": 0}", "save_freq is 0"},
      {"ModelCheckpoint", "{\"filepath\": \"w\", \"mode\": \"up\"}", "mode 'up' is unknown"},
      {"ModelCheckpoint", "{\"filepath\": \"w\", \"period\": 2}", "period"},
      {"BackupAndRestore", "{}", "'backup_dir' is required"},
      {"BackupAndRestore", "{\"backup_dir\": \"b\", \"save_freq\": -2}", "save_freq is -2"},
      {"BackupAndRestore", "{\"backup_dir\": \"b\", \"save_before_preemption\": true}",
       "save_before_preemption"},
  };
  expect_bad_callback_configs(bad, sizeof bad / sizeof bad[0]);
  /* the defaults of everything but the path */
  cb = by_name("BackupAndRestore",
               "{\"backup_dir\": \"b\", \"save_freq\": false, \"delete_checkpoint\": false}");
  CHECK(cb != NULL);
  kiln_callback_free(cb);
}

int main(void) {
  strcpy(g_dir, "/tmp/kiln_capi_cbckpt_XXXXXX");
  if (!mkdtemp(g_dir)) {
    fprintf(stderr, "mkdtemp failed\n");
    return 1;
  }
  make_problem();
  test_model_checkpoint();
  test_backup_and_restore_resumes();
  test_bad_configs();
  rmdir(g_dir);
  return test_summary();
}
