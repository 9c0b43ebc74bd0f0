#include "compress/quant/gptq.h"

#include "core/error.h"

namespace sqz::quant {

void HessianAccumulator::add(const torch::Tensor& x_in) {
  torch::NoGradGuard no_grad;
  auto x = x_in.detach().to(torch::kFloat64).reshape({-1, x_in.size(-1)});
  auto xtx = x.t().mm(x);
  sum_ = sum_.defined() ? sum_ + xtx : xtx;
  rows_ += x.size(0);
}

void HessianAccumulator::all_reduce(dist::Group& group, int64_t in) {
  if (!group.distributed()) return;
  if (!sum_.defined()) sum_ = torch::zeros({in, in}, torch::kFloat64);
  auto rows = torch::tensor({static_cast<double>(rows_)}, torch::kFloat64);
  group.sum({sum_, rows});
  rows_ = static_cast<int64_t>(rows.item<double>());
}

torch::Tensor HessianAccumulator::hessian() const { return (2.0 / static_cast<double>(std::max<int64_t>(rows_, 1))) * sum_; }

GptqResult gptq_quantize(const torch::Tensor& weight, const torch::Tensor& hessian, const QuantSpec& spec, double damp,
                         const std::string& source) {
  torch::NoGradGuard no_grad;
  if (spec.granularity != Granularity::kChannel && spec.granularity != Granularity::kGroup)
    fail_invalid(source, ": GPTQ quantizes weights per channel or per group, not per ", granularity_name(spec.granularity));
  const int64_t in = weight.size(1);
  if (!hessian.defined() || hessian.size(0) != in) fail_invalid(source, ": GPTQ needs calibration inputs of width ", in);
  spec.validate(in, source);
  auto W = weight.detach().to(torch::kFloat64).clone();
  auto H = hessian.to(torch::kFloat64).clone();
  // Inputs that never fire carry no information: their weights can be anything, so they are zeroed.
  auto dead = H.diagonal() == 0;
  H.diagonal().masked_fill_(dead, 1.0);
  W.index_put_({torch::indexing::Slice(), dead}, 0.0);
  H.diagonal().add_(damp * H.diagonal().mean().item<double>());
  auto L = torch::linalg_cholesky(H);
  auto Hinv = torch::linalg_cholesky(torch::cholesky_inverse(L), /*upper=*/true);

  const int64_t g = spec.granularity == Granularity::kGroup ? spec.group_size : in;
  QuantSpec column_spec = spec;
  column_spec.granularity = Granularity::kChannel;  // one group's qparams: per output row
  std::vector<torch::Tensor> scales, zeros;
  auto Q = torch::zeros_like(W);
  QParams p;
  for (int64_t i = 0; i < in; ++i) {
    if (i % g == 0) {
      // Group ranges come from the weights as the earlier columns' errors left them.
      p = dynamic_qparams(W.slice(1, i, i + g).to(torch::kFloat32), column_spec);
      scales.push_back(p.scale);
      zeros.push_back(p.zero_point);
    }
    auto w = W.select(1, i).unsqueeze(1).to(torch::kFloat32);  // [out, 1]
    auto q = fake_quantize(w, p, column_spec).to(torch::kFloat64);
    Q.select(1, i).copy_(q.squeeze(1));
    auto err = (w.to(torch::kFloat64) - q).squeeze(1) / Hinv[i][i];
    if (i + 1 < in) W.slice(1, i + 1).sub_(err.unsqueeze(1) * Hinv[i].slice(0, i + 1).unsqueeze(0));
  }
  GptqResult r;
  r.weight = Q.to(weight.scalar_type());
  if (spec.granularity == Granularity::kGroup) {
    r.qparams.scale = torch::cat(scales, 1).unsqueeze(-1);  // [out, in/g, 1]
    r.qparams.zero_point = torch::cat(zeros, 1).unsqueeze(-1);
  } else {
    r.qparams = {scales[0], zeros[0]};
  }
  return r;
}

}  // namespace sqz::quant
