"""What the GIMP 3 test sessions share (gimp3_batch.py headless,
gimp3_undo.py in GIMP's window): they run in GIMP's own Python inside the
Debian 13 root, with /job holding params.json, the photos and this file.

params.json: the photos (name, file, offset), the projection steps and the
smallest face of the first photo (the selection for Set Example).
"""
import hashlib
import json

from gi.repository import Gegl, Gimp, Gio

JOB = "/job"
params = json.load(open(f"{JOB}/params.json"))
pdb = Gimp.get_pdb()


class Report:
    """KEY<TAB>VALUE lines in /job/NAME, flushed at once so that what a
    crashed session wrote is still read."""

    def __init__(self, name):
        self.file = open(f"{JOB}/{name}", "w")

    def __call__(self, key, value):
        self.file.write(f"{key}\t{value}\n")
        self.file.flush()


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


def load_photos():
    """A new image of params' photos as layers, the first at the bottom;
    returns the image and its layers in that order."""
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
    return image, layers


def state(image):
    """Layers and parasites: what an action that failed must not change."""
    layers = image.get_layers()
    return (f"{len(layers)} layers, image parasites: {len(image.get_parasite_list())}, "
            f"layer parasites: {sum(len(l.get_parasite_list()) for l in layers)}")


def pixels_digest(layer):
    """SHA-256 of the layer's 8-bit RGBA pixels."""
    buffer = layer.get_buffer()
    data = buffer.get(buffer.get_extent(), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE)
    return hashlib.sha256(bytes(data)).hexdigest()[:16]


def parasite_bytes(parasite):
    """A parasite's data (GI gives it as signed chars)."""
    return bytes(b & 0xFF for b in parasite.get_data())


def full_state(image):
    """Everything an undo step must restore: each layer's name, offsets,
    parasites (names and contents) and pixels, and the image's parasites."""
    def parasites(item):
        return sorted(f"{name}={hashlib.sha256(parasite_bytes(item.get_parasite(name))).hexdigest()[:12]}"
                      for name in item.get_parasite_list())
    layers = [f"{l.get_name()}@{l.get_offsets()[1:]} {parasites(l)} {pixels_digest(l)}" for l in image.get_layers()]
    return " | ".join(layers) + f" || image {parasites(image)}"


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
