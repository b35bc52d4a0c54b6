/* kiln/init_from_checkpoint.h from plain C, on google-research/bert's TF1 checkpoint in
 * ../shared/fixtures: pairs of names (one variable, scopes, the root), variables given as handles,
 * a model's variables, one value into two variables, the report config, the options (reshape,
 * missing names, mismatches, optimizer state), errors naming both sides, and nothing changing when
 * a call fails. Exits 77 (skipped) when the fixture is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capi_test_util.h"

#ifndef KILN_TEST_SOURCE_DIR
#error "KILN_TEST_SOURCE_DIR must name the source tree (tests/capi/CMakeLists.txt sets it)"
#endif
#define FIXTURES KILN_TEST_SOURCE_DIR "/../shared/fixtures"
#define BERT FIXTURES "/tf1_bert_tiny/bert_model.ckpt"

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static kiln_variable *zeros_variable(const char *name, int rank, const int64_t *dims) {
  kiln_tensor *t = NULL;
  kiln_variable *v = NULL;
  float buf[64] = {0};
  check_at("zeros_variable", __FILE__, __LINE__);
  if (status_failed(kiln_tensor_create(&t, F32, dims, (size_t)rank, buf, (size_t)count_of(rank, dims) * 4)))
    return NULL;
  if (status_failed(kiln_variable_create(&v, name, t, true))) v = NULL;
  kiln_tensor_free(t);
  return v;
}

/* The variable's values against the checkpoint's tensor `name`, element for element. */
static int same_as_checkpoint(kiln_variable *v, const char *name) {
  kiln_checkpoint_reader *r = NULL;
  kiln_tensor *want = NULL, *got = NULL;
  int same = 0;
  check_at("same_as_checkpoint", __FILE__, __LINE__);
  if (status_failed(kiln_checkpoint_reader_open(&r, BERT))) return 0;
  if (!status_failed(kiln_checkpoint_reader_get_tensor(&want, r, name)) &&
      !status_failed(kiln_variable_read(&got, v)))
    same = kiln_tensor_get_num_elements(want) == kiln_tensor_get_num_elements(got) &&
           memcmp(kiln_tensor_get_data(want), kiln_tensor_get_data(got), kiln_tensor_get_byte_size(got)) == 0;
  kiln_tensor_free(want);
  kiln_tensor_free(got);
  kiln_checkpoint_reader_free(r);
  return same;
}

static int all_zero(kiln_variable *v) {
  kiln_tensor *t = NULL;
  int64_t i, n;
  int zero = 1;
  if (status_failed(kiln_variable_read(&t, v))) return 0;
  n = kiln_tensor_get_num_elements(t);
  for (i = 0; i < n; ++i) zero = zero && fdata(t)[i] == 0.0f;
  kiln_tensor_free(t);
  return zero;
}

static size_t list_size(const kiln_config *c, const char *key) {
  size_t n = (size_t)-1;
  EXPECT_OK(kiln_config_get_list_size(&n, c, key));
  return n;
}

/* Whether the string list `key` of c holds s. */
static int list_has(const kiln_config *c, const char *key, const char *s) {
  size_t i, n = list_size(c, key);
  for (i = 0; i < n && n != (size_t)-1; ++i) {
    const char *e = NULL;
    if (!kiln_config_get_string_at(&e, c, key, i) && e && strcmp(e, s) == 0) return 1;
  }
  return 0;
}

/* A string of entry i of the config list `key`. */
static const char *entry_string(const kiln_config *c, const char *key, size_t i, const char *field,
                                kiln_config **hold) {
  const char *s = NULL;
  *hold = NULL;
  if (!EXPECT_OK(kiln_config_get_config_at(hold, c, key, i))) return "";
  if (!EXPECT_OK(kiln_config_get_string(&s, *hold, field))) return "";
  return s;
}

/* ---------------------------------------------------------------- tests */

static void test_names_scopes_and_report(void) {
  const int64_t k[2] = {4, 4}, b[1] = {4}, w[2] = {15, 4};
  kiln_variable *kernel = zeros_variable("pool/kernel", 2, k), *bias = zeros_variable("pool/bias", 1, b);
  kiln_variable *words = zeros_variable("emb/words", 2, w), *spare = zeros_variable("spare", 1, b);
  kiln_variable *vars[3];
  const char *ckpt[2] = {"bert/pooler/dense/", "bert/embeddings/word_embeddings"};
  const char *names[2] = {"pool/", "emb/words"};
  kiln_config *report = NULL, *e = NULL;
  char *json = NULL;
  const char *s = NULL;
  vars[0] = kernel;
  vars[1] = bias;
  vars[2] = words;
  if (EXPECT_OK(kiln_init_from_checkpoint(&report, NULL, vars, 3, BERT, ckpt, names, NULL, 2, NULL))) {
    CHECK(same_as_checkpoint(kernel, "bert/pooler/dense/kernel"));
    CHECK(same_as_checkpoint(bias, "bert/pooler/dense/bias"));
    CHECK(same_as_checkpoint(words, "bert/embeddings/word_embeddings"));
    EXPECT_OK(kiln_config_get_string(&s, report, "checkpoint"));
    CHECK(s && strstr(s, "tf1_bert_tiny/bert_model.ckpt") != NULL);
    CHECK(list_size(report, "matched") == 3);
    CHECK(strcmp(entry_string(report, "matched", 0, "checkpoint_name", &e), "bert/pooler/dense/kernel") == 0);
    kiln_config_free(e);
    CHECK(strcmp(entry_string(report, "matched", 0, "variable", &e), "pool/kernel") == 0);
    kiln_config_free(e);
    CHECK(strcmp(entry_string(report, "matched", 2, "variable", &e), "emb/words") == 0);
    kiln_config_free(e);
    /* 139 names: 3 taken, 93 Adam slots and global_step skipped, the other 43 unmatched. */
    CHECK(list_size(report, "unmatched_checkpoint_names") == 43);
    CHECK(list_size(report, "skipped_checkpoint_names") == 93);
    CHECK(list_has(report, "skipped_checkpoint_names", "global_step"));
    CHECK(list_has(report, "skipped_checkpoint_names", "bert/pooler/dense/kernel/adam_m"));
    CHECK(list_has(report, "unmatched_checkpoint_names", "cls/seq_relationship/output_weights"));
    CHECK(list_size(report, "unmatched_variables") == 0);
    CHECK(list_size(report, "missing") == 0 && list_size(report, "mismatched") == 0);
    EXPECT_OK(kiln_config_get_string(&s, report, "summary"));
    CHECK(s && strstr(s, "bert/pooler/dense/kernel [4, 4] -> pool/kernel") != NULL);
    EXPECT_OK(kiln_config_to_json(&json, report, -1));
    kiln_string_free(json);
  }
  kiln_config_free(report);
  report = NULL;

  /* Variables given as handles (no lookup list), one value into two of them; out_report NULL. */
  {
    const char *one[2] = {"bert/pooler/dense/bias", "bert/pooler/dense/bias"};
    kiln_variable *targets[2];
    kiln_variable *fresh = zeros_variable("fresh", 1, b);
    targets[0] = spare;
    targets[1] = fresh;
    EXPECT_OK(kiln_init_from_checkpoint(NULL, NULL, NULL, 0, BERT, one, NULL, targets, 2, NULL));
    CHECK(same_as_checkpoint(spare, "bert/pooler/dense/bias"));
    CHECK(same_as_checkpoint(fresh, "bert/pooler/dense/bias"));
    kiln_variable_free(fresh);
  }
  kiln_variable_free(kernel);
  kiln_variable_free(bias);
  kiln_variable_free(words);
  kiln_variable_free(spare);
}

static void test_model(void) {
  kiln_config *c = NULL, *report = NULL, *e = NULL;
  kiln_layer *dense = NULL;
  const int64_t dims[2] = {-1, 4};
  const size_t ranks[1] = {2};
  const char *ckpt[2] = {"bert/pooler/dense/kernel", "bert/pooler/dense/bias"};
  const char *names[2] = {"pooler_from_c/kernel", "pooler_from_c/bias"};
  const char *scope_ckpt[1] = {"bert/pooler/dense/"}, *scope_var[1] = {"pooler_from_c/"};
  kiln_variable *vars[2] = {NULL, NULL};
  size_t count = 0;
  EXPECT_OK(kiln_config_create(&c));
  EXPECT_OK(kiln_config_set_int(c, "units", 4));
  EXPECT_OK(kiln_config_set_string(c, "name", "pooler_from_c"));
  EXPECT_OK(kiln_layer_create(&dense, "Dense", c));
  kiln_config_free(c);
  /* Not built: no variables yet. */
  EXPECT_ERROR(kiln_init_from_checkpoint(NULL, dense, NULL, 0, BERT, ckpt, names, NULL, 2, NULL),
               KILN_STATUS_FAILED_PRECONDITION, "pooler_from_c", "not built");
  EXPECT_OK(kiln_layer_build(dense, dims, ranks, 1));
  EXPECT_OK(kiln_init_from_checkpoint(&report, dense, NULL, 0, BERT, ckpt, names, NULL, 2, NULL));
  CHECK(list_size(report, "matched") == 2);
  kiln_config_free(report);
  report = NULL;
  EXPECT_OK(kiln_init_from_checkpoint(&report, dense, NULL, 0, BERT, scope_ckpt, scope_var, NULL, 1, NULL));
  CHECK(strcmp(entry_string(report, "matched", 1, "checkpoint_name", &e), "bert/pooler/dense/bias") == 0);
  kiln_config_free(e);
  kiln_config_free(report);
  EXPECT_OK(kiln_layer_get_variables(vars, 2, &count, dense, KILN_VARIABLES_ALL));
  CHECK(count == 2);
  if (count == 2) {
    CHECK(same_as_checkpoint(vars[0], "bert/pooler/dense/kernel"));
    CHECK(same_as_checkpoint(vars[1], "bert/pooler/dense/bias"));
  }
  kiln_variable_free(vars[0]);
  kiln_variable_free(vars[1]);
  kiln_layer_free(dense);
}

static void test_options(void) {
  const int64_t heads[3] = {4, 2, 2}, b[1] = {4}, t[2] = {16, 4};
  kiln_variable *q = zeros_variable("q", 3, heads), *bias = zeros_variable("b", 1, b),
                *tr = zeros_variable("t", 2, t);
  kiln_variable *vars[3];
  const char *ckpt[1] = {"bert/encoder/layer_0/attention/self/query/kernel"}, *names[1] = {"q"};
  const char *ckpt2[2] = {"bert/pooler/dense/bias", "bert/encoder/layer_0/intermediate/dense/kernel"};
  const char *names2[2] = {"b", "t"};
  const char *missing[2] = {"bert/pooler/dense/bias", "bert/no/such"};
  const char *step[1] = {"global_step"};
  kiln_init_from_checkpoint_options o;
  kiln_config *report = NULL, *e = NULL;
  vars[0] = q;
  vars[1] = bias;
  vars[2] = tr;

  EXPECT_OK(kiln_init_from_checkpoint_options_init(&o, sizeof o));
  CHECK(o.struct_size == sizeof o && o.skip_optimizer_state && !o.allow_missing && !o.skip_mismatched &&
        !o.allow_reshape);
  EXPECT_ERROR(kiln_init_from_checkpoint_options_init(NULL, sizeof o), INVALID, "options", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint_options_init(&o, 3), INVALID, "struct_size", NULL);

  /* [4, 4] into [4, 2, 2]: only with allow_reshape. */
  EXPECT_ERROR(kiln_init_from_checkpoint(NULL, NULL, vars, 1, BERT, ckpt, names, NULL, 1, NULL), INVALID,
               "[4, 4]", "[4, 2, 2]");
  CHECK(all_zero(q));
  EXPECT_OK(kiln_init_from_checkpoint_options_init(&o, sizeof o));
  o.allow_reshape = true;
  EXPECT_OK(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, ckpt, names, NULL, 1, &o));
  CHECK(same_as_checkpoint(q, "bert/encoder/layer_0/attention/self/query/kernel"));
  {
    bool reshaped = false;
    if (EXPECT_OK(kiln_config_get_config_at(&e, report, "matched", 0)))
      EXPECT_OK(kiln_config_get_bool(&reshaped, e, "reshaped"));
    CHECK(reshaped);
    kiln_config_free(e);
  }
  kiln_config_free(report);
  report = NULL;

  /* A transposed shape: both names and shapes in the error, nothing assigned (b stays 0). */
  EXPECT_ERROR(kiln_init_from_checkpoint(NULL, NULL, vars, 3, BERT, ckpt2, names2, NULL, 2, &o), INVALID,
               "'bert/encoder/layer_0/intermediate/dense/kernel' (float32[4, 16])", "'t' (float32[16, 4])");
  CHECK(all_zero(bias));
  o.skip_mismatched = true;
  EXPECT_OK(kiln_init_from_checkpoint(&report, NULL, vars, 3, BERT, ckpt2, names2, NULL, 2, &o));
  CHECK(same_as_checkpoint(bias, "bert/pooler/dense/bias") && all_zero(tr));
  CHECK(list_size(report, "mismatched") == 1);
  CHECK(strcmp(entry_string(report, "mismatched", 0, "variable", &e), "t") == 0);
  kiln_config_free(e);
  CHECK(list_has(report, "unmatched_variables", "t"));
  kiln_config_free(report);
  report = NULL;

  /* A name the checkpoint lacks: NOT_FOUND naming it, or listed under "missing". */
  EXPECT_ERROR(kiln_init_from_checkpoint(NULL, NULL, vars, 3, BERT, missing, names2, NULL, 2, NULL),
               KILN_STATUS_NOT_FOUND, "bert/no/such", "'t'");
  o.allow_missing = true;
  EXPECT_OK(kiln_init_from_checkpoint(&report, NULL, vars, 3, BERT, missing, names2, NULL, 2, &o));
  CHECK(list_size(report, "missing") == 1);
  CHECK(strcmp(entry_string(report, "missing", 0, "checkpoint_name", &e), "bert/no/such") == 0);
  kiln_config_free(e);
  kiln_config_free(report);
  report = NULL;

  /* Optimizer state: left out of the lists' "unmatched" unless skip_optimizer_state is off. */
  EXPECT_OK(kiln_init_from_checkpoint_options_init(&o, sizeof o));
  o.skip_optimizer_state = false;
  EXPECT_OK(kiln_init_from_checkpoint(&report, NULL, vars, 3, BERT, ckpt2, names2, NULL, 1, &o));
  CHECK(list_size(report, "skipped_checkpoint_names") == 0);
  CHECK(list_has(report, "unmatched_checkpoint_names", "global_step"));
  kiln_config_free(report);
  report = NULL;
  /* global_step is int64: a float variable does not take it. */
  EXPECT_ERROR(kiln_init_from_checkpoint(NULL, NULL, vars, 3, BERT, step, names2, NULL, 1, NULL), INVALID,
               "int64", "float32");

  kiln_variable_free(q);
  kiln_variable_free(bias);
  kiln_variable_free(tr);
}

static void test_errors(void) {
  const int64_t b[1] = {4};
  kiln_variable *v = zeros_variable("v", 1, b);
  kiln_variable *vars[1];
  kiln_variable *null_vars[1] = {NULL};
  const char *ckpt[1] = {"bert/pooler/dense/bias"}, *names[1] = {"v"}, *scope[1] = {"bert/pooler/"};
  const char *null_names[1] = {NULL};
  kiln_init_from_checkpoint_options o;
  kiln_config *report = NULL;
  vars[0] = v;
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, NULL, ckpt, names, NULL, 1, NULL), INVALID,
               "ckpt_dir_or_file", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, NULL, names, NULL, 1, NULL), INVALID,
               "checkpoint_names", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, NULL, 1, BERT, ckpt, names, NULL, 1, NULL), INVALID,
               "variables", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, null_vars, 1, BERT, ckpt, names, NULL, 1, NULL),
               INVALID, "variables[0]", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, null_names, names, NULL, 1, NULL),
               INVALID, "checkpoint_names[0]", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, ckpt, NULL, NULL, 1, NULL), INVALID,
               "neither", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, ckpt, null_names, null_vars, 1, NULL),
               INVALID, "neither", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, scope, names, NULL, 1, NULL), INVALID,
               "scope", NULL);
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, ckpt, scope, NULL, 1, NULL), INVALID,
               "scope", NULL);
  EXPECT_ERROR(
      kiln_init_from_checkpoint(&report, NULL, vars, 1, FIXTURES "/no_such.ckpt", ckpt, names, NULL, 1, NULL),
      KILN_STATUS_NOT_FOUND, "no_such.ckpt", NULL);
  {
    const char *unknown[1] = {"nobody"};
    EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, ckpt, unknown, NULL, 1, NULL),
                 KILN_STATUS_NOT_FOUND, "'nobody'", NULL);
  }
  memset(&o, 0, sizeof o);
  o.struct_size = 2;
  EXPECT_ERROR(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, ckpt, names, NULL, 1, &o), INVALID,
               "struct_size", NULL);
  CHECK(report == NULL); /* untouched by every failure */
  CHECK(all_zero(v));
  /* No pairs: nothing to do, and a report all the same. */
  EXPECT_OK(kiln_init_from_checkpoint(&report, NULL, vars, 1, BERT, NULL, NULL, NULL, 0, NULL));
  CHECK(report && list_size(report, "matched") == 0 && list_has(report, "unmatched_variables", "v"));
  kiln_config_free(report);
  kiln_variable_free(v);
}

int main(void) {
  if (!exists(BERT ".index")) {
    printf("SKIP: the TensorFlow checkpoint fixture is not in %s\n", FIXTURES);
    return 77;
  }
  test_names_scopes_and_report();
  test_model();
  test_options();
  test_errors();
  release_kept();
  return test_summary();
}
