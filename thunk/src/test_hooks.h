// Seams for the unit tests of the C API. Not installed, not exported.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "kernel_interface.h"

namespace gmem::thunk::testing {

using KernelFactory = std::function<std::unique_ptr<KernelInterface>()>;

// Used by the next hsaKmtGmemOpen() that actually opens (open count 0).
// An empty factory / root restores the real kernel / "/sys".
void set_kernel_factory(KernelFactory factory);
void set_sysfs_root(std::string sysfs_root);

}  // namespace gmem::thunk::testing
