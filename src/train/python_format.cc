// Python's str.format for named int and float fields (python_format.h). Numbers are written with
// snprintf, whose %f, %e and %g are defined as Python's f, e and g (glibc prints exact digits, as
// Python does); Python's own rules sit around them: signs, nan/inf, the "no type" forms, '%',
// grouping, sign-aware zero padding that groups its zeros too, and fill and alignment.
#include "train/python_format.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "train/callbacks.h"

namespace kiln::train {

namespace {

// Bounds that keep a hostile spec from asking for gigabytes (Python would try).
constexpr int64_t kMaxWidth = 1 << 16;
constexpr int64_t kMaxPrecision = 1000;

[[noreturn]] void value_error(const std::string &message) {
  fail(Code::kInvalidArgument, "ValueError: ", message);
}

struct Spec {
  std::string text;
  std::string fill;  // one UTF-8 code point; empty: not given
  char align = 0;    // '<', '>', '=', '^'; 0: not given
  char sign = 0;     // '+', '-', ' '; 0: not given ('-')
  bool z = false, alt = false, zero = false;
  int64_t width = -1;
  char grouping = 0;  // ',' or '_'
  int64_t precision = -1;
  char type = 0;  // 0: none
};

bool is_align(char c) { return c == '<' || c == '>' || c == '=' || c == '^'; }

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

int64_t read_number(const std::string &s, size_t *i, int64_t limit, const char *what) {
  int64_t v = 0;
  while (*i < s.size() && s[*i] >= '0' && s[*i] <= '9') {
    v = v * 10 + (s[*i] - '0');
    if (v > limit)
      value_error(str_cat(what, " in format specifier '", s, "' is too large (at most ", limit, ")"));
    ++*i;
  }
  return v;
}

Spec parse_spec(const std::string &s, const char *type_name) {
  Spec p;
  p.text = s;
  size_t i = 0;
  const size_t n = s.size();
  if (n > 0) {
    const size_t cp = std::min(utf8_length(static_cast<unsigned char>(s[0])), n);
    if (cp < n && is_align(s[cp])) {
      p.fill = s.substr(0, cp);
      p.align = s[cp];
      i = cp + 1;
    } else if (is_align(s[0])) {
      p.align = s[0];
      i = 1;
    }
  }
  if (i < n && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) p.sign = s[i++];
  if (i < n && s[i] == 'z') {
    p.z = true;
    ++i;
  }
  if (i < n && s[i] == '#') {
    p.alt = true;
    ++i;
  }
  if (i < n && s[i] == '0') {
    p.zero = true;
    ++i;
  }
  if (i < n && s[i] >= '0' && s[i] <= '9') p.width = read_number(s, &i, kMaxWidth, "the width");
  if (i < n && (s[i] == ',' || s[i] == '_')) p.grouping = s[i++];
  if (i < n && s[i] == '.') {
    ++i;
    if (i >= n || s[i] < '0' || s[i] > '9') value_error("Format specifier missing precision");
    p.precision = read_number(s, &i, kMaxPrecision, "the precision");
  }
  if (i < n) p.type = s[i++];
  if (i < n) value_error(str_cat("Invalid format specifier '", s, "' for object of type '", type_name, "'"));
  return p;
}

// Separators every `every` digits from the right.
std::string group(const std::string &digits, char sep, size_t every) {
  if (!sep || digits.size() <= every) return digits;
  std::string out;
  const size_t first = digits.size() % every == 0 ? every : digits.size() % every;
  out.append(digits, 0, first);
  for (size_t i = first; i < digits.size(); i += every) {
    out += sep;
    out.append(digits, i, every);
  }
  return out;
}

std::string pad(const std::string &prefix, const std::string &body, const Spec &p, bool numeric) {
  char align = p.align ? p.align : (numeric ? '>' : '<');
  std::string fill = p.fill;
  if (fill.empty()) fill = p.zero ? "0" : " ";
  if (numeric && p.zero && !p.align) align = '=';
  const int64_t len = static_cast<int64_t>(prefix.size() + body.size());
  if (p.width <= len) return prefix + body;
  const int64_t missing = p.width - len;
  auto fills = [&](int64_t k) {
    std::string out;
    for (int64_t j = 0; j < k; ++j) out += fill;
    return out;
  };
  switch (align) {
    case '<':
      return prefix + body + fills(missing);
    case '^':
      return fills(missing / 2) + prefix + body + fills(missing - missing / 2);
    case '=':
      return prefix + fills(missing) + body;
    default:
      return fills(missing) + prefix + body;
  }
}

// A number as sign (and base prefix), its integer digits and the rest (".5e+02", "%", "inf"):
// grouping goes into the digits, and sign-aware zero padding with grouping pads the digits with
// zeros (regrouped, as Python does: '{:09,}' of 1234 is "0,001,234").
std::string finish_number(const std::string &prefix, std::string digits, const std::string &rest,
                          const Spec &p, size_t every) {
  const bool zero_pad = (p.fill.empty() ? p.zero : p.fill == "0") && (p.align ? p.align == '=' : p.zero);
  if (p.grouping && zero_pad && !digits.empty()) {
    while (static_cast<int64_t>(prefix.size() + group(digits, p.grouping, every).size() + rest.size()) <
           p.width)
      digits.insert(digits.begin(), '0');
  }
  return pad(prefix, group(digits, p.grouping, every) + rest, p, true);
}

std::string sign_of(bool negative, const Spec &p) {
  if (negative) return "-";
  if (p.sign == '+') return "+";
  if (p.sign == ' ') return " ";
  return "";
}

std::string printf_double(const char *format, int precision, double v) {
  const int n = std::snprintf(nullptr, 0, format, precision, v);
  if (n < 0) fail(Code::kInternal, "python_format: snprintf failed");
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(&out[0], out.size(), format, precision, v);
  out.resize(static_cast<size_t>(n));
  return out;
}

// Drops trailing zeros of the fraction (and a bare point) in "1.2300" or "1.2300e+05".
std::string strip_zeros(const std::string &s) {
  const size_t e = s.find_first_of("eE");
  std::string mantissa = s.substr(0, e), exponent = e == std::string::npos ? "" : s.substr(e);
  if (mantissa.find('.') != std::string::npos) {
    while (!mantissa.empty() && mantissa.back() == '0') mantissa.pop_back();
    if (!mantissa.empty() && mantissa.back() == '.') mantissa.pop_back();
  }
  return mantissa + exponent;
}

// Python's float format with a precision and no type: 'g' that switches to exponent notation
// from exponent precision - 1 on, and keeps a ".0" on integral values.
std::string no_type_with_precision(double a, int64_t precision, bool alt) {
  const int prec = static_cast<int>(precision == 0 ? 1 : precision);
  const std::string sci = printf_double("%.*e", prec - 1, a);
  const int exp10 = std::atoi(sci.c_str() + sci.find('e') + 1);
  std::string out;
  if (exp10 < -4 || exp10 >= prec - 1) {
    out = alt ? printf_double("%#.*e", prec - 1, a) : strip_zeros(sci);
  } else {
    const std::string fixed = printf_double(alt ? "%#.*f" : "%.*f", prec - 1 - exp10, a);
    out = alt ? fixed : strip_zeros(fixed);
  }
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

std::string uppercase(std::string s) {
  for (char &c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

std::string format_float(double v, const Spec &p) {
  const char t = p.type;
  if (!(t == 0 || t == 'e' || t == 'E' || t == 'f' || t == 'F' || t == 'g' || t == 'G' || t == 'n' ||
        t == '%'))
    value_error(str_cat("Unknown format code '", t, "' for object of type 'float'"));
  if (p.grouping && t == 'n') value_error(str_cat("Cannot specify '", p.grouping, "' with 'n'."));
  bool negative = std::signbit(v) && !std::isnan(v);
  const double a = std::fabs(v);
  const int prec = static_cast<int>(p.precision < 0 ? 6 : p.precision);
  std::string body;
  if (std::isnan(a) || std::isinf(a)) {
    body = std::isnan(a) ? "nan" : "inf";
    if (t == 'E' || t == 'F' || t == 'G') body = uppercase(body);
    if (t == '%') body += "%";
  } else if (t == 'f' || t == 'F') {
    body = printf_double(p.alt ? "%#.*f" : "%.*f", prec, a);
  } else if (t == 'e' || t == 'E') {
    body = printf_double(p.alt ? "%#.*e" : "%.*e", prec, a);
    if (t == 'E') body = uppercase(body);
  } else if (t == 'g' || t == 'G' || t == 'n') {
    body = printf_double(p.alt ? "%#.*g" : "%.*g", prec, a);
    if (t == 'G') body = uppercase(body);
  } else if (t == '%') {
    body = printf_double(p.alt ? "%#.*f" : "%.*f", prec, a * 100.0) + "%";
  } else if (p.precision < 0) {
    body = python_float_repr(a);
  } else {
    body = no_type_with_precision(a, p.precision, p.alt);
  }
  if (p.z && negative) {
    // Negative zero coercion: a value that rounds to zero loses its sign.
    const size_t e = body.find_first_of("eE%");
    if (body.substr(0, e).find_first_of("123456789") == std::string::npos) negative = false;
  }
  size_t digits_end = 0;
  while (digits_end < body.size() && body[digits_end] >= '0' && body[digits_end] <= '9') ++digits_end;
  return finish_number(sign_of(negative, p), body.substr(0, digits_end), body.substr(digits_end), p, 3);
}

std::string format_int(int64_t v, const Spec &p) {
  const char t = p.type;
  if (t == 'e' || t == 'E' || t == 'f' || t == 'F' || t == 'g' || t == 'G' || t == '%')
    return format_float(static_cast<double>(v), p);
  if (p.z) value_error("Negative zero coercion (z) not allowed in integer format specifier");
  if (p.precision >= 0) value_error("Precision not allowed in integer format specifier");
  int base = 10;
  const char *prefix = "";
  switch (t) {
    case 0:
    case 'd':
    case 'n':
      break;
    case 'x':
      base = 16;
      prefix = "0x";
      break;
    case 'X':
      base = 16;
      prefix = "0X";
      break;
    case 'o':
      base = 8;
      prefix = "0o";
      break;
    case 'b':
      base = 2;
      prefix = "0b";
      break;
    case 'c':
      fail(Code::kInvalidArgument, "format code 'c' (a character from a number) is not supported");
    default:
      value_error(str_cat("Unknown format code '", t, "' for object of type 'int'"));
  }
  if (p.grouping == ',' && t != 0 && t != 'd') value_error(str_cat("Cannot specify ',' with '", t, "'."));
  if (p.grouping == '_' && t == 'n') value_error("Cannot specify '_' with 'n'.");
  // The magnitude as unsigned, so INT64_MIN works.
  uint64_t m = v < 0 ? ~static_cast<uint64_t>(v) + 1 : static_cast<uint64_t>(v);
  std::string digits;
  do {
    const int d = static_cast<int>(m % static_cast<uint64_t>(base));
    digits.insert(digits.begin(), static_cast<char>(d < 10 ? '0' + d : (t == 'X' ? 'A' : 'a') + d - 10));
    m /= static_cast<uint64_t>(base);
  } while (m != 0);
  const std::string head = sign_of(v < 0, p) + (p.alt ? prefix : "");
  return finish_number(head, digits, "", p, base == 10 ? 3 : 4);
}

std::string format_string(const std::string &s, const Spec &p) {
  if (p.type != 0 && p.type != 's')
    value_error(str_cat("Unknown format code '", p.type, "' for object of type 'str'"));
  if (p.sign) value_error("Sign not allowed in string format specifier");
  if (p.alt) value_error("Alternate form (#) not allowed in string format specifier");
  if (p.z) value_error("Negative zero coercion (z) not allowed in string format specifier");
  if (p.align == '=') value_error("'=' alignment not allowed in string format specifier");
  if (p.grouping) value_error(str_cat("Cannot specify '", p.grouping, "' with 's'."));
  std::string body = s;
  if (p.precision >= 0 && static_cast<int64_t>(body.size()) > p.precision)
    body.resize(static_cast<size_t>(p.precision));
  return pad("", body, p, false);
}

std::string known_names(const std::vector<FormatArg> &args) {
  std::string out;
  for (const FormatArg &a : args) out += (out.empty() ? "" : ", ") + a.name;
  return out.empty() ? "(none)" : out;
}

std::string format_field(const std::string &field, const std::vector<FormatArg> &args) {
  const size_t end = field.find_first_of("!:");
  const std::string name = field.substr(0, end);
  if (name.empty() || name.find_first_not_of("0123456789") == std::string::npos)
    fail(Code::kInvalidArgument, "positional fields ('{", name,
         "}') are not supported: every field names a value, such as {epoch} or {val_loss:.2f}");
  if (name.find_first_of(".[") != std::string::npos)
    fail(Code::kInvalidArgument, "attribute and index access in a field ('{", name, "}') is not supported");
  char conversion = 0;
  std::string spec;
  if (end != std::string::npos && field[end] == '!') {
    if (end + 1 >= field.size()) value_error("end of string while looking for conversion specifier");
    conversion = field[end + 1];
    if (end + 2 < field.size() && field[end + 2] != ':')
      value_error("expected ':' after conversion specifier");
    if (conversion != 's' && conversion != 'r' && conversion != 'a')
      value_error(str_cat("Unknown conversion specifier ", conversion));
    if (end + 2 < field.size()) spec = field.substr(end + 3);
  } else if (end != std::string::npos) {
    spec = field.substr(end + 1);
  }
  const FormatArg *arg = nullptr;
  for (const FormatArg &a : args)
    if (a.name == name) {
      arg = &a;
      break;
    }
  if (!arg)
    fail(Code::kInvalidArgument, "KeyError: '", name, "'; the values available are ", known_names(args));
  if (conversion) {
    const std::string text =
        arg->is_int ? std::to_string(arg->int_value) : python_float_repr(arg->float_value);
    return format_string(text, parse_spec(spec, "str"));
  }
  return arg->is_int ? format_int(arg->int_value, parse_spec(spec, "int"))
                     : format_float(arg->float_value, parse_spec(spec, "float"));
}

}  // namespace

std::string python_format_int(int64_t v, const std::string &spec) {
  return format_int(v, parse_spec(spec, "int"));
}

std::string python_format_float(double v, const std::string &spec) {
  return format_float(v, parse_spec(spec, "float"));
}

std::string python_format(const std::string &pattern, const std::vector<FormatArg> &args) {
  std::string out;
  const size_t n = pattern.size();
  for (size_t i = 0; i < n;) {
    const char c = pattern[i];
    if (c == '{') {
      if (i + 1 < n && pattern[i + 1] == '{') {
        out += '{';
        i += 2;
        continue;
      }
      if (i + 1 == n) value_error("Single '{' encountered in format string");
      const size_t close = pattern.find('}', i + 1);
      if (close == std::string::npos) value_error("expected '}' before end of string");
      const std::string field = pattern.substr(i + 1, close - i - 1);
      if (field.find('{') != std::string::npos)
        fail(Code::kInvalidArgument, "nested fields in a format spec ('{", field, "}') are not supported");
      out += format_field(field, args);
      i = close + 1;
    } else if (c == '}') {
      if (i + 1 < n && pattern[i + 1] == '}') {
        out += '}';
        i += 2;
        continue;
      }
      value_error("Single '}' encountered in format string");
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

}  // namespace kiln::train
