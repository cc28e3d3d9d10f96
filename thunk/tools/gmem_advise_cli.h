// gmem-advise: shows how hmadvise hints reach the kernel. The whole tool is
// this function so the unit tests can run it against a fake kernel and a
// fake sysfs tree.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>

#include "kernel_interface.h"

namespace gmem::tools {

struct CliEnvironment {
  thunk::KernelInterface& kernel;
  const char* backend_request;  // value of GMEM_THUNK_BACKEND, may be null
  std::size_t page_size;
  // The HSA runtime the rocr backend loads (GMEM_THUNK_HSA_RUNTIME or the
  // default soname).
  std::string hsa_runtime;
};

// Returns the process exit status: 0 done, 1 failed, 2 usage error.
int run_gmem_advise(int argc, const char* const* argv, std::ostream& out,
                    std::ostream& err, const CliEnvironment& environment);

}  // namespace gmem::tools
