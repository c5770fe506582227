//! Keeps a background loop running: a panic is logged and the loop started
//! again, so one bug cannot silently stop every delivery while the API keeps
//! accepting messages.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Pause before restarting a loop that panicked, so a loop that panics at
/// once does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs `make()` until it returns normally or `shutdown` turns true,
/// restarting it after every panic. Returns how many times it panicked.
pub async fn supervise<F, Fut>(name: &'static str, mut shutdown: watch::Receiver<bool>, mut make: F) -> usize
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut panics = 0;
    loop {
        match tokio::spawn(make()).await {
            Ok(()) => return panics,
            Err(e) if e.is_panic() => {
                panics += 1;
                let why = e.into_panic();
                let why = why
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| why.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(task = name, panic = %why, "background task panicked; restarting it");
            }
            Err(_) => return panics,
        }
        if *shutdown.borrow() {
            return panics;
        }
        tokio::select! {
            _ = tokio::time::sleep(RESTART_DELAY) => {}
            _ = shutdown.changed() => return panics,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_loop_is_restarted_until_it_returns() {
        let (_stop, stopped) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let panics = supervise("test", stopped, move || {
            let run = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if run < 2 {
                    panic!("bug number {run}");
                }
            }
        })
        .await;
        assert_eq!(panics, 2);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
