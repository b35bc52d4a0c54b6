// Python's str.format for named int and float fields, as Keras formats ModelCheckpoint's filepath
// ("weights.{epoch:02d}-{val_loss:.2f}": filepath.format(epoch=epoch + 1, **logs)), so a pattern
// gives the same file names in kiln as in Keras. The format spec is Python's whole mini-language
// for numbers ([[fill]align][sign][z][#][0][width][grouping][.precision][type], types
// b d n o x X for ints, e E f F g G n % for both, none), plus the !s / !r / !a conversions.
// Positional fields ("{}", "{0}"), attribute and index access ("{a.b}", "{a[0]}"), nested fields
// in a spec and type 'c' are InvalidArgument, as is everything Python refuses (ValueError).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::train {

// A value of a named field: an int (Keras's epoch and batch) or a float (a logged value).
struct FormatArg {
  std::string name;
  bool is_int = false;
  int64_t int_value = 0;
  double float_value = 0.0;

  static FormatArg of_int(std::string name, int64_t v) {
    FormatArg a;
    a.name = std::move(name);
    a.is_int = true;
    a.int_value = v;
    return a;
  }
  static FormatArg of_float(std::string name, double v) {
    FormatArg a;
    a.name = std::move(name);
    a.float_value = v;
    return a;
  }
};

// Python's format(v, spec) for an int and for a float. InvalidArgument with Python's
// ValueError text ("Unknown format code 'd' for object of type 'float'") for a spec Python
// refuses.
std::string python_format_int(int64_t v, const std::string &spec);
std::string python_format_float(double v, const std::string &spec);

// Python's pattern.format(**args) (the first argument of a name wins). "{{" and "}}" are literal
// braces. A field naming no argument is InvalidArgument "KeyError: 'name'" listing the names
// available; a malformed pattern is InvalidArgument with Python's ValueError text.
std::string python_format(const std::string &pattern, const std::vector<FormatArg> &args);

}  // namespace kiln::train
