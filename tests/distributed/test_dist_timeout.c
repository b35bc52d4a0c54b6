/* A rank that stops calling the collectives must not leave the others waiting forever: rank 1
 * sleeps instead of joining an allreduce, and rank 0's watchdog ends it after the 2 s timeout
 * with a message naming the collective (ctest checks the message; mpirun then ends rank 1). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "kiln/distributed.h"

int main(void) {
  kiln_config *options = NULL;
  kiln_tensor *t = NULL, *out = NULL;
  int rank = 0;
  float v = 1.0f;
  int64_t dims[1] = {1};
  struct timespec nap = {60, 0};
  if (kiln_config_from_json(&options, "{\"timeout_seconds\": 2}") || kiln_dist_init(options) ||
      kiln_dist_rank(&rank) || kiln_tensor_create(&t, KILN_DTYPE_FLOAT32, dims, 1, &v, sizeof v))
    return 1;
  if (rank == 1) {
    nanosleep(&nap, NULL); /* a rank that hangs: never reaches the allreduce */
    return 1;
  }
  kiln_dist_allreduce(&out, t, "sum");
  fprintf(stderr, "rank 0: the allreduce returned although rank 1 never joined it\n");
  return 1;
}
