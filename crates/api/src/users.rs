//! The API's own users over the API: an operator manages every user, an enterprise
//! admin those of its own enterprise (another enterprise's user is `404`, as if it did
//! not exist); everyone changes their own password and manages their own API keys (the
//! operator anyone's).
//!
//! Removing a user, changing a password and revoking a key take effect at once: the
//! store ends the sessions and keys in the same transaction. Every change is audited
//! (who, from where, which user); no password, hash or key ever is, and a new key is
//! shown once, in the answer that creates it.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sihai_store::{ApiKey, NewAudit, NewUser, Role, StoreError, User};

use crate::auth::{self, Caller};
use crate::error::{ApiError, FieldError};
use crate::{Api, blocking};

/// A user as the API shows it (never its password hash).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserJson {
    login: String,
    /// `operator`, `enterprise_admin` or `enterprise_viewer`.
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    enterprise: Option<String>,
    created_at: String,
    password_changed_at: String,
}

impl From<&User> for UserJson {
    fn from(user: &User) -> UserJson {
        UserJson {
            login: user.login.clone(),
            role: user.role.as_str(),
            enterprise: user.enterprise.clone(),
            created_at: user.created_at.to_string(),
            password_changed_at: user.password_changed_at.to_string(),
        }
    }
}

/// A user to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    login: String,
    /// At least 10 characters, as `sihai user add` requires.
    password: String,
    /// `operator`, `enterprise_admin` or `enterprise_viewer`.
    role: String,
    /// Required for an enterprise role (an enterprise admin's own when left out);
    /// absent for an operator.
    #[serde(default)]
    enterprise: Option<String>,
}

/// A password change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    old_password: String,
    /// At least 10 characters, as `sihai user add` requires.
    new_password: String,
}

/// A password set for another user (a reset by an administrator).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// At least 10 characters, as `sihai user add` requires.
    new_password: String,
}

/// An API key to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What it is for, e.g. `crm-sync`.
    name: String,
}

/// An API key as listed: never the key itself.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyJson {
    id: i64,
    name: String,
    created_at: String,
}

impl From<&ApiKey> for KeyJson {
    fn from(key: &ApiKey) -> KeyJson {
        KeyJson {
            id: key.id,
            name: key.name.clone(),
            created_at: key.created_at.to_string(),
        }
    }
}

/// A new API key: `key` is shown here once and never again.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewKeyJson {
    id: i64,
    name: String,
    created_at: String,
    /// Send it as `Authorization: Bearer <key>`.
    key: String,
}

/// The longest key name kept.
const MAX_KEY_NAME_CHARS: usize = 64;

fn invalid(entry: &str, field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid(vec![FieldError {
        entry: entry.to_owned(),
        field: field.to_owned(),
        message: message.into(),
    }])
}

/// Users are managed by operators and enterprise admins; a viewer reads its data only.
fn may_manage_users(caller: &Caller) -> Result<(), ApiError> {
    if caller.may_write() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("a viewer does not manage users"))
    }
}

/// The user `login` as the caller may see it: `404` for no such user and for one of
/// another enterprise (or an operator, to an enterprise's user) alike.
async fn visible_user(api: &Api, caller: &Caller, login: &str) -> Result<User, ApiError> {
    let store = api.access.clone();
    let login = login.to_owned();
    let found = blocking(move || store.user_by_login(&login)).await?;
    match found {
        Some((user, _hash)) if sees_user(caller, &user) => Ok(user),
        _ => Err(ApiError::NotFound),
    }
}

fn sees_user(caller: &Caller, user: &User) -> bool {
    caller.is_operator()
        || (user.role.is_enterprise()
            && user
                .enterprise
                .as_deref()
                .is_some_and(|enterprise| caller.sees(enterprise)))
}

/// Appends to the audit log: who (the caller), from where, which user.
async fn audit(
    api: &Api,
    caller: &Caller,
    enterprise: Option<String>,
    action: &str,
    target: String,
    before: Option<String>,
    after: Option<String>,
) -> Result<(), ApiError> {
    let store = api.access.clone();
    let entry = NewAudit {
        at: Timestamp::now(),
        actor: caller.user.login.clone(),
        source: caller.source.map(|ip| ip.to_string()),
        enterprise,
        action: action.to_owned(),
        target,
        before,
        after,
    };
    blocking(move || store.audit(entry)).await?;
    Ok(())
}

/// What the audit log says of a user: never a secret.
fn describe(user: &User) -> String {
    match &user.enterprise {
        Some(enterprise) => format!("role = {}, enterprise = {enterprise}", user.role),
        None => format!("role = {}", user.role),
    }
}

/// `GET /api/v1/users`: every user for an operator, its enterprise's for an admin.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<UserJson>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "A viewer", body = crate::error::ErrorBody)))]
pub async fn list(State(api): State<Api>, caller: Caller) -> Result<Json<Vec<UserJson>>, ApiError> {
    may_manage_users(&caller)?;
    let scope = if caller.is_operator() {
        None
    } else {
        Some(caller.user.enterprise.clone().ok_or(ApiError::NotFound)?)
    };
    let store = api.access.clone();
    let users = blocking(move || store.users(scope.as_deref())).await?;
    Ok(Json(
        users
            .iter()
            .filter(|u| sees_user(&caller, u))
            .map(UserJson::from)
            .collect(),
    ))
}

/// `POST /api/v1/users`: a new user. An enterprise admin creates admins and viewers of
/// its own enterprise (another enterprise is `404`).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserJson), (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "A viewer, or an enterprise admin creating an operator", body = crate::error::ErrorBody),
        (status = 404, description = "Another enterprise's user", body = crate::error::ErrorBody),
        (status = 409, description = "The login is taken", body = crate::error::ErrorBody),
        (status = 422, description = "A bad login, password, role or enterprise", body = crate::error::ErrorBody)))]
pub async fn create(
    State(api): State<Api>,
    caller: Caller,
    Json(request): Json<CreateUser>,
) -> Result<Response, ApiError> {
    may_manage_users(&caller)?;
    let entry = format!("user/{}", request.login);
    let role: Role = request
        .role
        .parse()
        .map_err(|e| invalid(&entry, "role", format!("{e}")))?;
    let enterprise = if caller.is_operator() {
        request.enterprise
    } else {
        if !role.is_enterprise() {
            return Err(ApiError::Forbidden("only an operator creates operators"));
        }
        match request.enterprise {
            None => caller.user.enterprise.clone(),
            Some(asked) if caller.sees(&asked) => Some(asked),
            Some(_) => return Err(ApiError::NotFound),
        }
    };
    if let Some(problem) = auth::login_problem(&request.login) {
        return Err(invalid(&entry, "login", problem));
    }
    if let Some(problem) = auth::password_problem(&request.password) {
        return Err(invalid(&entry, "password", problem));
    }
    match (role.is_enterprise(), &enterprise) {
        (true, None) => return Err(invalid(&entry, "enterprise", "required for this role")),
        (false, Some(_)) => {
            return Err(invalid(
                &entry,
                "enterprise",
                "an operator belongs to no enterprise",
            ));
        }
        (true, Some(id)) => {
            let (store, id) = (api.tenant.clone(), id.clone());
            let data = blocking(move || store.tenant()).await?;
            if !crate::tenant::exists(&data.entries, &id) {
                return Err(invalid(&entry, "enterprise", "no such enterprise"));
            }
        }
        (false, None) => {}
    }
    let store = api.access.clone();
    let new = NewUser {
        login: request.login.clone(),
        password_hash: String::new(),
        role,
        enterprise,
        at: Timestamp::now(),
    };
    let password = request.password;
    // Hashing is deliberately slow: on the blocking pool, with the insert.
    let added =
        tokio::task::spawn_blocking(move || -> Result<Result<User, ApiError>, StoreError> {
            let password_hash = match auth::hash_password(&password) {
                Ok(hash) => hash,
                Err(e) => return Ok(Err(ApiError::Internal(e))),
            };
            match store.add_user(NewUser {
                password_hash,
                ..new
            }) {
                Ok(user) => Ok(Ok(user)),
                Err(StoreError::UserExists { .. }) => Ok(Err(ApiError::Conflict(
                    "there is already a user with this login".into(),
                ))),
                Err(StoreError::InvalidUser { reason, .. }) => Ok(Err(invalid(&entry, "", reason))),
                Err(other) => Err(other),
            }
        })
        .await??;
    let user = added?;
    audit(
        &api,
        &caller,
        user.enterprise.clone(),
        "user.add",
        format!("user/{}", user.login),
        None,
        Some(describe(&user)),
    )
    .await?;
    tracing::info!(actor = %caller.user.login, login = %user.login, role = %user.role, "user added");
    Ok((StatusCode::CREATED, Json(UserJson::from(&user))).into_response())
}

/// `DELETE /api/v1/users/{login}`: the user, its sessions and its keys go at once.
#[utoipa::path(delete, path = "/api/v1/users/{login}", tag = "users",
    params(("login" = String, Path, description = "The user's login")),
    responses((status = 204, description = "Removed; its sessions and keys no longer work"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "A viewer, or oneself", body = crate::error::ErrorBody),
        (status = 404, description = "No such user, or another enterprise's", body = crate::error::ErrorBody)))]
pub async fn remove(
    State(api): State<Api>,
    caller: Caller,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    may_manage_users(&caller)?;
    let user = visible_user(&api, &caller, &login).await?;
    if user.id == caller.user.id {
        return Err(ApiError::Forbidden(
            "you cannot remove yourself: another administrator can",
        ));
    }
    let store = api.access.clone();
    let id = user.id;
    if !blocking(move || store.remove_user(id)).await? {
        return Err(ApiError::NotFound);
    }
    audit(
        &api,
        &caller,
        user.enterprise.clone(),
        "user.remove",
        format!("user/{}", user.login),
        Some(describe(&user)),
        None,
    )
    .await?;
    tracing::info!(actor = %caller.user.login, login = %user.login, "user removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/v1/users/{login}/password`: an administrator sets another user's password
/// (a user who forgot theirs); every session of that user ends at once, its API keys
/// stay. An enterprise admin resets its own enterprise's users only; one's own password
/// is changed with the old one, at `/api/v1/me/password`.
#[utoipa::path(put, path = "/api/v1/users/{login}/password", tag = "users", request_body = PasswordReset,
    params(("login" = String, Path, description = "The user's login")),
    responses((status = 204, description = "Set; the user's sessions have ended"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "A viewer, or oneself", body = crate::error::ErrorBody),
        (status = 404, description = "No such user, or another enterprise's", body = crate::error::ErrorBody),
        (status = 422, description = "Too short or too long", body = crate::error::ErrorBody)))]
pub async fn reset_password(
    State(api): State<Api>,
    caller: Caller,
    Path(login): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    may_manage_users(&caller)?;
    // The body is read after the user is found: about another enterprise's user, the
    // answer is its 404 whatever is sent.
    let user = visible_user(&api, &caller, &login).await?;
    if user.id == caller.user.id {
        return Err(ApiError::Forbidden(
            "change your own password with the old one, at /api/v1/me/password",
        ));
    }
    let entry = format!("user/{}", user.login);
    let request: PasswordReset = serde_json::from_value(body).map_err(|e| {
        invalid(
            &entry,
            "",
            format!("the body must be {{\"new_password\": …}}: {e}"),
        )
    })?;
    if let Some(problem) = auth::password_problem(&request.new_password) {
        return Err(invalid(&entry, "new_password", problem));
    }
    let store = api.access.clone();
    let id = user.id;
    blocking(move || {
        let hash = match auth::hash_password(&request.new_password) {
            Ok(hash) => hash,
            Err(e) => return Ok(Err(ApiError::Internal(e))),
        };
        store.set_password(id, &hash, Timestamp::now(), None)?;
        Ok(Ok(()))
    })
    .await??;
    audit(
        &api,
        &caller,
        user.enterprise.clone(),
        "user.password_reset",
        entry,
        None,
        Some("password set by an administrator; the user's sessions ended".into()),
    )
    .await?;
    tracing::info!(actor = %caller.user.login, login = %user.login, "password reset");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/me/password`: with the old password, a new one; every other session of
/// the user ends at once (the one asking stays; API keys stay).
#[utoipa::path(post, path = "/api/v1/me/password", tag = "users", request_body = PasswordChange,
    responses((status = 204, description = "Changed; the user's other sessions have ended"),
        (status = 401, description = "Not logged in", body = crate::error::ErrorBody),
        (status = 403, description = "The old password is wrong", body = crate::error::ErrorBody),
        (status = 422, description = "The new password is refused", body = crate::error::ErrorBody),
        (status = 429, description = "Too many wrong old passwords: see Retry-After", body = crate::error::ErrorBody)))]
pub async fn change_password(
    State(api): State<Api>,
    caller: Caller,
    Json(request): Json<PasswordChange>,
) -> Result<Response, ApiError> {
    let entry = format!("user/{}", caller.user.login);
    if let Some(problem) = auth::password_problem(&request.new_password) {
        return Err(invalid(&entry, "new_password", problem));
    }
    // Guessing the old password through a stolen session is throttled as logins are.
    let now = Instant::now();
    let throttle_key = format!("password {}", caller.user.id);
    if let Some(wait) = api
        .throttle
        .blocked(&throttle_key, auth::FAILURES_PER_ACCOUNT, now)
    {
        return Err(ApiError::TooManyAttempts(wait));
    }
    let store = api.access.clone();
    let (login, user_id) = (caller.user.login.clone(), caller.user.id);
    let keep = caller.session.clone();
    let PasswordChange {
        old_password,
        new_password,
    } = request;
    let changed = blocking(move || {
        let Some((_, hash)) = store.user_by_login(&login)? else {
            return Ok(Err(ApiError::Unauthenticated));
        };
        if !auth::verify_password(&old_password, &hash) {
            return Ok(Err(ApiError::Forbidden("the old password is wrong")));
        }
        let new_hash = match auth::hash_password(&new_password) {
            Ok(hash) => hash,
            Err(e) => return Ok(Err(ApiError::Internal(e))),
        };
        store.set_password(user_id, &new_hash, Timestamp::now(), keep.as_deref())?;
        Ok(Ok(()))
    })
    .await?;
    if let Err(refused) = changed {
        if matches!(refused, ApiError::Forbidden(_)) {
            api.throttle.failed(&throttle_key, now);
        }
        return Err(refused);
    }
    api.throttle.succeeded(&throttle_key);
    audit(
        &api,
        &caller,
        caller.user.enterprise.clone(),
        "user.password",
        entry,
        None,
        Some("password changed; the user's other sessions ended".into()),
    )
    .await?;
    tracing::info!(login = %caller.user.login, "password changed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The user whose keys the caller manages: itself, or anyone for an operator. Another
/// enterprise's user is `404`; another user of its own enterprise `403`.
async fn key_owner(api: &Api, caller: &Caller, login: &str) -> Result<User, ApiError> {
    if login == caller.user.login {
        return Ok(caller.user.clone());
    }
    let user = visible_user(api, caller, login).await?;
    if caller.is_operator() {
        Ok(user)
    } else {
        Err(ApiError::Forbidden(
            "only its owner or an operator manages a user's keys",
        ))
    }
}

/// `GET /api/v1/users/{login}/keys`: the user's API keys (names and ids, never the keys).
#[utoipa::path(get, path = "/api/v1/users/{login}/keys", tag = "users",
    params(("login" = String, Path, description = "The user's login (one's own, or anyone's for an operator)")),
    responses((status = 200, body = Vec<KeyJson>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn keys(
    State(api): State<Api>,
    caller: Caller,
    Path(login): Path<String>,
) -> Result<Json<Vec<KeyJson>>, ApiError> {
    let owner = key_owner(&api, &caller, &login).await?;
    let store = api.access.clone();
    let keys = blocking(move || store.api_keys(owner.id)).await?;
    Ok(Json(keys.iter().map(KeyJson::from).collect()))
}

/// `POST /api/v1/users/{login}/keys`: a new API key, shown in this answer only.
#[utoipa::path(post, path = "/api/v1/users/{login}/keys", tag = "users",
    params(("login" = String, Path, description = "The user's login (one's own, or anyone's for an operator)")),
    request_body = CreateKey,
    responses((status = 201, body = NewKeyJson), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 422, description = "A bad name", body = crate::error::ErrorBody)))]
pub async fn create_key(
    State(api): State<Api>,
    caller: Caller,
    Path(login): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    // The body is read after the owner is found: whatever is sent about another
    // enterprise's user, the answer is its 404.
    let owner = key_owner(&api, &caller, &login).await?;
    let request: CreateKey = serde_json::from_value(body).map_err(|e| {
        invalid(
            &format!("user/{}", owner.login),
            "",
            format!("the body must be {{\"name\": …}}: {e}"),
        )
    })?;
    let name = request.name.trim().to_owned();
    if name.is_empty()
        || name.chars().count() > MAX_KEY_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(invalid(
            &format!("user/{}", owner.login),
            "name",
            format!("1 to {MAX_KEY_NAME_CHARS} characters, no control characters"),
        ));
    }
    let key = auth::new_secret();
    let (store, hash, kept_name, owner_id) = (
        api.access.clone(),
        auth::secret_hash(&key),
        name.clone(),
        owner.id,
    );
    let created_at = Timestamp::now();
    let id = blocking(move || store.add_api_key(&hash, owner_id, &kept_name, created_at)).await?;
    audit(
        &api,
        &caller,
        owner.enterprise.clone(),
        "key.add",
        format!("key/{}/{id}", owner.login),
        None,
        Some(format!("name = {name}")),
    )
    .await?;
    tracing::info!(actor = %caller.user.login, login = %owner.login, key_id = id, "API key added");
    Ok((
        StatusCode::CREATED,
        Json(NewKeyJson {
            id,
            name,
            created_at: created_at.to_string(),
            key,
        }),
    )
        .into_response())
}

/// `DELETE /api/v1/users/{login}/keys/{id}`: the key stops working at once.
#[utoipa::path(delete, path = "/api/v1/users/{login}/keys/{id}", tag = "users",
    params(("login" = String, Path, description = "The user's login (one's own, or anyone's for an operator)"),
        ("id" = i64, Path, description = "The key's id, as listed")),
    responses((status = 204, description = "Revoked"), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_key(
    State(api): State<Api>,
    caller: Caller,
    Path((login, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let owner = key_owner(&api, &caller, &login).await?;
    let (store, owner_id) = (api.access.clone(), owner.id);
    let listed = blocking(move || store.api_keys(owner_id)).await?;
    let Some(key) = listed.into_iter().find(|k| k.id == id) else {
        return Err(ApiError::NotFound);
    };
    let store = api.access.clone();
    if !blocking(move || store.remove_api_key(owner_id, id)).await? {
        return Err(ApiError::NotFound);
    }
    audit(
        &api,
        &caller,
        owner.enterprise.clone(),
        "key.revoke",
        format!("key/{}/{id}", owner.login),
        Some(format!("name = {}", key.name)),
        None,
    )
    .await?;
    tracing::info!(actor = %caller.user.login, login = %owner.login, key_id = id, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
