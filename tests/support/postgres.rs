//! A PostgreSQL server of the test's own (scripts/pg-test-server in a directory under
//! target/, on a free port), which the test may restart, with one database for the test.

use std::path::PathBuf;
use std::process::Command;

use super::{free_port, repo_path};

pub struct PgServer {
    dir: PathBuf,
    pub admin_url: String,
}

impl PgServer {
    /// Creates and starts a cluster in target/pg-<name> (removed first if a previous
    /// run left it).
    pub fn start(name: &str) -> PgServer {
        let dir = repo_path(&format!("target/pg-{name}"));
        PgServer::script(&["stop"], &dir);
        let _ = std::fs::remove_dir_all(&dir);
        let port = free_port().to_string();
        let out = Command::new(repo_path("scripts/pg-test-server"))
            .arg("start")
            .arg(&dir)
            .arg(&port)
            .output()
            .expect("run scripts/pg-test-server");
        assert!(
            out.status.success(),
            "cannot start PostgreSQL (apt-get install postgresql): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PgServer {
            dir,
            admin_url: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        }
    }

    fn script(args: &[&str], dir: &std::path::Path) -> bool {
        Command::new(repo_path("scripts/pg-test-server"))
            .args(args)
            .arg(dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Restarts the server (fast shutdown: open connections are cut).
    pub fn restart(&self) {
        assert!(
            PgServer::script(&["restart"], &self.dir),
            "cannot restart PostgreSQL"
        );
    }

    /// Creates database `name` and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let out = Command::new("psql")
            .arg(&self.admin_url)
            .args(["-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "create database: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base = self
            .admin_url
            .rsplit_once('/')
            .expect("a database in the URL")
            .0;
        format!("{base}/{name}")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        PgServer::script(&["stop"], &self.dir);
    }
}
