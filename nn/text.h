// Text data for byte-level language modeling (docs/text.md): a corpus read from a file or a
// directory, cut into documents, encoded with a vocabulary, split into train and validation
// text that share no document (or no block), and a loader of random windows.
//
//   TextData d = load_text("/usr/share/games/fortunes", Vocabulary::bytes(), {.separator = "%"});
//   TextLoader loader(d.train, /*batch*/ 16, /*T*/ 128, /*seed*/ 0);
//   TokenData batch = loader.next();  // inputs = tokens[s, s+T), labels = tokens[s+1, s+T]
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rotor/nn/data.h"
#include "rotor/nn/model.h"

namespace rotor::nn {

// The byte that starts every document in an encoded stream (ASCII's record separator): the
// model sees where a document begins, and a generation that starts from it starts a document.
constexpr unsigned char kDocumentBreak = 0x1E;

// Token ids <-> bytes. The byte vocabulary (256 ids, id = byte value) encodes any input; a
// user vocabulary lists its tokens and encodes by greedy longest match.
class Vocabulary {
 public:
  static Vocabulary bytes();
  // One token per line, the line's bytes with the escapes \n \t \r \\ \xHH (a line " " is the
  // space token); blank lines are skipped; ids follow the order of the lines.
  static Vocabulary parse(const std::string& text, const std::string& what = "vocabulary");
  static Vocabulary load(const std::string& path);
  // The text parse() reads back, in ASCII (bytes outside it escaped): what a checkpoint stores.
  std::string serialize() const;

  int64_t size() const { return int64_t(pieces_.size()); }
  bool is_bytes() const { return bytes_; }
  const std::string& piece(int64_t id) const;
  // rotor::Error naming `what` and the byte offset when the text holds something no token covers.
  std::vector<int32_t> encode(std::string_view text, const std::string& what = "text") const;
  std::string decode(const std::vector<int64_t>& ids) const;

 private:
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int32_t> index_;
  size_t longest_ = 1;
  bool bytes_ = false;
};

// Documents of a file or of every file under a directory (sorted by path; hidden files, links to
// files already read and files with a NUL byte in their first 8 KiB are skipped, as grep -I
// does). A line equal to `separator` ends a document (fortune files use "%"); without one, a
// file is one document. Documents that are only white space are dropped.
struct TextSource {
  std::vector<std::string> documents;
  int64_t files = 0, skipped_files = 0;
};
TextSource read_text_documents(const std::string& path, const std::string& separator = "");

// Where the default corpus lives: Debian's fortunes package (scripts/setup installs it).
const char* default_text_corpus();

struct TextOptions {
  std::string separator;            // see read_text_documents
  std::string split = "document";   // "document": whole documents go to validation; "block": contiguous blocks
  double validation_fraction = 0.05;
  int64_t block_size = 4096;        // tokens per block of the block split
  uint64_t split_seed = 0;          // which documents / blocks are held out (not the training seed)
  bool deduplicate = true;          // drop exact repeats of a document before splitting
  void validate() const;
};

// Encoded text in segments: a window never crosses from one segment into the next (the block
// split's held-out blocks cut the train text; a document split has one segment per side).
struct TextSplit {
  std::vector<int32_t> tokens;
  std::vector<int64_t> segment_ends;  // increasing, the last is tokens.size()
  int64_t bytes = 0;                  // bytes the tokens stand for (one per token for the byte vocabulary)
  int64_t documents = 0;              // documents that start in this split
  // How many windows of `length` tokens fit (start positions, over all segments).
  int64_t window_count(int64_t length) const;
  // The first token of the i-th window of `length` tokens, i in [0, window_count(length)).
  int64_t window_start(int64_t i, int64_t length) const;
  // bits per byte = mean loss in nats / ln 2 · tokens / bytes.
  double bits_per_byte(double loss_nats) const;
};

struct TextData {
  Vocabulary vocab;
  TextSplit train, validation;
  int64_t files = 0, documents = 0, duplicates = 0;
};

// Every document starts with kDocumentBreak; the split is a pure function of (documents, options).
TextData text_dataset(const std::vector<std::string>& documents, const Vocabulary& vocab, const TextOptions& options);
TextData load_text(const std::string& path, const Vocabulary& vocab, const TextOptions& options);

// What a text model's checkpoint carries beside its weights, so that a program can encode a
// prompt and print what the model writes: the vocabulary and the document separator.
struct TextModelInfo {
  Vocabulary vocab;
  std::string separator;
  Metadata metadata() const;
  // nullopt for a checkpoint without text metadata (a model of another task).
  static std::optional<TextModelInfo> from(const SafetensorsContent& file, const std::string& what);
};
// Decoded text for reading: each document break becomes the separator line ("%" in fortune
// files) or a blank line, on a line of its own.
std::string display_text(const std::string& bytes, const std::string& separator);

// Batches of `batch_size` windows of seq_len + 1 tokens at uniformly random starts. Batch n
// reads counters [n·B, (n+1)·B) of the seed's stream, so the position is one integer (the
// batches served) and a resumed loader draws what the saved one would have.
class TextLoader : public Loader {
 public:
  // The loader keeps a reference to split, which must outlive it.
  TextLoader(const TextSplit& split, int64_t batch_size, int64_t seq_len, uint64_t seed);

  TokenData next() override;
  int64_t batch_size() const override { return batch_; }
  uint64_t seed() const override { return seed_; }
  std::string fingerprint() const override;
  Metadata position_metadata() const override;
  void restore_position(const SafetensorsContent& file, const std::string& what) override;

  int64_t batches() const { return batches_; }
  void set_batches(int64_t n);
  int64_t seq_len() const { return seq_len_; }

 private:
  const TextSplit& split_;
  int64_t batch_, seq_len_;
  uint64_t seed_;
  int64_t batches_ = 0;
};

// `count` positions spread evenly over the split, each with at least `context` tokens before it
// in its segment: the last targets of evaluation windows. Windows of any length up to `context`
// that end at the same positions predict the same tokens in their last positions.
std::vector<int64_t> evaluation_ends(const TextSplit& split, int64_t context, int64_t count);
// Windows of `length` tokens whose last label is the token at each end.
TokenData windows_ending_at(const TextSplit& split, const std::vector<int64_t>& ends, int64_t length);

// The loss in nats at every position of the windows, averaged over windows. The windows run in
// pieces of `chunk` positions through the model's streaming cache (the state after a piece
// carries to the next), in batches of batch_size windows.
std::vector<double> position_losses(const LanguageModel& model, const TokenData& windows, int64_t batch_size,
                                    int64_t chunk);

}  // namespace rotor::nn
