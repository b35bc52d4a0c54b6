#include "core/utf8.h"

#include <cstdint>
#include <cstdio>

#include "core/error.h"

namespace kiln {

namespace {

// The offset of the first byte that breaks UTF-8, or npos.
size_t first_bad_byte(std::string_view s) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;  // a continuation byte without a lead, or 0xF8..0xFF
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace

bool is_utf8(std::string_view s) { return first_bad_byte(s) == std::string_view::npos; }

void require_utf8(std::string_view s, const char *op, const char *what) {
  const size_t at = first_bad_byte(s);
  if (at == std::string_view::npos) return;
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(s[at])));
  fail(Code::kInvalidArgument, op, ": ", what, " is not valid UTF-8 (byte ", hex, " at offset ", at,
       "); expected UTF-8 text");
}

}  // namespace kiln
