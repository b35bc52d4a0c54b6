// A thread-safe map of names to factories: the registries of layer classes and custom losses.
// A factory is looked up (copied) under the lock and called without it, so a factory may call
// back into kiln; one that is replaced or removed is released after the lock, since it may own
// foreign state (a Python callable) whose release calls out.
#ifndef KILN_CORE_FACTORY_REGISTRY_H
#define KILN_CORE_FACTORY_REGISTRY_H

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

template <typename Factory>
class FactoryRegistry {
 public:
  // Sets (or replaces) name's factory.
  void set(const std::string &name, Factory factory) {
    Factory old;  // declared before the lock: released after it
    std::lock_guard<std::mutex> lock(mu_);
    old = std::exchange(factories_[name], std::move(factory));
  }
  // Removes name's factory; false when there is none.
  bool erase(const std::string &name) {
    Factory old;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = factories_.find(name);
    if (it == factories_.end()) return false;
    old = std::move(it->second);
    factories_.erase(it);
    return true;
  }
  // A copy of name's factory; empty when there is none.
  Factory get(const std::string &name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = factories_.find(name);
    return it == factories_.end() ? Factory() : it->second;
  }
  bool has(const std::string &name) const {
    std::lock_guard<std::mutex> lock(mu_);
    return factories_.count(name) != 0;
  }
  // The names, sorted.
  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto &[name, factory] : factories_) out.push_back(name);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Factory> factories_;
};

}  // namespace kiln

#endif  // KILN_CORE_FACTORY_REGISTRY_H
