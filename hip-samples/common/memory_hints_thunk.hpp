// The part of hsakmt-gmem's C API that MemoryHints calls, as an interface:
// thunk_c_api() forwards to the library, tests substitute a recorder.
#pragma once

#include <string>

#include "gmem/hsakmt_hmadvise.h"
#include "memory_hints.hpp"

namespace gmem_samples {

class ThunkApi {
 public:
  virtual ~ThunkApi() = default;
  virtual HSAKMT_STATUS open() = 0;
  virtual HSAKMT_STATUS close() = 0;
  virtual HSAKMT_STATUS backend(HSA_GMEM_BACKEND* backend) = 0;
  virtual HSAKMT_STATUS node_count(HSAuint32* count) = 0;
  virtual HSAKMT_STATUS node_info(HSAuint32 node, HSA_GMEM_NODE_INFO* info) = 0;
  virtual HSAKMT_STATUS node_from_hip_device(HSAint32 ordinal, HSAuint32* node) = 0;
  virtual HSAKMT_STATUS advise(HSAuint32 node, void* start, HSAuint64 bytes,
                               HSA_GMEM_HINT hint) = 0;
  virtual HSAKMT_STATUS prefetch_async(HSAuint32 node, void* start, HSAuint64 bytes,
                                       void* stream) = 0;
  virtual HSAKMT_STATUS async_error() = 0;
  // Why the last call on this thread failed.
  virtual std::string last_error_message() = 0;
};

}  // namespace gmem_samples
