// MemoryHints against a recording stand-in for the thunk's C API: which
// calls it makes, with which nodes and ranges, and how failures come out.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "host_common.hpp"
#include "memory_hints.hpp"
#include "memory_hints_thunk.hpp"

namespace gmem_samples {
namespace {

struct AdviseCall {
  HSAuint32 node;
  std::uintptr_t start;
  HSAuint64 bytes;
  HSA_GMEM_HINT hint;
  void* stream;  // only for prefetch_async
};

// What the recorder saw; outlives the recorder, which MemoryHints owns.
struct Record {
  int opens = 0;
  int closes = 0;
  std::vector<AdviseCall> advise_calls;
  std::vector<AdviseCall> async_calls;
  // Programmable answers.
  HSAKMT_STATUS open_result = HSAKMT_STATUS_SUCCESS;
  HSAKMT_STATUS advise_result = HSAKMT_STATUS_SUCCESS;
  HSAKMT_STATUS async_error = HSAKMT_STATUS_SUCCESS;
  std::string message;
  // KFD nodes: 0 and 1 are CPUs, 2 and 3 GPUs; HIP ordinal d is node 3 - d
  // so a mapping that ignored the thunk would show.
  std::vector<bool> node_is_gpu{false, false, true, true};
};

class RecordingThunk final : public ThunkApi {
 public:
  explicit RecordingThunk(Record& record) : record_(record) {}
  HSAKMT_STATUS open() override {
    ++record_.opens;
    return record_.open_result;
  }
  HSAKMT_STATUS close() override {
    ++record_.closes;
    return HSAKMT_STATUS_SUCCESS;
  }
  HSAKMT_STATUS backend(HSA_GMEM_BACKEND* backend) override {
    *backend = HSA_GMEM_BACKEND_ROCR_SVM;
    return HSAKMT_STATUS_SUCCESS;
  }
  HSAKMT_STATUS node_count(HSAuint32* count) override {
    *count = static_cast<HSAuint32>(record_.node_is_gpu.size());
    return HSAKMT_STATUS_SUCCESS;
  }
  HSAKMT_STATUS node_info(HSAuint32 node, HSA_GMEM_NODE_INFO* info) override {
    if (node >= record_.node_is_gpu.size()) return HSAKMT_STATUS_INVALID_NODE_UNIT;
    info->NodeId = node;
    info->IsGpu = record_.node_is_gpu[node] ? 1 : 0;
    return HSAKMT_STATUS_SUCCESS;
  }
  HSAKMT_STATUS node_from_hip_device(HSAint32 ordinal, HSAuint32* node) override {
    if (ordinal < 0 || ordinal > 1) {
      record_.message = "no HIP device " + std::to_string(ordinal);
      return HSAKMT_STATUS_INVALID_NODE_UNIT;
    }
    *node = static_cast<HSAuint32>(3 - ordinal);
    return HSAKMT_STATUS_SUCCESS;
  }
  HSAKMT_STATUS advise(HSAuint32 node, void* start, HSAuint64 bytes,
                       HSA_GMEM_HINT hint) override {
    record_.advise_calls.push_back({node, reinterpret_cast<std::uintptr_t>(start), bytes, hint, nullptr});
    return record_.advise_result;
  }
  HSAKMT_STATUS prefetch_async(HSAuint32 node, void* start, HSAuint64 bytes,
                               void* stream) override {
    record_.async_calls.push_back(
        {node, reinterpret_cast<std::uintptr_t>(start), bytes, HSA_GMEM_HINT_PREFETCH, stream});
    return record_.advise_result;
  }
  HSAKMT_STATUS async_error() override {
    const HSAKMT_STATUS result = record_.async_error;
    record_.async_error = HSAKMT_STATUS_SUCCESS;
    return result;
  }
  std::string last_error_message() override { return record_.message; }

 private:
  Record& record_;
};

class MemoryHintsTest : public ::testing::Test {
 protected:
  std::unique_ptr<MemoryHints> make(HintsMode mode) {
    return std::make_unique<MemoryHints>(mode, std::make_unique<RecordingThunk>(record_));
  }
  // A page-aligned address that is never dereferenced.
  const void* at(std::uintptr_t offset) const {
    return reinterpret_cast<const void*>(std::uintptr_t{0x40000000} + offset);
  }
  Record record_;
};

TEST(HintsModes, ParsesOnOffAndBoth) {
  EXPECT_EQ(parse_hints_modes("on"), std::vector<HintsMode>{HintsMode::kOn});
  EXPECT_EQ(parse_hints_modes("off"), std::vector<HintsMode>{HintsMode::kOff});
  EXPECT_EQ(parse_hints_modes("both"), (std::vector<HintsMode>{HintsMode::kOn, HintsMode::kOff}));
  EXPECT_THROW(parse_hints_modes("yes"), UsageError);
  EXPECT_THROW(parse_hints_modes(""), UsageError);
  EXPECT_STREQ(hints_mode_name(HintsMode::kOff), "off");
}

TEST(PageSpan, WidensARangeToTheWholePagesItTouches) {
  const auto span = [](std::uintptr_t start, std::size_t bytes) {
    return page_span(reinterpret_cast<const void*>(start), bytes, 4096);
  };
  EXPECT_EQ(span(0x10000, 4096).start, 0x10000u);
  EXPECT_EQ(span(0x10000, 4096).bytes, 4096u);
  EXPECT_EQ(span(0x10010, 4096).start, 0x10000u);
  EXPECT_EQ(span(0x10010, 4096).bytes, 8192u);  // spills into the next page
  EXPECT_EQ(span(0x10ff0, 0x20).start, 0x10000u);
  EXPECT_EQ(span(0x10ff0, 0x20).bytes, 8192u);
  EXPECT_EQ(span(0x10004, 8).bytes, 4096u);
}

TEST_F(MemoryHintsTest, OffGivesNoHintAndNeverOpensTheThunk) {
  {
    auto hints = make(HintsMode::kOff);
    EXPECT_FALSE(hints->enabled());
    EXPECT_FALSE(hints->prefetch(at(0), 4096, 0));
    EXPECT_FALSE(hints->prefetch_async(at(0), 4096, 0, nullptr));
    EXPECT_FALSE(hints->set_read_mostly(at(0), 4096));
    EXPECT_FALSE(hints->pin(at(0), 4096, 1));
    hints->check_async();
    EXPECT_EQ(hints->hints_given(), 0u);
    EXPECT_EQ(hints->describe(), "off: no hints given");
  }
  EXPECT_EQ(record_.opens, 0);
  EXPECT_EQ(record_.closes, 0);
  EXPECT_TRUE(record_.advise_calls.empty());
  EXPECT_TRUE(record_.async_calls.empty());
}

TEST_F(MemoryHintsTest, OnOpensOnceAndClosesAtScopeEnd) {
  {
    auto hints = make(HintsMode::kOn);
    EXPECT_EQ(record_.opens, 1);
    EXPECT_EQ(record_.closes, 0);
    EXPECT_EQ(hints->describe(), "on: hsakmt-gmem, rocr backend (stock kernel, ROCr SVM API)");
  }
  EXPECT_EQ(record_.closes, 1);
}

TEST_F(MemoryHintsTest, AFailedOpenThrowsTheThunksReason) {
  record_.open_result = HSAKMT_STATUS_NOT_SUPPORTED;
  record_.message = "no backend: hmadvise probe ENOSYS, rocr: cannot load";
  try {
    make(HintsMode::kOn);
    FAIL() << "no exception";
  } catch (const HintError& error) {
    EXPECT_EQ(error.status(), HSAKMT_STATUS_NOT_SUPPORTED);
    EXPECT_NE(std::string(error.what()).find("rocr: cannot load"), std::string::npos) << error.what();
  }
  EXPECT_EQ(record_.closes, 0);  // nothing was opened, nothing to close
}

TEST_F(MemoryHintsTest, EachHintReachesTheNodeOfItsHipDevice) {
  auto hints = make(HintsMode::kOn);
  EXPECT_TRUE(hints->prefetch(at(0), 8192, 0));
  EXPECT_TRUE(hints->set_preferred_location(at(0), 8192, 1));
  EXPECT_TRUE(hints->set_accessed_by(at(0), 8192, 0));
  EXPECT_TRUE(hints->prefetch(at(0), 8192, kHostDevice));
  EXPECT_TRUE(hints->set_read_mostly(at(0), 8192));
  ASSERT_EQ(record_.advise_calls.size(), 5u);
  EXPECT_EQ(record_.advise_calls[0].node, 3u);
  EXPECT_EQ(record_.advise_calls[0].hint, HSA_GMEM_HINT_PREFETCH);
  EXPECT_EQ(record_.advise_calls[1].node, 2u);
  EXPECT_EQ(record_.advise_calls[1].hint, HSA_GMEM_HINT_PREFERRED_LOC);
  EXPECT_EQ(record_.advise_calls[2].hint, HSA_GMEM_HINT_ACCESSED_BY);
  EXPECT_EQ(record_.advise_calls[3].node, 0u);  // host memory: the first CPU node
  EXPECT_EQ(record_.advise_calls[4].hint, HSA_GMEM_HINT_READ_MOSTLY);
  EXPECT_EQ(hints->hints_given(), 5u);
}

TEST_F(MemoryHintsTest, HostMeansTheFirstCpuNodeWhereverItIs) {
  record_.node_is_gpu = {true, false, false};
  auto hints = make(HintsMode::kOn);
  hints->prefetch(at(0), 4096, kHostDevice);
  ASSERT_EQ(record_.advise_calls.size(), 1u);
  EXPECT_EQ(record_.advise_calls[0].node, 1u);
}

TEST_F(MemoryHintsTest, UnalignedRangesAreWidenedToPages) {
  auto hints = make(HintsMode::kOn);
  hints->prefetch(at(100), 4096, 0);
  ASSERT_EQ(record_.advise_calls.size(), 1u);
  EXPECT_EQ(record_.advise_calls[0].start, reinterpret_cast<std::uintptr_t>(at(0)));
  EXPECT_EQ(record_.advise_calls[0].bytes, 8192u);
}

TEST_F(MemoryHintsTest, StreamOrderedPrefetchPassesTheStream) {
  auto hints = make(HintsMode::kOn);
  void* stream = reinterpret_cast<void*>(0x5150);
  EXPECT_TRUE(hints->prefetch_async(at(0), 4096, 1, stream));
  ASSERT_EQ(record_.async_calls.size(), 1u);
  EXPECT_EQ(record_.async_calls[0].node, 2u);
  EXPECT_EQ(record_.async_calls[0].stream, stream);
  EXPECT_TRUE(record_.advise_calls.empty());
}

TEST_F(MemoryHintsTest, AFailedStreamOrderedPrefetchIsThrownByCheckAsync) {
  auto hints = make(HintsMode::kOn);
  hints->check_async();  // nothing failed yet
  record_.async_error = HSAKMT_STATUS_NO_MEMORY;
  record_.message = "PREFETCH to node 2: out of memory";
  try {
    hints->check_async();
    FAIL() << "no exception";
  } catch (const HintError& error) {
    EXPECT_EQ(error.status(), HSAKMT_STATUS_NO_MEMORY);
    EXPECT_NE(std::string(error.what()).find("out of memory"), std::string::npos);
  }
}

TEST_F(MemoryHintsTest, AHintWithoutEquivalentIsDeclinedAndListed) {
  auto hints = make(HintsMode::kOn);
  record_.advise_result = HSA_GMEM_STATUS_NO_EQUIVALENT;
  record_.message = "PIN has no equivalent on the rocr backend";
  EXPECT_FALSE(hints->pin(at(0), 4096, 0));
  ASSERT_EQ(hints->declined().size(), 1u);
  EXPECT_EQ(hints->declined()[0], "PIN on GPU 0: PIN has no equivalent on the rocr backend");
  EXPECT_EQ(hints->hints_given(), 0u);
}

TEST_F(MemoryHintsTest, OtherFailuresThrowWithStatusAndMessage) {
  auto hints = make(HintsMode::kOn);
  record_.advise_result = HSAKMT_STATUS_INVALID_PARAMETER;
  record_.message = "range wraps";
  try {
    hints->set_preferred_location(at(0), 4096, 1);
    FAIL() << "no exception";
  } catch (const HintError& error) {
    EXPECT_EQ(error.status(), HSAKMT_STATUS_INVALID_PARAMETER);
    EXPECT_EQ(std::string(error.what()), "PREFERRED_LOC of 4096 bytes on GPU 1: range wraps");
  }
  EXPECT_THROW(hints->prefetch_async(at(0), 4096, 0, nullptr), HintError);
  EXPECT_TRUE(hints->declined().empty());
}

TEST_F(MemoryHintsTest, AnUnknownDeviceIsAnError) {
  auto hints = make(HintsMode::kOn);
  EXPECT_THROW(hints->prefetch(at(0), 4096, 7), HintError);
  EXPECT_TRUE(record_.advise_calls.empty());
}

TEST_F(MemoryHintsTest, PinsStillHeldAreUnpinnedBeforeTheClose) {
  {
    auto hints = make(HintsMode::kOn);
    EXPECT_TRUE(hints->pin(at(0), 4096, 0));
    EXPECT_TRUE(hints->pin(at(8192), 4096, 1));
    EXPECT_TRUE(hints->unpin(at(0), 4096, 0));
    EXPECT_EQ(record_.advise_calls.size(), 3u);
  }
  ASSERT_EQ(record_.advise_calls.size(), 4u);  // only the range still pinned
  const AdviseCall& last = record_.advise_calls.back();
  EXPECT_EQ(last.hint, HSA_GMEM_HINT_UNPIN);
  EXPECT_EQ(last.start, reinterpret_cast<std::uintptr_t>(at(8192)));
  EXPECT_EQ(last.node, 2u);
  EXPECT_EQ(record_.closes, 1);
}

}  // namespace
}  // namespace gmem_samples
