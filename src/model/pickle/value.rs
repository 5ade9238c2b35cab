//! The values a pickle builds, and the arena that holds them: plain data
//! (numbers, strings, bytes, containers) and the few records the allowed
//! globals make (tensors, storages, numpy arrays). Containers hold arena
//! indices, never values, so shared and self-referencing objects need no
//! reference counting.

use super::allow_list::Global;
use super::elem::Elem;
use crate::error::Result;
use std::borrow::Cow;

/// Index of a value in a [`Pickle`]'s arena.
pub type Id = usize;

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
    /// A short name of the value's type, for error messages.
    pub(super) fn kind_name(&self) -> &'static str {
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
    /// The arena; the machine appends to it, and BUILD and SETITEM(S),
    /// APPEND(S) and ADDITEMS change containers in place.
    pub(super) values: Vec<Value<'a>>,
    /// The top-level value.
    pub root: Id,
}

impl<'a> Pickle<'a> {
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

    /// Adds `value` to the arena and returns its index.
    pub(super) fn push(&mut self, value: Value<'a>) -> Id {
        self.values.push(value);
        self.values.len() - 1
    }
}

