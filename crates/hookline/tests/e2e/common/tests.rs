//! The harness's own tests: the database helpers do what their docs say
//! against the real binary.

use super::*;

#[tokio::test]
async fn nodes_share_one_database_main_key_and_admin_token() {
    if skip_unless(Backend::Postgres, "several nodes on one database") {
        return;
    }
    let nodes = TestServer::start_nodes(2, |b| b.env("HOOKLINE_LOG", "info")).await;
    let [first, second] = &nodes[..] else { unreachable!() };
    assert_eq!((first.backend(), second.backend()), (Backend::Postgres, Backend::Postgres));
    assert_ne!(first.port(), second.port());
    assert_ne!(first.data_dir(), second.data_dir());
    assert_eq!(first.database_url(), second.database_url());
    assert_eq!(first.main_key(), second.main_key());
    assert_eq!(first.admin_token(), second.admin_token());

    let app = first.create_app("Shared", Some("shared")).await;
    let (status, body) = second.admin().get("/api/v1/app/shared").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], app["id"]);
}

#[tokio::test]
async fn each_server_gets_a_database_of_its_own() {
    let (a, b) = (TestServer::start().await, TestServer::start().await);
    assert_eq!(a.backend(), Backend::current());
    assert_eq!(a.is_embedded(), Backend::current() == Backend::Sqlite);
    a.create_app("Only in a", Some("only-in-a")).await;
    let (status, _) = b.admin().get("/api/v1/app/only-in-a").await;
    assert_eq!(status, 404, "b sees a's application");
    if a.is_embedded() {
        assert_eq!((a.database_url(), a.main_key()), (None, None));
    } else {
        assert_ne!(a.database_url(), b.database_url());
        assert_ne!(a.main_key(), b.main_key());
    }
}

#[tokio::test]
async fn a_second_node_on_the_embedded_store_is_a_test_bug() {
    if skip_unless(Backend::Sqlite, "checks the guard of the embedded store") {
        return;
    }
    let server = TestServer::start().await;
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        TestServer::builder().shares_database_with(&server);
    }));
    let message = refused.expect_err("shares_database_with accepted an embedded server");
    let message = message.downcast_ref::<String>().expect("a formatted panic message");
    assert!(message.contains("need PostgreSQL"), "{message}");
}

/// Servers pointed at a private cluster with `database_url`; further nodes
/// share its database and key, and a node with another key or none is
/// refused.
#[tokio::test]
async fn servers_run_on_a_private_cluster() {
    if PgCluster::bin_dir().is_none() && skip_unless(Backend::Postgres, "no PostgreSQL installed to test with") {
        return;
    }
    let cluster = PgCluster::start().await;
    let url = cluster.create_database("hl_nodes").await;
    let first = TestServer::builder().database_url(&url).start().await;
    assert_eq!(first.backend(), Backend::Postgres);
    assert_eq!(first.database_url(), Some(url.as_str()));
    let second = TestServer::builder().shares_database_with(&first).start().await;
    first.create_app("On the cluster", Some("on-cluster")).await;
    let (status, body) = second.admin().get("/api/v1/app/on-cluster").await;
    assert_eq!(status, 200, "{body}");

    let other_key = backend::random_main_key();
    let refused = TestServer::builder().shares_database_with(&first).main_key(&other_key).try_start().await;
    let log = refused.err().expect("a node with another main key started");
    assert!(log.contains("another main key"), "refused for the key, not something else: {log}");
    let refused = TestServer::builder().shares_database_with(&first).without_main_key().try_start().await;
    let log = refused.err().expect("a node without a main key started");
    assert!(log.contains("HOOKLINE_MAIN_KEY"), "the refusal names the setting: {log}");
}
