//! Scenario 6, idle: how long a node takes from start to its first healthy
//! answer (the slowest node's), and the memory of the idle deployment.

use crate::error::Result;
use crate::figure::Measured;
use crate::plan::Bench;

const NAME: &str = "idle";

pub async fn run(bench: &Bench) -> Result<Vec<Measured>> {
    let deployment = bench.deploy().await?;
    tokio::time::sleep(bench.sizes.idle_settle).await;
    Ok(vec![
        Measured::millis(NAME, "start → first healthy answer", deployment.start_time()),
        Measured::mebibytes(NAME, "RSS", deployment.rss()?),
    ])
}
