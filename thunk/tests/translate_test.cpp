// Every hint to its exact kernel call, for GPU and CPU nodes, on both
// backends. Expected values are written as the raw numbers of the uapi
// (kfd_ioctl.h, the provisional gmem.h) so a wrong constant in the library
// cannot hide behind the same wrong constant here.
#include <cstdint>
#include <cstring>
#include <limits>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "translate.h"

namespace gmem::thunk {
namespace {

constexpr std::size_t kPage = 4096;
constexpr std::uintptr_t kStart = 0x7f0000200000;
constexpr std::uint64_t kSize = 0x200000;
constexpr std::uint32_t kCpuNode = 0;
constexpr std::uint32_t kGpuNode = 1;
constexpr std::uint32_t kGpuId = 0xAAAA;
constexpr int kGpuHnid = 2;
constexpr std::uint32_t kNoNode = 0xFFFFFFFF;

Topology gmem_topology() {
  TopologyNode cpu;
  cpu.node_id = 0;
  cpu.gpu_id = 0;
  cpu.gmem_node_id = 0;
  TopologyNode gpu;
  gpu.node_id = 1;
  gpu.gpu_id = kGpuId;
  gpu.gmem_node_id = kGpuHnid;
  TopologyNode second_gpu;
  second_gpu.node_id = 2;
  second_gpu.gpu_id = 0xBBBB;
  second_gpu.gmem_node_id = 3;
  return Topology({cpu, gpu, second_gpu});
}

struct RawAttribute {
  std::uint32_t type;
  std::uint32_t value;
};

// Compares an attribute array with the expected one byte for byte.
template <typename Attribute>
void expect_bytes(const std::vector<Attribute>& actual,
                  const std::vector<RawAttribute>& expected) {
  static_assert(sizeof(Attribute) == sizeof(RawAttribute));
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(&actual[i], &expected[i], sizeof(RawAttribute)))
        << "attribute " << i << ": got {" << actual[i].type << ", 0x"
        << std::hex << actual[i].value << "}, want {" << expected[i].type
        << ", 0x" << expected[i].value << "}";
  }
}

Plan plan_ok(HSA_GMEM_HINT hint, std::uint32_t node, Backend backend) {
  Plan plan;
  Status status = plan_advice({node, kStart, kSize, hint}, gmem_topology(),
                              backend, kPage, &plan);
  EXPECT_TRUE(status.ok()) << status.message;
  return plan;
}

struct KfdCase {
  const char* label;
  HSA_GMEM_HINT hint;
  std::uint32_t node;
  std::vector<RawAttribute> hsakmt;  // values are KFD node ids
  std::vector<RawAttribute> ioctl;   // values are gpu_ids
};

// KFD_IOCTL_SVM_ATTR_*: PREFERRED_LOC 0, PREFETCH_LOC 1, ACCESS 2,
// ACCESS_IN_PLACE 3, NO_ACCESS 4, SET_FLAGS 5, CLR_FLAGS 6.
// KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY 0x20, LOCATION_UNDEFINED 0xffffffff.
const std::vector<KfdCase>& kfd_cases() {
  static const std::vector<KfdCase> cases = {
      {"prefetch_gpu", HSA_GMEM_HINT_PREFETCH, kGpuNode, {{1, 1}}, {{1, kGpuId}}},
      {"prefetch_cpu", HSA_GMEM_HINT_PREFETCH, kCpuNode, {{1, 0}}, {{1, 0}}},
      {"dontneed_gpu", HSA_GMEM_HINT_DONTNEED, kGpuNode, {{1, 0}}, {{1, 0}}},
      {"preferred_gpu", HSA_GMEM_HINT_PREFERRED_LOC, kGpuNode, {{0, 1}}, {{0, kGpuId}}},
      {"preferred_cpu", HSA_GMEM_HINT_PREFERRED_LOC, kCpuNode, {{0, 0}}, {{0, 0}}},
      {"unset_preferred_gpu", HSA_GMEM_HINT_UNSET_PREFERRED_LOC, kGpuNode,
       {{0, 0xFFFFFFFF}}, {{0, 0xFFFFFFFF}}},
      {"unset_preferred_cpu", HSA_GMEM_HINT_UNSET_PREFERRED_LOC, kCpuNode,
       {{0, 0xFFFFFFFF}}, {{0, 0xFFFFFFFF}}},
      {"accessed_by_gpu", HSA_GMEM_HINT_ACCESSED_BY, kGpuNode, {{3, 1}}, {{3, kGpuId}}},
      {"unset_accessed_by_gpu", HSA_GMEM_HINT_UNSET_ACCESSED_BY, kGpuNode,
       {{2, 1}}, {{2, kGpuId}}},
      {"no_access_gpu", HSA_GMEM_HINT_NO_ACCESS, kGpuNode, {{4, 1}}, {{4, kGpuId}}},
      {"unset_no_access_gpu", HSA_GMEM_HINT_UNSET_NO_ACCESS, kGpuNode, {{2, 1}},
       {{2, kGpuId}}},
      {"read_mostly_gpu", HSA_GMEM_HINT_READ_MOSTLY, kGpuNode, {{5, 0x20}}, {{5, 0x20}}},
      {"read_mostly_cpu", HSA_GMEM_HINT_READ_MOSTLY, kCpuNode, {{5, 0x20}}, {{5, 0x20}}},
      {"unset_read_mostly_gpu", HSA_GMEM_HINT_UNSET_READ_MOSTLY, kGpuNode,
       {{6, 0x20}}, {{6, 0x20}}},
      {"unset_read_mostly_cpu", HSA_GMEM_HINT_UNSET_READ_MOSTLY, kCpuNode,
       {{6, 0x20}}, {{6, 0x20}}},
  };
  return cases;
}

TEST(TranslateKfd, EveryHintGivesItsExactAttributeList) {
  for (const KfdCase& test : kfd_cases()) {
    SCOPED_TRACE(test.label);
    Plan plan = plan_ok(test.hint, test.node, Backend::kfd_svm);
    const auto* call = std::get_if<SvmSetAttrCall>(&plan);
    ASSERT_NE(call, nullptr);
    EXPECT_EQ(call->start, kStart);
    EXPECT_EQ(call->size, kSize);
    expect_bytes(call->hsakmt_attributes, test.hsakmt);
    expect_bytes(call->ioctl_attributes, test.ioctl);
  }
}

TEST(TranslateKfd, SecondGpuUsesItsOwnNodeAndGpuId) {
  Plan plan = plan_ok(HSA_GMEM_HINT_PREFETCH, 2, Backend::kfd_svm);
  const auto& call = std::get<SvmSetAttrCall>(plan);
  expect_bytes(call.hsakmt_attributes, {{1, 2}});
  expect_bytes(call.ioctl_attributes, {{1, 0xBBBB}});
}

TEST(TranslateKfd, PinAndUnpinHaveNoEquivalent) {
  for (HSA_GMEM_HINT hint : {HSA_GMEM_HINT_PIN, HSA_GMEM_HINT_UNPIN}) {
    for (std::uint32_t node : {kGpuNode, kCpuNode}) {
      Plan plan = plan_ok(hint, node, Backend::kfd_svm);
      const auto* none = std::get_if<NoEquivalent>(&plan);
      ASSERT_NE(none, nullptr) << hint_name(hint);
      EXPECT_NE(none->reason.find("no KFD SVM equivalent"), std::string::npos)
          << none->reason;
      EXPECT_NE(none->reason.find(hint_name(hint)), std::string::npos);
    }
  }
}

TEST(TranslateKfd, DontneedWithoutNodeDiscardsThroughMadvise) {
  Plan plan = plan_ok(HSA_GMEM_HINT_DONTNEED, kNoNode, Backend::kfd_svm);
  const auto* call = std::get_if<MadviseCall>(&plan);
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call->start, kStart);
  EXPECT_EQ(call->len, kSize);
  EXPECT_EQ(call->advice, 4);  // MADV_DONTNEED
}

TEST(TranslateKfd, SystemMemoryIsTheFirstCpuNodeEvenWhenNotZero) {
  // Node ids of CPU nodes are not always 0; libhsakmt wants a CPU node id.
  TopologyNode gpu;
  gpu.node_id = 0;
  gpu.gpu_id = kGpuId;
  TopologyNode cpu;
  cpu.node_id = 1;
  Plan plan;
  ASSERT_TRUE(plan_advice({0, kStart, kSize, HSA_GMEM_HINT_DONTNEED},
                          Topology({gpu, cpu}), Backend::kfd_svm, kPage, &plan)
                  .ok());
  const auto& call = std::get<SvmSetAttrCall>(plan);
  expect_bytes(call.hsakmt_attributes, {{1, 1}});
  expect_bytes(call.ioctl_attributes, {{1, 0}});
}

struct SyscallCase {
  const char* label;
  HSA_GMEM_HINT hint;
  std::uint32_t node;
  int hnid;
  int behavior;
};

TEST(TranslateSyscall, EveryHintGivesItsExactArguments) {
  const SyscallCase cases[] = {
      {"prefetch_gpu", HSA_GMEM_HINT_PREFETCH, kGpuNode, kGpuHnid, 26},
      {"prefetch_cpu", HSA_GMEM_HINT_PREFETCH, kCpuNode, 0, 26},
      {"dontneed_gpu", HSA_GMEM_HINT_DONTNEED, kGpuNode, kGpuHnid, 4},
      {"dontneed_no_node", HSA_GMEM_HINT_DONTNEED, kNoNode, -1, 4},
      {"preferred_gpu", HSA_GMEM_HINT_PREFERRED_LOC, kGpuNode, kGpuHnid, 0x1000},
      {"preferred_cpu", HSA_GMEM_HINT_PREFERRED_LOC, kCpuNode, 0, 0x1000},
      {"unset_preferred_gpu", HSA_GMEM_HINT_UNSET_PREFERRED_LOC, kGpuNode, kGpuHnid, 0x1001},
      {"unset_preferred_cpu", HSA_GMEM_HINT_UNSET_PREFERRED_LOC, kCpuNode, 0, 0x1001},
      {"accessed_by_gpu", HSA_GMEM_HINT_ACCESSED_BY, kGpuNode, kGpuHnid, 0x1002},
      {"unset_accessed_by_gpu", HSA_GMEM_HINT_UNSET_ACCESSED_BY, kGpuNode, kGpuHnid, 0x1003},
      {"read_mostly_gpu", HSA_GMEM_HINT_READ_MOSTLY, kGpuNode, kGpuHnid, 0x1004},
      {"read_mostly_cpu", HSA_GMEM_HINT_READ_MOSTLY, kCpuNode, 0, 0x1004},
      {"unset_read_mostly_gpu", HSA_GMEM_HINT_UNSET_READ_MOSTLY, kGpuNode, kGpuHnid, 0x1005},
      {"unset_read_mostly_cpu", HSA_GMEM_HINT_UNSET_READ_MOSTLY, kCpuNode, 0, 0x1005},
      {"pin_gpu", HSA_GMEM_HINT_PIN, kGpuNode, kGpuHnid, 0x1006},
      {"pin_cpu", HSA_GMEM_HINT_PIN, kCpuNode, 0, 0x1006},
      {"unpin_gpu", HSA_GMEM_HINT_UNPIN, kGpuNode, kGpuHnid, 0x1007},
      {"unpin_cpu", HSA_GMEM_HINT_UNPIN, kCpuNode, 0, 0x1007},
      {"no_access_gpu", HSA_GMEM_HINT_NO_ACCESS, kGpuNode, kGpuHnid, 0x1008},
      {"unset_no_access_gpu", HSA_GMEM_HINT_UNSET_NO_ACCESS, kGpuNode, kGpuHnid, 0x1009},
  };
  for (const SyscallCase& test : cases) {
    SCOPED_TRACE(test.label);
    Plan plan = plan_ok(test.hint, test.node, Backend::syscall);
    const auto* call = std::get_if<SyscallCall>(&plan);
    ASSERT_NE(call, nullptr);
    EXPECT_EQ(call->hnid, test.hnid);
    EXPECT_EQ(call->start, kStart);
    EXPECT_EQ(call->len, kSize);
    EXPECT_EQ(call->behavior, test.behavior);
  }
}

TEST(TranslateSyscall, NodeWithoutGmemNodeIdIsRefused) {
  TopologyNode cpu;
  cpu.node_id = 0;
  cpu.gmem_node_id = 0;
  TopologyNode gpu;
  gpu.node_id = 1;
  gpu.gpu_id = kGpuId;  // no gmem_node_id: this GPU is not under GMEM
  Plan plan;
  Status status = plan_advice({1, kStart, kSize, HSA_GMEM_HINT_PREFETCH},
                              Topology({cpu, gpu}), Backend::syscall, kPage, &plan);
  EXPECT_EQ(status.code, HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_NE(status.message.find("gmem_node_id"), std::string::npos) << status.message;
}

// --- Rounding: the length goes up to whole pages, like the kernel. ---

TEST(TranslateRange, SizeIsRoundedUpToWholePagesOnBothBackends) {
  const std::pair<std::uint64_t, std::uint64_t> sizes[] = {
      {1, kPage}, {kPage - 1, kPage}, {kPage, kPage}, {kPage + 1, 2 * kPage}};
  for (auto [size, expected] : sizes) {
    Plan plan;
    ASSERT_TRUE(plan_advice({kGpuNode, kStart, size, HSA_GMEM_HINT_PREFETCH},
                            gmem_topology(), Backend::syscall, kPage, &plan).ok());
    EXPECT_EQ(std::get<SyscallCall>(plan).len, expected) << size;
    ASSERT_TRUE(plan_advice({kGpuNode, kStart, size, HSA_GMEM_HINT_PREFETCH},
                            gmem_topology(), Backend::kfd_svm, kPage, &plan).ok());
    EXPECT_EQ(std::get<SvmSetAttrCall>(plan).size, expected) << size;
  }
}

TEST(TranslateRange, RangeEndingExactlyAtTheLastPageIsAccepted) {
  const std::uintptr_t last_page = std::numeric_limits<std::uintptr_t>::max() - 2 * kPage + 1;
  Plan plan;
  EXPECT_TRUE(plan_advice({kGpuNode, last_page, kPage, HSA_GMEM_HINT_PREFETCH},
                          gmem_topology(), Backend::syscall, kPage, &plan).ok());
}

// --- Bad input: refused with a precise status before any plan exists. ---

struct BadCase {
  const char* label;
  AdviceRequest request;
  HSAKMT_STATUS status;
  const char* message_part;
};

TEST(TranslateBadInput, EachIsRefusedWithItsStatusOnBothBackends) {
  const std::uintptr_t top = std::numeric_limits<std::uintptr_t>::max();
  const BadCase cases[] = {
      {"hint_zero", {kGpuNode, kStart, kSize, 0u},
       HSAKMT_STATUS_INVALID_PARAMETER, "unknown hint"},
      {"hint_past_end", {kGpuNode, kStart, kSize, 13u},
       HSAKMT_STATUS_INVALID_PARAMETER, "unknown hint"},
      {"hint_negative", {kGpuNode, kStart, kSize, 0xFFFFFFFFu},
       HSAKMT_STATUS_INVALID_PARAMETER, "unknown hint"},
      {"null_start", {kGpuNode, 0, kSize, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_INVALID_PARAMETER, "NULL"},
      {"zero_size", {kGpuNode, kStart, 0, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_INVALID_PARAMETER, "size is 0"},
      {"unaligned_by_one", {kGpuNode, kStart + 1, kSize, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_MEMORY_ALIGNMENT, "not aligned"},
      {"unaligned_half_page", {kGpuNode, kStart + kPage / 2, kSize, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_MEMORY_ALIGNMENT, "not aligned"},
      {"size_overflows_rounding", {kGpuNode, kStart, std::numeric_limits<std::uint64_t>::max(),
                                   HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_INVALID_PARAMETER, "overflows"},
      {"range_wraps", {kGpuNode, top - 0xFFFF, 0x20000, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_INVALID_PARAMETER, "wraps"},
      {"range_ends_at_two_to_the_64", {kGpuNode, top - kPage + 1, kPage, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_INVALID_PARAMETER, "wraps"},
      {"unknown_node", {3, kStart, kSize, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "no KFD node 3"},
      {"huge_node", {0xFFFFFFFE, kStart, kSize, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "no KFD node"},
      {"cpu_accessed_by", {kCpuNode, kStart, kSize, HSA_GMEM_HINT_ACCESSED_BY},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "needs a GPU node"},
      {"cpu_unset_accessed_by", {kCpuNode, kStart, kSize, HSA_GMEM_HINT_UNSET_ACCESSED_BY},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "needs a GPU node"},
      {"cpu_no_access", {kCpuNode, kStart, kSize, HSA_GMEM_HINT_NO_ACCESS},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "needs a GPU node"},
      {"cpu_unset_no_access", {kCpuNode, kStart, kSize, HSA_GMEM_HINT_UNSET_NO_ACCESS},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "needs a GPU node"},
      {"cpu_dontneed", {kCpuNode, kStart, kSize, HSA_GMEM_HINT_DONTNEED},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "HSA_GMEM_NO_NODE to discard"},
      {"no_node_prefetch", {kNoNode, kStart, kSize, HSA_GMEM_HINT_PREFETCH},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "only valid with DONTNEED"},
      {"no_node_pin", {kNoNode, kStart, kSize, HSA_GMEM_HINT_PIN},
       HSAKMT_STATUS_INVALID_NODE_UNIT, "only valid with DONTNEED"},
      // Bad input wins over "no equivalent": a caller learns about its own
      // mistake first.
      {"pin_unaligned", {kGpuNode, kStart + 8, kSize, HSA_GMEM_HINT_PIN},
       HSAKMT_STATUS_MEMORY_ALIGNMENT, "not aligned"},
  };
  for (Backend backend : {Backend::syscall, Backend::kfd_svm}) {
    for (const BadCase& test : cases) {
      SCOPED_TRACE(std::string(test.label) + " on " + backend_name(backend));
      Plan plan = NoEquivalent{"untouched"};
      Status status = plan_advice(test.request, gmem_topology(), backend, kPage, &plan);
      EXPECT_EQ(status.code, test.status) << status.message;
      EXPECT_NE(status.message.find(test.message_part), std::string::npos)
          << status.message;
      ASSERT_TRUE(std::holds_alternative<NoEquivalent>(plan));
      EXPECT_EQ(std::get<NoEquivalent>(plan).reason, "untouched");
    }
  }
}

TEST(TranslateBadInput, InaccessibleNodeIsRefused) {
  TopologyNode cpu;
  cpu.node_id = 0;
  TopologyNode hidden;
  hidden.node_id = 1;
  hidden.accessible = false;
  Plan plan;
  Status status = plan_advice({1, kStart, kSize, HSA_GMEM_HINT_PREFETCH},
                              Topology({cpu, hidden}), Backend::kfd_svm, kPage, &plan);
  EXPECT_EQ(status.code, HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_NE(status.message.find("not accessible"), std::string::npos);
}

TEST(TranslateBadInput, AlignmentFollowsThePageSizeGiven) {
  // On a 64 KiB-page kernel a 4 KiB-aligned start is unaligned.
  Plan plan;
  Status status = plan_advice({kGpuNode, 0x7f0000001000, kSize, HSA_GMEM_HINT_PREFETCH},
                              gmem_topology(), Backend::syscall, 65536, &plan);
  EXPECT_EQ(status.code, HSAKMT_STATUS_MEMORY_ALIGNMENT);
}

// --- Names used by gmem-advise. ---

TEST(HintNames, RoundTripInEverySpelling) {
  for (HSA_GMEM_HINT hint : all_hints()) {
    std::string name = hint_name(hint);
    HSA_GMEM_HINT parsed{};
    ASSERT_TRUE(hint_from_name(name, &parsed)) << name;
    EXPECT_EQ(parsed, hint);
    std::string lower;
    for (char c : name) lower += c == '_' ? '-' : static_cast<char>(std::tolower(c));
    ASSERT_TRUE(hint_from_name(lower, &parsed)) << lower;
    EXPECT_EQ(parsed, hint);
  }
  EXPECT_EQ(all_hints().size(), 12u);
  HSA_GMEM_HINT parsed{};
  EXPECT_FALSE(hint_from_name("prefetchx", &parsed));
  EXPECT_EQ(hint_name(99), nullptr);
}

}  // namespace
}  // namespace gmem::thunk
