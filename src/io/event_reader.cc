// Event files: the TFRecord framing, the decoding of each Event as TensorBoard's data_compat and
// dataclass_compat see it, and the runs of a logdir. Numeric tensors: event_tensor.cc; the Config
// view: event_config.cc.
#include "io/event_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "event.pb.h"
#include "io/crc32c.h"
#include "io/event_tensor.h"
#include "io/file_util.h"
#include "io/record.h"
#include "tb_plugins.pb.h"

namespace kiln::io::events {

namespace tbp = kiln::tbproto;
namespace tfp = kiln::tfproto;

// ---------------------------------------------------------------- records

namespace {

uint64_t get_u64(const char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t get_u32(const char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

RecordReader::RecordReader(const std::string &path) : name_(path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) fail(Code::kNotFound, "event file '", path, "' does not exist");
    fail(Code::kInternal, "cannot examine event file '", path, "': ", std::strerror(err));
  }
  if (S_ISDIR(st.st_mode))
    fail(Code::kInvalidArgument, "'", path,
         "' is a directory; expected an event file (a logdir's runs: find_runs)");
  if (!S_ISREG(st.st_mode))  // a FIFO would block, a device such as /dev/zero read as empty
    fail(Code::kInvalidArgument, "'", path, "' is not a regular file; expected an event file");
  file_ = std::fopen(path.c_str(), "rbe");
  if (file_ == nullptr) {
    const int err = errno;
    fail(err == ENOENT ? Code::kNotFound : Code::kFailedPrecondition, "cannot open event file '", path,
         "': ", std::strerror(err));
  }
  struct stat opened;
  if (::fstat(::fileno(file_), &opened) != 0 || opened.st_size < 0) {
    const int err = errno;
    std::fclose(file_);
    file_ = nullptr;
    fail(Code::kInternal, "cannot examine event file '", path, "': ", std::strerror(err));
  }
  size_ = static_cast<uint64_t>(opened.st_size);
}

RecordReader::RecordReader(std::string_view bytes, std::string name)
    : name_(std::move(name)), bytes_(bytes), size_(bytes.size()) {}

RecordReader::~RecordReader() {
  if (file_ != nullptr) std::fclose(file_);
}

size_t RecordReader::read(char *dst, size_t n) {
  const uint64_t left = size_ - pos_;
  if (n > left) n = static_cast<size_t>(left);
  size_t got = 0;
  if (file_ == nullptr) {
    if (n > 0) std::memcpy(dst, bytes_.data() + pos_, n);
    got = n;
  } else {
    got = std::fread(dst, 1, n, file_);
    if (got < n && std::ferror(file_))
      fail(Code::kInternal, "event file '", name_, "': read error at byte offset ", pos_ + got, ": ",
           std::strerror(errno));
  }
  pos_ += got;
  return got;
}

void RecordReader::set_truncated(uint64_t offset, uint64_t have, uint64_t need, const char *where) {
  truncated_ = true;
  done_ = true;
  missing_bytes_ = need - have;
  // Inside the header the payload's length is unknown: what is missing is at least the rest of
  // the header and the footer.
  const bool in_header = std::strcmp(where, "header") == 0;
  truncation_message_ =
      str_cat("event file '", name_, "': record ", count_, " at byte offset ", offset,
              " is cut short: the file ends ", have, " bytes into it, inside its ", where, "; ",
              in_header ? "at least " : "", missing_bytes_, " more byte",
              missing_bytes_ == 1 ? " is" : "s are", " missing (a writer may still be appending it)");
}

bool RecordReader::next(std::string *payload) {
  if (done_) return false;
  const uint64_t start = pos_;
  char header[record::kHeaderBytes];
  const size_t got = read(header, sizeof header);
  if (got == 0) {
    done_ = true;
    return false;
  }
  if (got < sizeof header) {
    set_truncated(start, got, record::kHeaderBytes + record::kFooterBytes, "header");
    return false;
  }
  const uint32_t stored_length_crc = get_u32(header + 8);
  const uint32_t length_crc = crc32c::value(header, 8);
  if (crc32c::unmask(stored_length_crc) != length_crc)
    fail(Code::kDataLoss, "event file '", name_, "': record ", count_, " at byte offset ", start,
         ": the length CRC does not match (stored ", hex32(stored_length_crc), ", expected ",
         hex32(crc32c::mask(length_crc)), " for length bytes giving ", get_u64(header),
         "); the file is corrupt");
  const uint64_t length = get_u64(header);
  if (length > kMaxRecordBytes)
    fail(Code::kDataLoss, "event file '", name_, "': record ", count_, " at byte offset ", start, ": length ",
         length, " is over ", kMaxRecordBytes, " bytes, the most a record of an event file can hold");
  const uint64_t total = record::kHeaderBytes + length + record::kFooterBytes;
  const uint64_t left = size_ - pos_;
  if (left < length + record::kFooterBytes) {
    set_truncated(start, record::kHeaderBytes + left, total,
                  left < length ? "payload" : "footer (payload CRC)");
    return false;
  }
  payload->resize(static_cast<size_t>(length));
  char footer[record::kFooterBytes];
  const size_t body = read(payload->data(), payload->size());
  const size_t tail = body == payload->size() ? read(footer, sizeof footer) : 0;
  if (body < payload->size() || tail < sizeof footer) {  // the file shrank while we read it
    set_truncated(start, record::kHeaderBytes + body + tail, total, "payload");
    return false;
  }
  const uint32_t stored_crc = get_u32(footer);
  const uint32_t crc = crc32c::value(payload->data(), payload->size());
  if (crc32c::unmask(stored_crc) != crc)
    fail(Code::kDataLoss, "event file '", name_, "': record ", count_, " at byte offset ", start, " (",
         length, " payload bytes): the payload CRC does not match (stored ", hex32(stored_crc), ", expected ",
         hex32(crc32c::mask(crc)), "); the file is corrupt");
  record_offset_ = start;
  ++count_;
  return true;
}

// ---------------------------------------------------------------- decoding

namespace {

// A tag's metadata as TensorBoard keeps it: the first seen in the file.
struct TagMetadata {
  std::string plugin_name, content, display_name, description;
  int data_class = 0;
};

// dataclass_compat's rule for metadata without a data_class.
int infer_data_class(const std::string &plugin) {
  if (plugin == "scalars") return tbp::DATA_CLASS_SCALAR;
  if (plugin == "histograms" || plugin == "text" || plugin == "hparams" || plugin == "pr_curves" ||
      plugin == "mesh" || plugin == "custom_scalars")
    return tbp::DATA_CLASS_TENSOR;
  if (plugin == "images" || plugin == "audio" || plugin == "graph_run_metadata" ||
      plugin == "graph_run_metadata_graph" || plugin == "graph_keras_model")
    return tbp::DATA_CLASS_BLOB_SEQUENCE;
  return tbp::DATA_CLASS_UNKNOWN;
}

TagMetadata metadata_of(const tbp::SummaryMetadata &m) {
  TagMetadata t;
  t.plugin_name = m.plugin_data().plugin_name();
  t.content = m.plugin_data().content();
  t.display_name = m.display_name();
  t.description = m.summary_description();
  t.data_class = m.data_class() != tbp::DATA_CLASS_UNKNOWN ? m.data_class() : infer_data_class(t.plugin_name);
  return t;
}

void set_shape(tbp::TensorProto *t, std::initializer_list<int64_t> dims) {
  auto *shape = t->mutable_tensor_shape();
  for (int64_t d : dims) shape->add_dim()->set_size(d);
}

// data_compat.migrate_value: a legacy value as the tensor and metadata TensorBoard makes of it.
// False when the value is not one of the legacy kinds.
bool migrate_legacy(const tbp::Summary::Value &v, tbp::TensorProto *tensor, TagMetadata *meta) {
  meta->display_name = v.metadata().display_name().empty() ? v.tag() : v.metadata().display_name();
  meta->description = v.metadata().summary_description();
  switch (v.value_case()) {
    case tbp::Summary::Value::kSimpleValue:
      meta->plugin_name = "scalars";
      tensor->set_dtype(tfp::DT_FLOAT);
      tensor->mutable_tensor_shape();
      tensor->add_float_val(v.simple_value());
      break;
    case tbp::Summary::Value::kHisto: {
      // Empty buckets at both ends dropped; min and max become the outer edges (the legacy ones
      // are +-DBL_MAX); all empty gives [0, 3]. Rows are float32, as TensorBoard makes them.
      const tbp::HistogramProto &h = v.histo();
      const int n = h.bucket_size();
      int start = 0, end = n - 1;
      while (start < n && !(h.bucket(start) > 0)) ++start;
      while (end >= 0 && !(h.bucket(end) > 0)) --end;
      meta->plugin_name = "histograms";
      tensor->set_dtype(tfp::DT_FLOAT);
      if (start > end) {
        set_shape(tensor, {0, 3});
        break;
      }
      set_shape(tensor, {end - start + 1, 3});
      // bucket_limit may be shorter than bucket in a malformed proto: NumPy's slice would then
      // give ragged columns and fail; kiln treats a missing limit the same way (no rows).
      if (h.bucket_limit_size() < end) {
        tensor->clear_tensor_shape();
        set_shape(tensor, {0, 3});
        break;
      }
      for (int i = start; i <= end; ++i) {
        const double left = i == start ? h.min() : h.bucket_limit(i - 1);
        const double right = i == end ? h.max() : h.bucket_limit(i);
        tensor->add_float_val(static_cast<float>(left));
        tensor->add_float_val(static_cast<float>(right));
        tensor->add_float_val(static_cast<float>(h.bucket(i)));
      }
      break;
    }
    case tbp::Summary::Value::kImage: {
      meta->plugin_name = "images";
      tbp::ImagePluginData content;
      content.set_converted_to_tensor(true);
      meta->content = content.SerializeAsString();
      tensor->set_dtype(tfp::DT_STRING);
      set_shape(tensor, {3});
      tensor->add_string_val(std::to_string(v.image().width()));
      tensor->add_string_val(std::to_string(v.image().height()));
      tensor->add_string_val(v.image().encoded_image_string());
      break;
    }
    case tbp::Summary::Value::kAudio:
      meta->plugin_name = "audio";
      // AudioPluginData{encoding: WAV (11), converted_to_tensor: true}, hand-encoded: kiln has no
      // use for the audio plugin's proto otherwise.
      meta->content = std::string("\x10\x0b\x18\x01", 4);
      tensor->set_dtype(tfp::DT_STRING);
      set_shape(tensor, {1, 2});
      tensor->add_string_val(v.audio().encoded_audio_string());
      tensor->add_string_val("");
      break;
    default:
      return false;
  }
  meta->data_class = infer_data_class(meta->plugin_name);
  return true;
}

// A tensor value's fields and kind, as the tag's plugin reads it.
void decode_tensor(const tbp::TensorProto &t, Value *out) {
  out->dtype = t.dtype();
  for (const auto &d : t.tensor_shape().dim()) out->shape.push_back(d.size());
  const int64_t elements = element_count(out->shape);
  const std::string &plugin = out->plugin_name;
  if (t.dtype() == tfp::DT_STRING) {
    out->strings.assign(t.string_val().begin(), t.string_val().end());
    if (plugin == "images") {
      out->kind = Value::Kind::kImage;
    } else if (plugin == "text") {
      out->kind = Value::Kind::kText;
    } else if (plugin == "audio") {
      out->kind = Value::Kind::kAudio;
    } else if (plugin == "hparams") {
      out->kind = Value::Kind::kHParams;
    } else {
      out->kind = Value::Kind::kTensor;
    }
    return;
  }
  std::vector<double> numbers;
  const bool ok = decode_numbers(t, elements, &numbers);
  if (plugin == "hparams") {
    out->kind = Value::Kind::kHParams;  // the data is in the metadata; the tensor is a placeholder
  } else if (plugin == "scalars" && ok && numbers.size() == 1) {
    out->kind = Value::Kind::kScalar;
    out->scalar = numbers[0];
  } else if (plugin == "histograms" && ok && out->shape.size() == 2 && out->shape[1] == 3) {
    out->kind = Value::Kind::kHistogram;
    out->histogram.resize(numbers.size() / 3);
    for (size_t i = 0; i < out->histogram.size(); ++i)
      out->histogram[i] = {numbers[3 * i], numbers[3 * i + 1], numbers[3 * i + 2]};
  } else {
    out->kind = Value::Kind::kTensor;
    out->numbers = std::move(numbers);
  }
}

// Decodes the events of one file in order: a tag's metadata comes from its first value that has
// some, so the decoder keeps the tags it has seen.
class Decoder {
 public:
  Event decode(const tbp::Event &e, int64_t index, uint64_t offset) {
    Event out;
    out.index = index;
    out.offset = offset;
    out.wall_time = e.wall_time();
    out.step = e.step();
    out.source_writer = e.source_metadata().writer();
    switch (e.what_case()) {
      case tbp::Event::kFileVersion:
        out.file_version = e.file_version();
        break;
      case tbp::Event::kSummary:
        out.has_summary = true;
        for (const auto &v : e.summary().value()) out.values.push_back(decode_value(v));
        break;
      case tbp::Event::kGraphDef:
        out.has_graph_def = true;
        out.values.push_back(blob_value("__run_graph__", "graphs", e.graph_def()));
        break;
      case tbp::Event::kTaggedRunMetadata:
        out.values.push_back(blob_value(e.tagged_run_metadata().tag(), "graph_tagged_run_metadata",
                                        e.tagged_run_metadata().run_metadata()));
        break;
      case tbp::Event::kSessionLog:
        out.session_log_status = e.session_log().status();
        break;
      default:
        break;
    }
    return out;
  }

 private:
  static Value blob_value(const std::string &tag, const char *plugin, const std::string &bytes) {
    Value v;
    v.tag = tag;
    v.plugin_name = plugin;
    v.display_name = tag;
    v.data_class = tbp::DATA_CLASS_BLOB_SEQUENCE;
    v.kind = Value::Kind::kTensor;
    v.dtype = tfp::DT_STRING;
    v.shape = {1};
    v.strings = {bytes};
    return v;
  }

  Value decode_value(const tbp::Summary::Value &v) {
    Value out;
    out.tag = v.tag();
    tbp::TensorProto migrated;
    TagMetadata own;
    bool has_metadata = v.has_metadata();
    if (migrate_legacy(v, &migrated, &own)) {
      out.legacy = true;
      has_metadata = true;
    } else if (has_metadata) {
      own = metadata_of(v.metadata());
    }
    auto it = tags_.find(v.tag());
    if (it == tags_.end() && has_metadata) it = tags_.emplace(v.tag(), own).first;
    if (it != tags_.end()) {
      const TagMetadata &m = it->second;
      out.plugin_name = m.plugin_name;
      out.plugin_content = m.content;
      out.display_name = m.display_name;
      out.description = m.description;
      out.data_class = m.data_class;
    }
    if (out.legacy) {
      decode_tensor(migrated, &out);
    } else if (v.value_case() == tbp::Summary::Value::kTensor) {
      decode_tensor(v.tensor(), &out);
    } else if (out.plugin_name == "hparams") {
      out.kind = Value::Kind::kHParams;  // dataclass_compat supplies the null tensor
    } else {
      out.kind = Value::Kind::kOther;
    }
    return out;
  }

  std::unordered_map<std::string, TagMetadata> tags_;
};

EventFile decode_all(RecordReader &reader, const std::string &path) {
  EventFile file;
  file.path = path;
  Decoder decoder;
  std::string payload;
  tbp::Event event;
  while (reader.next(&payload)) {
    if (!event.ParseFromString(payload))
      fail(Code::kDataLoss, "event file '", path, "': record ", reader.index(), " at byte offset ",
           reader.offset(), " (", payload.size(), " bytes) has valid CRCs but is not an Event protobuf");
    file.events.push_back(decoder.decode(event, reader.index(), reader.offset()));
  }
  file.truncated = reader.truncated();
  file.truncation_message = reader.truncation_message();
  return file;
}

}  // namespace

EventFile read_event_file(const std::string &path) {
  RecordReader reader(path);
  return decode_all(reader, path);
}

EventFile parse_event_bytes(std::string_view bytes, const std::string &name) {
  RecordReader reader(bytes, name);
  return decode_all(reader, name);
}

// ---------------------------------------------------------------- runs

std::map<std::string, std::vector<std::string>> find_runs(const std::string &logdir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(logdir, ec);
  if (!fs::exists(st)) fail(Code::kNotFound, "logdir '", logdir, "' does not exist");
  if (!fs::is_directory(st)) fail(Code::kInvalidArgument, "logdir '", logdir, "' is not a directory");
  std::map<std::string, std::vector<std::string>> runs;
  const fs::path root(logdir);
  // Symlinked directories are not followed (os.walk's default, which TensorBoard's listing uses),
  // so a link cycle cannot loop.
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) fail(Code::kFailedPrecondition, "cannot list logdir '", logdir, "': ", ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail(Code::kInternal, "cannot list logdir '", logdir, "': ", ec.message());
    const fs::path &p = it->path();
    if (p.filename().string().find("tfevents") == std::string::npos) continue;
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const fs::path rel = p.parent_path().lexically_relative(root);
    std::string run = rel.empty() ? "." : rel.generic_string();
    runs[run].push_back(join_path(logdir, p.lexically_relative(root).generic_string()));
  }
  if (ec) fail(Code::kInternal, "cannot list logdir '", logdir, "': ", ec.message());
  for (auto &r : runs) std::sort(r.second.begin(), r.second.end());
  return runs;
}

}  // namespace kiln::io::events
