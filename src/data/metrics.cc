#include "data/metrics.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace sqz::data {

double accuracy(const std::vector<int64_t>& predicted, const std::vector<int64_t>& gold) {
  if (predicted.size() != gold.size() || gold.empty())
    fail_invalid("accuracy: ", predicted.size(), " predictions for ", gold.size(), " references");
  int64_t right = 0;
  for (size_t i = 0; i < gold.size(); ++i) right += predicted[i] == gold[i];
  return static_cast<double>(right) / static_cast<double>(gold.size());
}

double macro_f1(const std::vector<int64_t>& predicted, const std::vector<int64_t>& gold, int64_t num_classes) {
  if (predicted.size() != gold.size() || gold.empty())
    fail_invalid("macro_f1: ", predicted.size(), " predictions for ", gold.size(), " references");
  std::vector<int64_t> tp(num_classes), fp(num_classes), fn(num_classes);
  for (size_t i = 0; i < gold.size(); ++i) {
    if (predicted[i] == gold[i]) {
      ++tp[gold[i]];
    } else {
      ++fp[predicted[i]];
      ++fn[gold[i]];
    }
  }
  double sum = 0;
  int64_t classes = 0;
  for (int64_t c = 0; c < num_classes; ++c) {
    if (tp[c] + fp[c] + fn[c] == 0) continue;
    ++classes;
    sum += 2.0 * tp[c] / static_cast<double>(2 * tp[c] + fp[c] + fn[c]);
  }
  return classes ? sum / classes : 0.0;
}

double perplexity(double total_nll_nats, int64_t tokens) {
  if (tokens <= 0) fail_invalid("perplexity over zero tokens");
  return std::exp(total_nll_nats / static_cast<double>(tokens));
}

double bits_per_byte(double total_nll_nats, double bytes) {
  if (bytes <= 0) fail_invalid("bits per byte over zero bytes");
  return total_nll_nats / std::log(2.0) / bytes;
}

int64_t edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diagonal = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int64_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace sqz::data
