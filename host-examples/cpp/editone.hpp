// editone.hpp: a header-only C++17 RAII wrapper over the editone C API
// (editone.h). It depends on nothing but that header and the C++17
// standard library.
//
// Every call that fails throws editone::Error with the library's status and
// message. Handles (Model, Latent, Edit) are move-only and release their C
// handle in their destructor; a moved-from handle is empty (id 0) and
// releases nothing.
//
//     editone::Model model = editone::Model::load_default();
//     editone::Latent example = model.latent_from_seed(1);
//     auto dirs = model.directions(1);
//     editone::Edit edit = editone::Edit::from_direction(example, dirs[0], 4.0f);
//     edit.optimize();
//     editone::Latent out = edit.apply(model.latent_from_seed(2));
//     out.render_to_file("out.png");

#ifndef EDITONE_HPP
#define EDITONE_HPP

#include <editone.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

/// C++ wrapper of the editone C API.
namespace editone {

/// An error reported by the library: the failed call's status and the
/// message eo_last_error() gave for it (what()).
class Error : public std::runtime_error {
public:
    /// An error with `status` and `message` (the library's message).
    Error(eo_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}

    /// The status the failed call returned (never EO_OK).
    eo_status status() const noexcept { return status_; }

    /// A short static name of status(), e.g. "EO_ERR_IO".
    const char* status_name() const noexcept {
        return eo_status_name(static_cast<int32_t>(status_));
    }

private:
    eo_status status_;
};

/// Throws Error(status, eo_last_error()) unless `status` is EO_OK. Call it
/// right after the C call, on the same thread, before any other editone call.
inline void check(eo_status status) {
    if (status == EO_OK) return;
    const char* msg = eo_last_error();
    std::string message = (msg != nullptr && *msg != '\0')
                              ? std::string(msg)
                              : std::string(eo_status_name(static_cast<int32_t>(status)));
    throw Error(status, message);
}

/// Whether a call that writes a file may replace one that exists. Every
/// write goes to a hidden temporary file beside the target and is renamed
/// into place, so a reader sees the old file or the new one, whole. With
/// Replace::no (the default) an existing file throws EO_ERR_EXISTS and is
/// left as it was; pass Replace::yes only for a file your program made
/// itself or the user asked to replace.
enum class Replace : uint32_t {
    no = 0,
    yes = EO_WRITE_REPLACE,
};

/// The paper's optimisation settings (eo_optimize_options_init).
inline eo_optimize_options default_options() {
    eo_optimize_options o{};
    check(eo_optimize_options_init(&o));
    return o;
}

/// The interactive preset: the paper's objective, at most 100 steps with a
/// higher learning rate (eo_optimize_options_init_fast).
inline eo_optimize_options fast_options() {
    eo_optimize_options o{};
    check(eo_optimize_options_init_fast(&o));
    return o;
}

/// Shape facts about a model (eo_model_desc as C++ values).
struct ModelInfo {
    /// Output width and height in pixels.
    uint32_t resolution = 0;
    /// Output channels (3 for RGB).
    uint32_t channels = 0;
    /// Size of the input noise z.
    uint32_t z_dim = 0;
    /// Size of a class label vector (0 when unconditional).
    uint32_t c_dim = 0;
    /// Size of one W row.
    uint32_t w_dim = 0;
    /// Rows of a W+ latent; a latent has num_ws * w_dim floats.
    uint32_t num_ws = 0;
    /// "stylegan2" or "dcgan".
    std::string architecture;
};

/// Progress callback of long calls: stage name, steps done, steps in all.
/// Return false to cancel the call (it then throws Error with
/// EO_ERR_CANCELLED and leaves every handle as it was). An exception thrown
/// here also cancels the call and is rethrown to the caller once the
/// library has returned; it never unwinds through the C library.
using Progress = std::function<bool(const char* stage, uint64_t done, uint64_t total)>;

namespace detail {

/// A move-only owner of one C handle, released with Release when it goes;
/// a moved-from owner is empty (id 0) and releases nothing.
template <typename Raw, eo_status (*Release)(Raw)>
class Owned {
public:
    /// An empty owner (id 0).
    Owned() noexcept = default;
    /// Takes ownership of a raw handle.
    explicit Owned(Raw raw) noexcept : h_(raw) {}
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    /// Takes other's handle; other becomes empty.
    Owned(Owned&& other) noexcept : h_(other.h_) { other.h_.id = 0; }
    /// Releases this handle and takes other's; other becomes empty.
    Owned& operator=(Owned&& other) noexcept {
        if (this != &other) {
            reset();
            h_ = other.h_;
            other.h_.id = 0;
        }
        return *this;
    }
    /// Releases the handle unless empty; never throws.
    ~Owned() { reset(); }
    /// Releases the handle now (errors ignored); the owner becomes empty.
    void reset() noexcept {
        if (h_.id != 0) (void)Release(h_);
        h_.id = 0;
    }
    /// The raw C handle (id 0 when empty); still owned by this object.
    Raw handle() const noexcept { return h_; }
    /// Whether this object holds a handle (id != 0).
    explicit operator bool() const noexcept { return h_.id != 0; }

protected:
    Raw h_{0};
};

/// State shared between a call with progress and its C trampoline.
struct ProgressBridge {
    const Progress* fn = nullptr;
    std::exception_ptr error;
};

/// The eo_progress_fn given to the library: calls the std::function,
/// turns false into "cancel", and catches every exception (storing it
/// in the bridge and cancelling) so none crosses the C frames.
inline int32_t progress_trampoline(void* user, const char* stage, uint64_t done,
                                   uint64_t total) noexcept {
    auto* bridge = static_cast<ProgressBridge*>(user);
    if (bridge == nullptr || bridge->fn == nullptr || !*bridge->fn) return 0;
    if (bridge->error) return 1;  // already failed: keep asking to stop
    try {
        return (*bridge->fn)(stage != nullptr ? stage : "", done, total) ? 0 : 1;
    } catch (...) {
        bridge->error = std::current_exception();
        return 1;
    }
}

/// Checks a float count fits a size_t product without overflow.
inline size_t checked_mul(size_t a, size_t b) {
    if (a != 0 && b > std::numeric_limits<size_t>::max() / a)
        throw Error(EO_ERR_INVALID_ARGUMENT, "size overflow");
    return a * b;
}

}  // namespace detail

class Model;
class Edit;

/// A latent: an image as a point in a model's latent space. Move-only; the
/// destructor releases the handle.
class Latent : public detail::Owned<eo_latent, eo_latent_release> {
public:
    /// An empty latent (id 0), or one owning a raw handle.
    using Owned::Owned;

    /// The W+ latent, num_ws * w_dim floats, row-major (eo_latent_read).
    std::vector<float> read() const {
        size_t needed = 0;
        check(eo_latent_read(h_, nullptr, 0, &needed));
        std::vector<float> buf(needed);
        check(eo_latent_read(h_, buf.data(), buf.size(), &needed));
        buf.resize(needed);
        return buf;
    }

    /// Renders into a tightly packed RGB8 buffer of width x height pixels
    /// (3 bytes per pixel, rows top to bottom); a size other than the
    /// picture's is resampled (eo_render).
    std::vector<uint8_t> render_rgb(uint32_t width, uint32_t height) const {
        size_t row = detail::checked_mul(width, 3);
        if (row > std::numeric_limits<uint32_t>::max())
            throw Error(EO_ERR_INVALID_ARGUMENT, "image too wide");
        std::vector<uint8_t> pixels(detail::checked_mul(row, height));
        eo_image_view view{};
        view.data = pixels.data();
        view.width = width;
        view.height = height;
        view.stride = static_cast<uint32_t>(row);
        view.format = EO_PIXEL_RGB8;
        check(eo_render(h_, &view));
        return pixels;
    }

    /// Renders to a PNG or JPEG file (by extension); size 0 keeps the
    /// picture's size, otherwise its longer side becomes `size`. An
    /// existing file is replaced only with Replace::yes (eo_render_to_file_ex).
    void render_to_file(const std::string& path, uint32_t size = 0, Replace replace = Replace::no) const {
        check(eo_render_to_file_ex(h_, path.c_str(), size, static_cast<eo_write_flags>(replace)));
    }

    /// The raw generator output, channels x resolution x resolution floats,
    /// nominally in [-1, 1] (eo_render_f32; the shape from eo_latent_info).
    std::vector<float> render_f32() const {
        eo_model_desc d{};
        d.struct_size = sizeof(eo_model_desc);
        check(eo_latent_info(h_, &d));
        std::vector<float> buf(detail::checked_mul(detail::checked_mul(d.channels, d.resolution), d.resolution));
        check(eo_render_f32(h_, buf.data(), buf.size()));
        return buf;
    }
};

/// A loaded model. Move-only; the destructor releases the handle. Latents
/// and edits made with a model stay usable after it is released.
class Model : public detail::Owned<eo_model, eo_model_release> {
public:
    /// An empty model (id 0), or one owning a raw handle.
    using Owned::Owned;

    /// Loads a model file or folder: native, NVlabs .pkl or rosinality .pt
    /// (eo_model_load).
    static Model load(const std::string& path) {
        eo_model raw{0};
        check(eo_model_load(path.c_str(), &raw));
        return Model(raw);
    }

    /// Loads the built-in default model (eo_model_load_default).
    static Model load_default() {
        eo_model raw{0};
        check(eo_model_load_default(&raw));
        return Model(raw);
    }

    /// Converts any loadable model file to native .safetensors; an
    /// existing `out` is replaced only with Replace::yes (eo_model_convert_ex).
    static void convert(const std::string& in, const std::string& out, Replace replace = Replace::no) {
        check(eo_model_convert_ex(in.c_str(), out.c_str(), static_cast<eo_write_flags>(replace)));
    }

    /// The model's shape (eo_model_info).
    ModelInfo info() const {
        eo_model_desc d{};
        d.struct_size = sizeof(eo_model_desc);
        check(eo_model_info(h_, &d));
        ModelInfo i;
        i.resolution = d.resolution;
        i.channels = d.channels;
        i.z_dim = d.z_dim;
        i.c_dim = d.c_dim;
        i.w_dim = d.w_dim;
        i.num_ws = d.num_ws;
        size_t len = 0;
        while (len < sizeof(d.architecture) && d.architecture[len] != '\0') ++len;
        i.architecture.assign(d.architecture, len);
        return i;
    }

    /// The latent of `seed` as generate.py draws it, mapped with truncation
    /// `psi` (1 = none) (eo_latent_from_seed).
    Latent latent_from_seed(uint64_t seed, float psi = 1.0f) const {
        eo_latent raw{0};
        check(eo_latent_from_seed(h_, seed, psi, &raw));
        return Latent(raw);
    }

    /// A latent from raw floats: n is w_dim (one W row, repeated) or
    /// num_ws * w_dim (W+) (eo_latent_from_w).
    Latent latent_from_w(const float* w, size_t n) const {
        eo_latent raw{0};
        check(eo_latent_from_w(h_, w, n, &raw));
        return Latent(raw);
    }

    /// latent_from_w(w.data(), w.size()).
    Latent latent_from_w(const std::vector<float>& w) const {
        return latent_from_w(w.data(), w.size());
    }

    /// The top-k SeFa directions, strongest first: k unit vectors of w_dim
    /// floats each (eo_model_directions).
    std::vector<std::vector<float>> directions(uint32_t k) const {
        const size_t w_dim = info().w_dim;
        std::vector<float> flat(detail::checked_mul(k, w_dim));
        check(eo_model_directions(h_, k, flat.data(), flat.size()));
        std::vector<std::vector<float>> out;
        out.reserve(k);
        for (size_t i = 0; i < k; ++i)
            out.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(i * w_dim),
                             flat.begin() + static_cast<std::ptrdiff_t>((i + 1) * w_dim));
        return out;
    }
};

/// An example edit: optimised once, applied to any number of latents of the
/// same model. Move-only; the destructor releases the handle.
class Edit : public detail::Owned<eo_edit, eo_edit_release> {
public:
    /// An empty edit (id 0), or one owning a raw handle.
    using Owned::Owned;

    /// An edit from the example and its edited state, two latents of one
    /// model (eo_edit_from_latents).
    static Edit from_latents(const Latent& example, const Latent& edited) {
        eo_edit raw{0};
        check(eo_edit_from_latents(example.handle(), edited.handle(), &raw));
        return Edit(raw);
    }

    /// An edit that moves the example by `strength` along `dir`, n = w_dim
    /// or num_ws * w_dim floats (eo_edit_from_direction).
    static Edit from_direction(const Latent& example, const float* dir, size_t n,
                               float strength) {
        eo_edit raw{0};
        check(eo_edit_from_direction(example.handle(), dir, n, strength, &raw));
        return Edit(raw);
    }

    /// from_direction(example, dir.data(), dir.size(), strength).
    static Edit from_direction(const Latent& example, const std::vector<float>& dir,
                               float strength) {
        return from_direction(example, dir.data(), dir.size(), strength);
    }

    /// Loads a JSON preset for `model` (eo_edit_load); a preset of another
    /// model throws EO_ERR_INCOMPATIBLE, a malformed one EO_ERR_FORMAT.
    static Edit load(const Model& model, const std::string& path) {
        eo_edit raw{0};
        check(eo_edit_load(model.handle(), path.c_str(), &raw));
        return Edit(raw);
    }

    /// Computes the globally consistent direction d* (eo_edit_optimize).
    /// `opts` NULL uses the defaults (see fast_options()). `progress`, when
    /// set, is called at every step; returning false cancels (Error with
    /// EO_ERR_CANCELLED), and an exception it throws cancels and is rethrown
    /// as is. On error or cancellation the edit is unchanged.
    void optimize(const eo_optimize_options* opts = nullptr, Progress progress = {}) {
        if (!progress) {
            check(eo_edit_optimize(h_, opts, nullptr, nullptr));
            return;
        }
        detail::ProgressBridge bridge;
        bridge.fn = &progress;
        eo_status st = eo_edit_optimize(h_, opts, &detail::progress_trampoline, &bridge);
        if (bridge.error) std::rethrow_exception(bridge.error);
        check(st);
    }

    /// What the last optimisation did (eo_edit_report).
    eo_optimize_report report() const {
        eo_optimize_report r{};
        r.struct_size = sizeof(eo_optimize_report);
        check(eo_edit_report(h_, &r));
        return r;
    }

    /// The example's own strength a (eo_edit_strength).
    float strength() const {
        float a = 0.0f;
        check(eo_edit_strength(h_, &a));
        return a;
    }

    /// Sets the example's own strength a; every image's alpha moves by the
    /// same amount, no optimisation runs (eo_edit_set_strength).
    void set_strength(float a) { check(eo_edit_set_strength(h_, a)); }

    /// The strength alpha this edit gives `target` (eo_edit_alpha).
    float alpha(const Latent& target) const {
        float a = 0.0f;
        check(eo_edit_alpha(h_, target.handle(), &a));
        return a;
    }

    /// The edited latent of `target` as a new latent (eo_edit_apply).
    Latent apply(const Latent& target) const {
        eo_latent raw{0};
        check(eo_edit_apply(h_, target.handle(), &raw));
        return Latent(raw);
    }

    /// Applies the edit to every target (eo_edit_apply_batch): result i is
    /// the edited targets[i]; `alphas`, when given, receives the strengths.
    /// All or nothing: on error no latent is created.
    std::vector<Latent> apply_batch(const std::vector<Latent>& targets,
                                    std::vector<float>* alphas = nullptr) const {
        const size_t n = targets.size();
        std::vector<Latent> out;
        if (alphas != nullptr) alphas->assign(n, 0.0f);
        if (n == 0) return out;
        // Allocate everything before the call, so that once the library has
        // made the handles nothing can throw before they are owned.
        std::vector<eo_latent> raw_targets;
        raw_targets.reserve(n);
        for (const Latent& t : targets) raw_targets.push_back(t.handle());
        std::vector<eo_latent> raw_out(n, eo_latent{0});
        out.reserve(n);
        check(eo_edit_apply_batch(h_, raw_targets.data(), n, raw_out.data(),
                                  alphas != nullptr ? alphas->data() : nullptr));
        for (size_t i = 0; i < n; ++i) out.emplace_back(raw_out[i]);
        return out;
    }

    /// Saves the edit as a JSON preset; an existing file is replaced only
    /// with Replace::yes (eo_edit_save_ex).
    void save(const std::string& path, Replace replace = Replace::no) const {
        check(eo_edit_save_ex(h_, path.c_str(), static_cast<eo_write_flags>(replace)));
    }
};

}  // namespace editone

#endif  // EDITONE_HPP
