// HIP device ordinals -> KFD nodes under ROCR_VISIBLE_DEVICES and
// HIP_VISIBLE_DEVICES, as ROCr and HIP number GPUs.
#include <cstdlib>
#include <vector>

#include <gtest/gtest.h>

#include "hip_devices.h"

namespace gmem::thunk {
namespace {

using Nodes = std::vector<std::uint32_t>;

// CPU node 0, GPU nodes 1..3 (as on a machine with three GPUs), and a
// second CPU node 4 to show CPU nodes never become HIP devices.
Topology three_gpus() {
  std::vector<TopologyNode> nodes(5);
  for (std::uint32_t i = 0; i < 5; ++i) nodes[i].node_id = i;
  nodes[1].gpu_id = 0x1111;
  nodes[1].unique_id = 0x1d2c3b4a59687766ULL;
  nodes[2].gpu_id = 0x2222;
  nodes[2].unique_id = 0xfedcba9876543210ULL;  // above INT64_MAX
  nodes[3].gpu_id = 0x3333;
  return Topology(nodes);
}

Nodes nodes_for(const char* rocr, const char* hip) {
  DeviceVisibility visibility;
  visibility.rocr_visible_devices = rocr;
  visibility.hip_visible_devices = hip;
  return hip_device_nodes(three_gpus(), visibility);
}

TEST(HipDevices, WithoutVariablesTheGpusInNodeOrder) {
  EXPECT_EQ(nodes_for(nullptr, nullptr), (Nodes{1, 2, 3}));
}

TEST(HipDevices, RocrVisibleDevicesSelectsAndOrders) {
  EXPECT_EQ(nodes_for("2,0", nullptr), (Nodes{3, 1}));
  EXPECT_EQ(nodes_for(" 1 ", nullptr), (Nodes{2}));
}

TEST(HipDevices, HipVisibleDevicesIndexesRocrsList) {
  // ROCr keeps GPUs 2 and 0 (nodes 3, 1); HIP device 0 is then ROCr's 1.
  EXPECT_EQ(nodes_for("2,0", "1"), (Nodes{1}));
  EXPECT_EQ(nodes_for(nullptr, "2,1"), (Nodes{3, 2}));
}

TEST(HipDevices, AListStopsAtItsFirstEntryThatNamesNothing) {
  EXPECT_EQ(nodes_for("0,7,2", nullptr), (Nodes{1}));
  EXPECT_EQ(nodes_for("1,x,0", nullptr), (Nodes{2}));
  EXPECT_EQ(nodes_for(nullptr, "0,0,1"), (Nodes{1}));  // a repeat ends it too
  EXPECT_EQ(nodes_for(nullptr, "-1"), (Nodes{}));
}

TEST(HipDevices, AnEmptyVariableHidesEveryGpu) {
  EXPECT_EQ(nodes_for("", nullptr), (Nodes{}));
  EXPECT_EQ(nodes_for(nullptr, ""), (Nodes{}));
}

TEST(HipDevices, RocrUuidsNameGpusByUniqueId) {
  EXPECT_EQ(rocr_uuid(0xfedcba9876543210ULL), "GPU-fedcba9876543210");
  EXPECT_EQ(nodes_for("GPU-FEDCBA9876543210,GPU-1d2c3b4a59687766", nullptr),
            (Nodes{2, 1}));
  // Node 3 has no unique_id, so no UUID names it.
  EXPECT_EQ(nodes_for("GPU-0000000000000000", nullptr), (Nodes{}));
}

TEST(HipDevices, TheEnvironmentIsReadWithCudaAsHipsFallback) {
  unsetenv("HIP_VISIBLE_DEVICES");
  setenv("CUDA_VISIBLE_DEVICES", "1", 1);
  setenv("ROCR_VISIBLE_DEVICES", "0,2", 1);
  DeviceVisibility visibility = device_visibility_from_environment();
  EXPECT_STREQ(visibility.hip_visible_devices, "1");
  EXPECT_EQ(hip_device_nodes(three_gpus(), visibility), (Nodes{3}));
  setenv("HIP_VISIBLE_DEVICES", "0", 1);  // HIP's own name wins
  EXPECT_STREQ(device_visibility_from_environment().hip_visible_devices, "0");
  unsetenv("HIP_VISIBLE_DEVICES");
  unsetenv("CUDA_VISIBLE_DEVICES");
  unsetenv("ROCR_VISIBLE_DEVICES");
}

}  // namespace
}  // namespace gmem::thunk
