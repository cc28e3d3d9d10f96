#include <gmem/hmadvise.hpp>

int main() {
  try {
    gmem::prefetch(reinterpret_cast<void*>(0x10000), 4096, 0);
  } catch (const gmem::error& error) {
    return error.status() == HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED ? 0 : 1;
  }
  return 2;
}
