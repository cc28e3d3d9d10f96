#include "hip_stream.h"

#include <dlfcn.h>

namespace gmem::thunk {

Status HipStreams::find(const std::string& library, HipStreams* streams) {
  void* symbol = nullptr;
  if (library.empty()) {
    symbol = dlsym(RTLD_DEFAULT, "hipLaunchHostFunc");
    // Loaded with RTLD_LOCAL (by a plugin, say): look in the loaded copy.
    for (const char* soname : {"libamdhip64.so.7", "libamdhip64.so.6",
                               "libamdhip64.so.5", "libamdhip64.so"}) {
      if (symbol != nullptr) break;
      if (void* handle = dlopen(soname, RTLD_NOW | RTLD_NOLOAD))
        symbol = dlsym(handle, "hipLaunchHostFunc");
    }
    if (symbol == nullptr)
      return Status::failure(HSAKMT_STATUS_NOT_SUPPORTED,
                             "no HIP runtime in this process (hipLaunchHostFunc "
                             "not found); a stream-ordered prefetch needs the "
                             "program's libamdhip64");
  } else {
    void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* reason = dlerror();
      return Status::failure(HSAKMT_STATUS_NOT_SUPPORTED,
                             "cannot load the HIP runtime " + library + ": " +
                                 (reason != nullptr ? reason : "unknown reason"));
    }
    symbol = dlsym(handle, "hipLaunchHostFunc");
    if (symbol == nullptr)
      return Status::failure(HSAKMT_STATUS_NOT_SUPPORTED,
                             "the HIP runtime " + library + " has no hipLaunchHostFunc");
  }
  streams->launch_host_func_ = reinterpret_cast<LaunchHostFunc>(symbol);
  return Status::success();
}

Status HipStreams::enqueue(void* stream, HostFunction function, void* data) const {
  int error = launch_host_func_(stream, function, data);
  if (error == 0) return Status::success();
  return Status::failure(HSAKMT_STATUS_ERROR,
                         "hipLaunchHostFunc failed (hipError_t " +
                             std::to_string(error) + ")");
}

}  // namespace gmem::thunk
