#include "train/name_pattern.h"

#include <regex>

#include "core/error.h"

namespace kiln::train {

struct NamePattern::Impl {
  std::regex re;
};

NamePattern::NamePattern(const std::string &owner, const std::vector<std::string> &names) {
  std::string joined;
  for (const std::string &n : names) joined += (joined.empty() ? "" : "|") + n;
  try {
    impl_ = std::make_unique<Impl>(Impl{std::regex(joined, std::regex::ECMAScript)});
  } catch (const std::regex_error &e) {
    fail(Code::kInvalidArgument, owner, ": '", joined, "' is not a regular expression (", e.what(),
         "); expected names or patterns re.search takes");
  }
}

NamePattern::~NamePattern() = default;

bool NamePattern::search(const std::string &text) const { return std::regex_search(text, impl_->re); }

}  // namespace kiln::train
