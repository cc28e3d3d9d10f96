// Reader for the llama2.c checkpoint format: a header of seven int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
// a negative vocab_size marks a separate classifier matrix) followed by the
// float32 tensors in the order documented in llm_model.hpp, with two rotary
// tables of seq_len * head_size / 2 floats each between rms_final and the
// classifier. The rotary tables are skipped: the model computes them.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "llm_model.hpp"

namespace gmem_samples::llm {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr std::uint64_t kCheckpointHeaderBytes = 7 * sizeof(std::int32_t);

// Validated config from the raw header fields; throws CheckpointError.
ModelConfig config_from_header(const std::array<std::int32_t, 7>& header);

// Exact file size a checkpoint with this config must have.
std::uint64_t checkpoint_file_bytes(const ModelConfig& config);

struct LoadedModel {
  ModelConfig config;
  WeightLayout layout;
  WeightBlock weights;  // malloc'd, filled from the file
};

// Reads a whole checkpoint into malloc'd memory. Throws CheckpointError for
// an unreadable file, a bad header, or a size that does not match the header
// (truncated or with trailing bytes), with both sizes in the message.
LoadedModel load_checkpoint(const std::string& path);

}  // namespace gmem_samples::llm
