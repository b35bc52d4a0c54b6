// Numeric tensors of event files, read the way TensorBoard's tensor_util.make_ndarray reads them
// (an internal helper of event_reader.cc).
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::tbproto {
class TensorProto;
}

namespace kiln::io::events {

// The most elements a single typed value is repeated to (make_ndarray's broadcast of one value over
// the shape): a shape is the file's word, and a tiny record could otherwise ask for terabytes.
inline constexpr int64_t kMaxBroadcast = int64_t{1} << 20;

// The tensor's elements (row-major, as doubles): tensor_content when it is not empty, else the
// dtype's typed field, one value repeated over the shape. False (and *out empty) when make_ndarray
// would raise (a size that does not match the shape, a dtype it does not read as numbers, such as
// strings and complex numbers) or a repeat would exceed kMaxBroadcast.
bool decode_numbers(const tbproto::TensorProto &t, int64_t elements, std::vector<double> *out);

// The element count of a shape; -1 when a dim is negative or the product is over 2^48.
int64_t element_count(const std::vector<int64_t> &shape);

}  // namespace kiln::io::events
