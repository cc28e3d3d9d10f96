#include <cstdlib>
#include <iostream>

#include <unistd.h>

#include "gmem_advise_cli.h"
#include "session.h"

int main(int argc, char** argv) {
  auto kernel = gmem::thunk::make_system_kernel_interface();
  long page_size = sysconf(_SC_PAGESIZE);
  const char* runtime = std::getenv(gmem::thunk::kHsaRuntimeEnvironmentVariable);
  gmem::tools::CliEnvironment environment{
      *kernel, std::getenv(gmem::thunk::kBackendEnvironmentVariable),
      page_size > 0 ? static_cast<std::size_t>(page_size) : 4096,
      runtime != nullptr && runtime[0] != '\0' ? runtime
                                                : gmem::thunk::kDefaultHsaRuntime};
  return gmem::tools::run_gmem_advise(argc, argv, std::cout, std::cerr,
                                      environment);
}
