// The CUDA bindings (csrc/bindings_cuda.cpp) over the kernels compiled for the host with the stand-in
// cuda_runtime.h beside this file: module _core_emu, built by tests/test_cuda_emulation.py.
#include <pybind11/pybind11.h>

void register_cuda(pybind11::module_& m);

PYBIND11_MODULE(_core_emu, m) { register_cuda(m); }
