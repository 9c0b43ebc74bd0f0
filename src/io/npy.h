// NumPy .npy (format 1.0/2.0/3.0, little-endian, C order): the CLI's array format.
#pragma once
#include <torch/torch.h>

#include "core/fs.h"

namespace sqz::io {

torch::Tensor read_npy(const fs::path& path);
// Writes atomically; the tensor is made contiguous and moved to CPU first.
void write_npy(const fs::path& path, const torch::Tensor& tensor);
std::string encode_npy(const torch::Tensor& tensor);

}  // namespace sqz::io
