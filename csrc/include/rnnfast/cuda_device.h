// Host-side queries of the CUDA runtime (compiled only when the CUDA engine is built).
#pragma once

namespace rnnfast {

// Usable devices now; 0 when there is no driver or no GPU (the runtime's error is swallowed here on
// purpose: "no device" is an answer, not a failure).
int cuda_device_count();
// The CUDA runtime version the module was built with (e.g. 13000).
int cuda_runtime_version();

}  // namespace rnnfast
