// Task metrics, each a plain function of predictions and references.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sqz::data {

double accuracy(const std::vector<int64_t>& predicted, const std::vector<int64_t>& gold);
// Mean of per-class F1 over the classes that occur in gold or predictions (scikit-learn's
// f1_score(average="macro") over the union of labels; a class with no true or predicted
// examples has F1 0 only when it appears on one side).
double macro_f1(const std::vector<int64_t>& predicted, const std::vector<int64_t>& gold, int64_t num_classes);
// exp(mean negative log-likelihood per token), with NLL summed in nats.
double perplexity(double total_nll_nats, int64_t tokens);
// Total NLL in bits divided by the UTF-8 bytes of the text: tokenizer-independent.
double bits_per_byte(double total_nll_nats, double bytes);
// Levenshtein distance between two token sequences (unit cost insert, delete, substitute).
int64_t edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b);

}  // namespace sqz::data
