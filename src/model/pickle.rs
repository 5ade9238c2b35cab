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

use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;

/// Index of a value in a [`Pickle`]'s arena.
pub type Id = usize;

/// Element types of tensor storages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// float32
    F32,
    /// float16
    F16,
    /// bfloat16
    BF16,
    /// float64
    F64,
    /// int64
    I64,
    /// int32
    I32,
    /// int16
    I16,
    /// int8
    I8,
    /// uint8
    U8,
    /// bool (one byte)
    Bool,
}

impl Elem {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Elem::F64 | Elem::I64 => 8,
            Elem::F32 | Elem::I32 => 4,
            Elem::F16 | Elem::BF16 | Elem::I16 => 2,
            Elem::I8 | Elem::U8 | Elem::Bool => 1,
        }
    }
}

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

fn lookup_global(module: &str, name: &str, allow: AllowList) -> Option<Global> {
    if module == "torch" {
        return STORAGES.iter().find(|(n, _)| *n == name).map(|&(_, e)| Global::Storage(e));
    }
    if allow == AllowList::StorageBlob {
        return None;
    }
    let numpy_multiarray = matches!(module, "numpy.core.multiarray" | "numpy._core.multiarray");
    Some(match (module, name) {
        ("torch_utils.persistence", "_reconstruct_persistent_obj") => Global::PersistentObject,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => Global::RebuildParameter,
        ("torch.storage", "_load_from_bytes") => Global::LoadFromBytes,
        ("collections", "OrderedDict") | ("dnnlib.util", "EasyDict") | ("argparse", "Namespace") => Global::DictLike,
        ("builtins" | "__builtin__", "set" | "frozenset") => Global::Set,
        ("_codecs", "encode") => Global::Encode,
        ("numpy", "dtype") => Global::NumpyDtype,
        ("numpy", "ndarray") => Global::NumpyNdarray,
        (_, "scalar") if numpy_multiarray => Global::NumpyScalar,
        (_, "_reconstruct") if numpy_multiarray => Global::NumpyReconstruct,
        _ => return None,
    })
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a
/// storage, checked to lie inside it.
#[derive(Clone, Debug)]
pub struct TensorRef {
    /// The storage value.
    pub storage: Id,
    /// First element, in elements.
    pub offset: usize,
    /// Shape.
    pub size: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<usize>,
}

/// One value of the tree.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    /// None
    None,
    /// True or False
    Bool(bool),
    /// An integer (128 bits hold every integer these files use).
    Int(i128),
    /// A float.
    Float(f64),
    /// A str.
    Str(Cow<'a, str>),
    /// A bytes object.
    Bytes(Cow<'a, [u8]>),
    /// A tuple.
    Tuple(Vec<Id>),
    /// A list.
    List(Vec<Id>),
    /// A dict (also OrderedDict, EasyDict, Namespace); `attrs` holds what a
    /// BUILD set as attributes (a state_dict's `_metadata`, a Namespace's
    /// fields).
    Dict {
        /// Items in insertion order.
        items: Vec<(Id, Id)>,
        /// Attributes set by BUILD.
        attrs: Vec<(Id, Id)>,
    },
    /// A set or frozenset.
    Set(Vec<Id>),
    /// An allow-listed global, not called yet.
    Global(Global),
    /// A persistent network object: its meta dict (class_name, state, ...).
    Persistent(Id),
    /// A tensor view.
    Tensor(TensorRef),
    /// Raw storage bytes of `elem` elements.
    Storage {
        /// Element type.
        elem: Elem,
        /// Little-endian data, exactly numel * elem.size() bytes.
        data: Cow<'a, [u8]>,
    },
    /// A numpy dtype, by its type string ("f8", "i8", ...), and byte order.
    Dtype(String, u8),
    /// A numpy array: dtype, shape and data once BUILD has filled it.
    Array {
        /// The dtype value, None until BUILD.
        dtype: Option<Id>,
        /// Shape.
        shape: Vec<usize>,
        /// Data bytes.
        data: Option<Id>,
    },
}

impl Value<'_> {
    fn kind_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict { .. } => "dict",
            Value::Set(_) => "set",
            Value::Global(_) => "global",
            Value::Persistent(_) => "persistent object",
            Value::Tensor(_) => "tensor",
            Value::Storage { .. } => "storage",
            Value::Dtype(..) => "numpy dtype",
            Value::Array { .. } => "numpy array",
        }
    }
}

/// Resolves BINPERSID ids (torch.save's storages) to values.
pub type PersistentLoad<'p, 'a> = &'p mut dyn FnMut(&Pickle<'a>, Id) -> Result<Value<'a>>;

/// A parsed pickle: the arena and the value STOP returned.
pub struct Pickle<'a> {
    values: Vec<Value<'a>>,
    /// The top-level value.
    pub root: Id,
}

/// Sentinel index for "no value yet" while parsing.
const NO_ROOT: Id = usize::MAX;

impl<'a> Pickle<'a> {
    /// Parses one pickle from the start of `data`; returns it and the
    /// number of bytes it used. Persistent ids go to `persistent`, or are
    /// refused when it is None.
    pub fn parse(data: &'a [u8], allow: AllowList, persistent: Option<PersistentLoad<'_, 'a>>) -> Result<(Self, usize)> {
        let mut vm = Machine {
            data,
            pos: 0,
            allow,
            pickle: Pickle { values: Vec::new(), root: NO_ROOT },
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            persistent,
        };
        vm.run()?;
        Ok((vm.pickle, vm.pos))
    }

    /// The value `id`.
    pub fn get(&self, id: Id) -> &Value<'a> {
        &self.values[id]
    }

    /// A short name of the value's type, for messages.
    pub fn kind_name(&self, id: Id) -> &'static str {
        self.values[id].kind_name()
    }

    /// The str value `id`, if it is one.
    pub fn as_str(&self, id: Id) -> Option<&str> {
        match &self.values[id] {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer value `id` (bools count), if it is one.
    pub fn as_int(&self, id: Id) -> Option<i128> {
        match self.values[id] {
            Value::Int(i) => Some(i),
            Value::Bool(b) => Some(b as i128),
            _ => None,
        }
    }

    /// The number value `id` as f64, if it is one.
    pub fn as_f64(&self, id: Id) -> Option<f64> {
        match self.values[id] {
            Value::Float(f) => Some(f),
            _ => self.as_int(id).map(|i| i as f64),
        }
    }

    /// Items of a tuple or list.
    pub fn as_seq(&self, id: Id) -> Option<&[Id]> {
        match &self.values[id] {
            Value::Tuple(v) | Value::List(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Items of a dict.
    pub fn dict_items(&self, id: Id) -> Option<&[(Id, Id)]> {
        match &self.values[id] {
            Value::Dict { items, .. } => Some(items),
            _ => None,
        }
    }

    /// Attributes a BUILD gave a dict-like object (a Namespace's fields).
    pub fn dict_attrs(&self, id: Id) -> Option<&[(Id, Id)]> {
        match &self.values[id] {
            Value::Dict { attrs, .. } => Some(attrs),
            _ => None,
        }
    }

    /// The value under str key `key` of dict `id` (the last one, as Python).
    pub fn dict_get(&self, id: Id, key: &str) -> Option<Id> {
        self.dict_items(id)?.iter().rev().find(|(k, _)| self.as_str(*k) == Some(key)).map(|&(_, v)| v)
    }

    fn push(&mut self, value: Value<'a>) -> Id {
        self.values.push(value);
        self.values.len() - 1
    }
}

struct Machine<'p, 'a> {
    data: &'a [u8],
    pos: usize,
    allow: AllowList,
    pickle: Pickle<'a>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    persistent: Option<PersistentLoad<'p, 'a>>,
}

impl<'a> Machine<'_, 'a> {
    fn fail<T>(&self, what: impl std::fmt::Display) -> Result<T> {
        Err(Error::format(format!("pickle: {what} (at byte {})", self.pos)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.data.len() - self.pos {
            return self.fail(format!("truncated: {n} bytes declared, {} left", self.data.len() - self.pos));
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64> {
        let bytes = self.take(n)?;
        Ok(bytes.iter().rev().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn len(&mut self, n: usize) -> Result<usize> {
        let len = self.uint(n)?;
        usize::try_from(len).or_else(|_| self.fail(format!("length {len} is too large")))
    }

    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.fail("unterminated text line");
        };
        let text = std::str::from_utf8(&rest[..end]).or_else(|_| self.fail("text line is not UTF-8"))?;
        self.pos += end + 1;
        Ok(text)
    }

    fn pop(&mut self) -> Result<Id> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return self.fail("stack underflow at a MARK");
        }
        match self.stack.pop() {
            Some(id) => Ok(id),
            None => self.fail("stack underflow"),
        }
    }

    fn top(&self) -> Result<Id> {
        match self.stack.last() {
            Some(&id) => Ok(id),
            None => self.fail("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let Some(mark) = self.marks.pop() else { return self.fail("no MARK on the stack") };
        Ok(self.stack.split_off(mark))
    }

    fn push(&mut self, value: Value<'a>) {
        let id = self.pickle.push(value);
        self.stack.push(id);
    }

    /// A str whose byte length precedes it in `width` bytes.
    fn str_value(&mut self, width: usize) -> Result<()> {
        let n = self.len(width)?;
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).or_else(|_| self.fail("string is not valid UTF-8"))?;
        self.push(Value::Str(Cow::Borrowed(text)));
        Ok(())
    }

    fn uint_value(&mut self, n: usize) -> Result<()> {
        let v = self.uint(n)?;
        self.push(Value::Int(v as i128));
        Ok(())
    }

    /// A little-endian two's-complement integer of `n` bytes.
    fn int_value(&mut self, n: usize) -> Result<()> {
        if n > 16 {
            return self.fail(format!("integer of {n} bytes is too large"));
        }
        let bytes = self.take(n)?;
        let mut v: i128 = bytes.iter().rev().fold(0i128, |acc, &b| (acc << 8) | b as i128);
        if n > 0 && n < 16 && bytes[n - 1] & 0x80 != 0 {
            v -= 1i128 << (8 * n);
        }
        self.push(Value::Int(v));
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> Result<()> {
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    /// BINPUT / LONG_BINPUT: the memo key follows in `width` bytes.
    fn memo_put_at(&mut self, width: usize) -> Result<()> {
        let key = self.uint(width)?;
        self.memo_put(key)
    }

    /// BINGET / LONG_BINGET: the memo key follows in `width` bytes.
    fn memo_get_at(&mut self, width: usize) -> Result<()> {
        let key = self.uint(width)?;
        match self.memo.get(&key) {
            Some(&id) => {
                self.stack.push(id);
                Ok(())
            }
            None => self.fail(format!("memo key {key} was never stored")),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        match lookup_global(module, name, self.allow) {
            Some(g) => {
                self.push(Value::Global(g));
                Ok(())
            }
            None if module.starts_with("dnnlib.tflib") => self.fail(format!(
                "refusing global '{module}.{name}': this is a TensorFlow-era StyleGAN2 pickle; convert it with stylegan2-ada-pytorch's legacy.py first"
            )),
            None => self.fail(format!(
                "refusing global '{module}.{name}': it is not a tensor, container or network record, and editone never runs code from a file"
            )),
        }
    }

    fn run(&mut self) -> Result<()> {
        loop {
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    let proto = self.take(1)?[0];
                    if !(2..=5).contains(&proto) {
                        return self.fail(format!("pickle protocol {proto} is not supported (2 to 5 are)"));
                    }
                }
                0x95 => {
                    let n = self.len(8)?;
                    if n > self.data.len() - self.pos {
                        return self.fail(format!("FRAME of {n} bytes is longer than the file"));
                    }
                }
                b'.' => {
                    self.pickle.root = self.pop()?;
                    return Ok(());
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (self.pickle.as_str(module), self.pickle.as_str(name)) {
                        (Some(m), Some(n)) => {
                            let (m, n) = (m.to_string(), n.to_string());
                            self.global(&m, &n)?
                        }
                        _ => return self.fail("STACK_GLOBAL needs two strings"),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let value = self.reduce(func, args)?;
                    self.push(value);
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let value = self.new_object(class, args)?;
                    self.push(value);
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    self.build(target, state)?;
                }
                b'}' => self.push(Value::Dict { items: Vec::new(), attrs: Vec::new() }),
                b'd' => {
                    let items = self.pop_mark()?;
                    let items = self.pairs(items)?;
                    self.push(Value::Dict { items, attrs: Vec::new() });
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![(k, v)]
                    } else {
                        let flat = self.pop_mark()?;
                        self.pairs(flat)?
                    };
                    let target = self.top()?;
                    match &mut self.pickle.values[target] {
                        Value::Dict { items: d, .. } => d.extend(items),
                        other => {
                            let kind = other.kind_name();
                            return self.fail(format!("SETITEM on a {kind}"));
                        }
                    }
                }
                b']' => self.push(Value::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items));
                }
                b'a' | b'e' => {
                    let items = if op == b'a' { vec![self.pop()?] } else { self.pop_mark()? };
                    self.extend_top(items, false)?
                }
                0x8f => self.push(Value::Set(Vec::new())),
                0x90 => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, true)?
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Value::Set(items));
                }
                b')' => self.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>>>()?;
                    items.reverse();
                    self.push(Value::Tuple(items));
                }
                b'X' => self.str_value(4)?,
                0x8c => self.str_value(1)?,
                0x8d => self.str_value(8)?,
                b'B' | b'C' | 0x8e | 0x96 => {
                    let width = match op {
                        b'C' => 1,
                        b'B' => 4,
                        _ => 8,
                    };
                    let n = self.len(width)?;
                    let bytes = self.take(n)?;
                    self.push(Value::Bytes(Cow::Borrowed(bytes)));
                }
                b'J' => self.int_value(4)?,
                b'K' => self.uint_value(1)?,
                b'M' => self.uint_value(2)?,
                0x8a => {
                    let n = self.len(1)?;
                    self.int_value(n)?
                }
                0x8b => {
                    let n = self.len(4)?;
                    self.int_value(n)?
                }
                b'G' => {
                    let bits = self.take(8)?;
                    let value = f64::from_be_bytes(bits.try_into().expect("8 bytes"));
                    self.push(Value::Float(value));
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'q' => self.memo_put_at(1)?,
                b'r' => self.memo_put_at(4)?,
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?
                }
                b'h' => self.memo_get_at(1)?,
                b'j' => self.memo_get_at(4)?,
                b'Q' => {
                    let pid = self.pop()?;
                    let Some(load) = self.persistent.as_mut() else {
                        return self.fail("unexpected persistent id (BINPERSID)");
                    };
                    let value = load(&self.pickle, pid).map_err(|e| e.context(format!("pickle (at byte {})", self.pos)))?;
                    self.push(value);
                }
                other => {
                    return self.fail(format!(
                        "unsupported opcode 0x{other:02x} ('{}'); only protocols 2 to 5 are read",
                        (other as char).escape_default()
                    ))
                }
            }
        }
    }

    /// APPEND(S) onto the list, or ADDITEMS onto the set (`set`), under the items.
    fn extend_top(&mut self, items: Vec<Id>, set: bool) -> Result<()> {
        let target = self.top()?;
        match (&mut self.pickle.values[target], set) {
            (Value::List(v), false) | (Value::Set(v), true) => {
                v.extend(items);
                Ok(())
            }
            (other, _) => {
                let kind = other.kind_name();
                self.fail(format!("{} on a {kind}", if set { "ADDITEMS" } else { "APPEND" }))
            }
        }
    }

    fn pairs(&self, flat: Vec<Id>) -> Result<Vec<(Id, Id)>> {
        if !flat.len().is_multiple_of(2) {
            return self.fail("odd number of items for a dict");
        }
        Ok(flat.chunks(2).map(|kv| (kv[0], kv[1])).collect())
    }

    fn args(&self, args: Id, what: &str, min: usize, max: usize) -> Result<Vec<Id>> {
        match self.pickle.get(args) {
            Value::Tuple(items) if (min..=max).contains(&items.len()) => Ok(items.clone()),
            Value::Tuple(items) => self.fail(format!("{what} takes {min} to {max} arguments, got {}", items.len())),
            other => self.fail(format!("{what} arguments must be a tuple, got a {}", other.kind_name())),
        }
    }

    fn callable(&self, func: Id) -> Result<Global> {
        match self.pickle.get(func) {
            Value::Global(g) => Ok(*g),
            other => self.fail(format!("REDUCE of a {}, which is not an allowed callable", other.kind_name())),
        }
    }

    /// REDUCE: call an allow-listed global, which only ever builds a value.
    fn reduce(&mut self, func: Id, args: Id) -> Result<Value<'a>> {
        match self.callable(func)? {
            Global::PersistentObject => {
                let a = self.args(args, "_reconstruct_persistent_obj", 1, 1)?;
                if self.pickle.dict_items(a[0]).is_none() {
                    return self.fail("_reconstruct_persistent_obj needs a meta dict");
                }
                Ok(Value::Persistent(a[0]))
            }
            Global::RebuildTensor => self.rebuild_tensor(args),
            Global::RebuildParameter => {
                let a = self.args(args, "_rebuild_parameter", 3, 4)?;
                match self.pickle.get(a[0]) {
                    Value::Tensor(t) => Ok(Value::Tensor(t.clone())),
                    other => self.fail(format!("_rebuild_parameter of a {}", other.kind_name())),
                }
            }
            Global::LoadFromBytes => {
                let a = self.args(args, "_load_from_bytes", 1, 1)?;
                let context = |e: Error| e.context(format!("storage blob ending at byte {}", self.pos));
                match self.pickle.get(a[0]) {
                    Value::Bytes(Cow::Borrowed(blob)) => {
                        let (elem, data) = legacy_storage(blob).map_err(context)?;
                        Ok(Value::Storage { elem, data: Cow::Borrowed(data) })
                    }
                    // Protocol 2 spells bytes as latin-1 text, decoded into a copy.
                    Value::Bytes(Cow::Owned(blob)) => {
                        let (elem, data) = legacy_storage(blob).map_err(context)?;
                        Ok(Value::Storage { elem, data: Cow::Owned(data.to_vec()) })
                    }
                    other => self.fail(format!("_load_from_bytes of a {}", other.kind_name())),
                }
            }
            Global::DictLike => {
                let a = self.args(args, "OrderedDict", 0, 1)?;
                let mut items = Vec::new();
                if let Some(&pairs) = a.first() {
                    for &pair in self.pickle.as_seq(pairs).unwrap_or(&[]) {
                        match self.pickle.as_seq(pair) {
                            Some(&[k, v]) => items.push((k, v)),
                            _ => return self.fail("OrderedDict items must be pairs"),
                        }
                    }
                }
                Ok(Value::Dict { items, attrs: Vec::new() })
            }
            Global::Set => {
                let a = self.args(args, "set", 0, 1)?;
                let items = match a.first() {
                    Some(&seq) => match self.pickle.as_seq(seq) {
                        Some(items) => items.to_vec(),
                        None => return self.fail("set() needs a list"),
                    },
                    None => Vec::new(),
                };
                Ok(Value::Set(items))
            }
            Global::Encode => {
                let a = self.args(args, "_codecs.encode", 2, 2)?;
                match (self.pickle.as_str(a[0]), self.pickle.as_str(a[1])) {
                    (Some(text), Some("latin1" | "latin-1")) => {
                        let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c as u32).ok()).collect();
                        match bytes {
                            Some(b) => Ok(Value::Bytes(Cow::Owned(b))),
                            None => self.fail("_codecs.encode: text is not latin-1"),
                        }
                    }
                    _ => self.fail("_codecs.encode needs a str and 'latin1'"),
                }
            }
            Global::NumpyDtype => {
                let a = self.args(args, "numpy.dtype", 1, 3)?;
                match self.pickle.as_str(a[0]) {
                    Some(code) if numpy_elem(code).is_some() => Ok(Value::Dtype(code.to_string(), b'|')),
                    Some(code) => self.fail(format!("numpy dtype '{code}' is not supported")),
                    None => self.fail("numpy.dtype needs a type string"),
                }
            }
            Global::NumpyScalar => {
                let a = self.args(args, "numpy scalar", 2, 2)?;
                self.numpy_scalar(a[0], a[1])
            }
            Global::NumpyReconstruct => {
                let a = self.args(args, "numpy _reconstruct", 3, 3)?;
                if !matches!(self.pickle.get(a[0]), Value::Global(Global::NumpyNdarray)) {
                    return self.fail("numpy _reconstruct of something other than ndarray");
                }
                Ok(Value::Array { dtype: None, shape: Vec::new(), data: None })
            }
            g @ (Global::NumpyNdarray | Global::Storage(_)) => self.fail(format!("{g:?} cannot be called")),
        }
    }

    /// NEWOBJ: only the dict-like classes may be instantiated.
    fn new_object(&mut self, class: Id, args: Id) -> Result<Value<'a>> {
        match self.pickle.get(class) {
            Value::Global(Global::DictLike) => {
                self.args(args, "dict-like class", 0, 0)?;
                Ok(Value::Dict { items: Vec::new(), attrs: Vec::new() })
            }
            other => self.fail(format!("NEWOBJ of a {}, which editone does not instantiate", other.kind_name())),
        }
    }

    /// BUILD: attributes of a dict-like object, a dtype's byte order, a
    /// numpy array's content. Nothing else takes state.
    fn build(&mut self, target: Id, state: Id) -> Result<()> {
        if matches!(self.pickle.get(state), Value::None) {
            return Ok(());
        }
        match self.pickle.get(target) {
            Value::Dict { .. } => {
                let Some(new) = self.pickle.dict_items(state).map(<[_]>::to_vec) else {
                    return self.fail(format!("BUILD of a dict with a {} state", self.pickle.kind_name(state)));
                };
                if let Value::Dict { attrs, .. } = &mut self.pickle.values[target] {
                    attrs.extend(new);
                }
                Ok(())
            }
            Value::Dtype(..) => {
                let order = match self.pickle.as_seq(state).and_then(|s| s.get(1)).and_then(|&o| self.pickle.as_str(o)) {
                    Some(o) if o.len() == 1 => o.as_bytes()[0],
                    _ => return self.fail("numpy dtype state has no byte order"),
                };
                if let Value::Dtype(_, b) = &mut self.pickle.values[target] {
                    *b = order;
                }
                Ok(())
            }
            Value::Array { .. } => {
                // (version, shape, dtype, is_fortran, raw bytes)
                let s = match self.pickle.as_seq(state) {
                    Some(s) if s.len() == 5 => s.to_vec(),
                    _ => return self.fail("numpy array state must be a 5-tuple"),
                };
                let shape = self.shape(s[1], "numpy array shape")?;
                if !matches!(self.pickle.get(s[2]), Value::Dtype(..)) || !matches!(self.pickle.get(s[4]), Value::Bytes(_)) {
                    return self.fail("numpy array state needs a dtype and raw bytes");
                }
                if self.pickle.as_int(s[3]) != Some(0) {
                    return self.fail("Fortran-ordered numpy arrays are not supported");
                }
                self.pickle.values[target] = Value::Array { dtype: Some(s[2]), shape, data: Some(s[4]) };
                Ok(())
            }
            other => self.fail(format!("BUILD of a {}, which takes no state", other.kind_name())),
        }
    }

    fn shape(&self, id: Id, what: &str) -> Result<Vec<usize>> {
        let Some(items) = self.pickle.as_seq(id) else { return self.fail(format!("{what} must be a tuple")) };
        if items.len() > 8 {
            return self.fail(format!("{what} has {} dimensions (at most 8)", items.len()));
        }
        items
            .iter()
            .map(|&d| match self.pickle.as_int(d) {
                Some(v) if (0..=(1i128 << 40)).contains(&v) => Ok(v as usize),
                _ => self.fail(format!("{what} has an invalid entry")),
            })
            .collect()
    }

    fn rebuild_tensor(&self, args: Id) -> Result<Value<'a>> {
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

    fn numpy_scalar(&self, dtype: Id, bytes: Id) -> Result<Value<'a>> {
        let (code, order) = match self.pickle.get(dtype) {
            Value::Dtype(code, order) => (code.as_str(), *order),
            _ => return self.fail("numpy scalar needs a dtype"),
        };
        let Value::Bytes(raw) = self.pickle.get(bytes) else { return self.fail("numpy scalar needs bytes") };
        if order == b'>' {
            return self.fail("big-endian numpy scalars are not supported");
        }
        let elem = numpy_elem(code).expect("checked when the dtype was built");
        if raw.len() != elem.size() {
            return self.fail(format!("numpy {code} scalar has {} bytes", raw.len()));
        }
        Ok(scalar_value(elem, raw))
    }
}

fn numpy_elem(code: &str) -> Option<Elem> {
    Some(match code {
        "f8" => Elem::F64,
        "f4" => Elem::F32,
        "f2" => Elem::F16,
        "i8" => Elem::I64,
        "i4" => Elem::I32,
        "i2" => Elem::I16,
        "i1" => Elem::I8,
        "u1" => Elem::U8,
        "b1" => Elem::Bool,
        _ => return None,
    })
}

fn scalar_value<'a>(elem: Elem, raw: &[u8]) -> Value<'a> {
    let mut le = [0u8; 8];
    le[..raw.len()].copy_from_slice(raw);
    match elem {
        Elem::F64 => Value::Float(f64::from_le_bytes(le)),
        Elem::F32 => Value::Float(f32::from_le_bytes(le[..4].try_into().expect("4 bytes")) as f64),
        Elem::F16 | Elem::BF16 => Value::Float(half_to_f64(elem, u16::from_le_bytes([le[0], le[1]]))),
        Elem::I64 => Value::Int(i64::from_le_bytes(le) as i128),
        Elem::I32 => Value::Int(i32::from_le_bytes(le[..4].try_into().expect("4 bytes")) as i128),
        Elem::I16 => Value::Int(i16::from_le_bytes([le[0], le[1]]) as i128),
        Elem::I8 => Value::Int(le[0] as i8 as i128),
        Elem::U8 => Value::Int(le[0] as i128),
        Elem::Bool => Value::Bool(le[0] != 0),
    }
}

fn half_to_f64(elem: Elem, bits: u16) -> f64 {
    if elem == Elem::BF16 {
        return f32::from_bits((bits as u32) << 16) as f64;
    }
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((bits >> 10) & 0x1f) as i32;
    let frac = (bits & 0x3ff) as f64;
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
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

    fn parse(bytes: &[u8]) -> Result<Pickle<'_>> {
        Pickle::parse(bytes, AllowList::Checkpoint, None).map(|(p, _)| p)
    }

    fn message(bytes: &[u8]) -> String {
        match parse(bytes) {
            Ok(_) => panic!("parsed but should not"),
            Err(e) => {
                assert_eq!(e.kind, crate::ErrorKind::Format);
                e.message
            }
        }
    }

    #[test]
    fn memoised_containers_stay_shared() {
        // l = []; d = {'a': l, 'b': l}; l.append(7), written as pickle does:
        // the list is memoised empty and filled after both references.
        let bytes = b"\x80\x04}q\x00(X\x01\x00\x00\x00aq\x01]q\x02X\x01\x00\x00\x00bq\x03h\x02uh\x02K\x07a0.";
        let p = parse(bytes).unwrap();
        let a = p.dict_get(p.root, "a").unwrap();
        let b = p.dict_get(p.root, "b").unwrap();
        assert_eq!(a, b);
        assert_eq!(p.as_seq(a).map(|s| s.len()), Some(1));
    }

    #[test]
    fn declared_sizes_beyond_the_input_are_refused_before_allocating() {
        let huge_str = [b"\x80\x04\x8d".as_slice(), &u64::MAX.to_le_bytes(), b"."].concat();
        assert!(message(&huge_str).contains("truncated"));
        let huge_bytes = [b"\x80\x04\x8e".as_slice(), &(1u64 << 62).to_le_bytes(), b"."].concat();
        assert!(message(&huge_bytes).contains("truncated"));
        let huge_frame = [b"\x80\x04\x95".as_slice(), &(1u64 << 40).to_le_bytes(), b"N."].concat();
        assert!(message(&huge_frame).contains("FRAME"));
        assert!(message(b"\x80\x04j\xff\xff\xff\xff.").contains("memo key"));
    }

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

    #[test]
    fn malformed_streams_are_errors() {
        for bad in [&b""[..], b"\x80", b"\x80\x06N.", b"\x80\x02", b"\x80\x02N", b"\x80\x02.", b"\x80\x02(.", b"\x80\x02e.", b"\x80\x02Ns.", b"(S'x'\n."] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

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
