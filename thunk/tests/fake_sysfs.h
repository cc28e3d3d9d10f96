// A KFD topology tree under a temporary folder, shaped like
// /sys/class/kfd/kfd/topology/nodes/N/{gpu_id,properties,name}.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace gmem::thunk::testing {

class FakeSysfs {
 public:
  FakeSysfs() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "gmem-thunk-sysfs-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    root_ = pattern;
    std::filesystem::create_directories(nodes());
  }
  ~FakeSysfs() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  FakeSysfs(const FakeSysfs&) = delete;
  FakeSysfs& operator=(const FakeSysfs&) = delete;

  const std::string& root() const { return root_; }
  std::filesystem::path nodes() const {
    return std::filesystem::path(root_) / "class/kfd/kfd/topology/nodes";
  }

  // A node as amdkfd writes it; gmem_node_id adds the GMEM kernel's line.
  void add_node(std::uint32_t node_id, std::uint32_t gpu_id,
                std::optional<int> gmem_node_id, const std::string& name = "") {
    std::string properties = "cpu_cores_count " +
                             std::string(gpu_id == 0 ? "8" : "0") +
                             "\nsimd_count " + (gpu_id == 0 ? "0" : "440") +
                             "\nmem_banks_count 1\n";
    if (gmem_node_id)
      properties += "gmem_node_id " + std::to_string(*gmem_node_id) + "\n";
    properties += "location_id 0\ndomain 0\n";
    add_raw_node(node_id, std::to_string(gpu_id) + "\n", properties, name + "\n");
  }

  void add_raw_node(std::uint32_t node_id, const std::string& gpu_id,
                    const std::string& properties, const std::string& name) {
    std::filesystem::path folder = nodes() / std::to_string(node_id);
    std::filesystem::create_directories(folder);
    write(folder / "gpu_id", gpu_id);
    write(folder / "properties", properties);
    write(folder / "name", name);
  }

  // The standard machine of the tests: CPU node 0 and two GPUs, on a GMEM
  // kernel (which has /sys/kernel/mm/gmem).
  void add_gmem_machine() {
    std::filesystem::create_directories(std::filesystem::path(root_) / "kernel/mm/gmem/nodes");
    add_node(0, 0, 0);
    add_node(1, 0xAAAA, 2, "gfx90a");
    add_node(2, 0xBBBB, 3, "gfx1030");
  }
  void add_stock_machine() {
    add_node(0, 0, std::nullopt);
    add_node(1, 0xAAAA, std::nullopt, "gfx90a");
    add_node(2, 0xBBBB, std::nullopt, "gfx1030");
  }

  static void write(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
  }

 private:
  std::string root_;
};

}  // namespace gmem::thunk::testing
