//! Thread priority: work that can fall behind and catch up (the cost-feed view, the summary
//! publisher) yields the CPU to billing when both want it.

/// Nice value of a thread that yields to billing: lower priority, never starved.
#[cfg(target_os = "linux")]
const YIELDING_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority so billing threads run first on a busy machine. On Linux a
/// nice value belongs to a thread; elsewhere it would renice the whole process, so nothing is done.
pub fn yield_to_billing() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid takes no arguments and cannot fail; setpriority only reads its arguments.
        let result = unsafe {
            let thread = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, YIELDING_NICE)
        };
        if result != 0 {
            tracing::debug!("cannot lower this thread's priority: {}", std::io::Error::last_os_error());
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn a_yielding_thread_is_niced_and_its_neighbours_are_not() {
        let nice_of_this_thread = || {
            // SAFETY: as above.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        };
        let before = nice_of_this_thread();
        let yielded = std::thread::spawn(move || {
            super::yield_to_billing();
            nice_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(yielded, before.max(super::YIELDING_NICE));
        assert_eq!(nice_of_this_thread(), before, "the caller's thread keeps its priority");
    }
}
