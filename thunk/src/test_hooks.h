// Seams for the unit tests of the C API. Not installed, not exported.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "kernel_interface.h"

namespace gmem::thunk::testing {

using KernelFactory = std::function<std::unique_ptr<KernelInterface>()>;

// Used by the next hsaKmtGmemOpen() that actually opens (open count 0).
// An empty factory / root restores the real kernel / "/sys".
void set_kernel_factory(KernelFactory factory);
void set_sysfs_root(std::string sysfs_root);
// The HSA runtime the next open loads; empty restores the default
// (GMEM_THUNK_HSA_RUNTIME, else libhsa-runtime64.so.1).
void set_hsa_runtime(std::string library);
// The HIP runtime stream-ordered prefetches use; nullopt restores the
// default (GMEM_THUNK_HIP_RUNTIME, else the program's own).
void set_hip_runtime(std::optional<std::string> library);

}  // namespace gmem::thunk::testing
