//! The pickle machine: it reads opcodes, keeps the stack, its marks and
//! the memo, and builds values in the arena. Names go through the
//! allow-list (`allow_list.rs`) as soon as GLOBAL or STACK_GLOBAL reads
//! them; REDUCE, NEWOBJ and BUILD are in `calls.rs`.

use super::allow_list::{self, AllowList};
use super::value::{Id, PersistentLoad, Pickle, Value};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;

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
}

/// The state of one parse: the input and the read position, the stack
/// with the depths of open MARKs, the memo, and the values built so far.
pub(super) struct Machine<'p, 'a> {
    /// The stream.
    data: &'a [u8],
    /// The next byte to read; error messages cite it.
    pub(super) pos: usize,
    /// The names this stream may use.
    allow: AllowList,
    /// The values built so far.
    pub(super) pickle: Pickle<'a>,
    /// The stack, as arena indices.
    stack: Vec<Id>,
    /// The stack depth at each MARK not yet consumed.
    marks: Vec<usize>,
    /// PUT keys to values, shared, never copied.
    memo: HashMap<u64, Id>,
    /// Where BINPERSID ids go; None refuses them.
    persistent: Option<PersistentLoad<'p, 'a>>,
}

impl<'a> Machine<'_, 'a> {
    /// An error citing the read position, so a damaged file can be found.
    pub(super) fn fail<T>(&self, what: impl std::fmt::Display) -> Result<T> {
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

    /// GLOBAL / STACK_GLOBAL: pushes the allowed name's tag, or refuses it.
    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        match allow_list::resolve(module, name, self.allow) {
            Ok(g) => {
                self.push(Value::Global(g));
                Ok(())
            }
            Err(refused) => self.fail(refused),
        }
    }

    /// Executes opcodes until STOP. Each opcode pushes at most one value,
    /// which keeps the arena within a multiple of the input's size.
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

    /// The key/value pairs of a flat run of items, for DICT and SETITEMS.
    fn pairs(&self, flat: Vec<Id>) -> Result<Vec<(Id, Id)>> {
        if !flat.len().is_multiple_of(2) {
            return self.fail("odd number of items for a dict");
        }
        Ok(flat.chunks(2).map(|kv| (kv[0], kv[1])).collect())
    }

    /// The items of a call's argument tuple, `min` to `max` of them.
    pub(super) fn args(&self, args: Id, what: &str, min: usize, max: usize) -> Result<Vec<Id>> {
        match self.pickle.get(args) {
            Value::Tuple(items) if (min..=max).contains(&items.len()) => Ok(items.clone()),
            Value::Tuple(items) => self.fail(format!("{what} takes {min} to {max} arguments, got {}", items.len())),
            other => self.fail(format!("{what} arguments must be a tuple, got a {}", other.kind_name())),
        }
    }

    /// A tensor's size or stride, or a numpy array's shape: at most eight
    /// entries of at most 2^40 each, so that a size times a stride fits.
    pub(super) fn shape(&self, id: Id, what: &str) -> Result<Vec<usize>> {
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
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{message, parse};

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
    fn malformed_streams_are_errors() {
        for bad in [&b""[..], b"\x80", b"\x80\x06N.", b"\x80\x02", b"\x80\x02N", b"\x80\x02.", b"\x80\x02(.", b"\x80\x02e.", b"\x80\x02Ns.", b"(S'x'\n."] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
