/* kiln/checkpoint.h from plain C: TensorFlow's own checkpoints (a TF2 Keras checkpoint and a TF1
 * BERT one from ../shared/fixtures) listed and read, a directory through its state file, a
 * checkpoint named by one of its files, corrupt and truncated copies, unknown names, the string
 * object graph, and NULL arguments. Exits 77 (skipped) when the fixtures are absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capi_test_util.h"

#ifndef KILN_TEST_SOURCE_DIR
#error "KILN_TEST_SOURCE_DIR must name the source tree (tests/capi/CMakeLists.txt sets it)"
#endif
#define FIXTURES KILN_TEST_SOURCE_DIR "/../shared/fixtures"
#define TF2_DIR FIXTURES "/tf2_checkpoint"
#define TF2 TF2_DIR "/keras_embedding.ckpt-0"
#define BERT FIXTURES "/tf1_bert_tiny/bert_model.ckpt"
#define DATA_SUFFIX ".data-00000-of-00001"

#define KERNEL0 "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
#define BIAS0 "layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE"
#define ITERATIONS "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
#define LEARNING_RATE "optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE"
#define OBJECT_GRAPH "_CHECKPOINTABLE_OBJECT_GRAPH"

/* ---------------------------------------------------------------- helpers */

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static kiln_checkpoint_reader *open_reader(const char *path) {
  kiln_checkpoint_reader *r = NULL;
  check_at("kiln_checkpoint_reader_open", __FILE__, __LINE__);
  if (status_failed(kiln_checkpoint_reader_open(&r, path))) return NULL;
  if (!r) report("succeeded without a reader");
  return r;
}

static size_t index_of(const kiln_checkpoint_reader *r, const char *name) {
  size_t i = (size_t)-1;
  check_at("kiln_checkpoint_reader_find", __FILE__, __LINE__);
  if (status_failed(kiln_checkpoint_reader_find(&i, r, name))) fprintf(stderr, "  (name %s)\n", name);
  return i;
}

/* Checks variable name's TF dtype name, kiln dtype (0: none), shape and byte size. */
static void expect_variable(const kiln_checkpoint_reader *r, const char *name, const char *dtype_name,
                            int kiln_dt, size_t rank, const int64_t *dims, size_t byte_size) {
  size_t i = index_of(r, name), got_rank = 99, got_bytes = 0, k;
  const char *got_name = NULL, *got_dtype = NULL;
  kiln_dtype dt = (kiln_dtype)-1;
  int64_t got_dims[KILN_MAX_RANK];
  if (i == (size_t)-1) return;
  EXPECT_OK(kiln_checkpoint_reader_get_name(&got_name, r, i));
  CHECK(got_name && strcmp(got_name, name) == 0);
  EXPECT_OK(kiln_checkpoint_reader_get_dtype_name(&got_dtype, r, i));
  if (!got_dtype || strcmp(got_dtype, dtype_name) != 0)
    fprintf(stderr, "%s: dtype %s; expected %s\n", name, got_dtype ? got_dtype : "(null)", dtype_name),
        ++g_failed;
  EXPECT_OK(kiln_checkpoint_reader_get_dtype(&dt, r, i));
  CHECK((int)dt == kiln_dt);
  EXPECT_OK(kiln_checkpoint_reader_get_shape(NULL, 0, &got_rank, r, i));
  CHECK(got_rank == rank);
  EXPECT_OK(kiln_checkpoint_reader_get_shape(got_dims, KILN_MAX_RANK, &got_rank, r, i));
  for (k = 0; k < rank && k < got_rank; ++k) CHECK(got_dims[k] == dims[k]);
  EXPECT_OK(kiln_checkpoint_reader_get_byte_size(&got_bytes, r, i));
  CHECK(got_bytes == byte_size);
}

static kiln_tensor *read_tensor(const kiln_checkpoint_reader *r, const char *name) {
  kiln_tensor *o = NULL;
  return RUN(kiln_checkpoint_reader_get_tensor(&o, r, name));
}

static int64_t read_int64(const kiln_checkpoint_reader *r, const char *name) {
  kiln_tensor *t = read_tensor(r, name);
  int64_t v = -1;
  if (t && meta_ok(t, I64, 0, NULL)) v = ((const int64_t *)kiln_tensor_get_data(t))[0];
  kiln_tensor_free(t);
  return v;
}

/* A copy of file from into to; 0 on failure (reported). If flip >= 0 the byte there is inverted;
 * keep > 0 keeps only the first keep bytes. */
static int copy_file(const char *from, const char *to, long flip, long keep) {
  FILE *in = fopen(from, "rb"), *out = NULL;
  char *buf = NULL;
  long n = 0;
  int ok = 0;
  if (in && fseek(in, 0, SEEK_END) == 0 && (n = ftell(in)) > 0 && fseek(in, 0, SEEK_SET) == 0 &&
      (buf = malloc((size_t)n)) != NULL && fread(buf, 1, (size_t)n, in) == (size_t)n) {
    if (flip >= 0 && flip < n) buf[flip] = (char)~buf[flip];
    if (keep > 0 && keep < n) n = keep;
    out = fopen(to, "wb");
    ok = out && fwrite(buf, 1, (size_t)n, out) == (size_t)n;
  }
  if (out && fclose(out) != 0) ok = 0;
  if (in) fclose(in);
  free(buf);
  if (!ok) fprintf(stderr, "cannot copy %s to %s\n", from, to), ++g_failed;
  return ok;
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  int ok = f && fputs(text, f) >= 0;
  if (f && fclose(f) != 0) ok = 0;
  if (!ok) fprintf(stderr, "cannot write %s\n", path), ++g_failed;
  return ok;
}

static char g_dir[256];

/* A fresh temporary directory (g_dir) and a path in it. */
static int make_dir(void) {
  strcpy(g_dir, "/tmp/kiln_capi_ckpt_XXXXXX");
  if (!mkdtemp(g_dir)) {
    fprintf(stderr, "mkdtemp failed\n");
    ++g_failed;
    return 0;
  }
  return 1;
}

static const char *in_dir(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  return path;
}

static void remove_dir(void) {
  static const char *names[] = {"checkpoint", "m.ckpt-0.index", "m.ckpt-0" DATA_SUFFIX};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; ++i) unlink(in_dir(names[i]));
  rmdir(g_dir);
}

/* ---------------------------------------------------------------- tests */

static void test_tf2_listing(void) {
  kiln_checkpoint_reader *r = open_reader(TF2);
  static const int64_t kernel[2] = {784, 200}, bias[1] = {200};
  size_t n = 0, i;
  const char *prev = NULL, *name = NULL, *prefix = NULL;
  bool has = false;
  if (!r) return;
  EXPECT_OK(kiln_checkpoint_reader_get_num_variables(&n, r));
  /* 14 tensors and the object graph, which TF lists too (tf.train.list_variables). */
  CHECK(n == 15);
  EXPECT_OK(kiln_checkpoint_reader_get_prefix(&prefix, r));
  CHECK(prefix && strcmp(prefix, TF2) == 0);
  /* Index order is bytewise name order, as tf.train.list_variables sorts. */
  for (i = 0; i < n; ++i) {
    EXPECT_OK(kiln_checkpoint_reader_get_name(&name, r, i));
    if (prev && name) CHECK(strcmp(prev, name) < 0);
    prev = name;
  }
  expect_variable(r, KERNEL0, "float32", KILN_DTYPE_FLOAT32, 2, kernel, 784 * 200 * 4);
  expect_variable(r, BIAS0, "float32", KILN_DTYPE_FLOAT32, 1, bias, 800);
  expect_variable(r, ITERATIONS, "int64", KILN_DTYPE_INT64, 0, NULL, 8);
  expect_variable(r, "optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE", "float32", KILN_DTYPE_FLOAT32, 2,
                  kernel, 784 * 200 * 4);
  /* The object graph is listed (as TF lists it) with a dtype kiln cannot hold. */
  expect_variable(r, OBJECT_GRAPH, "string", 0, 0, NULL, 1841);
  EXPECT_OK(kiln_checkpoint_reader_has_tensor(&has, r, ITERATIONS));
  CHECK(has);
  EXPECT_OK(kiln_checkpoint_reader_has_tensor(&has, r, "optimizer/_iterations"));
  CHECK(!has);
  kiln_checkpoint_reader_free(r);
}

static void test_tf2_values(void) {
  kiln_checkpoint_reader *r = open_reader(TF2);
  static const int64_t kernel[2] = {784, 200};
  kiln_tensor *t;
  if (!r) return;
  CHECK(read_int64(r, ITERATIONS) == 1500);
  t = read_tensor(r, LEARNING_RATE);
  if (t && meta_ok(t, F32, 0, NULL)) CHECK(fabs(fdata(t)[0] - 0.001) < 1e-9);
  kiln_tensor_free(t);
  t = read_tensor(r, BIAS0);
  if (t) {
    CHECK(kiln_tensor_get_num_elements(t) == 200);
    CHECK(fabs(fdata(t)[0] - -0.02635354734957218) < 1e-7 && fabs(fdata(t)[2] - -0.04411838948726654) < 1e-7);
  }
  kiln_tensor_free(t);
  t = read_tensor(r, KERNEL0);
  if (t) CHECK(meta_ok(t, F32, 2, kernel));
  kiln_checkpoint_reader_free(r); /* the tensor outlives its reader */
  if (t) CHECK(kiln_tensor_get_byte_size(t) == 784 * 200 * 4 && isfinite(fdata(t)[784 * 200 - 1]));
  kiln_tensor_free(t);
}

static void test_tf1_bert(void) {
  kiln_checkpoint_reader *r = open_reader(BERT);
  static const int64_t word[2] = {15, 4}, qkv[2] = {4, 4};
  size_t n = 0;
  kiln_tensor *t;
  if (!r) return;
  EXPECT_OK(kiln_checkpoint_reader_get_num_variables(&n, r));
  CHECK(n == 139);
  expect_variable(r, "global_step", "int64", KILN_DTYPE_INT64, 0, NULL, 8);
  expect_variable(r, "bert/embeddings/word_embeddings", "float32", KILN_DTYPE_FLOAT32, 2, word, 240);
  expect_variable(r, "bert/embeddings/word_embeddings/adam_m", "float32", KILN_DTYPE_FLOAT32, 2, word, 240);
  expect_variable(r, "bert/encoder/layer_1/attention/self/query/kernel", "float32", KILN_DTYPE_FLOAT32, 2,
                  qkv, 64);
  CHECK(read_int64(r, "global_step") == 20);
  t = read_tensor(r, "cls/seq_relationship/output_bias");
  if (t) {
    CHECK(kiln_tensor_get_num_elements(t) == 2);
    CHECK(fabs(fdata(t)[0] - -6.131137524789665e-06) < 1e-12 &&
          fabs(fdata(t)[1] - 6.131137979537016e-06) < 1e-12);
  }
  kiln_tensor_free(t);
  kiln_checkpoint_reader_free(r);
}

/* tf.train.load_checkpoint(dir): the `checkpoint` state file names the latest prefix. */
static void test_directory(void) {
  kiln_checkpoint_reader *r = NULL;
  const char *prefix = NULL;
  if (!make_dir()) return;
  if (copy_file(TF2 ".index", in_dir("m.ckpt-0.index"), -1, 0) &&
      copy_file(TF2 DATA_SUFFIX, in_dir("m.ckpt-0" DATA_SUFFIX), -1, 0)) {
    /* No state file yet: a directory is not a checkpoint by itself. */
    EXPECT_ERROR(kiln_checkpoint_reader_open(&r, g_dir), KILN_STATUS_NOT_FOUND, g_dir, NULL);
    CHECK(r == NULL);
    if (write_text(in_dir("checkpoint"),
                   "model_checkpoint_path: \"m.ckpt-0\"\n"
                   "all_model_checkpoint_paths: \"m.ckpt-0\"\n")) {
      r = open_reader(g_dir);
      if (r) {
        EXPECT_OK(kiln_checkpoint_reader_get_prefix(&prefix, r));
        CHECK(prefix && strstr(prefix, "m.ckpt-0") && strstr(prefix, g_dir));
        CHECK(read_int64(r, ITERATIONS) == 1500);
        kiln_checkpoint_reader_free(r);
        r = NULL;
      }
    }
  }
  remove_dir();
  /* The fixture's own state file names keras_embedding.ckpt-9, which is not there (TF's
     latest_checkpoint finds nothing too). */
  EXPECT_ERROR(kiln_checkpoint_reader_open(&r, TF2_DIR), KILN_STATUS_NOT_FOUND, "keras_embedding.ckpt-9",
               NULL);
  CHECK(r == NULL);
}

/* A checkpoint's .index or .data file names its prefix; a missing one is NOT_FOUND naming it. */
static void test_paths(void) {
  kiln_checkpoint_reader *r = NULL;
  const char *prefix = NULL;
  r = open_reader(TF2 ".index");
  if (r) {
    EXPECT_OK(kiln_checkpoint_reader_get_prefix(&prefix, r));
    CHECK(prefix && strcmp(prefix, TF2) == 0);
    kiln_checkpoint_reader_free(r);
  }
  r = open_reader(TF2 DATA_SUFFIX);
  if (r) {
    CHECK(read_int64(r, ITERATIONS) == 1500);
    kiln_checkpoint_reader_free(r);
  }
  r = NULL;
  EXPECT_ERROR(kiln_checkpoint_reader_open(&r, TF2_DIR "/no_such.ckpt"), KILN_STATUS_NOT_FOUND,
               "no_such.ckpt", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_open(&r, "/nonexistent_kiln_dir/x"), KILN_STATUS_NOT_FOUND,
               "/nonexistent_kiln_dir/x", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_open(&r, ""), INVALID, NULL, NULL);
  CHECK(r == NULL);
}

/* A flipped byte in the data file is DATA_LOSS naming the file and the variable; the others still
   read. (Byte 0 of the fixture's data file is the first of layer_with_weights-0/kernel, at offset
   0 in its index entry.) A truncated data file and a truncated index are DATA_LOSS too. */
static void test_corrupt(void) {
  kiln_checkpoint_reader *r = NULL;
  kiln_tensor *t = NULL;
  if (!make_dir()) return;
  if (copy_file(TF2 ".index", in_dir("m.ckpt-0.index"), -1, 0) &&
      copy_file(TF2 DATA_SUFFIX, in_dir("m.ckpt-0" DATA_SUFFIX), 0, 0)) {
    r = open_reader(in_dir("m.ckpt-0"));
    if (r) {
      EXPECT_ERROR(kiln_checkpoint_reader_get_tensor(U, r, KERNEL0), KILN_STATUS_DATA_LOSS, KERNEL0,
                   DATA_SUFFIX);
      CHECK(read_int64(r, ITERATIONS) == 1500);
      t = read_tensor(r, BIAS0);
      kiln_tensor_free(t);
      kiln_checkpoint_reader_free(r);
    }
  }
  /* Cut the data file inside the kernel's Adam slots (optimizer/_variables/1 starts at 636052). */
  if (copy_file(TF2 DATA_SUFFIX, in_dir("m.ckpt-0" DATA_SUFFIX), -1, 700000)) {
    r = open_reader(in_dir("m.ckpt-0"));
    if (r) {
      CHECK(read_int64(r, ITERATIONS) == 1500);
      EXPECT_ERROR(
          kiln_checkpoint_reader_get_tensor(U, r, "optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE"),
          KILN_STATUS_DATA_LOSS, "optimizer/_variables/1", NULL);
      kiln_checkpoint_reader_free(r);
    }
  }
  r = NULL;
  if (copy_file(TF2 ".index", in_dir("m.ckpt-0.index"), -1, 500)) {
    EXPECT_ERROR(kiln_checkpoint_reader_open(&r, in_dir("m.ckpt-0")), KILN_STATUS_DATA_LOSS, "m.ckpt-0.index",
                 NULL);
    CHECK(r == NULL);
  }
  remove_dir();
}

static void test_errors(void) {
  kiln_checkpoint_reader *r = open_reader(TF2), *other = NULL;
  size_t n = 7, rank = 7;
  const char *s = "untouched";
  bool b = true;
  kiln_dtype dt = (kiln_dtype)-7;
  int64_t dims[KILN_MAX_RANK];
  if (!r) return;
  EXPECT_ERROR(kiln_checkpoint_reader_get_tensor(U, r, "no/such/variable"), KILN_STATUS_NOT_FOUND,
               "no/such/variable", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_find(&n, r, "no/such/variable"), KILN_STATUS_NOT_FOUND,
               "no/such/variable", NULL);
  CHECK(n == 7);
  EXPECT_ERROR(kiln_checkpoint_reader_get_tensor(U, r, OBJECT_GRAPH), KILN_STATUS_UNIMPLEMENTED, "string",
               NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_name(&s, r, 15), KILN_STATUS_OUT_OF_RANGE, "15", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_dtype_name(&s, r, 99), KILN_STATUS_OUT_OF_RANGE, NULL, NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_dtype(&dt, r, 99), KILN_STATUS_OUT_OF_RANGE, NULL, NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_shape(dims, KILN_MAX_RANK, &rank, r, 99), KILN_STATUS_OUT_OF_RANGE,
               NULL, NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_byte_size(&n, r, (size_t)-1), KILN_STATUS_OUT_OF_RANGE, NULL, NULL);
  CHECK(strcmp(s, "untouched") == 0 && (int)dt == -7 && rank == 7 && n == 7);

  /* NULL handles, out pointers and names: INVALID_ARGUMENT naming the argument, never a crash. */
  EXPECT_ERROR(kiln_checkpoint_reader_open(NULL, TF2), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_open(&other, NULL), INVALID, "path", NULL);
  CHECK(other == NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_prefix(NULL, r), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_prefix(&s, NULL), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_num_variables(NULL, r), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_num_variables(&n, NULL), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_name(NULL, r, 0), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_name(&s, NULL, 0), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_find(NULL, r, ITERATIONS), INVALID, "out_index", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_find(&n, NULL, ITERATIONS), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_find(&n, r, NULL), INVALID, "name", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_has_tensor(NULL, r, ITERATIONS), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_has_tensor(&b, NULL, ITERATIONS), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_has_tensor(&b, r, NULL), INVALID, "name", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_dtype_name(NULL, r, 0), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_dtype_name(&s, NULL, 0), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_dtype(NULL, r, 0), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_dtype(&dt, NULL, 0), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_shape(dims, KILN_MAX_RANK, NULL, r, 0), INVALID, "out_rank", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_shape(NULL, 2, &rank, r, 0), INVALID, "out_dims", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_shape(dims, KILN_MAX_RANK, &rank, NULL, 0), INVALID, "reader",
               NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_byte_size(NULL, r, 0), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_byte_size(&n, NULL, 0), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_tensor(NULL, r, ITERATIONS), INVALID, "out", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_tensor(U, NULL, ITERATIONS), INVALID, "reader", NULL);
  EXPECT_ERROR(kiln_checkpoint_reader_get_tensor(U, r, NULL), INVALID, "name", NULL);
  CHECK(strcmp(s, "untouched") == 0 && (int)dt == -7 && rank == 7 && n == 7 && b);
  kiln_checkpoint_reader_free(r);
  kiln_checkpoint_reader_free(NULL);
}

int main(void) {
  if (!exists(TF2 ".index") || !exists(BERT ".index")) {
    printf("SKIP: the TensorFlow checkpoint fixtures are not in %s\n", FIXTURES);
    return 77;
  }
  test_tf2_listing();
  test_tf2_values();
  test_tf1_bert();
  test_directory();
  test_paths();
  test_corrupt();
  test_errors();
  release_kept();
  return test_summary();
}
