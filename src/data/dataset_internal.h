// What the transformation files share: the base of one-input datasets, the input check, and
// the serial map the parallel map falls back to.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"

namespace kiln::data::internal {

inline void require_input(const DatasetPtr &d, const char *op) {
  if (!d) fail(Code::kInvalidArgument, op, ": the input dataset is null");
}

// A dataset with one input whose iterator is made by the subclass from the input's.
class UnaryDataset : public Dataset {
 public:
  UnaryDataset(DatasetPtr input, std::vector<std::string> names)
      : Dataset(std::move(names)), input_(std::move(input)) {}

 protected:
  DatasetPtr input_;
};

// map with num_parallel_calls 0 or 1.
DatasetPtr make_serial_map(DatasetPtr input, MapFn fn, std::vector<std::string> output_names);

}  // namespace kiln::data::internal
