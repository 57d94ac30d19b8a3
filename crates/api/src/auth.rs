//! Who is asking: users with argon2id password hashes, browser sessions in an
//! `HttpOnly`, `SameSite=Strict` cookie with a CSRF token required on writes, and a
//! throttle on failed logins per account and source.
//!
//! Secrets never reach the store or a log in clear: a session token and an API key are
//! 32 random bytes given to the client once; the store keeps their SHA-256.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sihai_store::{Role, User};

use crate::error::ApiError;
use crate::{Api, blocking};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sihai_session";
/// The header a cookie-authenticated write must carry, with the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed logins allowed per account and source within [`THROTTLE_WINDOW`], and per
/// source alone (many accounts tried from one address).
const FAILURES_PER_ACCOUNT: u32 = 5;
const FAILURES_PER_SOURCE: u32 = 20;
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// An argon2id hash of `password` (PHC string, salt included).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&bytes).map_err(|e| format!("cannot make a salt: {e}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new secret for a client: 32 random bytes as hex.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the store keeps of a secret.
pub fn secret_hash(secret: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Failed logins counted per key, in fixed windows.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    /// Seconds to wait when `key` has failed `limit` times in the current window.
    fn blocked(&self, key: &str, limit: u32, now: Instant) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, since) = map.get(key)?;
        let ends = *since + THROTTLE_WINDOW;
        (*count >= limit && now < ends).then(|| (ends - now).as_secs().max(1))
    }

    fn failed(&self, key: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Forget windows that are over, so the map stays as small as the attacks.
        map.retain(|_, (_, since)| now < *since + THROTTLE_WINDOW);
        let entry = map.entry(key.to_owned()).or_insert((0, now));
        entry.0 += 1;
    }

    fn succeeded(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub source: Option<IpAddr>,
}

impl Caller {
    /// Whether the caller may see `enterprise`'s data.
    pub fn sees(&self, enterprise: &str) -> bool {
        match self.user.role {
            Role::Operator => true,
            Role::EnterpriseAdmin | Role::EnterpriseViewer => {
                self.user.enterprise.as_deref() == Some(enterprise)
            }
        }
    }

    pub fn is_operator(&self) -> bool {
        self.user.role == Role::Operator
    }

    pub fn may_write(&self) -> bool {
        self.user.role != Role::EnterpriseViewer
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
}

fn source_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let source = source_of(parts);
        if let Some(key) = bearer_token(&parts.headers) {
            let store = api.access.clone();
            let hash = secret_hash(&key);
            let user = blocking(move || store.user_by_api_key(&hash)).await?;
            return user
                .map(|user| Caller { user, source })
                .ok_or(ApiError::Unauthenticated);
        }
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(ApiError::Unauthenticated);
        };
        let store = api.access.clone();
        let hash = secret_hash(&token);
        let session = blocking(move || store.session(&hash, Timestamp::now()))
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        // A browser session writes only with its CSRF token: another site can make the
        // browser send the cookie, not read the token.
        let writes = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if writes {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent != Some(session.csrf_token.as_str()) {
                return Err(ApiError::Forbidden(
                    "a write with a session cookie needs its X-CSRF-Token header",
                ));
            }
        }
        Ok(Caller {
            user: session.user,
            source,
        })
    }
}

/// A login request.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Login {
    login: String,
    password: String,
}

/// The logged-in user.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    login: String,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    enterprise: Option<String>,
}

impl From<&User> for Me {
    fn from(user: &User) -> Me {
        Me {
            login: user.login.clone(),
            role: user.role.as_str(),
            enterprise: user.enterprise.clone(),
        }
    }
}

/// A successful login.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoggedIn {
    user: Me,
    /// Send it back as `X-CSRF-Token` on every write.
    csrf_token: String,
}

/// `POST /api/v1/login`: a session cookie and its CSRF token.
#[utoipa::path(post, path = "/api/v1/login", tag = "session", request_body = Login,
    responses(
        (status = 200, description = "Logged in: the `sihai_session` cookie is set", body = LoggedIn),
        (status = 401, description = "Wrong login or password", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed logins: see Retry-After", body = crate::error::ErrorBody),
    ))]
pub async fn login(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<Login>,
) -> Result<Response, ApiError> {
    let now = Instant::now();
    let source_key = format!("source {}", peer.ip());
    let account_key = format!("account {}\u{0} {}", request.login, peer.ip());
    if let Some(wait) = api
        .throttle
        .blocked(&account_key, FAILURES_PER_ACCOUNT, now)
        .or_else(|| api.throttle.blocked(&source_key, FAILURES_PER_SOURCE, now))
    {
        tracing::warn!(login = %request.login, source = %peer.ip(), "login throttled");
        return Err(ApiError::TooManyAttempts(wait));
    }
    let store = api.access.clone();
    let login = request.login.clone();
    let password = request.password;
    // Hashing is deliberately slow: off the async workers.
    let user = blocking(move || {
        let found = store.user_by_login(&login)?;
        Ok(found.and_then(|(user, hash)| verify_password(&password, &hash).then_some(user)))
    })
    .await?;
    let Some(user) = user else {
        api.throttle.failed(&account_key, now);
        api.throttle.failed(&source_key, now);
        tracing::info!(login = %request.login, source = %peer.ip(), "login failed");
        return Err(ApiError::Unauthenticated);
    };
    api.throttle.succeeded(&account_key);
    let token = new_secret();
    let csrf = new_secret();
    let lifetime = api.session_lifetime;
    let expires = Timestamp::now()
        .checked_add(
            jiff::SignedDuration::try_from(lifetime)
                .unwrap_or(jiff::SignedDuration::from_hours(12)),
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let store = api.access.clone();
    let (hash, csrf_kept, user_id) = (secret_hash(&token), csrf.clone(), user.id);
    let source = peer.ip().to_string();
    blocking(move || {
        store.create_session(
            &hash,
            user_id,
            &csrf_kept,
            expires,
            Some(&source),
            Timestamp::now(),
        )
    })
    .await?;
    tracing::info!(login = %user.login, source = %peer.ip(), "logged in");
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        lifetime.as_secs(),
        secure_attribute(&api)
    );
    let mut response = (
        StatusCode::OK,
        Json(LoggedIn {
            user: Me::from(&user),
            csrf_token: csrf,
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `; Secure` when the API serves HTTPS, so the browser never sends the cookie over
/// plain HTTP; nothing on plain HTTP (loopback), where a `Secure` cookie would not stick.
fn secure_attribute(api: &Api) -> &'static str {
    if api.https { "; Secure" } else { "" }
}

/// `POST /api/v1/logout`: the session ends at once.
#[utoipa::path(post, path = "/api/v1/logout", tag = "session",
    responses((status = 204, description = "Logged out"), (status = 401, body = crate::error::ErrorBody)))]
pub async fn logout(
    State(api): State<Api>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie_token(&headers) {
        let store = api.access.clone();
        let hash = secret_hash(&token);
        blocking(move || store.end_session(&hash)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure_attribute(&api)
    );
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /api/v1/me`.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me::from(&caller.user))
}
