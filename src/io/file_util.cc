#include "io/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>

#include "core/error.h"

namespace kiln::io {

Code errno_code(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Code::kNotFound;
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return Code::kResourceExhausted;
    case EFBIG:  // a file past the size limit: TF's OUT_OF_RANGE
    case EOVERFLOW:
      return Code::kOutOfRange;
    case EACCES:
    case EPERM:
    case EROFS:
    case EEXIST:
    case EISDIR:
      return Code::kFailedPrecondition;
    default:
      return Code::kInternal;
  }
}

namespace {

[[noreturn]] void fail_errno(int err, const char *what, const std::string &path) {
  fail(errno_code(err), what, " '", path, "': ", std::strerror(err));
}

// Closes an fd on scope exit unless release()d; close errors after a successful fsync are not
// data loss, so the destructor ignores them.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

void write_all(int fd, const char *data, size_t n, const std::string &path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_errno(errno, "cannot write", path);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

std::string join_path(const std::string &dir, const std::string &name) {
  if (dir.empty() || is_absolute_path(name)) return name;
  if (name.empty()) return dir;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string dir_name(const std::string &path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;  // "a/b/" is "a/b"
  const size_t slash = path.rfind('/', end - (end > 0 ? 1 : 0));
  if (slash == std::string::npos || end == 0) return ".";
  size_t cut = slash;
  while (cut > 0 && path[cut - 1] == '/') --cut;
  return cut == 0 ? "/" : path.substr(0, cut);
}

std::string base_name(const std::string &path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  const size_t slash = end == 0 ? std::string::npos : path.rfind('/', end - 1);
  return slash == std::string::npos ? path.substr(0, end) : path.substr(slash + 1, end - slash - 1);
}

bool has_keras_file_suffix(const std::string &path) {
  for (const std::string suffix : {".h5", ".hdf5", ".keras"})
    if (path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  return false;
}

std::string collapse_slashes(const std::string &path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path)
    if (c != '/' || out.empty() || out.back() != '/') out.push_back(c);
  return out;
}

bool file_exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

size_t file_size(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail_errno(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) fail(Code::kFailedPrecondition, "'", path, "' is not a regular file");
  return static_cast<size_t>(st.st_size);
}

void create_dirs(const std::string &dir) {
  if (dir.empty() || dir == "." || dir == "/") return;
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail(Code::kFailedPrecondition, "'", dir, "' exists and is not a directory");
    return;
  }
  create_dirs(dir_name(dir));
  // EEXIST: another writer made it meanwhile.
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) fail_errno(errno, "cannot create directory", dir);
}

int open_for_reading(const std::string &path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fd;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

bool is_regular_fd(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_file(const std::string &path) {
  Fd fd(open_for_reading(path));
  if (fd.get() < 0) fail_errno(errno, "cannot open", path);
  if (!is_regular_fd(fd.get())) fail(Code::kFailedPrecondition, "'", path, "' is not a regular file");
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t r = ::read(fd.get(), buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_errno(errno, "cannot read", path);
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

void remove_file_quietly(const std::string &path) noexcept { ::unlink(path.c_str()); }

bool remove_file(const std::string &path) {
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  fail_errno(errno, "cannot remove", path);
}

void rename_file(const std::string &from, const std::string &to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    const int err = errno;
    fail(err == ENOSPC ? Code::kResourceExhausted : Code::kInternal, "cannot rename '", from, "' to '", to,
         "': ", std::strerror(err));
  }
}

void sync_dir(const std::string &dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail_errno(errno, "cannot open directory", dir);
  // Some file systems cannot fsync a directory (EINVAL); the rename is as durable as they allow.
  if (::fsync(fd.get()) != 0 && errno != EINVAL) fail_errno(errno, "cannot fsync directory", dir);
}

std::string temp_path_for(const std::string &final_path) {
  static std::mutex mu;
  static std::mt19937_64 rng = [] {
    std::random_device rd;
    const uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()) ^
                          static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return std::mt19937_64(seed);
  }();
  uint64_t r;
  {
    std::lock_guard<std::mutex> lock(mu);
    r = rng();
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
  return final_path + ".tempstate" + hex;
}

void write_file_atomic(const std::string &path, const std::string &contents) {
  TempPath temp(path);
  {
    Fd fd(::open(temp.temp().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (fd.get() < 0) fail_errno(errno, "cannot create", temp.temp());
    write_all(fd.get(), contents.data(), contents.size(), temp.temp());
    if (::fsync(fd.get()) != 0) fail_errno(errno, "cannot fsync", temp.temp());
    if (::close(fd.release()) != 0) fail_errno(errno, "cannot close", temp.temp());
  }
  temp.commit();
  sync_dir(dir_name(path));
}

}  // namespace kiln::io
