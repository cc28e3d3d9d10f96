// AMDKFD ioctls on a machine without an AMD GPU, against the semantics
// documented in include/uapi/linux/kfd_ioctl.h and kept by the GMEM port.
#include <fcntl.h>
#include <linux/kfd_ioctl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

constexpr uint32_t kUndefinedLocation = KFD_IOCTL_SVM_LOCATION_UNDEFINED;
constexpr uint32_t kDefaultFlags = KFD_IOCTL_SVM_FLAG_HOST_ACCESS | KFD_IOCTL_SVM_FLAG_COHERENT;
constexpr uint32_t kDefaultGranularity = 9;  // amdgpu.svm_default_granularity: 2 MiB

class KfdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = open("/dev/kfd", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd_, 0) << "open /dev/kfd: " << strerror(errno);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
  }

  // AMDKFD_IOC_SVM carries a variable number of attributes after the fixed
  // header; the ioctl number must encode the whole size, as libhsakmt does.
  int Svm(uint32_t op, uint64_t start, uint64_t size,
          std::vector<kfd_ioctl_svm_attribute> *attrs, size_t claimed_nattr = SIZE_MAX) {
    size_t nattr = attrs->size();
    size_t bytes = sizeof(kfd_ioctl_svm_args) + nattr * sizeof(kfd_ioctl_svm_attribute);
    std::vector<uint8_t> buffer(bytes);
    auto *args = reinterpret_cast<kfd_ioctl_svm_args *>(buffer.data());
    args->start_addr = start;
    args->size = size;
    args->op = op;
    args->nattr = claimed_nattr == SIZE_MAX ? nattr : claimed_nattr;
    memcpy(args->attrs, attrs->data(), nattr * sizeof(kfd_ioctl_svm_attribute));
    unsigned long request = _IOC(_IOC_READ | _IOC_WRITE, AMDKFD_IOCTL_BASE, 0x20, bytes);
    int ret = ioctl(fd_, request, args);
    if (ret == 0) memcpy(attrs->data(), args->attrs, nattr * sizeof(kfd_ioctl_svm_attribute));
    return ret == 0 ? 0 : errno;
  }

  int GetAttr(uint64_t start, uint64_t size, std::vector<kfd_ioctl_svm_attribute> *attrs) {
    return Svm(KFD_IOCTL_SVM_OP_GET_ATTR, start, size, attrs);
  }

  static std::vector<kfd_ioctl_svm_attribute> AllQueryableAttrs() {
    return {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, 0},
            {KFD_IOCTL_SVM_ATTR_PREFETCH_LOC, 0},
            {KFD_IOCTL_SVM_ATTR_SET_FLAGS, 0},
            {KFD_IOCTL_SVM_ATTR_CLR_FLAGS, 0},
            {KFD_IOCTL_SVM_ATTR_GRANULARITY, 0}};
  }

  static void ExpectDefaults(const std::vector<kfd_ioctl_svm_attribute> &attrs) {
    ASSERT_EQ(attrs.size(), 5u);
    EXPECT_EQ(attrs[0].value, kUndefinedLocation);
    EXPECT_EQ(attrs[1].value, kUndefinedLocation);
    EXPECT_EQ(attrs[2].value, kDefaultFlags);
    EXPECT_EQ(attrs[3].value, ~kDefaultFlags);
    EXPECT_EQ(attrs[4].value, kDefaultGranularity);
  }

  int fd_ = -1;
};

struct AlignedBuffer {
  explicit AlignedBuffer(size_t bytes) : size(bytes) {
    if (posix_memalign(&ptr, 4096, bytes)) ptr = nullptr;
    if (ptr) memset(ptr, 0x5a, bytes);
  }
  ~AlignedBuffer() { free(ptr); }
  uint64_t addr() const { return reinterpret_cast<uint64_t>(ptr); }
  void *ptr = nullptr;
  size_t size;
};

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
