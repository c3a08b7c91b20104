use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use super::*;
use crate::secrets::Secret;

fn settings(total_wait: Duration) -> HttpSettings {
    HttpSettings {
        ca_file: None,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        proxy: None,
        no_proxy: None,
        retry: RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(10),
            total_wait,
        },
    }
}

/// A server whose n-th answer (from 0) is `answers[n]`, the last one repeated.
async fn serve(
    answers: Vec<(u16, &'static str, Option<&'static str>)>,
) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = Router::new().route(
        "/x",
        get(move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let (status, body, retry_after) = answers[n.min(answers.len() - 1)];
            async move {
                let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
                if let Some(value) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", value.parse().unwrap());
                }
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn temporary_answers_are_retried_until_one_is_final() {
    let (url, count) = serve(vec![
        (429, "slow down", Some("0")),
        (503, "", None),
        (200, "ok", None),
    ])
    .await;
    let http = Http::new(settings(Duration::from_secs(10))).unwrap();
    let answer = http.send(|c| c.get(&url), standard_verdict).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"ok");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_lasting_refusal_is_not_retried_and_comes_back_whole() {
    let (url, count) = serve(vec![(403, "{\"error\":\"no\"}", None)]).await;
    let http = Http::new(settings(Duration::from_secs(10))).unwrap();
    let answer = http.send(|c| c.get(&url), standard_verdict).await.unwrap();
    assert_eq!(
        (answer.status.as_u16(), answer.text().as_str()),
        (403, "{\"error\":\"no\"}")
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn giving_up_keeps_the_last_answer_and_a_long_retry_after_ends_at_once() {
    let (url, count) = serve(vec![(500, "seat limit reached", None)]).await;
    let http = Http::new(settings(Duration::from_secs(10))).unwrap();
    let error = http
        .send(|c| c.get(&url), standard_verdict)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            HttpError::GaveUp {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("seat limit reached"), "{error}");
    assert_eq!(count.load(Ordering::SeqCst), 4);

    // A wait beyond the budget is not slept through.
    let (url, count) = serve(vec![(429, "later", Some("3600"))]).await;
    let started = Instant::now();
    let error = http
        .send(|c| c.get(&url), standard_verdict)
        .await
        .unwrap_err();
    assert!(
        matches!(error, HttpError::GaveUp { status: 429, .. }),
        "{error}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn an_unreachable_server_is_said_by_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    drop(listener);
    let http = Http::new(settings(Duration::from_secs(1))).unwrap();
    let error = http
        .send(|c| c.get(&url), standard_verdict)
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "7".parse().unwrap());
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    let soon = chrono::Utc::now() + chrono::Duration::seconds(90);
    let date = soon.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    headers.insert("retry-after", date.parse().unwrap());
    let wait = retry_after(&headers).unwrap();
    assert!(
        wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
        "{wait:?}"
    );
    headers.insert(
        "retry-after",
        "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
    );
    assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    headers.insert("retry-after", "soon".parse().unwrap());
    assert_eq!(retry_after(&headers), None);
    let mut okta = HeaderMap::new();
    let reset = chrono::Utc::now().timestamp() + 30;
    okta.insert("x-rate-limit-reset", reset.to_string().parse().unwrap());
    let wait = reset_at_epoch(&okta, "x-rate-limit-reset").unwrap();
    assert!(wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28));
}

#[tokio::test]
async fn the_token_cache_renews_before_expiry_and_after_a_refusal() {
    let cache = TokenCache::default();
    let fetched = AtomicUsize::new(0);
    let fetch = |lifetime: u64| {
        let n = fetched.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok::<_, ()>(Token {
                value: Secret::new(format!("t{n}")),
                lifetime: Duration::from_secs(lifetime),
                portable: true,
            })
        }
    };
    let first = cache.get(|| fetch(3600)).await.unwrap();
    let again = cache.get(|| fetch(3600)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(fetched.load(Ordering::SeqCst), 1);
    cache.forget(&Secret::new("not the current one")).await;
    assert_eq!(cache.get(|| fetch(3600)).await.unwrap(), first);
    cache.forget(&first).await;
    let renewed = cache.get(|| fetch(0)).await.unwrap();
    assert_ne!(renewed, first);
    // A token already due (no lifetime left) is renewed on the next use.
    let next = cache.get(|| fetch(3600)).await.unwrap();
    assert_ne!(next, renewed);
    assert_eq!(fetched.load(Ordering::SeqCst), 3);
}
