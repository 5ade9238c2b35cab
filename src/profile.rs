//! Where a piece of work spends its time, from libtorch's profiler
//! (csrc/profiler.cpp): every operator on the CPU and, on CUDA, every GPU
//! kernel, summed by name. A development tool (`examples/profile.rs`);
//! the profiler is process-wide, so only one profile runs at a time.

use crate::error::{shim_call, Result};
use std::ffi::{c_char, CStr};
use std::sync::Mutex;

/// The time one operator or kernel took in a profile, all calls together.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// Where it ran: "cpu" (an operator, its time including the operators
    /// it called) or "cuda" (a GPU kernel).
    pub device: String,
    /// The operator's or kernel's name.
    pub name: String,
    /// How many times it ran.
    pub calls: u64,
    /// Its time in seconds, all calls together.
    pub seconds: f64,
}

extern "C" {
    fn editone_profile_begin(cuda: bool, error: *mut u8, error_len: usize) -> bool;
    fn editone_profile_end(error: *mut u8, error_len: usize) -> *mut c_char;
    fn editone_profile_free(summary: *mut c_char);
}

/// Serialises profiles: libtorch has one profiler per process.
static PROFILER: Mutex<()> = Mutex::new(());

/// Runs `work` under the profiler (recording GPU kernels too when `cuda`)
/// and returns its result with the time of each operator and kernel, the
/// longest first.
pub fn profile<T>(cuda: bool, work: impl FnOnce() -> T) -> Result<(T, Vec<OpTime>)> {
    let _only_one = PROFILER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut recording = Recording::start(cuda)?;
    let value = work();
    let mut times: Vec<OpTime> = recording.stop()?.lines().filter_map(parse_line).collect();
    times.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    Ok((value, times))
}

/// The profiler while it records; stopped when dropped, so that a panic in
/// the work does not leave it running for the next profile.
struct Recording {
    active: bool,
}

impl Recording {
    fn start(cuda: bool) -> Result<Recording> {
        // SAFETY: the buffer is writable for its length; the C++ side
        // catches every exception.
        shim_call("libtorch's profiler did not start", false, |error, len| unsafe { editone_profile_begin(cuda, error, len) })?;
        Ok(Recording { active: true })
    }

    /// Stops recording and returns the summary text.
    fn stop(&mut self) -> Result<String> {
        self.active = false;
        // SAFETY: as in `start`; a non-null result is a NUL-terminated
        // string that editone_profile_free releases.
        let summary =
            shim_call("libtorch's profiler did not stop", std::ptr::null_mut(), |error, len| unsafe { editone_profile_end(error, len) })?;
        let text = unsafe { CStr::from_ptr(summary) }.to_string_lossy().into_owned();
        unsafe { editone_profile_free(summary) };
        Ok(text)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.active {
            // Unwinding from the work: the summary is of no use.
            let _ = self.stop();
        }
    }
}

/// One summary line: device, calls, nanoseconds and name, tab-separated.
fn parse_line(line: &str) -> Option<OpTime> {
    let mut fields = line.splitn(4, '\t');
    let device = fields.next()?.to_string();
    let calls = fields.next()?.parse().ok()?;
    let nanos: u64 = fields.next()?.parse().ok()?;
    let name = fields.next()?.to_string();
    Some(OpTime { device, name, calls, seconds: nanos as f64 * 1e-9 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn a_profile_names_the_operators_that_ran_and_counts_them() {
        // An operator nothing else in the crate calls, so that tests running
        // beside this one cannot change its count.
        let a = Tensor::randn([64, 64], (Kind::Float, tch::Device::Cpu));
        let (sum, times) = profile(false, || {
            let mut acc = a.shallow_clone();
            for _ in 0..3 {
                acc = acc.cumsum(0, Kind::Float);
            }
            acc.sum(Kind::Float).double_value(&[])
        })
        .expect("the profiler runs on the CPU");
        assert!(sum.is_finite());
        let op = times.iter().find(|t| t.name == "aten::cumsum").expect("cumsum is in the profile");
        assert_eq!((op.device.as_str(), op.calls), ("cpu", 3));
        assert!(op.seconds > 0.0);
        assert!(times.windows(2).all(|w| w[0].seconds >= w[1].seconds), "longest first");
        // Nothing is recorded once the profile ends.
        let (_, again) = profile(false, || ()).expect("a second profile runs");
        assert!(again.iter().all(|t| t.name != "aten::cumsum"));
    }

    #[test]
    fn a_panic_in_the_work_stops_the_profiler() {
        let panicked = std::panic::catch_unwind(|| profile(false, || panic!("work failed")));
        assert!(panicked.is_err());
        let (value, _) = profile(false, || 7).expect("the profiler starts again after a panic");
        assert_eq!(value, 7);
    }

    #[test]
    fn summary_lines_parse_and_malformed_ones_are_skipped() {
        let t = parse_line("cuda\t2\t1500000000\tvoid kernel<float>(a\u{20}b)").expect("parses");
        assert_eq!((t.device.as_str(), t.calls, t.name.as_str()), ("cuda", 2, "void kernel<float>(a b)"));
        assert!((t.seconds - 1.5).abs() < 1e-12);
        assert_eq!(parse_line("cpu\tmany\t1\tx"), None);
        assert_eq!(parse_line("cpu\t1"), None);
    }
}
