// AMDKFD ioctls on a machine without an AMD GPU, against the semantics
// documented in include/uapi/linux/kfd_ioctl.h. Both SVM backends (the
// driver's own ranges and GMEM's attributes) must give these results.
#include <fstream>
#include <map>
#include <sstream>

#include "kfd_fixture.h"

namespace {

using kfdtest::AlignedBuffer;
using kfdtest::KfdTest;

TEST_F(KfdTest, GetVersion) {
  kfd_ioctl_get_version_args version{};
  ASSERT_EQ(ioctl(fd_, AMDKFD_IOC_GET_VERSION, &version), 0) << strerror(errno);
  EXPECT_EQ(version.major_version, 1u);
  EXPECT_GE(version.minor_version, 17u) << "Linux 6.12 reports KFD 1.17";
  RecordProperty("kfd_version", std::to_string(version.major_version) + "." +
                                    std::to_string(version.minor_version));
}

TEST_F(KfdTest, XnackModeQuery) {
  kfd_ioctl_set_xnack_mode_args mode{};
  mode.xnack_enabled = -1;  // query only
  ASSERT_EQ(ioctl(fd_, AMDKFD_IOC_SET_XNACK_MODE, &mode), 0) << strerror(errno);
  EXPECT_TRUE(mode.xnack_enabled == 0 || mode.xnack_enabled == 1) << mode.xnack_enabled;
}

TEST_F(KfdTest, SvmGetAttrDefaultsOnMalloc) {
  AlignedBuffer buffer(4 << 20);
  ASSERT_NE(buffer.ptr, nullptr);
  auto attrs = AllQueryableAttrs();
  ASSERT_EQ(GetAttr(buffer.addr(), buffer.size, &attrs), 0);
  ExpectDefaults(attrs);
}

TEST_F(KfdTest, SvmGetAttrDefaultsOnAnonymousMmap) {
  size_t bytes = 8 << 20;
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto attrs = AllQueryableAttrs();
  EXPECT_EQ(GetAttr(reinterpret_cast<uint64_t>(p), bytes, &attrs), 0);
  ExpectDefaults(attrs);
  munmap(p, bytes);
}

TEST_F(KfdTest, SvmRejectsUnalignedAndEmptyRanges) {
  AlignedBuffer buffer(1 << 20);
  auto attrs = AllQueryableAttrs();
  EXPECT_EQ(GetAttr(buffer.addr() + 8, 4096, &attrs), EINVAL);
  EXPECT_EQ(GetAttr(buffer.addr(), 4095, &attrs), EINVAL);
  EXPECT_EQ(GetAttr(buffer.addr(), 0, &attrs), EINVAL);
  EXPECT_EQ(GetAttr(0, 4096, &attrs), EINVAL);
}

TEST_F(KfdTest, SvmUnmappedRangeIsEfault) {
  size_t bytes = 4 << 20;
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  uint64_t addr = reinterpret_cast<uint64_t>(p);
  ASSERT_EQ(munmap(reinterpret_cast<void *>(addr + bytes / 2), bytes / 2), 0);
  auto attrs = AllQueryableAttrs();
  EXPECT_EQ(GetAttr(addr + bytes / 2, bytes / 2, &attrs), EFAULT);
  // Partly mapped: the hole makes the whole request fail.
  EXPECT_EQ(GetAttr(addr, bytes, &attrs), EFAULT);
  EXPECT_EQ(GetAttr(addr, bytes / 2, &attrs), 0);
  munmap(p, bytes / 2);
}

TEST_F(KfdTest, SvmWrapAroundIsEoverflow) {
  auto attrs = AllQueryableAttrs();
  EXPECT_EQ(GetAttr(0xfffffffffffff000ull, 0x2000, &attrs), EOVERFLOW);
}

TEST_F(KfdTest, SvmGetAttrRejectsSetOnlyAndUnknownTypes) {
  AlignedBuffer buffer(1 << 20);
  for (uint32_t type : {uint32_t{KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE},
                        uint32_t{KFD_IOCTL_SVM_ATTR_NO_ACCESS}, 0x100u}) {
    std::vector<kfd_ioctl_svm_attribute> attrs = {{type, 0}};
    EXPECT_EQ(GetAttr(buffer.addr(), buffer.size, &attrs), EINVAL) << "type " << type;
  }
}

TEST_F(KfdTest, SvmAccessOfUnknownGpuIsEinval) {
  AlignedBuffer buffer(1 << 20);
  std::vector<kfd_ioctl_svm_attribute> attrs = {{KFD_IOCTL_SVM_ATTR_ACCESS, 0x1234}};
  EXPECT_EQ(GetAttr(buffer.addr(), buffer.size, &attrs), EINVAL);
}

TEST_F(KfdTest, SvmUnknownOpIsEinval) {
  AlignedBuffer buffer(1 << 20);
  auto attrs = AllQueryableAttrs();
  EXPECT_EQ(Svm(7, buffer.addr(), buffer.size, &attrs), EINVAL);
}

TEST_F(KfdTest, SvmNattrBeyondBufferIsEinval) {
  // A header claiming more attributes than the ioctl size carries must be
  // refused before anything reads past the copied buffer.
  AlignedBuffer buffer(1 << 20);
  auto attrs = AllQueryableAttrs();
  EXPECT_EQ(Svm(KFD_IOCTL_SVM_OP_GET_ATTR, buffer.addr(), buffer.size, &attrs, 1u << 30), EINVAL);
  EXPECT_EQ(Svm(KFD_IOCTL_SVM_OP_GET_ATTR, buffer.addr(), buffer.size, &attrs, 0xffffffffu),
            EINVAL);
}

}  // namespace

namespace {

// "name value" lines of one KFD topology node's properties file.
std::map<std::string, long long> NodeProperties(int node) {
  std::ifstream in("/sys/class/kfd/kfd/topology/nodes/" + std::to_string(node) + "/properties");
  std::map<std::string, long long> props;
  std::string name;
  long long value;
  while (in >> name >> value) props[name] = value;
  return props;
}

int CountNumaNodes() {
  int n = 0;
  while (access(("/sys/devices/system/node/node" + std::to_string(n)).c_str(), F_OK) == 0) n++;
  return n ? n : 1;
}

// GMEM kernels publish, for every CPU node, the NUMA node hmadvise() knows
// its memory by: user space (the thunk) maps KFD nodes to GMEM nodes with it.
TEST(KfdTopology, CpuNodesPublishTheirGmemNodeId) {
  if (access("/sys/kernel/mm/gmem", F_OK) != 0) GTEST_SKIP() << "not a GMEM kernel";
  int cpu_nodes = 0;
  for (int node = 0;; node++) {
    auto props = NodeProperties(node);
    if (props.empty()) break;
    if (props["simd_count"] != 0 || props["cpu_cores_count"] == 0) continue;
    cpu_nodes++;
    ASSERT_EQ(props.count("gmem_node_id"), 1u) << "KFD node " << node;
    EXPECT_GE(props["gmem_node_id"], 0);
    EXPECT_LT(props["gmem_node_id"], CountNumaNodes()) << "KFD node " << node;
  }
  EXPECT_GE(cpu_nodes, 1) << "no CPU node in the KFD topology";
}

}  // namespace
