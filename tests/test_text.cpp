// Suite "text": the byte-level text data set (vocabularies, reading documents, the train /
// validation split, the window loader and its resume) and the streamed evaluation.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core_test_util.h"
#include "rotor/core/io.h"
#include "rotor/nn/text.h"
#include "rotor/nn/trainer.h"

using namespace rotor;
using namespace rotor::nn;
using testutil::same_bits;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {
const std::string kSample = std::string(ROTOR_TEST_DATA) + "/sayings.txt";

void write_file(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string text_of(const Vocabulary& v, const int32_t* p, int64_t n) {
  return v.decode(std::vector<int64_t>(p, p + n));
}

// The documents of a split, read back from its tokens (each starts with the break byte).
std::vector<std::string> documents_of(const TextData& d, const TextSplit& s) {
  const std::string all = text_of(d.vocab, s.tokens.data(), int64_t(s.tokens.size()));
  std::vector<std::string> docs;
  for (char c : all) {
    if (c == char(kDocumentBreak)) docs.emplace_back();
    else docs.back() += c;
  }
  return docs;
}

// Documents of tokens "<i:w>" (at most 7 bytes, each once in the corpus): every 16-byte
// substring holds a whole token, so it occurs once.
std::vector<std::string> numbered_documents(int n, int words) {
  std::vector<std::string> docs;
  for (int i = 0; i < n; ++i) {
    std::string d;
    for (int w = 0; w < words; ++w) d.append("<").append(std::to_string(i)).append(":").append(std::to_string(w)).append(">");
    docs.push_back(d + "\n");
  }
  return docs;
}
}  // namespace

TEST_CASE("byte vocabulary: every byte is its own id and decoding inverts encoding") {
  Vocabulary v = Vocabulary::bytes();
  CHECK(v.size() == 256);
  CHECK(v.is_bytes());
  std::string all;
  for (int b = 0; b < 256; ++b) all += char(b);
  Generator g(1);
  for (int i = 0; i < 2000; ++i) all += char(g.next_int(0, 256));
  std::vector<int32_t> ids = v.encode(all);
  REQUIRE(ids.size() == all.size());
  for (size_t i = 0; i < all.size(); ++i) CHECK(ids[i] == int32_t((unsigned char)all[i]));
  CHECK(v.decode(std::vector<int64_t>(ids.begin(), ids.end())) == all);
  // The sample file (UTF-8 with Greek, accents, tabs) survives the trip.
  const std::string sample = io::read_all(kSample, "t");
  std::vector<int32_t> s = v.encode(sample);
  CHECK(v.decode(std::vector<int64_t>(s.begin(), s.end())) == sample);
  // Stored as a vocabulary file, it reads back as the byte vocabulary.
  CHECK(Vocabulary::parse(v.serialize()).is_bytes());
  CHECK_THROWS_WITH_AS(v.decode({256}), doctest::Contains("outside the vocabulary"), Error);
}

TEST_CASE("user vocabulary: escapes, greedy longest match, round trip, clear errors") {
  Vocabulary v = Vocabulary::parse("a\nb\nab\n\n \n\\n\n\\x1e\nabc\n\\\\\né\n");
  CHECK(v.size() == 9);
  CHECK_FALSE(v.is_bytes());
  CHECK(v.piece(3) == " ");
  CHECK(v.piece(4) == "\n");
  CHECK(v.piece(5) == "\x1e");
  CHECK(v.piece(7) == "\\");
  // "abc" beats "ab" + ..., "ab" beats "a" "b".
  CHECK(v.encode("abcab a\n") == std::vector<int32_t>{6, 2, 3, 0, 4});
  CHECK(v.encode("aab") == std::vector<int32_t>{0, 2});
  const std::string text = "abc é\\ b\x1e" "ab\n";
  std::vector<int32_t> ids = v.encode(text);
  CHECK(v.decode(std::vector<int64_t>(ids.begin(), ids.end())) == text);
  Vocabulary again = Vocabulary::parse(v.serialize());
  REQUIRE(again.size() == v.size());
  for (int64_t i = 0; i < v.size(); ++i) CHECK(again.piece(i) == v.piece(i));

  CHECK_THROWS_WITH_AS(v.encode("abz", "doc"), doctest::Contains("covers byte 0x7a at offset 2"), Error);
  CHECK_THROWS_WITH_AS(Vocabulary::parse("a\nb\na\n"), doctest::Contains("line 3: token 'a' already has id 0"), Error);
  CHECK_THROWS_WITH_AS(Vocabulary::parse("a\n\\q\n"), doctest::Contains("unknown escape"), Error);
  CHECK_THROWS_WITH_AS(Vocabulary::parse("\n\n"), doctest::Contains("no tokens"), Error);
  // A vocabulary without the document break cannot encode a corpus.
  CHECK_THROWS_WITH_AS(text_dataset({"ab", "ba"}, Vocabulary::parse("a\nb\n"), {}), doctest::Contains("document break"),
                       Error);
}

TEST_CASE("reading documents: separator lines cut documents; a directory reads its text files once") {
  const std::string sample = io::read_all(kSample, "t");
  TextSource src = read_text_documents(kSample, "%");
  CHECK(src.files == 1);
  // The file is its documents joined by separator lines (it has no empty document).
  std::string joined;
  for (size_t i = 0; i < src.documents.size(); ++i) joined += (i ? "%\n" : "") + src.documents[i];
  CHECK(joined == sample);
  int64_t separators = 0;
  for (size_t p = 0; (p = sample.find("\n%\n", p)) != std::string::npos; ++p) ++separators;
  CHECK(int64_t(src.documents.size()) == separators + 1);
  // Without a separator, the file is one document.
  CHECK(read_text_documents(kSample).documents == std::vector<std::string>{sample});

  TempDir dir;
  fs::create_directories(dir / "sub");
  write_file(dir / "b.txt", "two\r\n%\r\n\n  \n%\nthree\n");
  write_file(dir / "sub/a.txt", "one\n");
  write_file(dir / ".hidden", "never\n");
  write_file(dir / "index.dat", std::string("\0\0\x01\x02", 4) + "x");
  fs::create_symlink("b.txt", dir / "b.u8");
  TextSource d = read_text_documents(dir.path.string(), "%");
  CHECK(d.files == 2);
  CHECK(d.skipped_files == 1);
  // Sorted by path (b.txt < sub/a.txt), the blank document dropped, the link not read twice.
  CHECK(d.documents == std::vector<std::string>{"two\r\n", "three\n", "one\n"});
  CHECK_THROWS_WITH_AS(read_text_documents(dir / "missing"), doctest::Contains("does not exist"), Error);
  write_file(dir / "empty.txt", "\n \n");
  CHECK_THROWS_WITH_AS(read_text_documents(dir / "empty.txt"), doctest::Contains("holds no text"), Error);
}

TEST_CASE("document split: train and validation share no document, cover the corpus, and are deterministic") {
  TextOptions o;
  o.separator = "%";
  o.validation_fraction = 0.2;
  TextData d = load_text(kSample, Vocabulary::bytes(), o);
  const std::vector<std::string> all = read_text_documents(kSample, "%").documents;
  std::set<std::string> distinct(all.begin(), all.end());
  CHECK(d.duplicates == int64_t(all.size() - distinct.size()));
  CHECK(d.duplicates == 1);  // "Haste makes waste." appears twice
  CHECK(d.documents == int64_t(distinct.size()));
  std::vector<std::string> train = documents_of(d, d.train), val = documents_of(d, d.validation);
  CHECK(int64_t(val.size()) == std::llround(0.2 * double(d.documents)));
  CHECK(int64_t(train.size()) == d.train.documents);
  CHECK(int64_t(val.size()) == d.validation.documents);
  std::set<std::string> train_set(train.begin(), train.end()), union_set = train_set;
  for (const std::string& v : val) {
    CHECK(train_set.count(v) == 0);
    union_set.insert(v);
  }
  CHECK(union_set == distinct);
  CHECK(d.train.bytes == int64_t(d.train.tokens.size()));
  CHECK(d.train.segment_ends == std::vector<int64_t>{int64_t(d.train.tokens.size())});

  TextData same = load_text(kSample, Vocabulary::bytes(), o);
  CHECK(same.validation.tokens == d.validation.tokens);
  o.split_seed = 1;
  CHECK(load_text(kSample, Vocabulary::bytes(), o).validation.tokens != d.validation.tokens);
  o.deduplicate = false;
  CHECK(load_text(kSample, Vocabulary::bytes(), o).documents == int64_t(all.size()));
  o.validation_fraction = 1.5;
  CHECK_THROWS_AS(load_text(kSample, Vocabulary::bytes(), o), Error);
  CHECK_THROWS_WITH_AS(text_dataset({"only one"}, Vocabulary::bytes(), {}), doctest::Contains("try the block split"), Error);
}

TEST_CASE("block split: held-out blocks cut the train text; no train window contains validation text") {
  const std::vector<std::string> docs = numbered_documents(60, 12);
  TextOptions o;
  o.split = "block";
  o.block_size = 100;
  o.validation_fraction = 0.25;
  TextData d = text_dataset(docs, Vocabulary::bytes(), o);
  std::string stream;
  for (const std::string& doc : docs) stream += char(kDocumentBreak) + doc;
  const int64_t blocks = (int64_t(stream.size()) + 99) / 100;
  CHECK(int64_t(d.train.tokens.size() + d.validation.tokens.size()) == int64_t(stream.size()));
  CHECK(d.train.documents + d.validation.documents == 60);
  // Every segment is a run of whole blocks at its place in the stream.
  int64_t val_blocks = 0;
  for (const TextSplit* s : {&d.train, &d.validation}) {
    int64_t begin = 0;
    for (int64_t end : s->segment_ends) {
      const std::string seg = text_of(d.vocab, s->tokens.data() + begin, end - begin);
      // Only the last block is shorter than a block (and may be too short to be unique).
      const size_t at = seg.size() >= 100 ? stream.find(seg) : stream.size() - seg.size();
      REQUIRE(at != std::string::npos);
      CHECK(stream.compare(at, seg.size(), seg) == 0);
      CHECK(at % 100 == 0);
      CHECK((seg.size() % 100 == 0 || at + seg.size() == stream.size()));
      if (s == &d.validation) val_blocks += (int64_t(seg.size()) + 99) / 100;
      begin = end;
    }
  }
  CHECK(val_blocks == std::llround(0.25 * double(blocks)));
  CHECK(d.validation.segment_ends.size() > 1);  // several held-out runs: the train text is cut

  std::vector<std::string> val_segments;
  for (int64_t begin = 0, i = 0; i < int64_t(d.validation.segment_ends.size()); begin = d.validation.segment_ends[size_t(i++)])
    val_segments.push_back(text_of(d.vocab, d.validation.tokens.data() + begin, d.validation.segment_ends[size_t(i)] - begin));
  TextLoader loader(d.train, 16, 40, 3);
  for (int b = 0; b < 50; ++b) {
    TokenData batch = loader.next();
    for (int64_t r = 0; r < 16; ++r) {
      std::vector<int64_t> in = batch.inputs.to_vector<int64_t>();
      std::vector<int64_t> row(in.begin() + r * 40, in.begin() + (r + 1) * 40);
      const std::string w = d.vocab.decode(row);
      CHECK(stream.find(w) != std::string::npos);  // never across a cut
      for (const std::string& v : val_segments)
        for (size_t i = 0; i + 16 <= w.size(); ++i) CHECK(v.find(w.substr(i, 16)) == std::string::npos);
    }
  }
}

TEST_CASE("TextLoader: labels are the inputs shifted by one, starts are uniform, a position resumes it") {
  TextOptions o;
  o.separator = "%";
  TextData d = load_text(kSample, Vocabulary::bytes(), o);
  const int64_t T = 24, B = 8;
  TextLoader loader(d.train, B, T, 7);
  const std::string train_text = text_of(d.vocab, d.train.tokens.data(), int64_t(d.train.tokens.size()));
  std::vector<TokenData> first;
  for (int i = 0; i < 5; ++i) first.push_back(loader.next());
  for (const TokenData& b : first) {
    REQUIRE(b.inputs.shape() == Shape{B, T});
    std::vector<int64_t> in = b.inputs.to_vector<int64_t>(), lab = b.labels.to_vector<int64_t>();
    for (int64_t r = 0; r < B; ++r) {
      for (int64_t t = 0; t + 1 < T; ++t) CHECK(lab[size_t(r * T + t)] == in[size_t(r * T + t + 1)]);
      std::vector<int64_t> window(in.begin() + r * T, in.begin() + (r + 1) * T);
      window.push_back(lab[size_t(r * T + T - 1)]);
      CHECK(train_text.find(d.vocab.decode(window)) != std::string::npos);
    }
  }
  CHECK(loader.batches() == 5);
  Metadata saved = loader.position_metadata();
  TokenData sixth = loader.next();
  TextLoader resumed(d.train, B, T, 7);
  resumed.restore_position(SafetensorsContent{{}, saved}, "test");
  CHECK(same_bits(resumed.next().inputs, sixth.inputs));
  TextLoader fresh(d.train, B, T, 7), other(d.train, B, T, 8);
  CHECK(same_bits(fresh.next().inputs, first[0].inputs));
  CHECK_FALSE(same_bits(other.next().inputs, first[0].inputs));
  CHECK(fresh.fingerprint() == loader.fingerprint());
  CHECK(TextLoader(d.train, B, T + 1, 7).fingerprint() != loader.fingerprint());
  CHECK_THROWS_WITH_AS(TextLoader(d.validation, 1, 100000, 0), doctest::Contains("has no window"), Error);

  // Over many draws each start appears about count/windows times (a plain histogram).
  TextSplit small;
  small.tokens = std::vector<int32_t>(40, 1);
  small.segment_ends = {10, 40};  // 10 - 5 + 1 + 40 - 10 - 5 + 1 = 32 windows of 5 tokens
  for (int i = 0; i < 40; ++i) small.tokens[size_t(i)] = i;
  REQUIRE(small.window_count(5) == 32);
  TextLoader counter(small, 64, 4, 1);
  std::map<int64_t, int64_t> hits;
  for (int i = 0; i < 500; ++i) {
    std::vector<int64_t> in = counter.next().inputs.to_vector<int64_t>();
    for (int64_t r = 0; r < 64; ++r) ++hits[in[size_t(r * 4)]];
  }
  CHECK(hits.size() == 32);
  for (auto [start, n] : hits) {
    CHECK((start <= 5 || (start >= 10 && start <= 35)));  // never across the cut at 10
    CHECK(std::abs(double(n) - 1000.0) < 150.0);          // 500 * 64 / 32 = 1000, sd ≈ 31
  }
}

namespace {
ModelConfig tiny_lm(const std::string& pe, bool attention) {
  ModelConfig c;
  c.vocab_size = 256;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_heads = 2;
  c.expand_k = 1.0;
  c.intermediate_size = 24;
  c.gate_low_rank_dim = 4;
  c.chunk_size = 8;
  c.position_embedding.type = pe;
  c.position_embedding.selective.phi_proj_rank = 4;
  if (attention) c.attn_layers = {0, 1};
  return c;
}
}  // namespace

TEST_CASE("evaluation windows: same ends, same last targets; streamed losses equal one forward") {
  TextOptions o;
  o.separator = "%";
  o.validation_fraction = 0.3;
  TextData d = load_text(kSample, Vocabulary::bytes(), o);
  std::vector<int64_t> ends = evaluation_ends(d.validation, 64, 6);
  REQUIRE(ends.size() == 6);
  for (size_t i = 1; i < ends.size(); ++i) CHECK(ends[i] > ends[i - 1]);
  TokenData w16 = windows_ending_at(d.validation, ends, 16), w64 = windows_ending_at(d.validation, ends, 64);
  std::vector<int64_t> a = w16.labels.to_vector<int64_t>(), b = w64.labels.to_vector<int64_t>();
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t t = 0; t < 16; ++t) CHECK(a[size_t(r * 16 + t)] == b[size_t(r * 64 + 48 + t)]);
    CHECK(b[size_t(r * 64 + 63)] == d.validation.tokens[size_t(ends[size_t(r)])]);
  }
  CHECK_THROWS_AS(windows_ending_at(d.validation, {10}, 16), Error);  // no room before it

  for (auto [pe, attention] : {std::pair{"selective_rope", false}, std::pair{"rope", false}, std::pair{"rope", true}}) {
    INFO(pe << (attention ? " attention" : " GLA"));
    Generator g(2);
    LanguageModel model(tiny_lm(pe, attention), g);
    std::vector<double> whole = position_losses(model, w64, 6, 64), streamed = position_losses(model, w64, 4, 10);
    REQUIRE(whole.size() == 64);
    double mean = 0;
    for (size_t t = 0; t < 64; ++t) {
      CHECK(streamed[t] == doctest::Approx(whole[t]).epsilon(1e-4));
      mean += whole[t] / 64;
    }
    NoGradGuard ng;
    CHECK(mean == doctest::Approx(cross_entropy(model.forward(w64.inputs), w64.labels).item()).epsilon(1e-5));
  }
}

TEST_CASE("bits per byte: loss / ln 2, times tokens per byte for a multi-byte vocabulary") {
  TextData bytes = text_dataset({"abab", "baba", "aabb"}, Vocabulary::bytes(), {});
  CHECK(bytes.train.bits_per_byte(std::log(2.0)) == doctest::Approx(1.0));
  TextData words = text_dataset({"abab", "baba", "aabb", "bbbb"}, Vocabulary::parse("ab\nba\na\nb\n\\x1e\n"), {});
  // Train text: break + tokens of each of three documents; bytes = break + 4 per document.
  const double tokens = double(words.train.tokens.size()), bytes_ = double(words.train.bytes);
  CHECK(bytes_ == 3 * 5);
  CHECK(tokens < bytes_);
  CHECK(words.train.bits_per_byte(1.0) == doctest::Approx(tokens / bytes_ / std::log(2.0)));
}

TEST_CASE("training on text resumes bit-identically through the trainer's checkpoint") {
  TempDir dir;
  TextOptions o;
  o.separator = "%";
  TextData d = load_text(kSample, Vocabulary::bytes(), o);
  TrainConfig tc;
  tc.steps = 6;
  tc.lr = 3e-3;
  tc.warmup = 2;
  const ModelConfig c = tiny_lm("selective_rope", false);
  auto run = [&](int steps, const std::string& resume, const std::string& save) {
    Generator g(resume.empty() ? 1 : 99);
    auto model = std::make_unique<LanguageModel>(c, g);
    TextLoader loader(d.train, 4, 20, 5);
    Trainer trainer(*model, loader, tc);
    if (!resume.empty()) trainer.resume(resume);
    for (int s = 0; s < steps; ++s) trainer.step();
    if (!save.empty()) trainer.save(save);
    CHECK(loader.batches() == trainer.step_count());
    return model;
  };
  auto straight = run(6, "", "");
  run(3, "", dir / "ckpt.safetensors");
  auto resumed = run(3, dir / "ckpt.safetensors", "");
  auto a = straight->named_parameters(), b = resumed->named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].name);
    CHECK(same_bits(a[i].value, b[i].value));
  }
  // Other text (another split) is refused.
  o.split_seed = 4;
  TextData other = load_text(kSample, Vocabulary::bytes(), o);
  Generator g(1);
  LanguageModel model(c, g);
  TextLoader loader(other.train, 4, 20, 5);
  Trainer trainer(model, loader, tc);
  CHECK_THROWS_WITH_AS(trainer.resume(dir / "ckpt.safetensors"), doctest::Contains("other data"), Error);
}

TEST_CASE("a text model's checkpoint carries its vocabulary and separator, in ASCII, and reads them back") {
  TempDir dir;
  Generator g(3);
  LanguageModel model(tiny_lm("rope", false), g);
  const std::string path = dir / "m.safetensors";
  // The byte vocabulary and a user vocabulary with UTF-8 and control tokens; a non-ASCII separator.
  for (const Vocabulary& v : {Vocabulary::bytes(), Vocabulary::parse("é\nab\n\\x1e\n\\xff\n\\t\n")}) {
    const std::string sep = "§§";
    save_model(path, model, 0, TextModelInfo{v, sep}.metadata());
    for (char c : v.serialize()) CHECK((unsigned char)c < 0x80);
    std::optional<TextModelInfo> info = TextModelInfo::from(load_safetensors(path), "m");
    REQUIRE(info);
    CHECK(info->separator == sep);
    CHECK(info->vocab.is_bytes() == v.is_bytes());
    REQUIRE(info->vocab.size() == v.size());
    for (int64_t i = 0; i < v.size(); ++i) CHECK(info->vocab.piece(i) == v.piece(i));
  }
  // A model of another task has no text metadata.
  save_model(path, model, 0, {});
  CHECK_FALSE(TextModelInfo::from(load_safetensors(path), "m"));
  // Metadata that is not UTF-8 is a clear error, not an escaped library exception.
  CHECK_THROWS_WITH_AS(save_model(path, model, 0, {{"note", "\xff"}}), doctest::Contains("UTF-8"), Error);
}
