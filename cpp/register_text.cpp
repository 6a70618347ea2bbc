// register_text.cpp: binds text::concat (see text.h); conversion and checks only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "numpy_util.h"
#include "text.h"

namespace kg2tool {
namespace {

std::string bytes_of(const py::handle& h, const std::string& what) {
  if (!py::isinstance<py::bytes>(h)) throw py::type_error(what + ": expected bytes");
  return std::string(py::reinterpret_borrow<py::bytes>(h));
}

bool bool_of(const py::handle& h, const std::string& what) {
  if (!py::isinstance<py::bool_>(h)) throw py::type_error(what + ": expected a bool");
  return h.cast<bool>();
}

text::Part parse_part(const py::handle& h, size_t k) {
  std::string what = "part " + std::to_string(k);
  if (!py::isinstance<py::tuple>(h)) throw py::type_error(what + ": expected a tuple");
  auto t = py::reinterpret_borrow<py::tuple>(h);
  if (t.size() < 1 || !py::isinstance<py::int_>(t[0]))
    throw py::type_error(what + ": expected (kind, ...) with an int kind");
  int kind = t[0].cast<int>();
  static const size_t sizes[] = {2, 5, 2, 8};
  if (kind < 0 || kind > 3) throw py::value_error(what + ": unknown kind " + std::to_string(kind));
  if (t.size() != sizes[kind])
    throw py::value_error(what + ": kind " + std::to_string(kind) + " takes " +
                          std::to_string(sizes[kind]) + " fields, got " + std::to_string(t.size()));
  text::Part p;
  p.kind = static_cast<text::PartKind>(kind);
  if (kind == 0) {
    p.lit = bytes_of(t[1], what);
  } else if (kind == 2) {
    p.ints = as_span<int64_t>(t[1], what + " integers");
  } else {
    p.col.off = as_span<int64_t>(t[1], what + " offsets");
    p.col.data = as_span<uint8_t>(t[2], what + " data");
    if (!t[3].is_none()) {
      p.index = as_span<int64_t>(t[3], what + " index");
      p.has_index = true;
    }
    p.escape = bool_of(t[4], what + " escape");
    if (kind == 3) {
      p.groups = as_span<int64_t>(t[5], what + " groups");
      p.lit = bytes_of(t[6], what + " separator");
      p.trailing = bool_of(t[7], what + " trailing");
    }
  }
  return p;
}

py::tuple concat_text(int64_t n, const py::list& parts) {
  if (n < 0) throw py::value_error("n must be >= 0");
  std::vector<text::Part> ps;
  ps.reserve(parts.size());
  for (size_t k = 0; k < parts.size(); ++k) ps.push_back(parse_part(parts[k], k));
  text::validate(size_t(n), ps);
  text::Built b;
  {
    py::gil_scoped_release nogil;  // the spans point into arrays `parts` keeps alive
    b = text::concat(size_t(n), ps);
  }
  text::Bytes* bytes = b.data.release();  // owned by the capsule from here on
  py::capsule owner(bytes, [](void* p) { delete static_cast<text::Bytes*>(p); });
  py::array_t<uint8_t> data({py::ssize_t(bytes->size())}, {py::ssize_t(1)}, bytes->data(), owner);
  return py::make_tuple(to_numpy(std::move(b.off)), data);
}

}  // namespace

void register_text(py::module_& m) {
  m.def("concat_text", &concat_text, py::arg("n"), py::arg("parts"),
        "n strings, each the concatenation of the parts (see cpp/text.h): (0, bytes) literal; "
        "(1, offsets, data, index|None, escape) a string column; (2, int64[n]) integers; "
        "(3, offsets, data, index|None, escape, groups int64[n+1], sep bytes, trailing) grouped "
        "join. Returns (offsets int64[n+1], data uint8): Arrow large-string buffers.");
}

}  // namespace kg2tool
