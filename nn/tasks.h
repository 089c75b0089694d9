// What every synthetic task hands to training (docs/tasks.md): a train set, a test set of the
// same kind, and test sets at other lengths for length generalisation; plus the metrics that
// read them.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "rotor/core/generator.h"
#include "rotor/nn/data.h"
#include "rotor/nn/loss.h"

namespace rotor::nn {

struct LengthSplit {
  int64_t length = 0;  // the task's own measure (elements of a word problem, letters of a string)
  TokenData data;
};

struct TaskData {
  TokenData train, test;
  std::vector<LengthSplit> lengths;  // evaluation at other (usually longer) lengths
};

// The bytes of row i of a [N, T] int64 tensor: a key for sets of rows.
std::string_view row_bytes(const Tensor& rows, int64_t i);

// The seed of row i at attempt a of a generator stream (attempts > 0 redraw a rejected row).
uint64_t task_row_seed(uint64_t seed, int64_t i, int64_t attempt);

// Writes one row (inputs and labels, T each) from its own generator.
using RowWriter = std::function<void(Generator& gen, int64_t* inputs, int64_t* labels)>;

// n rows of length T; row i comes from Generator(task_row_seed(seed, i, 0)), so the rows are
// written in parallel and are the same on any thread count.
TokenData generate_rows(int64_t n, int64_t T, uint64_t seed, const RowWriter& write);

// Redraws, in row order, every row of d whose inputs are already in `taken` (rows of another
// set, or earlier rows of d), from attempts 1, 2, ... of that row's stream, and adds each row to
// `taken`: afterwards the rows are distinct from each other and from what was taken before.
// The keys point into d, which must outlive `taken`. A row that still collides after many
// redraws (a task with too few distinct sequences for the sizes asked) is a rotor::Error.
void make_rows_distinct(TokenData& d, uint64_t seed, const RowWriter& write,
                        std::unordered_set<std::string_view>& taken, const std::string& what);

}  // namespace rotor::nn
