//! The API server's request path for a pod create, piece by piece and whole (through
//! the router in process, over the memory store: no socket, no TLS, no fsync). The
//! pieces are what `everynode bench api` pays per create besides the network and the
//! commit; `BENCHMARKS.md` has the figures.

use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use everynode_apiserver::auth::{Authenticator, User};
use everynode_apiserver::openapi::OpenApi;
use everynode_apiserver::{ApiServer, WatchConfig, request, resources, strategy};
use everynode_store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The pod `everynode bench api` creates.
fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": format!("bench-{i:07}"), "namespace": "default",
                      "labels": { "app": "bench", "shard": (i % 16).to_string() } },
        "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1.0",
                                   "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } } }] }
    })
}

fn pieces(c: &mut Criterion) {
    let pods = resources::lookup("", "v1", "pods").expect("pods are served");
    let body = serde_json::to_vec(&pod(1)).expect("encodes");
    let value = pod(1);
    let openapi = OpenApi::build();
    let mut g = c.benchmark_group("pod_create");
    g.bench_function("decode_body", |b| {
        b.iter(|| request::decode_body("application/json", std::hint::black_box(&body)))
    });
    g.bench_function("unknown_fields", |b| {
        b.iter(|| openapi.unknown_fields(pods, std::hint::black_box(&value)))
    });
    g.bench_function("admit", |b| {
        b.iter_batched(
            || value.clone(),
            |v| strategy::admit_create(pods, v),
            BatchSize::SmallInput,
        )
    });
    let admitted = match strategy::admit_create(pods, value.clone()) {
        Ok((strategy::Admitted::Pod(p), errs)) if errs.is_empty() => p,
        _ => panic!("the bench pod is admitted as a valid typed pod"),
    };
    g.bench_function("encode", |b| {
        b.iter(|| strategy::encode_pod(std::hint::black_box(&admitted)))
    });
    g.finish();
}

fn whole(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let auth = Authenticator::new();
    auth.add_token("bench-token", User::admin());
    let server = rt
        .block_on(ApiServer::new(
            Store::memory(),
            auth,
            WatchConfig::default(),
        ))
        .expect("the server starts");
    let router = server.router();
    let next = AtomicUsize::new(0);
    let request = || {
        let body = serde_json::to_vec(&pod(next.fetch_add(1, Ordering::Relaxed))).expect("encodes");
        http::Request::post("/api/v1/namespaces/default/pods")
            .header(http::header::AUTHORIZATION, "Bearer bench-token")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .expect("a request")
    };
    let create = |req: http::Request<axum::body::Body>| {
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await.expect("infallible");
            assert_eq!(resp.status(), http::StatusCode::CREATED);
            resp
        }
    };
    let mut g = c.benchmark_group("pod_create");
    // One create at a time: the latency, two thread hand-offs (to the store's writer and
    // back) included.
    g.bench_function("router_memory_store", |b| {
        b.to_async(&rt)
            .iter_batched(request, create, BatchSize::SmallInput)
    });
    // 16 at once, as `bench api`'s clients: the cost per create when commits are shared.
    const CONCURRENT: usize = 16;
    g.throughput(Throughput::Elements(CONCURRENT as u64));
    g.bench_function("router_memory_store_16_at_once", |b| {
        b.to_async(&rt).iter_batched(
            || (0..CONCURRENT).map(|_| request()).collect::<Vec<_>>(),
            |reqs| futures::future::join_all(reqs.into_iter().map(create)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, pieces, whole);
criterion_main!(benches);
