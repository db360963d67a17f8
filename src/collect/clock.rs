//! The machine's clocks, read together: the wall clock (what records and bills show), the
//! monotonic clock (time the system ran, which never steps) and, on Linux, the boot clock (the
//! monotonic clock plus time suspended). Comparing how far each moved tells a sleep from a clock
//! step from a stall; see `timeline` and docs/record.md.

use std::sync::OnceLock;
use std::time::Instant;

use crate::record::UnixMillis;

/// The three clocks at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// The wall clock.
    pub wall: UnixMillis,
    /// Milliseconds on the monotonic clock (from an arbitrary origin, the same within a process).
    pub monotonic_millis: i64,
    /// Milliseconds on the boot clock, where the system has one (Linux: `CLOCK_BOOTTIME`).
    pub boot_millis: Option<i64>,
}

impl ClockReading {
    /// The clocks now.
    pub fn now() -> ClockReading {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        ClockReading { wall: UnixMillis::now(), monotonic_millis: origin.elapsed().as_millis() as i64, boot_millis: boot_millis() }
    }
}

#[cfg(target_os = "linux")]
fn boot_millis() -> Option<i64> {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer and reads nothing else.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut time) };
    (status == 0).then(|| time.tv_sec * 1_000 + time.tv_nsec / 1_000_000)
}

#[cfg(not(target_os = "linux"))]
fn boot_millis() -> Option<i64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_and_boot_clocks_move_forward_together() {
        let first = ClockReading::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = ClockReading::now();
        let monotonic = second.monotonic_millis - first.monotonic_millis;
        assert!(monotonic >= 20, "{monotonic}");
        if let (Some(before), Some(after)) = (first.boot_millis, second.boot_millis) {
            assert!((after - before - monotonic).abs() <= 5, "no suspend happened in 20 ms");
        }
    }
}
