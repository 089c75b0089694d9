// Suite "cli": the progress line of the example programs at every terminal width (their flags
// and filters are run as programs by tests/cli_test.py).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "../examples/common.h"

using examples::progress_line;

TEST_CASE("the progress line fits the terminal and keeps the test accuracy") {
  const std::string test = "test acc 0.8700";
  for (int width : {20, 40, 60, 79, 80, 100, 120, 200}) {
    CAPTURE(width);
    const std::string line = progress_line(width, 700, 1500, 0.1234, 0.53125, 12345.0, 61.0, test);
    CHECK(int(line.size()) <= width - 1);  // the last column would wrap on many terminals
    if (width >= 60) {
      CHECK(line.find(test) != std::string::npos);
      CHECK(line.find("loss 0.1234") != std::string::npos);
    }
    if (width >= 80) CHECK(line.find("batch acc 0.5312") != std::string::npos);
    if (width >= 120) {
      CHECK(line.find("tok/s") != std::string::npos);
      CHECK(line.find("[") == 0);  // the bar
    }
  }
  // Without a test accuracy yet, nothing stands in for it.
  const std::string first = progress_line(80, 1, 1500, 4.2, 0.0, 100.0, 600.0, "");
  CHECK(first.find("test acc") == std::string::npos);
  CHECK(first.find("step    1/1500") != std::string::npos);
}

TEST_CASE("the progress bar fills in proportion to the steps done") {
  const std::string line = progress_line(200, 750, 1500, 1.0, 0.5, 1.0, 1.0, "");
  const size_t open = line.find('['), close = line.find(']');
  REQUIRE(open == 0);
  REQUIRE(close != std::string::npos);
  const std::string bar = line.substr(1, close - 1);
  const size_t filled = size_t(std::count(bar.begin(), bar.end(), '#'));
  CHECK(filled == bar.size() / 2);
  CHECK(std::count(bar.begin(), bar.end(), '.') == std::ptrdiff_t(bar.size() - filled));
}

TEST_CASE("logs and pipes get the whole line without a bar") {
  const std::string line = progress_line(1 << 12, 10, 1500, 1.0, 0.5, 100.0, 60.0, "test acc 0.5000", false);
  CHECK(line.find('[') == std::string::npos);
  CHECK(line.find("tok/s") != std::string::npos);
  CHECK(line.find("test acc 0.5000") != std::string::npos);
}
