/* libkiln_mpi from plain C, run as `mpirun -np 2` (and alone, as one process): the collectives on
 * tensors, their errors, and a data-parallel fit that ends with the weights one process reaches
 * on the same global batches (SGD and Adam, with and without shuffling). */
#include "../capi/capi_test_util.h"
#include "kiln/distributed.h"

#define N 1280 /* 20 global batches of 64 */
#define F 6
#define C 3

static int g_rank = 0, g_size = 1;
static float g_x[N * F];
static int64_t g_y[N];

static void make_problem(void) {
  int i;
  lcg_floats(g_x, N * F, 5u);
  for (i = 0; i < N; ++i) {
    const float *r = &g_x[i * F];
    const float a = r[0] - r[1], b = r[2] + r[3], c = r[4] - r[5];
    g_y[i] = a >= b && a >= c ? 0 : (b >= c ? 1 : 2);
  }
}

static void test_collectives(void) {
  int64_t d1[1] = {3}, d2[2] = {2, 2};
  float v[3], w[4];
  int64_t iv[3];
  kiln_tensor *out = NULL;
  int local_rank = -1, local_size = -1, i;
  EXPECT_OK(kiln_dist_local_rank(&local_rank));
  EXPECT_OK(kiln_dist_local_size(&local_size));
  CHECK(local_rank >= 0 && local_rank < local_size && local_size <= g_size);

  /* Sums and means, with the signed zero and an infinity kept. */
  v[0] = (float)(g_rank + 1);
  v[1] = -0.0f;
  v[2] = g_rank == 0 ? INFINITY : 1.0f;
  if (EXPECT_OK(kiln_dist_allreduce(&out, f32(1, d1, v), "sum"))) {
    const float *p = fdata(out);
    CHECK(p[0] == (float)(g_size * (g_size + 1) / 2));
    CHECK(p[1] == 0.0f && signbit(p[1]));
    CHECK(isinf(p[2]) && p[2] > 0);
    CHECK(kiln_tensor_get_rank(out) == 1 && kiln_tensor_get_dims(out)[0] == 3);
    kiln_tensor_free(out);
  }
  if (EXPECT_OK(kiln_dist_allreduce(&out, f32(1, d1, v), "mean"))) {
    CHECK(fabsf(fdata(out)[0] - (float)(g_size + 1) / 2.0f) < 1e-6f);
    kiln_tensor_free(out);
  }
  for (i = 0; i < 3; ++i) iv[i] = (int64_t)1 << (40 + g_rank);
  if (EXPECT_OK(kiln_dist_allreduce(&out, make(I64, 1, d1, iv), "sum"))) {
    int64_t want = 0;
    int r;
    for (r = 0; r < g_size; ++r) want += (int64_t)1 << (40 + r);
    CHECK(((const int64_t *)kiln_tensor_get_data(out))[2] == want);
    kiln_tensor_free(out);
  }
  {
    /* bfloat16 1.5 on every rank: the sum is exact. */
    uint16_t b[2] = {0x3FC0, 0x3FC0};
    int64_t bd[1] = {2};
    if (EXPECT_OK(kiln_dist_allreduce(&out, make(BF16, 1, bd, b), "sum"))) {
      const uint16_t *p = (const uint16_t *)kiln_tensor_get_data(out);
      float f;
      uint32_t u = (uint32_t)p[0] << 16;
      memcpy(&f, &u, sizeof f);
      CHECK(f == 1.5f * (float)g_size);
      kiln_tensor_free(out);
    }
  }
  {
    /* In place on a variable. */
    kiln_variable *var = NULL;
    kiln_tensor *now = NULL;
    if (EXPECT_OK(kiln_variable_create(&var, "v", f32(1, d1, v), true))) {
      EXPECT_OK(kiln_dist_allreduce_variable(var, "sum"));
      EXPECT_OK(kiln_variable_read(&now, var));
      CHECK(now && fdata(now)[0] == (float)(g_size * (g_size + 1) / 2));
      kiln_tensor_free(now);
      EXPECT_ERROR(kiln_dist_allreduce_variable(var, "max"), INVALID, "op is 'max'", NULL);
      kiln_variable_free(var);
    }
    EXPECT_ERROR(kiln_dist_allreduce_variable(NULL, "sum"), INVALID, "'variable' is NULL", NULL);
  }
  EXPECT_ERROR(kiln_dist_allreduce(&out, f32(1, d1, v), "max"), INVALID, "op is 'max'",
               "\"sum\" or \"mean\"");
  EXPECT_ERROR(kiln_dist_allreduce(&out, make(I64, 1, d1, iv), "mean"), INVALID, "\"mean\" needs", NULL);
  EXPECT_ERROR(kiln_dist_allreduce(&out, NULL, "sum"), INVALID, "'tensor' is NULL", NULL);
  EXPECT_ERROR(kiln_dist_allreduce(NULL, f32(1, d1, v), "sum"), INVALID, "'out' is NULL", NULL);
  CHECK(out == NULL);

  /* Broadcast from the last rank. */
  for (i = 0; i < 4; ++i) w[i] = (float)(g_rank * 10 + i);
  if (EXPECT_OK(kiln_dist_broadcast(&out, f32(2, d2, w), g_size - 1))) {
    CHECK(fdata(out)[3] == (float)((g_size - 1) * 10 + 3));
    kiln_tensor_free(out);
  }
  EXPECT_ERROR(kiln_dist_broadcast(&out, f32(2, d2, w), g_size), INVALID, "root rank", "outside");
  if (g_size > 1) {
    /* A rank whose shape differs from root's: every rank fails alike. */
    int64_t odd[2] = {g_rank == 0 ? 2 : 4, g_rank == 0 ? 2 : 1};
    EXPECT_ERROR(kiln_dist_broadcast(&out, f32(2, odd, w), 0), INVALID, "differ in dtype or shape", NULL);
  }

  /* Allgather: rank r gives r + 1 rows of 2. */
  {
    float rows[2 * 8];
    int64_t gd[2];
    int r, at = 0;
    gd[0] = g_rank + 1;
    gd[1] = 2;
    for (i = 0; i < 2 * (g_rank + 1); ++i) rows[i] = (float)(100 * g_rank + i);
    if (EXPECT_OK(kiln_dist_allgather(&out, f32(2, gd, rows)))) {
      const float *p = fdata(out);
      CHECK(kiln_tensor_get_dims(out)[0] == g_size * (g_size + 1) / 2 && kiln_tensor_get_dims(out)[1] == 2);
      for (r = 0; r < g_size; ++r)
        for (i = 0; i < 2 * (r + 1); ++i) CHECK(p[at++] == (float)(100 * r + i));
      kiln_tensor_free(out);
    }
    if (g_size > 1) {
      gd[1] = g_rank == 0 ? 2 : 1;
      EXPECT_ERROR(kiln_dist_allgather(&out, f32(2, gd, rows)), INVALID, "after the first dimension", NULL);
    }
  }
  EXPECT_OK(kiln_dist_barrier());
  release_kept();
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

/* Trains a fresh model (seeded) on the problem with the named optimizer; returns it. */
static kiln_layer *train(const char *optimizer, int shuffle, kiln_communicator *distribution, double *loss) {
  const char *loss_name = "sparse_categorical_crossentropy", *metric = "accuracy";
  int64_t xd[2] = {N, F}, yd[1] = {N};
  kiln_layer *m;
  kiln_compile_options co;
  kiln_fit_options fo;
  kiln_callback *history = NULL;
  kiln_config *record = NULL, *h = NULL;
  kiln_tensor_list *x = list1(f32(2, xd, g_x)), *y = list1(make(I64, 1, yd, g_y));
  kiln_set_seed(7);
  m = make_model();
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer_name = optimizer;
  co.loss_names = &loss_name;
  co.num_loss_names = 1;
  co.metric_names = &metric;
  co.num_metric_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
  EXPECT_OK(kiln_fit_options_init(&fo, sizeof fo));
  fo.x = x;
  fo.y = y;
  fo.batch_size = 64;
  fo.epochs = 1;
  fo.verbose = 0;
  fo.shuffle = shuffle != 0;
  fo.distribution = distribution;
  EXPECT_OK(kiln_model_fit(&history, m, &fo));
  *loss = -1;
  if (history && EXPECT_OK(kiln_callback_get_history(&record, history)) &&
      EXPECT_OK(kiln_config_get_config(&h, record, "history"))) {
    size_t n = 0;
    EXPECT_OK(kiln_config_get_float_list(&n, loss, 1, h, "loss"));
  }
  kiln_config_free(h);
  kiln_config_free(record);
  kiln_callback_free(history);
  kiln_tensor_list_free(x);
  kiln_tensor_list_free(y);
  release_kept();
  return m;
}

static double max_weight_difference(const kiln_layer *a, const kiln_layer *b) {
  kiln_variable *va[8], *vb[8];
  size_t na = 0, nb = 0, i;
  int64_t k;
  double worst = 0;
  EXPECT_OK(kiln_layer_get_variables(va, 8, &na, a, KILN_VARIABLES_ALL));
  EXPECT_OK(kiln_layer_get_variables(vb, 8, &nb, b, KILN_VARIABLES_ALL));
  CHECK(na == 4 && nb == 4);
  for (i = 0; i < na && i < nb; ++i) {
    kiln_tensor *ta = NULL, *tb = NULL;
    EXPECT_OK(kiln_variable_read(&ta, va[i]));
    EXPECT_OK(kiln_variable_read(&tb, vb[i]));
    for (k = 0; k < kiln_tensor_get_num_elements(ta); ++k) {
      const double d = fabs((double)fdata(ta)[k] - (double)fdata(tb)[k]);
      if (!(d <= worst)) worst = d;
    }
    kiln_tensor_free(ta);
    kiln_tensor_free(tb);
  }
  for (i = 0; i < na; ++i) kiln_variable_free(va[i]);
  for (i = 0; i < nb; ++i) kiln_variable_free(vb[i]);
  return worst;
}

/* 2 processes with a global batch of 64 reach the weights of 1 process with batch 64. */
static void test_fit_matches_one_process(kiln_communicator *world, const char *optimizer, int shuffle) {
  double loss_dist = 0, loss_one = 0, diff;
  kiln_layer *dist = train(optimizer, shuffle, world, &loss_dist);
  kiln_layer *one = train(optimizer, shuffle, NULL, &loss_one);
  diff = max_weight_difference(dist, one);
  if (!(diff < 2e-5)) {
    fprintf(stderr, "rank %d: %s shuffle=%d: weights differ by %g\n", g_rank, optimizer, shuffle, diff);
    CHECK(diff < 2e-5);
  }
  /* The epoch's loss is the ranks' together: the one process's, on every rank. */
  CHECK(fabs(loss_dist - loss_one) < 1e-4 * (1 + fabs(loss_one)));
  kiln_layer_free(dist);
  kiln_layer_free(one);
}

static void test_communicator_and_optimizer(kiln_communicator *world) {
  kiln_optimizer *opt = NULL;
  kiln_communicator *got = NULL, *clone = NULL;
  kiln_config *cfg = NULL;
  CHECK(kiln_communicator_get_rank(world) == g_rank);
  CHECK(kiln_communicator_get_size(world) == g_size);
  CHECK(kiln_communicator_get_rank(NULL) == -1);
  EXPECT_OK(kiln_communicator_clone(&clone, world));
  CHECK(kiln_communicator_get_size(clone) == g_size);
  kiln_communicator_free(clone);
  EXPECT_OK(kiln_optimizer_create(&opt, "SGD", NULL));
  EXPECT_OK(kiln_optimizer_get_distributed(&got, opt));
  CHECK(got == NULL);
  EXPECT_OK(kiln_config_from_json(&cfg, "{\"op\": \"sum\", \"fusion_threshold_bytes\": 1024}"));
  EXPECT_OK(kiln_optimizer_set_distributed(opt, world, cfg));
  kiln_config_free(cfg);
  EXPECT_OK(kiln_optimizer_get_distributed(&got, opt));
  CHECK(got != NULL && kiln_communicator_get_size(got) == g_size);
  kiln_communicator_free(got);
  EXPECT_OK(kiln_config_from_json(&cfg, "{\"op\": \"max\"}"));
  EXPECT_ERROR(kiln_optimizer_set_distributed(opt, world, cfg), INVALID, "op is 'max'", NULL);
  kiln_config_free(cfg);
  EXPECT_OK(kiln_config_from_json(&cfg, "{\"fusion\": 1}"));
  EXPECT_ERROR(kiln_optimizer_set_distributed(opt, world, cfg), INVALID, "fusion", NULL);
  kiln_config_free(cfg);
  EXPECT_OK(kiln_optimizer_set_distributed(opt, NULL, NULL));
  EXPECT_OK(kiln_optimizer_get_distributed(&got, opt));
  CHECK(got == NULL);
  EXPECT_ERROR(kiln_optimizer_set_distributed(NULL, world, NULL), INVALID, "'optimizer' is NULL", NULL);
  kiln_optimizer_free(opt);
  EXPECT_ERROR(kiln_communicator_create(NULL, 0, 1, NULL, NULL), INVALID, "'out' is NULL", NULL);
}

/* DistributedGradientTape: the tape's gradients come back summed (or averaged) over the ranks. */
static void test_distributed_tape(kiln_communicator *world) {
  const float w[2] = {1.0f, 2.0f};
  kiln_tensor *init = NULL, *grad = NULL, *loss = NULL, *sq = NULL;
  kiln_variable *v = NULL;
  kiln_tape *tape = NULL;
  kiln_config *cfg = NULL;
  const int64_t shape[1] = {2};
  EXPECT_OK(kiln_tensor_create(&init, KILN_DTYPE_FLOAT32, shape, 1, w, sizeof w));
  EXPECT_OK(kiln_variable_create(&v, "v", init, true));
  for (int overlap = 0; overlap < 2; ++overlap) {
    EXPECT_OK(kiln_tape_create(&tape, false, true));
    EXPECT_OK(kiln_config_from_json(&cfg, overlap ? "{\"op\": \"sum\", \"fusion_threshold_bytes\": 0}"
                                                  : "{\"op\": \"sum\", \"overlap\": false}"));
    EXPECT_OK(kiln_tape_set_distributed(tape, world, cfg));
    kiln_config_free(cfg);
    kiln_tensor *value = NULL;
    EXPECT_OK(kiln_variable_read(&value, v));
    EXPECT_OK(kiln_mul(&sq, value, value));
    EXPECT_OK(kiln_sum(&loss, sq, NULL, 0, false));
    EXPECT_OK(kiln_tape_stop(tape));
    const kiln_variable *vs[1] = {v};
    EXPECT_OK(kiln_tape_gradient_variables(&grad, tape, loss, vs, 1, KILN_UNCONNECTED_NONE));
    const float *g = (const float *)kiln_tensor_get_data(grad);
    CHECK(g[0] == 2.0f * (float)g_size && g[1] == 4.0f * (float)g_size);
    kiln_tensor_free(grad);
    kiln_tensor_free(loss);
    kiln_tensor_free(sq);
    kiln_tensor_free(value);
    kiln_tape_free(tape);
  }
  EXPECT_OK(kiln_tape_create(&tape, false, true));
  EXPECT_OK(kiln_config_from_json(&cfg, "{\"op\": \"max\"}"));
  EXPECT_ERROR(kiln_tape_set_distributed(tape, world, cfg), INVALID, "kiln_tape_set_distributed",
               "op is 'max'");
  kiln_config_free(cfg);
  EXPECT_OK(kiln_config_from_json(&cfg, "{\"overlap\": 3}"));
  EXPECT_ERROR(kiln_tape_set_distributed(tape, world, cfg), INVALID, "overlap", NULL);
  kiln_config_free(cfg);
  EXPECT_OK(kiln_tape_set_distributed(tape, NULL, NULL)); /* off again */
  EXPECT_ERROR(kiln_tape_set_distributed(NULL, world, NULL), INVALID, "'tape' is NULL", NULL);
  kiln_tape_free(tape);
  kiln_variable_free(v);
  kiln_tensor_free(init);
}

int main(void) {
  kiln_config *options = NULL;
  kiln_communicator *world = NULL;
  int rank = -1;
  EXPECT_ERROR(kiln_dist_rank(&rank), KILN_STATUS_FAILED_PRECONDITION, "kiln_dist_init first", NULL);
  EXPECT_OK(kiln_config_from_json(&options, "{\"timeout_seconds\": 120}"));
  if (!EXPECT_OK(kiln_dist_init(options))) return test_summary();
  kiln_config_free(options);
  EXPECT_OK(kiln_dist_init(NULL)); /* a second init is a no-op */
  CHECK(kiln_dist_is_initialized());
  EXPECT_OK(kiln_dist_rank(&g_rank));
  EXPECT_OK(kiln_dist_size(&g_size));
  CHECK(g_rank >= 0 && g_rank < g_size);
  make_problem();
  test_collectives();
  EXPECT_OK(kiln_dist_communicator(&world));
  test_communicator_and_optimizer(world);
  test_distributed_tape(world);
  test_fit_matches_one_process(world, "sgd", 0);
  test_fit_matches_one_process(world, "adam", 0);
  test_fit_matches_one_process(world, "adam", 1);
  kiln_communicator_free(world);
  EXPECT_OK(kiln_dist_finalize());
  CHECK(!kiln_dist_is_initialized());
  EXPECT_ERROR(kiln_dist_init(NULL), KILN_STATUS_FAILED_PRECONDITION, "finalized", NULL);
  if (g_rank != 0) {
    /* One report is enough; the other ranks' failures still fail the run. */
    return g_failed ? 1 : 0;
  }
  return test_summary();
}
