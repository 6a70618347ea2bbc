// register_keys.cpp: binds keys::read_tsv_ids (see keys.h); conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>

#include "keys.h"
#include "numpy_util.h"

namespace kg2tool {

void register_keys(py::module_& m) {
  m.def(
      "read_tsv_ids",
      [](const std::string& path, int64_t start, int threads, int64_t split_bytes) {
        if (start < 0) throw py::value_error("start must be >= 0");
        keys::TsvIds r;
        {
          py::gil_scoped_release nogil;
          r = keys::read_tsv_ids(path, start, threads, split_bytes);
        }
        py::dict d;
        d["ok"] = r.ok;
        d["reason"] = r.reason;
        d["line"] = r.line;
        if (r.ok) {
          d["heads"] = to_numpy(std::move(r.heads));
          d["relations"] = to_numpy(std::move(r.relations));
          d["tails"] = to_numpy(std::move(r.tails));
          d["entity_offsets"] = to_numpy(std::move(r.entities.offsets));
          d["entity_bytes"] = to_numpy(std::move(r.entities.bytes));
          d["relation_offsets"] = to_numpy(std::move(r.relation_keys.offsets));
          d["relation_bytes"] = to_numpy(std::move(r.relation_keys.bytes));
        }
        return d;
      },
      py::arg("path"), py::arg("start") = 0, py::arg("threads") = 0,
      py::arg("split_bytes") = int64_t(1) << 26,
      "A plain head<TAB>relation<TAB>tail file to int32 ids by sorted key, or ok=False "
      "(with the reason) when the file needs the general reader.");
}

}  // namespace kg2tool
