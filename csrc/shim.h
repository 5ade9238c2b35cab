// The exception boundary of the C entry points in csrc/: no C++ exception
// may cross into Rust, so each entry point runs its body through
// `catching`, which turns an exception into the entry point's failure value
// and the exception's message into the caller's `error` buffer
// (`error_len` bytes, NUL-terminated; read by error::shim_message).
#pragma once

#include <cstddef>
#include <cstdio>
#include <exception>

namespace editone {

template <typename T, typename Body>
T catching(char* error, size_t error_len, T failed, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        std::snprintf(error, error_len, "%s", e.what());
    } catch (...) {
        std::snprintf(error, error_len, "unknown C++ exception");
    }
    return failed;
}

}  // namespace editone
