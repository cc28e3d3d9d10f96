#include "llm_checkpoint.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "host_common.hpp"

namespace gmem_samples::llm {
namespace {

std::uint64_t rotary_table_floats(const ModelConfig& config) {
  return 2 * static_cast<std::uint64_t>(config.seq_len) *
         static_cast<std::uint64_t>(config.head_size() / 2);
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

void read_floats(std::FILE* file, float* destination, std::uint64_t count, const std::string& path) {
  // Chunked so progress is bounded per call and huge reads never overflow size_t math.
  constexpr std::uint64_t kChunk = 1ull << 26;
  while (count > 0) {
    const std::size_t want = static_cast<std::size_t>(count < kChunk ? count : kChunk);
    const std::size_t got = std::fread(destination, sizeof(float), want, file);
    if (got != want)
      throw CheckpointError("read error in '" + path + "': " +
                            (std::ferror(file) ? std::strerror(errno) : "unexpected end of file"));
    destination += got;
    count -= got;
  }
}

}  // namespace

ModelConfig config_from_header(const std::array<std::int32_t, 7>& header) {
  ModelConfig config;
  config.dim = header[0];
  config.hidden_dim = header[1];
  config.n_layers = header[2];
  config.n_heads = header[3];
  config.n_kv_heads = header[4];
  config.shared_classifier = header[5] > 0;
  // INT32_MIN has no positive counterpart; validate() then rejects 0.
  config.vocab_size = header[5] == INT32_MIN ? 0 : (header[5] < 0 ? -header[5] : header[5]);
  config.seq_len = header[6];
  try {
    validate(config);
  } catch (const ModelError& error) {
    throw CheckpointError(std::string("invalid checkpoint header: ") + error.what());
  }
  return config;
}

std::uint64_t checkpoint_file_bytes(const ModelConfig& config) {
  return kCheckpointHeaderBytes +
         (layout_for(config).total_floats + rotary_table_floats(config)) * sizeof(float);
}

LoadedModel load_checkpoint(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw CheckpointError("cannot open checkpoint '" + path + "': " + std::strerror(errno));

  if (std::fseek(file.get(), 0, SEEK_END) != 0)
    throw CheckpointError("cannot seek in '" + path + "': " + std::strerror(errno));
  const long end = std::ftell(file.get());
  if (end < 0) throw CheckpointError("cannot size '" + path + "': " + std::strerror(errno));
  const auto file_bytes = static_cast<std::uint64_t>(end);
  std::rewind(file.get());

  if (file_bytes < kCheckpointHeaderBytes)
    throw CheckpointError("checkpoint '" + path + "' has " + std::to_string(file_bytes) +
                          " bytes, less than the " + std::to_string(kCheckpointHeaderBytes) +
                          "-byte header");
  std::array<std::int32_t, 7> header{};
  if (std::fread(header.data(), sizeof(std::int32_t), header.size(), file.get()) != header.size())
    throw CheckpointError("cannot read the header of '" + path + "'");

  LoadedModel model{config_from_header(header), {}, nullptr};
  model.layout = layout_for(model.config);
  const std::uint64_t expected = checkpoint_file_bytes(model.config);
  if (file_bytes != expected)
    throw CheckpointError("checkpoint '" + path + "' is " +
                          (file_bytes < expected ? "truncated" : "longer than its header says") +
                          ": header (" + describe(model.config) + ") needs " +
                          std::to_string(expected) + " bytes, file has " +
                          std::to_string(file_bytes));

  model.weights = allocate_weights(model.layout);
  float* block = model.weights.get();
  const WeightLayout& layout = model.layout;
  // Everything up to and including rms_final is stored in block order.
  read_floats(file.get(), block, layout.rms_final + model.config.dim, path);
  if (std::fseek(file.get(), static_cast<long>(rotary_table_floats(model.config) * sizeof(float)),
                 SEEK_CUR) != 0)
    throw CheckpointError("cannot skip the rotary tables in '" + path + "'");
  if (!model.config.shared_classifier)
    read_floats(file.get(), block + layout.classifier,
                static_cast<std::uint64_t>(model.config.vocab_size) * model.config.dim, path);
  return model;
}

}  // namespace gmem_samples::llm
