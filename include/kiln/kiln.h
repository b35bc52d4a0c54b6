/*
 * kiln.h — the C API of kiln (C99).
 *
 * Example: the gradient of sum(x * x) at x = [1, 2, 3].
 *
 *     int64_t dims[1] = {3};
 *     float xs[3] = {1, 2, 3};
 *     kiln_tensor *x = NULL, *y = NULL, *loss = NULL, *grad = NULL;
 *     kiln_tape *tape = NULL;
 *     kiln_status *st = kiln_tensor_create(&x, KILN_DTYPE_FLOAT32, dims, 1, xs, sizeof xs);
 *     if (!st) st = kiln_tape_create(&tape, false, true);
 *     if (!st) st = kiln_tape_watch(tape, x);
 *     if (!st) st = kiln_mul(&y, x, x);
 *     if (!st) st = kiln_sum(&loss, y, NULL, 0, false);
 *     if (!st) st = kiln_tape_stop(tape);
 *     if (!st) st = kiln_tape_gradient(&grad, tape, loss, &x, 1, KILN_UNCONNECTED_NONE);
 *     if (st) { fprintf(stderr, "%s\n", kiln_status_get_message(st)); kiln_status_free(st); }
 *     // grad holds [2, 4, 6]: read it with kiln_tensor_get_data().
 *     kiln_tensor_free(grad); kiln_tensor_free(loss); kiln_tensor_free(y);
 *     kiln_tensor_free(x); kiln_tape_free(tape);
 *
 * Conventions (they hold for every function unless its comment says otherwise):
 * - Every fallible call returns kiln_status *: NULL on success; otherwise a status the
 *   caller frees with kiln_status_free. A failed call leaves its out arguments untouched
 *   and leaks nothing. No call aborts the process on bad input.
 * - Ownership: an object written to an `out` argument is new and belongs to the caller,
 *   who frees it with the matching _free function. Getters return borrowed values that
 *   live as long as the object they came from. _free functions accept NULL.
 * - Tensors are immutable, reference-counted values: freeing a handle never invalidates
 *   another handle, and freeing a variable never invalidates a tensor read from it.
 * - Threads: functions may be called from several threads at once on different
 *   objects; tensors are safe to share between threads (they never change). A tape
 *   belongs to the thread that created it. Ops record on the calling thread's tapes.
 */
#ifndef KILN_H
#define KILN_H

/* The C API is split per object; this umbrella includes every part. */
#include "kiln/autodiff.h"             /* variables, gradient tapes */
#include "kiln/callbacks.h"            /* callbacks for fit, evaluate, predict */
#include "kiln/checkpoint.h"           /* TensorFlow checkpoints: reading, Checkpoint, CheckpointManager */
#include "kiln/common.h"               /* handles, enums, status, library settings */
#include "kiln/communicator.h"         /* data-parallel training: collectives, distributed optimizer */
#include "kiln/config.h"               /* kiln_config: settings of layers and other objects */
#include "kiln/data.h"                 /* datasets, iterators, IDX/Fashion-MNIST/CSV readers */
#include "kiln/init_from_checkpoint.h" /* pretrained values from TF checkpoints by name (TF1 BERT, ...) */
#include "kiln/layers.h"               /* layers, models, Sequential, custom layers */
#include "kiln/losses.h"               /* losses */
#include "kiln/metrics.h"              /* metrics */
#include "kiln/ops.h"                  /* eager ops */
#include "kiln/optimizers.h"           /* optimizers, learning-rate schedules */
#include "kiln/saved_model.h"          /* the SavedModel: save, load, serve through signatures */
#include "kiln/summary.h"              /* TensorBoard logging: event writers, summaries, event reader */
#include "kiln/tensor.h"               /* tensors */
#include "kiln/training.h"             /* compile, fit, evaluate, predict on models */

#endif /* KILN_H */
