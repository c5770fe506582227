//! Blocking work (SQLite, the synchronous `postgres` client) on a thread of
//! its own, awaited without blocking the runtime. The `postgres` client
//! starts a runtime of its own, which tokio forbids on its threads, blocking
//! pool included.

use crate::error::{Error, Result};

pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hookline-bench-blocking".into())
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(|e| Error::new(format!("cannot start a thread: {e}")))?;
    result.await.map_err(|_| Error::new("a blocking task panicked"))
}
