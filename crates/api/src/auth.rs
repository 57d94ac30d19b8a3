//! Who is asking: users with argon2id password hashes, browser sessions in an
//! `HttpOnly`, `SameSite=Strict` cookie with a CSRF token required on writes, and a
//! throttle on failed logins per account and source.
//!
//! Secrets never reach the store or a log in clear: a session token and an API key are
//! 32 random bytes given to the client once; the store keeps their SHA-256.
//!
//! An enterprise may restrict its users to source networks (`[[enterprise]]
//! api_sources`): a login from elsewhere fails as a wrong password does, a request with
//! a session or key from elsewhere is `403`. Operators are not restricted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sihai_config::IpNet;
use sihai_store::{Role, StoreError, TenantStore, User};

use crate::error::ApiError;
use crate::{Api, blocking};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sihai_session";
/// The header a cookie-authenticated write must carry, with the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed logins allowed per account and source within [`THROTTLE_WINDOW`], and per
/// source alone (many accounts tried from one address).
pub(crate) const FAILURES_PER_ACCOUNT: u32 = 5;
const FAILURES_PER_SOURCE: u32 = 20;
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The shortest password accepted, wherever it is set (`sihai user add`, the API).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest: hashing is deliberately slow, and slower the longer the input.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why `password` may not be a user's password, if it may not: the one rule for the
/// command line and the API.
pub fn password_problem(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Some(format!(
            "too short ({chars} characters): at least {MIN_PASSWORD_CHARS}"
        ))
    } else if chars > MAX_PASSWORD_CHARS {
        Some(format!(
            "too long ({chars} characters): at most {MAX_PASSWORD_CHARS}"
        ))
    } else {
        None
    }
}

/// Why `login` may not be a user's login, if it may not: the one rule for the command
/// line and the API.
pub fn login_problem(login: &str) -> Option<&'static str> {
    if login.is_empty() || login.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("a login is one word without spaces or control characters")
    } else if login.chars().count() > 64 {
        Some("a login is at most 64 characters")
    } else {
        None
    }
}

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

pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
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
    pub(crate) fn blocked(&self, key: &str, limit: u32, now: Instant) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, since) = map.get(key)?;
        let ends = *since + THROTTLE_WINDOW;
        (*count >= limit && now < ends).then(|| (ends - now).as_secs().max(1))
    }

    pub(crate) fn failed(&self, key: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Forget windows that are over, so the map stays as small as the attacks.
        map.retain(|_, (_, since)| now < *since + THROTTLE_WINDOW);
        let entry = map.entry(key.to_owned()).or_insert((0, now));
        entry.0 += 1;
    }

    pub(crate) fn succeeded(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

/// The networks each enterprise restricts its users to, as of a tenant revision: read
/// again only when the tenant data changed, so a request pays one revision query.
#[derive(Default)]
pub struct SourceNetworks {
    cached: Mutex<Option<(i64, Arc<Restrictions>)>>,
}

/// The enterprises that restrict their users, and to which networks.
type Restrictions = HashMap<String, Vec<IpNet>>;

impl SourceNetworks {
    /// Whether `user` may use the API from `source`. Blocking (reads the store).
    pub fn allows(
        &self,
        tenant: &dyn TenantStore,
        user: &User,
        source: Option<IpAddr>,
    ) -> Result<bool, StoreError> {
        let Some(enterprise) = user
            .enterprise
            .as_deref()
            .filter(|_| user.role.is_enterprise())
        else {
            return Ok(true);
        };
        let restrictions = self.current(tenant)?;
        let Some(networks) = restrictions.get(enterprise) else {
            return Ok(true);
        };
        // Without a known peer address nothing can match: refused, not waved through.
        Ok(source.is_some_and(|ip| networks.iter().any(|net| net.contains(ip))))
    }

    fn current(&self, tenant: &dyn TenantStore) -> Result<Arc<Restrictions>, StoreError> {
        let revision = tenant.tenant_revision()?;
        if let Some((cached, map)) = &*self.cached.lock().unwrap_or_else(|p| p.into_inner())
            && *cached == revision
        {
            return Ok(Arc::clone(map));
        }
        let data = tenant.tenant()?;
        let map = Arc::new(restrictions_of(&data.entries));
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((data.revision, Arc::clone(&map)));
        Ok(map)
    }
}

/// The enterprises with a non-empty `api_sources`, and their networks. The entries were
/// validated when written; a value that still does not parse restricts its enterprise
/// to the networks that do (none, if none do): a bad entry never opens the door.
fn restrictions_of(entries: &[sihai_store::StoredEntry]) -> Restrictions {
    let mut map = HashMap::new();
    for stored in entries.iter().filter(|s| s.entry.section == "enterprise") {
        let sources = sihai_config::tenant::fields_of(&stored.entry)
            .and_then(|mut fields| fields.remove("api_sources"));
        let Some(sources) = sources else { continue };
        let items = sources.as_array().cloned().unwrap_or_default();
        if items.is_empty() && sources.is_array() {
            continue;
        }
        let mut networks = Vec::with_capacity(items.len());
        for item in &items {
            match item.as_str().map(str::parse::<IpNet>) {
                Some(Ok(net)) => networks.push(net),
                _ => tracing::warn!(
                    enterprise = %stored.entry.key,
                    "an api_sources value does not parse; it admits nobody"
                ),
            }
        }
        map.insert(stored.entry.key.clone(), networks);
    }
    map
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub source: Option<IpAddr>,
    /// The hash of the session token it came with; `None` for an API key.
    pub session: Option<String>,
    /// The session's CSRF token (`None` for an API key): `GET /me` gives it back to the
    /// portal after a reload. Only a page of this origin can read that answer.
    pub csrf_token: Option<String>,
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
            let user = blocking(move || store.user_by_api_key(&hash))
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            admitted_from(api, &user, source).await?;
            return Ok(Caller {
                user,
                source,
                session: None,
                csrf_token: None,
            });
        }
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(ApiError::Unauthenticated);
        };
        let store = api.access.clone();
        let hash = secret_hash(&token);
        let session_hash = hash.clone();
        let session = blocking(move || store.session(&hash, Timestamp::now()))
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        admitted_from(api, &session.user, source).await?;
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
            session: Some(session_hash),
            csrf_token: Some(session.csrf_token),
        })
    }
}

/// Whether `user`'s enterprise lets it in from `source`.
async fn source_allowed(api: &Api, user: &User, source: Option<IpAddr>) -> Result<bool, ApiError> {
    let (networks, tenant, user) = (api.sources.clone(), api.tenant.clone(), user.clone());
    blocking(move || networks.allows(tenant.as_ref(), &user, source)).await
}

/// `403` for a valid session or key used from outside its enterprise's networks.
async fn admitted_from(api: &Api, user: &User, source: Option<IpAddr>) -> Result<(), ApiError> {
    if source_allowed(api, user, source).await? {
        return Ok(());
    }
    tracing::info!(login = %user.login, source = ?source, "request refused: outside the enterprise's api_sources");
    Err(ApiError::Forbidden(
        "your enterprise does not allow the admin API from this address",
    ))
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
    // From outside its enterprise's networks, the right password fails exactly as a
    // wrong one does: the answer tells nothing about the password.
    let user = match user {
        Some(user) if source_allowed(&api, &user, Some(peer.ip())).await? => Some(user),
        Some(user) => {
            tracing::info!(login = %user.login, source = %peer.ip(), "login refused: outside the enterprise's api_sources");
            None
        }
        None => None,
    };
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

/// Who is asking, and for a browser session its CSRF token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MeAnswer {
    #[serde(flatten)]
    user: Me,
    /// The session's CSRF token, for a page reloaded after its login (absent for an API
    /// key). A page of another origin cannot read this answer: the API sends no CORS
    /// headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

/// `GET /api/v1/me`.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = MeAnswer), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(caller: Caller) -> Json<MeAnswer> {
    Json(MeAnswer {
        user: Me::from(&caller.user),
        csrf_token: caller.csrf_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enterprise(id: &str, extra: &str) -> sihai_store::StoredEntry {
        let text = format!("[[enterprise]]\nid = \"{id}\"\nname = \"N\"\n{extra}\n");
        let mut entries = sihai_config::tenant::split(&text, "test").expect("an entry");
        sihai_store::StoredEntry {
            entry: entries.remove(0),
            revision: 1,
        }
    }

    #[test]
    fn only_enterprises_with_sources_are_restricted_and_a_bad_value_admits_nobody() {
        let map = restrictions_of(&[
            enterprise("open", ""),
            enterprise("empty", "api_sources = []"),
            enterprise("lan", "api_sources = [\"10.0.0.0/8\", \"192.0.2.7\"]"),
            enterprise("broken", "api_sources = [\"not-an-address\"]"),
            enterprise("scalar", "api_sources = \"10.0.0.0/8\""),
        ]);
        assert!(!map.contains_key("open") && !map.contains_key("empty"));
        let lan = &map["lan"];
        let ip = |text: &str| text.parse::<IpAddr>().expect("test address");
        assert!(lan.iter().any(|n| n.contains(ip("10.9.8.7"))));
        assert!(lan.iter().any(|n| n.contains(ip("192.0.2.7"))));
        assert!(!lan.iter().any(|n| n.contains(ip("192.0.2.8"))));
        assert_eq!(map["broken"], []);
        assert_eq!(map["scalar"], []);
    }

    #[test]
    fn the_password_and_login_rules() {
        assert!(password_problem("123456789").is_some_and(|p| p.contains("at least 10")));
        assert_eq!(password_problem("1234567890"), None);
        assert_eq!(
            password_problem("长长长长长长长长长长"),
            None,
            "characters, not bytes"
        );
        assert!(password_problem(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_some());
        assert_eq!(login_problem("acme-admin"), None);
        for bad in ["", "two words", "tab\there", &"x".repeat(65)] {
            assert!(login_problem(bad).is_some(), "{bad:?}");
        }
    }
}
