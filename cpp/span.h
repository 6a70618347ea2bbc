// span.h: a minimal non-owning view (C++17 has no std::span).
#pragma once
#include <cstddef>

namespace kg2tool {

template <class T>
struct Span {
  T* ptr = nullptr;
  size_t len = 0;
  Span() = default;
  Span(T* p, size_t n) : ptr(p), len(n) {}
  T* begin() const { return ptr; }
  T* end() const { return ptr + len; }
  T* data() const { return ptr; }
  size_t size() const { return len; }
  bool empty() const { return len == 0; }
  T& operator[](size_t i) const { return ptr[i]; }
};

}  // namespace kg2tool
