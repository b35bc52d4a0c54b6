/* The global random state in checkpoints from plain C (kiln_checkpoint_track_global_rng): random
 * ops after a restore draw what they drew after the save, whatever was drawn in between and
 * whatever the seed; a model with Dropout (unseeded and seeded) trained with Adam, saved with its
 * optimizer and the random state, continues bit for bit in fresh objects after another seed; the
 * saved key is `rng/_state-<k>/.ATTRIBUTES/VARIABLE_VALUE`; NULL arguments and reserved names are
 * statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"

/* ---------------------------------------------------------------- helpers */

static char g_root[64];

static const char *path_in(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", g_root, name);
  return buf;
}

static kiln_layer *layer_with(const char *class_name, const char *key, double value, int64_t seed) {
  kiln_config *c = NULL;
  kiln_layer *l = NULL;
  EXPECT_OK(kiln_config_create(&c));
  if (strcmp(class_name, "Dense") == 0) {
    EXPECT_OK(kiln_config_set_int(c, key, (int64_t)value));
    EXPECT_OK(kiln_config_set_string(c, "activation", seed < 0 ? "relu" : "softmax"));
  } else {
    EXPECT_OK(kiln_config_set_float(c, key, value));
    if (seed >= 0) EXPECT_OK(kiln_config_set_int(c, "seed", seed));
  }
  EXPECT_OK(kiln_layer_create(&l, class_name, c));
  kiln_config_free(c);
  return l;
}

/* Dense(8, relu), Dropout(0.3), Dropout(0.25, seed=11), Dense(3, softmax) on 5 features,
 * compiled with Adam. */
static kiln_layer *dropout_model(kiln_optimizer **out_opt) {
  kiln_layer *m = NULL, *layers[4];
  int64_t dims[2] = {-1, 5};
  size_t rank = 2, i;
  kiln_config *c = NULL;
  const char *loss = "sparse_categorical_crossentropy";
  kiln_compile_options co;
  layers[0] = layer_with("Dense", "units", 8, -1);
  layers[1] = layer_with("Dropout", "rate", 0.3, -1);
  layers[2] = layer_with("Dropout", "rate", 0.25, 11);
  layers[3] = layer_with("Dense", "units", 3, 0);
  EXPECT_OK(kiln_layer_create(&m, "Sequential", NULL));
  for (i = 0; i < 4; ++i) {
    EXPECT_OK(kiln_sequential_add(m, layers[i]));
    kiln_layer_free(layers[i]);
  }
  EXPECT_OK(kiln_layer_build(m, dims, &rank, 1));
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", 0.01));
  EXPECT_OK(kiln_optimizer_create(out_opt, "Adam", c));
  kiln_config_free(c);
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = *out_opt;
  co.loss_names = &loss;
  co.num_loss_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
  return m;
}

#define MAX_VARS 32
/* The values of a model's and its optimizer's variables (freed by same_values). */
static size_t all_values(kiln_tensor **out, const kiln_layer *m, const kiln_optimizer *o) {
  kiln_variable *vars[MAX_VARS];
  size_t n = 0, k, i;
  EXPECT_OK(kiln_layer_get_variables(vars, MAX_VARS / 2, &n, m, KILN_VARIABLES_ALL));
  k = n < MAX_VARS / 2 ? n : MAX_VARS / 2;
  n = 0;
  EXPECT_OK(kiln_optimizer_get_variables(vars + k, MAX_VARS / 2, &n, o));
  k += n < MAX_VARS / 2 ? n : MAX_VARS / 2;
  for (i = 0; i < k; ++i) {
    out[i] = NULL;
    EXPECT_OK(kiln_variable_read(&out[i], vars[i]));
    kiln_variable_free(vars[i]);
  }
  return k;
}

static int same_bits(const kiln_tensor *a, const kiln_tensor *b) {
  return a && b && kiln_tensor_get_dtype(a) == kiln_tensor_get_dtype(b) &&
         kiln_tensor_get_byte_size(a) == kiln_tensor_get_byte_size(b) &&
         memcmp(kiln_tensor_get_data(a), kiln_tensor_get_data(b), kiln_tensor_get_byte_size(a)) == 0;
}

/* Whether two value sets are equal bit for bit (then frees them). */
static int same_values(kiln_tensor **a, size_t na, kiln_tensor **b, size_t nb) {
  size_t i;
  int same = na == nb && na > 0;
  for (i = 0; i < na && i < nb; ++i) same = same && same_bits(a[i], b[i]);
  for (i = 0; i < na; ++i) kiln_tensor_free(a[i]);
  for (i = 0; i < nb; ++i) kiln_tensor_free(b[i]);
  return same;
}

static void free_all(kiln_tensor **t, size_t n) {
  size_t i;
  for (i = 0; i < n; ++i) kiln_tensor_free(t[i]);
}

/* Four draws: unseeded uniform, seeded normal, unseeded and seeded dropout. */
static void draw(kiln_tensor **out) {
  int64_t dims[1] = {16};
  float ones[16];
  int i;
  kiln_tensor *x;
  for (i = 0; i < 16; ++i) ones[i] = 1.0f;
  x = f32(1, dims, ones);
  out[0] = out[1] = out[2] = out[3] = NULL;
  EXPECT_OK(kiln_random_uniform(&out[0], dims, 1, 0.0f, 1.0f, -1));
  EXPECT_OK(kiln_random_normal(&out[1], dims, 1, 0.0f, 1.0f, 5));
  EXPECT_OK(kiln_dropout(&out[2], x, 0.5f, true, -1));
  EXPECT_OK(kiln_dropout(&out[3], x, 0.5f, true, 9));
  release_kept();
}

/* ---------------------------------------------------------------- tests */

/* Draws after a restore are the draws after the save, whatever came between. */
static void test_draws_after_a_restore(void) {
  char prefix[128];
  kiln_checkpoint *c = NULL;
  kiln_checkpoint_reader *r = NULL;
  kiln_checkpoint_load_status *st = NULL;
  kiln_tensor *scratch[4], *want[4], *got[4];
  bool has = false;
  char *path = NULL;

  kiln_set_seed(31);
  draw(scratch);
  free_all(scratch, 4);
  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_OK(kiln_checkpoint_track_global_rng(c, "rng"));
  EXPECT_OK(kiln_checkpoint_write(&path, c, path_in(prefix, sizeof prefix, "draws")));
  kiln_string_free(path);
  draw(want);

  kiln_set_seed(2); /* another seed and other draws, as a fresh process would have */
  draw(scratch);
  free_all(scratch, 4);
  EXPECT_OK(kiln_checkpoint_read(&st, c, prefix));
  EXPECT_OK(kiln_checkpoint_load_status_assert_consumed(st));
  kiln_checkpoint_load_status_free(st);
  draw(got);
  CHECK(same_values(got, 4, want, 4));

  /* One value: (seed, unseeded draws), then (op seed, calls) for op seeds 5 and 9. */
  EXPECT_OK(kiln_checkpoint_reader_open(&r, prefix));
  EXPECT_OK(kiln_checkpoint_reader_has_tensor(&has, r, "rng/_state-2/.ATTRIBUTES/VARIABLE_VALUE"));
  CHECK(has);
  if (has) {
    kiln_tensor *t = NULL;
    const int64_t expected[6] = {31, 2, 5, 1, 9, 1};
    EXPECT_OK(kiln_checkpoint_reader_get_tensor(&t, r, "rng/_state-2/.ATTRIBUTES/VARIABLE_VALUE"));
    CHECK(t && kiln_tensor_get_dtype(t) == I64 && kiln_tensor_get_byte_size(t) == sizeof expected &&
          memcmp(kiln_tensor_get_data(t), expected, sizeof expected) == 0);
    kiln_tensor_free(t);
  }
  kiln_checkpoint_reader_free(r);
  kiln_checkpoint_free(c);
}

/* Train 3 steps with Dropout, save (model, optimizer, random state), train 2 more; fresh objects
 * after another seed restore it and train the same 2 steps to the same bits. */
static void test_dropout_training_resumes(void) {
  char dir[128], prefix[160];
  kiln_optimizer *oa = NULL, *ob = NULL, *oc = NULL;
  kiln_layer *a, *b, *c;
  kiln_checkpoint *ca = NULL, *cb = NULL, *cc = NULL;
  kiln_checkpoint_load_status *st = NULL;
  kiln_tensor *va[MAX_VARS], *vb[MAX_VARS], *vc[MAX_VARS];
  size_t na, nb, nc;
  char *path = NULL;

  kiln_set_seed(3);
  a = dropout_model(&oa);
  train_small_batches(a, 0, 3);
  EXPECT_OK(kiln_checkpoint_create(&ca));
  EXPECT_OK(kiln_checkpoint_track_layer(ca, "model", a));
  EXPECT_OK(kiln_checkpoint_track_global_rng(ca, "rng"));
  path_in(dir, sizeof dir, "train");
  snprintf(prefix, sizeof prefix, "%s/ckpt", dir);
  EXPECT_OK(kiln_checkpoint_save(&path, ca, prefix));
  kiln_string_free(path);
  train_small_batches(a, 3, 2);
  na = all_values(va, a, oa);

  kiln_set_seed(777);
  b = dropout_model(&ob);
  EXPECT_OK(kiln_checkpoint_create(&cb));
  EXPECT_OK(kiln_checkpoint_track_layer(cb, "model", b));
  EXPECT_OK(kiln_checkpoint_track_global_rng(cb, "rng"));
  EXPECT_OK(kiln_checkpoint_restore(&st, cb, dir)); /* the directory's latest checkpoint */
  EXPECT_OK(kiln_checkpoint_load_status_assert_existing_objects_matched(st));
  train_small_batches(b, 3, 2);
  EXPECT_OK(kiln_checkpoint_load_status_assert_consumed(st));
  kiln_checkpoint_load_status_free(st);
  nb = all_values(vb, b, ob);
  CHECK(same_values(vb, nb, va, na));

  /* Without the random state, the masks after the restore are other ones. */
  na = all_values(va, a, oa);
  kiln_set_seed(777);
  c = dropout_model(&oc);
  EXPECT_OK(kiln_checkpoint_create(&cc));
  EXPECT_OK(kiln_checkpoint_track_layer(cc, "model", c));
  EXPECT_OK(kiln_checkpoint_restore(&st, cc, dir));
  EXPECT_OK(kiln_checkpoint_load_status_expect_partial(st));
  kiln_checkpoint_load_status_free(st);
  train_small_batches(c, 3, 2);
  nc = all_values(vc, c, oc);
  CHECK(!same_values(vc, nc, va, na));

  kiln_checkpoint_free(ca), kiln_checkpoint_free(cb), kiln_checkpoint_free(cc);
  kiln_layer_free(a), kiln_layer_free(b), kiln_layer_free(c);
  kiln_optimizer_free(oa), kiln_optimizer_free(ob), kiln_optimizer_free(oc);
}

static void test_errors(void) {
  kiln_checkpoint *c = NULL;
  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_ERROR(kiln_checkpoint_track_global_rng(NULL, "rng"), INVALID, "kiln_checkpoint_track_global_rng",
               "'checkpoint' is NULL");
  EXPECT_ERROR(kiln_checkpoint_track_global_rng(c, NULL), INVALID, "kiln_checkpoint_track_global_rng",
               "'name' is NULL");
  EXPECT_ERROR(kiln_checkpoint_track_global_rng(c, ""), INVALID, "empty", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_global_rng(c, "save_counter"), INVALID, "save_counter", NULL);
  /* The same name again replaces the object; another name is one more edge to the same state. */
  EXPECT_OK(kiln_checkpoint_track_global_rng(c, "rng"));
  EXPECT_OK(kiln_checkpoint_track_global_rng(c, "rng"));
  EXPECT_OK(kiln_checkpoint_track_global_rng(c, "rng2"));
  kiln_checkpoint_free(c);
}

int main(void) {
  strcpy(g_root, "/tmp/kiln_capi_rng_ckpt_XXXXXX");
  if (!mkdtemp(g_root)) {
    fprintf(stderr, "mkdtemp failed\n");
    return 1;
  }
  test_draws_after_a_restore();
  test_dropout_training_resumes();
  test_errors();
  release_kept();
  remove_tree(g_root);
  return test_summary();
}
