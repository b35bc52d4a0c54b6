/* libkiln_openmp_env.so: sets libgomp's spin count before libgomp reads its environment.
 *
 * Why: libgomp's threads busy-wait about 300,000 iterations (a few milliseconds) at every barrier
 * and between parallel regions before they sleep. When other processes compete for the cores, a
 * spinning thread burns the time slice of the thread it waits for, and each parallel region then
 * costs a scheduler slice: the W3 MLP training step went from 1.2 ms to 40-350 ms beside busy
 * processes on a 2-core machine (benchmarks/README.md, "CPU oversubscription"). A spin count of
 * KILN_GOMP_SPINCOUNT iterations (0.2-0.5 ms: a PAUSE takes 60-140 cycles) still bridges the
 * microsecond gaps between kiln's back-to-back kernels, so an idle machine keeps its speed.
 *
 * How: libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, in its own constructor, and offers
 * no call to change them later. libkiln.so depends on libgomp, so its constructors run after
 * libgomp's; this library depends on nothing but libc and is listed after libgomp in libkiln.so's
 * dependencies, so the dynamic loader runs its constructor first. It sets GOMP_SPINCOUNT only when
 * the user has set neither variable, and kiln's core takes the variable back out as soon as it
 * starts (kiln_openmp_env_restore), so the process environment ends as the user left it. When
 * libgomp was loaded before kiln (a program already using OpenMP), its settings stay as they were.
 */
#include <stdlib.h>

#ifndef KILN_GOMP_SPINCOUNT
#define KILN_GOMP_SPINCOUNT "10000"
#endif

static int g_set_by_kiln = 0;

__attribute__((constructor)) static void kiln_openmp_env_init(void) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
  if (setenv("GOMP_SPINCOUNT", KILN_GOMP_SPINCOUNT, 0) == 0) g_set_by_kiln = 1;
}

__attribute__((visibility("default"))) int kiln_openmp_env_restore(void) {
  if (!g_set_by_kiln) return 0;
  g_set_by_kiln = 0;
  unsetenv("GOMP_SPINCOUNT");
  return 1;
}

__attribute__((visibility("default"))) const char *kiln_openmp_env_spincount(void) {
  return KILN_GOMP_SPINCOUNT;
}
