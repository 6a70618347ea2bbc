// register_engine.cpp: binds query sampling, execution and matching (engine.h).
#include "bindings.h"

namespace kg2tool {
void register_engine(py::module_& m) { (void)m; }
}  // namespace kg2tool
