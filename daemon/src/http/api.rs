//! A vendor's data API behind an access token: each call carries the current token, a 401
//! renews it once (a token may be revoked or expire early), and a second 401 is a credentials
//! error. The vendor says which answers are temporary and what its error bodies mean.

use std::future::Future;

use reqwest::RequestBuilder;

use super::{Answer, Budget, Http, HttpError, Pacer, Token, TokenCache, Verdict, standard_verdict};
use crate::directory::{DirectoryError, Failure};
use crate::secrets::Secret;

/// What a cloud directory's client knows about its vendor.
pub trait Api: Send + Sync {
    /// A new access token.
    fn login(&self, http: &Http) -> impl Future<Output = Result<Token, DirectoryError>> + Send;

    /// What a final answer that is not a success means, read from the vendor's error body.
    /// `what` says what was being done ("listing users").
    fn error(&self, what: &str, answer: &Answer) -> DirectoryError;

    /// Whether an answer is temporary, and how long the vendor asks to wait.
    fn verdict(&self, answer: &Answer) -> Verdict {
        standard_verdict(answer)
    }

    /// Adds the token to a GET of `url` (a bearer token unless the vendor says otherwise).
    fn authorize(&self, request: RequestBuilder, token: &Secret, _url: &str) -> RequestBuilder {
        request.bearer_auth(token.expose())
    }

    /// The rate-limit bucket a request to `url` counts against, for vendors that report the
    /// budget left on every answer (see [`Pacer`]).
    fn bucket(&self, _url: &str) -> Option<String> {
        None
    }

    /// The budget an answer reports for its bucket.
    fn budget(&self, _answer: &Answer) -> Option<Budget> {
        None
    }
}

/// One vendor's data API, its HTTP client and its token.
pub struct ApiClient<A> {
    http: Http,
    tokens: TokenCache,
    api: A,
    pacer: Pacer,
}

impl<A: Api> ApiClient<A> {
    /// A client whose token lives in `tokens` (see [`TokenCache::stored`]).
    pub fn new(http: Http, api: A, tokens: TokenCache) -> ApiClient<A> {
        ApiClient {
            http,
            tokens,
            api,
            pacer: Pacer::default(),
        }
    }

    pub fn api(&self) -> &A {
        &self.api
    }

    /// A token now, to check the credentials before anything is read; `fresh` signs in anew
    /// even when a token is at hand.
    ///
    /// # Errors
    /// The vendor's login error.
    pub async fn login(&self, fresh: bool) -> Result<(), DirectoryError> {
        if fresh {
            self.tokens.clear().await;
        }
        self.tokens.get(|| self.api.login(&self.http)).await?;
        Ok(())
    }

    /// GETs `url` (as given: next links are followed verbatim) with `headers`, and returns its
    /// successful answer.
    ///
    /// # Errors
    /// The vendor's error for a final failure, a credentials error for a 401 after a renewed
    /// token, and transport failures after their retries.
    pub async fn get(
        &self,
        what: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, DirectoryError> {
        let answer = self.fetch(what, url, headers).await?;
        match answer.status.is_success() {
            true => Ok(answer),
            false => Err(self.api.error(what, &answer)),
        }
    }

    /// Like [`ApiClient::get`], but a final answer that is not a success is returned too, for
    /// callers that expect some (an expired delta link).
    ///
    /// # Errors
    /// A credentials error for a 401 after a renewed token, and transport failures.
    pub async fn fetch(
        &self,
        what: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, DirectoryError> {
        let mut renewed = false;
        let bucket = self.api.bucket(url);
        loop {
            let token = self.tokens.get(|| self.api.login(&self.http)).await?;
            let _permit = match &bucket {
                Some(bucket) => Some(
                    self.pacer
                        .acquire(bucket, self.http.max_wait())
                        .await
                        .map_err(|wait| {
                            DirectoryError::new(
                                Failure::Throttled,
                                format!(
                                    "{what} failed: the directory's rate limit is spent for another {} s",
                                    wait.as_secs()
                                ),
                            )
                            .hint("the next sync tries again; fewer syncs or a higher limit (the vendor's) avoid it")
                        })?,
                ),
                None => None,
            };
            let answer = self
                .http
                .send(
                    |client| {
                        let request = headers
                            .iter()
                            .fold(client.get(url), |r, (name, value)| r.header(*name, *value));
                        self.api.authorize(request, &token, url)
                    },
                    |answer| {
                        if let (Some(bucket), Some(budget)) = (&bucket, self.api.budget(answer)) {
                            self.pacer.observe(bucket, budget);
                        }
                        self.api.verdict(answer)
                    },
                )
                .await
                .map_err(|e| http_error(what, e))?;
            match answer.status.as_u16() {
                401 if !renewed => {
                    renewed = true;
                    self.tokens.forget(&token).await;
                }
                401 => {
                    let error = self.api.error(what, &answer);
                    return Err(error.with_failure(Failure::Credentials));
                }
                _ => return Ok(answer),
            }
        }
    }

    /// [`ApiClient::get`], its body read as JSON.
    ///
    /// # Errors
    /// As `get`, and when the body is not the JSON expected.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<T, DirectoryError> {
        let answer = self.get(what, url, headers).await?;
        answer.json().map_err(|e| http_error(what, e))
    }
}

/// A transport failure while doing `what`, as a directory error.
pub fn http_error(what: &str, error: HttpError) -> DirectoryError {
    let failure = match &error {
        HttpError::Unreachable { .. } => Failure::Unreachable,
        HttpError::Timeout { .. } => Failure::Timeout,
        HttpError::GaveUp { status: 429, .. } => Failure::Throttled,
        HttpError::GaveUp { .. } | HttpError::Unexpected { .. } => Failure::Read,
        HttpError::Setup(_) => Failure::Config,
    };
    let hint = match failure {
        Failure::Unreachable => {
            Some("check the network, the proxy (http.proxy or HTTPS_PROXY) and the CA file")
        }
        Failure::Throttled => Some("the directory kept throttling; the next sync tries again"),
        _ => None,
    };
    let error_text = error.to_string();
    let mut directory_error =
        DirectoryError::new(failure, format!("{what} failed: {error_text}")).caused_by(error);
    if let Some(hint) = hint {
        directory_error = directory_error.hint(hint);
    }
    directory_error
}
