/* What the C Fashion-MNIST demos share (fashion_mnist.c with fit, fashion_mnist_tape.c with a
 * GradientTape loop): the command line, the data as float32 images [n, 28, 28, 1] in [0, 1] and
 * int32 labels, the conv net, the class names, and error handling that reports a failed call and
 * ends the program (kiln frees nothing twice and leaks nothing on its side of a failed call). */
#ifndef KILN_EXAMPLES_FASHION_MNIST_COMMON_H
#define KILN_EXAMPLES_FASHION_MNIST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/kiln.h"

static const char *const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Ends the program with the message of a failed call. */
static void must(kiln_status *st) {
  if (!st) return;
  fprintf(stderr, "kiln error: %s\n", kiln_status_get_message(st));
  kiln_status_free(st);
  exit(1);
}

typedef struct demo_args {
  int epochs;
  int64_t train_samples, test_samples;
  const char *data_dir; /* NULL: Debian's /usr/share/datasets/fashion-mnist */
  const char *log_dir;  /* TensorBoard's logs (the fit demo); NULL: logs/fashion_mnist/<date-time> */
} demo_args;

static demo_args parse_args(int argc, char **argv) {
  demo_args a = {4, 60000, 10000, NULL, NULL};
  int i;
  for (i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--epochs") == 0) a.epochs = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--train-samples") == 0) a.train_samples = atoll(argv[i + 1]);
    else if (strcmp(argv[i], "--test-samples") == 0) a.test_samples = atoll(argv[i + 1]);
    else if (strcmp(argv[i], "--data-dir") == 0) a.data_dir = argv[i + 1];
    else if (strcmp(argv[i], "--log-dir") == 0) a.log_dir = argv[i + 1];
  }
  return a;
}

/* The TensorBoard log directory of this run: the one asked for, else logs/fashion_mnist/<local
 * date-time> as Keras's tutorials name theirs ("logs/fit/20240131-142501"). Lifetime: until the
 * next call. */
static inline const char *log_dir_of(const demo_args *a) {
  static char dir[64];
  time_t now;
  if (a->log_dir) return a->log_dir;
  now = time(NULL);
  strftime(dir, sizeof dir, "logs/fashion_mnist/%Y%m%d-%H%M%S", localtime(&now)); /* one thread here */
  return dir;
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* The first n of uint8 images [N, 28, 28] as float32 [n, 28, 28, 1] in [0, 1]. */
static kiln_tensor *images(const kiln_tensor *x, int64_t n) {
  const int64_t begin[3] = {0, 0, 0}, size[3] = {n, 28, 28}, shape[4] = {n, 28, 28, 1};
  const float scale = 1.0f / 255.0f;
  kiln_tensor *part = NULL, *f = NULL, *s = NULL, *scaled = NULL, *out = NULL;
  must(kiln_slice(&part, x, begin, size, 3));
  must(kiln_cast(&f, part, KILN_DTYPE_FLOAT32));
  must(kiln_tensor_create(&s, KILN_DTYPE_FLOAT32, NULL, 0, &scale, sizeof scale));
  must(kiln_mul(&scaled, f, s));
  must(kiln_reshape(&out, scaled, shape, 4));
  kiln_tensor_free(part);
  kiln_tensor_free(f);
  kiln_tensor_free(s);
  kiln_tensor_free(scaled);
  return out;
}

/* The first n of uint8 labels [N] as int32. */
static kiln_tensor *labels(const kiln_tensor *y, int64_t n) {
  const int64_t begin[1] = {0}, size[1] = {n};
  kiln_tensor *part = NULL, *out = NULL;
  must(kiln_slice(&part, y, begin, size, 1));
  must(kiln_cast(&out, part, KILN_DTYPE_INT32));
  kiln_tensor_free(part);
  return out;
}

typedef struct demo_data {
  kiln_tensor *x_train, *y_train, *x_test, *y_test;
} demo_data;

/* Loads Fashion-MNIST; returns 0, or 77 (ctest's "skipped") with a message when it is absent. */
static int load_data(demo_data *d, const demo_args *a) {
  kiln_tensor *xr = NULL, *yr = NULL, *xt = NULL, *yt = NULL;
  int64_t n_train, n_test;
  kiln_status *st = kiln_load_fashion_mnist(&xr, &yr, &xt, &yt, a->data_dir);
  if (st && kiln_status_get_code(st) == KILN_STATUS_NOT_FOUND) {
    printf("Fashion-MNIST not found (%s): install Debian's dataset-fashion-mnist; skipping\n",
           kiln_status_get_message(st));
    kiln_status_free(st);
    return 77;
  }
  must(st);
  n_train = a->train_samples < kiln_tensor_get_dims(xr)[0] ? a->train_samples : kiln_tensor_get_dims(xr)[0];
  n_test = a->test_samples < kiln_tensor_get_dims(xt)[0] ? a->test_samples : kiln_tensor_get_dims(xt)[0];
  d->x_train = images(xr, n_train);
  d->y_train = labels(yr, n_train);
  d->x_test = images(xt, n_test);
  d->y_test = labels(yt, n_test);
  kiln_tensor_free(xr);
  kiln_tensor_free(yr);
  kiln_tensor_free(xt);
  kiln_tensor_free(yt);
  return 0;
}

static void free_data(demo_data *d) {
  kiln_tensor_free(d->x_train);
  kiln_tensor_free(d->y_train);
  kiln_tensor_free(d->x_test);
  kiln_tensor_free(d->y_test);
}

/* A new handle from a JSON config (a layer, loss, optimizer or metric by Keras class name). */
static kiln_config *json(const char *text) {
  kiln_config *c = NULL;
  must(kiln_config_from_json(&c, text));
  return c;
}

/* The conv net: Conv2D(32, 3, relu) - MaxPooling2D - Conv2D(64, 3, relu) - MaxPooling2D -
 * Flatten - Dense(128, relu) - Dense(10) (logits), built for [None, 28, 28, 1]; prints its summary. */
static kiln_layer *build_model(void) {
  static const struct {
    const char *class_name, *config;
  } kLayers[] = {
      {"Conv2D", "{\"filters\": 32, \"kernel_size\": [3, 3], \"activation\": \"relu\"}"},
      {"MaxPooling2D", "{}"},
      {"Conv2D", "{\"filters\": 64, \"kernel_size\": [3, 3], \"activation\": \"relu\"}"},
      {"MaxPooling2D", "{}"},
      {"Flatten", "{}"},
      {"Dense", "{\"units\": 128, \"activation\": \"relu\"}"},
      {"Dense", "{\"units\": 10}"},
  };
  const int64_t input_shape[4] = {-1, 28, 28, 1};
  const size_t rank = 4;
  kiln_layer *model = NULL;
  char *summary = NULL;
  size_t i;
  kiln_config *empty = json("{}");
  must(kiln_layer_create(&model, "Sequential", empty));
  kiln_config_free(empty);
  for (i = 0; i < sizeof kLayers / sizeof kLayers[0]; ++i) {
    kiln_layer *layer = NULL;
    kiln_config *c = json(kLayers[i].config);
    must(kiln_layer_create(&layer, kLayers[i].class_name, c));
    must(kiln_sequential_add(model, layer));
    kiln_layer_free(layer);
    kiln_config_free(c);
  }
  must(kiln_layer_build(model, input_shape, &rank, 1));
  must(kiln_layer_summary(&summary, model, 0));
  printf("%s", summary);
  kiln_string_free(summary);
  return model;
}

/* Prints the predicted class of the first n images (logits [>= n, 10]) beside the true one. */
static void print_predictions(const kiln_tensor *logits, const kiln_tensor *y, int64_t n) {
  kiln_tensor *classes = NULL;
  const int64_t *p;
  const int32_t *truth = (const int32_t *)kiln_tensor_get_data(y);
  int64_t i;
  must(kiln_argmax(&classes, logits, -1));
  p = (const int64_t *)kiln_tensor_get_data(classes);
  for (i = 0; i < n && i < kiln_tensor_get_num_elements(classes); ++i)
    printf("test image %lld: predicted %-11s (true: %s)\n", (long long)i, kClassNames[p[i]], kClassNames[truth[i]]);
  kiln_tensor_free(classes);
}

#endif /* KILN_EXAMPLES_FASHION_MNIST_COMMON_H */
