// kiln-inspect events PATH [--values]: what a TensorBoard event file (or every run of a logdir)
// holds, as TensorBoard would load it, read through kiln.hpp's summary::read_events (every
// record's CRCs verified; legacy values converted as TensorBoard's data_compat does).
//
// Per run and file: the records, file_version, writer and whether the last record is cut short;
// per tag: plugin and kind, the number of values, the step range and the last value (scalars),
// the buckets (histograms) or the image size (images). --values lists every value.
#include "inspect_events.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "inspect_common.h"
#include "kiln/kiln.hpp"

namespace kiln_inspect {
namespace {

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.8g", v);
  return buf;
}

// 1234567 -> "1,234,567".
std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n), s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string dims(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A string for one line: control characters escaped, at most `max` bytes.
std::string one_line(const std::string &s, size_t max = 60) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

// The [[left, right, count], ...] rows of a histogram value. kiln_config has no getter for a list
// of lists, so they are read from the value's JSON (numbers only, NaN and Infinity included).
std::vector<double> histogram_numbers(const kiln::Config &value) {
  const std::string json = value.to_json();
  std::vector<double> out;
  // A quote inside a string is escaped, so `,"histogram":[` is the key itself.
  size_t pos = json.find(",\"histogram\":[");
  if (pos == std::string::npos) return out;
  pos += 13;
  int depth = 0;
  while (pos < json.size()) {
    const char c = json[pos];
    if (c == '[') {
      ++depth;
      ++pos;
    } else if (c == ']') {
      if (--depth == 0) break;
      ++pos;
    } else if (c == ',' || c == ' ') {
      ++pos;
    } else {
      char *end = nullptr;
      const double v = std::strtod(json.c_str() + pos, &end);
      if (end == json.c_str() + pos) break;
      out.push_back(v);
      pos = static_cast<size_t>(end - json.c_str());
    }
  }
  return out;
}

// TensorFlow's DataType numbers (FORMATS.md §1.4) as NumPy-style names.
std::string dtype_name(int64_t dtype) {
  static const std::map<int64_t, const char *> kNames = {
      {1, "float32"},     {2, "float64"},   {3, "int32"},   {4, "uint8"},  {5, "int16"},     {6, "int8"},
      {7, "string"},      {8, "complex64"}, {9, "int64"},   {10, "bool"},  {14, "bfloat16"}, {17, "uint16"},
      {18, "complex128"}, {19, "float16"},  {22, "uint32"}, {23, "uint64"}};
  const auto it = kNames.find(dtype);
  return it != kNames.end() ? it->second : "dtype " + std::to_string(dtype);
}

// What one value holds, in a few words.
std::string describe(const kiln::Config &v) {
  const std::string kind = v.get_string("kind");
  if (kind == "scalar") return number(v.get_float("scalar"));
  if (kind == "histogram") {
    const std::vector<double> n = histogram_numbers(v);
    const size_t rows = n.size() / 3;
    if (rows == 0) return "0 buckets (empty)";
    double total = 0;
    for (size_t i = 0; i < rows; ++i) total += n[3 * i + 2];
    return std::to_string(rows) + " bucket" + (rows == 1 ? "" : "s") + " [" + number(n[0]) + ", " +
           number(n[3 * rows - 2]) + "], count " + number(total);
  }
  if (kind == "image") {
    std::string s = v.has("width")
                        ? std::to_string(v.get_int("width")) + "x" + std::to_string(v.get_int("height"))
                        : std::string("(no size)");
    const std::vector<kiln::Config> images = v.get_config_list("images");
    uint64_t bytes = 0;
    for (const kiln::Config &im : images) bytes += static_cast<uint64_t>(im.get_int("png_bytes"));
    return s + ", " + std::to_string(images.size()) + " image" + (images.size() == 1 ? "" : "s") + " (" +
           grouped(bytes) + " bytes)";
  }
  if (kind == "text") {
    const std::vector<std::string> texts = v.get_string_list("text");
    if (texts.empty()) return "(no text)";
    return "\"" + one_line(texts[0]) + "\"" +
           (texts.size() > 1 ? " +" + std::to_string(texts.size() - 1) : "");
  }
  if (kind == "hparams") {
    if (!v.has("hparams")) return "hparams (unreadable plugin data)";
    const std::vector<std::string> keys = v.get_config("hparams").keys();
    std::string s;
    for (const std::string &k : keys)
      if (k != "version") s += (s.empty() ? "" : ", ") + k;
    return s.empty() ? "hparams" : s;
  }
  std::string s = dtype_name(v.get_int("dtype")) + " " + dims(v.get_int_list("shape"));
  if (v.has("blobs")) {
    const std::vector<kiln::Config> blobs = v.get_config_list("blobs");
    uint64_t bytes = 0;
    for (const kiln::Config &b : blobs) bytes += static_cast<uint64_t>(b.get_int("bytes"));
    s += ", " + std::to_string(blobs.size()) + " blob" + (blobs.size() == 1 ? "" : "s") + " (" +
         grouped(bytes) + " bytes)";
  } else if (v.has("numbers")) {
    const std::vector<double> n = v.get_float_list("numbers");
    s += n.size() == 1 ? ", " + number(n[0]) : ", " + std::to_string(n.size()) + " numbers";
  }
  return s;
}

// The per-tag line's last column: the last scalar, the bucket count, the image size.
std::string tag_summary(const kiln::Config &last) {
  const std::string kind = last.get_string("kind");
  if (kind == "scalar") return "last " + number(last.get_float("scalar"));
  if (kind == "histogram") {
    size_t rows = histogram_numbers(last).size() / 3;
    return std::to_string(rows) + " buckets";
  }
  return describe(last);
}

struct Tag {
  std::string kind, plugin;
  int64_t count = 0, min_step = 0, max_step = 0;
  kiln::Config last;
};

// One file, named as `shown`: returns false when it could not be read (the error is printed).
bool inspect_file(const std::string &path, const std::string &shown, bool values, const char *indent) {
  kiln::Config f;
  try {
    f = kiln::summary::read_events(path);
  } catch (const kiln::Error &e) {
    std::printf("%s%s: unreadable (%s)\n", indent, shown.c_str(), code_name(e.code()));
    std::fprintf(stderr, "kiln-inspect: %s: %s\n", code_name(e.code()), e.what());
    return false;
  }
  const std::vector<kiln::Config> events = f.get_config_list("events");
  std::string version = "(none)", writer = "(none)";
  for (const kiln::Config &e : events) {
    if (version == "(none)" && e.has("file_version")) version = e.get_string("file_version");
    if (writer == "(none)" && e.has("writer")) writer = e.get_string("writer");
  }
  const bool truncated = f.get_bool("truncated");
  std::printf("%s%s: %s record%s, file_version %s, writer %s%s\n", indent, shown.c_str(),
              grouped(events.size()).c_str(), events.size() == 1 ? "" : "s", version.c_str(), writer.c_str(),
              truncated ? ", last record truncated" : "");
  if (truncated)
    std::fprintf(stderr, "kiln-inspect: warning: %s\n", f.get_string("truncation_message").c_str());

  std::map<std::string, Tag> tags;
  size_t width = 3, plugin_width = 6;
  for (const kiln::Config &e : events) {
    const int64_t step = e.get_int("step");
    for (kiln::Config &v : e.get_config_list("values")) {
      const std::string tag = v.get_string("tag");
      auto it = tags.find(tag);
      if (it == tags.end()) {
        it = tags.emplace(tag, Tag()).first;
        it->second.kind = v.get_string("kind");
        it->second.plugin = v.get_string("plugin");
        it->second.min_step = it->second.max_step = step;
        width = std::max(width, tag.size());
        plugin_width = std::max(plugin_width, it->second.plugin.size());
      }
      Tag &t = it->second;
      ++t.count;
      t.min_step = std::min(t.min_step, step);
      t.max_step = std::max(t.max_step, step);
      t.last = std::move(v);
    }
  }
  if (tags.empty()) {
    std::printf("%s  (no values)\n", indent);
  } else {
    const int w = static_cast<int>(width), pw = static_cast<int>(plugin_width);
    std::printf("%s  %-*s  %-9s  %-*s  %7s  %-15s  %s\n", indent, w, "tag", "kind", pw, "plugin", "count",
                "steps", "value");
    for (const auto &kv : tags) {
      const Tag &t = kv.second;
      const std::string steps = t.min_step == t.max_step
                                    ? std::to_string(t.min_step)
                                    : std::to_string(t.min_step) + ".." + std::to_string(t.max_step);
      std::printf("%s  %-*s  %-9s  %-*s  %7s  %-15s  %s\n", indent, w, kv.first.c_str(), t.kind.c_str(), pw,
                  t.plugin.empty() ? "-" : t.plugin.c_str(), grouped(static_cast<uint64_t>(t.count)).c_str(),
                  steps.c_str(), tag_summary(t.last).c_str());
    }
  }
  if (values) {
    std::printf("%s  values:\n%s  %-8s  %-20s  %-*s  %s\n", indent, indent, "step", "wall_time",
                static_cast<int>(width), "tag", "value");
    for (const kiln::Config &e : events) {
      const int64_t step = e.get_int("step");
      char wall[40];
      std::snprintf(wall, sizeof wall, "%.6f", e.get_float("wall_time"));
      for (const kiln::Config &v : e.get_config_list("values"))
        std::printf("%s  %-8" PRId64 "  %-20s  %-*s  %s\n", indent, step, wall, static_cast<int>(width),
                    v.get_string("tag").c_str(), describe(v).c_str());
      if (e.has("session_log"))
        std::printf("%s  %-8" PRId64 "  %-20s  session_log status %" PRId64 "\n", indent, step, wall,
                    e.get_int("session_log"));
    }
  }
  return true;
}

// TensorBoard's runs: every directory under logdir (logdir itself is ".") with files whose name
// contains "tfevents", those files sorted by path. Symlinked directories are not followed.
std::map<std::string, std::vector<std::string>> find_runs(const std::string &logdir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::vector<std::string>> runs;
  const fs::path root(logdir);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().find("tfevents") == std::string::npos) continue;
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const fs::path rel = it->path().parent_path().lexically_relative(root);
    runs[rel.empty() ? "." : rel.generic_string()].push_back(it->path().string());
  }
  for (auto &r : runs) std::sort(r.second.begin(), r.second.end());
  return runs;
}

}  // namespace

int run_events(const std::vector<std::string> &args) {
  std::string path;
  bool values = false;
  for (const std::string &a : args) {
    if (a == "--values") {
      values = true;
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("events: unknown option '" + a + "'");
    } else if (!path.empty()) {
      return usage_error("events: one file or logdir at a time; got '" + path + "' and '" + a + "'");
    } else {
      path = a;
    }
  }
  if (path.empty()) return usage_error("events: which event file or logdir?");
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec))
    return inspect_file(path, path, values, "") ? kExitOk : kExitError;

  const auto runs = find_runs(path);
  if (runs.empty()) {
    std::fprintf(stderr, "kiln-inspect: not found: no event files (names containing 'tfevents') under '%s'\n",
                 path.c_str());
    return kExitError;
  }
  size_t files = 0;
  for (const auto &r : runs) files += r.second.size();
  std::printf("logdir %s: %zu run%s, %zu event file%s\n", path.c_str(), runs.size(),
              runs.size() == 1 ? "" : "s", files, files == 1 ? "" : "s");
  bool ok = true;
  for (const auto &r : runs) {
    std::printf("\nrun %s\n", r.first.c_str());
    for (const std::string &file : r.second)
      ok = inspect_file(file, std::filesystem::path(file).filename().string(), values, "  ") && ok;
  }
  return ok ? kExitOk : kExitError;
}

}  // namespace kiln_inspect
