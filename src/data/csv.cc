// CSV to column tensors (read_csv) and to a dataset of dict records (csv_dataset).
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "data/readers.h"

namespace kiln::data {

namespace {

using Record = std::vector<std::string>;

// Splits the text into records of fields: RFC 4180 quoting ("a,b" and "" for a quote), \n or
// \r\n line ends, blank lines ignored. An unterminated quote is DataLoss.
std::vector<std::pair<size_t, Record>> parse(const std::string &text, char delim, const std::string &path) {
  std::vector<std::pair<size_t, Record>> records;
  Record rec;
  std::string field;
  size_t line = 1, rec_line = 1;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == delim) {
      rec.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        rec.push_back(std::move(field));
        records.emplace_back(rec_line, std::move(rec));
      }
      rec.clear();
      field.clear();
      any = false;
      rec_line = ++line;
    } else {
      field += c;
    }
  }
  if (quoted)
    fail(Code::kDataLoss, "read_csv: '", path, "': the quote opened on line ", rec_line, " never closes");
  if (any || !field.empty()) {
    rec.push_back(std::move(field));
    records.emplace_back(rec_line, std::move(rec));
  }
  return records;
}

// A field as an error message shows it: control bytes (a NUL would end the message) as \xNN.
std::string shown(const std::string &s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

bool parse_int(const std::string &s, int64_t *v) {
  if (s.empty()) return false;
  errno = 0;
  char *end = nullptr;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  // The whole field: a NUL inside it ends the C string early, and "1\0" + "999" is not 1.
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  *v = x;
  return true;
}

bool parse_float(const std::string &s, double *v) {
  if (s.empty()) return false;
  // strtod reads C99 hex floats ("0x10" is 16); a CSV number is decimal, as TF's parser reads it.
  const size_t digits = s.find_first_not_of(" \t+-");
  if (digits != std::string::npos && s.compare(digits, 1, "0") == 0 && digits + 1 < s.size() &&
      (s[digits + 1] == 'x' || s[digits + 1] == 'X'))
    return false;
  char *end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

const char *type_name(CsvType t) {
  switch (t) {
    case CsvType::kInt32:
      return "int32";
    case CsvType::kInt64:
      return "int64";
    case CsvType::kFloat32:
      return "float32";
    case CsvType::kFloat64:
      return "float64";
    default:
      return "text";
  }
}

// The type kAuto picks for a column; kSkip for text.
CsvType infer(const std::vector<std::pair<size_t, Record>> &rows, size_t c) {
  CsvType t = CsvType::kInt32;
  for (const auto &r : rows) {
    int64_t i;
    double d;
    if (t != CsvType::kFloat32 && parse_int(r.second[c], &i)) {
      if (i < INT32_MIN || i > INT32_MAX) t = CsvType::kInt64;
    } else if (parse_float(r.second[c], &d)) {
      t = CsvType::kFloat32;
    } else {
      return CsvType::kSkip;
    }
  }
  return t;
}

template <typename T>
Tensor column(const std::vector<std::pair<size_t, Record>> &rows, size_t c, CsvType type,
              const std::string &name, const std::string &path) {
  Tensor t = Tensor::empty(dtype_of<T>::value, Shape{static_cast<int64_t>(rows.size())});
  T *dst = t.mutable_data<T>();
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::string &s = rows[r].second[c];
    int64_t i = 0;
    double d = 0;
    bool ok;
    if constexpr (std::is_integral_v<T>) {
      ok = parse_int(s, &i) && i >= std::numeric_limits<T>::min() && i <= std::numeric_limits<T>::max();
      dst[r] = static_cast<T>(i);
    } else {
      ok = parse_float(s, &d);
      dst[r] = static_cast<T>(d);
    }
    if (!ok)
      fail(Code::kInvalidArgument, "read_csv: '", path, "' line ", rows[r].first, ", column '", name, "': \"",
           shown(s), "\" is not a valid ", type_name(type));
  }
  return t;
}

}  // namespace

CsvTable read_csv(const std::string &path, const CsvOptions &options) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r')
    fail(Code::kInvalidArgument, "read_csv: the delimiter cannot be a quote or a line end");
  auto rows = parse(read_whole_file(path, "read_csv"), options.delimiter, path);
  if (rows.empty())
    fail(Code::kDataLoss, "read_csv: '", path, "' is empty; expected ",
         options.header ? "a header line" : "records");
  std::vector<std::string> all_names;
  const size_t width = rows[0].second.size();
  if (options.header) {
    all_names = rows[0].second;
    rows.erase(rows.begin());
  } else {
    for (size_t c = 0; c < width; ++c) all_names.push_back("column_" + std::to_string(c));
  }
  for (const auto &r : rows)
    if (r.second.size() != width)
      fail(Code::kDataLoss, "read_csv: '", path, "' line ", r.first, " has ", r.second.size(), " fields; ",
           options.header ? "the header has " : "the first record has ", width);
  if (!options.column_types.empty() && options.column_types.size() != width)
    fail(Code::kInvalidArgument, "read_csv: ", options.column_types.size(), " column types for '", path,
         "', which has ", width, " columns");
  CsvTable out;
  for (size_t c = 0; c < width; ++c) {
    CsvType type = options.column_types.empty() ? CsvType::kAuto : options.column_types[c];
    if (static_cast<int>(type) < 0 || static_cast<int>(type) > static_cast<int>(CsvType::kSkip))
      fail(Code::kInvalidArgument, "read_csv: column type ", static_cast<int>(type), " is not valid");
    if (type == CsvType::kAuto) {
      type = infer(rows, c);
      if (type == CsvType::kSkip && !options.skip_text_columns) {
        std::string example;
        for (const auto &r : rows) {
          double d;
          if (!parse_float(r.second[c], &d)) {
            example = "line " + std::to_string(r.first) + ": \"" + shown(r.second[c]) + "\"";
            break;
          }
        }
        fail(Code::kInvalidArgument, "read_csv: '", path, "' column '", all_names[c], "' holds text (",
             example, "); give it a type or skip text columns");
      }
    }
    switch (type) {
      case CsvType::kInt32:
        out.columns.push_back(column<int32_t>(rows, c, type, all_names[c], path));
        break;
      case CsvType::kInt64:
        out.columns.push_back(column<int64_t>(rows, c, type, all_names[c], path));
        break;
      case CsvType::kFloat32:
        out.columns.push_back(column<float>(rows, c, type, all_names[c], path));
        break;
      case CsvType::kFloat64:
        out.columns.push_back(column<double>(rows, c, type, all_names[c], path));
        break;
      default:
        continue;
    }
    out.names.push_back(all_names[c]);
  }
  return out;
}

DatasetPtr csv_dataset(const std::string &path, const CsvOptions &options) {
  CsvTable t = read_csv(path, options);
  if (t.columns.empty())
    fail(Code::kInvalidArgument, "csv_dataset: '", path, "' has no numeric columns to read");
  return from_tensor_slices(std::move(t.columns), std::move(t.names));
}

}  // namespace kiln::data
