// examples/train — train a small language model on a synthetic task or on text, on CPU.
//
//   build/examples/train --task parity --short-conv 1 --pe selective_rope --pe-temp-theta 1 --pe-bias 1 --init torch
//   build/examples/train --task mqar --mixer gla --pe selective_rope --steps 1000 --save ckpt.safetensors
//   build/examples/train --task text --data book.txt --pe rope --save lm.safetensors     bytes of any text
//   build/examples/train ... --resume ckpt.safetensors      continue a run exactly where it stopped
//   mpirun -np 2 build/examples/train ...                   data parallel: each rank takes half of every batch
//
// What it shows: the whole training loop of rotor — data, model, fused cross-entropy, AdamW
// with warmup + cosine schedule, clipping, evaluation, checkpoints — in one page. Watch the
// loss fall and the accuracy on labelled positions rise; at the end it prints the test accuracy
// (on sequences the model never saw) and, for tasks that have them, the accuracy at each
// evaluation length; on text, validation bits per byte instead. --log writes the curve as CSV,
// --results the final numbers as JSON.
//
// Each task is one entry of kTasks: a function that reads the task's flags and returns its
// vocabulary and a generator of its train / test / per-length data (nn/tasks.h). Text streams
// its training windows from a loader of its own and reports bits per byte (nn/text.h).
//
// Under mpirun every rank runs this same program on the same global batches; the trainer gives
// rank r its slice of each batch and sums the gradients in rank order (nn/distributed.h), so
// the run is the one process with --grad-accum R would make, bit for bit. Rank 0 alone prints,
// evaluates, logs and saves; every step a rank can fail on alone runs inside World::together,
// so a failure anywhere stops every rank with one message.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>

#include "common.h"
#include "rotor/core/io.h"
#include "rotor/core/parallel.h"
#include "rotor/nn/copying.h"
#include "rotor/nn/distributed.h"
#include "rotor/nn/mqar.h"
#include "rotor/nn/recall.h"
#include "rotor/nn/state_tracking.h"
#include "rotor/nn/text.h"
#include "rotor/nn/trainer.h"

using namespace rotor;
using namespace rotor::nn;

static const char* kUsage = R"(usage: train [flags]
  task      --task parity|cyclic|s3|a5|s5|copy|mqar|recall|text  (each task's flags below)
    parity, cyclic, s3, a5, s5   word problems over S2, Z_m, S3, A5, S5: label = running product
            --seq-len 64  --min-len 0 (> 0: training lengths uniform in [min-len, seq-len])
            --bos 1 (start token)  --eval-lengths 128,256  --modulus 5 (cyclic)
            --curriculum 0 (> 0: train on the first N elements of each word, doubling every
            --curriculum-every 100 steps up to seq-len; prefixes of words keep their labels)
            --train-size 10000  --test-size 500
    copy    --letters 26  --seq-len 128  --min-len 2  --max-len 16  --eval-lengths 32,64
            --train-size 10000  --test-size 500
    mqar    --vocab 8192  --seq-len 64  --kv-pairs 4  --train-size 20000  --test-size 1000
    recall  (MAD in-context recall)  --vocab 16  --seq-len 128  --train-size 12800  --test-size 1280
    text    bytes of a file or of every text file under a directory (default: the fortunes corpus)
            --data PATH  --doc-sep % (a line that ends a document; "" for none)  --vocab FILE (one
            token per line; default: the 256 bytes)  --split document|block  --val-fraction 0.05
            --seq-len 128 (training window)  --eval-windows 256  --eval-lengths 256,512 (2T, 4T)
            checkpoints carry the vocabulary: examples/infer --generate prints text
  model     --mixer gla|gdn|attn  --pe none|rope|selective_rope  --dim 128  --layers 2  --heads 8
            --expand-k 1  --expand-v 1  --short-conv 0|1 (q/k/v convolutions; gdn: 1)  --init reference|torch
            gdn (Gated DeltaNet): --head-dim 0 (dim/heads)  --neg-eigval 0|1 (beta in (0, 2))
            attn: the reference's "transformer" model, softmax attention in every layer
            Selective RoPE: --pe-bias 0|1  --pe-gate 0|1  --pe-skip-conv 0|1  --pe-temp-type rope|rfa
            --pe-temp-theta 500000 (rfa: 0.995)  --pe-temp-max 1  --pe-rank 32
  training  --steps 1000  --batch 64  --lr 1e-3  --warmup 100  --min-lr 1e-5  --weight-decay 0.1
            --grad-clip 1  --seed 0  --threads 0 (all)
            --grad-accum 1 (split each batch into N micro-batches: same update, less memory)
            under mpirun: --bucket-kb 1024 (gradient bytes per all-reduce)  --overlap 1 (reduce a
            bucket while the backward runs on; 0: all after the backward)
  output    --eval-every 100  --log FILE.csv  --results FILE.json  --save PATH  --save-every 0 (only at
            the end)  --resume PATH  --stop-at N (stop after step N of --steps; resume later with the same flags)
)";

namespace {

// What train needs from a task, read from the task's flags.
struct TaskSetup {
  std::string summary;  // one line for the banner
  int64_t vocab_size = 0;
  std::function<TaskData(uint64_t seed)> generate;
  // Set by tasks that stream their training data (text): the loader to train from, instead of a
  // shuffled pass over TaskData::train.
  std::function<std::unique_ptr<Loader>(int64_t batch, uint64_t seed)> loader = {};
  // Set by text: evaluations report validation bits per byte of a mean loss.
  std::function<double(double loss)> bits_per_byte = {};
  Metadata checkpoint_metadata = {};  // stored beside the weights (text: the vocabulary)
  // Set by word problems: a length curriculum (LengthCurriculum) from this many columns, doubling
  // every curriculum_every steps; 0: none.
  int64_t curriculum_columns = 0, curriculum_every = 0;
};
using TaskReader = std::function<TaskSetup(examples::Flags&)>;

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return s;
}

TaskReader state_tracking_task(const std::string& group) {
  return [group](examples::Flags& flags) {
    StateTrackingConfig c;
    c.group = group == "Z" ? "Z" + std::to_string(flags.integer("modulus", 5, 2, 1024)) : group;
    c.seq_len = flags.integer("seq-len", 64, 1, 1 << 20);
    c.min_len = flags.integer("min-len", 0, 0, c.seq_len);
    c.bos = flags.integer("bos", 1, 0, 1) == 1;
    c.eval_lengths = flags.integers("eval-lengths", {2 * c.seq_len, 4 * c.seq_len}, 1, 1 << 20);
    const int64_t train_size = flags.integer("train-size", 10000, 1, 1 << 24);
    const int64_t test_size = flags.integer("test-size", 500, 1, 1 << 24);
    const int64_t curriculum = flags.integer("curriculum", 0, 0, c.seq_len);
    const int64_t every = flags.integer("curriculum-every", 100, 1, int64_t(1) << 40);
    const Group g = make_group(c.group);
    TaskSetup s{"word problems over " + c.group + ", L=" + std::to_string(c.seq_len) +
                    (c.min_len ? " (from " + std::to_string(c.min_len) + ")" : "") +
                    (curriculum ? ", curriculum from " + std::to_string(curriculum) + " doubling every " +
                                      std::to_string(every) + " steps"
                                : "") +
                    ", eval at " + join(c.eval_lengths),
                state_tracking_vocab(g),
                [c, train_size, test_size](uint64_t seed) { return state_tracking_splits(c, train_size, test_size, seed); }};
    if (curriculum) s.curriculum_columns = curriculum + (c.bos ? 1 : 0), s.curriculum_every = every;
    return s;
  };
}

TaskSetup copy_task(examples::Flags& flags) {
  CopyingConfig c;
  c.letters = flags.integer("letters", 26, 2, 128);
  c.seq_len = flags.integer("seq-len", 128, 4, 1 << 20);
  c.min_len = flags.integer("min-len", 2, 1, 1 << 16);
  c.max_len = flags.integer("max-len", 16, 1, 1 << 16);
  c.eval_lengths = flags.integers("eval-lengths", {2 * c.max_len, 4 * c.max_len}, 1, 1 << 16);
  const int64_t train_size = flags.integer("train-size", 10000, 1, 1 << 24);
  const int64_t test_size = flags.integer("test-size", 500, 1, 1 << 24);
  return {"copying, strings of " + std::to_string(c.min_len) + "-" + std::to_string(c.max_len) + " letters in " +
              std::to_string(c.seq_len) + " tokens, eval at " + join(c.eval_lengths),
          c.vocab_size(), [c, train_size, test_size](uint64_t seed) { return copying_splits(c, train_size, test_size, seed); }};
}

TaskSetup mqar_task(examples::Flags& flags) {
  MqarConfig c;
  c.vocab_size = flags.integer("vocab", 8192, 4, 1 << 20);
  c.seq_len = flags.integer("seq-len", 64, 4, 1 << 16);
  c.num_kv_pairs = flags.integer("kv-pairs", 4, 1, 1 << 14);
  const int64_t train_size = flags.integer("train-size", 20000, 1, 1 << 24);
  const int64_t test_size = flags.integer("test-size", 1000, 1, 1 << 24);
  return {"MQAR V=" + std::to_string(c.vocab_size) + " T=" + std::to_string(c.seq_len) +
              " pairs=" + std::to_string(c.num_kv_pairs),
          c.vocab_size, [c, train_size, test_size](uint64_t seed) {
            MqarSplits s = mqar_splits(c, train_size, test_size, seed);
            return TaskData{s.train, s.test, {}};
          }};
}

TaskSetup recall_task(examples::Flags& flags) {
  RecallConfig c;
  c.vocab_size = flags.integer("vocab", 16, 4, 1 << 16);
  c.seq_len = flags.integer("seq-len", 128, 4, 1 << 20);
  const int64_t train_size = flags.integer("train-size", 12800, 1, 1 << 24);
  const int64_t test_size = flags.integer("test-size", 1280, 1, 1 << 24);
  return {"in-context recall V=" + std::to_string(c.vocab_size) + " T=" + std::to_string(c.seq_len), c.vocab_size,
          [c, train_size, test_size](uint64_t seed) { return recall_splits(c, train_size, test_size, seed); }};
}

// Bytes of real text: random windows of the train text, evaluation on held-out windows that end
// at the same positions at every length (nn/text.h).
TaskSetup text_task(examples::Flags& flags) {
  const std::string path = flags.str("data", default_text_corpus());
  TextOptions o;
  o.separator = flags.str("doc-sep", "%");
  const std::string vocab_path = flags.str("vocab", "");
  o.split = flags.str("split", "document", {"document", "block"});
  o.validation_fraction = flags.real("val-fraction", 0.05, 1e-9, 0.9);
  const int64_t T = flags.integer("seq-len", 128, 1, 1 << 16);
  const int64_t windows = flags.integer("eval-windows", 256, 1, 1 << 20);
  const std::vector<int64_t> lengths = flags.integers("eval-lengths", {2 * T, 4 * T}, 1, 1 << 20);
  const Vocabulary vocab = vocab_path.empty() ? Vocabulary::bytes() : Vocabulary::load(vocab_path);
  auto text = std::make_shared<TextData>();  // read by generate, then drawn from by the loader
  TaskSetup s;
  s.summary = path + ", windows of " + std::to_string(T) + (vocab.is_bytes() ? " bytes" : " tokens") +
              (lengths.empty() ? "" : ", eval at " + join(lengths));
  s.vocab_size = vocab.size();
  s.generate = [=](uint64_t) {
    *text = load_text(path, vocab, o);
    std::printf("text: %s, %lld files, %lld documents (%lld repeats dropped); train %lld bytes, validation %lld bytes (%s split)\n",
                path.c_str(), (long long)text->files, (long long)text->documents, (long long)text->duplicates,
                (long long)text->train.bytes, (long long)text->validation.bytes, o.split.c_str());
    int64_t longest = T;
    for (int64_t l : lengths) longest = std::max(longest, l);
    const std::vector<int64_t> ends = evaluation_ends(text->validation, longest, windows);
    TaskData d;
    d.test = windows_ending_at(text->validation, ends, T);
    for (int64_t l : lengths) d.lengths.push_back({l, windows_ending_at(text->validation, ends, l)});
    return d;
  };
  s.loader = [text, T](int64_t batch, uint64_t seed) { return std::make_unique<TextLoader>(text->train, batch, T, seed); };
  s.bits_per_byte = [text](double loss) { return text->validation.bits_per_byte(loss); };
  s.checkpoint_metadata = TextModelInfo{vocab, o.separator}.metadata();
  return s;
}

const std::map<std::string, TaskReader> kTasks = {
    {"parity", state_tracking_task("S2")}, {"cyclic", state_tracking_task("Z")}, {"s3", state_tracking_task("S3")},
    {"a5", state_tracking_task("A5")},     {"s5", state_tracking_task("S5")},    {"copy", copy_task},
    {"mqar", mqar_task},                   {"recall", recall_task},      {"text", text_task},
};

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (const auto& [name, reader] : kTasks) names.push_back(name);
  return names;
}

struct Evaluation {
  double accuracy = 0, sequence_accuracy = 0, loss = 0;
};
Evaluation eval(const LanguageModel& model, const TokenData& data, int64_t batch) {
  EvalResult r = evaluate(model, data, batch);
  return {r.accuracy.value(), r.sequences.value(), r.loss};
}

// On ranks other than 0, stdout goes nowhere, and so does stderr while a block runs whose
// errors every rank meets alike (the flags: every rank has the same command line).
class RankOutput {
 public:
  explicit RankOutput(const World& world) : quiet_(!world.is_root()) {
    if (quiet_ && !std::freopen("/dev/null", "w", stdout)) std::perror("train: /dev/null");
  }
  void mute_errors(bool on) {
    if (!quiet_) return;
    std::fflush(stderr);
    if (on) {
      saved_ = ::dup(STDERR_FILENO);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDERR_FILENO);
      ::close(null);
    } else if (saved_ >= 0) {
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
      saved_ = -1;
    }
  }
  // An error: every rank has it (CollectiveError; a divergence, which the trainer decides on
  // every rank alike) and rank 0 reports it, or only this rank has it and says so.
  void report(const World& world, const std::exception& e, bool collective) const {
    if (!quiet_) std::fprintf(stderr, "%s\n", e.what());
    else if (!collective) std::fprintf(stderr, "[rank %d] %s\n", world.rank(), e.what());
  }

 private:
  bool quiet_;
  int saved_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  World world(argc, argv);  // this process alone, or one rank of an mpirun job
  RankOutput output(world);
  try {
    std::string line;
    for (int i = 1; i < argc; ++i) line += std::string(argv[i]) + '\n';
    world.check_same("the command line (every rank must be started with the same flags)", line);
  } catch (const CollectiveError& e) {
    output.report(world, e, true);
    return 2;
  }
  output.mute_errors(true);
  examples::Flags flags(argc, argv, kUsage);
  const std::string task_name = flags.str("task", "mqar", task_names());
  TaskSetup task;
  try {
    task = kTasks.at(task_name)(flags);
  } catch (const Error& e) {  // a task file (a vocabulary) that cannot be read
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }

  ModelConfig model_config;
  const std::string mixer = flags.str("mixer", "gla", {"gla", "gdn", "attn"});
  model_config.model_type = mixer == "gdn" ? "gated_deltanet" : mixer == "attn" ? "transformer" : "gla";
  const std::string pe = flags.str("pe", "selective_rope", {"none", "rope", "selective_rope"});
  model_config.vocab_size = task.vocab_size;
  model_config.hidden_size = flags.integer("dim", 128, 1, 1 << 16);
  model_config.num_hidden_layers = flags.integer("layers", 2, 1, 1024);
  model_config.num_heads = flags.integer("heads", 8, 1, 1024);
  model_config.expand_k = flags.real("expand-k", 1.0, 0.0, 16.0);
  model_config.expand_v = flags.real("expand-v", 1.0, 0.0, 16.0);
  model_config.use_short_conv = flags.integer("short-conv", mixer == "gdn" ? 1 : 0, 0, 1) == 1;
  model_config.head_dim = flags.integer("head-dim", 0, 0, 1 << 16);
  model_config.allow_neg_eigval = flags.integer("neg-eigval", 0, 0, 1) == 1;
  model_config.init = flags.str("init", "reference", {"reference", "torch"});
  model_config.position_embedding.type = pe == "none" ? "nope" : pe;
  SelectiveRopeConfig& sr = model_config.position_embedding.selective;
  // The phase bias φ += exp(b), b = 0 at init: the phase starts advancing at RoPE's constant rate.
  sr.use_bias = flags.integer("pe-bias", 0, 0, 1) == 1;
  sr.use_gate = flags.integer("pe-gate", 0, 0, 1) == 1;
  sr.skip_conv = flags.integer("pe-skip-conv", 0, 0, 1) == 1;
  sr.temp_type = flags.str("pe-temp-type", "rope", {"rope", "rfa"});
  // rope: τ_r = temp_max · θ^(−2r/D), θ > 1 (θ = 1: the same temperature on every pair); rfa: 0 < θ < 1.
  sr.temp_theta = flags.real("pe-temp-theta", sr.temp_type == "rfa" ? 0.995 : 500000.0, 1e-9, 1e12);
  sr.temp_max = flags.real("pe-temp-max", 1.0, 1e-9, 1e6);
  sr.phi_proj_rank = flags.integer("pe-rank", 32, 1, 1 << 16);

  TrainConfig train;
  train.steps = flags.integer("steps", 1000, 1, int64_t(1) << 40);
  const int64_t batch = flags.integer("batch", 64, 1, 1 << 20);
  train.lr = flags.real("lr", 1e-3, 1e-12, 10.0);
  train.warmup = flags.integer("warmup", std::min<int64_t>(100, train.steps / 10), 0, train.steps);
  train.min_lr = flags.real("min-lr", 1e-5, 0.0, train.lr);
  train.weight_decay = flags.real("weight-decay", 0.1, 0.0, 10.0);
  train.grad_clip = flags.real("grad-clip", 1.0, 0.0, 1e9);
  train.grad_accum = flags.integer("grad-accum", 1, 1, 1 << 20);
  train.bucket_bytes = flags.integer("bucket-kb", 1024, 1, 1 << 22) * 1024;
  train.overlap = flags.integer("overlap", 1, 0, 1) == 1;
  const uint64_t seed = uint64_t(flags.integer("seed", 0, 0, int64_t(1) << 40));
  const int64_t threads = flags.integer("threads", 0, 0, 1024);
  const int64_t eval_every = flags.integer("eval-every", 100, 0, int64_t(1) << 40);
  const std::string log_path = flags.str("log", ""), save_path = flags.str("save", ""),
                    resume_path = flags.str("resume", ""), results_path = flags.str("results", "");
  const int64_t save_every = flags.integer("save-every", 0, 0, int64_t(1) << 40);
  // Stop early (and save) while the schedule still spans --steps: a long run split into pieces
  // that --resume joins, bit-identical to one uninterrupted run.
  const int64_t stop_at = flags.integer("stop-at", train.steps, 1, train.steps);
  flags.finish();
  // Ranks on one host share its cores.
  if (threads) set_num_threads(int(threads));
  else if (world.local_size() > 1) set_num_threads(std::max(1, num_threads() / world.local_size()));
  try {
    model_config.validate();
  } catch (const Error& e) {
    flags.fail(e.what());
  }
  if (save_every && save_path.empty()) flags.fail("--save-every needs --save");
  if (batch % (train.grad_accum * world.size()))
    flags.fail(world.size() > 1 ? "--batch must be a multiple of --grad-accum x the number of ranks (" +
                                      std::to_string(train.grad_accum) + " x " + std::to_string(world.size()) + ")"
                                : "--batch must be a multiple of --grad-accum");
  output.mute_errors(false);
  const bool root = world.is_root();

  try {
    // 1. Data: disjoint train and test sets, and a loader that shuffles the train set. Every
    // rank makes (or reads) the same data: the fingerprints must agree.
    TaskData data;
    std::unique_ptr<Loader> loader;
    world.together([&] {
      if (root && !save_path.empty()) Trainer::check_save_path(save_path);  // before the work it would keep
      data = task.generate(seed);
    });
    if (!task.loader && batch > data.train.size()) {
      output.mute_errors(true);
      flags.fail("--batch must not exceed --train-size");
    }
    world.together([&] {
      loader = task.loader ? task.loader(batch, seed) : std::make_unique<BatchLoader>(data.train, batch, seed);
      if (task.curriculum_columns)
        loader = std::make_unique<LengthCurriculum>(std::move(loader), task.curriculum_columns, task.curriculum_every);
    });
    world.check_same("the training data (its fingerprint)", loader->fingerprint());
    const bool bpb = bool(task.bits_per_byte);

    // 2. Model and trainer (a resumed run overwrites parameters, optimizer and loader state;
    // every rank reads the checkpoint, so on several hosts it must be reachable from each).
    Generator init(seed);
    LanguageModel model(model_config, init);
    Trainer trainer(model, *loader, train, &world);
    std::string saved_train;
    world.together([&] { saved_train = resume_path.empty() ? "" : trainer.resume(resume_path); });
    auto save = [&] {
      // The note names the new checkpoint as soon as its commit is done, before the collective
      // of together(): a rank dying meanwhile must not leave rank 0 naming the previous step.
      world.together([&] {
        if (!root) return;
        trainer.save(save_path, task.checkpoint_metadata);
        world.set_stop_note("the last checkpoint, of step " + std::to_string(trainer.step_count()) + ", is " + save_path);
      });
    };
    if (!resume_path.empty()) world.set_stop_note("the last checkpoint is " + resume_path);
    std::printf("model: %s + %s, %lld parameters (%lld in matmuls); %s %s; %lld steps of %lld\n", mixer.c_str(),
                pe.c_str(), (long long)model.num_parameters(), (long long)model.matmul_parameters(), task_name.c_str(),
                task.summary.c_str(), (long long)train.steps, (long long)batch);
    if (world.size() > 1)
      std::printf("data parallel: %d ranks x %lld micro-batch(es) of %lld rows; %.2f MB of gradient per step in %lld "
                  "bucket(s)%s\n",
                  world.size(), (long long)train.grad_accum, (long long)(batch / (world.size() * train.grad_accum)),
                  double(trainer.reduce_bytes()) / 1e6, (long long)trainer.reduce_buckets(),
                  train.overlap ? ", reduced during the backward" : ", reduced after the backward");
    if (trainer.step_count()) std::printf("resumed from %s at step %lld\n", resume_path.c_str(), (long long)trainer.step_count());
    if (!resume_path.empty() && saved_train != train.to_json().dump())
      std::printf("note: the training settings differ from the saved run's (%s): the continuation follows the new ones\n",
                  saved_train.empty() ? "none" : saved_train.c_str());

    // 3. The CSV log (appended to when resuming).
    std::ofstream log;
    if (root && !log_path.empty()) {
      const bool append = trainer.step_count() > 0;
      log.open(log_path, append ? std::ios::app : std::ios::trunc);
      if (!log) throw Error("[train] cannot open --log " + log_path);
      log.precision(17);  // the loss to the bit
      if (!append) log << "step,loss,accuracy,test_accuracy,lr,grad_norm,test_sequence_accuracy,test_loss,test_bits_per_byte\n";
    }

    // 4. The loop.
    examples::Progress progress(trainer.step_count(), stop_at, std::max<int64_t>(1, train.steps / 20));
    Evaluation test{-1, -1, 0};
    auto test_text = [&](const Evaluation& e) {
      char buf[64];
      if (bpb) std::snprintf(buf, sizeof buf, "  val %.4f bits/byte", task.bits_per_byte(e.loss));
      else std::snprintf(buf, sizeof buf, "  test acc %.4f", e.accuracy);
      return std::string(buf);
    };
    // Step and reduction times: the fastest step is the one least disturbed by other work.
    double step_min = 1e300, reduce_min = 1e300, step_sum = 0, reduce_sum = 0;
    int64_t timed = 0;
    while (trainer.step_count() < stop_at) {
      StepStats s;
      const auto t0 = std::chrono::steady_clock::now();
      try {
        s = trainer.step();
      } catch (const TrainingDiverged& e) {
        progress.newline();
        output.report(world, e, true);
        if (root && !save_path.empty())
          std::fprintf(stderr, "the last good checkpoint is %s (if one was saved)\n", save_path.c_str());
        return 1;
      } catch (const CollectiveError& e) {
        progress.newline();
        output.report(world, e, true);
        if (root && !save_path.empty())
          std::fprintf(stderr, "the last good checkpoint is %s (if one was saved)\n", save_path.c_str());
        return 1;
      }
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      step_min = std::min(step_min, dt), reduce_min = std::min(reduce_min, s.reduce_seconds);
      step_sum += dt, reduce_sum += s.reduce_seconds, ++timed;
      std::string extra, test_cell, test_sequence_cell, test_loss_cell, bpb_cell;  // empty without evaluation
      if (root && ((eval_every && s.step % eval_every == 0) || s.step == stop_at)) {
        test = eval(model, data.test, batch);
        extra = test_text(test);
        test_cell = std::to_string(test.accuracy);
        test_sequence_cell = std::to_string(test.sequence_accuracy);
        test_loss_cell = std::to_string(test.loss);
        if (bpb) bpb_cell = std::to_string(task.bits_per_byte(test.loss));
      }
      if (log) log << s.step << ',' << s.loss << ',' << s.accuracy << ',' << test_cell << ',' << s.lr << ','
                   << s.grad_norm << ',' << test_sequence_cell << ',' << test_loss_cell << ',' << bpb_cell << '\n'
                   << std::flush;
      progress.update(s.step, s.loss, s.accuracy, double(s.tokens), extra);
      if (!save_path.empty() && save_every && s.step % save_every == 0) save();
    }
    progress.newline();
    if (!save_path.empty()) save();
    if (timed && (world.size() > 1 || train.grad_accum > 1))
      std::printf("step time: min %.2f ms, mean %.2f ms; waiting for the reduction after the backward: min %.2f ms, "
                  "mean %.2f ms (%lld steps)\n",
                  1e3 * step_min, 1e3 * step_sum / double(timed), 1e3 * reduce_min, 1e3 * reduce_sum / double(timed),
                  (long long)timed);
    if (!root) return 0;  // the rest is rank 0's: final evaluations and the results file
    if (test.accuracy < 0) test = eval(model, data.test, batch);
    const std::string run = mixer + " + " + pe + ", " + std::to_string(trainer.step_count()) + " steps, " +
                            examples::Progress::clock(progress.seconds());
    if (bpb)
      std::printf("final validation: %.4f bits per byte, next-token accuracy %.4f  (%s)\n", task.bits_per_byte(test.loss),
                  test.accuracy, run.c_str());
    else
      std::printf("final test accuracy: %.4f, sequences all right: %.4f  (%s)\n", test.accuracy, test.sequence_accuracy,
                  run.c_str());

    // 5. Length generalisation: the same model on test sets of other lengths.
    Json lengths = Json::array();
    if (!data.lengths.empty())
      std::printf("%10s %10s %10s\n", "length", bpb ? "bits/byte" : "accuracy", bpb ? "accuracy" : "sequences");
    for (const LengthSplit& l : data.lengths) {
      const Evaluation e = eval(model, l.data, batch);
      if (bpb) std::printf("%10lld %10.4f %10.4f\n", (long long)l.length, task.bits_per_byte(e.loss), e.accuracy);
      else std::printf("%10lld %10.4f %10.4f\n", (long long)l.length, e.accuracy, e.sequence_accuracy);
      Json row = Json::object();
      row.set("length", l.length);
      row.set("accuracy", e.accuracy);
      row.set("sequence_accuracy", e.sequence_accuracy);
      row.set("loss", e.loss);
      if (bpb) row.set("bits_per_byte", task.bits_per_byte(e.loss));
      lengths.push(row);
    }
    if (!results_path.empty()) {
      Json r = Json::object();
      r.set("task", task_name);
      r.set("steps", trainer.step_count());
      r.set("seconds", progress.seconds());
      r.set("test_accuracy", test.accuracy);
      r.set("test_sequence_accuracy", test.sequence_accuracy);
      r.set("test_loss", test.loss);
      if (bpb) r.set("test_bits_per_byte", task.bits_per_byte(test.loss));
      r.set("lengths", lengths);
      r.set("model", model.config.to_json());
      r.set("train", train.to_json());
      io::write_atomic(results_path, "train", [&](std::ostream& out) { out << r.dump(2) << "\n"; });
    }
  } catch (const CollectiveError& e) {
    output.report(world, e, true);
    return 1;
  } catch (const Error& e) {
    output.report(world, e, false);
    if (world.size() > 1) world.abort(1);  // the other ranks may be waiting for this one
    return 1;
  }
  return 0;
}
