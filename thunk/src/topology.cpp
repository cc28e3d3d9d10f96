#include "topology.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <dirent.h>

namespace gmem::thunk {
namespace {

// amdkfd property a GMEM kernel adds to each node's `properties` file.
constexpr const char kGmemNodeIdProperty[] = "gmem_node_id";

bool parse_decimal(const std::string& text, std::int64_t* value) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long parsed = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str()) return false;
  while (*end == ' ' || *end == '\t' || *end == '\n') ++end;
  if (*end != '\0') return false;
  *value = parsed;
  return true;
}

// Reads a whole sysfs attribute. Returns 0 or the errno of the failure;
// sysfs reports a refused read (EPERM) only when the read happens.
int read_file(const std::string& path, std::string* contents) {
  errno = 0;
  std::ifstream stream(path);
  if (!stream) return errno != 0 ? errno : ENOENT;
  std::ostringstream buffer;
  buffer << stream.rdbuf();
  if (stream.bad()) return errno != 0 ? errno : EIO;
  *contents = buffer.str();
  return 0;
}

std::string trim(const std::string& text) {
  const char* spaces = " \t\n";
  std::size_t first = text.find_first_not_of(spaces);
  if (first == std::string::npos) return "";
  std::size_t last = text.find_last_not_of(spaces);
  return text.substr(first, last - first + 1);
}

Status node_error(const std::string& path, const std::string& problem) {
  return Status::failure(HSAKMT_STATUS_ERROR,
                         "KFD topology: " + path + ": " + problem);
}

Status load_node(const std::string& folder, std::uint32_t node_id,
                 TopologyNode* node) {
  node->node_id = node_id;

  std::string gpu_id_text;
  int error = read_file(folder + "/gpu_id", &gpu_id_text);
  if (error == EPERM || error == EACCES) {
    node->accessible = false;
    return Status::success();
  }
  if (error != 0)
    return node_error(folder + "/gpu_id", std::strerror(error));
  std::int64_t gpu_id = 0;
  if (!parse_decimal(trim(gpu_id_text), &gpu_id) || gpu_id < 0 ||
      gpu_id > std::numeric_limits<std::uint32_t>::max())
    return node_error(folder + "/gpu_id",
                      "not a gpu_id: \"" + trim(gpu_id_text) + "\"");
  node->gpu_id = static_cast<std::uint32_t>(gpu_id);

  std::string properties;
  error = read_file(folder + "/properties", &properties);
  if (error == EPERM || error == EACCES) {
    node->accessible = false;
    return Status::success();
  }
  if (error != 0)
    return node_error(folder + "/properties", std::strerror(error));

  std::optional<std::int64_t> gmem_node_id;
  Status status = find_property(properties, kGmemNodeIdProperty, &gmem_node_id);
  if (!status.ok()) return node_error(folder + "/properties", status.message);
  if (gmem_node_id) {
    if (*gmem_node_id < 0 || *gmem_node_id > std::numeric_limits<std::int32_t>::max())
      return node_error(folder + "/properties",
                        "gmem_node_id out of range: " +
                            std::to_string(*gmem_node_id));
    node->gmem_node_id = static_cast<std::int32_t>(*gmem_node_id);
  }

  // unique_id is 64 bits unsigned, beyond find_property's signed range, and
  // only names GPUs for ROCR_VISIBLE_DEVICES: a malformed one is ignored.
  {
    std::istringstream lines(properties);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string key, text;
      if (!(fields >> key >> text) || key != "unique_id") continue;
      errno = 0;
      char* end = nullptr;
      unsigned long long value = std::strtoull(text.c_str(), &end, 10);
      if (errno == 0 && end != text.c_str() && *end == '\0' && value != 0)
        node->unique_id = value;
      break;
    }
  }

  // `name` is informational; a node without one is still usable.
  std::string name;
  if (read_file(folder + "/name", &name) == 0) node->name = trim(name);
  return Status::success();
}

}  // namespace

Status find_property(const std::string& properties_text, const std::string& key,
                     std::optional<std::int64_t>* value) {
  value->reset();
  std::istringstream lines(properties_text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string name, text, extra;
    if (!(fields >> name) || name != key) continue;
    std::int64_t parsed = 0;
    if (!(fields >> text) || (fields >> extra) || !parse_decimal(text, &parsed))
      return Status::failure(HSAKMT_STATUS_ERROR,
                             "malformed property line \"" + line + "\"");
    *value = parsed;
    return Status::success();
  }
  return Status::success();
}

Topology::Topology(std::vector<TopologyNode> nodes) : nodes_(std::move(nodes)) {}

Status Topology::load(const std::string& sysfs_root, Topology* topology) {
  const std::string nodes_folder = sysfs_root + "/" + kKfdNodesPath;
  DIR* directory = opendir(nodes_folder.c_str());
  if (directory == nullptr)
    return Status::failure(
        HSAKMT_STATUS_ERROR,
        "KFD topology: cannot open " + nodes_folder + ": " +
            std::strerror(errno) + " (is amdkfd loaded?)");

  std::vector<std::uint32_t> node_ids;
  while (dirent* entry = readdir(directory)) {
    std::int64_t node_id = 0;
    if (entry->d_name[0] == '.') continue;
    if (!parse_decimal(entry->d_name, &node_id) || node_id < 0 ||
        node_id > std::numeric_limits<std::uint32_t>::max())
      continue;  // not a node folder
    node_ids.push_back(static_cast<std::uint32_t>(node_id));
  }
  closedir(directory);
  std::sort(node_ids.begin(), node_ids.end());

  if (node_ids.empty())
    return Status::failure(HSAKMT_STATUS_ERROR,
                           "KFD topology: no nodes in " + nodes_folder);
  // libhsakmt numbers nodes 0..N-1 by these folders; a gap would make our
  // node ids disagree with the ones the application got from libhsakmt.
  for (std::size_t index = 0; index < node_ids.size(); ++index)
    if (node_ids[index] != index)
      return Status::failure(HSAKMT_STATUS_ERROR,
                             "KFD topology: node folders in " + nodes_folder +
                                 " are not numbered 0.." +
                                 std::to_string(node_ids.size() - 1));

  std::vector<TopologyNode> nodes(node_ids.size());
  for (std::uint32_t node_id : node_ids) {
    Status status = load_node(nodes_folder + "/" + std::to_string(node_id),
                              node_id, &nodes[node_id]);
    if (!status.ok()) return status;
  }

  for (const TopologyNode& node : nodes) {
    if (!node.accessible || !node.gmem_node_id) continue;
    for (const TopologyNode& other : nodes)
      if (&other != &node && other.gmem_node_id == node.gmem_node_id)
        return Status::failure(
            HSAKMT_STATUS_ERROR,
            "KFD topology: nodes " + std::to_string(node.node_id) + " and " +
                std::to_string(other.node_id) + " have the same gmem_node_id " +
                std::to_string(*node.gmem_node_id));
  }

  // A system with a single CPU node has all of its memory behind that node;
  // GMEM addresses host memory by NUMA node, and NUMA node 0 always exists.
  // With several CPU nodes we cannot know which NUMA node each one is, so
  // the kernel has to say it with gmem_node_id.
  std::size_t cpu_nodes = 0;
  bool zero_taken = false;
  for (const TopologyNode& node : nodes) {
    if (node.accessible && !node.is_gpu()) ++cpu_nodes;
    if (node.gmem_node_id == 0) zero_taken = true;
  }
  if (cpu_nodes == 1 && !zero_taken) {
    for (TopologyNode& node : nodes) {
      if (node.accessible && !node.is_gpu() && !node.gmem_node_id) {
        node.gmem_node_id = 0;
        node.gmem_node_id_assumed = true;
      }
    }
  }

  *topology = Topology(std::move(nodes));
  return Status::success();
}

const TopologyNode* Topology::find_by_node_id(std::uint32_t node_id) const {
  return node_id < nodes_.size() ? &nodes_[node_id] : nullptr;
}

const TopologyNode* Topology::find_by_gpu_id(std::uint32_t gpu_id) const {
  for (const TopologyNode& node : nodes_)
    if (node.accessible && node.is_gpu() && node.gpu_id == gpu_id) return &node;
  return nullptr;
}

const TopologyNode* Topology::find_by_gmem_node_id(
    std::int32_t gmem_node_id) const {
  for (const TopologyNode& node : nodes_)
    if (node.accessible && node.gmem_node_id == gmem_node_id) return &node;
  return nullptr;
}

const TopologyNode* Topology::system_memory_node() const {
  for (const TopologyNode& node : nodes_)
    if (node.accessible && !node.is_gpu()) return &node;
  return nullptr;
}

}  // namespace gmem::thunk
