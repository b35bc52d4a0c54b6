/* TensorBoard logging from plain C (kiln/summary.h): TF2's metrics pattern (a Mean updated per
 * batch, written every N optimizer steps with the step bound to optimizer.iterations, then reset),
 * every summary kind read back through kiln_summary_read_events, the default-writer stack, and
 * errors for NULL arguments, bad options and a damaged file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capi_test_util.h"

static char g_root[64];

static kiln_summary_writer *new_writer(const char *name) {
  char dir[128];
  kiln_summary_writer *w = NULL;
  snprintf(dir, sizeof dir, "%s/%s", g_root, name);
  EXPECT_OK(kiln_summary_create_file_writer(&w, dir, NULL));
  return w;
}

/* Value i of event e of a read file. */
static kiln_config *value_at(const kiln_config *file, size_t e, size_t i) {
  kiln_config *ev = NULL, *v = NULL;
  EXPECT_OK(kiln_config_get_config_at(&ev, file, "events", e));
  if (ev) EXPECT_OK(kiln_config_get_config_at(&v, ev, "values", i));
  kiln_config_free(ev);
  return v;
}

static int64_t step_at(const kiln_config *file, size_t e) {
  kiln_config *ev = NULL;
  int64_t step = -1;
  EXPECT_OK(kiln_config_get_config_at(&ev, file, "events", e));
  if (ev) EXPECT_OK(kiln_config_get_int(&step, ev, "step"));
  kiln_config_free(ev);
  return step;
}

static size_t num_events(const kiln_config *file) {
  size_t n = 0;
  EXPECT_OK(kiln_config_get_list_size(&n, file, "events"));
  return n;
}

static void test_metrics_pattern(void) {
  const char *loss = "sparse_categorical_crossentropy";
  kiln_layer *m = NULL, *a = dense_layer(8, "relu"), *b = dense_layer(3, "softmax");
  int64_t dims[2] = {-1, 5};
  size_t rank = 2;
  kiln_config *c = NULL, *file = NULL, *logs = NULL;
  kiln_optimizer *opt = NULL;
  kiln_compile_options co;
  kiln_metric *mean = NULL;
  kiln_summary_writer *w = new_writer("metrics");
  double sums[3] = {0, 0, 0};
  int step;
  size_t e;

  EXPECT_OK(kiln_layer_create(&m, "Sequential", NULL));
  EXPECT_OK(kiln_sequential_add(m, a));
  EXPECT_OK(kiln_sequential_add(m, b));
  EXPECT_OK(kiln_layer_build(m, dims, &rank, 1));
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", 0.01));
  EXPECT_OK(kiln_optimizer_create(&opt, "Adam", c));
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = opt;
  co.loss_names = &loss;
  co.num_loss_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
  EXPECT_OK(kiln_metric_create(&mean, "Mean", NULL));

  /* with writer.as_default(): ...; step=optimizer.iterations */
  EXPECT_OK(kiln_summary_writer_push_default(w, NULL));
  EXPECT_OK(kiln_summary_set_step_optimizer(opt));
  for (step = 0; step < 6; ++step) {
    float x[30];
    int64_t y[6], xd[2] = {6, 5}, yd[1] = {6};
    kiln_tensor_list *xs = NULL, *ys = NULL;
    kiln_tensor *lv = NULL, *result = NULL;
    double l = 0;
    int i;
    for (i = 0; i < 30; ++i) x[i] = (float)(((i + step) * 7) % 17) / 16.0f - 0.5f;
    for (i = 0; i < 6; ++i) y[i] = (i * 7 + step) % 3;
    EXPECT_OK(kiln_tensor_list_create(&xs));
    EXPECT_OK(kiln_tensor_list_create(&ys));
    EXPECT_OK(kiln_tensor_list_append(xs, f32(2, xd, x)));
    EXPECT_OK(kiln_tensor_list_append(ys, make(I64, 1, yd, y)));
    EXPECT_OK(kiln_model_train_on_batch(&logs, m, xs, ys, NULL, NULL, 0));
    EXPECT_OK(kiln_config_get_float(&l, logs, "loss"));
    kiln_config_free(logs);
    sums[step / 2] += l / 2;
    {
      float lf = (float)l;
      lv = make(F32, 0, NULL, &lf);
    }
    EXPECT_OK(kiln_metric_update_state_values(mean, lv, NULL));
    if (step % 2 == 1) { /* every N = 2 steps */
      bool written = false;
      EXPECT_OK(kiln_metric_result(&result, mean));
      if (result) EXPECT_OK(kiln_summary_scalar("loss", fdata(result)[0], NULL, NULL, &written));
      CHECK(written);
      kiln_tensor_free(result);
      EXPECT_OK(kiln_metric_reset_state(mean));
    }
    kiln_tensor_list_free(xs);
    kiln_tensor_list_free(ys);
    release_kept();
  }
  EXPECT_OK(kiln_summary_clear_step());
  EXPECT_OK(kiln_summary_writer_pop_default());
  EXPECT_OK(kiln_summary_writer_close(w));

  EXPECT_OK(kiln_summary_read_events(&file, kiln_summary_writer_get_path(w)));
  CHECK(num_events(file) == 4);
  for (e = 1; e < 4 && file; ++e) {
    kiln_config *v = value_at(file, e, 0);
    const char *tag = NULL, *kind = NULL;
    double s = 0;
    EXPECT_OK(kiln_config_get_string(&tag, v, "tag"));
    EXPECT_OK(kiln_config_get_string(&kind, v, "kind"));
    EXPECT_OK(kiln_config_get_float(&s, v, "scalar"));
    CHECK(tag && strcmp(tag, "loss") == 0);
    CHECK(kind && strcmp(kind, "scalar") == 0);
    CHECK(step_at(file, e) == (int64_t)(2 * e)); /* iterations after steps 2, 4, 6 */
    CHECK(s > 0 && (float)s == (float)sums[e - 1]);
    kiln_config_free(v);
  }
  kiln_config_free(file);
  kiln_metric_free(mean);
  kiln_optimizer_free(opt);
  kiln_config_free(c);
  kiln_layer_free(a);
  kiln_layer_free(b);
  kiln_layer_free(m);
  kiln_summary_writer_free(w);
}

static void test_kinds(void) {
  kiln_summary_writer *w = new_writer("kinds");
  kiln_config *file = NULL, *hp = NULL, *v = NULL;
  int64_t step = 4, hd[1] = {10}, id[4] = {1, 2, 3, 1};
  float h[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  unsigned char px[6] = {0, 50, 100, 150, 200, 250};
  kiln_tensor *ht = NULL, *it = NULL;
  bool written = true, has = false;
  int64_t got = 0;
  size_t n = 0;
  const char *s = NULL;

  /* No default writer: nothing is written and that is not an error. */
  EXPECT_OK(kiln_summary_scalar("x", 1.0, &step, NULL, &written));
  CHECK(!written);
  EXPECT_OK(kiln_summary_should_record(&written));
  CHECK(!written);
  EXPECT_OK(kiln_summary_writer_push_default(w, &step));
  EXPECT_OK(kiln_summary_should_record(&written));
  CHECK(written);
  EXPECT_OK(kiln_summary_get_step(&got, &has));
  CHECK(has && got == 4);
  ht = make(F32, 1, hd, h);
  it = make(U8, 4, id, px);
  EXPECT_OK(kiln_summary_histogram("h", ht, NULL, 5, "ten values", &written));
  CHECK(written);
  EXPECT_OK(kiln_summary_image("img", it, NULL, 0, NULL, &written));
  EXPECT_OK(kiln_summary_text("t", "**bold**", NULL, NULL, &written));
  EXPECT_OK(kiln_config_create(&hp));
  EXPECT_OK(kiln_config_set_float(hp, "lr", 0.1));
  EXPECT_OK(kiln_summary_hparams(hp, "trial-1", &written));
  EXPECT_OK(kiln_summary_trace_on());
  EXPECT_OK(kiln_summary_trace_export("trace", NULL, &written));
  EXPECT_OK(kiln_summary_writer_pop_default());
  EXPECT_OK(kiln_summary_get_step(&got, &has));
  CHECK(!has); /* the push's step is gone with it */
  EXPECT_OK(kiln_summary_writer_flush(w));

  EXPECT_OK(kiln_summary_read_events(&file, kiln_summary_writer_get_path(w)));
  n = num_events(file);
  CHECK(n >= 6);
  v = value_at(file, 1, 0);
  EXPECT_OK(kiln_config_get_string(&s, v, "kind"));
  CHECK(s && strcmp(s, "histogram") == 0);
  EXPECT_OK(kiln_config_get_list_size(&n, v, "histogram"));
  CHECK(n == 5);
  kiln_config_free(v);
  v = value_at(file, 2, 0);
  EXPECT_OK(kiln_config_get_int(&got, v, "width"));
  CHECK(got == 3);
  EXPECT_OK(kiln_config_get_int(&got, v, "height"));
  CHECK(got == 2);
  kiln_config_free(v);
  v = value_at(file, 3, 0);
  EXPECT_OK(kiln_config_get_string(&s, v, "plugin"));
  CHECK(s && strcmp(s, "text") == 0);
  kiln_config_free(v);
  v = value_at(file, 4, 0);
  EXPECT_OK(kiln_config_get_string(&s, v, "tag"));
  CHECK(s && strcmp(s, "_hparams_/session_start_info") == 0);
  kiln_config_free(v);
  kiln_config_free(file);
  kiln_config_free(hp);
  kiln_summary_writer_free(w);
}

static void test_errors(void) {
  kiln_summary_writer *w = NULL;
  kiln_summary_writer_options o;
  kiln_config *file = NULL;
  int64_t step = 0;
  char path[160];
  FILE *f;
  long size;
  EXPECT_ERROR(kiln_summary_create_file_writer(&w, NULL, NULL), INVALID, "logdir", NULL);
  EXPECT_ERROR(kiln_summary_create_file_writer(NULL, "x", NULL), INVALID, "out", NULL);
  EXPECT_OK(kiln_summary_writer_options_init(&o, sizeof o));
  CHECK(o.max_queue == 10 && o.flush_millis == 120000 && strcmp(o.filename_suffix, ".v2") == 0);
  o.max_queue = 0;
  EXPECT_ERROR(kiln_summary_create_file_writer(&w, g_root, &o), INVALID, "max_queue", NULL);
  o.struct_size = 3;
  EXPECT_ERROR(kiln_summary_create_file_writer(&w, g_root, &o), INVALID, "struct_size", NULL);
  EXPECT_ERROR(kiln_summary_writer_flush(NULL), INVALID, "writer", NULL);
  EXPECT_ERROR(kiln_summary_writer_pop_default(), KILN_STATUS_FAILED_PRECONDITION, "no default writer", NULL);
  EXPECT_ERROR(kiln_summary_scalar(NULL, 1.0, &step, NULL, NULL), INVALID, "tag", NULL);
  EXPECT_ERROR(kiln_summary_histogram("h", NULL, &step, 0, NULL, NULL), INVALID, "data", NULL);
  EXPECT_ERROR(kiln_summary_read_events(&file, "/nonexistent/events.out.tfevents.1"), KILN_STATUS_NOT_FOUND,
               NULL, NULL);
  /* One flipped byte in a record is DATA_LOSS. */
  w = new_writer("damaged");
  EXPECT_OK(kiln_summary_writer_push_default(w, &step));
  EXPECT_OK(kiln_summary_scalar("x", 1.0, NULL, NULL, NULL));
  EXPECT_OK(kiln_summary_writer_pop_default());
  EXPECT_OK(kiln_summary_writer_close(w));
  snprintf(path, sizeof path, "%s", kiln_summary_writer_get_path(w));
  f = fopen(path, "r+b");
  CHECK(f != NULL);
  if (f) {
    int ch;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size - 8, SEEK_SET);
    ch = fgetc(f);
    fseek(f, size - 8, SEEK_SET);
    fputc(ch ^ 0x20, f);
    fclose(f);
  }
  EXPECT_ERROR(kiln_summary_read_events(&file, path), KILN_STATUS_DATA_LOSS, "record 1", NULL);
  kiln_summary_writer_free(w);
}

int main(void) {
  snprintf(g_root, sizeof g_root, "/tmp/kiln_capi_summary_XXXXXX");
  if (!mkdtemp(g_root)) {
    perror("mkdtemp");
    return 1;
  }
  test_metrics_pattern();
  test_kinds();
  test_errors();
  remove_tree(g_root);
  return test_summary();
}
