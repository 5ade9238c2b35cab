//! What the allowed globals do when a stream calls them: REDUCE, NEWOBJ
//! and BUILD. Each builds one plain value from values already parsed; a
//! call of anything else, or with arguments of the wrong shape, is an
//! error. Tensors are rebuilt in `torch.rs`.

use super::allow_list::Global;
use super::elem::Elem;
use super::machine::Machine;
use super::torch::legacy_storage;
use super::value::{Id, Value};
use crate::error::{Error, Result};
use std::borrow::Cow;

impl<'a> Machine<'_, 'a> {
    /// The tag of REDUCE's callable; anything but an allowed global is refused.
    fn callable(&self, func: Id) -> Result<Global> {
        match self.pickle.get(func) {
            Value::Global(g) => Ok(*g),
            other => self.fail(format!("REDUCE of a {}, which is not an allowed callable", other.kind_name())),
        }
    }

    /// REDUCE: call an allow-listed global, which only ever builds a value.
    pub(super) fn reduce(&mut self, func: Id, args: Id) -> Result<Value<'a>> {
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
    pub(super) fn new_object(&mut self, class: Id, args: Id) -> Result<Value<'a>> {
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
    pub(super) fn build(&mut self, target: Id, state: Id) -> Result<()> {
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

    /// `numpy.core.multiarray.scalar(dtype, bytes)`: one little-endian number.
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

/// The element type of a numpy type code; None for the codes not read.
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

/// The number a scalar's little-endian bytes hold.
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

/// An IEEE half or a bfloat16, widened exactly.
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
