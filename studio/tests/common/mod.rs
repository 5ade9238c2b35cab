//! What the studio's integration tests share: starting the built binary
//! and reading the address it prints.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::Duration;

/// The binary under test: $EDITONE_STUDIO, else this crate's build.
pub fn binary() -> String {
    std::env::var("EDITONE_STUDIO").unwrap_or_else(|_| env!("CARGO_BIN_EXE_editone-studio").to_string())
}

/// Starts the studio with `args`, its stderr going to `stderr`; the child,
/// and the first line it prints on stdout ("editone studio:
/// http://127.0.0.1:PORT/") once it does. The reader thread ends when the
/// studio does.
pub fn launch<I, S>(args: I, stderr: Stdio) -> (Child, Receiver<String>)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let binary = binary();
    let mut child = Command::new(&binary)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        let mut text = String::new();
        let mut byte = [0; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            text.push(byte[0] as char);
        }
        let _ = tx.send(text);
    });
    (child, rx)
}

/// The port of the address line, waiting up to `wait` for it.
pub fn port(address: &Receiver<String>, wait: Duration) -> Result<u16, String> {
    let line = address.recv_timeout(wait).map_err(|_| format!("the studio did not print its address within {} s", wait.as_secs()))?;
    line.trim_end_matches('/').rsplit(':').next().and_then(|p| p.parse().ok()).ok_or_else(|| format!("the studio printed '{line}', not its address"))
}
