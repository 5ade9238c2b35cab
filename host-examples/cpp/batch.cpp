// batch.cpp: the batch flow of "Edit One for All" through the C++ wrapper.
//
// Loads the default model, edits the latent of seed 1 along its strongest
// SeFa direction, optimises the edit with the fast preset, applies it to
// seeds 2..9 and renders the results as PNG files into argv[1] (default
// "cpp-out"); files there from an earlier run are replaced only when
// argv[2] is --overwrite (otherwise the render throws EO_ERR_EXISTS). Then
// shows the error path: loading a missing model throws editone::Error.
// Exits 0 only when all of that went as expected.
//
//     c++ -std=c++17 batch.cpp $(pkg-config --cflags --libs editone) -o batch
//     ./batch out-dir [--overwrite]

#include "editone.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <sys/stat.h>

int main(int argc, char** argv) {
    const std::string out_dir = argc > 1 ? argv[1] : "cpp-out";
    const editone::Replace replace =
        argc > 2 && std::string(argv[2]) == "--overwrite" ? editone::Replace::yes : editone::Replace::no;
    if (mkdir(out_dir.c_str(), 0777) != 0 && errno != EEXIST) {
        std::fprintf(stderr, "cannot create %s: %s\n", out_dir.c_str(), std::strerror(errno));
        return 1;
    }

    try {
        editone::Model model = editone::Model::load_default();
        editone::ModelInfo info = model.info();
        std::printf("model: %s %ux%u, latent %u x %u floats\n", info.architecture.c_str(),
                    info.resolution, info.resolution, info.num_ws, info.w_dim);

        // The example and its edit: 4 units along SeFa direction 0.
        editone::Latent example = model.latent_from_seed(1);
        std::vector<std::vector<float>> dirs = model.directions(1);
        editone::Edit edit = editone::Edit::from_direction(example, dirs[0], 4.0f);

        // d*, with the interactive preset, showing progress.
        eo_optimize_options opts = editone::fast_options();
        edit.optimize(&opts, [](const char* stage, uint64_t done, uint64_t total) {
            if (done % 10 == 0 || done == total) {
                std::printf("  %s %llu/%llu\n", stage, static_cast<unsigned long long>(done),
                            static_cast<unsigned long long>(total));
                std::fflush(stdout);
            }
            return true;  // false would cancel
        });
        eo_optimize_report rep = edit.report();
        std::printf("optimised: %u steps%s, loss %.4g -> %.4g\n", rep.iterations,
                    rep.stopped_early ? " (stopped early)" : "", rep.initial_loss,
                    rep.best_loss);

        // Apply it to seeds 2..9 in one call.
        std::vector<editone::Latent> targets;
        for (uint64_t seed = 2; seed <= 9; ++seed) targets.push_back(model.latent_from_seed(seed));
        std::vector<float> alphas;
        std::vector<editone::Latent> edited = edit.apply_batch(targets, &alphas);

        for (size_t i = 0; i < edited.size(); ++i) {
            const std::string path =
                out_dir + "/edited-seed-" + std::to_string(i + 2) + ".png";
            edited[i].render_to_file(path, 0, replace);
            std::printf("seed %zu: alpha %+.3f -> %s\n", i + 2, alphas[i], path.c_str());
        }
    } catch (const editone::Error& e) {
        std::fprintf(stderr, "editone error %s: %s\n", e.status_name(), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }

    // The error path: a missing model is an EO_ERR_IO naming the path.
    const std::string missing = "/nonexistent/model";
    try {
        editone::Model::load(missing);
    } catch (const editone::Error& e) {
        std::printf("expected error: %s: %s\n", eo_status_name(e.status()), e.what());
        bool ok = e.status() == EO_ERR_IO && std::string(e.what()).find(missing) != std::string::npos;
        if (!ok) std::fprintf(stderr, "unexpected status or message\n");
        return ok ? 0 : 1;
    }
    std::fprintf(stderr, "loading %s did not throw\n", missing.c_str());
    return 1;
}
