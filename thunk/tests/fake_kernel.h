// A KernelInterface that records every call with its exact arguments and
// answers with programmable results. Nothing reaches the real kernel.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_interface.h"

namespace gmem::thunk::testing {

struct HmadviseRecord {
  int hnid;
  unsigned long start;
  std::size_t len;
  int behavior;
};

struct MadviseRecord {
  void* start;
  std::size_t len;
  int advice;
};

struct SvmRecord {
  void* start;
  HSAuint64 size;
  unsigned int attribute_count;
  std::vector<HSA_SVM_ATTRIBUTE> attributes;  // copied at call time
};

class FakeKernel final : public KernelInterface {
 public:
  // Programmable answers. The hmadvise probe and the advice calls share
  // hmadvise_results: one per call in order, then hmadvise_default.
  std::vector<int> hmadvise_results;
  int hmadvise_default = 0;
  int madvise_result = 0;
  HSAKMT_STATUS open_result = HSAKMT_STATUS_SUCCESS;
  HsaVersionInfo version{1, 17};
  HSAKMT_STATUS version_result = HSAKMT_STATUS_SUCCESS;
  HSAuint32 libhsakmt_node_count = 3;
  HSAKMT_STATUS properties_result = HSAKMT_STATUS_SUCCESS;
  HSAKMT_STATUS get_attr_result = HSAKMT_STATUS_SUCCESS;
  HSAKMT_STATUS set_attr_result = HSAKMT_STATUS_SUCCESS;
  int set_attr_errno = 0;

  // What was asked.
  std::vector<HmadviseRecord> hmadvise_calls;
  std::vector<MadviseRecord> madvise_calls;
  std::vector<SvmRecord> set_attr_calls;
  std::vector<SvmRecord> get_attr_calls;
  int open_calls = 0;
  int close_calls = 0;
  int version_calls = 0;
  int properties_calls = 0;

  int hmadvise(int hnid, unsigned long start, std::size_t len,
               int behavior) override {
    std::size_t index = hmadvise_calls.size();
    hmadvise_calls.push_back({hnid, start, len, behavior});
    return index < hmadvise_results.size() ? hmadvise_results[index]
                                           : hmadvise_default;
  }

  int madvise(void* start, std::size_t len, int advice) override {
    madvise_calls.push_back({start, len, advice});
    return madvise_result;
  }

  HSAKMT_STATUS open_kfd() override {
    ++open_calls;
    return open_result;
  }
  HSAKMT_STATUS close_kfd() override {
    ++close_calls;
    return HSAKMT_STATUS_SUCCESS;
  }
  HSAKMT_STATUS get_kfd_version(HsaVersionInfo* out) override {
    ++version_calls;
    *out = version;
    return version_result;
  }
  HSAKMT_STATUS acquire_system_properties(HsaSystemProperties* out) override {
    ++properties_calls;
    std::memset(out, 0, sizeof(*out));
    out->NumNodes = libhsakmt_node_count;
    return properties_result;
  }
  HSAKMT_STATUS svm_set_attr(void* start, HSAuint64 size, unsigned int count,
                             HSA_SVM_ATTRIBUTE* attributes,
                             int* os_error) override {
    set_attr_calls.push_back({start, size, count,
                              std::vector<HSA_SVM_ATTRIBUTE>(attributes, attributes + count)});
    *os_error = set_attr_errno;
    return set_attr_result;
  }
  HSAKMT_STATUS svm_get_attr(void* start, HSAuint64 size, unsigned int count,
                             HSA_SVM_ATTRIBUTE* attributes,
                             int* os_error) override {
    get_attr_calls.push_back({start, size, count,
                              std::vector<HSA_SVM_ATTRIBUTE>(attributes, attributes + count)});
    *os_error = get_attr_result == HSAKMT_STATUS_SUCCESS ? 0 : EPERM;
    return get_attr_result;
  }

  bool touched_kernel() const {
    return !hmadvise_calls.empty() || !madvise_calls.empty() ||
           !set_attr_calls.empty() || !get_attr_calls.empty() ||
           open_calls != 0;
  }
};

// The thunk owns the kernel interface it is given; this one forwards to a
// test's FakeKernel, so that the records outlive the thunk's copy.
class ForwardingKernel final : public KernelInterface {
 public:
  explicit ForwardingKernel(FakeKernel& target) : target_(target) {}
  int hmadvise(int hnid, unsigned long start, std::size_t len, int behavior) override {
    return target_.hmadvise(hnid, start, len, behavior);
  }
  int madvise(void* start, std::size_t len, int advice) override {
    return target_.madvise(start, len, advice);
  }
  HSAKMT_STATUS open_kfd() override { return target_.open_kfd(); }
  HSAKMT_STATUS close_kfd() override { return target_.close_kfd(); }
  HSAKMT_STATUS get_kfd_version(HsaVersionInfo* version) override {
    return target_.get_kfd_version(version);
  }
  HSAKMT_STATUS acquire_system_properties(HsaSystemProperties* properties) override {
    return target_.acquire_system_properties(properties);
  }
  HSAKMT_STATUS svm_set_attr(void* start, HSAuint64 size, unsigned int count,
                             HSA_SVM_ATTRIBUTE* attributes, int* saved_errno) override {
    return target_.svm_set_attr(start, size, count, attributes, saved_errno);
  }
  HSAKMT_STATUS svm_get_attr(void* start, HSAuint64 size, unsigned int count,
                             HSA_SVM_ATTRIBUTE* attributes, int* saved_errno) override {
    return target_.svm_get_attr(start, size, count, attributes, saved_errno);
  }

 private:
  FakeKernel& target_;
};

}  // namespace gmem::thunk::testing
