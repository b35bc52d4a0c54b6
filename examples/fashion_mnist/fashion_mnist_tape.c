/* Fashion-MNIST with a TF2 custom training loop, in C: a dataset (from_tensor_slices -> shuffle ->
 * batch), a GradientTape per step, apply_gradients, a Mean metric for the loss and
 * SparseCategoricalAccuracy, both reset every epoch; then the test accuracy and a few predictions.
 *
 *   fashion_mnist_tape_c [--epochs N] [--train-samples N] [--test-samples N] [--data-dir DIR]
 *
 * Without Debian's dataset-fashion-mnist it says so and exits 77 (ctest's "skipped"). */
#include "fashion_mnist_common.h"

enum { MAX_VARS = 16 };

/* Runs one pass of ds, calling step(batch x, batch y, ctx) for each batch. */
typedef void (*batch_fn)(const kiln_tensor *x, const kiln_tensor *y, void *ctx);
static void for_each_batch(const kiln_dataset *ds, batch_fn step, void *ctx) {
  kiln_iterator *it = NULL;
  kiln_tensor_list *batch = NULL;
  bool end = false;
  must(kiln_dataset_make_iterator(&it, ds));
  for (;;) {
    kiln_tensor *x = NULL, *y = NULL;
    must(kiln_iterator_next(&batch, &end, it));
    if (end) break;
    must(kiln_tensor_list_get(&x, batch, 0));
    must(kiln_tensor_list_get(&y, batch, 1));
    step(x, y, ctx);
    kiln_tensor_free(x);
    kiln_tensor_free(y);
    kiln_tensor_list_free(batch);
  }
  kiln_iterator_free(it);
}

/* A dataset of (x, y) slices in batches, shuffled first when shuffle_buffer > 0. */
static kiln_dataset *batches(const kiln_tensor *x, const kiln_tensor *y, int64_t shuffle_buffer, int64_t batch_size) {
  kiln_tensor_list *xy = NULL;
  kiln_dataset *slices = NULL, *shuffled = NULL, *out = NULL;
  must(kiln_tensor_list_create(&xy));
  must(kiln_tensor_list_append(xy, x));
  must(kiln_tensor_list_append(xy, y));
  must(kiln_dataset_from_tensor_slices(&slices, xy, NULL));
  if (shuffle_buffer > 0) must(kiln_dataset_shuffle(&shuffled, slices, shuffle_buffer, 7, true));
  must(kiln_dataset_batch(&out, shuffled ? shuffled : slices, batch_size, false));
  kiln_dataset_free(shuffled);
  kiln_dataset_free(slices);
  kiln_tensor_list_free(xy);
  return out;
}

#define LOG_EVERY 50 /* optimizer steps between TensorBoard loss points */

static float metric_value(const kiln_metric *m);

typedef struct trainer {
  kiln_layer *model;
  kiln_loss *loss_fn;
  kiln_optimizer *optimizer;
  kiln_metric *loss_mean, *accuracy;
  kiln_metric *logged_loss; /* the loss since the last summary (TF2's metrics pattern) */
  kiln_variable *vars[MAX_VARS];
  size_t num_vars;
} trainer;

static void train_step(const kiln_tensor *x, const kiln_tensor *y, void *ctx) {
  trainer *t = (trainer *)ctx;
  kiln_tape *tape = NULL;
  kiln_tensor *logits = NULL, *loss = NULL, *grads[MAX_VARS] = {NULL};
  size_t i;
  must(kiln_tape_create(&tape, false, true));
  must(kiln_layer_call_tensor(&logits, t->model, x, true));
  must(kiln_loss_call(&loss, t->loss_fn, y, logits, NULL));
  must(kiln_tape_stop(tape));
  must(kiln_tape_gradient_variables(grads, tape, loss, (const kiln_variable *const *)t->vars, t->num_vars,
                                    KILN_UNCONNECTED_NONE));
  must(kiln_optimizer_apply_gradients(t->optimizer, (const kiln_tensor *const *)grads, t->vars, t->num_vars));
  must(kiln_metric_update_state_values(t->loss_mean, loss, NULL));
  must(kiln_metric_update_state(t->accuracy, y, logits, NULL));
  /* Every LOG_EVERY optimizer steps: the mean loss since the last write, at step = iterations. */
  must(kiln_metric_update_state_values(t->logged_loss, loss, NULL));
  {
    int64_t step = 0;
    must(kiln_optimizer_get_iterations(&step, t->optimizer));
    if (step % LOG_EVERY == 0) {
      must(kiln_summary_scalar("loss", metric_value(t->logged_loss), NULL, NULL, NULL));
      must(kiln_metric_reset_state(t->logged_loss));
    }
  }
  for (i = 0; i < t->num_vars; ++i) kiln_tensor_free(grads[i]);
  kiln_tensor_free(loss);
  kiln_tensor_free(logits);
  kiln_tape_free(tape);
}

typedef struct tester {
  kiln_layer *model;
  kiln_metric *accuracy;
  kiln_tensor *first_logits;
} tester;

static void test_step(const kiln_tensor *x, const kiln_tensor *y, void *ctx) {
  tester *t = (tester *)ctx;
  kiln_tensor *logits = NULL;
  must(kiln_layer_call_tensor(&logits, t->model, x, false));
  must(kiln_metric_update_state(t->accuracy, y, logits, NULL));
  if (!t->first_logits)
    t->first_logits = logits;
  else
    kiln_tensor_free(logits);
}

static float metric_value(const kiln_metric *m) {
  kiln_tensor *r = NULL;
  float v;
  must(kiln_metric_result(&r, m));
  v = *(const float *)kiln_tensor_get_data(r);
  kiln_tensor_free(r);
  return v;
}

static kiln_metric *metric(const char *class_name, const char *config) {
  kiln_metric *m = NULL;
  kiln_config *c = json(config);
  must(kiln_metric_create(&m, class_name, c));
  kiln_config_free(c);
  return m;
}

int main(int argc, char **argv) {
  const demo_args args = parse_args(argc, argv);
  demo_data data;
  trainer tr;
  tester te;
  kiln_config *c;
  kiln_dataset *train_ds, *test_ds;
  kiln_summary_writer *writer = NULL;
  char train_dir[256];
  const char *log_dir = log_dir_of(&args);
  struct timespec start, t0;
  size_t i;
  int epoch, skip = load_data(&data, &args);
  if (skip) return skip;
  kiln_set_seed(42);

  memset(&tr, 0, sizeof tr);
  tr.model = build_model();
  c = json("{\"from_logits\": true}");
  must(kiln_loss_create(&tr.loss_fn, "SparseCategoricalCrossentropy", c));
  kiln_config_free(c);
  c = json("{\"learning_rate\": 0.001}");
  must(kiln_optimizer_create(&tr.optimizer, "Adam", c));
  kiln_config_free(c);
  tr.loss_mean = metric("Mean", "{\"name\": \"loss\"}");
  tr.accuracy = metric("SparseCategoricalAccuracy", "{\"name\": \"accuracy\"}");
  tr.logged_loss = metric("Mean", "{\"name\": \"logged_loss\"}");
  /* TensorBoard: with writer.as_default(), step = optimizer.iterations. */
  snprintf(train_dir, sizeof train_dir, "%s/train", log_dir);
  must(kiln_summary_create_file_writer(&writer, train_dir, NULL));
  must(kiln_summary_writer_push_default(writer, NULL));
  must(kiln_summary_set_step_optimizer(tr.optimizer));
  must(kiln_layer_get_variables(tr.vars, MAX_VARS, &tr.num_vars, tr.model, KILN_VARIABLES_TRAINABLE));
  if (tr.num_vars > MAX_VARS) must(kiln_status_create(KILN_STATUS_INTERNAL, "more variables than MAX_VARS"));

  train_ds = batches(data.x_train, data.y_train, 10000, 64);
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (epoch = 0; epoch < args.epochs; ++epoch) {
    clock_gettime(CLOCK_MONOTONIC, &t0);
    must(kiln_metric_reset_state(tr.loss_mean));
    must(kiln_metric_reset_state(tr.accuracy));
    for_each_batch(train_ds, train_step, &tr);
    printf("Epoch %d/%d - %.1fs - loss: %.4f - accuracy: %.4f\n", epoch + 1, args.epochs, seconds_since(&t0),
           metric_value(tr.loss_mean), metric_value(tr.accuracy));
    fflush(stdout);
    {
      const int64_t step = epoch; /* epoch-level points at step = epoch, as Keras's callback */
      must(kiln_summary_scalar("epoch_accuracy", metric_value(tr.accuracy), &step, NULL, NULL));
    }
  }
  printf("training took %.1fs\n", seconds_since(&start));
  must(kiln_summary_clear_step());
  must(kiln_summary_writer_pop_default());

  /* The test set in batches of 1000: accuracy, then the first five images' predicted classes. */
  te.model = tr.model;
  te.accuracy = metric("SparseCategoricalAccuracy", "{\"name\": \"test_accuracy\"}");
  te.first_logits = NULL;
  test_ds = batches(data.x_test, data.y_test, 0, 1000);
  for_each_batch(test_ds, test_step, &te);
  printf("test accuracy: %.4f (%lld images)\n", metric_value(te.accuracy),
         (long long)kiln_tensor_get_dims(data.y_test)[0]);
  print_predictions(te.first_logits, data.y_test, 5);
  must(kiln_summary_writer_close(writer));
  kiln_summary_writer_free(writer);
  printf("View the training curves: tensorboard --logdir %s\n", log_dir);

  kiln_tensor_free(te.first_logits);
  kiln_metric_free(te.accuracy);
  kiln_dataset_free(test_ds);
  kiln_dataset_free(train_ds);
  for (i = 0; i < tr.num_vars; ++i) kiln_variable_free(tr.vars[i]);
  kiln_metric_free(tr.accuracy);
  kiln_metric_free(tr.loss_mean);
  kiln_metric_free(tr.logged_loss);
  kiln_optimizer_free(tr.optimizer);
  kiln_loss_free(tr.loss_fn);
  kiln_layer_free(tr.model);
  free_data(&data);
  return 0;
}
