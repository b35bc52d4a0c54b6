/* The C API in a few lines: the gradient of sum(x * x) at x = [1, 2, 3]. */
#include <stdio.h>

#include "kiln/kiln.h"

int main(void) {
  int64_t dims[1] = {3};
  float xs[3] = {1, 2, 3};
  const float *g;
  int ok;
  kiln_tensor *x = NULL, *y = NULL, *loss = NULL, *grad = NULL;
  kiln_tape *tape = NULL;
  kiln_status *st = kiln_tensor_create(&x, KILN_DTYPE_FLOAT32, dims, 1, xs, sizeof xs);
  if (!st) st = kiln_tape_create(&tape, false, true);
  if (!st) st = kiln_tape_watch(tape, x);
  if (!st) st = kiln_mul(&y, x, x);
  if (!st) st = kiln_sum(&loss, y, NULL, 0, false);
  if (!st) st = kiln_tape_stop(tape);
  if (!st) st = kiln_tape_gradient(&grad, tape, loss, (const kiln_tensor *const *)&x, 1, KILN_UNCONNECTED_NONE);
  if (st) {
    fprintf(stderr, "kiln: %s\n", kiln_status_get_message(st));
    kiln_status_free(st);
    return 1;
  }
  g = (const float *)kiln_tensor_get_data(grad);
  printf("kiln %s: d/dx sum(x*x) at [1, 2, 3] = [%g, %g, %g]\n", kiln_version(), g[0], g[1], g[2]);
  ok = g[0] == 2 && g[1] == 4 && g[2] == 6; /* read before grad is freed */
  kiln_tensor_free(grad);
  kiln_tensor_free(loss);
  kiln_tensor_free(y);
  kiln_tensor_free(x);
  kiln_tape_free(tape);
  return ok ? 0 : 1;
}
