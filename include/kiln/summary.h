/*
 * kiln/summary.h — TensorBoard logging (tf.summary): event-file writers, the summaries TensorBoard
 * shows (scalars, histograms, images, text, hparams, op timings of a traced step) and a reader
 * of event files. Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * The files are what TensorFlow 2 writes (events.out.tfevents.<secs>.<host>.<pid>.<n>.v2, TFRecords
 * of Event messages with masked CRC-32C), so `tensorboard --logdir DIR` opens them unchanged.
 * As in TensorFlow, each thread has a stack of default writers and a default step; the summary
 * calls write to the thread's default writer, and return written = false (not an error) when it
 * has none or recording is off.
 *
 *   kiln_summary_writer *w = NULL;
 *   kiln_status *st = kiln_summary_create_file_writer(&w, "logs/train", NULL);
 *   if (!st) st = kiln_summary_writer_push_default(w, NULL);    // with writer.as_default():
 *   if (!st) st = kiln_summary_set_step_optimizer(optimizer);    // step = optimizer.iterations
 *   if (!st) st = kiln_summary_scalar("loss", mean_loss, NULL, NULL, NULL);
 *   ...
 *   kiln_summary_writer_pop_default();
 *   kiln_summary_writer_free(w);                                 // flushes and closes
 */
#ifndef KILN_SUMMARY_H
#define KILN_SUMMARY_H

#include "kiln/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An event-file writer (tf.summary.SummaryWriter). */
typedef struct kiln_summary_writer kiln_summary_writer;

/** Options of kiln_summary_create_file_writer (tf.summary.create_file_writer's arguments). */
typedef struct kiln_summary_writer_options {
  size_t struct_size;          /**< sizeof(kiln_summary_writer_options) */
  int64_t max_queue;           /**< records held before the writer thread writes them; 10 */
  int64_t flush_millis;        /**< the longest a record waits before it is written; 120000 */
  const char *filename_suffix; /**< appended to the file name; ".v2" (NULL: ".v2") */
} kiln_summary_writer_options;

/// Fills options with TensorFlow's defaults. struct_size: sizeof(kiln_summary_writer_options) as
/// the caller was compiled.
KILN_API kiln_status *kiln_summary_writer_options_init(kiln_summary_writer_options *options,
                                                       size_t struct_size);
/// tf.summary.create_file_writer: creates logdir (and parents) and a new event file in it whose
/// first record is file_version "brain.Event:2". options NULL: the defaults. A background thread
/// writes the records. Ownership: *out is new, free with kiln_summary_writer_free.
KILN_API kiln_status *kiln_summary_create_file_writer(kiln_summary_writer **out, const char *logdir,
                                                      const kiln_summary_writer_options *options);
/// Another handle to the same writer. Ownership: *out is new, free with kiln_summary_writer_free.
KILN_API kiln_status *kiln_summary_writer_clone(kiln_summary_writer **out, const kiln_summary_writer *writer);
/// Releases this handle; the writer is flushed and closed when no handle and no default-writer
/// stack holds it any more. NULL is ignored.
KILN_API void kiln_summary_writer_free(kiln_summary_writer *writer);
/// Blocks until every record written so far is in the file. A failed background write is
/// reported here (DATA_LOSS).
KILN_API kiln_status *kiln_summary_writer_flush(kiln_summary_writer *writer);
/// Flushes and closes the file; later summaries to this writer are FAILED_PRECONDITION.
KILN_API kiln_status *kiln_summary_writer_close(kiln_summary_writer *writer);
/// The event file's path and the log directory. Lifetime: as long as the handle.
KILN_API const char *kiln_summary_writer_get_path(const kiln_summary_writer *writer);
KILN_API const char *kiln_summary_writer_get_logdir(const kiln_summary_writer *writer);

/// writer.as_default(step): pushes writer on the calling thread's default-writer stack (NULL pushes
/// "no writer", as tf.summary.create_noop_writer) and, when step is not NULL, sets the default
/// step. pop removes the top and restores the default step that push replaced
/// (FAILED_PRECONDITION when the stack is empty).
KILN_API kiln_status *kiln_summary_writer_push_default(kiln_summary_writer *writer, const int64_t *step);
KILN_API kiln_status *kiln_summary_writer_pop_default(void);

/// tf.summary.experimental.set_step for the calling thread: a number, or bound to a variable (an
/// int64 or int32 scalar read at each summary) or to an optimizer's iterations. clear_step unsets it.
KILN_API kiln_status *kiln_summary_set_step(int64_t step);
KILN_API kiln_status *kiln_summary_set_step_variable(const kiln_variable *variable);
KILN_API kiln_status *kiln_summary_set_step_optimizer(const kiln_optimizer *optimizer);
KILN_API kiln_status *kiln_summary_clear_step(void);
/// The default step now: *has_step false when none is set.
KILN_API kiln_status *kiln_summary_get_step(int64_t *out, bool *has_step);
/// tf.summary.record_if for the calling thread: when false the summary calls write nothing.
KILN_API kiln_status *kiln_summary_record_if(bool condition);
/// tf.summary.should_record_summaries: whether a summary written now would be recorded (the
/// calling thread has a default writer and recording is on).
KILN_API kiln_status *kiln_summary_should_record(bool *out);

/* The summaries. step NULL: the thread's default step (none set is INVALID_ARGUMENT).
 * description may be NULL. written may be NULL; *written is false when there is no default writer
 * or recording is off. */

/// tf.summary.scalar: a float32 scalar (plugin "scalars").
KILN_API kiln_status *kiln_summary_scalar(const char *tag, double value, const int64_t *step,
                                          const char *description, bool *written);
/// tf.summary.histogram: data of any numeric dtype bucketed as TensorFlow does (buckets 30 by
/// default; pass 0 for the default): a float64 [buckets, 3] tensor of (left, right, count).
KILN_API kiln_status *kiln_summary_histogram(const char *tag, const kiln_tensor *data, const int64_t *step,
                                             int64_t buckets, const char *description, bool *written);
/// tf.summary.image: data [k, h, w, c] (c 1, 2, 3 or 4), uint8 or float in [0, 1]; the first
/// max_outputs images (0: the default 3) as PNG.
KILN_API kiln_status *kiln_summary_image(const char *tag, const kiln_tensor *data, const int64_t *step,
                                         int64_t max_outputs, const char *description, bool *written);
/// tf.summary.text: one UTF-8 string (markdown renders, tables included).
KILN_API kiln_status *kiln_summary_text(const char *tag, const char *text, const int64_t *step,
                                        const char *description, bool *written);
/// hp.hparams: this run's hyperparameter values (a config of name -> number, bool or string) as the
/// hparams plugin's session-start summary; trial_id NULL or "": derived from the values.
KILN_API kiln_status *kiln_summary_hparams(const kiln_config *hparams, const char *trial_id, bool *written);
/// The session-end summary: status "success", "failure", "running" or "unknown" (NULL: success).
KILN_API kiln_status *kiln_summary_hparams_end(const char *status, bool *written);
/// hp.hparams_config: the experiment (normally in the parent logdir of the runs). config:
/// {"hparams": [{"name", "display_name"?, "description"?, "type"? ("string"|"bool"|"float64"),
/// "values"? [...] or "min_value"+"max_value"}], "metrics": [{"tag", "group"?, "display_name"?,
/// "description"?, "dataset_type"? ("training"|"validation")}]}.
KILN_API kiln_status *kiln_summary_hparams_config(const kiln_config *config, bool *written);
/// tf.summary.trace_on / trace_export / trace_off: times every op the calling thread runs (forward
/// and backward); export writes a markdown table (op, output shape, calls, microseconds, share) as
/// text `name` and one scalar `name/<op>` per op plus `name/total`, then stops.
KILN_API kiln_status *kiln_summary_trace_on(void);
KILN_API kiln_status *kiln_summary_trace_export(const char *name, const int64_t *step, bool *written);
KILN_API kiln_status *kiln_summary_trace_off(void);

/// Reads one event file, verifying both CRCs of every record (a damaged record is DATA_LOSS naming
/// its index and offset; a truncated last record is reported in "truncated" and
/// "truncation_message", not as an error). *out: {"path", "truncated", "truncation_message",
/// "events": [{"step", "wall_time", "file_version"?, "values": [{"tag", "plugin", "kind", ...}]}]}
/// with "scalar", "histogram" [[left, right, count]...], "width"/"height"/"images" or "text" per
/// kind. Ownership: *out is new, free with kiln_config_free.
KILN_API kiln_status *kiln_summary_read_events(kiln_config **out, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* KILN_SUMMARY_H */
