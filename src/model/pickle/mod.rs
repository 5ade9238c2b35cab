//! A pickle reader that never executes anything: it builds a tree of plain
//! values from protocol 2 to 5 streams and knows an allow-list of globals
//! (docs/stylegan2.md sections 3.3 and 3.4) by name. A GLOBAL outside the
//! list is refused on sight, naming it, before any REDUCE could use it.
//!
//! Values live in an arena and refer to each other by index, so memoised
//! containers stay shared exactly as pickle shares them (a list filled by
//! APPENDS after it was memoised is the same list wherever BINGET put it),
//! self-references cannot leak, and dropping a tree never recurses. Every
//! opcode adds at most one value and lengths are checked against the bytes
//! actually present before anything is allocated, so memory stays within a
//! small multiple of the input's size.
//!
//! The module is split along the trust boundary:
//! - `allow_list`: the only names a stream may use, and the refusal of
//!   every other; the file to read for what a pickle can reach.
//! - `machine`: the opcodes, the stack, the marks and the memo.
//! - `calls`: what REDUCE, NEWOBJ and BUILD do with an allowed name; each
//!   only builds a plain value from values already parsed.
//! - `torch`: torch's containers: persistent ids of storages, tensor
//!   rebuild records, legacy storage blobs and torch.save zip archives.
//! - `value` and `elem`: the values the machine builds, and the element
//!   types of raw data.
//!
//! A legacy storage blob is itself a sequence of pickles, so `calls` reads
//! it through `torch`, which runs the machine again with the storage-only
//! list: the recursion is the format's, bounded by the blob's size.

mod allow_list;
mod calls;
mod elem;
mod machine;
mod torch;
mod value;

pub use allow_list::{AllowList, Global};
pub use elem::Elem;
pub use torch::{legacy_storage, storage_pid, TorchZip};
pub use value::{Id, PersistentLoad, Pickle, TensorRef, Value};

/// Helpers the tests of several files share.
#[cfg(test)]
mod test_util {
    use super::{AllowList, Pickle};
    use crate::error::Result;

    /// A checkpoint pickle without persistent ids.
    pub(super) fn parse(bytes: &[u8]) -> Result<Pickle<'_>> {
        Pickle::parse(bytes, AllowList::Checkpoint, None).map(|(p, _)| p)
    }

    /// The message of a stream that must be refused, checked to be a
    /// format error (a bad file, not an internal failure).
    pub(super) fn message(bytes: &[u8]) -> String {
        match parse(bytes) {
            Ok(_) => panic!("parsed but should not"),
            Err(e) => {
                assert_eq!(e.kind, crate::ErrorKind::Format);
                e.message
            }
        }
    }
}
