// TFRecord framing (FORMATS.md §1.1), the container of TensorBoard event files: each record is
// an 8-byte little-endian length, the masked CRC-32C of those 8 bytes, the payload, and the
// masked CRC-32C of the payload. Records are concatenated with no file header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::io::record {

constexpr size_t kHeaderBytes = 12;  // length + its CRC
constexpr size_t kFooterBytes = 4;   // the payload's CRC

// Appends one framed record holding payload to out.
void append(std::string &out, std::string_view payload);

}  // namespace kiln::io::record
