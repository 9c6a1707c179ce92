// Module rnnfast._core: the PYBIND11_MODULE, the build information and the cell codes. The entry points
// are registered by one function per family (declared in bindings_util.h, one bindings_<family>.cpp each).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "rnnfast/common.h"
#include "rnnfast/cpu_engine.h"
#include "rnnfast/parallel.h"
#ifdef RNNFAST_WITH_CUDA
#include "rnnfast/cuda_device.h"
#endif
#include "bindings_util.h"

namespace py = pybind11;

namespace {

void register_info(py::module_& m) {
  m.def("build_info", []() {
    py::dict d;
    d["version"] = RNNFAST_VERSION;
    d["blas"] = RNNFAST_BLAS_NAME;
    d["blas_core"] = rnnfast::blas_core_name();
    d["threads"] = rnnfast::engine_threads();
    d["cpu_isa"] = rnnfast::cpu_engine().tier;
    d["cpu_isa_compiled"] = rnnfast::cpu_tiers_compiled();
    d["cpu_isa_supported"] = rnnfast::cpu_tiers_supported();
    d["cpu_features"] = rnnfast::cpu_features();
#ifdef RNNFAST_WITH_CUDA
    d["cuda_compiled"] = true;
    d["cuda_runtime_version"] = rnnfast::cuda_runtime_version();
#else
    d["cuda_compiled"] = false;
#endif
    d["compiler"] = __VERSION__;
    return d;
  });
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw std::invalid_argument("rnnfast._core.set_num_threads: argument 'n' must be >= 1");
        rnnfast::set_engine_threads(n);
      },
      "Limit the CPU engine's threads for the calls that start from now on (RNNFAST_NUM_THREADS at run time).",
      py::arg("n"));
  m.def(
      "cuda_device_count",
      []() {
#ifdef RNNFAST_WITH_CUDA
        return rnnfast::cuda_device_count();
#else
        return 0;
#endif
      },
      "Number of usable CUDA devices now (0 without a driver, a GPU, or CUDA support compiled in).");
}

// CELL_CODES: {name: code} of the recurrent cells (rnnfast::Cell); CELL_GATES: {code: gates per unit}.
void register_cells(py::module_& m) {
  py::dict codes, gates;
  for (int c = 0; c < rnnfast::kCellCount; ++c) {
    codes[rnnfast::kCellNames[c]] = c;
    gates[py::int_(c)] = rnnfast::gates_of(rnnfast::cell_from_int(c));
  }
  m.attr("CELL_CODES") = codes;
  m.attr("CELL_GATES") = gates;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnfast compiled engines (CPU; CUDA when compiled in)";
  rnnfast::cpu_engine();  // choose the CPU tier now: a bad RNNFAST_CPU_ISA fails the import with its reason
  rnnfast::blas_single_threaded();  // the engine's own threads split the work (see rnnfast/parallel.h)
  register_info(m);
  register_cells(m);
  register_recurrent(m);
  register_reservoir(m);
  register_mrnn(m);
  register_rop(m);
  register_char(m);
  register_train(m);
  register_statespace(m);
  register_online(m);
#ifdef RNNFAST_WITH_CUDA
  register_cuda(m);
#endif
}
