// libtorch's profiler (Kineto), which tch does not expose, for finding
// where a render's time goes: every operator on the CPU and, with CUDA,
// every kernel on the GPU, summed by name (src/profile.rs,
// examples/profile.rs).
#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "shim.h"

namespace {

namespace prof = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

// One line per (device, name): device, calls, nanoseconds, name; tabs
// between, the names' own tabs and newlines made spaces.
std::string summarise(const prof::ProfilerResult& result) {
    std::map<std::tuple<std::string, std::string>, std::pair<uint64_t, uint64_t>> totals;
    for (const auto& event : result.events()) {
        std::string name = event.name();
        for (char& ch : name) {
            if (ch == '\t' || ch == '\n') ch = ' ';
        }
        const std::string device = event.deviceType() == c10::DeviceType::CUDA ? "cuda" : "cpu";
        auto& total = totals[{device, name}];
        total.first += 1;
        total.second += event.durationNs();
    }
    std::ostringstream out;
    for (const auto& [key, total] : totals) {
        out << std::get<0>(key) << '\t' << total.first << '\t' << total.second << '\t' << std::get<1>(key) << '\n';
    }
    return out.str();
}

}  // namespace

// Starts recording CPU operators, and CUDA kernels when `cuda`. False, with
// the reason in `error`, if the profiler cannot start.
extern "C" bool editone_profile_begin(bool cuda, char* error, size_t error_len) {
    return editone::catching(error, error_len, false, [&] {
        std::set<ActivityType> activities{ActivityType::CPU};
        if (cuda) activities.insert(ActivityType::CUDA);
        const ProfilerConfig config(ProfilerState::KINETO);
        prof::prepareProfiler(config, activities);
        prof::enableProfiler(config, activities);
        return true;
    });
}

// Stops recording and returns the summary (see `summarise`) as a string to
// free with editone_profile_free, or null with the reason in `error`.
extern "C" char* editone_profile_end(char* error, size_t error_len) {
    return editone::catching<char*>(error, error_len, nullptr, [&]() -> char* {
        const auto result = prof::disableProfiler();
        const std::string text = summarise(*result);
        char* copy = static_cast<char*>(std::malloc(text.size() + 1));
        if (copy == nullptr) {
            std::snprintf(error, error_len, "out of memory for the profile summary");
            return nullptr;
        }
        std::memcpy(copy, text.c_str(), text.size() + 1);
        return copy;
    });
}

extern "C" void editone_profile_free(char* summary) {
    std::free(summary);
}
