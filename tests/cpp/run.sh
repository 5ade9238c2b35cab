#!/usr/bin/env bash
# Tests of the C++ wrapper host-examples/cpp/editone.hpp against an
# installed copy of the library:
#
#     bash tests/cpp/run.sh PREFIX      (e.g. build/cpp-dev after make install)
#
# Builds and runs the batch example (host-examples/cpp/batch.cpp), then a
# small program of wrapper checks (ownership, errors, progress callbacks).
# Prints "N passed, M failed" last and exits non-zero on any failure.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
PREFIX=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CXX=${CXX:-c++}
CXXFLAGS=(-std=c++17 -Wall -Wextra -Werror)
read -r -a PKG <<<"$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs editone)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; }

# --- The batch example -------------------------------------------------------

if "$CXX" "${CXXFLAGS[@]}" "$ROOT/host-examples/cpp/batch.cpp" "${PKG[@]}" -o "$TMP/batch" \
    >"$TMP/batch-build.log" 2>&1; then
    pass "batch.cpp compiles with ${CXXFLAGS[*]}"
else
    cat "$TMP/batch-build.log"
    fail "batch.cpp compiles with ${CXXFLAGS[*]}"
fi

if [ -x "$TMP/batch" ]; then
    rc=0
    "$TMP/batch" "$TMP/out" >"$TMP/batch.log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "batch exits 0"
    else
        cat "$TMP/batch.log"
        fail "batch exits 0 (got $rc)"
    fi
    pngs=0
    for seed in 2 3 4 5 6 7 8 9; do
        f="$TMP/out/edited-seed-$seed.png"
        # A PNG starts with \x89PNG.
        if [ -s "$f" ] && [ "$(head -c 4 "$f" | tail -c 3)" = "PNG" ]; then
            pngs=$((pngs + 1))
        fi
    done
    total=$(find "$TMP/out" -maxdepth 1 -name '*.png' 2>/dev/null | wc -l)
    if [ "$pngs" -eq 8 ] && [ "$total" -eq 8 ]; then
        pass "batch writes 8 PNG files"
    else
        ls -l "$TMP/out" 2>/dev/null || true
        fail "batch writes 8 PNG files ($pngs valid, $total in all)"
    fi
    if grep -q 'expected error: EO_ERR_IO: .*/nonexistent/model' "$TMP/batch.log"; then
        pass "batch reports the missing model as EO_ERR_IO with its path"
    else
        cat "$TMP/batch.log"
        fail "batch reports the missing model as EO_ERR_IO with its path"
    fi
    if [ "$(grep -c '^seed [2-9]: alpha ' "$TMP/batch.log")" -eq 8 ]; then
        pass "batch prints 8 alphas"
    else
        fail "batch prints 8 alphas"
    fi
    # A second run into the same folder must not replace the first one's
    # files unless told to.
    before=$(cksum "$TMP/out"/*.png)
    rc=0
    "$TMP/batch" "$TMP/out" >"$TMP/batch2.log" 2>&1 || rc=$?
    if [ "$rc" -eq 1 ] && grep -q "EO_ERR_EXISTS" "$TMP/batch2.log" && [ "$(cksum "$TMP/out"/*.png)" = "$before" ]; then
        pass "a batch re-run refuses to replace its earlier images (EO_ERR_EXISTS)"
    else
        cat "$TMP/batch2.log"
        fail "a batch re-run refuses to replace its earlier images (exit $rc)"
    fi
    rc=0
    "$TMP/batch" "$TMP/out" --overwrite >"$TMP/batch3.log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] && [ "$(find "$TMP/out" -name '*.png' | wc -l)" -eq 8 ]; then
        pass "batch --overwrite replaces them"
    else
        cat "$TMP/batch3.log"
        fail "batch --overwrite replaces them (exit $rc)"
    fi
else
    fail "batch runs (not built)"
fi

# --- Wrapper checks ----------------------------------------------------------

cat >"$TMP/wrapper.cpp" <<'EOF'
#include "editone.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

static int checks_failed = 0;

#define CHECK(name, cond)                                                  \
    do {                                                                   \
        if (cond) {                                                        \
            std::printf("PASS %s\n", name);                                \
        } else {                                                           \
            std::printf("FAIL %s (%s:%d: %s)\n", name, __FILE__, __LINE__, \
                        #cond);                                            \
            ++checks_failed;                                               \
        }                                                                  \
    } while (0)

struct Counts {
    size_t models = 0, latents = 0, edits = 0;
    bool operator==(const Counts& o) const {
        return models == o.models && latents == o.latents && edits == o.edits;
    }
};

static Counts live() {
    Counts c;
    editone::check(eo_live_handles(&c.models, &c.latents, &c.edits));
    return c;
}

// The bytes of a file ("" when it cannot be read).
static std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Thrown from a progress callback; deliberately not a std::exception.
struct Boom {
    int code;
};

static_assert(!std::is_copy_constructible<editone::Latent>::value, "Latent is move-only");
static_assert(!std::is_copy_assignable<editone::Latent>::value, "Latent is move-only");
static_assert(!std::is_copy_constructible<editone::Model>::value, "Model is move-only");
static_assert(!std::is_copy_constructible<editone::Edit>::value, "Edit is move-only");
static_assert(std::is_nothrow_move_constructible<editone::Latent>::value, "noexcept move");
static_assert(std::is_nothrow_move_assignable<editone::Edit>::value, "noexcept move");
static_assert(std::is_nothrow_destructible<editone::Model>::value, "noexcept destructor");
static_assert(std::is_base_of<std::runtime_error, editone::Error>::value, "Error is runtime_error");

static eo_optimize_options short_options(uint32_t iterations) {
    eo_optimize_options o = editone::fast_options();
    o.iterations = iterations;
    return o;
}

static void run(const std::string& tmp) {
    const Counts baseline = live();
    {
        editone::Model model = editone::Model::load_default();
        editone::ModelInfo info = model.info();
        CHECK("info: default model is a 64x64 dcgan with 1 x 100 floats",
              info.architecture == "dcgan" && info.resolution == 64 && info.channels == 3 &&
                  info.w_dim == 100 && info.num_ws == 1);
        const Counts with_model = live();

        // Moves leave the source empty and transfer the handle.
        {
            editone::Latent a = model.latent_from_seed(1);
            const uint64_t id = a.handle().id;
            editone::Latent b = std::move(a);
            CHECK("move constructor: source id 0", a.handle().id == 0 && !a);
            CHECK("move constructor: target has the id", b.handle().id == id && id != 0);
            editone::Latent c;
            c = std::move(b);
            CHECK("move assignment: source id 0", b.handle().id == 0);
            CHECK("move assignment: target has the id", c.handle().id == id);
            Counts now = live();
            CHECK("moves create no handle", now.latents == with_model.latents + 1);
        }
        CHECK("moved-from and moved-to latents: counts back to baseline", live() == with_model);

        // A moved-from object destroyed first releases nothing.
        {
            editone::Latent keep;
            {
                editone::Latent a = model.latent_from_seed(2);
                keep = std::move(a);
            }  // a (empty) destroyed here
            CHECK("destroyed moved-from latent released nothing",
                  live().latents == with_model.latents + 1);
            bool usable = false;
            try {
                usable = keep.read().size() == 100;
            } catch (const editone::Error&) {
            }
            CHECK("moved-to latent still usable after the source died", usable);
        }
        CHECK("latent counts back to baseline", live() == with_model);

        {
            editone::Latent ex = model.latent_from_seed(3);
            editone::Edit e1 = editone::Edit::from_direction(ex, model.directions(1)[0], 2.0f);
            editone::Edit e2;
            {
                editone::Edit tmp_edit = std::move(e1);
                e2 = std::move(tmp_edit);
            }
            CHECK("destroyed moved-from edits released nothing",
                  live().edits == with_model.edits + 1 && e1.handle().id == 0 && e2);
            editone::Model m2;
            {
                editone::Model tmp_model = editone::Model::load_default();
                m2 = std::move(tmp_model);
            }
            CHECK("destroyed moved-from model released nothing",
                  live().models == with_model.models + 1 && m2);
            m2 = editone::Model();  // releases the second model
            CHECK("move-assigning an empty model releases the old one", live().models == with_model.models);
        }
        CHECK("edit and model counts back to baseline", live() == with_model);

        // Errors.
        {
            editone::Latent empty;
            bool threw = false;
            eo_status st = EO_OK;
            std::string msg;
            try {
                (void)empty.read();
            } catch (const editone::Error& e) {
                threw = true;
                st = e.status();
                msg = e.what();
            }
            CHECK("empty (moved-from) handle: Error EO_ERR_INVALID_HANDLE",
                  threw && st == EO_ERR_INVALID_HANDLE && !msg.empty());

            editone::Latent l = model.latent_from_seed(4);
            const eo_latent raw = l.handle();
            l.reset();
            editone::Latent stale(raw);  // adopts an id that was released
            threw = false;
            st = EO_OK;
            try {
                (void)stale.render_rgb(8, 8);
            } catch (const editone::Error& e) {
                threw = true;
                st = e.status();
            }
            CHECK("released handle: Error EO_ERR_INVALID_HANDLE", threw && st == EO_ERR_INVALID_HANDLE);
            stale.reset();  // releasing an unknown id is ignored, not thrown

            threw = false;
            try {
                std::vector<float> nan(100, std::nanf(""));
                (void)model.latent_from_w(nan);
            } catch (const editone::Error& e) {
                threw = e.status() == EO_ERR_INVALID_ARGUMENT;
            }
            CHECK("NaN latent: Error EO_ERR_INVALID_ARGUMENT", threw);
        }
        CHECK("error paths leak nothing", live() == with_model);

        // Latent I/O.
        {
            editone::Latent l = model.latent_from_seed(5);
            std::vector<float> w = l.read();
            editone::Latent copy = model.latent_from_w(w);
            CHECK("read/latent_from_w round trip", w.size() == 100 && copy.read() == w);
            std::vector<uint8_t> rgb = l.render_rgb(32, 16);
            CHECK("render_rgb size", rgb.size() == 32u * 16u * 3u);
            std::vector<float> f = l.render_f32();
            CHECK("render_f32 size", f.size() == 3u * 64u * 64u);
        }

        // Progress: false cancels.
        {
            editone::Latent ex = model.latent_from_seed(6);
            editone::Edit edit = editone::Edit::from_direction(ex, model.directions(1)[0], 3.0f);
            editone::Latent target = model.latent_from_seed(7);
            const float alpha_before = edit.alpha(target);
            eo_optimize_options opts = short_options(5);
            int calls = 0;
            bool threw = false;
            eo_status st = EO_OK;
            try {
                edit.optimize(&opts, [&](const char*, uint64_t, uint64_t) {
                    ++calls;
                    return false;
                });
            } catch (const editone::Error& e) {
                threw = true;
                st = e.status();
            }
            CHECK("callback returning false: Error EO_ERR_CANCELLED", threw && st == EO_ERR_CANCELLED);
            CHECK("cancel stops at the first callback", calls == 1);
            CHECK("cancel leaves the edit unoptimised",
                  edit.report().optimized == 0 && edit.alpha(target) == alpha_before);

            // An exception in the callback propagates as itself.
            calls = 0;
            bool got_boom = false, got_error = false, got_other = false;
            try {
                edit.optimize(&opts, [&](const char*, uint64_t, uint64_t) -> bool {
                    ++calls;
                    throw Boom{42};
                });
            } catch (const Boom& b) {
                got_boom = b.code == 42;
            } catch (const editone::Error&) {
                got_error = true;
            } catch (...) {
                got_other = true;
            }
            CHECK("exception in callback propagates as itself", got_boom && !got_error && !got_other);
            CHECK("exception in callback cancels at once", calls == 1);
            CHECK("exception leaves the edit unoptimised", edit.report().optimized == 0);

            // The library is fine afterwards: the same edit optimises.
            bool ok = true;
            uint64_t steps = 0;
            try {
                edit.optimize(&opts, [&](const char* stage, uint64_t, uint64_t) {
                    steps += std::string(stage) == "optimize";
                    return true;
                });
            } catch (...) {
                ok = false;
            }
            CHECK("optimize succeeds after a thrown callback",
                  ok && edit.report().optimized == 1 && steps >= 1 && steps <= 5);
            CHECK("no handles leaked by cancelled calls",
                  live().latents == with_model.latents + 2 && live().edits == with_model.edits + 1);

            // Without a callback.
            ok = true;
            try {
                edit.optimize(&opts);
            } catch (...) {
                ok = false;
            }
            CHECK("optimize without callback", ok && edit.report().optimized == 1);
        }

        // Apply, batch, strength, save/load.
        {
            editone::Latent ex = model.latent_from_seed(10);
            std::vector<float> w = ex.read();
            const std::vector<float> dir = model.directions(1)[0];
            for (size_t i = 0; i < w.size(); ++i) w[i] += 2.5f * dir[i];
            editone::Latent ed = model.latent_from_w(w);
            editone::Edit edit = editone::Edit::from_latents(ex, ed);
            eo_optimize_options opts = short_options(3);
            edit.optimize(&opts);

            std::vector<editone::Latent> targets;
            for (uint64_t s = 11; s < 15; ++s) targets.push_back(model.latent_from_seed(s));
            std::vector<float> alphas;
            const Counts before = live();
            std::vector<editone::Latent> out = edit.apply_batch(targets, &alphas);
            bool same = out.size() == 4 && alphas.size() == 4;
            for (size_t i = 0; same && i < 4; ++i)
                same = out[i] && std::fabs(alphas[i] - edit.alpha(targets[i])) < 1e-4f &&
                       out[i].read() == edit.apply(targets[i]).read();
            CHECK("apply_batch matches alpha and apply", same);
            CHECK("apply_batch creates one latent per target", live().latents == before.latents + 4);
            CHECK("apply_batch of nothing", edit.apply_batch({}, &alphas).empty() && alphas.empty());
            CHECK("apply_batch latents render_f32", out[0].render_f32().size() == 3u * 64u * 64u);

            std::vector<editone::Latent> bad;
            bad.push_back(model.latent_from_seed(20));
            bad.emplace_back();  // empty handle in the middle
            const Counts before_bad = live();
            bool threw = false;
            try {
                (void)edit.apply_batch(bad);
            } catch (const editone::Error& e) {
                threw = e.status() == EO_ERR_INVALID_HANDLE;
            }
            CHECK("apply_batch with an empty handle: EO_ERR_INVALID_HANDLE, nothing created",
                  threw && live() == before_bad);

            const float a0 = edit.alpha(targets[0]);
            const float s0 = edit.strength();
            edit.set_strength(s0 + 1.0f);
            CHECK("set_strength moves strength and alpha by the same amount",
                  std::fabs(edit.strength() - (s0 + 1.0f)) < 1e-4f &&
                      std::fabs(edit.alpha(targets[0]) - (a0 + 1.0f)) < 1e-3f);

            const std::string preset = tmp + "/preset.json";
            edit.save(preset);
            editone::Edit loaded = editone::Edit::load(model, preset);
            CHECK("save/load round trip",
                  std::fabs(loaded.alpha(targets[1]) - edit.alpha(targets[1])) < 1e-4f);

            // Files are never replaced unless asked: the old file stays whole.
            const std::string old_preset = slurp(preset);
            edit.set_strength(s0 + 2.0f);
            eo_status got = EO_OK;
            try {
                edit.save(preset);
            } catch (const editone::Error& e) {
                got = e.status();
            }
            CHECK("save over an existing preset: EO_ERR_EXISTS, the file unchanged",
                  got == EO_ERR_EXISTS && slurp(preset) == old_preset);
            edit.save(preset, editone::Replace::yes);
            CHECK("save with Replace::yes replaces it",
                  std::fabs(editone::Edit::load(model, preset).strength() - (s0 + 2.0f)) < 1e-4f);

            const std::string png = tmp + "/replace.png";
            out[0].render_to_file(png);
            const std::string first_png = slurp(png);
            got = EO_OK;
            try {
                out[1].render_to_file(png);
            } catch (const editone::Error& e) {
                got = e.status();
            }
            CHECK("render_to_file over an existing file: EO_ERR_EXISTS, the file unchanged",
                  got == EO_ERR_EXISTS && slurp(png) == first_png);
            out[1].render_to_file(png, 0, editone::Replace::yes);
            CHECK("render_to_file with Replace::yes replaces it",
                  !slurp(png).empty() && slurp(png) != first_png);

            threw = false;
            try {
                (void)editone::Edit::load(model, tmp + "/missing.json");
            } catch (const editone::Error& e) {
                threw = e.status() == EO_ERR_IO;
            }
            CHECK("loading a missing preset: EO_ERR_IO", threw);

            // Latents and edits outlive their model.
            editone::Model other = editone::Model::load_default();
            editone::Latent orphan = other.latent_from_seed(1);
            editone::Edit orphan_edit =
                editone::Edit::from_direction(orphan, other.directions(1)[0], 1.0f);
            other = editone::Model();
            bool ok = true;
            try {
                ok = orphan_edit.apply(orphan).render_rgb(4, 4).size() == 48 &&
                     orphan.render_f32().size() == 3u * 64u * 64u;
            } catch (const editone::Error&) {
                ok = false;
            }
            CHECK("latents and edits stay usable after their model is released", ok);
        }
        CHECK("all scoped handles released", live() == with_model);
    }
    CHECK("everything released: counts back to the start", live() == baseline);
}

int main(int argc, char** argv) {
    const std::string tmp = argc > 1 ? argv[1] : ".";
    try {
        run(tmp);
    } catch (const editone::Error& e) {
        std::printf("FAIL uncaught editone::Error %s: %s\n", e.status_name(), e.what());
        ++checks_failed;
    } catch (const std::exception& e) {
        std::printf("FAIL uncaught exception: %s\n", e.what());
        ++checks_failed;
    }
    return checks_failed == 0 ? 0 : 1;
}
EOF

if "$CXX" "${CXXFLAGS[@]}" -g -I"$ROOT/host-examples/cpp" "$TMP/wrapper.cpp" "${PKG[@]}" \
    -o "$TMP/wrapper" >"$TMP/wrapper-build.log" 2>&1; then
    pass "wrapper checks compile with ${CXXFLAGS[*]}"
    rc=0
    "$TMP/wrapper" "$TMP" >"$TMP/wrapper.log" 2>&1 || rc=$?
    while IFS= read -r line; do
        case "$line" in
            "PASS "*) pass "${line#PASS }" ;;
            "FAIL "*) fail "${line#FAIL }" ;;
            *) echo "     $line" ;;
        esac
    done <"$TMP/wrapper.log"
    if [ "$rc" -eq 0 ]; then
        pass "wrapper checks exit 0"
    else
        fail "wrapper checks exit 0 (got $rc)"
    fi
else
    cat "$TMP/wrapper-build.log"
    fail "wrapper checks compile with ${CXXFLAGS[*]}"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
