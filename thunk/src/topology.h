// The KFD topology as sysfs shows it, with the three numberings a node has:
// KFD node id (libhsakmt's NodeId), KFD gpu_id (what AMDKFD_IOC_SVM takes)
// and GMEM node id (what hmadvise takes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "status.h"

namespace gmem::thunk {

// Relative to the sysfs root, where amdkfd publishes one folder per node.
inline constexpr const char kKfdNodesPath[] = "class/kfd/kfd/topology/nodes";

struct TopologyNode {
  std::uint32_t node_id = 0;
  std::uint32_t gpu_id = 0;  // KFD gives CPU nodes gpu_id 0
  std::optional<std::int32_t> gmem_node_id;
  // True when gmem_node_id was not published but follows from the topology
  // (the only CPU node of the system is system memory, NUMA node 0).
  bool gmem_node_id_assumed = false;
  // False when the kernel refused to show the node to this process (device
  // cgroup): it exists but nothing can be done with it.
  bool accessible = true;
  std::string name;  // "gfx90a" for GPUs, often empty for CPUs
  // The `unique_id` property of a GPU (ROCr's UUID is built from it);
  // absent on CPU nodes and on GPUs that do not report one.
  std::optional<std::uint64_t> unique_id;

  bool is_gpu() const { return gpu_id != 0; }
};

class Topology {
 public:
  Topology() = default;
  explicit Topology(std::vector<TopologyNode> nodes);

  // Reads <sysfs_root>/class/kfd/kfd/topology/nodes/*.
  static Status load(const std::string& sysfs_root, Topology* topology);

  const std::vector<TopologyNode>& nodes() const { return nodes_; }
  const TopologyNode* find_by_node_id(std::uint32_t node_id) const;
  const TopologyNode* find_by_gpu_id(std::uint32_t gpu_id) const;
  const TopologyNode* find_by_gmem_node_id(std::int32_t gmem_node_id) const;
  // The node libhsakmt accepts for "system memory": the first CPU node.
  const TopologyNode* system_memory_node() const;

 private:
  std::vector<TopologyNode> nodes_;
};

// Parses the text of a node's `properties` file ("name value" per line) and
// returns the value of `key`, or nullopt when the line is absent. A present
// line whose value is not a decimal integer is an error.
Status find_property(const std::string& properties_text, const std::string& key,
                     std::optional<std::int64_t>* value);

}  // namespace gmem::thunk
