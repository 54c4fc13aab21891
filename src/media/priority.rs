//! The media thread's CPU priority.
//!
//! The media thread must run every 20 ms: late, it sends a burst instead of a stream and the
//! far end's jitter buffer drops what comes too late (heard as gaps). On a busy workstation
//! (a browser, a CRM, a video call in another window) the scheduler treats it like any other
//! thread unless told otherwise, so it asks for a lower nice value, as a desktop sound server
//! does for its own threads. Not a real-time class: a bug that spun here could not take the
//! machine. Where the system refuses (an ordinary user without `RLIMIT_NICE`), nothing changes.

use rustix::process::{getpriority_process, setpriority_process};
use rustix::thread::gettid;

/// The nice value asked for the media thread (0 is the default, -20 the highest).
pub const MEDIA_NICE: i32 = -10;

/// Gives the calling thread (and only it: on Linux a thread id names one thread) the nice
/// value [`MEDIA_NICE`]; returns the nice value it has afterwards, or why it was refused.
pub fn raise_this_thread() -> Result<i32, rustix::io::Errno> {
    let me = Some(gettid());
    setpriority_process(me, MEDIA_NICE)?;
    getpriority_process(me)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_gets_the_media_nice_value_or_keeps_its_own() {
        let caller = getpriority_process(Some(gettid())).expect("reading our own priority");
        std::thread::spawn(|| {
            let me = Some(gettid());
            let before = getpriority_process(me).expect("reading our own priority");
            match raise_this_thread() {
                Ok(now) => assert_eq!(now, MEDIA_NICE),
                Err(e) => {
                    assert!(
                        e == rustix::io::Errno::ACCESS || e == rustix::io::Errno::PERM,
                        "{e}"
                    );
                    assert_eq!(getpriority_process(me).expect("reading"), before);
                }
            }
        })
        .join()
        .expect("the thread ran");
        // Only that thread changed: this one keeps its priority.
        assert_eq!(
            getpriority_process(Some(gettid())).expect("reading"),
            caller
        );
    }
}
