// The Config view of an event file (to_config), for the C API and the bindings.
#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>

#include "event.pb.h"
#include "io/crc32c.h"
#include "io/event_reader.h"
#include "tb_plugins.pb.h"

namespace kiln::io::events {

namespace tbp = kiln::tbproto;
namespace tfp = kiln::tfproto;

const char *kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kScalar:
      return "scalar";
    case Value::Kind::kHistogram:
      return "histogram";
    case Value::Kind::kImage:
      return "image";
    case Value::Kind::kText:
      return "text";
    case Value::Kind::kHParams:
      return "hparams";
    case Value::Kind::kTensor:
      return "tensor";
    case Value::Kind::kAudio:
      return "audio";
    case Value::Kind::kOther:
      return "other";
  }
  return "other";
}

namespace {

bool parse_decimal(const std::string &s, int64_t *out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// s with every byte that does not start or continue a valid UTF-8 sequence replaced by U+FFFD
// (JSON text must be UTF-8; text summaries and blobs need not be).
std::string valid_utf8(const std::string &s) {
  std::string out;
  out.reserve(s.size());
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
               (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff))
      ok = false;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

Config::Json blob_list(const std::vector<std::string> &blobs, size_t from, const char *size_key) {
  Config::Json list = Config::Json::array();
  for (size_t i = from; i < blobs.size(); ++i) {
    Config::Json b = Config::Json::object();
    b[size_key] = static_cast<int64_t>(blobs[i].size());
    b["crc32c"] = static_cast<int64_t>(crc32c::value(blobs[i].data(), blobs[i].size()));
    list.push_back(std::move(b));
  }
  return list;
}

Config::Json value_json(const Value &v) {
  Config::Json j = Config::Json::object();
  j["tag"] = valid_utf8(v.tag);
  j["plugin"] = valid_utf8(v.plugin_name);
  j["kind"] = kind_name(v.kind);
  j["data_class"] = v.data_class;
  j["dtype"] = v.dtype;
  j["shape"] = v.shape;
  if (!v.display_name.empty() && v.display_name != v.tag) j["display_name"] = valid_utf8(v.display_name);
  if (!v.description.empty()) j["description"] = valid_utf8(v.description);
  if (v.legacy) j["legacy"] = true;
  switch (v.kind) {
    case Value::Kind::kScalar:
      j["scalar"] = v.scalar;
      break;
    case Value::Kind::kHistogram: {
      Config::Json rows = Config::Json::array();
      for (const auto &r : v.histogram) rows.push_back({r[0], r[1], r[2]});
      j["histogram"] = std::move(rows);
      break;
    }
    case Value::Kind::kImage: {
      int64_t w = 0, h = 0;
      if (image_size(v, &w, &h)) {
        j["width"] = w;
        j["height"] = h;
      }
      j["images"] = blob_list(v.strings, 2, "png_bytes");
      break;
    }
    case Value::Kind::kText: {
      Config::Json texts = Config::Json::array();
      for (const std::string &s : v.strings) texts.push_back(valid_utf8(s));
      j["text"] = std::move(texts);
      break;
    }
    case Value::Kind::kHParams: {
      tbp::HParamsPluginData data;
      std::string text;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      if (data.ParseFromString(v.plugin_content) &&
          google::protobuf::util::MessageToJsonString(data, &text, options).ok()) {
        // Keys sorted (through nlohmann::json, whose objects are sorted maps): protobuf prints a
        // map's entries in an order that differs from one parse to the next.
        const nlohmann::json sorted = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (!sorted.is_discarded())
          j["hparams"] =
              Config::Json::parse(sorted.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
      break;
    }
    case Value::Kind::kAudio:
      j["blobs"] = blob_list(v.strings, 0, "bytes");
      break;
    case Value::Kind::kTensor:
      if (v.dtype == tfp::DT_STRING)
        j["blobs"] = blob_list(v.strings, 0, "bytes");
      else if (!v.numbers.empty())
        j["numbers"] = v.numbers;
      break;
    case Value::Kind::kOther:
      break;
  }
  return j;
}

}  // namespace

bool image_size(const Value &value, int64_t *width, int64_t *height) {
  return value.strings.size() >= 2 && parse_decimal(value.strings[0], width) &&
         parse_decimal(value.strings[1], height);
}

Config to_config(const EventFile &file) {
  Config::Json root = Config::Json::object();
  root["path"] = valid_utf8(file.path);
  root["truncated"] = file.truncated;
  root["truncation_message"] = valid_utf8(file.truncation_message);
  Config::Json events = Config::Json::array();
  for (const Event &e : file.events) {
    Config::Json j = Config::Json::object();
    j["index"] = e.index;
    j["offset"] = e.offset;
    j["step"] = e.step;
    j["wall_time"] = e.wall_time;
    if (!e.file_version.empty()) j["file_version"] = e.file_version;
    if (!e.source_writer.empty()) j["writer"] = e.source_writer;
    if (e.has_graph_def) j["graph_def"] = true;
    if (e.session_log_status >= 0) j["session_log"] = e.session_log_status;
    Config::Json values = Config::Json::array();
    for (const Value &v : e.values) values.push_back(value_json(v));
    j["values"] = std::move(values);
    events.push_back(std::move(j));
  }
  root["events"] = std::move(events);
  return Config::from_value(std::move(root), "event file");
}

}  // namespace kiln::io::events
