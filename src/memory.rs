//! How glibc's allocator treats the memory an ingest frees.
//!
//! An ingest allocates the same large buffers batch after batch: message
//! chunks, column buffers, Parquet pages, librdkafka's fetch buffers. By
//! default glibc hands every allocation above 128 KiB to `mmap` of its own
//! and gives memory at the top of a heap back to the kernel as soon as
//! 128 KiB of it is free, so each batch faults the same pages in again
//! (a third of the page faults of an IoT ingest, and most of its system
//! time). While an ingest runs, [`AllocatorTuning`] has glibc serve
//! allocations up to 32 MiB from its heaps and keep up to 1 GiB free for
//! reuse; when the last ingest of the process ends, the defaults are set
//! again and `malloc_trim` returns what is free to the kernel.
//!
//! Left alone when the environment already says how glibc's allocator
//! should behave (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`,
//! `MALLOC_TOP_PAD_`, `malloc` tunables in `GLIBC_TUNABLES`) or when
//! `KAFKALAKE_TUNE_MALLOC=0`; a no-op where the C library is not glibc.

use std::sync::Mutex;

/// Ingests holding an [`AllocatorTuning`].
static HOLDERS: Mutex<usize> = Mutex::new(0);

/// Whether the environment (looked up by `var`) leaves the allocator to kafkalake.
fn wanted(var: impl Fn(&str) -> Option<String>) -> bool {
    if var("KAFKALAKE_TUNE_MALLOC").is_some_and(|v| matches!(v.trim(), "0" | "false" | "no")) {
        return false;
    }
    let user_set = [
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_TOP_PAD_",
    ]
    .iter()
    .any(|k| var(k).is_some());
    !user_set && !var("GLIBC_TUNABLES").is_some_and(|t| t.contains("glibc.malloc."))
}

/// Held by a running ingest: glibc keeps the memory it frees (see the module docs).
#[derive(Debug)]
pub struct AllocatorTuning {
    held: bool,
}

impl AllocatorTuning {
    /// Tune the allocator unless the environment says otherwise (the
    /// first holder of the process changes the settings, later ones share them).
    pub fn hold() -> Self {
        let held = wanted(|k| std::env::var(k).ok());
        if held {
            let mut n = HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
            if enter(&mut n) {
                tune();
            }
        }
        AllocatorTuning { held }
    }
}

impl Drop for AllocatorTuning {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let mut n = HOLDERS.lock().unwrap_or_else(|p| p.into_inner());
        if leave(&mut n) {
            restore();
        }
    }
}

/// One more holder; whether it is the first.
fn enter(holders: &mut usize) -> bool {
    *holders += 1;
    *holders == 1
}

/// One holder less; whether it was the last.
fn leave(holders: &mut usize) -> bool {
    *holders -= 1;
    *holders == 0
}

/// Allocations up to 32 MiB (glibc's own maximum) from the heaps, and up
/// to 1 GiB of free memory kept at the top of a heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune() {
    // SAFETY: mallopt only changes two of the allocator's thresholds; any
    // value is valid for it (it returns 0 when it rejects one).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// glibc's defaults for both (mallopt(3)), and what is free handed back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn restore() {
    // SAFETY: as in `tune`; malloc_trim returns free pages of every arena
    // to the kernel and involves no pointer.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn restore() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_users_own_allocator_settings_win() {
        assert!(wanted(env(&[])));
        assert!(wanted(env(&[("KAFKALAKE_TUNE_MALLOC", "1")])));
        assert!(!wanted(env(&[("KAFKALAKE_TUNE_MALLOC", "0")])));
        assert!(!wanted(env(&[("KAFKALAKE_TUNE_MALLOC", " false")])));
        assert!(!wanted(env(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
        assert!(!wanted(env(&[("MALLOC_MMAP_THRESHOLD_", "65536")])));
        assert!(!wanted(env(&[("MALLOC_TOP_PAD_", "0")])));
        assert!(!wanted(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.trim_threshold=0"
        )])));
        assert!(wanted(env(&[(
            "GLIBC_TUNABLES",
            "glibc.cpu.hwcaps=-AVX512F"
        )])));
    }

    #[test]
    fn the_first_holder_tunes_and_the_last_restores() {
        let mut n = 0;
        assert!(enter(&mut n));
        assert!(!enter(&mut n));
        assert!(!leave(&mut n));
        assert!(leave(&mut n));
        assert!(enter(&mut n), "a later ingest tunes again");
        assert!(leave(&mut n));
    }

    #[test]
    fn allocations_work_while_tuned_and_after() {
        let tuned = AllocatorTuning::hold();
        let v = vec![1u8; 40 << 20];
        assert_eq!(v.iter().map(|&x| usize::from(x)).sum::<usize>(), 40 << 20);
        drop((v, tuned));
        let v = vec![2u8; 40 << 20];
        assert_eq!(v.iter().map(|&x| usize::from(x)).sum::<usize>(), 80 << 20);
    }
}
