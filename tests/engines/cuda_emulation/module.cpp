// The CUDA bindings (csrc/bindings_cuda.cpp) over the kernels compiled for the host with the stand-in
// cuda_runtime.h beside this file: module _core_emu, built by tests/cuda_emulation/emulate.py. Also the
// emulation's own controls (emu_*): fault injection and stream capture (see cuda_runtime.h).
#include <pybind11/pybind11.h>

#include "cuda_runtime.h"

void register_cuda(pybind11::module_& m);

PYBIND11_MODULE(_core_emu, m) {
  register_cuda(m);
  m.def("emu_fail_launch", [](long k) { emu::fail_at = emu::launches + k; },
        "The k-th kernel launched from now on (0: the next) faults, as with an illegal address.");
  m.def("emu_reset", &emu::reset, "Clear a fault and any capture in progress.");
  m.def("emu_launches", [] { return emu::launches; }, "Kernels run so far.");
  m.def("emu_begin_capture", &emu::begin_capture);
  m.def("emu_end_capture", &emu::end_capture, "The id of the graph recorded since emu_begin_capture.");
  m.def("emu_graph_launch", &emu::graph_launch, pybind11::arg("graph"));
}
