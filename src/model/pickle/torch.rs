//! torch's containers: the persistent ids that name storages, the records
//! that rebuild tensors as views of them, legacy storage blobs
//! (`torch.storage._load_from_bytes`) and torch.save zip archives. Every
//! view and record is checked to lie inside the bytes it refers to.

use super::allow_list::{AllowList, Global};
use super::elem::Elem;
use super::machine::Machine;
use super::value::{Id, PersistentLoad, Pickle, TensorRef, Value};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Reads `('storage', storage_type, key, location, numel[, view])`.
pub fn storage_pid(p: &Pickle<'_>, pid: Id) -> Result<(Elem, String, usize)> {
    let bad = || Error::format("persistent id is not a ('storage', type, key, location, numel) tuple");
    let items = p.as_seq(pid).ok_or_else(bad)?;
    if items.len() < 5 || p.as_str(items[0]) != Some("storage") {
        return Err(bad());
    }
    let Value::Global(Global::Storage(elem)) = p.get(items[1]) else { return Err(bad()) };
    let key = p.as_str(items[2]).ok_or_else(bad)?.to_string();
    let numel = p.as_int(items[4]).filter(|&n| (0..=(1i128 << 40)).contains(&n)).ok_or_else(bad)? as usize;
    Ok((*elem, key, numel))
}

impl<'a> Machine<'_, 'a> {
    /// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: a view whose
    /// last element must lie inside the storage.
    pub(super) fn rebuild_tensor(&self, args: Id) -> Result<Value<'a>> {
        let a = self.args(args, "_rebuild_tensor_v2", 6, 7)?;
        let numel = match self.pickle.get(a[0]) {
            Value::Storage { elem, data } => data.len() / elem.size(),
            other => return self.fail(format!("_rebuild_tensor_v2 of a {}", other.kind_name())),
        };
        let offset = match self.pickle.as_int(a[1]) {
            Some(o) if (0..=numel as i128).contains(&o) => o as usize,
            _ => return self.fail("tensor storage offset is out of range"),
        };
        let size = self.shape(a[2], "tensor size")?;
        let stride = self.shape(a[3], "tensor stride")?;
        if size.len() != stride.len() {
            return self.fail("tensor size and stride differ in length");
        }
        if size.contains(&0) {
            return Ok(Value::Tensor(TensorRef { storage: a[0], offset, size, stride }));
        }
        // The last element addressed must lie inside the storage.
        let last = size.iter().zip(&stride).try_fold(offset as u128, |acc, (&d, &s)| acc.checked_add((d as u128 - 1) * s as u128));
        match last {
            Some(last) if last < numel as u128 => Ok(Value::Tensor(TensorRef { storage: a[0], offset, size, stride })),
            _ => self.fail(format!("tensor of size {size:?} and stride {stride:?} reaches past its storage of {numel} elements")),
        }
    }
}

/// The storage inside a `torch.storage._load_from_bytes` blob: the legacy
/// torch.save layout (magic, protocol version, system info, the storage as
/// a persistent id, the key list, then raw records of little-endian data).
pub fn legacy_storage(blob: &[u8]) -> Result<(Elem, &[u8])> {
    if blob.starts_with(b"PK\x03\x04") {
        return zip_storage(blob);
    }
    let mut pos = 0;
    let magic = parse_next(blob, &mut pos, None)?;
    if magic.as_int(magic.root) != Some(0x1950a86a20f9469cfc6c) {
        return Err(Error::format("storage blob: not a torch.save blob (bad magic number)"));
    }
    let version = parse_next(blob, &mut pos, None)?;
    if version.as_int(version.root) != Some(1001) {
        return Err(Error::format("storage blob: unsupported torch.save protocol version"));
    }
    let info = parse_next(blob, &mut pos, None)?;
    if info.dict_get(info.root, "little_endian").and_then(|v| info.as_int(v)) != Some(1) {
        return Err(Error::format("storage blob: big-endian data is not supported"));
    }
    let mut found: Option<(Elem, String, usize)> = None;
    let mut load = |p: &Pickle<'_>, pid: Id| {
        found = Some(storage_pid(p, pid)?);
        Ok(Value::None)
    };
    parse_next(blob, &mut pos, Some(&mut load))?;
    let Some((elem, key, numel)) = found else {
        return Err(Error::format("storage blob: no storage in the object pickle"));
    };
    let keys = parse_next(blob, &mut pos, None)?;
    let key_list: Vec<String> = keys.as_seq(keys.root).unwrap_or(&[]).iter().filter_map(|&k| keys.as_str(k).map(String::from)).collect();
    drop(keys);
    let mut rest = &blob[pos..];
    for k in key_list {
        if rest.len() < 8 {
            return Err(Error::format("storage blob: truncated record"));
        }
        let count = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
        let bytes = usize::try_from(count).ok().and_then(|c| c.checked_mul(elem.size()));
        let Some(bytes) = bytes.filter(|&b| b <= rest.len() - 8) else {
            return Err(Error::format(format!("storage blob: record of {count} elements is longer than the blob")));
        };
        if k == key {
            if count as usize != numel {
                return Err(Error::format("storage blob: record size differs from the storage's"));
            }
            return Ok((elem, &rest[8..8 + bytes]));
        }
        rest = &rest[8 + bytes..];
    }
    Err(Error::format("storage blob: the storage's data record is missing"))
}

/// Parses the pickle starting at `pos` and moves `pos` past it.
fn parse_next<'a>(blob: &'a [u8], pos: &mut usize, persistent: Option<PersistentLoad<'_, 'a>>) -> Result<Pickle<'a>> {
    let (p, used) = Pickle::parse(&blob[*pos..], AllowList::StorageBlob, persistent)?;
    *pos += used;
    Ok(p)
}

/// A storage blob written in torch.save's zip layout (very old torch).
fn zip_storage(blob: &[u8]) -> Result<(Elem, &[u8])> {
    let archive = TorchZip::open(blob)?;
    let mut found = None;
    let mut load = |p: &Pickle<'_>, pid: Id| {
        found = Some(storage_pid(p, pid)?);
        Ok(Value::None)
    };
    Pickle::parse(archive.entry("data.pkl")?, AllowList::StorageBlob, Some(&mut load))?;
    let Some((elem, key, numel)) = found else { return Err(Error::format("storage blob: no storage")) };
    let data = archive.storage(&key, elem, numel)?;
    Ok((elem, data))
}

/// A torch.save zip archive held in memory. Entries must be stored
/// uncompressed (as torch writes them), so data is borrowed, never inflated.
pub struct TorchZip<'a> {
    bytes: &'a [u8],
    prefix: String,
    entries: HashMap<String, (usize, usize)>,
}

impl<'a> TorchZip<'a> {
    /// Indexes the archive; its records live under one top folder.
    pub fn open(bytes: &'a [u8]) -> Result<Self> {
        let bad = |e: zip::result::ZipError| Error::format(format!("torch zip archive: {e}"));
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(bad)?;
        let mut entries = HashMap::new();
        let mut prefix = None;
        for i in 0..zip.len() {
            let f = zip.by_index_raw(i).map_err(bad)?;
            let name = f.name().to_string();
            if f.compression() != zip::CompressionMethod::Stored {
                continue;
            }
            let (start, size) = (f.data_start(), f.size());
            let end = start.checked_add(size).filter(|&e| e <= bytes.len() as u64);
            if end.is_none() || f.compressed_size() != size {
                return Err(Error::format(format!("torch zip archive: entry '{name}' lies outside the file")));
            }
            if prefix.is_none() && name.ends_with("/data.pkl") {
                prefix = Some(name.trim_end_matches("data.pkl").to_string());
            }
            entries.insert(name, (start as usize, size as usize));
        }
        let prefix = prefix.ok_or_else(|| Error::format("torch zip archive has no data.pkl record"))?;
        Ok(TorchZip { bytes, prefix, entries })
    }

    /// The bytes of record `name` (relative to the archive's folder).
    pub fn entry(&self, name: &str) -> Result<&'a [u8]> {
        match self.entries.get(&format!("{}{name}", self.prefix)) {
            Some(&(start, size)) => Ok(&self.bytes[start..start + size]),
            None => Err(Error::format(format!("torch zip archive: record '{name}' is missing or compressed"))),
        }
    }

    /// The data of storage `key`, which must hold `numel` elements.
    pub fn storage(&self, key: &str, elem: Elem, numel: usize) -> Result<&'a [u8]> {
        let data = self.entry(&format!("data/{key}"))?;
        let need = numel.checked_mul(elem.size()).filter(|&n| n <= data.len());
        match need {
            Some(n) => Ok(&data[..n]),
            None => Err(Error::format(format!("torch zip archive: storage {key} is shorter than its {numel} elements"))),
        }
    }

    /// Whether the archive declares big-endian data.
    pub fn big_endian(&self) -> bool {
        self.entry("byteorder").map(|b| b == b"big").unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn tensors_must_lie_inside_their_storage() {
        // _rebuild_tensor_v2(storage, 0, (1 << 40,), (1,), False, OrderedDict())
        // with an 8-byte float storage from a persistent id.
        let pickle = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storageq\x00ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQK\x00\x8a\x06\x00\x00\x00\x00\x00\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR.";
        let data = [0u8; 8];
        let mut load = |p: &Pickle<'_>, pid: Id| {
            let (elem, _, numel) = storage_pid(p, pid)?;
            assert_eq!(numel, 2);
            Ok(Value::Storage { elem, data: Cow::Borrowed(&data[..]) })
        };
        let e = Pickle::parse(pickle, AllowList::Checkpoint, Some(&mut load)).err().expect("refused");
        assert!(e.message.contains("reaches past its storage"), "{}", e.message);
    }
}
