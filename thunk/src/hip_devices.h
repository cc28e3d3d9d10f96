// HIP device ordinals -> KFD nodes, the way ROCr and HIP number GPUs: ROCr
// lists the GPU nodes of the KFD topology in node order, keeps those that
// ROCR_VISIBLE_DEVICES names (indices or GPU-<unique id> UUIDs, in the
// order given), and HIP renumbers what is left through HIP_VISIBLE_DEVICES
// (or CUDA_VISIBLE_DEVICES) as indices into ROCr's list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"
#include "topology.h"

namespace gmem::thunk {

struct DeviceVisibility {
  const char* rocr_visible_devices = nullptr;  // null: unset
  const char* hip_visible_devices = nullptr;   // HIP_, else CUDA_VISIBLE_DEVICES
};

// The visibility variables of this process.
DeviceVisibility device_visibility_from_environment();

// KFD node id of each HIP device ordinal: result[ordinal]. As in ROCr and
// HIP, a list stops at its first entry that names no device (or one named
// already); an empty but set variable hides every GPU.
std::vector<std::uint32_t> hip_device_nodes(const Topology& topology,
                                            const DeviceVisibility& visibility);

// ROCr's UUID of a GPU: "GPU-" and the 16 hex digits of its unique_id.
std::string rocr_uuid(std::uint64_t unique_id);

}  // namespace gmem::thunk
