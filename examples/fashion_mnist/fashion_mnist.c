/* The Fashion-MNIST demo in C: a small conv net trained with Keras's fit (kiln_model_fit), a
 * validation split, the progress bar and a TensorBoard callback (by class name, with Keras's
 * arguments), evaluated on the 10,000 test images, then a few predictions with their class names.
 *
 *   fashion_mnist_c [--epochs N] [--train-samples N] [--test-samples N] [--data-dir DIR] [--log-dir DIR]
 *
 * TensorBoard's logs go to --log-dir, by default logs/fashion_mnist/<date-time>.
 *
 * Without Debian's dataset-fashion-mnist it says so and exits 77 (ctest's "skipped"). */
#include "fashion_mnist_common.h"

/* A new list holding one tensor. */
static kiln_tensor_list *list_of(const kiln_tensor *t) {
  kiln_tensor_list *l = NULL;
  must(kiln_tensor_list_create(&l));
  must(kiln_tensor_list_append(l, t));
  return l;
}

static double log_value(const kiln_config *logs, const char *key) {
  double v = 0;
  must(kiln_config_get_float(&v, logs, key));
  return v;
}

int main(int argc, char **argv) {
  const demo_args args = parse_args(argc, argv);
  const char *metric_names[1] = {"accuracy"};
  const int64_t first[4] = {0, 0, 0, 0};
  int64_t shown[4] = {5, 28, 28, 1};
  demo_data data;
  kiln_layer *model;
  kiln_loss *loss = NULL;
  kiln_optimizer *optimizer = NULL;
  kiln_config *c, *logs = NULL;
  kiln_compile_options co;
  kiln_fit_options fo;
  kiln_evaluate_options eo;
  kiln_predict_options po;
  kiln_tensor_list *x_train, *y_train, *x_test, *y_test, *x_shown, *predicted = NULL;
  kiln_tensor *first_images = NULL, *logits = NULL;
  kiln_callback *history = NULL, *tensorboard = NULL;
  const char *log_dir = log_dir_of(&args);
  struct timespec start;
  int skip = load_data(&data, &args);
  if (skip) return skip;
  kiln_set_seed(42);

  model = build_model();
  c = json("{\"from_logits\": true}");
  must(kiln_loss_create(&loss, "SparseCategoricalCrossentropy", c));
  kiln_config_free(c);
  c = json("{\"learning_rate\": 0.001}");
  must(kiln_optimizer_create(&optimizer, "Adam", c));
  kiln_config_free(c);
  must(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = optimizer;
  co.losses = &loss;
  co.num_losses = 1;
  co.metric_names = metric_names;
  co.num_metric_names = 1;
  must(kiln_model_compile(model, &co));

  x_train = list_of(data.x_train);
  y_train = list_of(data.y_train);
  must(kiln_fit_options_init(&fo, sizeof fo));
  fo.x = x_train;
  fo.y = y_train;
  fo.batch_size = 64;
  fo.epochs = args.epochs;
  fo.validation_split = 0.1;
  /* keras.callbacks.TensorBoard(log_dir, histogram_freq=1) */
  must(kiln_config_create(&c));
  must(kiln_config_set_string(c, "log_dir", log_dir));
  must(kiln_config_set_int(c, "histogram_freq", 1));
  must(kiln_callback_create(&tensorboard, "TensorBoard", c));
  kiln_config_free(c);
  fo.callbacks = &tensorboard;
  fo.num_callbacks = 1;
  clock_gettime(CLOCK_MONOTONIC, &start);
  must(kiln_model_fit(&history, model, &fo));
  printf("training took %.1fs\n", seconds_since(&start));

  x_test = list_of(data.x_test);
  y_test = list_of(data.y_test);
  must(kiln_evaluate_options_init(&eo, sizeof eo));
  eo.x = x_test;
  eo.y = y_test;
  eo.batch_size = 1000;
  eo.verbose = 0;
  must(kiln_model_evaluate(&logs, model, &eo));
  printf("test loss: %.4f - test accuracy: %.4f (%lld images)\n", log_value(logs, "loss"),
         log_value(logs, "accuracy"), (long long)kiln_tensor_get_dims(data.y_test)[0]);

  if (shown[0] > kiln_tensor_get_dims(data.x_test)[0]) shown[0] = kiln_tensor_get_dims(data.x_test)[0];
  must(kiln_slice(&first_images, data.x_test, first, shown, 4));
  x_shown = list_of(first_images);
  must(kiln_predict_options_init(&po, sizeof po));
  po.x = x_shown;
  po.verbose = 0;
  must(kiln_model_predict(&predicted, model, &po));
  must(kiln_tensor_list_get(&logits, predicted, 0));
  print_predictions(logits, data.y_test, shown[0]);
  printf("View the training curves: tensorboard --logdir %s\n", log_dir);

  kiln_tensor_free(logits);
  kiln_tensor_list_free(predicted);
  kiln_tensor_list_free(x_shown);
  kiln_tensor_free(first_images);
  kiln_config_free(logs);
  kiln_tensor_list_free(y_test);
  kiln_tensor_list_free(x_test);
  kiln_callback_free(history);
  kiln_callback_free(tensorboard);
  kiln_tensor_list_free(y_train);
  kiln_tensor_list_free(x_train);
  kiln_optimizer_free(optimizer);
  kiln_loss_free(loss);
  kiln_layer_free(model);
  free_data(&data);
  return 0;
}
