/* Losses and metrics through the shared library alone: losses by class name and alias, every
 * reduction, sample weights, from_logits, gradients through a tape, configs; metrics updated,
 * read and reset, their variables, the "accuracy" resolution, bad input as statuses, and one
 * metric updated from four POSIX threads. Plain C99. Prints "N passed, N failed". */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"
#include "kiln/kiln.h"

#define OK(call) EXPECT_OK(call)

static const float kProbs[6] = {0.5f, 0.25f, 0.25f, 0.25f, 0.25f, 0.5f};
static const int64_t kLabels[2] = {0, 1};
static const int64_t kDims23[2] = {2, 3};
static const int64_t kDims2[1] = {2};

static kiln_loss *loss_with(const char *name, const char *key, const char *string_value, int bool_value) {
  kiln_config *c = NULL;
  kiln_loss *l = NULL;
  OK(kiln_config_create(&c));
  if (key && string_value) OK(kiln_config_set_string(c, key, string_value));
  if (key && !string_value) OK(kiln_config_set_bool(c, key, bool_value != 0));
  OK(kiln_loss_create(&l, name, c));
  kiln_config_free(c);
  return l;
}

/* A loss from its name and a config written as JSON. */
static kiln_loss *loss_json(const char *name, const char *json) {
  kiln_config *c = NULL;
  kiln_loss *l = NULL;
  OK(kiln_config_from_json(&c, json));
  OK(kiln_loss_create(&l, name, c));
  kiln_config_free(c);
  return l;
}

static float scalar_of(kiln_tensor *t) {
  float v = t ? fdata(t)[0] : NAN;
  kiln_tensor_free(t);
  return v;
}

static void test_losses(void) {
  kiln_tensor *p = f32(2, kDims23, kProbs), *labels = make(I64, 1, kDims2, kLabels), *o = NULL;
  const float w[2] = {2.0f, 0.0f};
  kiln_tensor *sw = f32(1, kDims2, w);
  const float a = -logf(0.5f), b = -logf(0.25f);
  float want_none[2];
  kiln_loss *mean = loss_with("SparseCategoricalCrossentropy", NULL, NULL, 0);
  kiln_loss *sum = loss_with("sparse_categorical_crossentropy", "reduction", "sum", 0);
  kiln_loss *none = loss_with("SparseCategoricalCrossentropy", "reduction", "none", 0);
  kiln_loss *clone = NULL;
  kiln_config *cfg = NULL, *ser = NULL;
  kiln_loss *back = NULL;
  const char *s = NULL;
  want_none[0] = a;
  want_none[1] = b;
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, mean, labels, p, NULL))) - (a + b) / 2) < 1e-5f);
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, sum, labels, p, NULL))) - (a + b)) < 1e-5f);
  expect_f32(RUN(kiln_loss_call(&o, none, labels, p, NULL)), 1, kDims2, want_none, 1e-5);
  /* sum_over_batch_size divides by the number of losses, not by the weights' sum. */
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, mean, labels, p, sw))) - a) < 1e-5f);
  CHECK(strcmp(kiln_loss_get_name(sum), "sparse_categorical_crossentropy") == 0);
  CHECK(strcmp(kiln_loss_get_class_name(sum), "SparseCategoricalCrossentropy") == 0);
  OK(kiln_loss_clone(&clone, sum));
  CHECK(kiln_loss_get_id(clone) == kiln_loss_get_id(sum) && kiln_loss_get_id(mean) != kiln_loss_get_id(sum));
  OK(kiln_loss_get_config(&cfg, sum));
  OK(kiln_config_get_string(&s, cfg, "reduction"));
  CHECK(s && strcmp(s, "sum") == 0);
  OK(kiln_loss_serialize(&ser, sum));
  OK(kiln_loss_deserialize(&back, ser));
  CHECK(back && strcmp(kiln_loss_get_name(back), "sparse_categorical_crossentropy") == 0);
  CHECK(kiln_loss_is_registered("mse") && kiln_loss_is_registered("Huber") &&
        !kiln_loss_is_registered("msee"));
  CHECK(!kiln_loss_is_registered(NULL) && kiln_loss_get_id(NULL) == 0 && kiln_loss_get_name(NULL) == NULL);
  kiln_config_free(cfg);
  kiln_config_free(ser);
  kiln_loss_free(back);
  kiln_loss_free(clone);
  kiln_loss_free(mean);
  kiln_loss_free(sum);
  kiln_loss_free(none);
  kiln_loss_free(NULL);
  release_kept();
}

/* The gradient of a loss reaches y_pred through the tape: softmax - one_hot over the batch. */
static void test_loss_gradient(void) {
  const float logits_v[6] = {1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f};
  kiln_tensor *logits = f32(2, kDims23, logits_v), *labels = make(I64, 1, kDims2, kLabels), *o = NULL;
  kiln_tensor *loss_value = NULL, *grad = NULL;
  kiln_loss *loss = loss_with("SparseCategoricalCrossentropy", "from_logits", NULL, 1);
  kiln_tape *tape = NULL;
  float want[6];
  int i;
  double e0 = exp(1.0), e1 = exp(2.0), e2 = exp(3.0), z = e0 + e1 + e2;
  want[0] = (float)((e0 / z - 1) / 2);
  want[1] = (float)(e1 / z / 2);
  want[2] = (float)(e2 / z / 2);
  for (i = 3; i < 6; ++i) want[i] = (float)(1.0 / 3 / 2);
  want[4] -= 0.5f;
  OK(kiln_tape_create(&tape, false, true));
  OK(kiln_tape_watch(tape, logits));
  loss_value = RUN(kiln_loss_call(&o, loss, labels, logits, NULL));
  OK(kiln_tape_stop(tape));
  {
    const kiln_tensor *sources[1];
    sources[0] = logits;
    OK(kiln_tape_gradient(&grad, tape, loss_value, sources, 1, KILN_UNCONNECTED_NONE));
  }
  expect_f32(grad, 2, kDims23, want, 1e-5);
  kiln_tensor_free(loss_value);
  kiln_tape_free(tape);
  kiln_loss_free(loss);
  release_kept();
}

static void test_loss_errors(void) {
  const int64_t bad[2] = {0, 3};
  kiln_tensor *p = f32(2, kDims23, kProbs), *labels = make(I64, 1, kDims2, bad);
  kiln_loss *l = NULL, *mse = NULL;
  kiln_config *c = NULL;
  OK(kiln_loss_create(&l, "SparseCategoricalCrossentropy", NULL));
  OK(kiln_loss_create(&mse, "mse", NULL));
  EXPECT_ERROR(kiln_loss_call(U, l, labels, p, NULL), INVALID, "label 3", "[0, 3)");
  {
    const int64_t d22[2] = {2, 2};
    const float z4[4] = {0, 0, 0, 0};
    EXPECT_ERROR(kiln_loss_call(U, mse, f32(2, d22, z4), p, NULL), INVALID, "mean_squared_error",
                 "do not broadcast");
  }
  EXPECT_ERROR(kiln_loss_call(U, NULL, labels, p, NULL), INVALID, "loss", "NULL");
  EXPECT_ERROR(kiln_loss_call(U, l, NULL, p, NULL), INVALID, "y_true", "NULL");
  {
    kiln_loss *out = NULL;
    kiln_status *st = kiln_loss_create(&out, "cross_entropy", NULL);
    CHECK(kiln_status_get_code(st) == KILN_STATUS_NOT_FOUND && out == NULL);
    CHECK(strstr(kiln_status_get_message(st), "known:") &&
          strstr(kiln_status_get_message(st), "KLDivergence"));
    kiln_status_free(st);
    OK(kiln_config_create(&c));
    OK(kiln_config_set_float(c, "deltaa", 2.0));
    st = kiln_loss_create(&out, "Huber", c);
    CHECK(kiln_status_get_code(st) == KILN_STATUS_INVALID_ARGUMENT && out == NULL);
    CHECK(strstr(kiln_status_get_message(st), "deltaa") != NULL);
    kiln_status_free(st);
  }
  kiln_config_free(c);
  kiln_loss_free(l);
  kiln_loss_free(mse);
  release_kept();
}

static void test_metrics(void) {
  kiln_tensor *p = f32(2, kDims23, kProbs), *labels = make(I64, 1, kDims2, kLabels), *o = NULL;
  const float values[2] = {1.0f, 3.0f}, weights[2] = {1.0f, 3.0f};
  kiln_tensor *v = f32(1, kDims2, values), *w = f32(1, kDims2, weights);
  kiln_metric *acc = NULL, *mean = NULL, *rmse = NULL, *auc = NULL, *clone = NULL, *back = NULL;
  kiln_variable *vars[4] = {NULL, NULL, NULL, NULL};
  kiln_config *ser = NULL;
  size_t n = 0, i;
  OK(kiln_metric_create(&acc, "sparse_categorical_accuracy", NULL));
  CHECK(strcmp(kiln_metric_get_name(acc), "sparse_categorical_accuracy") == 0);
  CHECK(strcmp(kiln_metric_get_class_name(acc), "SparseCategoricalAccuracy") == 0);
  CHECK(!kiln_metric_takes_values(acc));
  /* Row 0 predicts class 0 (right), row 1 predicts class 2 (wrong). */
  OK(kiln_metric_update_state(acc, labels, p, NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, acc))) - 0.5f) < 1e-6f);
  OK(kiln_metric_update_state(acc, labels, p, w));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, acc))) - 2.0f / 6.0f) < 1e-6f);
  OK(kiln_metric_get_variables(NULL, 0, &n, acc));
  CHECK(n == 2);
  OK(kiln_metric_get_variables(vars, 4, &n, acc));
  CHECK(strcmp(kiln_variable_get_name(vars[0]), "sparse_categorical_accuracy/total") == 0);
  CHECK(strcmp(kiln_variable_get_name(vars[1]), "sparse_categorical_accuracy/count") == 0);
  CHECK(!kiln_variable_get_trainable(vars[0]));
  for (i = 0; i < n; ++i) kiln_variable_free(vars[i]);
  OK(kiln_metric_clone(&clone, acc));
  CHECK(kiln_metric_get_id(clone) == kiln_metric_get_id(acc));
  OK(kiln_metric_reset_state(clone));
  CHECK(scalar_of(RUN(kiln_metric_result(&o, acc))) == 0.0f);
  OK(kiln_metric_serialize(&ser, acc));
  OK(kiln_metric_deserialize(&back, ser));
  CHECK(back && kiln_metric_get_id(back) != kiln_metric_get_id(acc));

  OK(kiln_metric_create(&mean, "Mean", NULL));
  CHECK(kiln_metric_takes_values(mean));
  OK(kiln_metric_update_state_values(mean, v, w));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, mean))) - 2.5f) < 1e-6f);
  EXPECT_ERROR(kiln_metric_update_state(mean, labels, p, NULL), INVALID, "takes values", NULL);
  EXPECT_ERROR(kiln_metric_update_state_values(acc, v, NULL), INVALID, "y_true and y_pred", NULL);

  OK(kiln_metric_create(&rmse, "RootMeanSquaredError", NULL));
  OK(kiln_metric_update_state(rmse, v, w, NULL)); /* errors 0 and 0 */
  CHECK(scalar_of(RUN(kiln_metric_result(&o, rmse))) == 0.0f);

  OK(kiln_metric_create(&auc, "AUC", NULL));
  {
    const float yt[4] = {0, 0, 1, 1}, yp[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    const int64_t d4[1] = {4};
    OK(kiln_metric_update_state(auc, f32(1, d4, yt), f32(1, d4, yp), NULL));
    /* sklearn's ROC AUC of this case is 0.75; Keras's 200 thresholds give it too. */
    CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, auc))) - 0.75f) < 1e-3f);
  }
  OK(kiln_metric_get_variables(vars, 4, &n, auc));
  CHECK(n == 4);
  {
    kiln_tensor *tp = RUN(kiln_variable_read(&o, vars[0]));
    CHECK(tp && kiln_tensor_get_rank(tp) == 1 && kiln_tensor_get_dims(tp)[0] == 200);
    kiln_tensor_free(tp);
  }
  for (i = 0; i < n; ++i) kiln_variable_free(vars[i]);
  /* AUC with multi_label: one AUC per column of [samples, labels] (0.75 and 1.0 here), weighed by
   * label_weights [1, 3]; the state is [num_thresholds, num_labels]. */
  {
    kiln_config *c = NULL;
    kiln_metric *ml = NULL;
    kiln_variable *mv[4] = {NULL, NULL, NULL, NULL};
    size_t four = 0;
    const float yt[8] = {0, 0, 0, 0, 1, 1, 1, 1}, yp[8] = {0.1f, 0.2f, 0.4f, 0.3f, 0.35f, 0.6f, 0.8f, 0.9f};
    const int64_t d42[2] = {4, 2}, d4[1] = {4};
    OK(kiln_config_from_json(&c, "{\"multi_label\": true, \"num_labels\": 2, \"label_weights\": [1, 3]}"));
    OK(kiln_metric_create(&ml, "AUC", c));
    kiln_config_free(c);
    OK(kiln_metric_update_state(ml, f32(2, d42, yt), f32(2, d42, yp), NULL));
    CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, ml))) - (0.75f + 3.0f) / 4.0f) < 1e-5f);
    OK(kiln_metric_get_variables(mv, 4, &four, ml));
    CHECK(four == 4);
    {
      kiln_tensor *tp = RUN(kiln_variable_read(&o, mv[0]));
      CHECK(tp && kiln_tensor_get_rank(tp) == 2 && kiln_tensor_get_dims(tp)[0] == 200 &&
            kiln_tensor_get_dims(tp)[1] == 2);
      kiln_tensor_free(tp);
    }
    for (i = 0; i < four; ++i) kiln_variable_free(mv[i]);
    EXPECT_ERROR(kiln_metric_update_state(ml, f32(1, d4, yt), f32(1, d4, yp), NULL), INVALID, "rank 2",
                 "multi_label");
    kiln_metric_free(ml);
    OK(kiln_config_from_json(&c, "{\"num_labels\": 2}"));
    EXPECT_ERROR(kiln_metric_create(&ml, "AUC", c), INVALID, "num_labels", "only when multi_label");
    kiln_config_free(c);
  }
  /* MeanIoU: an int64 confusion matrix (Keras's dtype "int"); cm = [[1, 1], [1, 1]] gives 1/3. */
  {
    kiln_config *c = NULL;
    kiln_metric *iou = NULL;
    kiln_variable *cm = NULL;
    size_t one = 0;
    const int64_t yt[4] = {0, 0, 1, 1}, yp[4] = {0, 1, 0, 1}, d4[1] = {4};
    OK(kiln_config_from_json(&c, "{\"num_classes\": 2}"));
    OK(kiln_metric_create(&iou, "MeanIoU", c));
    kiln_config_free(c);
    CHECK(strcmp(kiln_metric_get_name(iou), "mean_io_u") == 0);
    OK(kiln_metric_update_state(iou, make(I64, 1, d4, yt), make(I64, 1, d4, yp), NULL));
    CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, iou))) - 1.0f / 3.0f) < 1e-6f);
    OK(kiln_metric_get_variables(&cm, 1, &one, iou));
    CHECK(one == 1);
    {
      kiln_tensor *value = RUN(kiln_variable_read(&o, cm));
      CHECK(value && kiln_tensor_get_dtype(value) == KILN_DTYPE_INT64 && kiln_tensor_get_dims(value)[0] == 2);
      CHECK(value && ((const int64_t *)kiln_tensor_get_data(value))[1] == 1); /* label 0 predicted 1: once */
      kiln_tensor_free(value);
    }
    kiln_variable_free(cm);
    EXPECT_ERROR(kiln_metric_update_state(iou, make(I64, 1, d4, yt), make(I64, 1, kDims2, kLabels), NULL),
                 INVALID, "4 labels", "2 predictions");
    kiln_metric_free(iou);
    OK(kiln_config_from_json(&c, "{\"num_classes\": 2, \"target_class_ids\": [5]}"));
    EXPECT_ERROR(kiln_metric_create(&iou, "IoU", c), INVALID, "target class id 5 is out of range", NULL);
    kiln_config_free(c);
  }
  CHECK(kiln_metric_is_registered("MeanIoU") && kiln_metric_is_registered("OneHotMeanIoU"));
  /* F1Score: Keras's docstring example, one score per class (average None) or their mean. */
  {
    kiln_config *c = NULL;
    kiln_metric *f1 = NULL;
    kiln_tensor *r = NULL;
    const float yt[9] = {1, 1, 1, 1, 0, 0, 1, 1, 0},
                yp[9] = {0.2f, 0.6f, 0.7f, 0.2f, 0.6f, 0.6f, 0.6f, 0.8f, 0.0f};
    const float want[3] = {0.5f, 0.8f, 2.0f / 3.0f};
    const int64_t d33[2] = {3, 3};
    int k;
    OK(kiln_config_from_json(&c, "{\"threshold\": 0.5}"));
    OK(kiln_metric_create(&f1, "F1Score", c));
    kiln_config_free(c);
    CHECK(strcmp(kiln_metric_get_name(f1), "f1_score") == 0);
    OK(kiln_metric_update_state(f1, make(F32, 2, d33, yt), make(F32, 2, d33, yp), NULL));
    r = RUN(kiln_metric_result(&o, f1));
    CHECK(r && kiln_tensor_get_rank(r) == 1 && kiln_tensor_get_dims(r)[0] == 3);
    for (k = 0; r && k < 3; ++k) CHECK(fabsf(((const float *)kiln_tensor_get_data(r))[k] - want[k]) < 1e-6f);
    kiln_tensor_free(r);
    kiln_metric_free(f1);
    OK(kiln_config_from_json(&c, "{\"threshold\": 0.5, \"average\": \"macro\"}"));
    OK(kiln_metric_create(&f1, "F1Score", c));
    kiln_config_free(c);
    OK(kiln_metric_update_state(f1, make(F32, 2, d33, yt), make(F32, 2, d33, yp), NULL));
    CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, f1))) - (want[0] + want[1] + want[2]) / 3) < 1e-6f);
    kiln_metric_free(f1);
    OK(kiln_config_from_json(&c, "{\"beta\": -1}"));
    EXPECT_ERROR(kiln_metric_create(&f1, "FBetaScore", c), INVALID, "FBetaScore: beta is -1", "> 0");
    kiln_config_free(c);
    CHECK(kiln_metric_is_registered("F1Score") && kiln_metric_is_registered("FBetaScore"));
    CHECK(kiln_metric_is_registered("f1_score") && kiln_metric_is_registered("f_beta_score"));
  }
  CHECK(kiln_metric_is_registered("AUC") && kiln_metric_is_registered("acc") &&
        kiln_metric_is_registered("categorical_crossentropy") && !kiln_metric_is_registered("accuracyy"));
  kiln_config_free(ser);
  kiln_metric_free(back);
  kiln_metric_free(clone);
  kiln_metric_free(acc);
  kiln_metric_free(mean);
  kiln_metric_free(rmse);
  kiln_metric_free(auc);
  kiln_metric_free(NULL);
  release_kept();
}

/* kiln_metric_resolve(identifier, loss, y_true dims, y_pred dims) must give class want_class. */
static void expect_resolved(const char *identifier, const kiln_loss *loss, const int64_t *yt, size_t yt_rank,
                            const int64_t *yp, size_t yp_rank, const char *want_class) {
  kiln_metric *m = NULL;
  if (!OK(kiln_metric_resolve(&m, identifier, loss, yt, yt_rank, yp, yp_rank))) return;
  CHECK(strcmp(kiln_metric_get_class_name(m), want_class) == 0);
  CHECK(strcmp(kiln_metric_get_name(m), identifier) == 0);
  kiln_metric_free(m);
}

static void test_resolution(void) {
  const int64_t yt_sparse[1] = {-1}, yp[2] = {-1, 10}, yt_col[2] = {-1, 1}, yp_bin[2] = {-1, 1};
  kiln_metric *m = NULL;
  kiln_loss *bce = NULL, *scce = NULL;
  OK(kiln_loss_create(&bce, "BinaryCrossentropy", NULL));
  OK(kiln_loss_create(&scce, "sparse_categorical_crossentropy", NULL));
  expect_resolved("accuracy", NULL, yt_sparse, 1, yp, 2, "SparseCategoricalAccuracy");
  expect_resolved("acc", NULL, yp, 2, yp, 2, "CategoricalAccuracy");
  expect_resolved("accuracy", NULL, yt_col, 2, yp_bin, 2, "BinaryAccuracy");
  expect_resolved("accuracy", bce, yp, 2, yp, 2, "BinaryAccuracy");
  expect_resolved("accuracy", scce, yp, 2, yp, 2, "SparseCategoricalAccuracy");
  expect_resolved("crossentropy", scce, yt_sparse, 1, yp, 2, "MeanMetricWrapper");
  OK(kiln_metric_create_mean_wrapper(&m, bce, "bce"));
  CHECK(strcmp(kiln_metric_get_name(m), "bce") == 0);
  kiln_metric_free(m);
  m = NULL;
  {
    kiln_status *st = kiln_metric_create(&m, "accuracyy", NULL);
    CHECK(kiln_status_get_code(st) == KILN_STATUS_NOT_FOUND && m == NULL);
    CHECK(strstr(kiln_status_get_message(st), "known:") &&
          strstr(kiln_status_get_message(st), "SparseCategoricalAccuracy"));
    kiln_status_free(st);
  }
  kiln_loss_free(bce);
  kiln_loss_free(scce);
}

/* One metric updated from four threads: every update counts exactly once. */
struct worker {
  kiln_metric *metric;
  const kiln_tensor *values;
  int failures;
};

static void *update_many(void *arg) {
  struct worker *w = (struct worker *)arg;
  int i;
  for (i = 0; i < 100; ++i) {
    kiln_status *st = kiln_metric_update_state_values(w->metric, w->values, NULL);
    if (st) {
      ++w->failures;
      kiln_status_free(st);
    }
  }
  return NULL;
}

static void test_threads(void) {
  const float values[2] = {1.0f, 2.0f};
  kiln_tensor *v = f32(1, kDims2, values), *o = NULL;
  kiln_metric *sum = NULL;
  pthread_t threads[4];
  struct worker workers[4];
  int i;
  OK(kiln_metric_create(&sum, "Sum", NULL));
  for (i = 0; i < 4; ++i) {
    workers[i].metric = sum;
    workers[i].values = v;
    workers[i].failures = 0;
    CHECK(pthread_create(&threads[i], NULL, update_many, &workers[i]) == 0);
  }
  for (i = 0; i < 4; ++i) {
    pthread_join(threads[i], NULL);
    CHECK(workers[i].failures == 0);
  }
  CHECK(scalar_of(RUN(kiln_metric_result(&o, sum))) == 1200.0f);
  kiln_metric_free(sum);
  release_kept();
}

/* Keras 3's other losses and the metric classes over loss functions, by name from C. */
static void test_more_losses_and_metrics(void) {
  const float yt_v[3] = {1.0f, 0.0f, 1.0f}, yp_v[3] = {0.5f, 0.2f, 2.0f};
  const int64_t d13[2] = {1, 3};
  kiln_tensor *yt = f32(2, d13, yt_v), *yp = f32(2, d13, yp_v), *o = NULL;
  kiln_loss *poisson = loss_with("poisson", NULL, NULL, 0), *hinge = loss_with("Hinge", NULL, NULL, 0);
  kiln_loss *focal = loss_with("BinaryFocalCrossentropy", "from_logits", NULL, 1);
  kiln_metric *cos = NULL, *bce = NULL, *bad = NULL;
  kiln_config *c = NULL;
  const double want_poisson = ((0.5 - log(0.5 + 1e-7)) + 0.2 + (2.0 - log(2.0 + 1e-7))) / 3;
  CHECK(fabs(scalar_of(RUN(kiln_loss_call(&o, poisson, yt, yp, NULL))) - want_poisson) < 1e-6);
  /* 0/1 labels become -1/1: margins 0.5, 1.2 and 0. */
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, hinge, yt, yp, NULL))) - 1.7f / 3) < 1e-6f);
  CHECK(scalar_of(RUN(kiln_loss_call(&o, focal, yt, yp, NULL))) > 0.0f);
  CHECK(kiln_loss_is_registered("msle") && kiln_loss_is_registered("categorical_hinge") &&
        kiln_loss_is_registered("LogCosh") && kiln_loss_is_registered("MAPE"));
  OK(kiln_metric_create(&cos, "CosineSimilarity", NULL));
  OK(kiln_metric_update_state(cos, yt, yt, NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, cos))) - 1.0f) < 1e-6f); /* the similarity itself */
  OK(kiln_config_from_json(&c, "{\"from_logits\": true, \"name\": \"bce\"}"));
  OK(kiln_metric_create(&bce, "BinaryCrossentropy", c));
  CHECK(strcmp(kiln_metric_get_name(bce), "bce") == 0);
  OK(kiln_metric_update_state(bce, yt, yp, NULL));
  CHECK(fabs(scalar_of(RUN(kiln_metric_result(&o, bce))) -
             (log1p(exp(-0.5)) + log1p(exp(0.2)) + log1p(exp(-2.0))) / 3) < 1e-6);
  kiln_config_free(c);
  c = NULL;
  OK(kiln_config_from_json(&c, "{\"reduction\": \"sum\"}"));
  EXPECT_ERROR(kiln_metric_create(&bad, "MeanAbsoluteError", c), INVALID, "reduction", NULL);
  CHECK(bad == NULL);
  kiln_config_free(c);
  kiln_metric_free(cos);
  kiln_metric_free(bce);
  kiln_loss_free(poisson);
  kiln_loss_free(hinge);
  kiln_loss_free(focal);
  release_kept();
}

/* CategoricalFocalCrossentropy, Dice, Tversky, CategoricalGeneralizedCrossEntropy and Circle by
 * name and config from C: Keras's documented values, configs and bad input. */
static void test_segmentation_focal_and_circle_losses(void) {
  const float seg_t[8] = {1, 1, 0, 0, 1, 1, 0, 0}, seg_p[8] = {0, 1, 0, 1, 0.4f, 0, 0, 0.9f};
  const float onehot_v[6] = {0, 1, 0, 0, 0, 1}, probs_v[6] = {0.05f, 0.9f, 0.05f, 0.1f, 0.85f, 0.05f};
  const float emb_v[8] = {1, 0, 0.6f, 0.8f, 0, 1, 0.8f, 0.6f};
  const int64_t d2221[4] = {2, 2, 2, 1}, d23[2] = {2, 3}, d42[2] = {4, 2}, d4[1] = {4}, d2[1] = {2};
  const int64_t ids_v[4] = {0, 1, 1, 2}, lab_v[2] = {1, 2};
  kiln_tensor *st = f32(4, d2221, seg_t), *sp = f32(4, d2221, seg_p), *o = NULL;
  kiln_tensor *onehot = f32(2, d23, onehot_v), *probs = f32(2, d23, probs_v), *emb = f32(2, d42, emb_v);
  kiln_tensor *ids = make(I64, 1, d4, ids_v), *labels = make(I64, 1, d2, lab_v);
  kiln_loss *dice = loss_with("dice", NULL, NULL, 0), *per_image = NULL, *focal = NULL, *tversky = NULL;
  kiln_loss *gce = loss_with("CategoricalGeneralizedCrossEntropy", NULL, NULL, 0), *circle = NULL,
            *bad = NULL;
  kiln_config *c = NULL, *got = NULL;
  const float *v = NULL;
  char *json = NULL;
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, dice, st, sp, NULL))) - 0.6164384f) < 1e-6f);
  per_image = loss_json("Dice", "{\"axis\": [1, 2, 3], \"reduction\": \"none\"}");
  o = RUN(kiln_loss_call(&o, per_image, st, sp, NULL));
  v = fdata(o);
  CHECK(fabsf(v[0] - 0.5f) < 1e-6f && fabsf(v[1] - 0.75757575f) < 1e-6f);
  kiln_tensor_free(o);
  o = NULL;
  OK(kiln_loss_get_config(&got, per_image));
  OK(kiln_config_to_json(&json, got, -1));
  CHECK(strcmp(json, "{\"name\":\"dice\",\"reduction\":\"none\",\"axis\":[1,2,3]}") == 0);
  kiln_string_free(json);
  kiln_config_free(got);
  /* Tversky with alpha = beta = 0.5 is Dice up to where epsilon enters. */
  tversky = loss_with("Tversky", NULL, NULL, 0);
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, tversky, st, sp, NULL))) - 0.6164384f) < 1e-5f);
  /* Keras's docstring values of the focal loss (reduction none), and alpha per class. */
  focal =
      loss_json("categorical_focal_crossentropy", "{\"reduction\": \"none\", \"alpha\": [0.25, 0.25, 0.25]}");
  o = RUN(kiln_loss_call(&o, focal, onehot, probs, NULL));
  v = fdata(o);
  CHECK(fabsf(v[0] - 2.63401289e-04f) < 1e-6f && fabsf(v[1] - 6.75912094e-01f) < 1e-6f);
  kiln_tensor_free(o);
  o = NULL;
  /* (1 - sqrt(0.9)) / 0.5 and (1 - sqrt(0.05)) / 0.5, averaged. */
  CHECK(fabs(scalar_of(RUN(kiln_loss_call(&o, gce, labels, probs, NULL))) -
             ((1 - sqrt(0.9)) / 0.5 + (1 - sqrt(0.05)) / 0.5) / 2) < 1e-5);
  /* Circle: samples 0 and 3 have no other sample of their label, so only 1 and 2 count. */
  circle = loss_json("Circle", "{\"reduction\": \"none\", \"gamma\": 8.0}");
  o = RUN(kiln_loss_call(&o, circle, ids, emb, NULL));
  v = fdata(o);
  CHECK(v[0] == 0.0f && v[3] == 0.0f && v[1] > 0.0f && v[2] > 0.0f);
  kiln_tensor_free(o);
  o = NULL;
  /* Bad input: a status naming the loss and what was expected. */
  OK(kiln_config_from_json(&c, "{\"q\": 1.0}"));
  EXPECT_ERROR(kiln_loss_create(&bad, "CategoricalGeneralizedCrossEntropy", c), INVALID, "(0, 1)", NULL);
  CHECK(bad == NULL);
  kiln_config_free(c);
  c = NULL;
  EXPECT_ERROR(kiln_loss_call(&o, circle, labels, emb, NULL), INVALID,
               "expected integer labels [4] or [4, 1]", NULL);
  EXPECT_ERROR(kiln_loss_call(&o, dice, onehot, sp, NULL), INVALID, "dice", NULL);
  CHECK(o == NULL);
  kiln_loss_free(dice);
  kiln_loss_free(per_image);
  kiln_loss_free(tversky);
  kiln_loss_free(focal);
  kiln_loss_free(gce);
  kiln_loss_free(circle);
  release_kept();
}

/* Keras's CTC: labels padded with 0 (the blank) at the end; uniform logits over two classes and
 * two frames give -log(3/4) for [1] and -log(1/4) for no label. */
static void test_ctc_loss_class(void) {
  float zeros[8] = {0};
  int64_t labels[4] = {1, 0, 0, 0}, gap[4] = {0, 1, 0, 0}, d22[2] = {2, 2}, d222[3] = {2, 2, 2};
  kiln_tensor *o = NULL, *logits = f32(3, d222, zeros), *yt = make(I64, 2, d22, labels);
  kiln_loss *none = loss_json("CTC", "{\"reduction\": \"none\"}"), *mean = loss_with("ctc", NULL, NULL, 0);
  const float *v;
  o = RUN(kiln_loss_call(&o, none, yt, logits, NULL));
  v = fdata(o);
  CHECK(fabs(v[0] + log(0.75)) < 1e-6 && fabs(v[1] + log(0.25)) < 1e-6);
  kiln_tensor_free(o);
  o = NULL;
  CHECK(fabs(scalar_of(RUN(kiln_loss_call(&o, mean, yt, logits, NULL))) + (log(0.75) + log(0.25)) / 2) <
        1e-6);
  o = NULL; /* scalar_of freed it */
  /* Integer predictions compute as their float32 copies (Keras converts y_pred to float32). */
  CHECK(fabs(scalar_of(RUN(kiln_loss_call(&o, mean, yt, make(I32, 3, d222, (int32_t[8]){0}), NULL))) +
             (log(0.75) + log(0.25)) / 2) < 1e-6);
  o = NULL;
  EXPECT_ERROR(kiln_loss_call(&o, mean, make(I64, 2, d22, gap), logits, NULL), INVALID,
               "ctc: y_true[0] has label 1 at 1 after a 0", "may only pad the end");
  EXPECT_ERROR(kiln_loss_call(&o, mean, yt, make(F32, 2, d22, zeros), NULL), INVALID,
               "expected logits [batch, frames, classes]", NULL);
  CHECK(o == NULL);
  kiln_loss_free(none);
  kiln_loss_free(mean);
  release_kept();
}

/* A loss function written in C: mean over the last axis of (y_true - y_pred)^2 * scale; fails
 * with OUT_OF_RANGE when asked to. */
typedef struct {
  float scale;
  int fail;
  int destroyed;
} my_loss_state;

static kiln_status *my_loss(kiln_tensor **out, const kiln_tensor *y_true, const kiln_tensor *y_pred,
                            void *user) {
  my_loss_state *s = (my_loss_state *)user;
  kiln_tensor *d = NULL, *sq = NULL, *m = NULL, *k = NULL;
  const int64_t axis = -1;
  kiln_status *st;
  if (s->fail) return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "told to fail");
  st = kiln_sub(&d, y_true, y_pred);
  if (!st) st = kiln_square(&sq, d);
  if (!st) st = kiln_mean(&m, sq, &axis, 1, false);
  if (!st) st = kiln_tensor_create(&k, KILN_DTYPE_FLOAT32, NULL, 0, &s->scale, sizeof s->scale);
  if (!st) st = kiln_mul(out, m, k);
  kiln_tensor_free(d), kiln_tensor_free(sq), kiln_tensor_free(m), kiln_tensor_free(k);
  return st;
}

static void my_loss_destroy(void *user) { ((my_loss_state *)user)->destroyed++; }

/* A misused callback: hands back its borrowed y_true. */
static kiln_status *give_back(kiln_tensor **out, const kiln_tensor *y_true, const kiln_tensor *y_pred,
                              void *user) {
  (void)y_pred;
  (void)user;
  *out = (kiln_tensor *)y_true;
  return NULL;
}

/* Keras's LossFunctionWrapper and MeanMetricWrapper of a function: kiln_loss_create_custom. */
static void test_loss_function(void) {
  my_loss_state s = {2.0f, 0, 0};
  kiln_loss_callbacks cb;
  const float yt[6] = {1, 2, 3, 4, 0, 1}, yp[6] = {1.5f, 2, 2, 4.5f, 0, 0}, w[3] = {1, 0.5f, 2};
  const int64_t dims[2] = {3, 2}, dims3[1] = {3};
  kiln_tensor *t = f32(2, dims, yt), *p = f32(2, dims, yp), *sw = f32(1, dims3, w), *o = NULL;
  const float per[3] = {0.125f, 0.625f, 0.5f}; /* per-sample mean squared errors */
  kiln_loss *loss = NULL, *back = NULL;
  kiln_metric *metric = NULL;
  kiln_config *c = NULL, *ser = NULL;
  const char *s_fn = NULL;
  OK(kiln_config_create(&c));
  OK(kiln_config_set_string(c, "reduction", "sum"));
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = my_loss;
  cb.destroy = my_loss_destroy;
  OK(kiln_loss_create_custom(&loss, NULL, "my_loss", c, &cb, &s));
  kiln_config_free(c);
  CHECK(strcmp(kiln_loss_get_name(loss), "my_loss") == 0);
  CHECK(strcmp(kiln_loss_get_class_name(loss), "LossFunctionWrapper") == 0);
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, loss, t, p, NULL))) - 2 * (per[0] + per[1] + per[2])) < 1e-5f);
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, loss, t, p, sw))) -
              2 * (per[0] + 0.5f * per[1] + 2 * per[2])) < 1e-5f);
  OK(kiln_loss_serialize(&ser, loss));
  OK(kiln_config_get_string(&s_fn, ser, "class_name"));
  CHECK(s_fn && strcmp(s_fn, "LossFunctionWrapper") == 0);
  EXPECT_ERROR(kiln_loss_deserialize(&back, ser), KILN_STATUS_NOT_FOUND, "LossFunctionWrapper of 'my_loss'",
               "compile=false");
  CHECK(back == NULL);
  kiln_config_free(ser);
  /* Keras's MeanMetricWrapper(fn): the mean of the function's per-sample values. */
  OK(kiln_metric_create_mean_wrapper(&metric, loss, ""));
  CHECK(strcmp(kiln_metric_get_name(metric), "my_loss") == 0);
  OK(kiln_metric_update_state(metric, t, p, NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, metric))) - 2 * (per[0] + per[1] + per[2]) / 3) < 1e-5f);
  /* A status from the function comes back with its code. */
  s.fail = 1;
  EXPECT_ERROR(kiln_loss_call(&o, loss, t, p, NULL), KILN_STATUS_OUT_OF_RANGE, "told to fail", "my_loss");
  EXPECT_ERROR(kiln_metric_update_state(metric, t, p, NULL), KILN_STATUS_OUT_OF_RANGE, "told to fail", NULL);
  CHECK(o == NULL);
  kiln_loss_free(loss);
  CHECK(s.destroyed == 0); /* the metric still holds the loss */
  kiln_metric_free(metric);
  CHECK(s.destroyed == 1);
  cb.destroy = NULL;
  EXPECT_ERROR(kiln_loss_create_custom(&loss, NULL, NULL, NULL, &cb, NULL), KILN_STATUS_INVALID_ARGUMENT,
               "fn_name", NULL);
  EXPECT_ERROR(kiln_loss_create_custom(NULL, NULL, "f", NULL, &cb, NULL), KILN_STATUS_INVALID_ARGUMENT, "out",
               NULL);
  EXPECT_ERROR(kiln_loss_create_custom(&loss, NULL, "f", NULL, NULL, NULL), KILN_STATUS_INVALID_ARGUMENT,
               "callbacks", NULL);
  cb.struct_size = 4;
  EXPECT_ERROR(kiln_loss_create_custom(&loss, NULL, "f", NULL, &cb, NULL), KILN_STATUS_INVALID_ARGUMENT,
               "struct_size", NULL);
  cb.struct_size = sizeof cb;
  cb.call = NULL;
  EXPECT_ERROR(kiln_loss_create_custom(&loss, NULL, "f", NULL, &cb, NULL), KILN_STATUS_INVALID_ARGUMENT,
               "callbacks->call is NULL", NULL);
  cb.call = give_back;
  OK(kiln_loss_create_custom(&loss, NULL, "give_back", NULL, &cb, NULL));
  EXPECT_ERROR(kiln_loss_call(&o, loss, t, p, NULL), KILN_STATUS_INVALID_ARGUMENT,
               "borrowed y_true or y_pred", NULL);
  kiln_loss_free(loss);
  release_kept(); /* t, p and sw */
}

/* A registered custom loss (Keras's custom_objects): from_config makes the function's
 * LossFunctionWrapper from the saved config, so names and configs find it. */
typedef struct {
  my_loss_state loss;
  int made, destroyed;
} my_loss_class;

static kiln_status *my_loss_from_config(kiln_loss **out, const kiln_config *config, void *user) {
  my_loss_class *k = (my_loss_class *)user;
  kiln_loss_callbacks cb;
  if (k->loss.fail) return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "told to fail");
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = my_loss;
  k->made++;
  return kiln_loss_create_custom(out, NULL, "my_registered_loss", config, &cb, &k->loss);
}

static void my_loss_class_destroy(void *user) { ((my_loss_class *)user)->destroyed++; }

static void test_loss_registry(void) {
  my_loss_class k = {{1.0f, 0, 0}, 0, 0}, other = {{3.0f, 0, 0}, 0, 0};
  kiln_loss_class_callbacks cb;
  const float yt[4] = {1, 2, 3, 4}, yp[4] = {1.5f, 2, 2, 4};
  const int64_t dims[2] = {2, 2};
  kiln_tensor *t = f32(2, dims, yt), *p = f32(2, dims, yp), *o = NULL;
  kiln_loss *loss = NULL, *back = NULL, *none = NULL;
  kiln_metric *metric = NULL;
  kiln_config *c = NULL, *ser = NULL, *got = NULL;
  const char *name = NULL;
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.from_config = my_loss_from_config;
  cb.destroy = my_loss_class_destroy;
  CHECK(!kiln_loss_is_registered("my_registered_loss"));
  OK(kiln_loss_register_class("my_registered_loss", &cb, &other));
  OK(kiln_loss_register_class("my_registered_loss", &cb, &k)); /* replaces: the first is destroyed */
  CHECK(other.destroyed == 1 && k.destroyed == 0);
  CHECK(kiln_loss_is_registered("my_registered_loss"));
  CHECK(kiln_metric_is_registered("my_registered_loss"));
  OK(kiln_config_create(&c));
  OK(kiln_config_set_string(c, "reduction", "sum"));
  OK(kiln_loss_create(&loss, "my_registered_loss", c));
  CHECK(k.made == 1);
  /* per-sample means (0.125 + 0.5) summed */
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, loss, t, p, NULL))) - 0.625f) < 1e-5f);
  OK(kiln_loss_serialize(&ser, loss));
  OK(kiln_loss_deserialize(&back, ser));
  CHECK(k.made == 2);
  OK(kiln_loss_get_config(&got, back));
  OK(kiln_config_get_string(&name, got, "reduction"));
  CHECK(name && strcmp(name, "sum") == 0);
  OK(kiln_config_get_string(&name, got, "fn"));
  CHECK(name && strcmp(name, "my_registered_loss") == 0);
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, back, t, p, NULL))) - 0.625f) < 1e-5f);
  OK(kiln_metric_create(&metric, "my_registered_loss", NULL));
  OK(kiln_metric_update_state(metric, t, p, NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, metric))) - 0.3125f) < 1e-5f);
  /* from_config's status comes back with its code */
  k.loss.fail = 1;
  EXPECT_ERROR(kiln_loss_create(&none, "my_registered_loss", NULL), KILN_STATUS_OUT_OF_RANGE,
               "loss 'my_registered_loss' from_config", "told to fail");
  k.loss.fail = 0;
  /* bad registrations leave user_data the caller's */
  EXPECT_ERROR(kiln_loss_register_class("mse", &cb, &other), KILN_STATUS_INVALID_ARGUMENT, "'mse'",
               "built-in");
  EXPECT_ERROR(kiln_loss_register_class("", &cb, &other), KILN_STATUS_INVALID_ARGUMENT, "empty", NULL);
  EXPECT_ERROR(kiln_loss_register_class(NULL, &cb, &other), KILN_STATUS_INVALID_ARGUMENT, "name", "NULL");
  EXPECT_ERROR(kiln_loss_register_class("x", NULL, &other), KILN_STATUS_INVALID_ARGUMENT, "callbacks",
               "NULL");
  cb.struct_size = 4;
  EXPECT_ERROR(kiln_loss_register_class("x", &cb, &other), KILN_STATUS_INVALID_ARGUMENT, "struct_size", NULL);
  cb.struct_size = sizeof cb;
  cb.from_config = NULL;
  EXPECT_ERROR(kiln_loss_register_class("x", &cb, &other), KILN_STATUS_INVALID_ARGUMENT, "from_config",
               "NULL");
  CHECK(other.destroyed == 1);
  /* unregistered: the losses made live on, the name is unknown again */
  OK(kiln_loss_unregister_class("my_registered_loss"));
  CHECK(k.destroyed == 1);
  EXPECT_ERROR(kiln_loss_unregister_class("my_registered_loss"), KILN_STATUS_NOT_FOUND, "my_registered_loss",
               NULL);
  EXPECT_ERROR(kiln_loss_unregister_class("mse"), KILN_STATUS_INVALID_ARGUMENT, "built-in", NULL);
  EXPECT_ERROR(kiln_loss_unregister_class(NULL), KILN_STATUS_INVALID_ARGUMENT, "name", "NULL");
  EXPECT_ERROR(kiln_loss_deserialize(&none, ser), KILN_STATUS_NOT_FOUND,
               "LossFunctionWrapper of 'my_registered_loss'", "kiln_loss_register_class");
  CHECK(fabsf(scalar_of(RUN(kiln_loss_call(&o, back, t, p, NULL))) - 0.625f) < 1e-5f);
  CHECK(!kiln_loss_is_registered("my_registered_loss"));
  kiln_config_free(c);
  kiln_config_free(ser);
  kiln_config_free(got);
  kiln_metric_free(metric);
  kiln_loss_free(loss);
  kiln_loss_free(back);
  CHECK(none == NULL);
  release_kept();
}

/* A metric of class cls from config json (NULL: none), checked to have the name want_name. */
static kiln_metric *metric_from(const char *cls, const char *json, const char *want_name) {
  kiln_config *c = NULL;
  kiln_metric *m = NULL;
  if (json) OK(kiln_config_from_json(&c, json));
  OK(kiln_metric_create(&m, cls, c));
  kiln_config_free(c);
  if (m) CHECK(strcmp(kiln_metric_get_name(m), want_name) == 0);
  return m;
}

/* Keras 3's confusion counts, rates at a constraint, R2Score and the correlations: docstring
 * examples of each, by class and by snake_case name, and a bad config. */
static void test_counts_rates_r2(void) {
  kiln_tensor *o = NULL;
  kiln_config *c = NULL;
  kiln_metric *m = NULL;
  const int64_t d4[1] = {4}, d5[1] = {5}, d31[2] = {3, 1}, d23[2] = {2, 3};
  const float t4[4] = {0, 1, 0, 0}, p4[4] = {0, 0, 1, 1}, w4[4] = {0, 0, 1, 0};
  const float t5[5] = {0, 0, 0, 1, 1}, p5[5] = {0, 0.3f, 0.8f, 0.3f, 0.8f};
  const float rt[3] = {1, 4, 3}, rp[3] = {2, 4, 4};
  const float ct[6] = {0, 1, 0.5f, 1, 1, 0.2f}, cp[6] = {0.1f, 0.9f, 0.5f, 1, 0.9f, 0.2f};

  m = metric_from("FalsePositives", NULL, "false_positives");
  OK(kiln_metric_update_state(m, make(F32, 1, d4, t4), make(F32, 1, d4, p4), NULL));
  CHECK(scalar_of(RUN(kiln_metric_result(&o, m))) == 2.0f);
  OK(kiln_metric_reset_state(m));
  OK(kiln_metric_update_state(m, make(F32, 1, d4, t4), make(F32, 1, d4, p4), make(F32, 1, d4, w4)));
  CHECK(scalar_of(RUN(kiln_metric_result(&o, m))) == 1.0f);
  kiln_metric_free(m);
  m = metric_from("true_negatives", "{\"thresholds\": [0.0, 0.5]}", "true_negatives");
  OK(kiln_metric_update_state(m, make(F32, 1, d4, t4), make(F32, 1, d4, p4), NULL));
  {
    kiln_tensor *r = RUN(kiln_metric_result(&o, m));
    CHECK(r && kiln_tensor_get_rank(r) == 1 && kiln_tensor_get_dims(r)[0] == 2);
    CHECK(r && fdata(r)[0] == 1.0f && fdata(r)[1] == 1.0f); /* the zeros of labels 0, 2, 3 */
    kiln_tensor_free(r);
  }
  kiln_metric_free(m);

  m = metric_from("SensitivityAtSpecificity", "{\"specificity\": 0.5}", "sensitivity_at_specificity");
  OK(kiln_metric_update_state(m, make(F32, 1, d5, t5), make(F32, 1, d5, p5), NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, m))) - 0.5f) < 1e-6f);
  kiln_metric_free(m);
  m = metric_from("precision_at_recall", "{\"recall\": 0.5}", "precision_at_recall");
  OK(kiln_metric_update_state(m, make(F32, 1, d5, t5), make(F32, 1, d5, p5), NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, m))) - 0.5f) < 1e-6f);
  kiln_metric_free(m);
  OK(kiln_config_from_json(&c, "{\"precision\": 2}"));
  EXPECT_ERROR(kiln_metric_create(&m, "RecallAtPrecision", c), INVALID, "precision is 2", "[0, 1]");
  kiln_config_free(c);

  m = metric_from("R2Score", NULL, "r2_score");
  OK(kiln_metric_update_state(m, make(F32, 2, d31, rt), make(F32, 2, d31, rp), NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, m))) - 0.57142854f) < 1e-6f);
  EXPECT_ERROR(kiln_metric_update_state(m, make(F32, 1, d4, t4), make(F32, 1, d4, p4), NULL), INVALID,
               "2-D inputs", NULL);
  kiln_metric_free(m);
  m = metric_from("PearsonCorrelation", NULL, "pearson_correlation");
  OK(kiln_metric_update_state(m, make(F32, 2, d23, ct), make(F32, 2, d23, cp), NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, m))) - 0.99669963f) < 1e-6f);
  kiln_metric_free(m);
  m = metric_from("concordance_correlation", NULL, "concordance_correlation");
  OK(kiln_metric_update_state(m, make(F32, 2, d23, ct), make(F32, 2, d23, cp), NULL));
  CHECK(fabsf(scalar_of(RUN(kiln_metric_result(&o, m))) - 0.98163204f) < 1e-6f);
  kiln_metric_free(m);
  CHECK(kiln_metric_is_registered("TruePositives") &&
        kiln_metric_is_registered("specificity_at_sensitivity") && kiln_metric_is_registered("r2_score") &&
        kiln_metric_is_registered("ConcordanceCorrelation"));
  release_kept();
}

/* Keras 3's metric functions: the values the metric of that name averages. */
static kiln_tensor *metric_fn(const char *name, const kiln_tensor *t, const kiln_tensor *p,
                              const char *json) {
  kiln_config *c = NULL;
  kiln_tensor *out = NULL;
  if (json) OK(kiln_config_from_json(&c, json));
  OK(kiln_metric_function_call(&out, name, t, p, c));
  kiln_config_free(c);
  return keep(out);
}

static void test_metric_functions(void) {
  const float probs[6] = {0.1f, 0.6f, 0.3f, 0.5f, 0.2f, 0.3f}, onehot[6] = {0, 0, 1, 1, 0, 0};
  const float bt[4] = {1, 0, 1, 0}, bp[4] = {0.8f, 0.6f, 0.4f, 0.1f};
  const int64_t labels[2] = {2, 0}, four = 4;
  kiln_tensor *p = make(KILN_DTYPE_FLOAT32, 2, kDims23, probs),
              *oh = make(KILN_DTYPE_FLOAT32, 2, kDims23, onehot);
  kiln_tensor *sparse = make(KILN_DTYPE_INT64, 1, kDims2, labels);
  kiln_tensor *t4 = make(KILN_DTYPE_FLOAT32, 1, &four, bt), *p4 = make(KILN_DTYPE_FLOAT32, 1, &four, bp);
  kiln_tensor *out = NULL;
  const float *v;
  /* binary_accuracy: per element, threshold 0.5 by default, 0.3 given. */
  v = fdata(metric_fn("binary_accuracy", t4, p4, NULL));
  CHECK(v[0] == 1.0f && v[1] == 0.0f && v[2] == 0.0f && v[3] == 1.0f);
  v = fdata(metric_fn("binary_accuracy", t4, p4, "{\"threshold\": 0.3}"));
  CHECK(v[0] == 1.0f && v[1] == 0.0f && v[2] == 1.0f && v[3] == 1.0f);
  /* categorical and sparse: row 0's argmax is 1 (label 2: miss), row 1's is 0 (label 0: hit). */
  v = fdata(metric_fn("categorical_accuracy", oh, p, NULL));
  CHECK(v[0] == 0.0f && v[1] == 1.0f);
  v = fdata(metric_fn("sparse_categorical_accuracy", sparse, p, NULL));
  CHECK(v[0] == 0.0f && v[1] == 1.0f);
  v = fdata(metric_fn("sparse_top_k_categorical_accuracy", sparse, p, "{\"k\": 2}"));
  CHECK(v[0] == 1.0f && v[1] == 1.0f);
  v = fdata(metric_fn("top_k_categorical_accuracy", oh, p, "{\"k\": 1}"));
  CHECK(v[0] == 0.0f && v[1] == 1.0f);
  /* A loss function's name: its per-sample losses. */
  v = fdata(metric_fn("categorical_crossentropy", oh, p, NULL));
  CHECK(fabs(v[0] + log(0.3)) < 1e-6 && fabs(v[1] + log(0.5)) < 1e-6);
  v = fdata(metric_fn("mse", t4, p4, NULL));
  CHECK(fabs(v[0] - (0.04 + 0.36 + 0.36 + 0.01) / 4) < 1e-6);
  /* pearson_correlation: y_pred = 2 y_true + 1 correlates perfectly. */
  {
    const float a[3] = {1, 2, 4}, b[3] = {3, 5, 9};
    const int64_t three = 3;
    v = fdata(metric_fn("pearson_correlation", make(KILN_DTYPE_FLOAT32, 1, &three, a),
                        make(KILN_DTYPE_FLOAT32, 1, &three, b), NULL));
    CHECK(fabs(v[0] - 1.0) < 1e-5);
  }
  EXPECT_ERROR(kiln_metric_function_call(&out, "nope", t4, p4, NULL), KILN_STATUS_NOT_FOUND,
               "binary_accuracy", "loss function");
  EXPECT_ERROR(kiln_metric_function_call(&out, "categorical_accuracy", oh, NULL, NULL),
               KILN_STATUS_INVALID_ARGUMENT, "y_pred", NULL);
  EXPECT_ERROR(kiln_metric_function_call(&out, NULL, oh, p, NULL), KILN_STATUS_INVALID_ARGUMENT, "name",
               NULL);
  {
    kiln_config *c = NULL;
    OK(kiln_config_from_json(&c, "{\"name\": \"x\"}"));
    EXPECT_ERROR(kiln_metric_function_call(&out, "binary_accuracy", t4, p4, c), KILN_STATUS_INVALID_ARGUMENT,
                 "'name'", NULL);
    kiln_config_free(c);
  }
  CHECK(out == NULL);
}

int main(void) {
  test_metric_functions();
  test_losses();
  test_loss_function();
  test_loss_registry();
  test_more_losses_and_metrics();
  test_segmentation_focal_and_circle_losses();
  test_ctc_loss_class();
  test_loss_gradient();
  test_loss_errors();
  test_metrics();
  test_resolution();
  test_threads();
  test_counts_rates_r2();
  return test_summary();
}
