// libkiln_openmp_env.so (openmp_env.c): lowers libgomp's spin count before libgomp starts.
#pragma once

extern "C" {
// Removes GOMP_SPINCOUNT from the environment if this library set it; returns 1 then, else 0.
// kiln's core calls it once when it starts, after libgomp has read the variable.
int kiln_openmp_env_restore(void);
// The spin count this library sets when the user sets neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT.
const char *kiln_openmp_env_spincount(void);
}
