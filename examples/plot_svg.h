// A tiny SVG line plot: a few named series of (x, y) points, each with an optional band (e.g.
// min–max over seeds), labelled axes with ticks, a legend. Enough for training curves and
// accuracy-against-length plots without a plotting library.
#pragma once
#include <string>
#include <vector>

namespace examples {

struct Series {
  std::string label;
  std::vector<double> x, y;
  std::vector<double> y_lo, y_hi;  // a shaded band under the line, when given (same length as x)
};

struct PlotOptions {
  std::string title, x_label, y_label;
  double y_min = 0, y_max = 1;  // the y range (x spans the data)
  bool x_from_zero = true;      // start the x axis at 0 (training curves) rather than at the data
  bool log2_x = false;          // a log2 x axis with a tick at every power of two in range
  int width = 720, height = 440;
};

std::string line_plot_svg(const std::vector<Series>& series, const PlotOptions& options);

}  // namespace examples
