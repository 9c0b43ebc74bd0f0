#include "compress/quant/calibrate.h"

#include "core/log.h"
#include "data/evaluate.h"

namespace sqz::quant {

std::vector<QuantizedLayer> post_training_quantize(const compress::CompressRecipe& r, models::TransformerModel& model,
                                                   const io::Tokenizer& tok, const io::JsonFields& config, dist::Group* group) {
  std::vector<std::unique_ptr<Quantizer>> ptq;
  for (const auto& q : r.quantize)
    if (!q.qat) {
      ptq.push_back(std::make_unique<Quantizer>(q));
      ptq.back()->attach(model);
      if (group) ptq.back()->join(group);
    }
  const auto& task = data::find_task(r.train.task);
  data::EvalOptions o{r.train.batch_size, r.calibration_batches, r.train.seed, r.train.mlm_probability, nullptr};
  o.group = group;
  auto stand_in = [&](bool on) {
    for (auto& q : ptq) q->set_stand_in(on);
  };
  auto calibration_pass = [&](const std::string& what) {
    log_info(what, " on ", r.calibration_batches, " batches of ", task.train_file,
             group && group->distributed() ? to_text(", each split over ", group->size(), " ranks") : std::string());
    data::forward_split(model, tok, config, r.train.task, fs::path(r.train.data) / task.train_file, r.train.max_length, o, stand_in);
  };
  // SmoothQuant first: its per-channel ranges come from a pass of their own, and every later
  // range is measured on the smoothed model.
  bool smoothing = false;
  for (auto& q : ptq)
    if (q->spec().smooth_alpha) q->begin_calibration(), smoothing = true;
  if (smoothing) {
    calibration_pass("smoothquant ranges");
    for (auto& q : ptq)
      if (q->spec().smooth_alpha) q->smooth(model);
  }
  for (auto& q : ptq) q->begin_calibration();
  calibration_pass("calibrating");
  std::vector<QuantizedLayer> layers;
  for (auto& q : ptq) {
    q->end_calibration();
    auto l = q->snapshot();
    layers.insert(layers.end(), l.begin(), l.end());
  }
  return layers;
}

}  // namespace sqz::quant
