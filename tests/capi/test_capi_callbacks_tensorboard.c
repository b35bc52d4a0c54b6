/* The TensorBoard and HParams callbacks through the shared library alone, made by class name with
 * a config of Keras's arguments: a fit with validation writes <log_dir>/train and
 * <log_dir>/validation, one event file each, read back with kiln_summary_read_events: the
 * epoch_* scalars equal the History's values at steps 0, 1, ...; epoch_learning_rate; batch_*
 * every batch (update_freq "batch"); weight histograms whose counts sum to the weights' sizes;
 * evaluation_*_vs_iterations at the optimizer's iterations; the "keras" graph. HParams writes the
 * session start and end in its run directory; bad configs are INVALID_ARGUMENT naming the
 * callback. Plain C99 (plus POSIX mkdtemp, opendir). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define N 40
#define F 3
#define EPOCHS 2
#define STEPS 3 /* 30 training rows in batches of 10 */

static float g_x[N * F];
static float g_y[N];
static char g_dir[64];

static void make_problem(void) { regression_problem(g_x, g_y, N, F, 9u); }

/* Sequential([Dense(4, relu) "dense", Dense(1) "dense_1"]) built for (None, 3), with Adam(0.01)
 * and mse. */
static kiln_layer *make_model(void) {
  return compiled_sequential(
      "[{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 4, \"activation\": "
      "\"relu\"}}, "
      "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense_1\", \"units\": 1}}]",
      F, "mse", 0.01, 3);
}

/* fit(x, y, batch_size=10, epochs, shuffle=False, verbose=0, validation_split=0.25). */
static kiln_status *fit(kiln_callback **out_history, kiln_layer *m, kiln_callback *const *cbs, size_t n) {
  int64_t xd[2] = {N, F}, yd[2] = {N, 1};
  kiln_tensor_list *x = list1(make(F32, 2, xd, g_x)), *y = list1(make(F32, 2, yd, g_y));
  kiln_fit_options fo;
  kiln_status *st;
  EXPECT_OK(kiln_fit_options_init(&fo, sizeof fo));
  fo.x = x;
  fo.y = y;
  fo.batch_size = 10;
  fo.epochs = EPOCHS;
  fo.verbose = 0;
  fo.shuffle = false;
  fo.validation_split = 0.25;
  fo.callbacks = cbs;
  fo.num_callbacks = n;
  st = kiln_model_fit(out_history, m, &fo);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  release_kept();
  return st;
}

static kiln_callback *by_name(const char *name, const char *json) {
  kiln_config *c = NULL;
  kiln_callback *cb = NULL;
  EXPECT_OK(kiln_config_from_json(&c, json));
  EXPECT_OK(kiln_callback_create(&cb, name, c));
  kiln_config_free(c);
  return cb;
}

/* The path of the one event file in dir (into out); the number of event files there. */
static int event_file_in(char *out, size_t size, const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  if (!d) return 0;
  while ((e = readdir(d)) != NULL) {
    if (!strstr(e->d_name, "tfevents")) continue;
    snprintf(out, size, "%s/%s", dir, e->d_name);
    ++n;
  }
  closedir(d);
  return n;
}

/* The events of the one event file in dir (NULL after a counted failure). */
static kiln_config *read_run(const char *dir) {
  char path[512];
  kiln_config *events = NULL;
  const int n = event_file_in(path, sizeof path, dir);
  CHECK(n == 1);
  if (n != 1) return NULL;
  EXPECT_OK(kiln_summary_read_events(&events, path));
  return events;
}

typedef struct Series {
  int64_t steps[32];
  double values[32]; /* scalars; for histograms the sum of the counts */
  int n;
} Series;

/* The sum of the counts of a histogram value: its rows [left, right, count] are a list of lists,
 * read from the value's JSON. */
static double histogram_count(const kiln_config *v) {
  static const char key[] = "\"histogram\":[";
  char *json = NULL;
  const char *p;
  double total = 0;
  EXPECT_OK(kiln_config_to_json(&json, v, -1));
  if (!json) return -1;
  p = strstr(json, key);
  if (p) {
    p += strlen(key);
    while (*p == '[') {
      double left, right, count;
      int used = 0;
      if (sscanf(p, "[%lf,%lf,%lf]%n", &left, &right, &count, &used) != 3 || used == 0) break;
      total += count;
      p += used;
      if (*p == ',') ++p;
    }
  }
  kiln_string_free(json);
  return total;
}

/* Every value tagged `tag` in file order: its step and scalar (or histogram count). */
static void find_series(Series *s, const kiln_config *file, const char *tag) {
  size_t num_events = 0, i, j;
  memset(s, 0, sizeof *s);
  if (!file) return;
  EXPECT_OK(kiln_config_get_list_size(&num_events, file, "events"));
  for (i = 0; i < num_events; ++i) {
    kiln_config *e = NULL;
    size_t num_values = 0;
    int64_t step = 0;
    EXPECT_OK(kiln_config_get_config_at(&e, file, "events", i));
    EXPECT_OK(kiln_config_get_int(&step, e, "step"));
    if (kiln_config_has(e, "values")) EXPECT_OK(kiln_config_get_list_size(&num_values, e, "values"));
    for (j = 0; j < num_values; ++j) {
      kiln_config *v = NULL;
      const char *t = NULL, *kind = NULL;
      EXPECT_OK(kiln_config_get_config_at(&v, e, "values", j));
      EXPECT_OK(kiln_config_get_string(&t, v, "tag"));
      EXPECT_OK(kiln_config_get_string(&kind, v, "kind"));
      if (t && kind && strcmp(t, tag) == 0 && s->n < 32) {
        double value = 0;
        if (strcmp(kind, "scalar") == 0) EXPECT_OK(kiln_config_get_float(&value, v, "scalar"));
        if (strcmp(kind, "histogram") == 0) value = histogram_count(v);
        s->steps[s->n] = step;
        s->values[s->n] = value;
        ++s->n;
      }
      kiln_config_free(v);
    }
    kiln_config_free(e);
  }
}

static void test_tensorboard(void) {
  char json[512], dir[128];
  kiln_layer *m = make_model();
  kiln_callback *tb, *history = NULL;
  kiln_config *record = NULL, *hist = NULL, *train = NULL, *val = NULL, *attrs = NULL;
  double loss[EPOCHS], val_loss[EPOCHS];
  size_t count = 0;
  Series s;
  int e;
  snprintf(dir, sizeof dir, "%s/tb", g_dir);
  snprintf(json, sizeof json,
           "{\"log_dir\": \"%s\", \"histogram_freq\": 1, \"update_freq\": \"batch\", \"write_images\": true}",
           dir);
  tb = by_name("TensorBoard", json);
  CHECK(tb && strcmp(kiln_callback_get_class_name(tb), "TensorBoard") == 0);
  EXPECT_OK(fit(&history, m, &tb, 1));
  EXPECT_OK(kiln_callback_get_history(&record, history));
  EXPECT_OK(kiln_config_get_config(&hist, record, "history"));
  EXPECT_OK(kiln_config_get_float_list(&count, loss, EPOCHS, hist, "loss"));
  CHECK(count == EPOCHS);
  EXPECT_OK(kiln_config_get_float_list(&count, val_loss, EPOCHS, hist, "val_loss"));
  CHECK(count == EPOCHS);

  snprintf(json, sizeof json, "%s/train", dir);
  train = read_run(json);
  snprintf(json, sizeof json, "%s/validation", dir);
  val = read_run(json);
  CHECK(train != NULL && val != NULL);

  find_series(&s, train, "keras");
  CHECK(s.n == 1 && s.steps[0] == 0);
  find_series(&s, train, "epoch_loss");
  CHECK(s.n == EPOCHS);
  for (e = 0; e < s.n && e < EPOCHS; ++e) CHECK(s.steps[e] == e && s.values[e] == (double)(float)loss[e]);
  find_series(&s, train, "epoch_learning_rate");
  CHECK(s.n == EPOCHS && s.values[0] == (double)0.01f);
  find_series(&s, train, "batch_loss");
  CHECK(s.n == EPOCHS * STEPS);
  for (e = 0; e < s.n && e < EPOCHS * STEPS; ++e) CHECK(s.steps[e] == e + 1);
  find_series(&s, train, "dense/kernel_0/histogram");
  CHECK(s.n == EPOCHS && s.values[0] == 12.0 && s.values[1] == 12.0); /* [3, 4] */
  find_series(&s, train, "dense_1/bias_0/histogram");
  CHECK(s.n == EPOCHS && s.values[1] == 1.0);
  find_series(&s, train, "dense/kernel_0/image");
  CHECK(s.n == EPOCHS);
  find_series(&s, train, "epoch_val_loss");
  CHECK(s.n == 0);

  find_series(&s, val, "epoch_loss");
  CHECK(s.n == EPOCHS);
  for (e = 0; e < s.n && e < EPOCHS; ++e) CHECK(s.steps[e] == e && s.values[e] == (double)(float)val_loss[e]);
  find_series(&s, val, "evaluation_loss_vs_iterations");
  CHECK(s.n == EPOCHS);
  for (e = 0; e < s.n && e < EPOCHS; ++e)
    CHECK(s.steps[e] == STEPS * (e + 1) && s.values[e] == (double)(float)val_loss[e]);

  /* the event files' paths, as attributes */
  EXPECT_OK(kiln_callback_get_attributes(&attrs, tb));
  if (attrs) {
    const char *path = NULL;
    EXPECT_OK(kiln_config_get_string(&path, attrs, "train_event_file"));
    CHECK(path && strstr(path, "/tb/train/events.out.tfevents.") != NULL);
  }
  kiln_config_free(attrs);
  kiln_config_free(train);
  kiln_config_free(val);
  kiln_config_free(hist);
  kiln_config_free(record);
  kiln_callback_free(history);
  kiln_callback_free(tb);
  kiln_layer_free(m);
}

static void test_hparams(void) {
  char json[512], dir[128];
  kiln_layer *m = make_model();
  kiln_callback *cbs[2];
  kiln_config *run = NULL;
  char *text = NULL;
  Series s;
  snprintf(dir, sizeof dir, "%s/hp", g_dir);
  snprintf(
      json, sizeof json,
      "{\"log_dir\": \"%s\", \"hparams\": {\"units\": 4, \"optimizer\": \"adam\"}, \"trial_id\": \"t1\"}",
      dir);
  cbs[0] = by_name("HParams", json);
  snprintf(json, sizeof json, "{\"log_dir\": \"%s\"}", dir);
  cbs[1] = by_name("TensorBoard", json);
  EXPECT_OK(fit(NULL, m, cbs, 2));
  run = read_run(dir);
  find_series(&s, run, "_hparams_/session_start_info");
  CHECK(s.n == 1 && s.steps[0] == 0);
  find_series(&s, run, "_hparams_/session_end_info");
  CHECK(s.n == 1);
  if (run) {
    EXPECT_OK(kiln_config_to_json(&text, run, -1));
    CHECK(text && strstr(text, "\"group_name\":\"t1\"") != NULL);
    CHECK(text && strstr(text, "\"optimizer\":\"adam\"") != NULL);
    CHECK(text && strstr(text, "STATUS_SUCCESS") != NULL);
    kiln_string_free(text);
  }
  kiln_config_free(run);
  kiln_callback_free(cbs[0]);
  kiln_callback_free(cbs[1]);
  kiln_layer_free(m);
}

static void test_bad_configs(void) {
  static const char *const bad[][3] = {
      {"TensorBoard", "{\"embeddings_freq\": 2}", "not supported"},
      {"TensorBoard", "{\"update_freq\": \"often\"}", "update_freq 'often'"},
      {"TensorBoard", "{\"profile_batch\": \"4,1\"}", "profile_batch"},
      {"TensorBoard", "{\"histogram_freq\": -2}", "histogram_freq is -2"},
      {"TensorBoard", "{\"logdir\": \"x\"}", "logdir"},
      {"HParams", "{\"hparams\": {}}", "'log_dir' is required"},
      {"HParams", "{\"log_dir\": \"x\", \"hparams\": {\"a\": {\"b\": 1}}}", "hparam 'a'"},
  };
  expect_bad_callback_configs(bad, sizeof bad / sizeof bad[0]);
}

int main(void) {
  strcpy(g_dir, "/tmp/kiln_capi_cbtb_XXXXXX");
  if (!mkdtemp(g_dir)) {
    fprintf(stderr, "mkdtemp failed\n");
    return 1;
  }
  make_problem();
  test_tensorboard();
  test_hparams();
  test_bad_configs();
  remove_tree(g_dir);
  return test_summary();
}
