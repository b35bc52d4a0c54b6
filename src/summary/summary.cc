#include "summary/summary.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "core/utf8.h"
#include "event.pb.h"
#include "ops/recorder.h"
#include "summary/histogram.h"
#include "summary/image_encode.h"
#include "tb_plugins.pb.h"

namespace kiln::summary {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The writer to use, or null when nothing should be written (no default writer, recording off).
WriterPtr target() {
  if (!recording()) return nullptr;
  return default_writer();
}

int64_t resolve_step(std::optional<int64_t> step, const char *op) {
  if (step) return *step;
  if (auto s = get_step()) return *s;
  fail(Code::kInvalidArgument, op,
       ": no step given and no default step set; expected step=... or summary.set_step (for example bound to "
       "optimizer.iterations)");
}

void require_tag(const std::string &tag, const char *op) {
  if (tag.empty()) fail(Code::kInvalidArgument, op, ": tag is empty; expected a non-empty name");
  require_utf8(tag, op, "tag");  // Summary.Value.tag is a protobuf string
}

// One event holding one Summary.Value {tag, tensor, metadata{plugin_data}}, as TF2 writes it.
bool write_value(const WriterPtr &w, const std::string &tag, int64_t step, tbproto::TensorProto tensor,
                 const std::string &plugin, const std::string &content, const std::string &description) {
  require_utf8(description, "summary", "description");
  tbproto::Event event;
  event.set_step(step);
  auto *value = event.mutable_summary()->add_value();
  value->set_tag(tag);
  *value->mutable_tensor() = std::move(tensor);
  auto *meta = value->mutable_metadata();
  meta->mutable_plugin_data()->set_plugin_name(plugin);
  if (!content.empty()) meta->mutable_plugin_data()->set_content(content);
  if (!description.empty()) meta->set_summary_description(description);
  w->write(std::move(event));
  return true;
}

tbproto::TensorProto numeric_tensor(tfproto::DataType dtype, const std::vector<int64_t> &dims,
                                    const void *data, size_t bytes) {
  tbproto::TensorProto t;
  t.set_dtype(dtype);
  auto *shape = t.mutable_tensor_shape();  // a scalar still carries the (empty) shape message
  for (int64_t d : dims) shape->add_dim()->set_size(d);
  t.set_tensor_content(std::string(static_cast<const char *>(data), bytes));
  return t;
}

tbproto::TensorProto string_tensor(const std::vector<std::string> &values, const std::vector<int64_t> &dims) {
  tbproto::TensorProto t;
  t.set_dtype(tfproto::DT_STRING);
  auto *shape = t.mutable_tensor_shape();
  for (int64_t d : dims) shape->add_dim()->set_size(d);
  for (const auto &v : values) t.add_string_val(v);
  return t;
}

bool write_scalar(const std::string &tag, float v, std::optional<int64_t> step,
                  const std::string &description) {
  require_tag(tag, "summary.scalar");
  WriterPtr w = target();
  if (!w) return false;
  const int64_t s = resolve_step(step, "summary.scalar");
  return write_value(w, tag, s, numeric_tensor(tfproto::DT_FLOAT, {}, &v, sizeof v), "scalars", "",
                     description);
}

}  // namespace

bool scalar(const std::string &tag, double value, std::optional<int64_t> step,
            const std::string &description) {
  return write_scalar(tag, static_cast<float>(value), step, description);
}

bool scalar(const std::string &tag, const Tensor &value, std::optional<int64_t> step,
            const std::string &description) {
  require_defined(value, "summary.scalar", "data");
  if (value.num_elements() != 1)
    fail(Code::kInvalidArgument, "summary.scalar: data is ", value.description(),
         "; expected a scalar (one element)");
  return write_scalar(tag, static_cast<float>(value.item_as_double(0)), step, description);
}

bool histogram(const std::string &tag, const Tensor &data, std::optional<int64_t> step, int64_t buckets,
               const std::string &description) {
  require_tag(tag, "summary.histogram");
  require_defined(data, "summary.histogram", "data");
  WriterPtr w = target();
  if (!w) return false;
  const int64_t s = resolve_step(step, "summary.histogram");
  std::vector<double> rows = histogram_buckets(data, buckets);
  const int64_t k = static_cast<int64_t>(rows.size() / 3);
  return write_value(w, tag, s,
                     numeric_tensor(tfproto::DT_DOUBLE, {k, 3}, rows.data(), rows.size() * sizeof(double)),
                     "histograms", "", description);
}

bool image(const std::string &tag, const Tensor &data, std::optional<int64_t> step, int64_t max_outputs,
           const std::string &description) {
  require_tag(tag, "summary.image");
  require_defined(data, "summary.image", "data");
  WriterPtr w = target();
  if (!w) return false;
  const int64_t s = resolve_step(step, "summary.image");
  std::vector<std::string> strings = image_strings(data, max_outputs);
  const auto n = static_cast<int64_t>(strings.size());
  return write_value(w, tag, s, string_tensor(strings, {n}), "images", "", description);
}

bool text(const std::string &tag, const std::string &data, std::optional<int64_t> step,
          const std::string &description) {
  return text(tag, std::vector<std::string>{data}, {}, step, description);
}

bool text(const std::string &tag, const std::vector<std::string> &data, const std::vector<int64_t> &shape,
          std::optional<int64_t> step, const std::string &description) {
  require_tag(tag, "summary.text");
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      fail(Code::kInvalidArgument, "summary.text: shape has a negative dimension; expected sizes >= 0");
    n *= d;
  }
  if (n != static_cast<int64_t>(data.size()))
    fail(Code::kInvalidArgument, "summary.text: ", data.size(), " strings for a shape of ", n,
         " elements; expected as many strings as elements");
  WriterPtr w = target();
  if (!w) return false;
  const int64_t s = resolve_step(step, "summary.text");
  return write_value(w, tag, s, string_tensor(data, shape), "text", "", description);
}

bool keras_model(const std::string &name, const std::string &model_json, int64_t step) {
  require_tag(name, "summary.keras_model");
  WriterPtr w = target();
  if (!w) return false;
  return write_value(w, name, step, string_tensor({model_json}, {}), "graph_keras_model", "1", "");
}

// ---- hparams ----

namespace {

const char *kExperimentTag = "_hparams_/experiment";
const char *kSessionStartTag = "_hparams_/session_start_info";
const char *kSessionEndTag = "_hparams_/session_end_info";

// TensorBoard's NULL_TENSOR: float32 of shape [0].
tbproto::TensorProto null_tensor() { return numeric_tensor(tfproto::DT_FLOAT, {0}, nullptr, 0); }

bool write_hparams(const WriterPtr &w, const std::string &tag, const tbproto::HParamsPluginData &data) {
  return write_value(w, tag, 0, null_tensor(), "hparams", data.SerializeAsString(), "");
}

void set_proto_value(google::protobuf::Value *out, const Config::Json &v, const std::string &what) {
  if (v.is_boolean())
    out->set_bool_value(v.get<bool>());
  else if (v.is_number())
    out->set_number_value(v.get<double>());
  else if (v.is_string())
    out->set_string_value(v.get<std::string>());
  else
    fail(Code::kInvalidArgument, "summary.hparams: ", what, " is ", v.dump(),
         "; expected a number, bool or string");
}

// A stable name for the group of sessions with these values (TensorBoard uses a SHA-256 of the
// sorted JSON; any stable digest groups the same way).
std::string group_name_of(const Config &hparams) {
  std::map<std::string, std::string> sorted;
  for (const auto &[k, v] : hparams.json().items()) sorted[k] = v.dump();
  std::string text;
  for (const auto &[k, v] : sorted) text += k + "=" + v + ";";
  uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
  for (unsigned char c : text) {
    h1 = (h1 ^ c) * 1099511628211ull;
    h2 = (h2 ^ c) * 0x100000001b3ull + (h2 >> 29);
  }
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h1),
                static_cast<unsigned long long>(h2));
  return buf;
}

tbproto::SessionEndStatus end_status(const std::string &s) {
  if (s == "success") return tbproto::STATUS_SUCCESS;
  if (s == "failure") return tbproto::STATUS_FAILURE;
  if (s == "running") return tbproto::STATUS_RUNNING;
  if (s == "unknown") return tbproto::STATUS_UNKNOWN;
  fail(Code::kInvalidArgument, "summary.hparams_end: status '", s,
       "'; expected \"success\", \"failure\", \"running\" or \"unknown\"");
}

}  // namespace

bool hparams(const Config &values, const std::string &trial_id, std::optional<double> start_time_secs) {
  tbproto::HParamsPluginData data;
  auto *start = data.mutable_session_start_info();
  for (const auto &[name, v] : values.json().items())
    set_proto_value(&(*start->mutable_hparams())[name], v, "hparam '" + name + "'");
  require_utf8(trial_id, "summary.hparams", "trial_id");
  start->set_group_name(trial_id.empty() ? group_name_of(values) : trial_id);
  start->set_start_time_secs(start_time_secs ? *start_time_secs : now_seconds());
  WriterPtr w = target();
  if (!w) return false;
  return write_hparams(w, kSessionStartTag, data);
}

bool hparams_end(const std::string &status, std::optional<double> end_time_secs) {
  tbproto::HParamsPluginData data;
  auto *end = data.mutable_session_end_info();
  end->set_status(end_status(status));
  end->set_end_time_secs(end_time_secs ? *end_time_secs : now_seconds());
  WriterPtr w = target();
  if (!w) return false;
  return write_hparams(w, kSessionEndTag, data);
}

bool hparams_config(const Config &hparams_list, const Config &metrics,
                    std::optional<double> time_created_secs) {
  tbproto::HParamsPluginData data;
  auto *exp = data.mutable_experiment();
  exp->set_time_created_secs(time_created_secs ? *time_created_secs : now_seconds());
  auto list_of = [](const Config &c, const char *key) {
    std::vector<Config> out;
    if (c.has(key)) out = c.get_config_list(key);
    return out;
  };
  for (const Config &h : list_of(hparams_list, "hparams")) {
    ConfigReader r(h, "summary.hparams_config hparam");
    auto *info = exp->add_hparam_infos();
    info->set_name(r.get_string("name", ""));
    if (info->name().empty())
      fail(Code::kInvalidArgument, "summary.hparams_config: an hparam has no \"name\"; expected one");
    info->set_display_name(r.get_string("display_name", ""));
    info->set_description(r.get_string("description", ""));
    const std::string type = r.get_string("type", "");
    r.accept({"values", "min_value", "max_value"});
    r.finish();
    if (h.has("values")) {
      const auto &vals = h.json().at("values");
      if (!vals.is_array())
        fail(Code::kInvalidArgument, "summary.hparams_config: hparam '", info->name(),
             "' values is not a list; expected a list of numbers, bools or strings");
      auto *list = info->mutable_domain_discrete();
      bool all_num = true, all_bool = true, all_str = true;
      for (const auto &v : vals) {
        all_num = all_num && v.is_number();
        all_bool = all_bool && v.is_boolean();
        all_str = all_str && v.is_string();
      }
      // TensorBoard's hp.Discrete sorts its values (of one type; a mix stays as given).
      std::vector<Config::Json> sorted(vals.begin(), vals.end());
      if (all_num || all_bool || all_str) std::stable_sort(sorted.begin(), sorted.end());
      for (const auto &v : sorted)
        set_proto_value(list->add_values(), v, "a value of hparam '" + info->name() + "'");
      if (type.empty() && !vals.empty())
        info->set_type(all_num    ? tbproto::DATA_TYPE_FLOAT64
                       : all_bool ? tbproto::DATA_TYPE_BOOL
                       : all_str  ? tbproto::DATA_TYPE_STRING
                                  : tbproto::DATA_TYPE_UNSET);
    } else if (h.has("min_value") || h.has("max_value")) {
      auto *iv = info->mutable_domain_interval();
      iv->set_min_value(h.get_float("min_value"));
      iv->set_max_value(h.get_float("max_value"));
      if (type.empty()) info->set_type(tbproto::DATA_TYPE_FLOAT64);
    }
    if (type == "string")
      info->set_type(tbproto::DATA_TYPE_STRING);
    else if (type == "bool")
      info->set_type(tbproto::DATA_TYPE_BOOL);
    else if (type == "float64" || type == "float")
      info->set_type(tbproto::DATA_TYPE_FLOAT64);
    else if (!type.empty())
      fail(Code::kInvalidArgument, "summary.hparams_config: hparam '", info->name(), "' type '", type,
           "'; expected \"string\", \"bool\" or \"float64\"");
  }
  for (const Config &m : list_of(metrics, "metrics")) {
    ConfigReader r(m, "summary.hparams_config metric");
    auto *info = exp->add_metric_infos();
    info->mutable_name()->set_tag(r.get_string("tag", ""));
    if (info->name().tag().empty())
      fail(Code::kInvalidArgument, "summary.hparams_config: a metric has no \"tag\"; expected one");
    info->mutable_name()->set_group(r.get_string("group", ""));
    info->set_display_name(r.get_string("display_name", ""));
    info->set_description(r.get_string("description", ""));
    const std::string ds = r.get_string("dataset_type", "");
    r.finish();
    if (ds == "training")
      info->set_dataset_type(tbproto::DATASET_TRAINING);
    else if (ds == "validation")
      info->set_dataset_type(tbproto::DATASET_VALIDATION);
    else if (!ds.empty())
      fail(Code::kInvalidArgument, "summary.hparams_config: metric '", info->name().tag(), "' dataset_type '",
           ds, "'; expected \"training\" or \"validation\"");
  }
  WriterPtr w = target();
  if (!w) return false;
  return write_hparams(w, kExperimentTag, data);
}

// ---- trace ----

namespace {

using SteadyClock = std::chrono::steady_clock;

// A recorder that watches everything, so every op this thread runs reports itself; it keeps no
// gradient records, only the time each op took since the previous one ended.
class TraceRecorder final : public ops::Recorder {
 public:
  TraceRecorder() : list_(ops::thread_recorders()), last_(SteadyClock::now()) {
    ops::add_recorder(list_, this);
  }
  ~TraceRecorder() override { ops::remove_recorder(list_, this); }
  bool active() const override { return true; }
  bool watches(uint64_t) const override { return true; }
  bool on_variable_read(uint64_t, bool) override { return false; }
  void add(const std::shared_ptr<const ops::OpRecord> &record) override {
    const auto now = SteadyClock::now();
    const double us = std::chrono::duration<double, std::micro>(now - last_).count();
    last_ = now;
    std::string shape = "[]";
    if (!record->outputs.empty()) shape = record->outputs[0].shape.to_string();
    auto &row = rows_[{record->op ? record->op : "?", shape}];
    row.calls += 1;
    row.micros += us;
  }
  std::vector<TraceRow> rows() const {
    std::vector<TraceRow> out;
    for (const auto &[key, r] : rows_) out.push_back(TraceRow{key.first, key.second, r.calls, r.micros});
    std::stable_sort(out.begin(), out.end(),
                     [](const TraceRow &a, const TraceRow &b) { return a.micros > b.micros; });
    return out;
  }

 private:
  struct Acc {
    int64_t calls = 0;
    double micros = 0.0;
  };
  std::shared_ptr<ops::ThreadRecorders> list_;
  SteadyClock::time_point last_;
  std::map<std::pair<std::string, std::string>, Acc> rows_;
};

std::unique_ptr<TraceRecorder> &thread_trace() {
  thread_local std::unique_ptr<TraceRecorder> t;
  return t;
}

std::string format_micros(double us) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", us);
  return buf;
}

}  // namespace

void trace_on() {
  auto &t = thread_trace();
  t.reset();
  t = std::make_unique<TraceRecorder>();
}

void trace_off() { thread_trace().reset(); }

std::vector<TraceRow> trace_rows() {
  const auto &t = thread_trace();
  return t ? t->rows() : std::vector<TraceRow>{};
}

bool trace_export(const std::string &name, std::optional<int64_t> step) {
  require_tag(name, "summary.trace_export");
  auto &t = thread_trace();
  if (!t)
    fail(Code::kFailedPrecondition,
         "summary.trace_export: no trace is running on this thread; expected trace_on first");
  std::vector<TraceRow> rows = t->rows();
  t.reset();  // stop before writing, so the writing itself is not traced
  WriterPtr w = target();
  if (!w) return false;
  const int64_t s = resolve_step(step, "summary.trace_export");
  double total = 0.0;
  for (const auto &r : rows) total += r.micros;
  std::ostringstream md;
  md << "| op | output shape | calls | total µs | mean µs | share |\n|---|---|---:|---:|---:|---:|\n";
  for (const auto &r : rows) {
    char share[32];
    std::snprintf(share, sizeof share, "%.1f%%", total > 0 ? 100.0 * r.micros / total : 0.0);
    md << "| " << r.op << " | " << r.shape << " | " << r.calls << " | " << format_micros(r.micros) << " | "
       << format_micros(r.micros / static_cast<double>(r.calls)) << " | " << share << " |\n";
  }
  md << "\nTotal: " << format_micros(total) << " µs over " << rows.size() << " (op, shape) rows.\n";
  text(name, md.str(), s);
  // Per op name (all shapes together), one scalar each, so steps can be compared over time.
  std::map<std::string, double> per_op;
  for (const auto &r : rows) per_op[r.op] += r.micros;
  for (const auto &[op, us] : per_op)
    scalar(name + "/" + op, us, s, "microseconds in this op during the step");
  scalar(name + "/total", total, s, "microseconds of the traced step");
  return true;
}

}  // namespace kiln::summary
