#include "rotor/nn/data.h"

#include <cstdio>
#include <cstring>
#include <numeric>

#include "rotor/core/generator.h"
#include "rotor/nn/checkpoint.h"

namespace rotor::nn {

TokenData TokenData::rows(int64_t begin, int64_t end) const {
  ROTOR_CHECK(0 <= begin && begin <= end && end <= size(), "TokenData", "rows [", begin, ", ", end,
              ") out of range for ", size(), " rows");
  const int64_t T = seq_len();
  TokenData out{Tensor::empty({end - begin, T}, DType::Int64), Tensor::empty({end - begin, T}, DType::Int64)};
  std::memcpy(out.inputs.data<int64_t>(), inputs.data<int64_t>() + begin * T, size_t((end - begin) * T) * 8);
  std::memcpy(out.labels.data<int64_t>(), labels.data<int64_t>() + begin * T, size_t((end - begin) * T) * 8);
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
  ROTOR_CHECK(data_.inputs.defined() && data_.inputs.dim() == 2 && data_.labels.shape() == data_.inputs.shape() &&
                  data_.inputs.dtype() == DType::Int64 && data_.labels.dtype() == DType::Int64,
              "BatchLoader", "inputs and labels must be int64 [N, T] of the same shape");
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
  const int64_t T = data_.seq_len();
  TokenData out{Tensor::empty({batch_, T}, DType::Int64), Tensor::empty({batch_, T}, DType::Int64)};
  for (int64_t b = 0; b < batch_; ++b) {
    const int64_t r = order_[size_t(pos_.cursor + b)];
    std::memcpy(out.inputs.data<int64_t>() + b * T, data_.inputs.data<int64_t>() + r * T, size_t(T) * 8);
    std::memcpy(out.labels.data<int64_t>() + b * T, data_.labels.data<int64_t>() + r * T, size_t(T) * 8);
  }
  pos_.cursor += batch_;
  return out;
}

}  // namespace rotor::nn
