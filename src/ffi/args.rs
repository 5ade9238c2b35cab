//! The host's pointers, typed. An exported function takes each raw pointer
//! it receives into one of these types in a single `unsafe` block, whose
//! SAFETY note is the header's promise for that call. From then on the
//! checks (NULL, length, alignment, UTF-8, struct_size) and the reads and
//! writes are safe methods, so that function bodies are plain Rust and
//! every unchecked assumption sits at the one place the host makes it.

use crate::error::{Error, Result};
use std::ffi::{c_char, CStr};
use std::marker::PhantomData;

/// A host array of `len` elements the call reads.
pub(super) struct In<'a, T> {
    ptr: *const T,
    len: usize,
    what: &'static str,
    _call: PhantomData<&'a T>,
}

impl<'a, T> In<'a, T> {
    /// # Safety
    /// `ptr` is NULL or points to `len` initialised elements that stay
    /// valid and unchanged for `'a` (the call).
    pub unsafe fn new(ptr: *const T, len: usize, what: &'static str) -> Self {
        In { ptr, len, what, _call: PhantomData }
    }

    /// Whether the host passed NULL (allowed where the array is optional).
    pub fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    /// The elements; NULL, an empty or an impossible length, or a
    /// misaligned pointer is an error naming the argument.
    pub fn get(&self) -> Result<&'a [T]> {
        check_array(self.ptr, self.len, self.what)?;
        // SAFETY: checked non-NULL, aligned and of a possible size; `new`'s
        // contract gives the rest.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }
}

/// A host array of `len` elements the call writes.
pub(super) struct InOut<'a, T> {
    ptr: *mut T,
    len: usize,
    what: &'static str,
    _call: PhantomData<&'a mut T>,
}

impl<'a, T> InOut<'a, T> {
    /// # Safety
    /// `ptr` is NULL or points to `len` elements that the call may write
    /// and nothing else accesses for `'a` (the call).
    pub unsafe fn new(ptr: *mut T, len: usize, what: &'static str) -> Self {
        InOut { ptr, len, what, _call: PhantomData }
    }

    /// Whether the host passed NULL (allowed where the array is optional).
    pub fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    /// The elements, checked as [`In::get`] checks them.
    pub fn get(self) -> Result<&'a mut [T]> {
        check_array(self.ptr, self.len, self.what)?;
        // SAFETY: checked as in `In::get`; `new`'s contract gives exclusive
        // access, and `self` is consumed so the slice is made once.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) })
    }
}

fn check_array<T>(ptr: *const T, len: usize, what: &str) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    if len == 0 {
        return Err(Error::invalid(format!("{what} has length 0")));
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(Error::invalid(format!("{what} is not aligned for its element type")));
    }
    if len.checked_mul(std::mem::size_of::<T>()).is_none_or(|b| b > isize::MAX as usize) {
        return Err(Error::invalid(format!("{what} length {len} is too large")));
    }
    Ok(())
}

/// One value the call writes through a host pointer.
pub(super) struct Out<'a, T> {
    ptr: *mut T,
    what: &'static str,
    _call: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// # Safety
    /// `ptr` is NULL or points to a `T` the call may overwrite.
    pub unsafe fn new(ptr: *mut T, what: &'static str) -> Self {
        Out { ptr, what, _call: PhantomData }
    }

    /// Refuses NULL: called before any work, so that a call with nowhere
    /// to put its result does nothing.
    pub fn required(self) -> Result<Self> {
        if self.ptr.is_null() {
            Err(Error::invalid(format!("{} is NULL", self.what)))
        } else {
            Ok(self)
        }
    }

    /// Whether the host passed NULL (allowed where the result is optional).
    pub fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    /// Writes `value` to a required result: NULL is an error.
    pub fn put(self, value: T) -> Result<()> {
        self.required()?.write(value);
        Ok(())
    }

    /// Writes `value`; NULL (an optional result the host does not want)
    /// writes nothing.
    pub fn write(self, value: T) {
        if !self.ptr.is_null() {
            // SAFETY: non-NULL, and `new`'s contract makes it writable.
            unsafe { self.ptr.write(value) }
        }
    }
}

impl<T: Copy> Out<'_, T> {
    /// Writes a struct whose first field is `uint32_t struct_size`, set by
    /// the host to the size it knows: only that many bytes are written, and
    /// struct_size becomes the size written.
    pub fn write_sized(self, value: T) -> Result<()> {
        let out = self.required()?;
        // SAFETY: non-NULL; `new`'s contract makes at least struct_size
        // bytes writable, and struct_size is the struct's first field.
        let size = unsafe { (out.ptr as *const u32).read_unaligned() } as usize;
        if size < std::mem::size_of::<u32>() {
            return Err(Error::invalid(format!("{}.struct_size is {size}; set it to sizeof the struct", out.what)));
        }
        let n = size.min(std::mem::size_of::<T>());
        // SAFETY: n is at most both the host's size and ours.
        unsafe {
            std::ptr::copy_nonoverlapping(&value as *const T as *const u8, out.ptr as *mut u8, n);
            (out.ptr as *mut u32).write_unaligned(n as u32);
        }
        Ok(())
    }
}

/// A NUL-terminated string argument.
pub(super) struct Str<'a> {
    ptr: *const c_char,
    what: &'static str,
    _call: PhantomData<&'a c_char>,
}

impl<'a> Str<'a> {
    /// # Safety
    /// `ptr` is NULL or points to a NUL-terminated string that stays valid
    /// and unchanged for `'a` (the call).
    pub unsafe fn new(ptr: *const c_char, what: &'static str) -> Self {
        Str { ptr, what, _call: PhantomData }
    }

    /// The string; NULL or invalid UTF-8 is an error naming the argument.
    pub fn get(&self) -> Result<&'a str> {
        self.optional()?.ok_or_else(|| Error::invalid(format!("{} is NULL", self.what)))
    }

    /// The string, or None for NULL.
    pub fn optional(&self) -> Result<Option<&'a str>> {
        if self.ptr.is_null() {
            return Ok(None);
        }
        // SAFETY: non-NULL; `new`'s contract gives a valid C string.
        let text = unsafe { CStr::from_ptr(self.ptr) };
        text.to_str().map(Some).map_err(|_| Error::invalid(format!("{} is not valid UTF-8", self.what)))
    }
}

/// An options struct whose first field is `uint32_t struct_size`.
pub(super) struct Options<'a, T> {
    ptr: *const T,
    what: &'static str,
    _call: PhantomData<&'a T>,
}

impl<T: Copy> Options<'_, T> {
    /// # Safety
    /// `ptr` is NULL or points to at least struct_size readable bytes whose
    /// first four are struct_size.
    pub unsafe fn new(ptr: *const T, what: &'static str) -> Self {
        Options { ptr, what, _call: PhantomData }
    }

    /// The options: NULL means `defaults`; a host built against an older,
    /// smaller struct gets the defaults for the fields it does not know.
    pub fn read(&self, defaults: T) -> Result<T> {
        if self.ptr.is_null() {
            return Ok(defaults);
        }
        // SAFETY: non-NULL; the first field is struct_size (`new`).
        let size = unsafe { (self.ptr as *const u32).read_unaligned() } as usize;
        if size < std::mem::size_of::<u32>() {
            return Err(Error::invalid(format!(
                "{}.struct_size is {size}; initialise it with its _init function",
                self.what
            )));
        }
        let mut value = defaults;
        let n = size.min(std::mem::size_of::<T>());
        // SAFETY: n bytes are readable (`new`) and fit in `value`.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr as *const u8, &mut value as *mut T as *mut u8, n) };
        Ok(value)
    }
}

/// The size query of every call that fills a host buffer: `needed` (may be
/// NULL) receives `count`, the elements the full result takes. With `buf`
/// NULL the call only reports sizes, and returns false (nothing to fill);
/// one that would then report nothing at all (buf and needed NULL, and no
/// `other_reports` such as a width) is refused, since it can only be a
/// mistake. Otherwise it returns true: fill `buf`.
pub(super) fn size_query<T>(count: usize, buf: &InOut<'_, T>, needed: Out<'_, usize>, other_reports: bool) -> Result<bool> {
    if buf.is_null() && needed.is_null() && !other_reports {
        return Err(Error::invalid("buf and needed are both NULL: the call would do nothing"));
    }
    needed.write(count);
    Ok(!buf.is_null())
}
