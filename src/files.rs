//! The user's files: bounded reading and atomic writing.
//!
//! Files are sacred. Every file editone writes first goes to a hidden
//! temporary name in the target folder and is then published under its
//! name in one step, so that a reader (or a process killed mid-write)
//! only ever sees the old file or the new one, whole. An existing file is
//! replaced only when the caller says so. Every read is capped by what is
//! actually read, not by the size the system reports, and only regular
//! files are read, so a device or a pipe can neither hang nor exhaust us.

use crate::error::{Error, ErrorKind, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind as IoKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a write does when its path already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Leave the existing file alone and fail with [`ErrorKind::Exists`].
    Refuse,
    /// Replace it, atomically.
    Replace,
}

/// Reads the whole of the regular file `path`, refusing it once more than
/// `cap` bytes have been read. `what` names the file in messages ("preset").
pub fn read_capped(path: &Path, what: &str, cap: u64) -> Result<Vec<u8>> {
    let file = open_regular(path, what)?;
    let hint = file.metadata().map(|m| m.len().min(cap)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(hint as usize);
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Io, format!("{what} '{}': {e}", path.display())))?;
    if bytes.len() as u64 > cap {
        return Err(Error::format(format!(
            "{what} '{}' is larger than {}; it cannot be one",
            path.display(),
            byte_size(cap)
        )));
    }
    Ok(bytes)
}

/// Opens `path` for reading if it is a regular file. O_NONBLOCK keeps the
/// open of a FIFO without a writer from blocking; it means nothing for
/// regular files, the only kind let through.
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    let io = |e: std::io::Error| Error::new(ErrorKind::Io, format!("{what} '{}': {e}", path.display()));
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(Error::new(ErrorKind::Io, format!("{what} '{}' is not a regular file", path.display())));
    }
    Ok(file)
}

/// "64 MiB", for messages.
fn byte_size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// Writes `path` through `write`, atomically: the bytes go to a hidden
/// temporary file beside it, which is published only once `write` has
/// succeeded. On any failure (or a panic) the temporary file is removed
/// and `path` is as it was.
///
/// The guarantee covers a process that is killed or fails; the data is not
/// forced to disk (no fsync), so after a power loss the file system's own
/// ordering decides.
pub fn write_atomic(path: &Path, existing: Existing, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let io = |e: std::io::Error| Error::new(ErrorKind::Io, format!("cannot write '{}': {e}", path.display()));
    if existing == Existing::Refuse && path.symlink_metadata().is_ok() {
        return Err(exists(path));
    }
    let temp = TempFile::create(path).map_err(io)?;
    let mut out = BufWriter::new(temp.file.try_clone().map_err(io)?);
    write(&mut out)?;
    out.flush().map_err(io)?;
    drop(out);
    temp.publish(path, existing)
}

/// The error for an existing output that may not be replaced.
fn exists(path: &Path) -> Error {
    Error::new(ErrorKind::Exists, format!("'{}' exists; replacing it was not asked for", path.display()))
}

/// A temporary file beside its destination, removed unless published.
struct TempFile {
    path: PathBuf,
    file: File,
    published: bool,
}

impl TempFile {
    /// Creates ".NAME.PID-N.editone-tmp" in the destination's folder; the
    /// leading dot keeps it out of globs such as *.png.
    fn create(dest: &Path) -> std::io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = dest.file_name().ok_or_else(|| std::io::Error::new(IoKind::InvalidInput, "the path names no file"))?;
        // Leave room under NAME_MAX (255) for the prefix and suffix.
        let stem: String = name.to_string_lossy().chars().take(160).collect();
        let unique = format!("{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = dest.with_file_name(format!(".{stem}.{unique}.editone-tmp"));
        let file = OpenOptions::new().write(true).create_new(true).mode(0o666).open(&path)?;
        Ok(TempFile { path, file, published: false })
    }

    /// Gives the temporary file its final name. Without replacing, a hard
    /// link publishes it only if the name is free (atomically, unlike a
    /// check followed by a rename); where the file system has no hard
    /// links, the check and the rename are all there is.
    fn publish(mut self, dest: &Path, existing: Existing) -> Result<()> {
        let io = |e: std::io::Error| Error::new(ErrorKind::Io, format!("cannot write '{}': {e}", dest.display()));
        match existing {
            Existing::Replace => std::fs::rename(&self.path, dest).map_err(io)?,
            Existing::Refuse => match std::fs::hard_link(&self.path, dest) {
                Ok(()) => {
                    // The name is published; a leftover temporary link would only be clutter.
                    let _ = std::fs::remove_file(&self.path);
                }
                Err(e) if e.kind() == IoKind::AlreadyExists => return Err(exists(dest)),
                Err(e) if links_unsupported(&e) => {
                    if dest.symlink_metadata().is_ok() {
                        return Err(exists(dest));
                    }
                    std::fs::rename(&self.path, dest).map_err(io)?;
                }
                Err(e) => return Err(io(e)),
            },
        }
        self.published = true;
        Ok(())
    }
}

/// Whether a hard link failed because the file system has none.
fn links_unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EOPNOTSUPP) | Some(libc::EXDEV) | Some(libc::EMLINK))
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_text(path: &Path, existing: Existing, text: &str) -> Result<()> {
        write_atomic(path, existing, |out| out.write_all(text.as_bytes()).map_err(|e| Error::new(ErrorKind::Io, e.to_string())))
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn an_existing_file_is_kept_unless_replacing_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_text(&path, Existing::Refuse, "first").unwrap();
        let err = write_text(&path, Existing::Refuse, "second").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Exists, "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        write_text(&path, Existing::Replace, "third").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "third");
        assert_eq!(entries(dir.path()), ["a.txt"], "no temporary file is left");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomic(&path, Existing::Replace, |out| {
            out.write_all(b"half").unwrap();
            Err(Error::invalid("the encoder failed"))
        })
        .unwrap_err();
        assert_eq!(err.message, "the encoder failed");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(entries(dir.path()), ["a.txt"]);
    }

    #[test]
    fn a_dangling_symlink_is_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.png");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert_eq!(write_text(&link, Existing::Refuse, "x").unwrap_err().kind, ErrorKind::Exists);
        assert!(!dir.path().join("elsewhere").exists(), "nothing is written through the link");
    }

    #[test]
    fn reads_are_capped_by_what_is_read_and_only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        assert_eq!(read_capped(&path, "preset", 1000).unwrap().len(), 1000);
        let err = read_capped(&path, "preset", 999).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Format);
        let err = read_capped(Path::new("/dev/zero"), "preset", 1 << 20).unwrap_err();
        assert!(err.message.contains("not a regular file"), "{err}");
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let err = read_capped(&fifo, "model file", 1 << 20).unwrap_err();
        assert!(err.message.contains("not a regular file"), "a FIFO without a writer neither hangs nor reads: {err}");
    }
}
