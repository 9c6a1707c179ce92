#include <cuda_runtime.h>

#include "rnnfast/cuda_device.h"

namespace rnnfast {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls start clean
    return 0;
  }
  return n;
}

int cuda_runtime_version() { return CUDART_VERSION; }

}  // namespace rnnfast
