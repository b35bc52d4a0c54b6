// The source tree's path for the tests that read files from it (golden values, TensorFlow's
// fixtures beside it in ../shared). Compiled with the path as a definition on this file alone, so
// that a checkout at another path (every CI clone) recompiles this file only and ccache serves
// the rest.
#include "test_util.h"

#ifndef KILN_TEST_SOURCE_DIR
#error "KILN_TEST_SOURCE_DIR must name the source tree (tests/unit/CMakeLists.txt sets it on this file)"
#endif

namespace kiln::testing {

std::string source_dir() { return KILN_TEST_SOURCE_DIR; }

}  // namespace kiln::testing
