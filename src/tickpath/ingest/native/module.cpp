// Python binding of ingest's native decoder: tickpath.ingest._decode (see decode.hpp).
//
// Decoder(tags, tables) takes the layout tickpath/ingest/native.py builds from the event structs;
// decode(payloads) parses a batch without the GIL and returns, per table, the batch positions of
// its rows and its column buffers (bytes, wrapped by pyarrow without another copy), or None for a
// table it refused; plus the positions of the odd payloads.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "decode.hpp"

namespace py = pybind11;
using namespace tp::ingest;

namespace {

template <typename T>
py::bytes raw(const std::vector<T>& v) {
  return py::bytes(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

py::object validity(const Column& c) { return c.nulls ? py::object(raw(c.valid)) : py::object(py::none()); }

py::tuple column(const Column& c) {
  switch (c.type) {
    case CType::I64:
      return py::make_tuple(raw(c.i64), validity(c));
    case CType::I32:
      return py::make_tuple(raw(c.i32), validity(c));
    case CType::BOOL:
      return py::make_tuple(raw(c.bits), validity(c));
    case CType::STR:
      return py::make_tuple(raw(c.off), py::bytes(c.data), validity(c));
    case CType::LEVELS:
      return py::make_tuple(raw(c.off), raw(c.p_off), py::bytes(c.p_data), raw(c.q_off), py::bytes(c.q_data));
  }
  throw std::logic_error("unknown column type");
}

std::vector<TagSpec> tag_specs(const py::list& tags) {
  std::vector<TagSpec> out;
  for (py::handle h : tags) {
    auto t = h.cast<py::tuple>();
    TagSpec s;
    s.tag = t[0].cast<std::string>();
    s.table = t[1].cast<int>();
    s.kind_col = t[2].cast<int>();
    s.kind = t[3].cast<std::string>();
    for (py::handle kh : t[4].cast<py::list>()) {
      auto k = kh.cast<py::tuple>();
      s.keys.push_back(KeySpec{k[0].cast<std::string>(), k[1].cast<int>(), VType(k[2].cast<int>()), k[3].cast<bool>(),
                               k[4].cast<std::vector<std::string>>()});
    }
    if (s.keys.size() > 64) throw py::value_error("at most 64 keys per tag");
    out.push_back(std::move(s));
  }
  return out;
}

struct PyDecoder {
  Decoder dec;
  std::mutex busy;  // one batch at a time per decoder (it holds the batch's columns)

  PyDecoder(const py::list& tags, const std::vector<std::vector<int>>& tables)
      : dec(tag_specs(tags), ctypes(tables)) {}

  static std::vector<std::vector<CType>> ctypes(const std::vector<std::vector<int>>& tables) {
    std::vector<std::vector<CType>> out;
    for (const auto& t : tables) {
      std::vector<CType> cols;
      for (int c : t) {
        if (c < 0 || c > int(CType::LEVELS)) throw py::value_error("unknown column type");
        cols.push_back(CType(c));
      }
      out.push_back(std::move(cols));
    }
    return out;
  }

  py::tuple decode(const py::list& payloads) {
    // A tuple holds a reference to every payload while the GIL is released.
    py::tuple held = py::reinterpret_steal<py::tuple>(PySequence_Tuple(payloads.ptr()));
    if (!held) throw py::error_already_set();
    const Py_ssize_t n = PyTuple_GET_SIZE(held.ptr());
    std::vector<std::string_view> views(static_cast<size_t>(n));
    std::vector<char> is_bytes(static_cast<size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* o = PyTuple_GET_ITEM(held.ptr(), i);
      if (PyBytes_Check(o)) {  // bytes are immutable; anything else is the reference's business
        views[size_t(i)] = std::string_view(PyBytes_AS_STRING(o), size_t(PyBytes_GET_SIZE(o)));
        is_bytes[size_t(i)] = 1;
      }
    }
    std::unique_lock<std::mutex> lock(busy, std::try_to_lock);
    if (!lock.owns_lock()) throw std::runtime_error("this Decoder is busy decoding a batch in another thread");
    std::vector<int64_t> odd_extra;
    {
      py::gil_scoped_release nogil;
      dec.reset();
      for (Py_ssize_t i = 0; i < n; ++i) {
        if (is_bytes[size_t(i)]) dec.feed(views[size_t(i)], int64_t(i));
        else odd_extra.push_back(int64_t(i));
      }
    }
    py::list tables;
    for (const Table& t : dec.tables()) {
      if (t.refused) {
        tables.append(py::none());
        continue;
      }
      py::list cols;
      for (const Column& c : t.cols) cols.append(column(c));
      tables.append(py::make_tuple(raw(t.idx), cols));
    }
    std::vector<int64_t> odd = dec.odd();
    odd.insert(odd.end(), odd_extra.begin(), odd_extra.end());
    return py::make_tuple(tables, raw(odd));
  }
};

}  // namespace

PYBIND11_MODULE(_decode, m) {
  m.doc() = "ingest's native decoder of bus payloads into Arrow column buffers (tickpath.ingest.native)";
  py::class_<PyDecoder>(m, "Decoder")
      .def(py::init<const py::list&, const std::vector<std::vector<int>>&>(), py::arg("tags"), py::arg("tables"))
      .def("decode", &PyDecoder::decode, py::arg("payloads"),
           "(tables, odd): per table None (refused) or (row positions, column buffers); odd positions (int64)");
}
