//! Progress reporting and cancellation for long operations.

use crate::error::{Error, Result};

/// Called with (stage, done, total); returning false cancels the operation.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64) -> bool;

/// Reports one step and turns a cancel request into [`Error::cancelled`].
pub fn report(progress: &mut Option<Progress<'_>>, stage: &str, done: u64, total: u64) -> Result<()> {
    let keep_going = progress.as_mut().is_none_or(|callback| callback(stage, done, total));
    if keep_going {
        Ok(())
    } else {
        Err(Error::cancelled())
    }
}
