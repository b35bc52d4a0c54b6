// TensorBoard logging across the ABI: kiln_summary_writer over summary/writer.h, the summary calls
// over summary/summary.h, and the event-file reader over io/event_reader.h.
#include "kiln/summary.h"

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "capi/handles.h"
#include "capi/optimizer_handle.h"
#include "capi/options.h"
#include "io/event_reader.h"
#include "summary/summary.h"
#include "summary/writer.h"
#include "train/optimizer.h"

using kiln::Code;
using kiln::fail;
using kiln::capi::require_not_null;
namespace summary = kiln::summary;

struct kiln_summary_writer {
  summary::WriterPtr writer;
};

namespace {

const summary::WriterPtr &writer_of(const kiln_summary_writer *w, const char *fn) {
  require_not_null(w, fn, "writer");
  return w->writer;
}

std::optional<int64_t> step_of(const int64_t *step) {
  return step ? std::optional<int64_t>(*step) : std::nullopt;
}

constexpr size_t kWriterV1 = KILN_OPTIONS_V1_SIZE(kiln_summary_writer_options, filename_suffix);

kiln_summary_writer_options writer_defaults() {
  const summary::WriterOptions d;
  kiln_summary_writer_options o{};
  o.struct_size = sizeof o;
  o.max_queue = d.max_queue;
  o.flush_millis = d.flush_millis;
  o.filename_suffix = ".v2";
  return o;
}

std::string text_or_empty(const char *s) { return s ? s : ""; }

void set_written(bool *written, bool value) {
  if (written) *written = value;
}

}  // namespace

extern "C" {

kiln_status *kiln_summary_writer_options_init(kiln_summary_writer_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, writer_defaults(), kWriterV1, __func__,
                           "kiln_summary_writer_options");
  KILN_CAPI_END
}

kiln_status *kiln_summary_create_file_writer(kiln_summary_writer **out, const char *logdir,
                                             const kiln_summary_writer_options *options) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(logdir, __func__, "logdir");
  const kiln_summary_writer_options u = kiln::capi::read_options(options, writer_defaults(), kWriterV1,
                                                                 __func__, "kiln_summary_writer_options");
  summary::WriterOptions o;
  o.max_queue = u.max_queue;
  o.flush_millis = u.flush_millis;
  if (u.filename_suffix) o.filename_suffix = u.filename_suffix;
  auto w = std::make_unique<kiln_summary_writer>();
  w->writer = summary::SummaryWriter::create(logdir, o);
  *out = w.release();
  KILN_CAPI_END
}

kiln_status *kiln_summary_writer_clone(kiln_summary_writer **out, const kiln_summary_writer *writer) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = new kiln_summary_writer{writer_of(writer, __func__)};
  KILN_CAPI_END
}

void kiln_summary_writer_free(kiln_summary_writer *writer) { delete writer; }

kiln_status *kiln_summary_writer_flush(kiln_summary_writer *writer) {
  KILN_CAPI_BEGIN
  writer_of(writer, __func__)->flush();
  KILN_CAPI_END
}

kiln_status *kiln_summary_writer_close(kiln_summary_writer *writer) {
  KILN_CAPI_BEGIN
  writer_of(writer, __func__)->close();
  KILN_CAPI_END
}

const char *kiln_summary_writer_get_path(const kiln_summary_writer *writer) {
  return writer ? writer->writer->path().c_str() : nullptr;
}

const char *kiln_summary_writer_get_logdir(const kiln_summary_writer *writer) {
  return writer ? writer->writer->logdir().c_str() : nullptr;
}

kiln_status *kiln_summary_writer_push_default(kiln_summary_writer *writer, const int64_t *step) {
  KILN_CAPI_BEGIN
  summary::push_default(writer ? writer->writer : nullptr, step_of(step));
  KILN_CAPI_END
}

kiln_status *kiln_summary_writer_pop_default(void) {
  KILN_CAPI_BEGIN
  summary::pop_default();
  KILN_CAPI_END
}

kiln_status *kiln_summary_set_step(int64_t step) {
  KILN_CAPI_BEGIN
  summary::set_step(step);
  KILN_CAPI_END
}

kiln_status *kiln_summary_set_step_variable(const kiln_variable *variable) {
  KILN_CAPI_BEGIN
  require_not_null(variable, __func__, "variable");
  summary::set_step(variable->variable);
  KILN_CAPI_END
}

kiln_status *kiln_summary_set_step_optimizer(const kiln_optimizer *optimizer) {
  KILN_CAPI_BEGIN
  require_not_null(optimizer, __func__, "optimizer");
  summary::set_step(optimizer->optimizer->iterations_variable());
  KILN_CAPI_END
}

kiln_status *kiln_summary_clear_step(void) {
  KILN_CAPI_BEGIN
  summary::set_step(std::nullopt);
  KILN_CAPI_END
}

kiln_status *kiln_summary_get_step(int64_t *out, bool *has_step) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(has_step, __func__, "has_step");
  const std::optional<int64_t> s = summary::get_step();
  *has_step = s.has_value();
  *out = s.value_or(0);
  KILN_CAPI_END
}

kiln_status *kiln_summary_record_if(bool condition) {
  KILN_CAPI_BEGIN
  summary::set_recording(condition);
  KILN_CAPI_END
}

kiln_status *kiln_summary_should_record(bool *out) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = summary::recording() && summary::default_writer() != nullptr;
  KILN_CAPI_END
}

kiln_status *kiln_summary_scalar(const char *tag, double value, const int64_t *step, const char *description,
                                 bool *written) {
  KILN_CAPI_BEGIN
  require_not_null(tag, __func__, "tag");
  set_written(written, summary::scalar(tag, value, step_of(step), text_or_empty(description)));
  KILN_CAPI_END
}

kiln_status *kiln_summary_histogram(const char *tag, const kiln_tensor *data, const int64_t *step,
                                    int64_t buckets, const char *description, bool *written) {
  KILN_CAPI_BEGIN
  require_not_null(tag, __func__, "tag");
  require_not_null(data, __func__, "data");
  set_written(written, summary::histogram(tag, data->value, step_of(step), buckets == 0 ? 30 : buckets,
                                          text_or_empty(description)));
  KILN_CAPI_END
}

kiln_status *kiln_summary_image(const char *tag, const kiln_tensor *data, const int64_t *step,
                                int64_t max_outputs, const char *description, bool *written) {
  KILN_CAPI_BEGIN
  require_not_null(tag, __func__, "tag");
  require_not_null(data, __func__, "data");
  set_written(written, summary::image(tag, data->value, step_of(step), max_outputs == 0 ? 3 : max_outputs,
                                      text_or_empty(description)));
  KILN_CAPI_END
}

kiln_status *kiln_summary_text(const char *tag, const char *text, const int64_t *step,
                               const char *description, bool *written) {
  KILN_CAPI_BEGIN
  require_not_null(tag, __func__, "tag");
  require_not_null(text, __func__, "text");
  set_written(written, summary::text(tag, std::string(text), step_of(step), text_or_empty(description)));
  KILN_CAPI_END
}

kiln_status *kiln_summary_hparams(const kiln_config *hparams, const char *trial_id, bool *written) {
  KILN_CAPI_BEGIN
  require_not_null(hparams, __func__, "hparams");
  set_written(written, summary::hparams(hparams->value, text_or_empty(trial_id)));
  KILN_CAPI_END
}

kiln_status *kiln_summary_hparams_end(const char *status, bool *written) {
  KILN_CAPI_BEGIN
  set_written(written, summary::hparams_end(status ? status : "success"));
  KILN_CAPI_END
}

kiln_status *kiln_summary_hparams_config(const kiln_config *config, bool *written) {
  KILN_CAPI_BEGIN
  require_not_null(config, __func__, "config");
  kiln::ConfigReader r(config->value, "hparams_config");
  r.accept({"hparams", "metrics"});
  r.finish();
  set_written(written, summary::hparams_config(config->value, config->value));
  KILN_CAPI_END
}

kiln_status *kiln_summary_trace_on(void) {
  KILN_CAPI_BEGIN
  summary::trace_on();
  KILN_CAPI_END
}

kiln_status *kiln_summary_trace_export(const char *name, const int64_t *step, bool *written) {
  KILN_CAPI_BEGIN
  require_not_null(name, __func__, "name");
  set_written(written, summary::trace_export(name, step_of(step)));
  KILN_CAPI_END
}

kiln_status *kiln_summary_trace_off(void) {
  KILN_CAPI_BEGIN
  summary::trace_off();
  KILN_CAPI_END
}

kiln_status *kiln_summary_read_events(kiln_config **out, const char *path) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(path, __func__, "path");
  *out = new kiln_config{kiln::io::events::to_config(kiln::io::events::read_event_file(path))};
  KILN_CAPI_END
}

}  // extern "C"
