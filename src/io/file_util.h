// Small POSIX file helpers shared by the checkpoint writers: paths, whole-file reads, and
// atomic replacement (write under a temporary name in the same directory, fsync, rename over
// the final name, fsync the directory), so a crash leaves either the old file or the new one.
// Errors are kiln::Error: NotFound for a missing file, ResourceExhausted for a full disk,
// FailedPrecondition for permissions, Internal for other I/O failures; each names the path.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "core/error.h"

namespace kiln::io {

// "a/b" + "c" -> "a/b/c"; an absolute `name` or an empty `dir` gives `name` unchanged.
// The status code of a failed system call's errno, as TF maps them: NotFound (ENOENT, ENOTDIR),
// ResourceExhausted (ENOSPC, EDQUOT, ENOMEM, EMFILE, ENFILE), OutOfRange (EFBIG, EOVERFLOW),
// FailedPrecondition (EACCES, EPERM, EROFS, EEXIST, EISDIR), else Internal.
Code errno_code(int err);

std::string join_path(const std::string &dir, const std::string &name);
// The directory part of path: "a/b/c" -> "a/b", "c" -> ".", "/c" -> "/".
std::string dir_name(const std::string &path);
// The last component: "a/b/c" -> "c".
std::string base_name(const std::string &path);
inline bool is_absolute_path(const std::string &path) { return !path.empty() && path[0] == '/'; }
// Whether path names a Keras file kiln does not write or read: HDF5 (".h5", ".hdf5") or Keras 3's
// zip format (".keras").
bool has_keras_file_suffix(const std::string &path);
// The same path with each run of slashes as one: "//a//b/" -> "/a/b/" (the same file).
std::string collapse_slashes(const std::string &path);

bool file_exists(const std::string &path);
// Whether path names a directory / a regular file (following links); false when it does not
// exist or cannot be examined.
bool is_directory(const std::string &path);
bool is_file(const std::string &path);
// The size of a regular file; NotFound when it does not exist.
size_t file_size(const std::string &path);
// Creates dir and its missing parents (mkdir -p).
void create_dirs(const std::string &dir);
// The whole file; NotFound when it does not exist, FailedPrecondition when it is not a regular
// file (a FIFO, a device such as /dev/zero, a directory).
std::string read_file(const std::string &path);
// ::open(path, O_RDONLY | O_CLOEXEC) that does not block on a FIFO without a writer (opened
// O_NONBLOCK, then made blocking again): -1 with errno when open fails. The caller fstat()s the
// descriptor and refuses what is not a regular file.
int open_for_reading(const std::string &path);
// Whether fd is a regular file (false, errno kept, when fstat fails).
bool is_regular_fd(int fd);
// Removes path if it exists; never throws (cleanup paths call it).
void remove_file_quietly(const std::string &path) noexcept;
// Removes path: true when it did, false when it did not exist; other failures throw (for callers
// that must not go on while the file is still there).
bool remove_file(const std::string &path);
// rename(2): replaces `to` atomically.
void rename_file(const std::string &from, const std::string &to);
// fsync of a directory, so a rename inside it survives a crash.
void sync_dir(const std::string &dir);
// "<final_path>.tempstate<random hex>", unique enough for concurrent writers (TF's pattern).
std::string temp_path_for(const std::string &final_path);

// Writes contents to path atomically: a temporary file beside it, fsynced, renamed over path,
// then the directory fsynced. On failure the temporary is removed and path is untouched.
void write_file_atomic(const std::string &path, const std::string &contents);

// A temporary file name that is removed when this goes out of scope, unless commit() renamed
// it into place first. The writer of the file is the caller's (it must be closed and synced
// before commit()).
class TempPath {
 public:
  explicit TempPath(std::string final_path) : final_(std::move(final_path)), temp_(temp_path_for(final_)) {}
  ~TempPath() {
    if (!committed_) remove_file_quietly(temp_);
  }
  TempPath(const TempPath &) = delete;
  TempPath &operator=(const TempPath &) = delete;

  const std::string &temp() const { return temp_; }
  const std::string &final_path() const { return final_; }
  // Renames the temporary over the final name (the caller then syncs the directory).
  void commit() {
    rename_file(temp_, final_);
    committed_ = true;
  }

 private:
  std::string final_, temp_;
  bool committed_ = false;
};

}  // namespace kiln::io
