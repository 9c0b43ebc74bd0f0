// Stage "student": the model training starts from when the recipe asks for a smaller one.
#include "compress/pruner.h"
#include "core/log.h"
#include "io/safetensors.h"
#include "models/layer_surgery.h"
#include "pipeline/stages.h"

namespace sqz::pipeline {

namespace {

// A narrower student: the `width` hidden dims with the largest L2 norm over their group (columns
// of the embeddings and of every Linear reading the stream, rows of every Linear writing it) are
// kept, the rest cut out by SpeedUp; the student's norms then run over the kept dims only.
void narrow_student(const compress::CompressRecipe& r, const fs::path& from, const fs::path& dir) {
  torch::NoGradGuard no_grad;
  auto loaded = models::load_model(from);
  auto& model = *loaded.model;
  auto s = model.structure();
  if (s.attention.empty() || s.hidden.norms.empty() || !s.hidden.norms.front()->weight.defined())
    fail_invalid(r.source, ": student.hidden needs the hidden-dimension groups of '", model.info().model_type, "', which sqz does not describe");
  const int64_t width = s.hidden.norms.front()->weight.size(0);
  if (r.student.hidden >= width)
    fail_invalid(r.source, ": student.hidden = ", r.student.hidden, " must be below the teacher's hidden size ", width);
  auto importance = compress::hidden_group_importance(s.hidden, width, [](const torch::Tensor& w) { return w.pow(2); });
  auto top = std::get<0>(std::get<1>(importance.topk(r.student.hidden)).sort()).contiguous();
  auto keep = speedup::groups_from_zeros(model);
  keep.hidden.assign(top.data_ptr<int64_t>(), top.data_ptr<int64_t>() + top.numel());
  fs::create_directories(dir);
  speedup::shrink_and_save(model, loaded.config.value(), keep, dir);
  if (from != dir) io::copy_tokenizer_files(r.train.model, dir);
  log_info("student: hidden ", width, " -> ", r.student.hidden, " (largest L2 over each dim's group)");
}

}  // namespace

fs::path make_student(const compress::CompressRecipe& r, const fs::path& dir) {
  if (r.student.layers.empty()) {
    narrow_student(r, r.train.model, dir);
    return dir;
  }
  auto loaded = models::load_model(r.train.model);
  auto subset = models::keep_layers(loaded, r.student.layers, r.source);
  fs::create_directories(dir);
  io::write_safetensors(dir / "model.safetensors", subset.tensors);
  io::write_json_file_atomic(dir / "config.json", subset.config);
  io::copy_tokenizer_files(r.train.model, dir);
  log_info("student: layers ", io::json(r.student.layers).dump(), " of ", loaded.model->info().num_layers, " -> ", dir.string());
  if (r.student.hidden > 0) narrow_student(r, dir, dir);
  return dir;
}

}  // namespace sqz::pipeline
