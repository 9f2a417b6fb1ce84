//! Tests for the OpenAI-compatible client, run against the in-process test server.

use std::collections::HashMap;

use super::*;
use crate::embed::HashingEmbedder;
use crate::embed::test_server::{self, Fault, TestServerHandle, TestServerOptions};

const DIMS: usize = 64;

async fn server(options: impl FnOnce(TestServerOptions) -> TestServerOptions) -> TestServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hashing = Arc::new(HashingEmbedder::new(DIMS).unwrap());
    test_server::start(listener, options(TestServerOptions::new(hashing))).await
}

/// A client with fast backoff so retry tests take milliseconds.
fn client(server: &TestServerHandle, tweak: impl FnOnce(&mut OpenAiConfig)) -> OpenAiEmbedder {
    let mut config = OpenAiConfig {
        base_url: server.base_url(),
        dimensions: DIMS,
        backoff_base_ms: 5,
        backoff_max_ms: 50,
        ..OpenAiConfig::default()
    };
    tweak(&mut config);
    OpenAiEmbedder::new(config).unwrap()
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("log line {i} from node-{}", i % 7))
        .collect()
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
}

/// 600 inputs in batches of 256 make 3 requests, and every vector comes back in input
/// order even though the server answers last-to-first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_keeps_order() {
    let server = server(|o| o.reverse_order(true)).await;
    let embedder = client(&server, |c| c.max_batch = 256);
    let inputs = texts(600);
    let vectors = embedder.embed(&inputs).await.unwrap();
    assert_eq!(vectors.len(), 600);
    let reference = HashingEmbedder::new(DIMS).unwrap();
    for (text, vector) in inputs.iter().zip(&vectors) {
        assert_close(vector, &reference.embed_one(text));
    }
    let stats = server.stats();
    assert_eq!((stats.requests, stats.inputs), (3, 600));
    server.shutdown().await;
}

/// With one permit, three batches at 100 ms each cannot finish in under 300 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let server = server(|o| o.latency_ms(100)).await;
    let embedder = client(&server, |c| {
        c.max_batch = 10;
        c.max_concurrency = 1;
    });
    let started = Instant::now();
    embedder.embed(&texts(30)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.stats().requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_input_sends_nothing() {
    let server = server(|o| o).await;
    let embedder = client(&server, |_| {});
    assert!(embedder.embed(&[]).await.unwrap().is_empty());
    assert_eq!(server.stats().requests, 0);
}

/// Two 429s, then success: three requests, one answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_rate_limits() {
    let server = server(|o| o).await;
    let limited = Fault::RateLimited {
        retry_after_secs: None,
    };
    server.set_faults([limited.clone(), limited]);
    let embedder = client(&server, |_| {});
    let vectors = embedder.embed(&texts(3)).await.unwrap();
    assert_eq!(vectors.len(), 3);
    assert_eq!(server.stats().requests, 3);
    assert_eq!(server.stats().faults_served, 2);
}

/// `Retry-After: 1` makes the client wait a second instead of its 5 ms backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_retry_after() {
    let server = server(|o| o).await;
    server.set_faults([Fault::RateLimited {
        retry_after_secs: Some(1),
    }]);
    let embedder = client(&server, |c| c.backoff_max_ms = 5_000);
    let started = Instant::now();
    embedder.embed(&texts(1)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.stats().requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_server_errors() {
    let server = server(|o| o).await;
    server.set_faults([Fault::Status(500), Fault::Status(503), Fault::Status(502)]);
    let embedder = client(&server, |_| {});
    embedder.embed(&texts(2)).await.unwrap();
    assert_eq!(server.stats().requests, 4);
}

/// After `max_retries` the last error comes back, saying how many attempts were made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_max_retries() {
    let server = server(|o| o).await;
    server.set_faults(vec![Fault::Status(500); 10]);
    let embedder = client(&server, |c| c.max_retries = 2);
    let err = embedder.embed(&texts(2)).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!(server.stats().requests, 3);
}

/// A hang past the timeout is `Error::Timeout` when retries are off...
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_reported() {
    let server = server(|o| o).await;
    server.set_faults([Fault::Hang(Duration::from_secs(2))]);
    let embedder = client(&server, |c| {
        c.timeout_ms = 200;
        c.max_retries = 0;
    });
    let started = Instant::now();
    let err = embedder.embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    server.shutdown().await;
}

/// ...and retried when they are on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_retried() {
    let server = server(|o| o).await;
    server.set_faults([Fault::Hang(Duration::from_secs(2))]);
    let embedder = client(&server, |c| {
        c.timeout_ms = 200;
        c.max_retries = 1;
    });
    embedder.embed(&texts(1)).await.unwrap();
    assert_eq!(server.stats().requests, 2);
    server.shutdown().await;
}

/// A wrong key fails at once, with a message that says what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_is_clear_and_not_retried() {
    let server = server(|o| o.api_key("sk-test")).await;
    let without_key = client(&server, |_| {});
    let err = without_key.embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("rejected the API key (401)"), "{message}");
    assert!(message.contains("OPENAI_API_KEY"), "{message}");
    assert_eq!(server.stats().requests, 1);
    let with_key = client(&server, |c| c.api_key = Some("sk-test".into()));
    with_key.embed(&texts(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_carries_the_provider_message() {
    let server = server(|o| o).await;
    server.set_faults([Fault::Status(400)]);
    let embedder = client(&server, |_| {});
    let err = embedder.embed(&texts(1)).await.unwrap_err();
    assert!(
        matches!(&err, Error::BadRequest(m) if m.contains("injected fault")),
        "{err:?}"
    );
    assert_eq!(server.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_dimensions_are_rejected() {
    let server = server(|o| o).await;
    server.set_faults([Fault::WrongDimensions(32)]);
    let embedder = client(&server, |_| {});
    let err = embedder.embed(&texts(2)).await.unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    assert!(err.to_string().contains("32-dimensional"), "{err}");
}

/// The server cuts or pads to the requested size; the client asks for its configured size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_dimensions_are_served() {
    let server = server(|o| o).await;
    let embedder = client(&server, |c| c.dimensions = 1536);
    let vectors = embedder.embed(&texts(2)).await.unwrap();
    assert_eq!(vectors[0].len(), 1536);
    let norm: f32 = vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_provider_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let embedder = OpenAiEmbedder::new(OpenAiConfig {
        base_url: format!("http://{addr}"),
        max_retries: 1,
        backoff_base_ms: 5,
        ..OpenAiConfig::default()
    })
    .unwrap();
    let err = embedder.embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

#[test]
fn config_from_env_and_redaction() {
    let env: HashMap<String, String> = [
        ("OPENAI_API_KEY", "sk-secret"),
        ("CHRONIK_EMBEDDING_MODEL", "text-embedding-3-large"),
        ("CHRONIK_EMBEDDING_DIMENSIONS", "3072"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = OpenAiConfig::from_env(&env).unwrap();
    assert_eq!(config.api_key.as_deref(), Some("sk-secret"));
    assert_eq!(
        (config.model.as_str(), config.dimensions),
        ("text-embedding-3-large", 3072)
    );
    assert!(!format!("{config:?}").contains("sk-secret"));
    assert!(
        !serde_json::to_string(&config)
            .unwrap()
            .contains("sk-secret")
    );

    let bad = HashMap::from([(
        "CHRONIK_EMBEDDING_CONCURRENCY".to_string(),
        "64".to_string(),
    )]);
    let err = OpenAiConfig::from_env(&bad).unwrap_err();
    assert!(
        err.to_string().contains("CHRONIK_EMBEDDING_CONCURRENCY"),
        "{err}"
    );
}
