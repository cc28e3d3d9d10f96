// AMDKFD_IOC_SVM, whose attributes live in GMEM, on a machine without an
// AMD GPU: SET_ATTR/GET_ATTR round trips with system
// memory locations, split and munmap semantics, bad input, and the one
// store hmadvise() shares. Written from include/uapi/linux/kfd_ioctl.h.
#include <sys/mman.h>

#include "gmem/gmem_device.h"
#include "kfd_fixture.h"

namespace {

using kfdtest::AlignedBuffer;
using kfdtest::KfdTest;
using kfdtest::kDefaultFlags;
using kfdtest::kDefaultGranularity;
using kfdtest::kUndefinedLocation;

constexpr uint32_t kSysmem = KFD_IOCTL_SVM_LOCATION_SYSMEM;
constexpr size_t kPage = 4096;

using Attrs = std::vector<kfd_ioctl_svm_attribute>;

class KfdGmemSvm : public KfdTest {
 protected:
  // A private anonymous mapping of `pages` pages, unmapped at the end.
  uint64_t Map(size_t pages) {
    void *p = mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    if (p == MAP_FAILED) return 0;
    mappings_.push_back({p, pages * kPage});
    return reinterpret_cast<uint64_t>(p);
  }
  void TearDown() override {
    for (auto &m : mappings_) munmap(m.first, m.second);
    KfdTest::TearDown();
  }

  // All queryable attributes of [start, start + bytes), or EXPECT fails.
  Attrs Query(uint64_t start, uint64_t bytes) {
    Attrs attrs = AllQueryableAttrs();
    EXPECT_EQ(GetAttr(start, bytes, &attrs), 0);
    return attrs;
  }

  std::vector<std::pair<void *, size_t>> mappings_;
};

enum { kPreferred, kPrefetch, kSetFlags, kClrFlags, kGranularity };

TEST_F(KfdGmemSvm, SetAttrRoundTripOnMalloc) {
  AlignedBuffer buffer(4 << 20);
  ASSERT_NE(buffer.ptr, nullptr);
  ASSERT_EQ(SetAttr(buffer.addr(), buffer.size,
                    {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, kSysmem},
                     {KFD_IOCTL_SVM_ATTR_PREFETCH_LOC, kSysmem},
                     {KFD_IOCTL_SVM_ATTR_SET_FLAGS,
                      KFD_IOCTL_SVM_FLAG_GPU_RO | KFD_IOCTL_SVM_FLAG_GPU_EXEC},
                     {KFD_IOCTL_SVM_ATTR_CLR_FLAGS, KFD_IOCTL_SVM_FLAG_COHERENT},
                     {KFD_IOCTL_SVM_ATTR_GRANULARITY, 4}}),
            0);
  uint32_t flags = KFD_IOCTL_SVM_FLAG_HOST_ACCESS | KFD_IOCTL_SVM_FLAG_GPU_RO |
                   KFD_IOCTL_SVM_FLAG_GPU_EXEC;
  Attrs attrs = Query(buffer.addr(), buffer.size);
  EXPECT_EQ(attrs[kPreferred].value, kSysmem);
  EXPECT_EQ(attrs[kPrefetch].value, kSysmem);
  EXPECT_EQ(attrs[kSetFlags].value, flags);
  EXPECT_EQ(attrs[kClrFlags].value, ~flags);
  EXPECT_EQ(attrs[kGranularity].value, 4u);
  // The memory is untouched by the attributes.
  EXPECT_EQ(static_cast<uint8_t *>(buffer.ptr)[buffer.size - 1], 0x5a);
}

TEST_F(KfdGmemSvm, EmptyListRegistersTheDefaults) {
  uint64_t addr = Map(16);
  ASSERT_EQ(SetAttr(addr, 16 * kPage, {}), 0);
  ExpectDefaults(Query(addr, 16 * kPage));
  // Registered with the defaults, so a second range's location differs.
  ASSERT_EQ(SetAttr(addr, 8 * kPage, {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, kSysmem}}), 0);
  EXPECT_EQ(Query(addr, 16 * kPage)[kPreferred].value, kUndefinedLocation);
  EXPECT_EQ(Query(addr, 8 * kPage)[kPreferred].value, kSysmem);
}

TEST_F(KfdGmemSvm, UnregisteredPartsDoNotCount) {
  uint64_t addr = Map(16);
  ASSERT_EQ(SetAttr(addr, 4 * kPage, {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, kSysmem},
                                      {KFD_IOCTL_SVM_ATTR_GRANULARITY, 2}}),
            0);
  // Pages 4..15 were never described: only the range counts.
  Attrs attrs = Query(addr, 16 * kPage);
  EXPECT_EQ(attrs[kPreferred].value, kSysmem);
  EXPECT_EQ(attrs[kGranularity].value, 2u);
  ExpectDefaults(Query(addr + 4 * kPage, 12 * kPage));
}

TEST_F(KfdGmemSvm, LaterAttributesWin) {
  uint64_t addr = Map(4);
  ASSERT_EQ(SetAttr(addr, 4 * kPage,
                    {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, kSysmem},
                     {KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_RO},
                     {KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, kUndefinedLocation},
                     {KFD_IOCTL_SVM_ATTR_CLR_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_RO},
                     {KFD_IOCTL_SVM_ATTR_GRANULARITY, 3},
                     {KFD_IOCTL_SVM_ATTR_GRANULARITY, 7}}),
            0);
  Attrs attrs = Query(addr, 4 * kPage);
  EXPECT_EQ(attrs[kPreferred].value, kUndefinedLocation);
  EXPECT_EQ(attrs[kSetFlags].value, kDefaultFlags);
  EXPECT_EQ(attrs[kGranularity].value, 7u);
}

TEST_F(KfdGmemSvm, GranularityIsCappedAt0x3F) {
  uint64_t addr = Map(1);
  ASSERT_EQ(SetAttr(addr, kPage, {{KFD_IOCTL_SVM_ATTR_GRANULARITY, 0x1000}}), 0);
  EXPECT_EQ(Query(addr, kPage)[kGranularity].value, 0x3Fu);
}

TEST_F(KfdGmemSvm, OverlappingSetsSplitRanges) {
  uint64_t addr = Map(16);
  ASSERT_EQ(SetAttr(addr, 16 * kPage, {{KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_RO}}),
            0);
  ASSERT_EQ(SetAttr(addr + 4 * kPage, 4 * kPage,
                    {{KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_EXEC}}),
            0);
  ASSERT_EQ(SetAttr(addr + 12 * kPage, 4 * kPage, {{KFD_IOCTL_SVM_ATTR_GRANULARITY, 3}}), 0);

  uint32_t ro = kDefaultFlags | KFD_IOCTL_SVM_FLAG_GPU_RO;
  uint32_t ro_exec = ro | KFD_IOCTL_SVM_FLAG_GPU_EXEC;
  EXPECT_EQ(Query(addr, 4 * kPage)[kSetFlags].value, ro);
  EXPECT_EQ(Query(addr + 4 * kPage, 4 * kPage)[kSetFlags].value, ro_exec);
  EXPECT_EQ(Query(addr + 8 * kPage, 4 * kPage)[kSetFlags].value, ro);
  EXPECT_EQ(Query(addr + 8 * kPage, 4 * kPage)[kGranularity].value, kDefaultGranularity);
  // Across the split: flags on every range, flags on none, smallest granularity.
  Attrs all = Query(addr, 16 * kPage);
  EXPECT_EQ(all[kSetFlags].value, ro);
  EXPECT_EQ(all[kClrFlags].value, ~ro_exec);
  EXPECT_EQ(all[kGranularity].value, 3u);
  // A query inside one range sees that range only.
  EXPECT_EQ(Query(addr + 5 * kPage, kPage)[kSetFlags].value, ro_exec);
}

TEST_F(KfdGmemSvm, DifferingLocationsAreUndefined) {
  uint64_t addr = Map(8);
  ASSERT_EQ(SetAttr(addr, 4 * kPage, {{KFD_IOCTL_SVM_ATTR_PREFETCH_LOC, kSysmem}}), 0);
  ASSERT_EQ(SetAttr(addr + 4 * kPage, 4 * kPage, {{KFD_IOCTL_SVM_ATTR_SET_FLAGS, 0}}), 0);
  EXPECT_EQ(Query(addr, 4 * kPage)[kPrefetch].value, kSysmem);
  EXPECT_EQ(Query(addr, 8 * kPage)[kPrefetch].value, kUndefinedLocation);
}

TEST_F(KfdGmemSvm, PartialMunmapDropsThatPart) {
  uint64_t addr = Map(16);
  ASSERT_EQ(SetAttr(addr, 16 * kPage, {{KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_RO},
                                       {KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, kSysmem}}),
            0);
  void *middle = reinterpret_cast<void *>(addr + 4 * kPage);
  ASSERT_EQ(munmap(middle, 4 * kPage), 0);
  Attrs attrs;
  EXPECT_EQ(GetAttr(addr, 16 * kPage, &(attrs = AllQueryableAttrs())), EFAULT);
  EXPECT_EQ(Query(addr, 4 * kPage)[kSetFlags].value, kDefaultFlags | KFD_IOCTL_SVM_FLAG_GPU_RO);
  EXPECT_EQ(Query(addr + 8 * kPage, 8 * kPage)[kPreferred].value, kSysmem);
  // Memory mapped again at the same address starts with the defaults.
  void *again = mmap(middle, 4 * kPage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(again, middle);
  ExpectDefaults(Query(addr + 4 * kPage, 4 * kPage));
  Attrs whole = Query(addr, 16 * kPage);
  EXPECT_EQ(whole[kPreferred].value, kSysmem) << "only registered ranges count";
}

TEST_F(KfdGmemSvm, FullMunmapForgetsTheRange) {
  size_t bytes = 8 * kPage;
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  uint64_t addr = reinterpret_cast<uint64_t>(p);
  ASSERT_EQ(SetAttr(addr, bytes, {{KFD_IOCTL_SVM_ATTR_GRANULARITY, 1}}), 0);
  ASSERT_EQ(munmap(p, bytes), 0);
  Attrs attrs = AllQueryableAttrs();
  EXPECT_EQ(GetAttr(addr, bytes, &attrs), EFAULT);
  void *again = mmap(p, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(again, p);
  ExpectDefaults(Query(addr, bytes));
  munmap(again, bytes);
}

TEST_F(KfdGmemSvm, BadInputIsRefusedAndChangesNothing) {
  uint64_t addr = Map(4);
  size_t bytes = 4 * kPage;
  const Attrs gpu_flag = {{KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_RO}};
  // Locations and access of a GPU the process does not have.
  for (const Attrs &bad : std::vector<Attrs>{
           {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, 0x1234}},
           {{KFD_IOCTL_SVM_ATTR_PREFETCH_LOC, 0x1234}},
           {{KFD_IOCTL_SVM_ATTR_ACCESS, 0x1234}},
           {{KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE, 0x1234}},
           {{KFD_IOCTL_SVM_ATTR_NO_ACCESS, 0x1234}},
           {{0x100, 0}},
       }) {
    Attrs list = gpu_flag;
    list.insert(list.end(), bad.begin(), bad.end());
    EXPECT_EQ(SetAttr(addr, bytes, list), EINVAL) << "type " << bad[0].type;
  }
  ExpectDefaults(Query(addr, bytes));

  EXPECT_EQ(SetAttr(addr + 8, bytes, gpu_flag), EINVAL);
  EXPECT_EQ(SetAttr(addr, bytes - 1, gpu_flag), EINVAL);
  EXPECT_EQ(SetAttr(addr, 0, gpu_flag), EINVAL);
  EXPECT_EQ(SetAttr(0, bytes, gpu_flag), EINVAL);
  EXPECT_EQ(SetAttr(0xfffffffffffff000ull, 0x2000, gpu_flag), EOVERFLOW);
  // Past the end of the mapping.
  EXPECT_EQ(SetAttr(addr, 2 * bytes, gpu_flag), EFAULT);
  Attrs three = gpu_flag;
  EXPECT_EQ(Svm(KFD_IOCTL_SVM_OP_SET_ATTR, addr, bytes, &three, 1u << 30), EINVAL);
  ExpectDefaults(Query(addr, bytes));
}

TEST_F(KfdGmemSvm, ReadMostlyReachesGmem) {
  gmem::Device dev(0);
  if (!dev.ok()) GTEST_SKIP() << dev.path() << ": " << strerror(dev.open_errno());
  ASSERT_EQ(dev.Attach(), 0);
  uint64_t addr = Map(16);
  ASSERT_EQ(SetAttr(addr, 16 * kPage,
                    {{KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY},
                     {KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, kSysmem},
                     {KFD_IOCTL_SVM_ATTR_GRANULARITY, 4}}),
            0);
  // What a GMEM device sees of the same range: one store.
  std::vector<tgm_range> ranges;
  ASSERT_EQ(dev.Ranges(addr, 16 * kPage, &ranges), 0);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].start, addr);
  EXPECT_EQ(ranges[0].end, addr + 16 * kPage);
  EXPECT_EQ(ranges[0].read_mostly, 1);
  EXPECT_GE(ranges[0].preferred, 0) << "system memory is a host node";
  EXPECT_EQ(ranges[0].gran_shift, 16) << "2^4 pages";

  ASSERT_EQ(SetAttr(addr, 16 * kPage,
                    {{KFD_IOCTL_SVM_ATTR_CLR_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY}}),
            0);
  ASSERT_EQ(dev.Ranges(addr, 16 * kPage, &ranges), 0);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].read_mostly, 0);
  EXPECT_EQ(Query(addr, 16 * kPage)[kSetFlags].value, kDefaultFlags);
}

TEST_F(KfdGmemSvm, HmadviseHintsAnswerGetAttr) {
  gmem::Device dev(0);
  if (!dev.ok()) GTEST_SKIP() << dev.path() << ": " << strerror(dev.open_errno());
  ASSERT_EQ(dev.Attach(), 0);
  tgm_counters counters{};
  ASSERT_EQ(dev.Counters(&counters), 0);
  int device_node = static_cast<int>(counters.hnid);

  uint64_t addr = Map(8);
  // A host node is system memory to KFD.
  ASSERT_EQ(gmem::Hmadvise(0, addr, 4 * kPage, HMADV_PREFERRED_LOC), 0);
  Attrs attrs = Query(addr, 4 * kPage);
  EXPECT_EQ(attrs[kPreferred].value, kSysmem);
  EXPECT_EQ(attrs[kSetFlags].value, kDefaultFlags);
  EXPECT_EQ(attrs[kGranularity].value, kDefaultGranularity);
  // A device KFD does not know has no KFD location.
  ASSERT_EQ(gmem::Hmadvise(device_node, addr + 4 * kPage, 4 * kPage, HMADV_PREFERRED_LOC), 0);
  EXPECT_EQ(Query(addr + 4 * kPage, 4 * kPage)[kPreferred].value, kUndefinedLocation);
  // And KFD's changes are hmadvise()'s: unset through the ioctl.
  ASSERT_EQ(SetAttr(addr, 4 * kPage, {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, kUndefinedLocation}}),
            0);
  std::vector<tgm_range> ranges;
  ASSERT_EQ(dev.Ranges(addr, 4 * kPage, &ranges), 0);
  for (const auto &r : ranges) EXPECT_EQ(r.preferred, -1);
}

TEST_F(KfdGmemSvm, XnackModeRoundTrip) {
  kfd_ioctl_set_xnack_mode_args mode{};
  mode.xnack_enabled = -1;
  ASSERT_EQ(ioctl(fd_, AMDKFD_IOC_SET_XNACK_MODE, &mode), 0) << strerror(errno);
  EXPECT_EQ(mode.xnack_enabled, 1) << "no GPU: nothing that cannot retry";
  uint64_t addr = Map(4);
  ASSERT_EQ(SetAttr(addr, 4 * kPage, {{KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_RO}}),
            0);
  for (int enabled : {0, 1}) {
    mode.xnack_enabled = enabled;
    ASSERT_EQ(ioctl(fd_, AMDKFD_IOC_SET_XNACK_MODE, &mode), 0) << strerror(errno);
    mode.xnack_enabled = -1;
    ASSERT_EQ(ioctl(fd_, AMDKFD_IOC_SET_XNACK_MODE, &mode), 0) << strerror(errno);
    EXPECT_EQ(mode.xnack_enabled, enabled);
    // The ranges survive the switch.
    EXPECT_EQ(Query(addr, 4 * kPage)[kSetFlags].value,
              kDefaultFlags | KFD_IOCTL_SVM_FLAG_GPU_RO);
  }
}

}  // namespace
