// Reading TensorBoard event files (FORMATS.md §1): the TFRecord framing with both masked CRCs of
// every record checked, and each Event decoded into the view TensorBoard's loader builds
// (data_compat turns legacy simple_value/histo/image/audio values into tensors; dataclass_compat
// decides a tag's plugin from the first metadata the file gives it). kiln's own tests, the
// kiln-inspect tool and the C API read event files through this, whoever wrote them (TensorFlow,
// PyTorch's SummaryWriter, kiln).
//
// A record whose CRCs do not hold is DataLoss. A file that ends inside its last record is not an
// error: a writer may be appending it right now (TensorBoard tails live files the same way), so
// the reader stops there and says so (truncated()).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"

namespace kiln::io::events {

// The TFRecord records of one file (or of bytes in memory), in order. Not thread-safe.
class RecordReader {
 public:
  // No record is longer: every record of an event file is one protobuf message, and protobuf
  // refuses messages of 2 GiB or more. A longer length whose CRC holds is DataLoss.
  static constexpr uint64_t kMaxRecordBytes = std::numeric_limits<int32_t>::max();

  // Opens path: NotFound when it does not exist, InvalidArgument for a directory. Only the size
  // the file has now is read (bytes appended later are not).
  explicit RecordReader(const std::string &path);
  // Reads bytes the caller keeps alive for the reader's lifetime; `name` stands for the file in
  // messages.
  RecordReader(std::string_view bytes, std::string name);
  ~RecordReader();
  RecordReader(const RecordReader &) = delete;
  RecordReader &operator=(const RecordReader &) = delete;

  // The next record's payload into *payload and true; false at the end of the data, or when the
  // data ends inside the last record (truncated() is then true). A record whose length CRC or
  // payload CRC does not match is DataLoss naming the file, the record's index and byte offset
  // and which CRC failed.
  bool next(std::string *payload);

  const std::string &name() const { return name_; }
  // The record next() returned last: its index (from 0) and byte offset.
  int64_t index() const { return count_ - 1; }
  uint64_t offset() const { return record_offset_; }
  // Records returned so far.
  int64_t count() const { return count_; }
  // Whether the data ends inside a record, and a message naming its offset and the bytes missing.
  bool truncated() const { return truncated_; }
  const std::string &truncation_message() const { return truncation_message_; }
  uint64_t missing_bytes() const { return missing_bytes_; }

 private:
  // Up to n bytes at the current position into dst; fewer only at the end of the data.
  size_t read(char *dst, size_t n);
  void set_truncated(uint64_t offset, uint64_t have, uint64_t need, const char *where);

  std::string name_;
  std::FILE *file_ = nullptr;  // null when reading memory
  std::string_view bytes_;
  uint64_t size_ = 0, pos_ = 0;
  uint64_t record_offset_ = 0;
  int64_t count_ = 0;
  bool truncated_ = false, done_ = false;
  std::string truncation_message_;
  uint64_t missing_bytes_ = 0;
};

// One Summary.Value as TensorBoard sees it after its migrations.
struct Value {
  enum class Kind { kScalar, kHistogram, kImage, kText, kHParams, kTensor, kAudio, kOther };

  std::string tag;
  // The tag's metadata: the first a value of this tag carried in the file (TensorBoard ignores
  // later copies; some writers put it on the first event only). Legacy values get the metadata
  // TensorBoard makes for them (display_name defaults to the tag).
  std::string plugin_name, plugin_content;
  std::string display_name, description;
  // The metadata's data_class, or the one TensorBoard infers from plugin_name when it is
  // unset (1 scalar, 2 tensor, 3 blob sequence; 0 for unknown plugins).
  int data_class = 0;
  // From plugin_name (scalars, histograms, images, text, hparams, audio); a value the plugin
  // could not read (a scalar tensor of two elements, a histogram not [k, 3]) is kTensor, as is
  // any other plugin's tensor; kOther is a value with no tensor at all.
  Kind kind = Kind::kOther;
  double scalar = std::numeric_limits<double>::quiet_NaN();  // kScalar
  std::vector<std::array<double, 3>> histogram;              // kHistogram: rows (left, right, count)
  // String tensors (DT_STRING): the string_val entries. kImage: [width, height, png...] as ASCII
  // decimal then encoded images; kText: the text; kAudio: the clips (and labels for [k, 2]).
  std::vector<std::string> strings;
  // Numeric kTensor values, row-major (as TensorBoard's make_ndarray reads them); empty when the
  // tensor does not decode (wrong content size, complex dtypes, over 2^20 broadcast elements).
  std::vector<double> numbers;
  std::vector<int64_t> shape;
  bool legacy = false;  // came from simple_value, histo, image or audio
  int dtype = 0;        // the tensor's DataType number (FORMATS.md §1.4); 0 for kOther
};

struct Event {
  int64_t index = 0;    // the record's index in the file
  uint64_t offset = 0;  // its byte offset
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;   // "brain.Event:2" on a writer's first record
  std::string source_writer;  // source_metadata.writer ("" when absent)
  bool has_summary = false;
  // The summary's values after TensorBoard's migrations. A graph_def event also gets a value
  // "__run_graph__" (plugin "graphs") and a tagged_run_metadata event a value of its tag
  // (plugin "graph_tagged_run_metadata"), holding those bytes, as TensorBoard's dataclass_compat.
  std::vector<Value> values;
  bool has_graph_def = false;
  int session_log_status = -1;  // SessionLog.status (1 START, 2 STOP, 3 CHECKPOINT); -1 none
};

struct EventFile {
  std::string path;
  std::vector<Event> events;  // one per record
  bool truncated = false;     // the file ends inside its last record (not an error)
  std::string truncation_message;
};

// Every record of the file, decoded. NotFound for a missing file; DataLoss for a record whose
// CRCs do not hold, or whose payload is not an Event.
EventFile read_event_file(const std::string &path);
// The same over bytes in memory; `name` is the EventFile's path and names the file in messages.
EventFile parse_event_bytes(std::string_view bytes, const std::string &name);

// The runs under logdir as TensorBoard finds them: every directory (logdir itself is ".") that
// holds a file whose name contains "tfevents", named by its path relative to logdir, with those
// files' paths (logdir joined with the relative path) sorted. NotFound when logdir does not exist,
// InvalidArgument when it is not a directory.
std::map<std::string, std::vector<std::string>> find_runs(const std::string &logdir);

// "scalar", "histogram", "image", "text", "hparams", "tensor", "audio", "other".
const char *kind_name(Value::Kind kind);
// An image value's width and height (strings[0] and [1]); false when they are not decimals.
bool image_size(const Value &value, int64_t *width, int64_t *height);

// The file as a Config, for the C API and the bindings:
//   {"path", "truncated", "truncation_message", "events": [{"index", "offset", "step",
//    "wall_time", "file_version"?, "writer"?, "graph_def"?, "session_log"?, "values": [{"tag",
//    "plugin", "kind", "data_class", "dtype", "shape", "display_name"? (when not the tag),
//    "description"?, "legacy"?, and by kind: "scalar"; "histogram" [[left, right, count]...];
//    "width", "height", "images" [{"png_bytes", "crc32c"}]; "text" [strings]; "hparams" (the
//    HParamsPluginData as JSON, proto field names); "blobs" [{"bytes", "crc32c"}] for audio
//    and string tensors; "numbers" for numeric tensors}]}]}
// Strings that are not UTF-8 have their bad bytes replaced by U+FFFD; crc32c is unmasked.
Config to_config(const EventFile &file);

}  // namespace kiln::io::events
