"""The GIMP 3 plug-in's headless session, run by GIMP's own Python
(gimp-console-3.0 -i --batch-interpreter=python-fu-eval) inside the
Debian 13 root; tests/gimp/run3.sh sets it up and checks what it writes.

Reads /job/params.json: the photos (name, file, offset), the steps and the
smallest face of the first photo (the selection for Set Example). Writes
/job/report.txt (KEY<TAB>VALUE lines; "done" last) and PNGs of the result
layers under /job/out/. Every procedure runs through the PDB as a script
would, with the typed arguments of GIMP 3.
"""
import json

from gi.repository import Gimp, Gio

JOB = "/job"
params = json.load(open(f"{JOB}/params.json"))
report_file = open(f"{JOB}/report.txt", "w")
pdb = Gimp.get_pdb()


def report(key, value):
    report_file.write(f"{key}\t{value}\n")
    report_file.flush()


def call(name, image, drawables, **args):
    """Runs a plug-in procedure; "" on success, else its error message."""
    proc = pdb.lookup_procedure(name)
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        config.set_property(key.replace("_", "-"), value)
    result = proc.run(config)
    if result.index(0) == Gimp.PDBStatusType.SUCCESS:
        return ""
    return pdb.get_last_error() or str(result.index(0))


def state(image):
    """Layers and parasites: what an action that failed must not change."""
    layers = image.get_layers()
    return (f"{len(layers)} layers, image parasites: {len(image.get_parasite_list())}, "
            f"layer parasites: {sum(len(l.get_parasite_list()) for l in layers)}")


def names(image):
    return "|".join(l.get_name() for l in image.get_layers())


def save_layer(layer, path):
    """The layer alone, at its own size, as a PNG."""
    copy = Gimp.Image.new(layer.get_width(), layer.get_height(), Gimp.ImageBaseType.RGB)
    dup = Gimp.Layer.new_from_drawable(layer, copy)
    copy.insert_layer(dup, None, 0)
    dup.set_offsets(0, 0)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, copy, Gio.File.new_for_path(path), None)
    copy.delete()


def example(image):
    parasite = image.get_parasite("editone-example")
    return bytes(parasite.get_data()).decode() if parasite else ""


photos = params["photos"]
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(photos[0]["file"]))
layers = [image.get_layers()[0]]
layers[0].set_name(photos[0]["name"])
for photo in photos[1:]:
    layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(photo["file"]))
    layer.set_name(photo["name"])
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*photo["offset"])
    layers.append(layer)
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
report("apply", call("plug-in-editone-apply-to-selection", image, layers, invert_steps=steps))
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
report("done", "yes")
