#include "plot_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace examples {

namespace {
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}
// A "nice" tick step (1, 2 or 5 times a power of ten) giving about n ticks over span.
double tick_step(double span, int n) {
  const double raw = span / n, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}
}  // namespace

std::string line_plot_svg(const std::vector<Series>& series, const PlotOptions& o) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
  // The legend column is sized for the longest label (about 7 px per character at font size 12).
  size_t longest_label = 0;
  for (const Series& s : series) longest_label = std::max(longest_label, s.label.size());
  const double left = 70, right = 60 + 7.5 * double(longest_label), top = 40, bottom = 60;
  const double pw = o.width - left - right, ph = o.height - top - bottom;
  // Positions along x are in axis units: log2(x) on a log axis.
  auto U = [&](double x) { return o.log2_x ? std::log2(std::max(x, 1e-300)) : x; };
  double x_min = INFINITY, x_max = -INFINITY;
  for (const Series& s : series)
    for (double x : s.x) x_min = std::min(x_min, U(x)), x_max = std::max(x_max, U(x));
  if (o.x_from_zero && !o.log2_x) x_min = std::min(x_min, 0.0);
  if (!(x_max > x_min)) {
    if (std::isfinite(x_min)) x_min -= 0.5, x_max = x_min + 1;
    else x_min = 0, x_max = 1;
  }
  if (o.log2_x) x_min -= 0.25, x_max += 0.25;  // keep the end points off the frame
  const double y_min = o.y_min, y_max = o.y_max > o.y_min ? o.y_max : o.y_min + 1;
  auto X = [&](double x) { return left + (U(x) - x_min) / (x_max - x_min) * pw; };
  auto Y = [&](double y) { return top + (1 - (std::clamp(y, y_min, y_max) - y_min) / (y_max - y_min)) * ph; };

  std::string svg;
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(o.width) + "\" height=\"" +
         std::to_string(o.height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + fmt("%.1f", left + pw / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
         escape(o.title) + "</text>\n";
  // Grid, ticks and tick labels.
  const double ys = tick_step(y_max - y_min, 5), xs = tick_step(x_max - x_min, 6);
  for (double y = std::ceil(y_min / ys) * ys; y <= y_max + 1e-9; y += ys) {
    svg += "<line x1=\"" + fmt("%.1f", left) + "\" x2=\"" + fmt("%.1f", left + pw) + "\" y1=\"" + fmt("%.1f", Y(y)) +
           "\" y2=\"" + fmt("%.1f", Y(y)) + "\" stroke=\"#ddd\"/>\n";
    svg += "<text x=\"" + fmt("%.1f", left - 6) + "\" y=\"" + fmt("%.1f", Y(y) + 4) + "\" text-anchor=\"end\">" +
           fmt("%g", std::round(y / ys) * ys) + "</text>\n";
  }
  std::vector<double> x_ticks;
  if (o.log2_x)
    for (double e = std::ceil(x_min); e <= x_max + 1e-9; e += 1) x_ticks.push_back(std::exp2(e));
  else
    for (double x = std::ceil(x_min / xs) * xs; x <= x_max + 1e-9; x += xs) x_ticks.push_back(x);
  for (double x : x_ticks) {
    svg += "<line x1=\"" + fmt("%.1f", X(x)) + "\" x2=\"" + fmt("%.1f", X(x)) + "\" y1=\"" + fmt("%.1f", top) +
           "\" y2=\"" + fmt("%.1f", top + ph) + "\" stroke=\"#eee\"/>\n";
    svg += "<text x=\"" + fmt("%.1f", X(x)) + "\" y=\"" + fmt("%.1f", top + ph + 18) + "\" text-anchor=\"middle\">" +
           fmt("%g", x) + "</text>\n";
  }
  // Axes and their labels.
  svg += "<rect x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", top) + "\" width=\"" + fmt("%.1f", pw) +
         "\" height=\"" + fmt("%.1f", ph) + "\" fill=\"none\" stroke=\"black\"/>\n";
  svg += "<text x=\"" + fmt("%.1f", left + pw / 2) + "\" y=\"" + fmt("%.1f", top + ph + 42) +
         "\" text-anchor=\"middle\">" + escape(o.x_label) + "</text>\n";
  svg += "<text transform=\"translate(18," + fmt("%.1f", top + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
         escape(o.y_label) + "</text>\n";
  // Bands first (under every line), then curves (with a dot per point) and the legend.
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const size_t n = std::min({s.x.size(), s.y_lo.size(), s.y_hi.size()});
    if (n == 0) continue;
    std::string pts;
    for (size_t k = 0; k < n; ++k) pts += fmt("%.1f,", X(s.x[k])) + fmt("%.1f ", Y(s.y_hi[k]));
    for (size_t k = n; k-- > 0;) pts += fmt("%.1f,", X(s.x[k])) + fmt("%.1f ", Y(s.y_lo[k]));
    svg += std::string("<polygon fill-opacity=\"0.18\" stroke=\"none\" fill=\"") + colors[i % 6] + "\" points=\"" +
           pts + "\"/>\n";
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const char* c = colors[i % 6];
    std::string pts;
    for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k) pts += fmt("%.1f,", X(s.x[k])) + fmt("%.1f ", Y(s.y[k]));
    svg += std::string("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"") + c + "\" points=\"" + pts + "\"/>\n";
    for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
      svg += "<circle cx=\"" + fmt("%.1f", X(s.x[k])) + "\" cy=\"" + fmt("%.1f", Y(s.y[k])) + "\" r=\"2.5\" fill=\"" + c + "\"/>\n";
    const double ly = top + 10 + 20 * double(i);
    svg += "<line x1=\"" + fmt("%.1f", left + pw + 12) + "\" x2=\"" + fmt("%.1f", left + pw + 36) + "\" y1=\"" +
           fmt("%.1f", ly) + "\" y2=\"" + fmt("%.1f", ly) + "\" stroke-width=\"2\" stroke=\"" + c + "\"/>\n";
    svg += "<text x=\"" + fmt("%.1f", left + pw + 42) + "\" y=\"" + fmt("%.1f", ly + 4) + "\">" + escape(s.label) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace examples
