// kiln-inspect: looks inside the files kiln and TensorFlow write, from the command line, through
// kiln.hpp only (the public C API underneath), so it reads exactly what a user's program would.
//
//   kiln-inspect ckpt PREFIX|DIR [--tensor NAME] [--no-verify]
//   kiln-inspect savedmodel DIR
//   kiln-inspect events FILE|LOGDIR [--values]     (inspect_events.cc)
//
// Each file kind is one subcommand in kCommands below.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "inspect_common.h"
#include "inspect_events.h"
#include "kiln/kiln.hpp"

namespace {

using kiln_inspect::code_name;
using kiln_inspect::kExitError;
using kiln_inspect::kExitOk;
using kiln_inspect::kExitUsage;
using kiln_inspect::usage_error;

using Args = std::vector<std::string>;

struct Command {
  const char *name;
  const char *synopsis;  // the arguments, for the usage text
  const char *summary;
  std::function<int(const Args &)> run;
};

int run_ckpt(const Args &args);
int run_savedmodel(const Args &args);

// The subcommands.
const std::vector<Command> &commands() {
  static const std::vector<Command> kCommands = {
      {"ckpt", "PREFIX|DIR [--tensor NAME] [--no-verify]",
       "a TensorFlow/kiln checkpoint: every variable (name, dtype, shape, bytes) and the totals, every\n"
       "      checksum verified (--no-verify: the index only); --tensor NAME prints that variable's values",
       run_ckpt},
      {"savedmodel", "DIR",
       "a SavedModel (like saved_model_cli show --all): its signatures (inputs and outputs: names, dtypes,\n"
       "      shapes), the model's layers and parameter counts, its compile state and its variables",
       run_savedmodel},
      {"events", "FILE|LOGDIR [--values]",
       "TensorBoard event files (a file, or every run of a logdir): per file the records, file_version,\n"
       "      writer and a cut-short last record; per tag its kind, count, steps and last value, histogram\n"
       "      buckets or image size, every CRC verified; --values lists every value",
       kiln_inspect::run_events},
  };
  return kCommands;
}

std::string command_names() {
  std::string s;
  for (const Command &c : commands()) s += (s.empty() ? "" : ", ") + std::string(c.name);
  return s;
}

void usage(std::FILE *to) {
  std::fprintf(to, "usage: kiln-inspect COMMAND ARGS...\n\ncommands:\n");
  for (const Command &c : commands()) std::fprintf(to, "  %s %s\n      %s\n", c.name, c.synopsis, c.summary);
  std::fprintf(to,
               "\n  --help       this text\n  --version    kiln's version\n\n"
               "exit status: 0 ok, 1 a missing or corrupt file or an unknown variable, 2 bad usage\n");
}

void print_error(const kiln::Error &e) {
  std::fprintf(stderr, "kiln-inspect: %s: %s\n", code_name(e.code()), e.what());
}

std::string shape_string(const kiln::Dims &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
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

std::string human_bytes(uint64_t n) {
  static const char *kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof kUnits / sizeof kUnits[0]) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, kUnits[u]);
  return buf;
}

// ---------------------------------------------------------------- values, as NumPy prints them

// NumPy's defaults: arrays above 1000 elements print the first and last 3 of each dimension.
constexpr int64_t kSummaryThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr size_t kLineWidth = 75;

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.8g", v);
  std::string s = buf;
  // A float always shows it is one, as NumPy does ("1." not "1").
  if (s.find_first_of(".en") == std::string::npos) s += '.';
  return s;
}

// Float elements as NumPy's default print options write them: positional with at most 8
// fractional digits, or scientific when the values span too much (a nonzero |x| < 1e-4, |x| >=
// 1e8, or max/min > 1e3), with the decimal points aligned. Only the elements at `shown` are
// formatted (and decide the style), as NumPy decides from what a summary shows.
std::vector<std::string> format_floats(const std::vector<double> &v, const std::vector<size_t> &shown) {
  double max_abs = 0, min_abs = INFINITY;
  for (size_t i : shown)
    if (std::isfinite(v[i]) && v[i] != 0) {
      max_abs = std::max(max_abs, std::fabs(v[i]));
      min_abs = std::min(min_abs, std::fabs(v[i]));
    }
  const bool scientific = max_abs > 0 && (max_abs >= 1e8 || min_abs < 1e-4 || max_abs / min_abs > 1e3);
  struct Parts {
    std::string whole, frac, exponent;  // "-0", "0472", "e-06"
  };
  std::vector<Parts> parts(v.size());
  size_t whole_w = 0, frac_w = 0;
  for (size_t i : shown) {
    if (!std::isfinite(v[i])) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, scientific ? "%.8e" : "%.8f", v[i]);
    std::string text = buf;
    const size_t dot = text.find('.'), e = text.find('e');
    Parts &p = parts[i];
    p.whole = text.substr(0, dot);
    p.frac = text.substr(dot + 1, (e == std::string::npos ? text.size() : e) - dot - 1);
    if (e != std::string::npos) p.exponent = text.substr(e);
    while (!p.frac.empty() && p.frac.back() == '0') p.frac.pop_back();
    whole_w = std::max(whole_w, p.whole.size());
    frac_w = std::max(frac_w, p.frac.size());
  }
  std::vector<std::string> out(v.size());
  for (size_t i : shown) {
    if (!std::isfinite(v[i])) {
      out[i] = std::isnan(v[i]) ? "nan" : v[i] > 0 ? "inf" : "-inf";
      continue;
    }
    const Parts &p = parts[i];
    // Positional values pad their fraction with spaces ("0.25", "0.5 "), scientific ones with zeros.
    out[i] = std::string(whole_w - p.whole.size(), ' ') + p.whole + "." + p.frac +
             std::string(frac_w - p.frac.size(), scientific ? '0' : ' ') + p.exponent;
  }
  return out;
}

// The elements at `shown` as text (row-major; the others stay empty), whatever the dtype.
std::vector<std::string> element_strings(const kiln::Tensor &t, const std::vector<size_t> &shown) {
  std::vector<std::string> out(static_cast<size_t>(t.num_elements()));
  auto each = [&](const auto &values, auto &&text) {
    for (size_t i : shown) out[i] = text(values[i]);
  };
  switch (t.dtype()) {
    case kiln::DType::float32:
    case kiln::DType::float64:
    case kiln::DType::bfloat16:
      return format_floats(kiln::cast(t, kiln::DType::float64).to_vector<double>(), shown);
    case kiln::DType::int32:
      each(t.to_vector<int32_t>(), [](int32_t x) { return std::to_string(x); });
      break;
    case kiln::DType::int64:
      each(t.to_vector<int64_t>(), [](int64_t x) { return std::to_string(x); });
      break;
    case kiln::DType::uint8:
      each(t.to_vector<uint8_t>(), [](uint8_t x) { return std::to_string(x); });
      break;
    case kiln::DType::boolean:
      each(t.to_vector<uint8_t>(), [](uint8_t x) { return std::string(x ? "True" : "False"); });
      break;
  }
  return out;
}

// Writes the nested-bracket form of a tensor, NumPy style: rows on their own lines, long rows
// wrapped, and with `summarize` only the first and last kEdgeItems of each dimension.
class ArrayPrinter {
 public:
  ArrayPrinter(const kiln::Dims &shape, std::vector<std::string> elements, bool summarize)
      : shape_(shape), elements_(std::move(elements)), summarize_(summarize) {
    for (const std::string &e : elements_) width_ = std::max(width_, e.size());
  }

  std::string str() {
    if (shape_.empty()) return elements_.empty() ? "" : elements_[0];
    std::string line;
    print(0, 0, line);
    out_ += line;
    return out_;
  }

 private:
  // The indices of dimension d to print (-1 stands for the "..." between the two ends).
  std::vector<int64_t> indices(size_t d) const {
    const int64_t n = shape_[d];
    std::vector<int64_t> idx;
    if (summarize_ && n > 2 * kEdgeItems) {
      for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
      idx.push_back(-1);
      for (int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
    } else {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    }
    return idx;
  }

  int64_t stride(size_t d) const {
    int64_t s = 1;
    for (size_t k = d + 1; k < shape_.size(); ++k) s *= shape_[k];
    return s;
  }

  void add_word(std::string &line, const std::string &word, size_t indent, bool last) {
    std::string w = word + (last ? "" : " ");
    if (line.size() + w.size() > kLineWidth && line.size() > indent) {
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out_ += line + "\n";
      line = std::string(indent, ' ');
    }
    line += w;
  }

  void print(size_t d, int64_t offset, std::string &line) {
    line += '[';
    const std::vector<int64_t> idx = indices(d);
    const bool innermost = d + 1 == shape_.size();
    for (size_t k = 0; k < idx.size(); ++k) {
      const bool last = k + 1 == idx.size();
      if (innermost) {
        std::string word = idx[k] < 0 ? "..." : elements_[static_cast<size_t>(offset + idx[k])];
        if (idx[k] >= 0) word.insert(0, width_ - word.size(), ' ');
        add_word(line, word + (last ? "]" : ""), d + 1, last);
        continue;
      }
      if (idx[k] < 0) {
        line += "...";
      } else {
        print(d + 1, offset + idx[k] * stride(d), line);
      }
      if (!last) {
        // Rows end their line; blocks of rank 3 and up are separated by blank lines, as NumPy does.
        out_ += line + "\n" + std::string(shape_.size() - d - 2, '\n');
        line = std::string(d + 1, ' ');
      }
    }
    if (!innermost) line += ']';
  }

  kiln::Dims shape_;
  std::vector<std::string> elements_;
  bool summarize_;
  size_t width_ = 0;
  std::string out_;
};

// The elements a summary shows (the ends of every dimension), row-major.
std::vector<int64_t> shown_offsets(const kiln::Dims &shape) {
  std::vector<int64_t> offsets{0};
  int64_t stride = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    std::vector<int64_t> next;
    for (int64_t i = 0; i < shape[d]; ++i) {
      if (shape[d] > 2 * kEdgeItems && i >= kEdgeItems && i < shape[d] - kEdgeItems) continue;
      for (int64_t o : offsets) next.push_back(i * stride + o);
    }
    offsets = std::move(next);
    stride *= shape[d];
  }
  std::sort(offsets.begin(), offsets.end());
  return offsets;
}

void print_values(const kiln::Tensor &t) {
  const kiln::Dims shape = t.shape();
  const int64_t n = t.num_elements();
  const bool summarize = n > kSummaryThreshold;
  std::vector<size_t> shown;
  if (summarize) {
    for (int64_t o : shown_offsets(shape)) shown.push_back(static_cast<size_t>(o));
  } else {
    for (int64_t i = 0; i < n; ++i) shown.push_back(static_cast<size_t>(i));
  }
  std::printf("%s\n", ArrayPrinter(shape, element_strings(t, shown), summarize).str().c_str());
  const kiln::DType dt = t.dtype();
  // A summary shows few values; the range and mean say what the rest hold.
  if (summarize &&
      (dt == kiln::DType::float32 || dt == kiln::DType::float64 || dt == kiln::DType::bfloat16)) {
    const kiln::Tensor x = kiln::cast(t, kiln::DType::float64);
    const std::vector<double> v = x.to_vector<double>();
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int64_t nonfinite = 0;
    for (double e : v) {
      if (!std::isfinite(e)) {
        ++nonfinite;
        continue;
      }
      lo = std::min(lo, e), hi = std::max(hi, e), sum += e;
    }
    const int64_t finite = n - nonfinite;
    std::printf("min %s, max %s, mean %s", format_double(finite ? lo : NAN).c_str(),
                format_double(finite ? hi : NAN).c_str(),
                format_double(finite ? sum / static_cast<double>(finite) : NAN).c_str());
    if (nonfinite) std::printf(", %s non-finite", grouped(static_cast<uint64_t>(nonfinite)).c_str());
    std::printf("\n");
  }
}

// ---------------------------------------------------------------- ckpt

int print_tensor(const kiln::train::CheckpointReader &reader, const std::string &name) {
  const kiln::train::CheckpointVariable v = reader.variable(name);
  std::printf("%s: %s %s, %s bytes\n", v.name.c_str(), v.dtype.c_str(), shape_string(v.shape).c_str(),
              grouped(v.byte_size).c_str());
  print_values(reader.get_tensor(name));
  return kExitOk;
}

int list_checkpoint(const kiln::train::CheckpointReader &reader, bool verify) {
  const std::vector<kiln::train::CheckpointVariable> vars = reader.variables();
  std::printf("checkpoint %s: %s variables\n", reader.prefix().c_str(), grouped(vars.size()).c_str());
  size_t name_w = 4, dtype_w = 5, shape_w = 5;
  for (const auto &v : vars) {
    name_w = std::max(name_w, v.name.size());
    dtype_w = std::max(dtype_w, v.dtype.size());
    shape_w = std::max(shape_w, shape_string(v.shape).size());
  }
  std::printf("%-*s  %-*s  %-*s  %13s\n", static_cast<int>(name_w), "name", static_cast<int>(dtype_w),
              "dtype", static_cast<int>(shape_w), "shape", "bytes");
  uint64_t bytes = 0, elements = 0;
  for (const auto &v : vars) {
    std::printf("%-*s  %-*s  %-*s  %13s\n", static_cast<int>(name_w), v.name.c_str(),
                static_cast<int>(dtype_w), v.dtype.c_str(), static_cast<int>(shape_w),
                shape_string(v.shape).c_str(), grouped(v.byte_size).c_str());
    bytes += v.byte_size;
    if (v.kiln_dtype) {
      uint64_t n = 1;
      for (int64_t d : v.shape) n *= static_cast<uint64_t>(d);
      elements += n;
    }
  }
  std::printf("total: %s variables, %s bytes (%s), %s numeric elements\n", grouped(vars.size()).c_str(),
              grouped(bytes).c_str(), human_bytes(bytes).c_str(), grouped(elements).c_str());
  if (!verify) return kExitOk;

  // Reading a variable checks its size and CRC32C; kiln cannot read strings (the object graph)
  // as tensors, so those are listed as not read.
  size_t ok = 0, bad = 0;
  std::vector<std::string> unread;
  for (const auto &v : vars) {
    if (!v.kiln_dtype) {
      unread.push_back(v.name + " (" + v.dtype + ")");
      continue;
    }
    try {
      reader.get_tensor(v.name);
      ++ok;
    } catch (const kiln::Error &e) {
      print_error(e);
      ++bad;
    }
  }
  if (bad) {
    std::fprintf(stderr, "kiln-inspect: %zu of %zu variables failed their checks\n", bad, ok + bad);
    return kExitError;
  }
  std::printf("verified: the sizes and checksums of %zu variables match", ok);
  if (!unread.empty()) {
    std::printf("; not read:");
    for (size_t i = 0; i < unread.size(); ++i) std::printf("%s %s", i ? "," : "", unread[i].c_str());
  }
  std::printf("\n");
  return kExitOk;
}

int run_ckpt(const Args &args) {
  std::string path, tensor;
  bool have_tensor = false, verify = true;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    if (a == "--tensor") {
      if (i + 1 == args.size()) return usage_error("ckpt: --tensor needs a variable name");
      tensor = args[++i];
      have_tensor = true;
    } else if (a.rfind("--tensor=", 0) == 0) {
      tensor = a.substr(9);
      have_tensor = true;
    } else if (a == "--no-verify") {
      verify = false;
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("ckpt: unknown option '" + a + "'; expected --tensor NAME or --no-verify");
    } else if (path.empty()) {
      path = a;
    } else {
      return usage_error("ckpt: one checkpoint at a time; got '" + path + "' and '" + a + "'");
    }
  }
  if (path.empty()) return usage_error("ckpt: which checkpoint? give a prefix or a directory");
  try {
    const kiln::train::CheckpointReader reader = kiln::train::load_checkpoint(path);
    return have_tensor ? print_tensor(reader, tensor) : list_checkpoint(reader, verify);
  } catch (const kiln::Error &e) {
    print_error(e);
    return kExitError;
  }
}

// ---------------------------------------------------------------- savedmodel

// TensorFlow's names for the dtypes (saved_model_cli prints DT_FLOAT ...).
const char *tf_dtype_name(kiln::DType d) {
  switch (d) {
    case kiln::DType::float32:
      return "DT_FLOAT";
    case kiln::DType::bfloat16:
      return "DT_BFLOAT16";
    case kiln::DType::float64:
      return "DT_DOUBLE";
    case kiln::DType::int32:
      return "DT_INT32";
    case kiln::DType::int64:
      return "DT_INT64";
    case kiln::DType::uint8:
      return "DT_UINT8";
    case kiln::DType::boolean:
      return "DT_BOOL";
  }
  return "DT_INVALID";
}

// "(-1, 784)", as saved_model_cli prints a shape.
std::string tuple_string(const kiln::Dims &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

void print_specs(const char *side, const std::vector<kiln::saved_model::TensorSpec> &specs) {
  std::printf("  The given SavedModel SignatureDef contains the following %s(s):\n", side);
  for (const auto &t : specs)
    std::printf("    %ss['%s'] tensor_info:\n        dtype: %s\n        shape: %s\n", side, t.name.c_str(),
                tf_dtype_name(t.dtype), tuple_string(t.shape).c_str());
}

int run_savedmodel(const Args &args) {
  std::string dir;
  for (const std::string &a : args) {
    if (a.size() > 1 && a[0] == '-') return usage_error("savedmodel: unknown option '" + a + "'");
    if (!dir.empty())
      return usage_error("savedmodel: one directory at a time; got '" + dir + "' and '" + a + "'");
    dir = a;
  }
  if (dir.empty()) return usage_error("savedmodel: which SavedModel? give its directory");
  try {
    // Loading checks everything: the manifest against its fingerprint, every variable's CRC.
    const kiln::saved_model::SavedModel sm = kiln::saved_model::load(dir);
    const kiln::Model model = sm.model();
    std::printf("SavedModel %s (written by kiln %s)\n\n", dir.c_str(), sm.kiln_version().c_str());
    std::printf("MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:\n");
    for (const std::string &key : sm.signature_keys()) {
      const kiln::saved_model::Signature sig = sm.signature(key);
      std::printf("\nsignature_def['%s']:\n", key.c_str());
      print_specs("input", sig.inputs());
      print_specs("output", sig.outputs());
      std::printf("  Method name is: tensorflow/serving/predict\n");
    }
    std::printf("\n%s", model.summary().c_str());
    if (model.is_compiled())
      std::printf("Compiled: optimizer %s, %lld iteration(s)\n", model.optimizer().class_name().c_str(),
                  static_cast<long long>(model.optimizer().iterations()));
    else
      std::printf("Not compiled\n");
    const std::string prefix = dir + "/variables/variables";
    const kiln::train::CheckpointReader reader = kiln::train::load_checkpoint(prefix);
    uint64_t bytes = 0;
    for (const kiln::train::CheckpointVariable &v : reader.variables()) bytes += v.byte_size;
    std::printf("Variables: %zu entries, %s (%s)\n", reader.num_variables(), human_bytes(bytes).c_str(),
                prefix.c_str());
    return kExitOk;
  } catch (const kiln::Error &e) {
    print_error(e);
    return kExitError;
  }
}

}  // namespace

int main(int argc, char **argv) {
  const Args args(argv + 1, argv + argc);
  if (args.empty()) {
    usage(stderr);
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    usage(stdout);
    return kExitOk;
  }
  if (args[0] == "--version") {
    std::printf("kiln-inspect (kiln %s)\n", kiln::version().c_str());
    return kExitOk;
  }
  for (const Command &c : commands())
    if (args[0] == c.name) {
      try {
        return c.run(Args(args.begin() + 1, args.end()));
      } catch (const std::exception &e) {  // out of memory and the like: a message, not an abort
        std::fprintf(stderr, "kiln-inspect: %s\n", e.what());
        return kExitError;
      }
    }
  return usage_error("unknown command '" + args[0] + "'; the commands are: " + command_names());
}
