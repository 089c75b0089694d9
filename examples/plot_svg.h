// A tiny SVG line plot: a few named series of (x, y) points, labelled axes with ticks, a
// legend. Enough for training curves without a plotting library.
#pragma once
#include <string>
#include <vector>

namespace examples {

struct Series {
  std::string label;
  std::vector<double> x, y;
};

struct PlotOptions {
  std::string title, x_label, y_label;
  double y_min = 0, y_max = 1;  // the y range (x spans the data)
  int width = 720, height = 440;
};

std::string line_plot_svg(const std::vector<Series>& series, const PlotOptions& options);

}  // namespace examples
