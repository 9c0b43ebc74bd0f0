#include <c10/util/Exception.h>

#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/launch.h"
#include "nn/threads.h"
#include "runtime/runtime_dir.h"

namespace sqz::cli {

void add_threads_option(CLI::App* cmd, int* threads) {
  cmd->add_option("--threads", *threads, "CPU threads for libtorch (0 = default)")->check(non_negative());
}

void add_precision_option(CLI::App* cmd, std::string* precision, bool* int8_attention) {
  if (int8_attention)
    cmd->add_flag("--int8-attention", *int8_attention,
                  "runtime: attention's QK^T and PV on the int8 GEMM too (per-row u8 Q and softmax, s8 K and V)");
  cmd->add_option("--precision", *precision,
                  "runtime Linears: fp32, bf16, int8, int8-2:4 or int8-block (4x4 blocks that are all zero "
                  "skipped) (default: what an int8 export or a bfloat16 checkpoint declares, else fp32)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8", "int8-2:4", "int8-block"}));
}

void apply_threads(int threads) {
  if (threads > 0) set_torch_threads(threads);
}

void add_engine_option(CLI::App* cmd, std::string* engine) {
  cmd->add_option("--engine", *engine,
                  "libtorch or runtime (sqz's inference engine); default: runtime for a runtime dir (sqz pack), else libtorch")
      ->check(CLI::IsMember({"libtorch", "runtime"}));
}

std::string resolve_engine(const std::string& requested, const std::string& model_dir) {
  const bool packed = runtime::is_runtime_dir(model_dir);
  if (packed && requested == "libtorch")
    fail_invalid(model_dir, ": a runtime dir (sqz pack) runs on --engine runtime only; use the model dir it was packed from");
  return !requested.empty() ? requested : packed ? "runtime" : "libtorch";
}

namespace {

std::vector<std::string> g_command_line;

CLI::Validator number_check(std::function<bool(double)> ok, const std::string& expected) {
  return CLI::Validator(
      [ok, expected](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v) || !ok(v)) return "expected " + expected + ", got " + text;
        return "";
      },
      expected);
}

}  // namespace

void set_command_line(int argc, char** argv) { g_command_line.assign(argv + 1, argv + argc); }

void add_dist_options(CLI::App* cmd, DistArgs* a) {
  cmd->add_option("--nproc", a->nproc, "run as N local data-parallel ranks (each on cores / N threads unless the recipe sets threads)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--rank", a->spec.rank, "this process's rank in a multi-host group (0 = the one at --master)")->check(non_negative());
  cmd->add_option("--world-size", a->spec.world_size, "ranks in the group, one per host (with --rank and --master)")->check(CLI::Range(1, 4096));
  cmd->add_option("--master", a->spec.master, "ADDR:PORT where rank 0 listens for the group (only that address is bound)");
  cmd->add_option("--dist-timeout", a->spec.timeout_s, "seconds a rank waits for a silent one before stopping with an error")
      ->check(CLI::Range(1, 86400));
}

std::unique_ptr<dist::Group> join_group(const DistArgs& a) {
  if (a.nproc > 1) {
    if (a.spec.world_size > 1) fail_invalid("--nproc starts its own local ranks: pass it without --rank/--world-size/--master");
    std::cout.flush();
    std::exit(dist::launch_local_ranks(dist::without_nproc(g_command_line), a.nproc, a.spec.timeout_s));
  }
  a.spec.validate();
  set_rank_diagnostics(a.spec.rank);
  return std::make_unique<dist::Group>(a.spec);
}

const CLI::Validator& positive() {
  static const CLI::Validator v = number_check([](double x) { return x > 0; }, "a number > 0");
  return v;
}
const CLI::Validator& non_negative() {
  static const CLI::Validator v = number_check([](double x) { return x >= 0; }, "a number >= 0");
  return v;
}
const CLI::Validator& unit_interval() {
  static const CLI::Validator v = number_check([](double x) { return x > 0 && x <= 1; }, "a number in (0, 1]");
  return v;
}

void refuse_runtime_options_on_libtorch(const std::string& engine, const std::string& precision, bool int8_attention) {
  if (engine != "libtorch") return;
  if (!precision.empty()) throw CLI::ValidationError("--precision", "applies to --engine runtime only");
  if (int8_attention) throw CLI::ValidationError("--int8-attention", "applies to --engine runtime only");
}

}  // namespace sqz::cli

int main(int argc, char** argv) {
  // Training commands run libtorch (and OpenBLAS) on every core: see nn/threads.h.
  if (argc > 1 && (std::string(argv[1]) == "train" || std::string(argv[1]) == "compress")) sqz::reexec_with_passive_openmp(argv);
  sqz::cli::set_command_line(argc, argv);
  CLI::App app{"sqz: prune, quantize, distill and speed up Transformer models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sqz 0.1.0");
  sqz::cli::add_info_command(app);
  sqz::cli::add_forward_command(app);
  sqz::cli::add_tokenize_command(app);
  sqz::cli::add_generate_command(app);
  sqz::cli::add_init_command(app);
  sqz::cli::add_train_command(app);
  sqz::cli::add_eval_command(app);
  sqz::cli::add_train_tokenizer_command(app);
  sqz::cli::add_compress_command(app);
  sqz::cli::add_latency_command(app);
  sqz::cli::add_bench_command(app);
  sqz::cli::add_pack_command(app);
  sqz::cli::add_export_command(app);
  sqz::cli::add_import_gguf_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, as other refused input does.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const sqz::Error& e) {
    std::cerr << sqz::diagnostics_prefix() << "error (" << sqz::error_kind_name(e.kind()) << "): " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << sqz::diagnostics_prefix() << "error (libtorch): " << e.what_without_backtrace() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << sqz::diagnostics_prefix() << "error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
