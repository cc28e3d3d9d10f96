// Node-id translation from a fake sysfs tree.
#include <gtest/gtest.h>

#include "fake_sysfs.h"
#include "topology.h"

namespace gmem::thunk {
namespace {

using testing::FakeSysfs;

TEST(Topology, GmemKernelTreeGivesAllThreeNumberings) {
  FakeSysfs sysfs;
  sysfs.add_gmem_machine();
  Topology topology;
  Status status = Topology::load(sysfs.root(), &topology);
  ASSERT_TRUE(status.ok()) << status.message;
  ASSERT_EQ(topology.nodes().size(), 3u);

  const TopologyNode& cpu = topology.nodes()[0];
  EXPECT_FALSE(cpu.is_gpu());
  EXPECT_EQ(cpu.gpu_id, 0u);
  EXPECT_EQ(cpu.gmem_node_id, 0);
  EXPECT_FALSE(cpu.gmem_node_id_assumed);

  const TopologyNode& gpu = topology.nodes()[1];
  EXPECT_TRUE(gpu.is_gpu());
  EXPECT_EQ(gpu.node_id, 1u);
  EXPECT_EQ(gpu.gpu_id, 0xAAAAu);
  EXPECT_EQ(gpu.gmem_node_id, 2);
  EXPECT_EQ(gpu.name, "gfx90a");

  EXPECT_EQ(topology.find_by_gpu_id(0xBBBB)->node_id, 2u);
  EXPECT_EQ(topology.find_by_gmem_node_id(3)->node_id, 2u);
  EXPECT_EQ(topology.find_by_gmem_node_id(2)->gpu_id, 0xAAAAu);
  EXPECT_EQ(topology.find_by_gmem_node_id(0)->node_id, 0u);
  EXPECT_EQ(topology.find_by_gpu_id(0x1234), nullptr);
  EXPECT_EQ(topology.find_by_gpu_id(0), nullptr);  // gpu_id 0 is not a GPU
  EXPECT_EQ(topology.find_by_gmem_node_id(7), nullptr);
  EXPECT_EQ(topology.find_by_node_id(3), nullptr);
  EXPECT_EQ(topology.system_memory_node()->node_id, 0u);
}

TEST(Topology, StockKernelTreeHasNoGmemIdsExceptTheAssumedCpu) {
  FakeSysfs sysfs;
  sysfs.add_stock_machine();
  Topology topology;
  ASSERT_TRUE(Topology::load(sysfs.root(), &topology).ok());
  EXPECT_EQ(topology.nodes()[0].gmem_node_id, 0);
  EXPECT_TRUE(topology.nodes()[0].gmem_node_id_assumed);
  EXPECT_FALSE(topology.nodes()[1].gmem_node_id.has_value());
  EXPECT_FALSE(topology.nodes()[2].gmem_node_id.has_value());
}

TEST(Topology, SeveralCpuNodesWithoutGmemIdsGetNoAssumedId) {
  FakeSysfs sysfs;
  sysfs.add_node(0, 0, std::nullopt);
  sysfs.add_node(1, 0, std::nullopt);
  sysfs.add_node(2, 0xAAAA, 2);
  Topology topology;
  ASSERT_TRUE(Topology::load(sysfs.root(), &topology).ok());
  EXPECT_FALSE(topology.nodes()[0].gmem_node_id.has_value());
  EXPECT_FALSE(topology.nodes()[1].gmem_node_id.has_value());
}

TEST(Topology, NodesAreOrderedNumericallyNotByName) {
  FakeSysfs sysfs;
  for (std::uint32_t node = 0; node < 12; ++node)
    sysfs.add_node(node, node == 0 ? 0 : 0x100 + node, static_cast<int>(node));
  Topology topology;
  ASSERT_TRUE(Topology::load(sysfs.root(), &topology).ok());
  ASSERT_EQ(topology.nodes().size(), 12u);
  for (std::uint32_t node = 0; node < 12; ++node) {
    EXPECT_EQ(topology.nodes()[node].node_id, node);
    if (node != 0) {
      EXPECT_EQ(topology.nodes()[node].gpu_id, 0x100 + node);
    }
  }
}

TEST(Topology, MissingTreeSaysWhereItLooked) {
  FakeSysfs sysfs;
  Topology topology;
  Status status = Topology::load(sysfs.root() + "/nonexistent", &topology);
  EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
  EXPECT_NE(status.message.find("class/kfd/kfd/topology/nodes"), std::string::npos);
}

TEST(Topology, EmptyTreeIsAnError) {
  FakeSysfs sysfs;
  Topology topology;
  Status status = Topology::load(sysfs.root(), &topology);
  EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
  EXPECT_NE(status.message.find("no nodes"), std::string::npos);
}

TEST(Topology, GapInNodeNumbersIsAnError) {
  FakeSysfs sysfs;
  sysfs.add_node(0, 0, 0);
  sysfs.add_node(2, 0xAAAA, 2);
  Topology topology;
  Status status = Topology::load(sysfs.root(), &topology);
  EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
  EXPECT_NE(status.message.find("not numbered"), std::string::npos);
}

TEST(Topology, MalformedValuesAreErrorsNamingTheFile) {
  struct Case {
    const char* label;
    std::string gpu_id;
    std::string properties;
    const char* file;
  };
  const Case cases[] = {
      {"gpu_id_text", "abc\n", "simd_count 0\n", "gpu_id"},
      {"gpu_id_negative", "-5\n", "simd_count 0\n", "gpu_id"},
      {"gpu_id_too_big", "4294967296\n", "simd_count 0\n", "gpu_id"},
      {"gmem_id_text", "0\n", "gmem_node_id x\n", "properties"},
      {"gmem_id_missing_value", "0\n", "gmem_node_id\n", "properties"},
      {"gmem_id_two_values", "0\n", "gmem_node_id 1 2\n", "properties"},
      {"gmem_id_negative", "0\n", "gmem_node_id -1\n", "properties"},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.label);
    FakeSysfs sysfs;
    sysfs.add_raw_node(0, test.gpu_id, test.properties, "\n");
    Topology topology;
    Status status = Topology::load(sysfs.root(), &topology);
    EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
    EXPECT_NE(status.message.find(test.file), std::string::npos) << status.message;
  }
}

TEST(Topology, DuplicateGmemNodeIdsAreAnError) {
  FakeSysfs sysfs;
  sysfs.add_node(0, 0, 0);
  sysfs.add_node(1, 0xAAAA, 2);
  sysfs.add_node(2, 0xBBBB, 2);
  Topology topology;
  Status status = Topology::load(sysfs.root(), &topology);
  EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
  EXPECT_NE(status.message.find("same gmem_node_id 2"), std::string::npos);
}

TEST(Topology, NodeWithoutNameFileIsStillUsable) {
  FakeSysfs sysfs;
  sysfs.add_node(0, 0, 0);
  sysfs.add_node(1, 0xAAAA, 2);
  std::filesystem::remove(sysfs.nodes() / "1" / "name");
  Topology topology;
  ASSERT_TRUE(Topology::load(sysfs.root(), &topology).ok());
  EXPECT_EQ(topology.nodes()[1].name, "");
  EXPECT_EQ(topology.nodes()[1].gmem_node_id, 2);
}

TEST(TopologyProperties, FindsOnlyTheExactKey) {
  const std::string text =
      "cpu_cores_count 0\nsimd_count 440\ngmem_node_id_extra 9\n"
      "gmem_node_id 5\nlocation_id 768\n";
  std::optional<std::int64_t> value;
  ASSERT_TRUE(find_property(text, "gmem_node_id", &value).ok());
  EXPECT_EQ(value, 5);
  ASSERT_TRUE(find_property(text, "simd_count", &value).ok());
  EXPECT_EQ(value, 440);
  ASSERT_TRUE(find_property(text, "gmem", &value).ok());
  EXPECT_FALSE(value.has_value());
  ASSERT_TRUE(find_property("", "gmem_node_id", &value).ok());
  EXPECT_FALSE(value.has_value());
}

}  // namespace
}  // namespace gmem::thunk
