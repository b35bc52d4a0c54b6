// UTF-8 checks for the strings that end up in JSON (configs) or in protobuf `string` fields
// (checkpoint object graphs, TensorBoard events), both of which require well-formed UTF-8: a bad
// name is refused where it comes in, not found later in a file kiln cannot read back.
#pragma once

#include <string_view>

namespace kiln {

// Whether s is well-formed UTF-8: no stray continuation bytes, truncated or overlong sequences,
// surrogates (U+D800..U+DFFF) or code points past U+10FFFF.
bool is_utf8(std::string_view s);

// InvalidArgument "<op>: <what> is not valid UTF-8 (byte 0xNN at offset K); expected UTF-8 text"
// unless s is well-formed. The message shows the offending byte in hex, never the raw bytes.
void require_utf8(std::string_view s, const char *op, const char *what);

}  // namespace kiln
