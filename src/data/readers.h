// File readers of the data pipeline: IDX (the MNIST format), the Fashion-MNIST loader and CSV.
// Files may be gzip-compressed (read through zlib; plain files are read as they are). A corrupt
// or truncated file is a DataLoss error naming the file and what is wrong with it.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"

namespace kiln::data {

// An IDX file as a tensor of its dims: element type 0x08 -> uint8, 0x09 (int8), 0x0B (int16) and
// 0x0C -> int32, 0x0D -> float32, 0x0E -> float64. Big-endian on disk.
Tensor read_idx(const std::string &path);

struct FashionMnist {
  Tensor x_train, y_train, x_test, y_test;  // uint8 [60000, 28, 28], [60000], [10000, 28, 28], [10000]
};
// keras.datasets.fashion_mnist.load_data() from the four IDX files in dir (train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each with or without
// .gz). Images must be uint8 [N, rows, cols] and labels uint8 [N].
FashionMnist load_fashion_mnist(const std::string &dir);
// Debian's dataset-fashion-mnist location.
constexpr const char *kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Column types of read_csv. Values match KILN_CSV_* in include/kiln/data.h; append only.
enum class CsvType : int { kAuto = 0, kInt32 = 1, kInt64 = 2, kFloat32 = 3, kFloat64 = 4, kSkip = 5 };

struct CsvOptions {
  bool header = true;  // the first line names the columns (else column_0, column_1, ...)
  char delimiter = ',';
  // One per column, or empty for every column kAuto. kAuto: int32 when every value is an
  // integer in range, int64 when one is not, else float32; other columns are text.
  std::vector<CsvType> column_types;
  // What happens to text columns (kAuto columns whose values are not all numbers): skipped
  // when true, else InvalidArgument naming the column and the first value.
  bool skip_text_columns = false;
};

struct CsvTable {
  std::vector<std::string> names;  // of the columns kept
  Element columns;                 // one 1-D tensor per column kept, a value per record
};
CsvTable read_csv(const std::string &path, const CsvOptions &options = {});
// tf.data.experimental.make_csv_dataset's simple form: one dict element per record, before
// batching (batch, shuffle and repeat it as needed).
DatasetPtr csv_dataset(const std::string &path, const CsvOptions &options = {});

// The whole file, gunzipped when it is gzip; errors name op and the file (NotFound, DataLoss).
std::string read_whole_file(const std::string &path, const char *op);

}  // namespace kiln::data
