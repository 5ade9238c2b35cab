// A caching allocator for libtorch's large CPU tensors.
//
// Why: glibc serves blocks over its mmap threshold (at most 32 MiB) with a
// fresh mmap, and gives them back on free, so every such tensor costs one
// page fault per 4 KiB page when first written. A 256x256 StyleGAN2 layer
// has 33.5 MB activations, and a render makes dozens of them: on 2 cores
// this took a third of the render time (issue 9). Blocks of 1 MiB and up
// are therefore kept when freed and handed out again for a request of about
// the same size; at most `cap` bytes are kept, the oldest given back first.
// Smaller blocks go straight to libtorch's own alloc_cpu/free_cpu.
//
// Installed once, from src/engine.rs, as libtorch's CPU allocator. Tensors
// made before keep their own deleters, so switching is safe at any time.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstddef>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

#include "shim.h"

namespace {

constexpr size_t kMinCached = size_t(1) << 20;
constexpr size_t kPage = 4096;

class CachingCpuAllocator final : public c10::Allocator {
public:
    explicit CachingCpuAllocator(size_t cap) : cap_(cap) {}

    c10::DataPtr allocate(size_t n) override {
        if (n < kMinCached) {
            void* p = c10::alloc_cpu(n);
            return {p, p, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
        }
        void* p = take(n);
        return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
    }

    c10::DeleterFnPtr raw_deleter() const override { return &release; }

    void copy_data(void* dest, const void* src, size_t count) const override {
        default_copy_data(dest, src, count);
    }

    // Called through `release`, for every block this allocator handed out
    // (and, through raw_deleter, possibly for small ones too).
    void give_back(void* p) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto live = live_.find(p);
        if (live == live_.end()) {
            c10::free_cpu(p);
            return;
        }
        size_t size = live->second;
        live_.erase(live);
        if (size > cap_) {
            c10::free_cpu(p);
            return;
        }
        free_.push_back({p, size});
        cached_ += size;
        evict_over_cap();
    }

    void set_cap(size_t cap) {
        std::lock_guard<std::mutex> lock(mutex_);
        cap_ = cap;
        evict_over_cap();
    }

    static void release(void* p);

private:
    struct Block {
        void* ptr;
        size_t size;
    };

    // Gives the oldest kept blocks back until at most cap_ bytes are kept;
    // mutex_ is held.
    void evict_over_cap() {
        while (cached_ > cap_) {
            cached_ -= free_.front().size;
            c10::free_cpu(free_.front().ptr);
            free_.pop_front();
        }
    }

    // The smallest kept block of at least n bytes and at most n + n/8 (so a
    // small request never pins a much larger block), or a new one.
    void* take(size_t n) {
        size_t size = (n + kPage - 1) / kPage * kPage;
        std::lock_guard<std::mutex> lock(mutex_);
        auto best = free_.end();
        for (auto it = free_.begin(); it != free_.end(); ++it) {
            if (it->size >= size && it->size <= size + size / 8 && (best == free_.end() || it->size < best->size))
                best = it;
        }
        void* p;
        if (best != free_.end()) {
            p = best->ptr;
            size = best->size;
            cached_ -= size;
            free_.erase(best);
        } else {
            p = c10::alloc_cpu(size);
        }
        live_[p] = size;
        return p;
    }

    std::mutex mutex_;
    size_t cap_;
    size_t cached_ = 0;
    std::list<Block> free_;                    // oldest first
    std::unordered_map<void*, size_t> live_;   // handed out, with their sizes
};

// Never destroyed: tensors may be freed during static destruction.
CachingCpuAllocator* g_allocator = nullptr;
std::mutex g_install;

void CachingCpuAllocator::release(void* p) { g_allocator->give_back(p); }

}  // namespace

// Makes the caching allocator libtorch's CPU allocator (once) and sets how
// many bytes of freed blocks it may keep; 0 keeps none. Returns false, with
// the reason in `error`, if that threw.
extern "C" bool editone_cpu_cache(size_t cap_bytes, char* error, size_t error_len) {
    return editone::catching(error, error_len, false, [&] {
        std::lock_guard<std::mutex> lock(g_install);
        if (!g_allocator) {
            g_allocator = new CachingCpuAllocator(cap_bytes);
            c10::SetCPUAllocator(g_allocator, /*priority=*/100);
        } else {
            g_allocator->set_cap(cap_bytes);
        }
        return true;
    });
}
