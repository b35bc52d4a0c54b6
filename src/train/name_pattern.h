// Keras's name patterns (exclude_from_weight_decay's var_names): the names joined by "|" as one
// regular expression, searched for in a variable's name as Python's re.search does. The patterns
// are ECMAScript's (std::regex), which agrees with Python's re for plain names, classes, \d \w
// \s, anchors ^ $, groups and alternation; not for \A, \Z or (?P...) forms.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace kiln::train {

class NamePattern {
 public:
  // InvalidArgument naming owner and the joined pattern when it does not compile.
  NamePattern(const std::string &owner, const std::vector<std::string> &names);
  ~NamePattern();
  NamePattern(const NamePattern &) = delete;
  NamePattern &operator=(const NamePattern &) = delete;

  // Whether the pattern matches somewhere in text. Thread-safe.
  bool search(const std::string &text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::train
