#include "models/build_budget.h"

#include <c10/core/CPUAllocator.h>

#include <new>
#include <stdexcept>

#include "core/error.h"

namespace sqz::models {
namespace {

struct Budget {
  bool active = false;
  uint64_t used = 0, limit = 0;
};
thread_local Budget tl_budget;

struct BudgetExceeded {};

// Wraps the CPU allocator libtorch had: counts this thread's allocations while a budget is set.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}
  c10::DataPtr allocate(size_t n) const override {
    Budget& b = tl_budget;
    if (b.active) {
      b.used += n;
      if (b.used > b.limit) throw BudgetExceeded{};
    }
    return base_->allocate(n);
  }
  c10::DeleterFnPtr raw_deleter() const override { return base_->raw_deleter(); }

 private:
  c10::Allocator* base_;
};

void install_counting_allocator() {
  static CountingAllocator* counting = [] {
    auto* a = new CountingAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(a, /*priority=*/255);
    return a;
  }();
  (void)counting;
}

}  // namespace

std::shared_ptr<TransformerModel> build_within_budget(const std::function<std::shared_ptr<TransformerModel>()>& build,
                                                      uint64_t budget_bytes,
                                                      const std::function<std::string(const std::string& why)>& refusal) {
  install_counting_allocator();
  struct Scope {
    explicit Scope(uint64_t limit) { tl_budget = {true, 0, limit}; }
    ~Scope() { tl_budget = {}; }
  } scope(budget_bytes);
  try {
    return build();
  } catch (const BudgetExceeded&) {
    fail_invalid(refusal(to_text("needs more than ", tl_budget.used >> 20, " MiB of tensors, past the budget of ",
                                 budget_bytes >> 20, " MiB")));
  } catch (const std::bad_alloc&) {
    fail_invalid(refusal(to_text("could not be allocated after ", tl_budget.used >> 20, " MiB")));
  } catch (const std::length_error&) {  // a std::vector of that many layers
    fail_invalid(refusal("has more layers than a std::vector can hold"));
  } catch (const c10::Error& e) {
    // Building only makes tensors of the config's sizes: a failure here is a size libtorch refused.
    fail_invalid(refusal(to_text("could not be built: ", e.what_without_backtrace())));
  }
}

}  // namespace sqz::models
