/* Two variables made from one tensor are two gradient sources (issue 5, section 4), checked with
 * only the entry points kiln had before variables got ids of their own (72fe287). Run against
 * that library it fails: both variables shared the tensor's identity, and each got the sum of
 * both gradients (8, not 3 and 5). Nothing is assigned between creating the variables and
 * recording, so no copy-on-write can tell them apart by accident.
 * Plain C99, links only the shared library. Prints "N passed, N failed". */
#include "capi_test_util.h"

/* sum(read(v) * k), recorded on the active tapes. */
static kiln_tensor *scaled_sum(kiln_variable *v, float k) {
  kiln_tensor *o = NULL;
  kiln_tensor *read = keep(RUN(kiln_variable_read(&o, v)));
  kiln_tensor *prod = keep(RUN(kiln_mul(&o, read, f32(0, NULL, &k))));
  return keep(RUN(kiln_sum(&o, prod, NULL, 0, false)));
}

static void test_two_variables_from_one_tensor(int persistent) {
  const int64_t d2[1] = {2};
  const float init[2] = {1, 2}, three[2] = {3, 3}, five[2] = {5, 5};
  kiln_tensor *o = NULL, *t = f32(1, d2, init), *loss, *grads[2] = {NULL, NULL};
  kiln_variable *v[2] = {NULL, NULL};
  kiln_tape *tape = NULL;
  EXPECT_OK(kiln_variable_create(&v[0], "v1", t, true));
  EXPECT_OK(kiln_variable_create(&v[1], "v2", t, true));
  EXPECT_OK(kiln_tape_create(&tape, persistent != 0, true));
  loss = keep(RUN(kiln_add(&o, scaled_sum(v[0], 3), scaled_sum(v[1], 5))));
  EXPECT_OK(kiln_tape_stop(tape));
  if (EXPECT_OK(kiln_tape_gradient_variables(grads, tape, loss, (const kiln_variable *const *)v, 2,
                                             KILN_UNCONNECTED_NONE))) {
    expect_f32(grads[0], 1, d2, three, 0);
    expect_f32(grads[1], 1, d2, five, 0);
  }
  /* Both still hold the tensor's value, and the tensor is unchanged. */
  expect_f32(RUN(kiln_variable_read(&o, v[0])), 1, d2, init, 0);
  expect_f32(RUN(kiln_variable_read(&o, v[1])), 1, d2, init, 0);
  expect_f32(RUN(kiln_tensor_clone(&o, t)), 1, d2, init, 0);
  kiln_tape_free(tape);
  kiln_variable_free(v[0]);
  kiln_variable_free(v[1]);
  release_kept();
}

/* kiln_tape_get_watched_variables: the order watched, handles to the same variables, a freed
 * variable left out, the two-call count, bad arguments. */
static void test_watched_variables(void) {
  const float one = 1, two = 2;
  kiln_tensor *o = NULL, *ta = f32(0, NULL, &one), *tb = f32(0, NULL, &two);
  kiln_variable *a = NULL, *b = NULL, *out[3] = {NULL, NULL, NULL};
  kiln_tape *tape = NULL;
  size_t count = 99;
  EXPECT_OK(kiln_variable_create(&a, "a", ta, true));
  EXPECT_OK(kiln_variable_create(&b, "b", tb, true));
  EXPECT_OK(kiln_tape_create(&tape, false, true));
  EXPECT_OK(kiln_tape_watch_variable(tape, b));
  keep(RUN(kiln_variable_read(&o, a)));
  EXPECT_OK(kiln_tape_stop(tape));
  if (EXPECT_OK(kiln_tape_get_watched_variables(NULL, 0, &count, tape))) CHECK(count == 2);
  count = 0;
  if (EXPECT_OK(kiln_tape_get_watched_variables(out, 3, &count, tape))) {
    CHECK(count == 2);
    CHECK(out[0] != NULL && kiln_variable_get_id(out[0]) == kiln_variable_get_id(b));
    CHECK(out[1] != NULL && kiln_variable_get_id(out[1]) == kiln_variable_get_id(a));
    CHECK(out[0] != NULL && strcmp(kiln_variable_get_name(out[0]), "b") == 0);
    CHECK(out[2] == NULL);
  }
  kiln_variable_free(out[0]);
  kiln_variable_free(out[1]);
  out[0] = out[1] = NULL;
  /* capacity 1 of 2: one handle written, the full count reported */
  if (EXPECT_OK(kiln_tape_get_watched_variables(out, 1, &count, tape))) {
    CHECK(count == 2);
    CHECK(out[0] != NULL && kiln_variable_get_id(out[0]) == kiln_variable_get_id(b));
  }
  kiln_variable_free(out[0]);
  out[0] = NULL;
  /* a variable nothing holds any more is left out */
  kiln_variable_free(b);
  b = NULL;
  if (EXPECT_OK(kiln_tape_get_watched_variables(out, 3, &count, tape))) {
    CHECK(count == 1);
    CHECK(out[0] != NULL && kiln_variable_get_id(out[0]) == kiln_variable_get_id(a));
  }
  kiln_variable_free(out[0]);
  EXPECT_ERROR(kiln_tape_get_watched_variables(out, 3, &count, NULL), KILN_STATUS_INVALID_ARGUMENT, "tape",
               "NULL");
  EXPECT_ERROR(kiln_tape_get_watched_variables(out, 3, NULL, tape), KILN_STATUS_INVALID_ARGUMENT, "out_count",
               "NULL");
  EXPECT_ERROR(kiln_tape_get_watched_variables(NULL, 3, &count, tape), KILN_STATUS_INVALID_ARGUMENT, "out",
               "NULL");
  kiln_tape_free(tape);
  kiln_variable_free(a);
  release_kept();
}

int main(void) {
  test_watched_variables();
  test_two_variables_from_one_tensor(0);
  test_two_variables_from_one_tensor(1);
  return test_summary();
}
