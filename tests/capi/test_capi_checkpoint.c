/* Writing and restoring checkpoints from plain C (kiln/checkpoint.h): a Checkpoint of a model and
 * its Adam optimizer saved after a few steps and restored into fresh objects continues training
 * bit for bit; save numbering, the `checkpoint` state file and kiln_latest_checkpoint; a
 * CheckpointManager keeping the newest files; save_weights / load_weights; the Keras fixture
 * (../shared/fixtures, skipped when absent) loaded into the same model; the load status's checks
 * and its warning through kiln_set_warning_callback; shape mismatches, corrupt files and NULL
 * arguments as statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capi_test_util.h"

#ifndef KILN_TEST_SOURCE_DIR
#error "KILN_TEST_SOURCE_DIR must name the source tree (tests/capi/CMakeLists.txt sets it)"
#endif
#define FIXTURE KILN_TEST_SOURCE_DIR "/../shared/fixtures/tf2_checkpoint/keras_embedding.ckpt-0"
#define DATA_SUFFIX ".data-00000-of-00001"

#define NOT_FOUND KILN_STATUS_NOT_FOUND
#define PRECONDITION KILN_STATUS_FAILED_PRECONDITION
#define DATA_LOSS KILN_STATUS_DATA_LOSS

/* ---------------------------------------------------------------- helpers */

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Paths under one temporary directory per test program, removed at the end. */
static char g_root[64];

static const char *path_in(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", g_root, name);
  return buf;
}

/* Checks a path kiln returned (then frees it): want NULL means the call had to give NULL. */
static void expect_path(char *got, const char *want) {
  if (!want) {
    if (got)
      report("gave '%s'; expected NULL", got);
    else
      ++g_passed;
  } else if (!got || strcmp(got, want) != 0) {
    report("gave '%s'; expected '%s'", got ? got : "(null)", want);
  } else {
    ++g_passed;
  }
  kiln_string_free(got);
}

static kiln_layer *layer_of(const char *class_name) {
  kiln_layer *l = NULL;
  EXPECT_OK(kiln_layer_create(&l, class_name, NULL));
  return l;
}

/* A Sequential of the given layers (freed here), built for inputs [-1, dims...]. */
static kiln_layer *sequential(kiln_layer **layers, size_t n, const int64_t *dims, size_t rank) {
  kiln_layer *m = NULL;
  size_t i;
  EXPECT_OK(kiln_layer_create(&m, "Sequential", NULL));
  for (i = 0; i < n; ++i) {
    EXPECT_OK(kiln_sequential_add(m, layers[i]));
    kiln_layer_free(layers[i]);
  }
  if (dims) EXPECT_OK(kiln_layer_build(m, dims, &rank, 1));
  return m;
}

/* Dense(8, relu), Dense(3, softmax) on 5 features: small enough to compare bit for bit. */
static kiln_layer *small_model(int64_t first_units) {
  kiln_layer *layers[2];
  int64_t dims[2] = {-1, 5};
  layers[0] = dense_layer(first_units, "relu");
  layers[1] = dense_layer(3, "softmax");
  return sequential(layers, 2, dims, 2);
}

static kiln_optimizer *adam(double lr) {
  kiln_config *c = NULL;
  kiln_optimizer *o = NULL;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_float(c, "learning_rate", lr));
  EXPECT_OK(kiln_optimizer_create(&o, "Adam", c));
  kiln_config_free(c);
  return o;
}

static void compile_model(kiln_layer *m, kiln_optimizer *opt) {
  const char *loss = "sparse_categorical_crossentropy";
  kiln_compile_options co;
  EXPECT_OK(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = opt;
  co.loss_names = &loss;
  co.num_loss_names = 1;
  EXPECT_OK(kiln_model_compile(m, &co));
}

/* The values of a layer's (or an optimizer's) variables, as tensors; *n gets the count. */
#define MAX_VARS 32
static size_t read_variables(kiln_tensor **out, kiln_variable **vars, size_t n) {
  size_t i;
  for (i = 0; i < n && i < MAX_VARS; ++i) {
    out[i] = NULL;
    EXPECT_OK(kiln_variable_read(&out[i], vars[i]));
    kiln_variable_free(vars[i]);
  }
  return n;
}

static size_t model_values(kiln_tensor **out, const kiln_layer *m) {
  kiln_variable *vars[MAX_VARS];
  size_t n = 0;
  EXPECT_OK(kiln_layer_get_variables(vars, MAX_VARS, &n, m, KILN_VARIABLES_ALL));
  return read_variables(out, vars, n < MAX_VARS ? n : MAX_VARS);
}

static size_t optimizer_values(kiln_tensor **out, const kiln_optimizer *o) {
  kiln_variable *vars[MAX_VARS];
  size_t n = 0;
  EXPECT_OK(kiln_optimizer_get_variables(vars, MAX_VARS, &n, o));
  return read_variables(out, vars, n < MAX_VARS ? n : MAX_VARS);
}

static int same_bits(const kiln_tensor *a, const kiln_tensor *b) {
  return a && b && kiln_tensor_get_dtype(a) == kiln_tensor_get_dtype(b) &&
         kiln_tensor_get_byte_size(a) == kiln_tensor_get_byte_size(b) &&
         memcmp(kiln_tensor_get_data(a), kiln_tensor_get_data(b), kiln_tensor_get_byte_size(a)) == 0;
}

/* Checks two sets of values bit for bit, then frees them. */
static void expect_same_values(kiln_tensor **a, size_t na, kiln_tensor **b, size_t nb, const char *what) {
  size_t i;
  CHECK(na == nb && na > 0);
  for (i = 0; i < na && i < nb; ++i)
    if (!same_bits(a[i], b[i])) fprintf(stderr, "%s %lu differs\n", what, (unsigned long)i), ++g_failed;
  if (na == nb) ++g_passed;
  for (i = 0; i < na; ++i) kiln_tensor_free(a[i]);
  for (i = 0; i < nb; ++i) kiln_tensor_free(b[i]);
}

static void copy_weights(const kiln_layer *from, kiln_layer *to) {
  kiln_variable *src[MAX_VARS], *dst[MAX_VARS];
  size_t ns = 0, nd = 0, i;
  EXPECT_OK(kiln_layer_get_variables(src, MAX_VARS, &ns, from, KILN_VARIABLES_ALL));
  EXPECT_OK(kiln_layer_get_variables(dst, MAX_VARS, &nd, to, KILN_VARIABLES_ALL));
  CHECK(ns == nd);
  for (i = 0; i < ns && i < nd; ++i) {
    kiln_tensor *v = NULL;
    EXPECT_OK(kiln_variable_read(&v, src[i]));
    EXPECT_OK(kiln_variable_assign(dst[i], v));
    kiln_tensor_free(v);
  }
  for (i = 0; i < ns; ++i) kiln_variable_free(src[i]);
  for (i = 0; i < nd; ++i) kiln_variable_free(dst[i]);
}

static int64_t iterations_of(const kiln_optimizer *o) {
  int64_t n = -1;
  EXPECT_OK(kiln_optimizer_get_iterations(&n, o));
  return n;
}

static kiln_checkpoint *model_checkpoint(kiln_layer *m, kiln_optimizer *opt) {
  kiln_checkpoint *c = NULL;
  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_OK(kiln_checkpoint_track_layer(c, "model", m));
  if (opt) EXPECT_OK(kiln_checkpoint_track_optimizer(c, "optimizer", opt));
  return c;
}

static kiln_variable *scalar_variable(const char *name, float value) {
  kiln_variable *v = NULL;
  EXPECT_OK(kiln_variable_create(&v, name, f32(0, NULL, &value), true));
  release_kept();
  return v;
}

static float variable_value(const kiln_variable *v) {
  kiln_tensor *t = NULL;
  float x = -1;
  EXPECT_OK(kiln_variable_read(&t, v));
  if (t) x = fdata(t)[0];
  kiln_tensor_free(t);
  return x;
}

static int64_t save_counter(const kiln_checkpoint *c) {
  int64_t n = -1;
  EXPECT_OK(kiln_checkpoint_get_save_counter(&n, c));
  return n;
}

/* ---------------------------------------------------------------- tests */

/* Training resumed from a checkpoint in fresh objects matches training that never stopped. */
static void test_resume_is_bit_identical(void) {
  char dir[128], want[256];
  kiln_layer *a = small_model(8), *b = small_model(8), *c = small_model(8);
  kiln_optimizer *oa = adam(0.01), *ob = adam(0.01), *oc = adam(0.01);
  kiln_checkpoint *ca, *cb;
  kiln_checkpoint_load_status *st = NULL;
  kiln_tensor *vb[MAX_VARS], *vc[MAX_VARS];
  size_t nb, nc;
  char *path = NULL;

  copy_weights(a, c);
  compile_model(a, oa);
  compile_model(b, ob);
  compile_model(c, oc);
  train_small_batches(a, 0, 3);
  ca = model_checkpoint(a, oa);
  path_in(dir, sizeof dir, "resume");
  snprintf(want, sizeof want, "%s/ckpt", dir);
  EXPECT_OK(kiln_checkpoint_save(&path, ca, want));
  snprintf(want, sizeof want, "%s/ckpt-1", dir);
  expect_path(path, want);

  /* A fresh process: other initial weights, an optimizer without slots. */
  cb = model_checkpoint(b, ob);
  CHECK(save_counter(cb) == 0);
  EXPECT_OK(kiln_checkpoint_restore(&st, cb, dir)); /* the directory's latest checkpoint */
  CHECK(st != NULL);
  CHECK(save_counter(cb) == 1);
  CHECK(iterations_of(ob) == 3);
  EXPECT_OK(kiln_checkpoint_load_status_assert_existing_objects_matched(st));
  /* Adam's moments wait for b's slots, made by its first step. */
  EXPECT_ERROR(kiln_checkpoint_load_status_assert_consumed(st), PRECONDITION, "not made yet", "optimizer/");
  train_small_batches(b, 3, 2);
  EXPECT_OK(kiln_checkpoint_load_status_assert_consumed(st));
  kiln_checkpoint_load_status_free(st);

  train_small_batches(c, 0, 5);
  nb = model_values(vb, b);
  nc = model_values(vc, c);
  expect_same_values(vb, nb, vc, nc, "weight");
  nb = optimizer_values(vb, ob);
  nc = optimizer_values(vc, oc);
  expect_same_values(vb, nb, vc, nc, "optimizer variable");
  CHECK(iterations_of(ob) == 5);

  kiln_checkpoint_free(ca);
  kiln_checkpoint_free(cb);
  kiln_layer_free(a), kiln_layer_free(b), kiln_layer_free(c);
  kiln_optimizer_free(oa), kiln_optimizer_free(ob), kiln_optimizer_free(oc);
}

static int file_contains(const char *path, const char *text) {
  char buf[4096];
  size_t n;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strstr(buf, text) != NULL;
}

/* save numbers its checkpoints and keeps the state file; write does neither; restore continues
 * the numbering; kiln_latest_checkpoint reads the state file. */
static void test_save_numbering_and_state(void) {
  char dir[128], prefix[192], want[256], state[256];
  kiln_variable *v = scalar_variable("v", 1.f), *v2 = scalar_variable("v", 0.f);
  kiln_checkpoint *c = NULL, *again = NULL;
  kiln_checkpoint_load_status *st = NULL;
  char *path = NULL;
  float two = 2.f;

  path_in(dir, sizeof dir, "numbering");
  snprintf(prefix, sizeof prefix, "%s/ckpt", dir);
  EXPECT_OK(kiln_latest_checkpoint(&path, dir)); /* no directory yet */
  expect_path(path, NULL);

  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_OK(kiln_checkpoint_track_variable(c, "v", v));
  EXPECT_OK(kiln_checkpoint_save(&path, c, prefix));
  snprintf(want, sizeof want, "%s-1", prefix);
  expect_path(path, want);
  EXPECT_OK(kiln_variable_assign(v, f32(0, NULL, &two)));
  release_kept();
  EXPECT_OK(kiln_checkpoint_save(NULL, c, prefix)); /* the path is optional */
  CHECK(save_counter(c) == 2);
  snprintf(want, sizeof want, "%s-2.index", prefix);
  CHECK(exists(want));
  snprintf(want, sizeof want, "%s-2" DATA_SUFFIX, prefix);
  CHECK(exists(want));
  snprintf(state, sizeof state, "%s/checkpoint", dir);
  CHECK(file_contains(state, "model_checkpoint_path: \"ckpt-2\""));
  snprintf(want, sizeof want, "%s-2", prefix);
  EXPECT_OK(kiln_latest_checkpoint(&path, dir));
  expect_path(path, want);

  /* write: exactly the prefix; the counter and the state file stay. */
  snprintf(want, sizeof want, "%s/exact", dir);
  EXPECT_OK(kiln_checkpoint_write(&path, c, want));
  expect_path(path, want);
  CHECK(save_counter(c) == 2);
  snprintf(want, sizeof want, "%s-2", prefix);
  EXPECT_OK(kiln_latest_checkpoint(&path, dir));
  expect_path(path, want);

  /* A new checkpoint restored from the directory continues the numbering. */
  EXPECT_OK(kiln_checkpoint_create(&again));
  EXPECT_OK(kiln_checkpoint_track_variable(again, "v", v2));
  EXPECT_OK(kiln_checkpoint_restore(&st, again, dir));
  EXPECT_OK(kiln_checkpoint_load_status_assert_consumed(st));
  kiln_checkpoint_load_status_free(st);
  st = NULL;
  CHECK(variable_value(v2) == 2.f);
  CHECK(save_counter(again) == 2);
  EXPECT_OK(kiln_checkpoint_save(&path, again, prefix));
  snprintf(want, sizeof want, "%s-3", prefix);
  expect_path(path, want);
  /* read: exactly a prefix (write's counterpart); a directory is not one. */
  snprintf(want, sizeof want, "%s/exact", dir);
  EXPECT_OK(kiln_checkpoint_read(NULL, again, want));
  EXPECT_ERROR(kiln_checkpoint_read(&st, again, dir), NOT_FOUND, NULL, NULL);
  CHECK(st == NULL);

  kiln_checkpoint_free(c);
  kiln_checkpoint_free(again);
  kiln_variable_free(v);
  kiln_variable_free(v2);
}

/* A manager keeps the newest max_to_keep checkpoints and deletes the files of the others. */
static void test_manager(void) {
  char dir[128], want[256], file[256];
  kiln_variable *v = scalar_variable("v", 1.f), *v2 = scalar_variable("v", 0.f);
  kiln_checkpoint *c = NULL, *c2 = NULL;
  kiln_checkpoint_manager *m = NULL, *m2 = NULL;
  kiln_config *opts = NULL, *list = NULL;
  const char *s = NULL;
  size_t n = 0;
  int i;
  char *path = NULL;

  path_in(dir, sizeof dir, "managed");
  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_OK(kiln_checkpoint_track_variable(c, "v", v));
  EXPECT_OK(kiln_config_create(&opts));
  EXPECT_OK(kiln_config_set_int(opts, "max_to_keep", 2));
  EXPECT_OK(kiln_checkpoint_manager_create(&m, c, dir, opts));
  EXPECT_OK(kiln_checkpoint_manager_get_directory(&s, m));
  CHECK(s && strcmp(s, dir) == 0);
  EXPECT_OK(kiln_checkpoint_manager_get_latest_checkpoint(&path, m));
  expect_path(path, NULL);
  EXPECT_OK(kiln_checkpoint_manager_restore_or_initialize(&path, m)); /* nothing yet */
  expect_path(path, NULL);
  for (i = 1; i <= 4; ++i) {
    EXPECT_OK(kiln_checkpoint_manager_save(&path, m, -1));
    snprintf(want, sizeof want, "%s/ckpt-%d", dir, i);
    expect_path(path, want);
  }
  for (i = 1; i <= 4; ++i) {
    snprintf(file, sizeof file, "%s/ckpt-%d.index", dir, i);
    CHECK(exists(file) == (i >= 3));
    snprintf(file, sizeof file, "%s/ckpt-%d" DATA_SUFFIX, dir, i);
    CHECK(exists(file) == (i >= 3));
  }
  EXPECT_OK(kiln_checkpoint_manager_get_checkpoints(&list, m));
  EXPECT_OK(kiln_config_get_list_size(&n, list, "checkpoints"));
  CHECK(n == 2);
  EXPECT_OK(kiln_config_get_string_at(&s, list, "checkpoints", 0));
  snprintf(want, sizeof want, "%s/ckpt-3", dir);
  CHECK(s && strcmp(s, want) == 0);
  kiln_config_free(list);
  snprintf(want, sizeof want, "%s/ckpt-4", dir);
  EXPECT_OK(kiln_checkpoint_manager_get_latest_checkpoint(&path, m));
  expect_path(path, want);
  EXPECT_OK(kiln_latest_checkpoint(&path, dir));
  expect_path(path, want);

  /* An explicit number; the counter still goes up. */
  EXPECT_OK(kiln_checkpoint_manager_save(&path, m, 100));
  snprintf(want, sizeof want, "%s/ckpt-100", dir);
  expect_path(path, want);
  CHECK(save_counter(c) == 5);
  snprintf(file, sizeof file, "%s/ckpt-3.index", dir);
  CHECK(!exists(file));
  EXPECT_ERROR(kiln_checkpoint_manager_save(&path, m, -3), INVALID, "checkpoint_number", "-3");

  /* A later process: its manager carries on with the directory's list, and restores. */
  EXPECT_OK(kiln_checkpoint_create(&c2));
  EXPECT_OK(kiln_checkpoint_track_variable(c2, "v", v2));
  EXPECT_OK(kiln_checkpoint_manager_create(&m2, c2, dir, opts));
  EXPECT_OK(kiln_checkpoint_manager_restore_or_initialize(&path, m2));
  expect_path(path, want);
  CHECK(variable_value(v2) == 1.f);
  EXPECT_OK(kiln_checkpoint_manager_save(&path, m2, -1));
  snprintf(want, sizeof want, "%s/ckpt-6", dir);
  expect_path(path, want);
  snprintf(file, sizeof file, "%s/ckpt-4.index", dir);
  CHECK(!exists(file));

  /* Options: TF's names and checks. */
  {
    kiln_checkpoint_manager *bad = NULL;
    kiln_config *o = NULL;
    char other[192];
    EXPECT_OK(kiln_config_create(&o));
    EXPECT_OK(kiln_config_set_int(o, "max_to_keep", 0));
    EXPECT_ERROR(kiln_checkpoint_manager_create(&bad, c, dir, o), INVALID, "max_to_keep", NULL);
    EXPECT_OK(kiln_config_set_null(o, "max_to_keep"));
    EXPECT_OK(kiln_config_set_float(o, "keep_checkpoint_every_n_hours", -1));
    EXPECT_ERROR(kiln_checkpoint_manager_create(&bad, c, dir, o), INVALID, "keep_checkpoint_every_n_hours",
                 NULL);
    EXPECT_OK(kiln_config_remove(o, "keep_checkpoint_every_n_hours"));
    EXPECT_OK(kiln_config_set_int(o, "max_to_kep", 3));
    EXPECT_ERROR(kiln_checkpoint_manager_create(&bad, c, dir, o), INVALID, "max_to_kep", "max_to_keep");
    EXPECT_OK(kiln_config_remove(o, "max_to_kep"));
    EXPECT_OK(kiln_config_set_string(o, "max_to_keep", "three"));
    EXPECT_ERROR(kiln_checkpoint_manager_create(&bad, c, dir, o), INVALID, "max_to_keep", NULL);
    CHECK(bad == NULL);
    /* checkpoint_name, and every checkpoint kept without max_to_keep (NULL options: defaults). */
    EXPECT_OK(kiln_config_remove(o, "max_to_keep"));
    EXPECT_OK(kiln_config_set_string(o, "checkpoint_name", "model"));
    path_in(other, sizeof other, "named");
    EXPECT_OK(kiln_checkpoint_manager_create(&bad, c, other, o));
    for (i = 0; i < 3; ++i) EXPECT_OK(kiln_checkpoint_manager_save(NULL, bad, -1));
    EXPECT_OK(kiln_checkpoint_manager_get_checkpoints(&list, bad));
    EXPECT_OK(kiln_config_get_list_size(&n, list, "checkpoints"));
    CHECK(n == 3);
    kiln_config_free(list);
    snprintf(file, sizeof file, "%s/model-7.index", other);
    CHECK(exists(file));
    kiln_checkpoint_manager_free(bad);
    kiln_config_free(o);
  }

  /* The manager keeps its checkpoint alive after the handle is freed. */
  kiln_checkpoint_free(c);
  EXPECT_OK(kiln_checkpoint_manager_save(NULL, m, -1));
  kiln_checkpoint_manager_free(m);
  kiln_checkpoint_manager_free(m2);
  kiln_checkpoint_free(c2);
  kiln_config_free(opts);
  kiln_variable_free(v);
  kiln_variable_free(v2);
}

/* save_weights / load_weights (Keras's TF format) restore weights and optimizer state. */
static void test_save_and_load_weights(void) {
  char prefix[192];
  kiln_layer *a = small_model(8), *b = small_model(8), *unbuilt = NULL, *built = NULL;
  kiln_optimizer *oa = adam(0.01), *ob = adam(0.01);
  kiln_checkpoint_load_status *st = NULL;
  kiln_tensor *va[MAX_VARS], *vb[MAX_VARS];
  size_t na, nb, rank = 2;
  int64_t dims[2] = {-1, 5};
  kiln_layer *layers[2];

  compile_model(a, oa);
  compile_model(b, ob);
  train_small_batches(a, 0, 2);
  path_in(prefix, sizeof prefix, "weights/w");
  EXPECT_OK(kiln_model_save_weights(a, prefix));
  EXPECT_OK(kiln_model_load_weights(&st, b, prefix));
  EXPECT_OK(kiln_checkpoint_load_status_assert_nontrivial_match(st));
  CHECK(iterations_of(ob) == 2);
  train_small_batches(b, 2, 1);
  train_small_batches(a, 2, 1);
  EXPECT_OK(kiln_checkpoint_load_status_assert_consumed(st));
  kiln_checkpoint_load_status_free(st);
  st = NULL;
  na = model_values(va, a);
  nb = model_values(vb, b);
  expect_same_values(va, na, vb, nb, "weight");

  /* The directory: its latest checkpoint (save_weights recorded it). */
  path_in(prefix, sizeof prefix, "weights");
  EXPECT_OK(kiln_model_load_weights(NULL, b, prefix));

  /* An unbuilt model takes the weights when it builds (Keras's deferred restoration). */
  layers[0] = dense_layer(8, "relu");
  layers[1] = dense_layer(3, "softmax");
  unbuilt = sequential(layers, 2, NULL, 0);
  EXPECT_OK(kiln_model_load_weights(&st, unbuilt, prefix));
  EXPECT_ERROR(kiln_checkpoint_load_status_assert_consumed(st), PRECONDITION, "unbuilt model", NULL);
  EXPECT_OK(kiln_layer_build(unbuilt, dims, &rank, 1));
  EXPECT_OK(kiln_checkpoint_load_status_expect_partial(st)); /* the optimizer's values: not compiled */
  kiln_checkpoint_load_status_free(st);
  st = NULL;
  built = small_model(8);
  EXPECT_OK(kiln_model_load_weights(&st, built, prefix));
  EXPECT_OK(kiln_checkpoint_load_status_expect_partial(st));
  kiln_checkpoint_load_status_free(st);
  st = NULL;
  na = model_values(va, unbuilt);
  nb = model_values(vb, built);
  expect_same_values(va, na, vb, nb, "deferred weight");
  EXPECT_ERROR(kiln_model_save_weights(a, "/tmp/kiln_weights.h5"), KILN_STATUS_UNIMPLEMENTED, "HDF5", NULL);
  CHECK(st == NULL);
  kiln_layer_free(unbuilt);
  kiln_layer_free(built);
  kiln_layer_free(a), kiln_layer_free(b);
  kiln_optimizer_free(oa), kiln_optimizer_free(ob);
}

/* A subclassed model keeping its sub-layers in attributes (Keras's `self.first = Dense(3)`,
 * `self.heads = [Dense(2)]`): kiln_layer_track_as keys them by the attribute, as Keras. */
typedef struct {
  kiln_layer *first, *head;
} two_layers;

static kiln_status *two_layers_call(kiln_tensor_list *outputs, kiln_layer *self,
                                    const kiln_tensor_list *inputs, bool training, void *user) {
  two_layers *t = (two_layers *)user;
  kiln_tensor *x = NULL, *h = NULL, *y = NULL;
  kiln_status *st;
  (void)self;
  if ((st = kiln_tensor_list_get(&x, inputs, 0))) return st;
  st = kiln_layer_call_tensor(&h, t->first, x, training);
  if (!st) st = kiln_layer_call_tensor(&y, t->head, h, training);
  if (!st) st = kiln_tensor_list_append(outputs, y);
  kiln_tensor_free(x);
  kiln_tensor_free(h);
  kiln_tensor_free(y);
  return st;
}

static kiln_layer *attribute_model(two_layers *t) {
  kiln_layer_callbacks cb;
  kiln_layer *m = NULL;
  int64_t dims[2] = {-1, 4};
  size_t rank = 2;
  memset(&cb, 0, sizeof cb);
  cb.struct_size = sizeof cb;
  cb.call = two_layers_call;
  t->first = dense_layer(3, "relu");
  t->head = dense_layer(2, "linear");
  EXPECT_OK(kiln_model_create_custom(&m, "TwoLayers", NULL, &cb, t));
  EXPECT_OK(kiln_layer_track_as(m, t->first, "first"));
  EXPECT_OK(kiln_layer_track_as(m, t->head, "heads/0"));
  EXPECT_OK(kiln_layer_build(m, dims, &rank, 1));
  return m;
}

static void test_attribute_names(void) {
  char prefix[192];
  two_layers ta, tb;
  kiln_layer *a = attribute_model(&ta), *b = attribute_model(&tb);
  kiln_checkpoint_load_status *st = NULL;
  kiln_checkpoint_reader *r = NULL;
  kiln_tensor *va[MAX_VARS], *vb[MAX_VARS];
  size_t na, nb;
  bool has = false;

  path_in(prefix, sizeof prefix, "attrs/w");
  EXPECT_OK(kiln_model_save_weights(a, prefix));
  EXPECT_OK(kiln_checkpoint_reader_open(&r, prefix));
  EXPECT_OK(kiln_checkpoint_reader_has_tensor(&has, r, "first/kernel/.ATTRIBUTES/VARIABLE_VALUE"));
  CHECK(has);
  EXPECT_OK(kiln_checkpoint_reader_has_tensor(&has, r, "heads/0/bias/.ATTRIBUTES/VARIABLE_VALUE"));
  CHECK(has);
  EXPECT_OK(
      kiln_checkpoint_reader_has_tensor(&has, r, "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"));
  CHECK(!has);
  kiln_checkpoint_reader_free(r);
  EXPECT_OK(kiln_model_load_weights(&st, b, prefix));
  EXPECT_OK(kiln_checkpoint_load_status_assert_consumed(st));
  kiln_checkpoint_load_status_free(st);
  na = model_values(va, a);
  nb = model_values(vb, b);
  CHECK(na == 4);
  expect_same_values(va, na, vb, nb, "attribute weight");

  EXPECT_ERROR(kiln_layer_track_as(a, ta.first, ""), INVALID, "empty", NULL);
  EXPECT_ERROR(kiln_layer_track_as(a, ta.first, NULL), INVALID, "attribute", NULL);
  EXPECT_ERROR(kiln_layer_track_as(a, NULL, "x"), INVALID, "child", NULL);
  EXPECT_ERROR(kiln_layer_track_as(NULL, ta.first, "x"), INVALID, "layer", NULL);
  EXPECT_ERROR(kiln_layer_track_as(b, tb.first, "a//b"), INVALID, "empty part", NULL);
  /* After the build, a new attribute is refused as a new sub-layer is. */
  EXPECT_ERROR(kiln_layer_track_as(a, ta.first, "again"), PRECONDITION, "after the layer was built", NULL);
  kiln_layer_free(a), kiln_layer_free(b);
  kiln_layer_free(ta.first), kiln_layer_free(ta.head);
  kiln_layer_free(tb.first), kiln_layer_free(tb.head);
}

/* The real Keras 2.13 checkpoint loads into the same model built in kiln. */
static void test_keras_fixture(void) {
  kiln_layer *layers[4], *m;
  kiln_optimizer *opt = adam(0.5);
  kiln_checkpoint_load_status *st = NULL;
  kiln_checkpoint_reader *r = NULL;
  kiln_config *drop = NULL, *info = NULL;
  kiln_tensor *vals[MAX_VARS], *saved = NULL;
  size_t n = 0, i;
  int64_t dims[3] = {-1, 28, 28}, count = 0;

  if (!exists(FIXTURE ".index")) {
    printf("skipped test_keras_fixture: %s is absent\n", FIXTURE);
    kiln_optimizer_free(opt);
    return;
  }
  layers[0] = layer_of("Flatten");
  layers[1] = dense_layer(200, "relu");
  EXPECT_OK(kiln_config_create(&drop));
  EXPECT_OK(kiln_config_set_float(drop, "rate", 0.2));
  EXPECT_OK(kiln_layer_create(&layers[2], "Dropout", drop));
  kiln_config_free(drop);
  layers[3] = dense_layer(10, "softmax");
  m = sequential(layers, 4, dims, 3);
  compile_model(m, opt);
  EXPECT_OK(kiln_model_load_weights(&st, m, FIXTURE));
  CHECK(iterations_of(opt) == 1500);
  EXPECT_OK(kiln_checkpoint_load_status_assert_existing_objects_matched(st));
  /* Adam's moments wait for the slots, as in TensorFlow. */
  EXPECT_ERROR(kiln_checkpoint_load_status_assert_consumed(st), PRECONDITION, "optimizer/_variables/1", NULL);
  EXPECT_OK(kiln_checkpoint_load_status_get_info(&info, st));
  EXPECT_OK(kiln_config_get_list_size(&n, info, "pending_values"));
  CHECK(n == 8);
  EXPECT_OK(kiln_config_get_int(&count, info, "restored_count"));
  CHECK(count == 6); /* 4 weights, iterations, learning rate */
  kiln_config_free(info);
  EXPECT_OK(kiln_checkpoint_load_status_expect_partial(st)); /* no step here: the moments never land */
  kiln_checkpoint_load_status_free(st);

  EXPECT_OK(kiln_checkpoint_reader_open(&r, FIXTURE));
  EXPECT_OK(
      kiln_checkpoint_reader_get_tensor(&saved, r, "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"));
  n = model_values(vals, m);
  CHECK(n == 4);
  CHECK(n > 0 && same_bits(vals[0], saved));
  for (i = 0; i < n; ++i) kiln_tensor_free(vals[i]);
  kiln_tensor_free(saved);
  kiln_checkpoint_reader_free(r);
  kiln_layer_free(m);
  kiln_optimizer_free(opt);
}

/* Warnings for values no object took go through kiln_set_warning_callback. */
static char g_warning[1024];
static int g_warnings = 0;
static void on_warning(const char *text, void *user_data) {
  (void)user_data;
  ++g_warnings;
  strncpy(g_warning, text, sizeof g_warning - 1);
}

static void test_load_status_checks_and_warning(void) {
  char prefix[192];
  kiln_variable *v = scalar_variable("v", 1.f), *w = scalar_variable("w", 2.f);
  kiln_variable *v2 = scalar_variable("v", 0.f), *extra = scalar_variable("extra", 0.f);
  kiln_checkpoint *c = NULL, *partial = NULL, *nested = NULL, *outer = NULL;
  kiln_checkpoint_load_status *st = NULL;
  kiln_config *info = NULL;
  const char *s = NULL;

  path_in(prefix, sizeof prefix, "partial/p");
  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_OK(kiln_checkpoint_track_variable(c, "v", v));
  EXPECT_OK(kiln_checkpoint_track_variable(c, "w", w));
  EXPECT_OK(kiln_checkpoint_write(NULL, c, prefix));

  EXPECT_OK(kiln_set_warning_callback(on_warning, NULL));
  EXPECT_OK(kiln_checkpoint_create(&partial));
  EXPECT_OK(kiln_checkpoint_track_variable(partial, "v", v2));
  EXPECT_OK(kiln_checkpoint_track_variable(partial, "extra", extra));
  EXPECT_OK(kiln_checkpoint_read(&st, partial, prefix));
  CHECK(variable_value(v2) == 1.f);
  EXPECT_ERROR(kiln_checkpoint_load_status_assert_consumed(st), PRECONDITION, "w",
               "variable 'extra' at 'extra'");
  EXPECT_ERROR(kiln_checkpoint_load_status_assert_existing_objects_matched(st), PRECONDITION, "'extra'",
               NULL);
  EXPECT_OK(kiln_checkpoint_load_status_assert_nontrivial_match(st));
  EXPECT_OK(kiln_checkpoint_load_status_get_info(&info, st));
  EXPECT_OK(kiln_config_get_string_at(&s, info, "unmatched_values", 0));
  CHECK(s && strcmp(s, "w") == 0);
  EXPECT_OK(kiln_config_get_string(&s, info, "path"));
  CHECK(s && strcmp(s, prefix) == 0);
  kiln_config_free(info);
  CHECK(g_warnings == 0);
  kiln_checkpoint_load_status_free(st); /* values no object took: the warning comes now */
  CHECK(g_warnings == 1);
  CHECK(strstr(g_warning, "expect_partial") != NULL && strstr(g_warning, "w") != NULL);
  EXPECT_OK(kiln_checkpoint_read(&st, partial, prefix));
  EXPECT_OK(kiln_checkpoint_load_status_expect_partial(st));
  kiln_checkpoint_load_status_free(st);
  CHECK(g_warnings == 1);
  EXPECT_OK(kiln_checkpoint_read(NULL, partial, prefix)); /* a status not taken warns at once */
  CHECK(g_warnings == 2);
  EXPECT_OK(kiln_set_warning_callback(NULL, NULL));

  /* Nesting: a checkpoint's objects under a name, and the same name again replaces. */
  EXPECT_OK(kiln_checkpoint_create(&nested));
  EXPECT_OK(kiln_checkpoint_track_variable(nested, "v", v));
  EXPECT_OK(kiln_checkpoint_create(&outer));
  EXPECT_OK(kiln_checkpoint_track_checkpoint(outer, "inner", nested));
  EXPECT_OK(kiln_checkpoint_track_variable(outer, "w", v));
  EXPECT_OK(kiln_checkpoint_track_variable(outer, "w", w));
  path_in(prefix, sizeof prefix, "nested/n");
  EXPECT_OK(kiln_checkpoint_write(NULL, outer, prefix));
  {
    kiln_checkpoint_reader *r = NULL;
    bool has = false;
    EXPECT_OK(kiln_checkpoint_reader_open(&r, prefix));
    EXPECT_OK(kiln_checkpoint_reader_has_tensor(&has, r, "inner/v/.ATTRIBUTES/VARIABLE_VALUE"));
    CHECK(has);
    EXPECT_OK(kiln_checkpoint_reader_has_tensor(&has, r, "w/.ATTRIBUTES/VARIABLE_VALUE"));
    CHECK(has);
    kiln_checkpoint_reader_free(r);
  }
  EXPECT_ERROR(kiln_checkpoint_track_checkpoint(outer, "self", outer), INVALID, "itself", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_variable(outer, "save_counter", v), INVALID, "save_counter", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_variable(outer, "", v), INVALID, "empty", NULL);

  kiln_checkpoint_free(c), kiln_checkpoint_free(partial), kiln_checkpoint_free(nested),
      kiln_checkpoint_free(outer);
  kiln_variable_free(v), kiln_variable_free(w), kiln_variable_free(v2), kiln_variable_free(extra);
}

/* A weight that does not fit names both shapes; a corrupt file is DATA_LOSS; neither changes a
 * thing; a name-based or missing checkpoint is an error too. */
static void test_errors(void) {
  char prefix[192], data[256];
  kiln_layer *saved = small_model(8), *wrong = small_model(9);
  kiln_checkpoint_load_status *st = NULL;
  kiln_tensor *before[MAX_VARS], *after[MAX_VARS];
  size_t nbefore, nafter;
  kiln_variable *v = scalar_variable("v", 3.f), *v2 = scalar_variable("v", 0.f);
  kiln_checkpoint *c = NULL;

  path_in(prefix, sizeof prefix, "errors/w");
  EXPECT_OK(kiln_model_save_weights(saved, prefix));
  nbefore = model_values(before, wrong);
  EXPECT_ERROR(kiln_model_load_weights(&st, wrong, prefix), INVALID, "[5, 9]", "[5, 8]");
  CHECK(st == NULL);
  nafter = model_values(after, wrong);
  expect_same_values(before, nbefore, after, nafter, "weight after a failed load");

  /* A corrupt data file. */
  path_in(prefix, sizeof prefix, "errors/v");
  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_OK(kiln_checkpoint_track_variable(c, "v", v));
  EXPECT_OK(kiln_checkpoint_write(NULL, c, prefix));
  kiln_checkpoint_free(c);
  snprintf(data, sizeof data, "%s" DATA_SUFFIX, prefix);
  {
    FILE *f = fopen(data, "r+b");
    int ch;
    CHECK(f != NULL);
    if (f) {
      ch = fgetc(f);
      fseek(f, 0, SEEK_SET);
      fputc(ch ^ 0x5a, f);
      fclose(f);
    }
  }
  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_OK(kiln_checkpoint_track_variable(c, "v", v2));
  EXPECT_ERROR(kiln_checkpoint_read(&st, c, prefix), DATA_LOSS, NULL, NULL);
  CHECK(st == NULL);
  CHECK(variable_value(v2) == 0.f);
  path_in(prefix, sizeof prefix, "errors/none");
  EXPECT_ERROR(kiln_checkpoint_restore(&st, c, prefix), NOT_FOUND, NULL, NULL);
  path_in(prefix, sizeof prefix, "empty");
  CHECK(mkdir(prefix, 0700) == 0);
  EXPECT_ERROR(kiln_checkpoint_restore(&st, c, prefix), NOT_FOUND, "holds no checkpoint", NULL);
  CHECK(st == NULL);
  kiln_checkpoint_free(c);

  kiln_layer_free(saved), kiln_layer_free(wrong);
  kiln_variable_free(v), kiln_variable_free(v2);
}

/* Every entry point: NULL handles and strings are INVALID_ARGUMENT; the frees accept NULL. */
static void test_null_arguments(void) {
  kiln_checkpoint *c = NULL;
  kiln_checkpoint_manager *m = NULL;
  kiln_checkpoint_load_status *st = NULL;
  kiln_config *cfg = NULL;
  kiln_variable *v = scalar_variable("v", 1.f);
  kiln_layer *model = small_model(4);
  kiln_optimizer *opt = adam(0.1);
  char *path = NULL;
  const char *s = NULL;
  int64_t n = 0;

  EXPECT_OK(kiln_checkpoint_create(&c));
  EXPECT_ERROR(kiln_checkpoint_create(NULL), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_layer(NULL, "m", model), INVALID, "checkpoint", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_layer(c, NULL, model), INVALID, "name", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_layer(c, "m", NULL), INVALID, "layer", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_optimizer(NULL, "o", opt), INVALID, "checkpoint", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_optimizer(c, "o", NULL), INVALID, "optimizer", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_variable(c, "v", NULL), INVALID, "variable", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_variable(c, NULL, v), INVALID, "name", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_checkpoint(c, "c", NULL), INVALID, "child", NULL);
  EXPECT_ERROR(kiln_checkpoint_track_checkpoint(NULL, "c", c), INVALID, "checkpoint", NULL);
  EXPECT_ERROR(kiln_checkpoint_save(&path, NULL, "/tmp/x"), INVALID, "checkpoint", NULL);
  EXPECT_ERROR(kiln_checkpoint_save(&path, c, NULL), INVALID, "file_prefix", NULL);
  EXPECT_ERROR(kiln_checkpoint_save(&path, c, ""), INVALID, "empty", NULL);
  EXPECT_ERROR(kiln_checkpoint_write(&path, NULL, "/tmp/x"), INVALID, "checkpoint", NULL);
  EXPECT_ERROR(kiln_checkpoint_write(&path, c, NULL), INVALID, "file_prefix", NULL);
  CHECK(path == NULL);
  EXPECT_ERROR(kiln_checkpoint_restore(&st, NULL, "/tmp/x"), INVALID, "checkpoint", NULL);
  EXPECT_ERROR(kiln_checkpoint_restore(&st, c, NULL), INVALID, "save_path", NULL);
  EXPECT_ERROR(kiln_checkpoint_read(&st, NULL, "/tmp/x"), INVALID, "checkpoint", NULL);
  EXPECT_ERROR(kiln_checkpoint_read(&st, c, NULL), INVALID, "save_path", NULL);
  CHECK(st == NULL);
  EXPECT_ERROR(kiln_checkpoint_get_save_counter(NULL, c), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_get_save_counter(&n, NULL), INVALID, "checkpoint", NULL);

  EXPECT_ERROR(kiln_checkpoint_load_status_expect_partial(NULL), INVALID, "status", NULL);
  EXPECT_ERROR(kiln_checkpoint_load_status_assert_consumed(NULL), INVALID, "status", NULL);
  EXPECT_ERROR(kiln_checkpoint_load_status_assert_existing_objects_matched(NULL), INVALID, "status", NULL);
  EXPECT_ERROR(kiln_checkpoint_load_status_assert_nontrivial_match(NULL), INVALID, "status", NULL);
  EXPECT_ERROR(kiln_checkpoint_load_status_get_info(&cfg, NULL), INVALID, "status", NULL);
  EXPECT_ERROR(kiln_checkpoint_load_status_get_info(NULL, NULL), INVALID, "out", NULL);
  CHECK(cfg == NULL);

  EXPECT_ERROR(kiln_checkpoint_manager_create(NULL, c, "/tmp/x", NULL), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_create(&m, NULL, "/tmp/x", NULL), INVALID, "checkpoint", NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_create(&m, c, NULL, NULL), INVALID, "directory", NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_create(&m, c, "", NULL), INVALID, "directory", NULL);
  CHECK(m == NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_save(&path, NULL, -1), INVALID, "manager", NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_get_latest_checkpoint(&path, NULL), INVALID, "manager", NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_get_latest_checkpoint(NULL, NULL), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_get_checkpoints(&cfg, NULL), INVALID, "manager", NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_get_directory(&s, NULL), INVALID, "manager", NULL);
  EXPECT_ERROR(kiln_checkpoint_manager_restore_or_initialize(&path, NULL), INVALID, "manager", NULL);
  EXPECT_ERROR(kiln_latest_checkpoint(&path, NULL), INVALID, "checkpoint_dir", NULL);
  EXPECT_ERROR(kiln_latest_checkpoint(NULL, "/tmp"), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_model_save_weights(NULL, "/tmp/x"), INVALID, "model", NULL);
  EXPECT_ERROR(kiln_model_save_weights(model, NULL), INVALID, "filepath", NULL);
  EXPECT_ERROR(kiln_model_save_weights(model, ""), INVALID, "empty", NULL);
  EXPECT_ERROR(kiln_model_load_weights(&st, NULL, "/tmp/x"), INVALID, "model", NULL);
  EXPECT_ERROR(kiln_model_load_weights(&st, model, NULL), INVALID, "filepath", NULL);
  CHECK(path == NULL && st == NULL && cfg == NULL);

  kiln_checkpoint_free(NULL);
  kiln_checkpoint_load_status_free(NULL);
  kiln_checkpoint_manager_free(NULL);
  kiln_checkpoint_free(c);
  kiln_variable_free(v);
  kiln_layer_free(model);
  kiln_optimizer_free(opt);
}

int main(void) {
  strcpy(g_root, "/tmp/kiln_capi_ckpt_save_XXXXXX");
  if (!mkdtemp(g_root)) {
    fprintf(stderr, "mkdtemp failed\n");
    return 1;
  }
  kiln_set_seed(7);
  test_resume_is_bit_identical();
  test_save_numbering_and_state();
  test_manager();
  test_save_and_load_weights();
  test_keras_fixture();
  test_attribute_names();
  test_load_status_checks_and_warning();
  test_errors();
  test_null_arguments();
  release_kept();
  remove_tree(g_root);
  return test_summary();
}
