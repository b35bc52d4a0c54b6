/*
 * kiln/distributed.h — data-parallel training over MPI (Horovod's API on kiln tensors), in
 * libkiln_mpi.so (link -lkiln_mpi -lkiln). libkiln.so itself never needs MPI.
 * Part of the kiln C API (C99); not in the kiln/kiln.h umbrella (it needs libkiln_mpi).
 *
 *   kiln_dist_init(NULL);                        // MPI_Init, or attach to MPI already started
 *   int rank, size;
 *   kiln_dist_rank(&rank); kiln_dist_size(&size);
 *   kiln_communicator *world = NULL;
 *   kiln_dist_communicator(&world);               // for fit and the distributed optimizer
 *   fit_options.distribution = world;             // kiln/training.h
 *   ...
 *   kiln_communicator_free(world);
 *   kiln_dist_finalize();
 *
 * Run with `mpirun -np 2 ./program`. Every rank calls the collectives in the same order with
 * tensors of the same dtype and shape (allgather: the same shape after the first dimension).
 * A collective that waits longer than the timeout (another rank failed, or stopped calling the
 * same collectives) prints which one on stderr and aborts the job instead of hanging.
 * Threads: collectives are serialised; call them from one thread per process.
 */
#ifndef KILN_DISTRIBUTED_H
#define KILN_DISTRIBUTED_H

#include "kiln/kiln.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Starts MPI (MPI_Init_thread), or attaches to an MPI the program started itself (then
/// kiln_dist_finalize leaves it running). options (may be NULL): {"timeout_seconds": 300.0 (the
/// environment variable KILN_DIST_TIMEOUT_SECONDS overrides the default; 0 = wait forever),
/// "threads_per_process": 0 (0 = auto: the processors this process may use divided by the ranks
/// on this machine, unless OMP_NUM_THREADS is set; else that many kernel threads)}.
/// A second init is a no-op; an init after kiln_dist_finalize is FAILED_PRECONDITION (MPI
/// cannot restart); INTERNAL when MPI fails to start. Thread-safety: safe.
KILN_API kiln_status *kiln_dist_init(const kiln_config *options);
/// Ends MPI if kiln_dist_init started it (also done at exit). No-op when not initialised.
KILN_API kiln_status *kiln_dist_finalize(void);
/// Whether kiln_dist_init has run and kiln_dist_finalize has not.
KILN_API bool kiln_dist_is_initialized(void);
/// Ends every process of the job now (MPI_Abort) with exit code `code`, for a rank that fails
/// while the others may be waiting in a collective. Does not return when MPI runs.
KILN_API void kiln_dist_abort(int code);

/// This process's rank in MPI_COMM_WORLD, the number of processes, the rank among the processes
/// on this machine and their number. FAILED_PRECONDITION before kiln_dist_init.
KILN_API kiln_status *kiln_dist_rank(int *out);
KILN_API kiln_status *kiln_dist_size(int *out);
KILN_API kiln_status *kiln_dist_local_rank(int *out);
KILN_API kiln_status *kiln_dist_local_size(int *out);

/// The element-wise sum ("sum") or mean ("mean") of tensor over the ranks (float32, float64 or
/// bfloat16 for both; int32 or int64 for "sum"), reduced in place in the new tensor's buffer.
/// INVALID_ARGUMENT for another dtype or op; INTERNAL (naming MPI's error) when MPI fails, as
/// when the ranks' tensors differ in size. Ownership: *out is new.
KILN_API kiln_status *kiln_dist_allreduce(kiln_tensor **out, const kiln_tensor *tensor, const char *op);
/// kiln_dist_allreduce in place on a variable: its value becomes the sum or mean over the ranks
/// (Horovod's allreduce_). Errors as kiln_dist_allreduce; on error the variable is unchanged.
KILN_API kiln_status *kiln_dist_allreduce_variable(kiln_variable *variable, const char *op);
/// Root's tensor on every rank (every rank passes a tensor of the same dtype and shape; the
/// ranks check that first and all fail alike with INVALID_ARGUMENT if not). Ownership: *out is new.
KILN_API kiln_status *kiln_dist_broadcast(kiln_tensor **out, const kiln_tensor *tensor, int root);
/// The ranks' tensors concatenated along axis 0 in rank order; their first dimensions may differ,
/// the rest and the dtype must agree (checked: INVALID_ARGUMENT on every rank). Rank-0 tensors
/// are gathered as [1] each. Ownership: *out is new.
KILN_API kiln_status *kiln_dist_allgather(kiln_tensor **out, const kiln_tensor *tensor);
/// Waits until every rank has called it.
KILN_API kiln_status *kiln_dist_barrier(void);
/// A communicator over MPI_COMM_WORLD for kiln_fit_options.distribution and
/// kiln_optimizer_set_distributed (kiln/communicator.h). Ownership: *out is new, free with
/// kiln_communicator_free (before kiln_dist_finalize when it runs collectives after).
KILN_API kiln_status *kiln_dist_communicator(kiln_communicator **out);

#ifdef __cplusplus
}
#endif

#endif /* KILN_DISTRIBUTED_H */
