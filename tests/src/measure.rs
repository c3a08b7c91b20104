//! What the benchmarks measure with: GNU `time -v` (wall, CPU, peak RSS), medians, and a line
//! describing the machine, shared by `orgsync-bench` and `orgsync-bench-cloud`.

use std::process::{Command, Stdio};
use std::time::Instant;

/// One `time -v` measurement.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub wall: f64,
    pub cpu: f64,
    pub rss_mib: f64,
}

/// The CPU, core count, load average and build, for the first line of a report.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "Machine: {cpu}, {cores} cores; load average at start {}; {} build.",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if cfg!(debug_assertions) {
            "DEBUG (numbers not representative)"
        } else {
            "release"
        }
    )
}

/// Runs `command` under GNU time and parses its report.
pub fn timed(mut command: Command) -> Usage {
    // Wall time from here: GNU time prints it in hundredths of a second only.
    let started = Instant::now();
    let output = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run /usr/bin/time");
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    let field = |name: &str| -> &str {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim_start_matches(':').trim())
            .unwrap_or_else(|| panic!("no {name:?} in time's output:\n{text}"))
    };
    let user: f64 = field("User time (seconds)").parse().unwrap_or(0.0);
    let system: f64 = field("System time (seconds)").parse().unwrap_or(0.0);
    let rss: f64 = field("Maximum resident set size (kbytes)")
        .parse()
        .unwrap_or(0.0);
    Usage {
        wall,
        cpu: user + system,
        rss_mib: rss / 1024.0,
    }
}

/// The measurement with the median wall time.
pub fn median(mut values: Vec<Usage>) -> Usage {
    values.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    values[values.len() / 2]
}

pub fn median_f64(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
