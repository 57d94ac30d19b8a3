//! `sihai user …`: the admin API's users, in the store the configuration names. The
//! first operator is created here; the rest may be created here or, later, through the
//! API. Passwords are read from standard input (one line), never from the command line,
//! where other users of the machine could read them.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use jiff::Timestamp;
use sihai_config::Config;
use sihai_store::{NewUser, Role, Store, StoreError};

fn open(config_path: &Path) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let config = Config::load(config_path).map_err(|errors| anyhow!("{errors}"))?;
    crate::open_store(&config.store)
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    // The same rule as the API's password change and user creation.
    if let Some(problem) = sihai_api::auth::password_problem(&password) {
        bail!("the password (standard input, one line) is {problem}");
    }
    Ok(password)
}

/// `sihai user add LOGIN --role ROLE [--enterprise ID]`, password on standard input.
pub fn add(
    config_path: &Path,
    login: &str,
    role: Role,
    enterprise: Option<String>,
) -> anyhow::Result<()> {
    match (role, &enterprise) {
        (Role::Operator, Some(_)) => {
            bail!("an operator belongs to no enterprise: drop --enterprise")
        }
        (Role::EnterpriseAdmin | Role::EnterpriseViewer, None) => {
            bail!("an enterprise user needs --enterprise ID")
        }
        _ => {}
    }
    if let Some(problem) = sihai_api::auth::login_problem(login) {
        bail!("{problem}");
    }
    let password = read_password()?;
    let hash = sihai_api::auth::hash_password(&password).map_err(|e| anyhow!(e))?;
    let store = open(config_path)?;
    let result = store.add_user(NewUser {
        login: login.to_owned(),
        password_hash: hash,
        role,
        enterprise,
        at: Timestamp::now(),
    });
    store.flush().context("committing to the store")?;
    match result {
        Ok(user) => {
            println!("user {} added ({})", user.login, user.role.as_str());
            Ok(())
        }
        Err(StoreError::UserExists { .. }) => bail!("there is already a user {login:?}"),
        Err(other) => Err(other).context("adding the user"),
    }
}

/// `sihai user key LOGIN --name NAME`: an API key for machines, printed once.
pub fn key(config_path: &Path, login: &str, name: &str) -> anyhow::Result<()> {
    let store = open(config_path)?;
    let Some((user, _)) = store.user_by_login(login).context("finding the user")? else {
        store.flush().ok();
        bail!("no user {login:?}");
    };
    let key = sihai_api::auth::new_secret();
    store
        .add_api_key(
            &sihai_api::auth::secret_hash(&key),
            user.id,
            name,
            Timestamp::now(),
        )
        .context("adding the key")?;
    store.flush().context("committing to the store")?;
    println!("{key}");
    eprintln!(
        "API key {name:?} for {login}: send it as `Authorization: Bearer <key>`; it is not shown again"
    );
    Ok(())
}
