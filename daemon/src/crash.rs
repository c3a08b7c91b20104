//! Panics at the process edge. A panic is a bug, but the admin running `orgsync` or reading
//! the daemon's journal should get one line saying what broke and what to do, not a stack dump,
//! and the process should end with an error exit code rather than the runtime's 101.

use std::panic::PanicHookInfo;

/// Replaces the default panic output with one line handed to `report` (stderr for the CLI,
/// the log for the daemon). `RUST_BACKTRACE=1` still adds the backtrace, for a bug report.
pub fn report_panics_with(report: fn(&str)) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(&describe(info));
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            default(info);
        }
    }));
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    format!(
        "internal error: {message}{at}. This is a bug in orgsync {}; nothing was recorded for the run it stopped. Please report it with the command that ran (RUST_BACKTRACE=1 adds a backtrace)",
        env!("CARGO_PKG_VERSION")
    )
}

/// Runs `work`, returning `None` when it panicked (the hook has reported it by then).
pub fn catch<T>(work: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).ok()
}
