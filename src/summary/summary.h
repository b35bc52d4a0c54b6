// tf.summary's ops in TensorFlow 2's tensor form (FORMATS.md §1.5): each writes one event with a
// Summary.Value {tag, tensor, metadata{plugin_data}} to the thread's default writer at step
// (the thread's default step when not given). Like TF, each returns true when it wrote and false
// when there is no default writer or recording is off; no step at all is InvalidArgument.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/tensor.h"
#include "summary/writer.h"

namespace kiln::summary {

// tf.summary.scalar: DT_FLOAT rank 0, plugin "scalars". A tensor must be a numeric scalar (any
// shape with one element), converted to float32.
bool scalar(const std::string &tag, double value, std::optional<int64_t> step = std::nullopt,
            const std::string &description = "");
bool scalar(const std::string &tag, const Tensor &value, std::optional<int64_t> step = std::nullopt,
            const std::string &description = "");

// tf.summary.histogram: DT_DOUBLE [buckets, 3] rows (left, right, count), plugin "histograms",
// bucketed as TensorBoard's summary_v2 does (histogram.h). data: any numeric tensor.
bool histogram(const std::string &tag, const Tensor &data, std::optional<int64_t> step = std::nullopt,
               int64_t buckets = 30, const std::string &description = "");

// tf.summary.image: data [k, h, w, c] with c 1, 2, 3 or 4, uint8 or float in [0, 1]; the first
// max_outputs images as PNG. DT_STRING [2 + n] = width, height, PNGs; plugin "images".
bool image(const std::string &tag, const Tensor &data, std::optional<int64_t> step = std::nullopt,
           int64_t max_outputs = 3, const std::string &description = "");

// tf.summary.text: a DT_STRING scalar (UTF-8; markdown renders), plugin "text".
bool text(const std::string &tag, const std::string &data, std::optional<int64_t> step = std::nullopt,
          const std::string &description = "");
// A DT_STRING tensor of any shape (TensorBoard renders a rank-1 or rank-2 one as a table).
bool text(const std::string &tag, const std::vector<std::string> &data, const std::vector<int64_t> &shape,
          std::optional<int64_t> step = std::nullopt, const std::string &description = "");

// Keras's model graph (the TensorBoard callback's write_graph): tag "keras", plugin
// "graph_keras_model", content "1", a DT_STRING scalar holding the model's JSON config.
bool keras_model(const std::string &name, const std::string &model_json, int64_t step = 0);

// ---- hparams (TensorBoard's hparams plugin, FORMATS.md §1.7) ----
// hp.hparams(hparams, trial_id, start_time_secs): the session_start_info summary at step 0 in the
// run's logdir. hparams: name -> number, bool or string (a Config object). trial_id empty: a
// hash of the values, as TensorBoard makes it. start_time_secs absent: now.
bool hparams(const Config &hparams, const std::string &trial_id = "",
             std::optional<double> start_time_secs = std::nullopt);
// The session_end_info summary: status "success", "failure", "running" or "unknown".
bool hparams_end(const std::string &status = "success", std::optional<double> end_time_secs = std::nullopt);
// hp.hparams_config: the experiment summary (normally in the parent logdir of the runs).
// hparams: a list of {"name", "display_name"?, "description"?, "type"? ("string", "bool",
// "float64"), "values"? [discrete values] | "min_value" and "max_value" (an interval)}; metrics:
// a list of {"tag", "group"?, "display_name"?, "description"?, "dataset_type"? ("training",
// "validation")}.
bool hparams_config(const Config &hparams, const Config &metrics,
                    std::optional<double> time_created_secs = std::nullopt);

// ---- trace (tf.summary.trace_on / trace_export) ----
// trace_on starts timing every op this thread runs (forward and backward); trace_export writes
// what was timed as a text summary `name` (a markdown table: op, output shape, calls, total and
// mean microseconds, share of the traced time, sorted by total) and scalars `name/<op>` of the
// total microseconds per op, then stops; trace_off stops without writing. An op's time is the
// time from the end of the previous op on this thread to its own end, so it includes the eager
// overhead of reaching it. trace_on while tracing restarts.
void trace_on();
bool trace_export(const std::string &name, std::optional<int64_t> step = std::nullopt);
void trace_off();
// What has been traced so far: one row per (op, output shape) with calls and microseconds.
struct TraceRow {
  std::string op;
  std::string shape;  // the first output's shape, e.g. "[128, 512]"
  int64_t calls = 0;
  double micros = 0.0;
};
std::vector<TraceRow> trace_rows();

}  // namespace kiln::summary
