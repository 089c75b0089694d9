#include "rotor/nn/text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <unordered_set>

#include "rotor/core/generator.h"
#include "rotor/core/io.h"
#include "rotor/nn/checkpoint.h"
#include "rotor/nn/loss.h"

namespace rotor::nn {

namespace fs = std::filesystem;

// ---- Vocabulary ----

Vocabulary Vocabulary::bytes() {
  Vocabulary v;
  for (int b = 0; b < 256; ++b) v.pieces_.push_back(std::string(1, char(b)));
  v.bytes_ = true;
  return v;
}

namespace {
std::string unescape(const std::string& line, const std::string& what, int64_t line_no) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '\\') {
      out += line[i];
      continue;
    }
    ROTOR_CHECK(i + 1 < line.size(), "text", what, " line ", line_no, ": a lone '\\' at the end (write \\\\)");
    const char c = line[++i];
    if (c == 'n') out += '\n';
    else if (c == 't') out += '\t';
    else if (c == 'r') out += '\r';
    else if (c == '\\') out += '\\';
    else if (c == 'x' && i + 2 < line.size() && std::isxdigit((unsigned char)line[i + 1]) &&
             std::isxdigit((unsigned char)line[i + 2])) {
      out += char(std::stoi(line.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      throw Error(detail::concat("[text] ", what, " line ", line_no, ": unknown escape '\\", c,
                                 "' (use \\n \\t \\r \\\\ or \\xHH)"));
    }
  }
  return out;
}

std::string escape(const std::string& piece) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : piece) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c >= 0x7f) out += {'\\', 'x', hex[c >> 4], hex[c & 15]};  // ASCII out: JSON metadata must be UTF-8
    else out += char(c);
  }
  return out;
}

std::string byte_name(unsigned char c) {
  static const char* hex = "0123456789abcdef";
  return std::string("0x") + hex[c >> 4] + hex[c & 15];
}
}  // namespace

Vocabulary Vocabulary::parse(const std::string& text, const std::string& what) {
  Vocabulary v;
  int64_t line_no = 0;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (line.empty()) continue;
    std::string piece = unescape(line, what, line_no);
    auto [it, fresh] = v.index_.emplace(piece, int32_t(v.pieces_.size()));
    ROTOR_CHECK(fresh, "text", what, " line ", line_no, ": token '", line, "' already has id ", it->second);
    ROTOR_CHECK(v.pieces_.size() < (size_t(1) << 24), "text", what, ": more than 2^24 tokens");
    v.pieces_.push_back(std::move(piece));
    v.longest_ = std::max(v.longest_, v.pieces_.back().size());
  }
  ROTOR_CHECK(!v.pieces_.empty(), "text", what, " holds no tokens");
  // The 256 single bytes in order are the byte vocabulary (a checkpoint stores it that way).
  bool bytes = v.pieces_.size() == 256;
  for (size_t i = 0; bytes && i < 256; ++i) bytes = v.pieces_[i].size() == 1 && (unsigned char)v.pieces_[i][0] == i;
  if (bytes) return Vocabulary::bytes();
  return v;
}

Vocabulary Vocabulary::load(const std::string& path) { return parse(io::read_all(path, "text"), "vocabulary '" + path + "'"); }

std::string Vocabulary::serialize() const {
  std::string out;
  for (const std::string& p : pieces_) out += escape(p) + '\n';
  return out;
}

const std::string& Vocabulary::piece(int64_t id) const {
  ROTOR_CHECK(id >= 0 && id < size(), "text", "token id ", id, " outside the vocabulary [0, ", size(), ")");
  return pieces_[size_t(id)];
}

std::vector<int32_t> Vocabulary::encode(std::string_view text, const std::string& what) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  if (bytes_) {
    for (unsigned char c : text) ids.push_back(int32_t(c));
    return ids;
  }
  for (size_t pos = 0; pos < text.size();) {
    size_t len = std::min(longest_, text.size() - pos);
    for (; len > 0; --len) {
      auto it = index_.find(std::string(text.substr(pos, len)));
      if (it != index_.end()) {
        ids.push_back(it->second);
        break;
      }
    }
    ROTOR_CHECK(len > 0, "text", what, ": no token of the vocabulary covers byte ", byte_name((unsigned char)text[pos]),
                " at offset ", pos, (text[pos] == char(kDocumentBreak) ? " (the document break: add the line \\x1e)" : ""));
    pos += len;
  }
  return ids;
}

std::string Vocabulary::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) out += piece(id);
  return out;
}

// ---- reading documents ----

namespace {
bool looks_binary(const std::string& bytes) {
  return std::memchr(bytes.data(), 0, std::min<size_t>(bytes.size(), 8192)) != nullptr;
}

bool only_space(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

void split_documents(const std::string& bytes, const std::string& separator, std::vector<std::string>& out) {
  std::string doc;
  auto finish = [&] {
    if (!only_space(doc)) out.push_back(std::move(doc));
    doc.clear();
  };
  for (size_t begin = 0; begin < bytes.size();) {
    size_t end = bytes.find('\n', begin);
    end = end == std::string::npos ? bytes.size() : end + 1;
    std::string_view line(bytes.data() + begin, end - begin);
    begin = end;
    std::string_view bare = line;
    if (bare.ends_with('\n')) bare.remove_suffix(1);
    if (bare.ends_with('\r')) bare.remove_suffix(1);
    if (!separator.empty() && bare == separator) {
      finish();
      continue;
    }
    doc += line;
  }
  finish();
}
}  // namespace

TextSource read_text_documents(const std::string& path, const std::string& separator) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  ROTOR_CHECK(!ec && fs::exists(st), "text", "'", path, "' does not exist");
  TextSource src;
  if (!fs::is_directory(st)) {
    split_documents(io::read_all(path, "text"), separator, src.documents);
    src.files = 1;
  } else {
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->path().filename().string().starts_with('.')) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) files.push_back(it->path());  // follows links to files
    }
    ROTOR_CHECK(!ec, "text", "cannot list '", path, "': ", ec.message());
    std::sort(files.begin(), files.end());
    std::set<fs::path> seen;
    for (const fs::path& f : files) {
      if (!seen.insert(fs::weakly_canonical(f)).second) continue;  // a link to a file already read
      std::string bytes = io::read_all(f.string(), "text");
      if (looks_binary(bytes)) {
        ++src.skipped_files;
        continue;
      }
      split_documents(bytes, separator, src.documents);
      ++src.files;
    }
  }
  ROTOR_CHECK(!src.documents.empty(), "text", "'", path, "' holds no text (", src.files, " files read, ",
              src.skipped_files, " binary files skipped)");
  return src;
}

const char* default_text_corpus() { return "/usr/share/games/fortunes"; }

// ---- the split ----

void TextOptions::validate() const {
  ROTOR_CHECK(split == "document" || split == "block", "text", "split must be 'document' or 'block', got '", split, "'");
  ROTOR_CHECK(validation_fraction >= 0 && validation_fraction < 1, "text", "validation fraction must be in [0, 1), got ",
              validation_fraction);
  ROTOR_CHECK(block_size > 0, "text", "block size must be positive, got ", block_size);
}

namespace {
// The first n indices of a seeded permutation of [0, total): the held-out items.
std::vector<bool> held_out(int64_t total, int64_t n, uint64_t seed) {
  auto order = std::vector<int64_t>(size_t(total));
  std::iota(order.begin(), order.end(), int64_t(0));
  Generator gen(seed);
  for (int64_t i = total - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(gen.next_int(0, i + 1))]);
  std::vector<bool> out(size_t(total), false);
  for (int64_t i = 0; i < n; ++i) out[size_t(order[size_t(i)])] = true;
  return out;
}

// How many of `total` items the fraction holds out: at least one when the fraction is positive,
// at least one left for training.
int64_t held_out_count(int64_t total, double fraction, const char* items) {
  if (fraction == 0) return 0;
  const int64_t n = std::max<int64_t>(1, std::llround(fraction * double(total)));
  ROTOR_CHECK(n < total, "text", "a validation fraction of ", fraction, " holds out ", n, " of ", total, " ", items,
              " and leaves none for training", (std::string(items) == "documents" ? " (try the block split)" : ""));
  return n;
}

void append(TextSplit& s, const std::vector<int32_t>& tokens, const Vocabulary& vocab, bool new_segment) {
  if (new_segment || s.segment_ends.empty()) s.segment_ends.push_back(int64_t(s.tokens.size()));
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
  s.segment_ends.back() = int64_t(s.tokens.size());
  for (int32_t t : tokens) s.bytes += int64_t(vocab.piece(t).size());
}
}  // namespace

TextData text_dataset(const std::vector<std::string>& documents, const Vocabulary& vocab, const TextOptions& options) {
  options.validate();
  TextData d;
  d.vocab = vocab;
  std::vector<std::vector<int32_t>> encoded;
  std::unordered_set<std::string_view> seen;
  const std::vector<int32_t> doc_break = vocab.encode(std::string(1, char(kDocumentBreak)), "the document break");
  for (size_t i = 0; i < documents.size(); ++i) {
    if (options.deduplicate && !seen.insert(documents[i]).second) {
      ++d.duplicates;
      continue;
    }
    std::vector<int32_t> t = doc_break;
    for (int32_t id : vocab.encode(documents[i], "document " + std::to_string(i))) t.push_back(id);
    encoded.push_back(std::move(t));
  }
  d.documents = int64_t(encoded.size());
  ROTOR_CHECK(d.documents > 0, "text", "no documents to split");

  if (options.split == "document") {
    const int64_t n_val = held_out_count(d.documents, options.validation_fraction, "documents");
    const std::vector<bool> val = held_out(d.documents, n_val, options.split_seed);
    for (int64_t i = 0; i < d.documents; ++i) {
      TextSplit& s = val[size_t(i)] ? d.validation : d.train;
      append(s, encoded[size_t(i)], vocab, false);
      ++s.documents;
    }
  } else {
    std::vector<int32_t> stream;
    std::vector<bool> starts;  // a document begins at this token
    for (const auto& t : encoded) {
      starts.resize(stream.size() + t.size(), false);
      starts[stream.size()] = true;
      stream.insert(stream.end(), t.begin(), t.end());
    }
    const int64_t bs = options.block_size, blocks = (int64_t(stream.size()) + bs - 1) / bs;
    const int64_t n_val = held_out_count(blocks, options.validation_fraction, "blocks");
    const std::vector<bool> val = held_out(blocks, n_val, options.split_seed);
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t lo = b * bs, hi = std::min<int64_t>(lo + bs, int64_t(stream.size()));
      TextSplit& s = val[size_t(b)] ? d.validation : d.train;
      // A block follows the previous one of its side directly only if no block of the other side lies between.
      const bool contiguous = b > 0 && val[size_t(b - 1)] == val[size_t(b)];
      append(s, std::vector<int32_t>(stream.begin() + lo, stream.begin() + hi), vocab, !contiguous);
      s.documents += std::count(starts.begin() + lo, starts.begin() + hi, true);
    }
  }
  return d;
}

TextData load_text(const std::string& path, const Vocabulary& vocab, const TextOptions& options) {
  TextSource src = read_text_documents(path, options.separator);
  TextData d = text_dataset(src.documents, vocab, options);
  d.files = src.files;
  return d;
}

int64_t TextSplit::window_count(int64_t length) const {
  int64_t n = 0, begin = 0;
  for (int64_t end : segment_ends) {
    n += std::max<int64_t>(0, end - begin - length + 1);
    begin = end;
  }
  return n;
}

int64_t TextSplit::window_start(int64_t i, int64_t length) const {
  ROTOR_CHECK(i >= 0, "text", "window index ", i, " is negative");
  int64_t begin = 0;
  for (int64_t end : segment_ends) {
    const int64_t n = std::max<int64_t>(0, end - begin - length + 1);
    if (i < n) return begin + i;
    i -= n;
    begin = end;
  }
  throw Error(detail::concat("[text] window index out of range: only ", window_count(length), " windows of ", length,
                             " tokens fit"));
}

double TextSplit::bits_per_byte(double loss_nats) const {
  const double tokens_per_byte = bytes ? double(tokens.size()) / double(bytes) : 1.0;
  return loss_nats / std::log(2.0) * tokens_per_byte;
}

// ---- text models ----

Metadata TextModelInfo::metadata() const {
  return {{"task", "text"}, {"vocabulary", vocab.serialize()}, {"document_separator", escape(separator)}};
}

std::optional<TextModelInfo> TextModelInfo::from(const SafetensorsContent& file, const std::string& what) {
  const std::string* task = file.find_metadata("task");
  if (!task || *task != "text") return std::nullopt;
  const std::string* vocab = file.find_metadata("vocabulary");
  ROTOR_CHECK(vocab, "text", what, " is a text model without a vocabulary in its metadata");
  const std::string* sep = file.find_metadata("document_separator");
  return TextModelInfo{Vocabulary::parse(*vocab, what + " vocabulary"),
                       sep ? unescape(*sep, what + " document separator", 1) : std::string()};
}

std::string display_text(const std::string& bytes, const std::string& separator) {
  std::string out;
  for (char c : bytes) {
    if (c != char(kDocumentBreak)) {
      out += c;
      continue;
    }
    if (!out.empty() && out.back() != '\n') out += '\n';
    if (!out.empty()) out += separator + '\n';
  }
  return out;
}

// ---- the loader ----

TextLoader::TextLoader(const TextSplit& split, int64_t batch_size, int64_t seq_len, uint64_t seed)
    : split_(split), batch_(batch_size), seq_len_(seq_len), seed_(seed) {
  ROTOR_CHECK(batch_size > 0 && seq_len > 0, "TextLoader", "batch size ", batch_size, " and sequence length ", seq_len,
              " must be positive");
  ROTOR_CHECK(split.window_count(seq_len + 1) > 0, "TextLoader", "the text (", split.tokens.size(),
              " tokens) has no window of ", seq_len + 1, " tokens inside one segment");
}

TokenData TextLoader::next() {
  const int64_t T = seq_len_, count = split_.window_count(T + 1);
  Generator gen(seed_);
  gen.set_offset(uint64_t(batches_) * uint64_t(batch_));
  TokenData out{Tensor::empty({batch_, T}, DType::Int64), Tensor::empty({batch_, T}, DType::Int64)};
  int64_t* in = out.inputs.data<int64_t>();
  int64_t* lab = out.labels.data<int64_t>();
  for (int64_t b = 0; b < batch_; ++b) {
    const int32_t* w = split_.tokens.data() + split_.window_start(gen.next_int(0, count), T + 1);
    for (int64_t t = 0; t < T; ++t) in[b * T + t] = w[t], lab[b * T + t] = w[t + 1];
  }
  ++batches_;
  return out;
}

void TextLoader::set_batches(int64_t n) {
  ROTOR_CHECK(n >= 0, "TextLoader", "invalid position ", n);
  batches_ = n;
}

std::string TextLoader::fingerprint() const {
  // The text, its segments and the window length fix which windows a seed draws.
  uint64_t h = fnv1a(split_.tokens.data(), split_.tokens.size() * sizeof(int32_t));
  h = fnv1a(split_.segment_ends.data(), split_.segment_ends.size() * sizeof(int64_t), h);
  return hex64(fnv1a(&seq_len_, sizeof seq_len_, h));
}

Metadata TextLoader::position_metadata() const { return {{"loader_batches", std::to_string(batches_)}}; }

void TextLoader::restore_position(const SafetensorsContent& file, const std::string& what) {
  set_batches(metadata_int(file, "loader_batches", "resume", what));
}

// ---- evaluation ----

std::vector<int64_t> evaluation_ends(const TextSplit& split, int64_t context, int64_t count) {
  ROTOR_CHECK(context > 0 && count > 0, "text", "evaluation context ", context, " and count ", count, " must be positive");
  const int64_t n = split.window_count(context + 1);
  ROTOR_CHECK(n > 0, "text", "the validation text (", split.tokens.size(), " tokens) has no window of ", context + 1,
              " tokens");
  count = std::min(count, n);
  std::vector<int64_t> ends;
  for (int64_t i = 0; i < count; ++i)
    ends.push_back(split.window_start(int64_t((double(i) + 0.5) * double(n) / double(count)), context + 1) + context);
  return ends;
}

TokenData windows_ending_at(const TextSplit& split, const std::vector<int64_t>& ends, int64_t length) {
  const int64_t N = int64_t(ends.size()), L = length;
  ROTOR_CHECK(N > 0 && L > 0, "text", "need at least one window of positive length");
  TokenData out{Tensor::empty({N, L}, DType::Int64), Tensor::empty({N, L}, DType::Int64)};
  for (int64_t i = 0; i < N; ++i) {
    const int64_t e = ends[size_t(i)];
    auto seg = std::upper_bound(split.segment_ends.begin(), split.segment_ends.end(), e);
    const int64_t seg_begin = seg == split.segment_ends.begin() ? 0 : *(seg - 1);
    ROTOR_CHECK(seg != split.segment_ends.end() && e - L >= seg_begin, "text", "a window of ", L, " tokens ending at ", e,
                " does not fit in its segment");
    for (int64_t t = 0; t < L; ++t) {
      out.inputs.data<int64_t>()[i * L + t] = split.tokens[size_t(e - L + t)];
      out.labels.data<int64_t>()[i * L + t] = split.tokens[size_t(e - L + t + 1)];
    }
  }
  return out;
}

std::vector<double> position_losses(const LanguageModel& model, const TokenData& windows, int64_t batch_size,
                                    int64_t chunk) {
  ROTOR_CHECK(batch_size > 0 && chunk > 0, "text", "batch size and chunk must be positive");
  NoGradGuard no_grad;
  const int64_t N = windows.size(), L = windows.seq_len();
  std::vector<double> sums(size_t(L), 0.0);
  for (int64_t b = 0; b < N; b += batch_size) {
    const TokenData part = windows.rows(b, std::min(N, b + batch_size));
    std::vector<LayerCache> cache;
    for (int64_t c0 = 0; c0 < L; c0 += chunk) {
      const int64_t len = std::min(chunk, L - c0);
      Tensor logits = model.forward(core::contiguous(narrow(part.inputs, 1, c0, len)), &cache);
      for (int64_t t = 0; t < len; ++t)
        sums[size_t(c0 + t)] += cross_entropy(select(logits, 1, t), core::contiguous(select(part.labels, 1, c0 + t))).item() *
                                double(part.size());
    }
  }
  for (double& s : sums) s /= double(N);
  return sums;
}

}  // namespace rotor::nn
