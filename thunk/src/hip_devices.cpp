#include "hip_devices.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>

namespace gmem::thunk {
namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> entries;
  std::stringstream stream(text);
  std::string entry;
  while (std::getline(stream, entry, ',')) {
    const auto first = entry.find_first_not_of(" \t");
    const auto last = entry.find_last_not_of(" \t");
    entries.push_back(first == std::string::npos ? ""
                                                 : entry.substr(first, last - first + 1));
  }
  return entries;
}

std::optional<std::size_t> parse_index(const std::string& text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      }))
    return std::nullopt;
  if (text.size() > 9) return std::nullopt;  // no machine has a billion GPUs
  return static_cast<std::size_t>(std::stoul(text));
}

bool same_text_ignoring_case(const std::string& a, const std::string& b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Which of `candidates` a list keeps, in list order. `pick` maps one entry
// to an index into candidates, or nullopt for an entry naming nothing.
template <typename Pick>
std::vector<std::uint32_t> filter(const std::vector<std::uint32_t>& candidates,
                                  const char* list, Pick pick) {
  if (list == nullptr) return candidates;
  std::vector<std::uint32_t> kept;
  for (const std::string& entry : split_list(list)) {
    std::optional<std::size_t> index = pick(entry);
    if (!index || *index >= candidates.size()) break;
    const std::uint32_t node = candidates[*index];
    if (std::find(kept.begin(), kept.end(), node) != kept.end()) break;
    kept.push_back(node);
  }
  return kept;
}

}  // namespace

std::string rocr_uuid(std::uint64_t unique_id) {
  char text[32];
  std::snprintf(text, sizeof(text), "GPU-%016" PRIx64, unique_id);
  return text;
}

DeviceVisibility device_visibility_from_environment() {
  DeviceVisibility visibility;
  visibility.rocr_visible_devices = std::getenv("ROCR_VISIBLE_DEVICES");
  visibility.hip_visible_devices = std::getenv("HIP_VISIBLE_DEVICES");
  if (visibility.hip_visible_devices == nullptr)
    visibility.hip_visible_devices = std::getenv("CUDA_VISIBLE_DEVICES");
  return visibility;
}

std::vector<std::uint32_t> hip_device_nodes(const Topology& topology,
                                            const DeviceVisibility& visibility) {
  std::vector<std::uint32_t> gpus;
  for (const TopologyNode& node : topology.nodes())
    if (node.accessible && node.is_gpu()) gpus.push_back(node.node_id);

  std::vector<std::uint32_t> rocr_visible =
      filter(gpus, visibility.rocr_visible_devices,
             [&](const std::string& entry) -> std::optional<std::size_t> {
               if (entry.size() > 4 && same_text_ignoring_case(entry.substr(0, 4), "GPU-")) {
                 for (std::size_t i = 0; i < gpus.size(); ++i) {
                   const TopologyNode* node = topology.find_by_node_id(gpus[i]);
                   if (node->unique_id &&
                       same_text_ignoring_case(entry, rocr_uuid(*node->unique_id)))
                     return i;
                 }
                 return std::nullopt;
               }
               return parse_index(entry);
             });
  return filter(rocr_visible, visibility.hip_visible_devices, parse_index);
}

}  // namespace gmem::thunk
