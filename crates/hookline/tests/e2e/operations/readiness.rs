//! Readiness: `GET /api/v1/health/ready` answers 200 while the store answers
//! and the claim loop runs, and a JSON 503 naming the failed check when the
//! database is gone; `GET /api/v1/health` keeps Svix's 204.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{skip_unless, Backend, PgCluster, TestServer};

async fn ready(server: &TestServer) -> (u16, Value) {
    server.anonymous().get("/api/v1/health/ready").await
}

#[tokio::test]
async fn a_healthy_node_is_ready_and_health_keeps_svix_shape() {
    let server = TestServer::start().await;
    let (status, body) = ready(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"]["status"], "ok");
    assert_eq!(body["dispatcher"]["status"], "ok");
    let r = server.http().get(server.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_database_is_down_is_not_ready_until_it_is_back() {
    if skip_unless(Backend::Postgres, "stops its own PostgreSQL under the node") {
        return;
    }
    let cluster = PgCluster::start().await;
    let url = cluster.create_database("hl_ready").await;
    let server = TestServer::builder().database_url(&url).start().await;
    assert_eq!(ready(&server).await.0, 200);

    cluster.stop_immediate().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = ready(&server).await;
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "still {status} with the database down: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["code"], "not_ready", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("store"), "{body}");
    assert_eq!(body["store"]["status"], "error", "{body}");
    // Liveness is not readiness: the process still answers.
    let r = server.http().get(server.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);

    cluster.start_again().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = ready(&server).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready again after the database came back: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
