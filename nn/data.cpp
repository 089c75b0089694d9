#include "rotor/nn/data.h"

#include <cstdio>
#include <cstring>
#include <numeric>

#include "rotor/core/generator.h"
#include "rotor/core/view.h"
#include "rotor/nn/checkpoint.h"

namespace rotor::nn {

namespace {
// Bytes of one row of a contiguous tensor whose first dim is the rows.
size_t row_bytes_of(const Tensor& t) {
  return t.size(0) ? size_t(t.numel() / t.size(0)) * dtype_size(t.dtype()) : 0;
}
Shape with_rows(const Tensor& t, int64_t rows) {
  Shape s = t.shape();
  s[0] = rows;
  return s;
}
}  // namespace

TokenData TokenData::rows(int64_t begin, int64_t end) const {
  ROTOR_CHECK(0 <= begin && begin <= end && end <= size(), "TokenData", "rows [", begin, ", ", end,
              ") out of range for ", size(), " rows");
  TokenData out;
  for (auto [src, dst] : {std::pair{&inputs, &out.inputs}, std::pair{&labels, &out.labels}}) {
    const Tensor c = core::contiguous(*src);
    const size_t rb = row_bytes_of(c);
    *dst = Tensor::empty(with_rows(c, end - begin), c.dtype());
    if (rb) std::memcpy(dst->raw_data(), static_cast<const char*>(c.raw_data()) + size_t(begin) * rb, size_t(end - begin) * rb);
  }
  return out;
}

uint64_t fnv1a(const void* data, size_t bytes, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string data_fingerprint(const TokenData& data) {
  uint64_t h = fnv1a(nullptr, 0);
  for (const Tensor& t : {data.inputs, data.labels}) {
    Tensor c = core::contiguous(t);
    h = fnv1a(c.raw_data(), size_t(c.numel()) * dtype_size(c.dtype()), h);
  }
  return hex64(h);
}

BatchLoader::BatchLoader(TokenData data, int64_t batch_size, uint64_t seed)
    : data_(std::move(data)), batch_(batch_size), seed_(seed) {
  // Token data: int64 [N, T] both. Any other data (a regression's float features and targets):
  // rows first, the same number of rows.
  ROTOR_CHECK(data_.inputs.defined() && data_.labels.defined() && data_.inputs.dim() >= 1 &&
                  data_.labels.dim() >= 1 && data_.inputs.size(0) == data_.labels.size(0),
              "BatchLoader", "inputs and labels must have their rows first and as many of them");
  if (data_.inputs.dtype() == DType::Int64 || data_.labels.dtype() == DType::Int64)
    ROTOR_CHECK(data_.inputs.dim() == 2 && data_.labels.shape() == data_.inputs.shape() &&
                    data_.inputs.dtype() == DType::Int64 && data_.labels.dtype() == DType::Int64,
                "BatchLoader", "token inputs and labels must be int64 [N, T] of the same shape, got ",
                dtype_name(data_.inputs.dtype()), " ", shape_str(data_.inputs.shape()), " and ",
                dtype_name(data_.labels.dtype()), " ", shape_str(data_.labels.shape()));
  data_.inputs = core::contiguous(data_.inputs);
  data_.labels = core::contiguous(data_.labels);
  ROTOR_CHECK(batch_size > 0 && batch_size <= data_.size(), "BatchLoader", "batch size ", batch_size,
              " must be in [1, ", data_.size(), "] (the number of rows)");
}

void BatchLoader::set_position(Position p) {
  ROTOR_CHECK(p.epoch >= 0 && p.cursor >= 0 && p.cursor <= data_.size(), "BatchLoader",
              "invalid position (epoch ", p.epoch, ", cursor ", p.cursor, ")");
  pos_ = p;
}

Metadata BatchLoader::position_metadata() const {
  return {{"loader_epoch", std::to_string(pos_.epoch)}, {"loader_cursor", std::to_string(pos_.cursor)}};
}

void BatchLoader::restore_position(const SafetensorsContent& file, const std::string& what) {
  set_position({metadata_int(file, "loader_epoch", "resume", what), metadata_int(file, "loader_cursor", "resume", what)});
}

void BatchLoader::shuffle() {
  // Fisher-Yates from the counters [epoch·N, (epoch+1)·N) of the seed's stream.
  const int64_t n = data_.size();
  order_.resize(size_t(n));
  std::iota(order_.begin(), order_.end(), int64_t(0));
  Generator gen(seed_);
  gen.set_offset(uint64_t(pos_.epoch) * uint64_t(n));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order_[size_t(i)], order_[size_t(gen.next_int(0, i + 1))]);
  order_epoch_ = pos_.epoch;
}

TokenData BatchLoader::next() {
  if (pos_.cursor + batch_ > data_.size()) pos_ = {pos_.epoch + 1, 0};
  if (order_epoch_ != pos_.epoch) shuffle();
  TokenData out{Tensor::empty(with_rows(data_.inputs, batch_), data_.inputs.dtype()),
                Tensor::empty(with_rows(data_.labels, batch_), data_.labels.dtype())};
  const size_t in_bytes = row_bytes_of(data_.inputs), label_bytes = row_bytes_of(data_.labels);
  const auto* in = static_cast<const char*>(data_.inputs.raw_data());
  const auto* lab = static_cast<const char*>(data_.labels.raw_data());
  for (int64_t b = 0; b < batch_; ++b) {
    const size_t r = size_t(order_[size_t(pos_.cursor + b)]);
    std::memcpy(static_cast<char*>(out.inputs.raw_data()) + size_t(b) * in_bytes, in + r * in_bytes, in_bytes);
    std::memcpy(static_cast<char*>(out.labels.raw_data()) + size_t(b) * label_bytes, lab + r * label_bytes, label_bytes);
  }
  pos_.cursor += batch_;
  return out;
}

LengthCurriculum::LengthCurriculum(std::unique_ptr<Loader> inner, int64_t start, int64_t every)
    : inner_(std::move(inner)), start_(start), every_(every) {
  ROTOR_CHECK(inner_, "LengthCurriculum", "needs a loader");
  ROTOR_CHECK(start_ >= 1 && every_ >= 1, "LengthCurriculum", "start ", start_, " and every ", every_,
              " must be at least 1");
}

int64_t LengthCurriculum::columns(int64_t batch_index, int64_t full) const {
  int64_t c = start_;
  for (int64_t d = batch_index / every_; d > 0 && c < full; --d) c *= 2;
  return std::min(c, full);
}

TokenData LengthCurriculum::next() {
  TokenData b = inner_->next();
  ROTOR_CHECK(b.inputs.dim() >= 2 && b.labels.dim() >= 2 && b.labels.size(1) == b.inputs.size(1), "LengthCurriculum",
              "batches should be [B, T, ...] inputs and labels, got ", shape_str(b.inputs.shape()), " and ",
              shape_str(b.labels.shape()));
  const int64_t c = columns(served_++, b.inputs.size(1));
  if (c == b.inputs.size(1)) return b;
  return {contiguous(core::narrow(b.inputs, 1, 0, c)), contiguous(core::narrow(b.labels, 1, 0, c))};
}

std::string LengthCurriculum::fingerprint() const {
  return inner_->fingerprint() + "+prefixes(" + std::to_string(start_) + "," + std::to_string(every_) + ")";
}

Metadata LengthCurriculum::position_metadata() const {
  Metadata m = inner_->position_metadata();
  m.push_back({"curriculum_batches", std::to_string(served_)});
  return m;
}

void LengthCurriculum::restore_position(const SafetensorsContent& file, const std::string& what) {
  inner_->restore_position(file, what);
  served_ = metadata_int(file, "curriculum_batches", "resume", what);
  ROTOR_CHECK(served_ >= 0, "resume", what, ": curriculum_batches ", served_, " is negative");
}

}  // namespace rotor::nn
