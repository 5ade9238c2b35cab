"""The GIMP 3 plug-in's headless session, run by GIMP's own Python
(gimp-console-3.0 -i --batch-interpreter=python-fu-eval) inside the
Debian 13 root; tests/gimp/run3.sh sets it up and checks what it writes.

Reads /job/params.json: the photos (name, file, offset), the steps and the
smallest face of the first photo (the selection for Set Example). Writes
/job/report.txt (KEY<TAB>VALUE lines; "done" last) and PNGs of the result
layers under /job/out/. Every procedure runs through the PDB as a script
would, with the typed arguments of GIMP 3.
"""
import sys

sys.path.insert(0, "/job")
from gimp3_common import Report, call, load_photos, names, params, save_layer, state  # noqa: E402

from gi.repository import Gimp  # noqa: E402

JOB = "/job"
report = Report("report.txt")


def example(image):
    parasite = image.get_parasite("editone-example")
    return bytes(parasite.get_data()).decode() if parasite else ""


image, layers = load_photos()
steps = params["steps"]

# Bad input, before and after an example exists: clear messages, nothing changed.
report("no-example", call("plug-in-editone-apply-to-selection", image, layers[:1], invert_steps=steps))
tiny = Gimp.Layer.new(image, "tiny", 8, 8, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
image.insert_layer(tiny, None, 0)
text = Gimp.TextLayer.new(image, "caption", Gimp.context_get_font(), 24.0, Gimp.Unit.pixel())
image.insert_layer(text, None, 0)
group = Gimp.GroupLayer.new(image, "group")
image.insert_layer(group, None, 0)
before = state(image)
report("tiny", call("plug-in-editone-set-example", image, [tiny], invert_steps=steps))
report("text", call("plug-in-editone-apply-to-selection", image, [layers[0], text], invert_steps=steps))
report("group", call("plug-in-editone-apply-to-selection", image, [group], invert_steps=steps))
report("two-examples", call("plug-in-editone-set-example", image, layers[:2], invert_steps=steps))
report("state-unchanged", "yes" if state(image) == before else f"{before} became {state(image)}")
for extra in (tiny, text, group):
    image.remove_layer(extra)

# Set Example takes the face under the selection.
x, y, w, h = params["selection"]
image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
report("set-example", call("plug-in-editone-set-example", image, layers[:1], subject="faces",
                           edit_kind="direction", direction=0, strength=8.0, optimize_steps=20,
                           invert_steps=steps))
report("example", example(image))
Gimp.Selection.none(image)

# Apply to three selected layers, then a new strength.
report("apply", call("plug-in-editone-apply-to-selection", image, layers, invert_steps=steps, tune_steps=0))
report("layers-applied", names(image))
for layer in layers:
    result = image.get_layer_by_name(f"{layer.get_name()} (editone)")
    if result:
        save_layer(result, f"{JOB}/out/{layer.get_name()}-applied.png")
report("adjust", call("plug-in-editone-adjust-strength", image, layers[:1], strength=6.0))
report("layers-adjusted", names(image))
for layer in layers:
    result = image.get_layer_by_name(f"{layer.get_name()} (editone)")
    if result:
        save_layer(result, f"{JOB}/out/{layer.get_name()}-adjusted.png")
report("preset-parasite", "yes" if image.get_parasite("editone-preset") else "no")

# Apply again with tuning: the same layers' results replaced, rendered
# through one generator tuned on all their faces (kept in the profile).
report("apply-tuned", call("plug-in-editone-apply-to-selection", image, layers, invert_steps=steps, tune_steps=steps))
report("layers-tuned", names(image))
for layer in layers:
    result = image.get_layer_by_name(f"{layer.get_name()} (editone)")
    if result:
        save_layer(result, f"{JOB}/out/{layer.get_name()}-tuned.png")
report("done", "yes")
