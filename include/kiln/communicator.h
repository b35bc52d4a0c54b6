/*
 * kiln/communicator.h — data-parallel training in the core library: a communicator (the
 * collectives training needs, supplied by the caller as a callback table), the distributed
 * optimizer (Horovod's DistributedOptimizer) and broadcast of variables. fit takes a
 * communicator as kiln_fit_options.distribution.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * libkiln.so never links MPI: libkiln_mpi.so (kiln/distributed.h, kiln_dist_*) gives the
 * communicator over MPI_COMM_WORLD with kiln_dist_communicator. Any other transport plugs in
 * through kiln_communicator_create.
 *
 *   kiln_communicator *world = NULL;
 *   kiln_dist_init(NULL);
 *   kiln_dist_communicator(&world);
 *   kiln_optimizer_set_distributed(opt, world, NULL);   // a custom loop averages its gradients
 *   fit_options.distribution = world;                    // or fit runs data-parallel
 *
 * Threads: every rank must call the same collectives in the same order. The table's functions
 * are called one at a time, but not always on the thread that started the training: the
 * overlapped gradient sums (the "overlap" option below, on by default) call them from kiln's
 * background thread of the communicator, or from the thread waiting for the sums.
 */
#ifndef KILN_COMMUNICATOR_H
#define KILN_COMMUNICATOR_H

#include "kiln/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/// The collectives of a communicator. Each returns NULL for success or a status (made with
/// kiln_status_create) that kiln passes on. Every rank calls them in the same order with the same
/// sizes.
typedef struct kiln_communicator_table {
  size_t struct_size; /**< sizeof(kiln_communicator_table) */
  /// The element-wise sum over the ranks of count elements of dtype (KILN_DTYPE_FLOAT32,
  /// FLOAT64, BFLOAT16, INT32 or INT64) at data, left in data on every rank.
  kiln_status *(*allreduce_sum)(void *data, size_t count, kiln_dtype dtype, void *user_data);
  /// The root rank's bytes at data copied to data on every other rank.
  kiln_status *(*broadcast)(void *data, size_t bytes, int root, void *user_data);
  /// Frees user_data when the communicator dies (its last handle, and every fit and optimizer
  /// using it, end). May be NULL.
  void (*destroy)(void *user_data);
} kiln_communicator_table;

/// A communicator of size processes in which this one is rank (0 <= rank < size), whose
/// collectives are table's (copied); user_data goes to every call. INVALID_ARGUMENT for a bad
/// rank or size, a NULL table or function, or an unknown struct_size.
/// Ownership: *out is new, free with kiln_communicator_free; on failure destroy is not called.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_communicator_create(kiln_communicator **out, int rank, int size,
                                               const kiln_communicator_table *table, void *user_data);
/// Another handle to the same communicator. Ownership: *out is new.
KILN_API kiln_status *kiln_communicator_clone(kiln_communicator **out, const kiln_communicator *communicator);
/// Accepts NULL.
KILN_API void kiln_communicator_free(kiln_communicator *communicator);
/// This process's rank; -1 for NULL.
KILN_API int kiln_communicator_get_rank(const kiln_communicator *communicator);
/// The number of processes; -1 for NULL.
KILN_API int kiln_communicator_get_size(const kiln_communicator *communicator);

/// Horovod's broadcast_variables: root's values of the n variables assigned on every other rank,
/// in one fused broadcast (before training, so every rank starts from the same weights). The
/// ranks first check that they hold the same number of variables with the same dtypes and
/// shapes; when not, every rank gets INVALID_ARGUMENT and no variable changes.
/// Thread-safety: as the variables' assign.
KILN_API kiln_status *kiln_communicator_broadcast_variables(kiln_communicator *communicator,
                                                            kiln_variable *const *variables, size_t n,
                                                            int root);

/// Horovod's DistributedOptimizer on the optimizer itself: from now on its apply_gradients
/// replaces the gradients by their mean (or sum) over the communicator's ranks before clipping
/// and the update. Small gradients are packed into fusion buffers summed in one collective each.
/// options (may be NULL): {"op": "mean" (default) | "sum", "fusion_threshold_bytes": 67108864
/// (64 MiB, the default; 0 = one collective per gradient), "overlap": true}. A NULL communicator
/// turns it off. fit's own train step sums the gradients during the backward pass, as
/// kiln_tape_set_distributed describes ("overlap": false sums them after it); a custom loop's
/// apply_gradients sums them when called. fit with a distribution weights each rank by its share
/// of the batch itself (the optimizer's setting returns after fit). INVALID_ARGUMENT for unknown
/// keys or values.
/// Thread-safety: not while the optimizer applies gradients on another thread.
KILN_API kiln_status *kiln_optimizer_set_distributed(kiln_optimizer *optimizer,
                                                     kiln_communicator *communicator,
                                                     const kiln_config *options);
/// Horovod's DistributedGradientTape: from now on the tape's gradients (kiln_tape_gradient and
/// its variants) come back as their mean (or sum) over the communicator's ranks. The sums start
/// during the backward pass: the gradients are laid out in buckets in reverse source order (the
/// order the backward pass usually finishes them; the first bucket at most 1 MiB, the others up
/// to fusion_threshold_bytes), and the communicator's background thread sums the buckets in that
/// order, the same on every rank, each once all of its gradients are complete. Pair it with a
/// plain optimizer (a distributed one would average again). Floating sources must be float32 or
/// float64; a gradient defined on some ranks but not all fails on every rank
/// (FAILED_PRECONDITION).
/// options (may be NULL): {"op": "mean" | "sum", "fusion_threshold_bytes": 67108864,
/// "overlap": true (false: sum after the backward pass, on the calling thread)}; the same keys
/// work in kiln_optimizer_set_distributed, whose fit steps overlap the same way. A NULL
/// communicator turns it off. INVALID_ARGUMENT for unknown keys or values.
/// Thread-safety: as the tape (the thread that created it; FAILED_PRECONDITION from another).
KILN_API kiln_status *kiln_tape_set_distributed(kiln_tape *tape, kiln_communicator *communicator,
                                                const kiln_config *options);
/// The optimizer's communicator (a new handle), or *out = NULL when it is not distributed.
KILN_API kiln_status *kiln_optimizer_get_distributed(kiln_communicator **out,
                                                     const kiln_optimizer *optimizer);

#ifdef __cplusplus
}
#endif

#endif /* KILN_COMMUNICATOR_H */
