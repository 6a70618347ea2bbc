// register_text.cpp: binds text::concat (see text.h); conversion and checks only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
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

// A string column: (offsets int64, data uint8) or, with offsets None, (views, [buffers]).
text::StrCol parse_col(const py::handle& offsets, const py::handle& data, const std::string& what) {
  text::StrCol col;
  if (offsets.is_none()) {  // string views: data is (views uint8, [buffers uint8])
    if (!py::isinstance<py::tuple>(data) || py::len(data) != 2)
      throw py::type_error(what + ": expected (views, buffers) with offsets None");
    auto vb = py::reinterpret_borrow<py::tuple>(data);
    col.is_view = true;
    col.views = as_span<uint8_t>(vb[0], what + " views");
    if (!py::isinstance<py::list>(vb[1])) throw py::type_error(what + ": buffers must be a list");
    for (const auto& b : py::reinterpret_borrow<py::list>(vb[1]))
      col.bufs.push_back(as_span<uint8_t>(b, what + " buffer"));
  } else {
    col.off = as_span<int64_t>(offsets, what + " offsets");
    col.data = as_span<uint8_t>(data, what + " data");
  }
  return col;
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
    p.col = parse_col(t[1], t[2], what);
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

int64_t write_text(int fd, int64_t n, const py::list& parts, const py::bytes& end) {
  if (n < 0) throw py::value_error("n must be >= 0");
  if (fd < 0) throw py::value_error("fd must be >= 0");
  std::vector<text::Part> ps;
  ps.reserve(parts.size());
  for (size_t k = 0; k < parts.size(); ++k) ps.push_back(parse_part(parts[k], k));
  text::validate(size_t(n), ps);
  std::string e = end;
  size_t written = 0;
  int error = 0;
  {
    py::gil_scoped_release nogil;
    try {
      written = text::write_rows(fd, size_t(n), ps, e);
    } catch (const std::system_error& err) {
      error = err.code().value();
    }
  }
  if (error) {  // OSError with the write's errno (e.g. ENOSPC), as os.write raises
    errno = error;
    PyErr_SetFromErrno(PyExc_OSError);
    throw py::error_already_set();
  }
  return int64_t(written);
}

py::array_t<uint8_t> doubled_words(const py::object& offsets, const py::object& data) {
  text::StrCol col = parse_col(offsets, data, "column");
  text::check_column(col, "column");
  std::vector<uint8_t> out;
  {
    py::gil_scoped_release nogil;  // the spans point into arrays the caller keeps alive
    out = text::doubled_words(col);
  }
  return to_numpy(std::move(out));
}

}  // namespace

void register_text(py::module_& m) {
  m.def("concat_text", &concat_text, py::arg("n"), py::arg("parts"),
        "n strings, each the concatenation of the parts (see cpp/text.h): (0, bytes) literal; "
        "(1, offsets, data, index|None, escape) a string column (offsets None: data is "
        "(views uint8[16 m], [buffers uint8]), Arrow string views); (2, int64[n]) integers; "
        "(3, offsets, data, index|None, escape, groups int64[n+1], sep bytes, trailing) grouped "
        "join. Returns (offsets int64[n+1], data uint8): Arrow large-string buffers.");
  m.def("doubled_words", &doubled_words, py::arg("offsets"), py::arg("data"),
        "Per value of a string column (as concat_text takes one): 1 when two adjacent words "
        "repeat (the question lint's doubled_word rule), 0 when not, 2 when the value has "
        "non-ASCII bytes (left to the caller). Returns uint8[m]; the GIL is released.");
  m.def("write_text", &write_text, py::arg("fd"), py::arg("n"), py::arg("parts"), py::arg("end"),
        "The rows concat_text would build, each followed by `end`, written to the file "
        "descriptor fd from its current offset through a small reused buffer; returns the "
        "number of bytes written. A failed write raises OSError.");
}

}  // namespace kg2tool
