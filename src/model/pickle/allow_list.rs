//! The allow-list: every global a pickle may name (GLOBAL, STACK_GLOBAL),
//! and the refusal of every other. This is the security boundary of pickle
//! reading. Python's unpickler imports and calls whatever a stream names,
//! so a checkpoint could run any code; here a name outside this file is an
//! error on sight, naming it, before any REDUCE could call it, and a name
//! inside it only becomes a [`Global`] tag. What calling a tag does is in
//! `calls.rs` (and `torch.rs` for tensors): each builds a plain value from
//! values already parsed; none imports, opens or runs anything.
//!
//! The names are those of docs/stylegan2.md sections 3.3 and 3.4.

use super::elem::Elem;

/// The globals a checkpoint may name. Anything else is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// torch_utils.persistence._reconstruct_persistent_obj
    PersistentObject,
    /// torch._utils._rebuild_tensor_v2
    RebuildTensor,
    /// torch._utils._rebuild_parameter (and _with_state)
    RebuildParameter,
    /// torch.storage._load_from_bytes
    LoadFromBytes,
    /// collections.OrderedDict, dnnlib.util.EasyDict, argparse.Namespace:
    /// all become dicts.
    DictLike,
    /// builtins.set / builtins.frozenset
    Set,
    /// _codecs.encode (protocol 2 writes bytes through it)
    Encode,
    /// numpy.dtype
    NumpyDtype,
    /// numpy.core.multiarray.scalar
    NumpyScalar,
    /// numpy.core.multiarray._reconstruct
    NumpyReconstruct,
    /// numpy.ndarray (only as _reconstruct's argument)
    NumpyNdarray,
    /// torch.FloatStorage and friends (persistent ids name them)
    Storage(Elem),
}

/// Which globals a stream may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowList {
    /// Checkpoints: networks, tensors, containers, numpy scalars.
    Checkpoint,
    /// The pickles inside a legacy storage blob: storage types only.
    StorageBlob,
}

/// The storage types under `torch`, and the element type each one names.
const STORAGES: &[(&str, Elem)] = &[
    ("FloatStorage", Elem::F32),
    ("HalfStorage", Elem::F16),
    ("BFloat16Storage", Elem::BF16),
    ("DoubleStorage", Elem::F64),
    ("LongStorage", Elem::I64),
    ("IntStorage", Elem::I32),
    ("ShortStorage", Elem::I16),
    ("CharStorage", Elem::I8),
    ("ByteStorage", Elem::U8),
    ("BoolStorage", Elem::Bool),
];

/// The tag for `module.name`, or the message refusing it. Every name a
/// stream uses passes here before it can be pushed, so nothing else in the
/// reader can reach a global that this file does not list.
pub(super) fn resolve(module: &str, name: &str, allow: AllowList) -> std::result::Result<Global, String> {
    lookup_global(module, name, allow).ok_or_else(|| refusal(module, name))
}

/// The tag for `module.name`, or None when `allow` does not permit it.
fn lookup_global(module: &str, name: &str, allow: AllowList) -> Option<Global> {
    // A storage type only tags the element type of bytes read from the
    // file; calling one is refused.
    if module == "torch" {
        return STORAGES.iter().find(|(n, _)| *n == name).map(|&(_, e)| Global::Storage(e));
    }
    // A legacy storage blob names its storage's type and nothing else.
    if allow == AllowList::StorageBlob {
        return None;
    }
    // numpy 2 renamed numpy.core to numpy._core; pickles use either.
    let numpy_multiarray = matches!(module, "numpy.core.multiarray" | "numpy._core.multiarray");
    Some(match (module, name) {
        // Keeps the network's meta dict as data; torch_utils' own function
        // would exec the class source the dict carries.
        ("torch_utils.persistence", "_reconstruct_persistent_obj") => Global::PersistentObject,
        // A strided view of a storage, checked to lie inside it.
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        // Returns its tensor argument; the grad flag and hooks are ignored.
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => Global::RebuildParameter,
        // The blob is read with the storage-only list, never torch.load.
        ("torch.storage", "_load_from_bytes") => Global::LoadFromBytes,
        // Become plain dicts of parsed pairs; no class is instantiated.
        ("collections", "OrderedDict") | ("dnnlib.util", "EasyDict") | ("argparse", "Namespace") => Global::DictLike,
        // A set of values already parsed (__builtin__ is Python 2's name).
        ("builtins" | "__builtin__", "set" | "frozenset") => Global::Set,
        // Only latin-1 text to bytes, as protocol 2 spells bytes.
        ("_codecs", "encode") => Global::Encode,
        // Only the fixed type codes of numpy_elem; any other is refused.
        ("numpy", "dtype") => Global::NumpyDtype,
        // A tag for _reconstruct's first argument; calling it is refused.
        ("numpy", "ndarray") => Global::NumpyNdarray,
        // Decodes one fixed-size little-endian number from bytes.
        (_, "scalar") if numpy_multiarray => Global::NumpyScalar,
        // An empty array that only BUILD fills, from shape, dtype and bytes.
        (_, "_reconstruct") if numpy_multiarray => Global::NumpyReconstruct,
        // Everything else: refused by name.
        _ => return None,
    })
}

/// The message refusing `module.name`: it names the global, and points a
/// TensorFlow-era pickle at the converter that makes it readable.
fn refusal(module: &str, name: &str) -> String {
    if module.starts_with("dnnlib.tflib") {
        format!(
            "refusing global '{module}.{name}': this is a TensorFlow-era StyleGAN2 pickle; convert it with stylegan2-ada-pytorch's legacy.py first"
        )
    } else {
        format!(
            "refusing global '{module}.{name}': it is not a tensor, container or network record, and editone never runs code from a file"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::message;

    #[test]
    fn unknown_globals_and_calls_are_refused_by_name() {
        assert!(message(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.").contains("'os.system'"));
        let stack_global = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.";
        assert!(message(stack_global).contains("'builtins.eval'"));
        assert!(message(b"\x80\x02csubprocess\nPopen\n)R.").contains("'subprocess.Popen'"));
        assert!(message(b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81.").contains("legacy.py"));
        assert!(message(b"\x80\x02X\x01\x00\x00\x00a)R.").contains("REDUCE of a str"));
        assert!(message(b"\x80\x02ctorch\nFloatStorage\n)R.").contains("cannot be called"));
        assert!(message(b"\x80\x02cnumpy\ndtype\n)\x81.").contains("NEWOBJ"));
        assert!(message(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nX\x01\x00\x00\x00a\x85R.").contains("6 to 7 arguments"));
    }
}
