"""The GIMP 3 plug-in's undo steps and its cancel, in GIMP's own window.

GIMP 3's procedure database cannot undo, so this runs in the real GIMP
(gimp-3.0 under Xvfb, with the Python batch interpreter) inside the Debian
13 root and presses Ctrl+Z in the image window with xdotool, as a user
would; tests/gimp/run3.sh starts it and checks /job/undo-report.txt.

Issue 23's session: Set Example on one layer, Apply to Selection on the
three selected layers, Adjust Strength, then one undo per action, each
bringing back the image as it was before that action: layers, offsets,
parasites and every pixel (gimp3_common.full_state). Then cancel: Apply is
ended while it projects faces (GIMP's Cancel ends the plug-in at once;
here it is killed the same way), which must leave the image as it was and
put nothing on the undo stack.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, "/job")
from gimp3_common import Report, call, full_state, load_photos, params  # noqa: E402

from gi.repository import Gimp  # noqa: E402

PLUGIN = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "editone", "editone")
report = Report("undo-report.txt")


def image_window():
    """The X window showing the image (its title gives the image's mode), or None."""
    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", r"\(RGB color.* GIMP$"],
                           capture_output=True, text=True, timeout=30).stdout.split()
    return found[0] if found else None


def undo(image, expected):
    """Ctrl+Z in the image window, then the state once it is `expected`
    (or what it is after 20 s)."""
    window = image_window()
    if window is None:
        return "no image window"
    subprocess.run(["xdotool", "windowfocus", "--sync", window], timeout=30)
    subprocess.run(["xdotool", "key", "--clearmodifiers", "ctrl+z"], timeout=30)
    end, now = time.time() + 20, None
    while time.time() < end:
        now = full_state(image)
        if now == expected:
            break
        time.sleep(0.2)
    return now


def check_undo(key, image, expected):
    """One undo; reports "yes" or what the state was instead."""
    now = undo(image, expected)
    report(key, "yes" if now == expected else f"got {now} / expected {expected}")


# Kills the plug-in once one run of it has lasted 5 s (model and detector
# loaded, faces under projection; GIMP starts it briefly for other reasons
# too); a process of its own, so the blocked call here cannot hold it up.
KILLER = """
declare -A first
for i in $(seq 1200); do
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe")" = "$PLUGIN" ] || continue
    pid=${p#/proc/}
    first[$pid]=${first[$pid]:-$SECONDS}
    if [ $((SECONDS - first[$pid])) -ge 5 ]; then kill -9 "$pid" && echo killed; exit 0; fi
  done
  sleep 0.1
done
echo "never saw the plug-in run 5 s"
"""


def cancelled_apply(image, layers):
    """Apply to Selection killed while projecting; (killed, error message)."""
    killer = subprocess.Popen(["bash", "-c", KILLER], env={**os.environ, "PLUGIN": PLUGIN},
                              stdout=subprocess.PIPE, text=True)
    error = call("plug-in-editone-apply-to-selection", image, layers, invert_steps=100000, tune_steps=0)
    said = killer.communicate(timeout=120)[0].strip()
    return said == "killed", error


image, layers = load_photos()
Gimp.Display.new(image)
Gimp.displays_flush()
steps = params["steps"]
time.sleep(2)
report("window", "yes" if image_window() else "no: " + subprocess.run(
    "for w in $(xdotool search --onlyvisible --name .); do xdotool getwindowname $w; done | tr '\\n' '|'",
    shell=True, capture_output=True, text=True).stdout)

before_example = full_state(image)
report("set-example", call("plug-in-editone-set-example", image, layers[:1], subject="faces",
                           edit_kind="direction", direction=0, strength=8.0, optimize_steps=20,
                           invert_steps=steps))
before_apply = full_state(image)
report("apply", call("plug-in-editone-apply-to-selection", image, layers, invert_steps=steps, tune_steps=0))
before_adjust = full_state(image)
report("layers-applied", len(image.get_layers()))
report("adjust", call("plug-in-editone-adjust-strength", image, layers[:1], strength=2.0))
report("adjust-changed", "yes" if full_state(image) != before_adjust else "no")

check_undo("undo-adjust", image, before_adjust)
check_undo("undo-apply", image, before_apply)
check_undo("undo-example", image, before_example)

# Cancel: the faces caches went with the undone actions, so Apply spends
# its first seconds projecting B's and C's faces (A's comes with Set Example).
report("set-example-again", call("plug-in-editone-set-example", image, layers[:1], subject="faces",
                                 edit_kind="direction", direction=0, strength=8.0, optimize_steps=20,
                                 invert_steps=steps))
example_again = full_state(image)
killed, error = cancelled_apply(image, layers)
report("cancel-killed", "yes" if killed and error else f"killed {killed}, error {error!r}")
now = full_state(image)
report("cancel-untouched", "yes" if now == example_again else f"got {now} / expected {example_again}")
check_undo("cancel-no-step", image, before_example)
image.clean_all()
report("done", "yes")
