#include "io/record.h"

#include "io/crc32c.h"

namespace kiln::io::record {
namespace {

void put_u32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

void append(std::string &out, std::string_view payload) {
  char length[8];
  const uint64_t n = payload.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.reserve(out.size() + kHeaderBytes + payload.size() + kFooterBytes);
  out.append(length, 8);
  put_u32(out, crc32c::mask(crc32c::value(length, 8)));
  out.append(payload.data(), payload.size());
  put_u32(out, crc32c::mask(crc32c::value(payload.data(), payload.size())));
}

}  // namespace kiln::io::record
