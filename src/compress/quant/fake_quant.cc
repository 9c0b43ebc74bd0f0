#include "compress/quant/fake_quant.h"

#include <cmath>

namespace sqz::quant {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

namespace {

// Sums a gradient computed at x's shape down to a parameter's broadcast shape.
torch::Tensor reduce_to(const torch::Tensor& g, const torch::Tensor& like) { return g.sum_to_size(like.sizes()).reshape(like.sizes()); }

struct LsqFunction : public torch::autograd::Function<LsqFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero,
                               double qlo, double qhi, double grad_factor) {
    auto q = (x / scale + zero).round();
    ctx->save_for_backward({x, scale, zero, q});
    ctx->saved_data["qlo"] = qlo;
    ctx->saved_data["qhi"] = qhi;
    ctx->saved_data["grad_factor"] = grad_factor;
    return (q.clamp(qlo, qhi) - zero) * scale;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &scale = saved[1], &zero = saved[2], &q = saved[3];
    const double qlo = ctx->saved_data["qlo"].toDouble(), qhi = ctx->saved_data["qhi"].toDouble();
    const double gf = ctx->saved_data["grad_factor"].toDouble();
    const auto& dy = grads[0];
    auto below = q < qlo, above = q > qhi, inside = ~(below | above);
    auto dx = dy * inside.to(dy.scalar_type());
    auto ds_inside = (q - zero) - x / scale;  // (x_hat - x) / scale
    auto ds = torch::where(below, qlo - zero, torch::where(above, qhi - zero, ds_inside));
    return {dx, reduce_to(ds * dy * gf, scale), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

struct PactFunction : public torch::autograd::Function<PactFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& alpha, double qhi) {
    ctx->save_for_backward({x, alpha});
    auto clipped = torch::maximum(torch::minimum(x, alpha), -alpha);
    auto step = alpha / qhi;
    return (clipped / step).round() * step;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &alpha = saved[1];
    const auto& dy = grads[0];
    auto above = (x > alpha).to(dy.scalar_type()), below = (x < -alpha).to(dy.scalar_type());
    auto dx = dy * (1 - above - below);
    return {dx, reduce_to(dy * (above - below), alpha), torch::Tensor()};
  }
};

struct QuantGptFunction : public torch::autograd::Function<QuantGptFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& w, const torch::Tensor& gamma, const torch::Tensor& magnitude,
                               double qhi) {
    auto alpha = gamma * magnitude;
    auto u = (w / alpha).clamp(-1.0, 1.0);
    auto q = (u * qhi).round();
    auto r = q / qhi;
    ctx->save_for_backward({w, alpha, magnitude, u, r, gamma});
    // scale * q, as dequantize computes it, so an export of these codes is bit-identical.
    return (alpha / qhi) * q;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &w = saved[0], &alpha = saved[1], &magnitude = saved[2], &u = saved[3], &r = saved[4], &gamma = saved[5];
    const auto& dy = grads[0];
    auto outside = w.abs() > alpha;
    auto dw = dy * (~outside).to(dy.scalar_type());
    auto dalpha = torch::where(outside, w.sign(), r - u);
    return {dw, reduce_to(dy * dalpha * magnitude, gamma), torch::Tensor(), torch::Tensor()};
  }
};

// Forward `value`, gradient identity with respect to x.
torch::Tensor straight_through(const torch::Tensor& x, const torch::Tensor& value) { return x + (value - x).detach(); }

}  // namespace

torch::Tensor lsq_fake_quantize(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point,
                                const QuantSpec& spec, double grad_factor) {
  auto v = group_view(x, spec);
  auto y = LsqFunction::apply(v, scale, zero_point, static_cast<double>(qmin(spec)), static_cast<double>(qmax(spec)), grad_factor);
  return ungroup(y, x, spec);
}

double lsq_grad_factor(const torch::Tensor& x, const QuantSpec& spec) {
  const double per_scale = static_cast<double>(group_view(x.detach(), spec).size(-1));
  return 1.0 / std::sqrt(per_scale * static_cast<double>(qmax(spec)));
}

torch::Tensor pact_fake_quantize(const torch::Tensor& x, const torch::Tensor& alpha, const QuantSpec& spec) {
  auto v = group_view(x, spec);
  return ungroup(PactFunction::apply(v, alpha, static_cast<double>(qmax(QuantSpec{spec.bits, true, spec.granularity, spec.group_size}))), x,
                 spec);
}

torch::Tensor mean_abs(const torch::Tensor& w, const QuantSpec& spec) {
  torch::NoGradGuard no_grad;
  return group_mean_abs(w.detach(), spec).clamp_min(1e-12);
}

torch::Tensor quantgpt_fake_quantize(const torch::Tensor& w, const torch::Tensor& gamma, const QuantSpec& spec) {
  auto v = group_view(w, spec);
  const double qhi = static_cast<double>(qmax(QuantSpec{spec.bits, true, spec.granularity, spec.group_size}));
  return ungroup(QuantGptFunction::apply(v, gamma, mean_abs(w, spec), qhi), w, spec);
}

torch::Tensor ternary_fake_quantize(const torch::Tensor& w, const QuantSpec& spec) {
  torch::Tensor value;
  {
    torch::NoGradGuard no_grad;
    auto v = group_view(w.detach(), spec);
    auto delta = 0.7 * group_mean_abs(w.detach(), spec);
    auto kept = (v.abs() > delta).to(v.scalar_type());
    auto alpha = (v.abs() * kept).sum(-1, true) / kept.sum(-1, true).clamp_min(1.0);
    value = ungroup(alpha * v.sign() * kept, w, spec);
  }
  return straight_through(w, value);
}

torch::Tensor binary_fake_quantize(const torch::Tensor& w, const QuantSpec& spec) {
  torch::Tensor value;
  {
    torch::NoGradGuard no_grad;
    auto v = group_view(w.detach(), spec);
    // sign(0) = 0 would make a third level; zeros (pruned weights) stay zero on purpose.
    value = ungroup(group_mean_abs(w.detach(), spec) * v.sign(), w, spec);
  }
  return straight_through(w, value);
}

}  // namespace sqz::quant
