// numpy_util.h: numpy arrays across the boundary without copies, checked at the boundary.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "span.h"

namespace kg2tool {
namespace py = pybind11;

// A read-only view of a 1-D contiguous array of exactly dtype T; raises ValueError otherwise.
template <class T>
Span<const T> as_span(const py::handle& obj, const std::string& name) {
  if (!py::isinstance<py::array>(obj)) throw py::value_error(name + ": expected a numpy array");
  auto a = py::reinterpret_borrow<py::array>(obj);
  // Equivalent, not the same object: an unpickled array's int64 dtype is a new instance.
  if (!py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), py::dtype::of<T>().ptr()))
    throw py::value_error(name + ": expected dtype " + std::string(py::str(py::dtype::of<T>())) +
                          ", got " + std::string(py::str(a.dtype())));
  if (a.ndim() != 1) throw py::value_error(name + ": expected a 1-D array");
  if (!(a.flags() & py::array::c_style) && a.size() > 1)
    throw py::value_error(name + ": expected a contiguous array");
  return Span<const T>(static_cast<const T*>(a.data()), size_t(a.size()));
}

// Hands a vector to numpy without copying: a capsule owns the moved vector.
template <class T, class A>
py::array_t<T> to_numpy(std::vector<T, A>&& v) {
  auto* owner = new std::vector<T, A>(std::move(v));
  py::capsule cap(owner, [](void* p) { delete static_cast<std::vector<T, A>*>(p); });
  return py::array_t<T>({py::ssize_t(owner->size())}, {py::ssize_t(sizeof(T))}, owner->data(),
                        cap);
}

}  // namespace kg2tool
