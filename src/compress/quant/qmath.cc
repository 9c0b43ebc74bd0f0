#include "compress/quant/qmath.h"

#include "core/error.h"

namespace sqz::quant {

void QuantSpec::validate(int64_t last_dim, const std::string& source) const {
  if (bits < 2 || bits > 8) fail_invalid(source, ": bits = ", bits, " is outside 2..8");
  if (granularity == Granularity::kGroup && (group_size < 1 || group_size > last_dim))
    fail_invalid(source, ": group_size ", group_size, " is outside 1..", last_dim, " (the input dimension)");
}

const char* granularity_name(Granularity g) {
  switch (g) {
    case Granularity::kTensor: return "tensor";
    case Granularity::kChannel: return "channel";
    case Granularity::kGroup: return "group";
    case Granularity::kToken: return "token";
  }
  return "?";
}

Granularity parse_granularity(const std::string& name, const std::string& source) {
  for (auto g : {Granularity::kTensor, Granularity::kChannel, Granularity::kGroup, Granularity::kToken})
    if (name == granularity_name(g)) return g;
  fail_invalid(source, ": granularity '", name, "' is not one of tensor, channel, group, token");
}

int64_t qmin(const QuantSpec& s) { return s.symmetric ? -((int64_t{1} << (s.bits - 1)) - 1) : 0; }
int64_t qmax(const QuantSpec& s) { return s.symmetric ? (int64_t{1} << (s.bits - 1)) - 1 : (int64_t{1} << s.bits) - 1; }

torch::Tensor group_view(const torch::Tensor& x, const QuantSpec& s) {
  switch (s.granularity) {
    case Granularity::kTensor: return x.reshape({1, -1});
    case Granularity::kChannel: return x.reshape({x.size(0), -1});
    case Granularity::kToken: return x.dim() == 1 ? x.reshape({1, -1}) : x;
    case Granularity::kGroup: {
      const int64_t last = x.size(-1), groups = (last + s.group_size - 1) / s.group_size;
      auto padded = last % s.group_size ? torch::constant_pad_nd(x, {0, groups * s.group_size - last}) : x;
      auto shape = x.sizes().vec();
      shape.back() = groups;
      shape.push_back(s.group_size);
      return padded.reshape(shape);
    }
  }
  return x;
}

torch::Tensor ungroup(const torch::Tensor& v, const torch::Tensor& like, const QuantSpec& s) {
  if (s.granularity != Granularity::kGroup || like.size(-1) % s.group_size == 0) return v.reshape(like.sizes());
  auto shape = like.sizes().vec();
  shape.back() = v.size(-2) * s.group_size;
  return v.reshape(shape).narrow(-1, 0, like.size(-1));
}

torch::Tensor group_mean_abs(const torch::Tensor& x, const QuantSpec& s) {
  auto sum = group_view(x.abs(), s).sum(-1, /*keepdim=*/true);
  return sum / group_view(torch::ones_like(x), s).sum(-1, /*keepdim=*/true);
}

std::pair<torch::Tensor, torch::Tensor> min_max(const torch::Tensor& x, const QuantSpec& s) {
  auto v = group_view(x.detach().to(torch::kFloat32), s);
  return {std::get<0>(v.min(-1, /*keepdim=*/true)), std::get<0>(v.max(-1, /*keepdim=*/true))};
}

QParams qparams_from_range(const torch::Tensor& lo_in, const torch::Tensor& hi_in, const QuantSpec& s) {
  auto lo = lo_in.to(torch::kFloat32).clamp_max(0.0);
  auto hi = hi_in.to(torch::kFloat32).clamp_min(0.0);
  const double qlo = static_cast<double>(qmin(s)), qhi = static_cast<double>(qmax(s));
  QParams p;
  if (s.symmetric) {
    auto absmax = torch::maximum(lo.abs(), hi);
    p.scale = torch::where(absmax > 0, absmax / qhi, torch::ones_like(absmax));
    p.zero_point = torch::zeros_like(p.scale);
  } else {
    auto width = hi - lo;
    p.scale = torch::where(width > 0, width / (qhi - qlo), torch::ones_like(width));
    p.zero_point = (qlo - lo / p.scale).round().clamp(qlo, qhi);
  }
  return p;
}

QParams dynamic_qparams(const torch::Tensor& x, const QuantSpec& s) {
  auto [lo, hi] = min_max(x, s);
  return qparams_from_range(lo, hi, s);
}

torch::Tensor quantize(const torch::Tensor& x, const QParams& p, const QuantSpec& s) {
  auto v = group_view(x.to(torch::kFloat32), s);
  // torch::round rounds half to even, as std::nearbyint does in the kernels.
  auto q = (v / p.scale).round() + p.zero_point;
  return ungroup(q.clamp(static_cast<double>(qmin(s)), static_cast<double>(qmax(s))).to(torch::kInt32), x, s);
}

torch::Tensor dequantize(const torch::Tensor& q, const QParams& p, const QuantSpec& s) {
  auto v = group_view(q.to(torch::kFloat32), s);
  return ungroup((v - p.zero_point) * p.scale, q, s);
}

torch::Tensor fake_quantize(const torch::Tensor& x, const QParams& p, const QuantSpec& s) {
  torch::NoGradGuard no_grad;
  return dequantize(quantize(x, p, s), p, s).to(x.scalar_type());
}

torch::Tensor fake_quantize_ste(const torch::Tensor& x, const QParams& p, const QuantSpec& s) {
  return x + (fake_quantize(x, p, s) - x.detach());
}

}  // namespace sqz::quant
