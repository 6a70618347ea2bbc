// module.cpp: the kg2tool._core extension; each area binds itself in register_<area>.cpp.
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "bindings.h"

namespace kg2tool { void register_text(pybind11::module_& m); }  // register_text.cpp
namespace kg2tool { void register_keys(pybind11::module_& m); }  // register_keys.cpp

PYBIND11_MODULE(_core, m) {
  m.doc() = "kg2tool native core: CSR graph, query sampling, execution and matching.";
  m.attr("__version__") = KG2TOOL_VERSION;
  pybind11::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::out_of_range& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    }
  });
  kg2tool::register_graph(m);
  kg2tool::register_engine(m);
  kg2tool::register_text(m);
  kg2tool::register_keys(m);
}
