// Python binding of ingest's native decoder: tickpath.ingest._decode (see decode.hpp).
//
// Decoder(tags, tables) takes the layout tickpath/ingest/native.py builds from the event structs;
// decode(payloads) parses a batch without the GIL and returns, per table, the batch positions of
// its rows and its column buffers (bytes, wrapped by pyarrow without another copy), or None for a
// table it refused; plus the positions of the odd payloads.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
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

// A plain non-negative decimal token (what nats-server writes for sizes); false otherwise.
bool size_token(const char* p, const char* e, size_t& out) {
  if (p == e || e - p > 12) return false;
  out = 0;
  for (; p < e; ++p) {
    if (*p < '0' || *p > '9') return false;
    out = out * 10 + size_t(*p - '0');
  }
  return true;
}

// The bulk delivery split of tickpath.nats.internals.split_deliveries, in C++: back-to-back
// ``HMSG <subject> <sid> <reply> <header bytes> <total bytes>`` frames of subscription ``sid`` at
// the front of ``buf`` appended to ``out`` as (reply, payload, headers); returns the bytes taken.
// It stops where the reference stops (any other frame, a status's empty reply, an incomplete one).
Py_ssize_t split_deliveries(py::bytearray buf, py::bytes sid, py::list out) {
  const char* base = PyByteArray_AS_STRING(buf.ptr());
  const size_t n = size_t(PyByteArray_GET_SIZE(buf.ptr()));
  const std::string_view want(PyBytes_AS_STRING(sid.ptr()), size_t(PyBytes_GET_SIZE(sid.ptr())));
  size_t pos = 0;
  while (n - pos >= 5 && std::memcmp(base + pos, "HMSG ", 5) == 0) {
    const char* line = base + pos + 5;
    const char* eol = static_cast<const char*>(memmem(line, n - pos - 5, "\r\n", 2));
    if (eol == nullptr) break;
    std::string_view tok[5];
    size_t k = 0;
    const char* t = line;
    for (const char* c = line;; ++c) {
      if (c == eol || *c == ' ') {
        if (k == 5) {
          k = 6;  // more tokens than a delivery has
          break;
        }
        tok[k++] = std::string_view(t, size_t(c - t));
        t = c + 1;
        if (c == eol) break;
      }
    }
    size_t hdr, total;
    if (k != 5 || tok[2].empty() || tok[1] != want) break;
    if (!size_token(tok[3].data(), tok[3].data() + tok[3].size(), hdr) ||
        !size_token(tok[4].data(), tok[4].data() + tok[4].size(), total) || hdr > total)
      break;  // not what nats-server writes: the protocol parser decides
    const size_t body = size_t(eol - base) + 2, end = body + total;
    if (end + 2 > n) break;  // payload not complete yet
    PyObject* reply = PyBytes_FromStringAndSize(tok[2].data(), Py_ssize_t(tok[2].size()));
    PyObject* payload = PyBytes_FromStringAndSize(base + body + hdr, Py_ssize_t(total - hdr));
    PyObject* headers = PyBytes_FromStringAndSize(base + body, Py_ssize_t(hdr));
    PyObject* item = (reply && payload && headers) ? PyTuple_Pack(3, reply, payload, headers) : nullptr;
    Py_XDECREF(reply), Py_XDECREF(payload), Py_XDECREF(headers);
    if (item == nullptr || PyList_Append(out.ptr(), item) != 0) {
      Py_XDECREF(item);
      throw py::error_already_set();
    }
    Py_DECREF(item);
    pos = end + 2;
  }
  return Py_ssize_t(pos);
}

}  // namespace

PYBIND11_MODULE(_decode, m) {
  m.doc() = "ingest's native decoder of bus payloads into Arrow column buffers (tickpath.ingest.native)";
  py::class_<PyDecoder>(m, "Decoder")
      .def(py::init<const py::list&, const std::vector<std::vector<int>>&>(), py::arg("tags"), py::arg("tables"))
      .def("decode", &PyDecoder::decode, py::arg("payloads"),
           "(tables, odd): per table None (refused) or (row positions, column buffers); odd positions (int64)");
  m.def("split_deliveries", &split_deliveries, py::arg("buf"), py::arg("sid"), py::arg("out"),
        "Append the deliveries of subscription sid at the front of buf to out; the bytes taken");
}
